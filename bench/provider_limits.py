"""429s per 1,000 model calls with and without the shared provider limiter (issue 13).

    python -m bench.provider_limits [--quick]

Needs the devstack cluster up (``python -m devstack db up``). A measurement, not a test. Starts
the model stand-ins with ``rate_limit_per_minute`` = 60 (a token bucket per model, like
Anthropic's limits) and, twice, four ``python -m worker run`` processes (direct Postgres, 4 jobs
each) in a scratch database holding more rename_layers jobs than the limit lets through: once with
``SHARED_PROVIDER_LIMITS=false`` (each replica finds the limit through 429s, as before issue 13)
and once with the shared limiter (a ``public.provider_limits`` row of 60 requests/min). Each run
lasts a fixed window; the stand-ins' timing log says how many requests were answered 200 and 429.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench import databases, processes
from bench.report import ROOT, md_table, save_measurement
from bench.support import standin_process
from devstack import migrate, paths
from devstack.paths import free_port
from devstack.sqlapi import SqlApi

MODEL = "claude-haiku-4-5"
RPM = 60
WORKERS = 4
CONCURRENCY = 4


def fill(database: str, jobs: int) -> None:
    """``jobs`` one-layer rename jobs, one user each (the per-user limits stay out of the way)."""
    with SqlApi(database) as api:
        layers = [{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}]
        for _ in range(jobs):
            api.enqueue(api.create_user(), "rename_layers", {"layers": layers})


def start_worker(database: str, models_url: str, shared: bool, log: Path) -> subprocess.Popen[bytes]:
    port = free_port()
    env = {
        **processes.clean_env(),
        "WORKER_STORE": "postgres",
        "DATABASE_URL": paths.database_url(database),
        "ANTHROPIC_API_KEY": "devstack-placeholder-bench",
        "ANTHROPIC_BASE_URL": models_url,
        "WORKER_KINDS": "rename_layers",
        "WORKER_CONCURRENCY": str(CONCURRENCY),
        "SHARED_PROVIDER_LIMITS": "true" if shared else "false",
        "SWEEP_SECONDS": "2",
        "DRAIN_TIMEOUT_SECONDS": "2",
        "PORT": str(port),
        "HEALTH_HOST": paths.HOST,
        "LOG_LEVEL": "WARNING",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    # Four processes importing the SDKs on two cores take a while: the window starts once all are up.
    processes.wait_http(f"http://{paths.HOST}:{port}/health", proc, "worker", log, timeout=120)
    return proc


def statuses(control: httpx.Client) -> list[int]:
    seen: list[int] = []
    after = 0
    while True:
        page = control.get("/_standin/timings", params={"after": after}).json()
        seen += [int(t["status"]) for t in page["timings"]]
        after = page["next_after"]
        if not page["more"]:
            return seen


def run_once(shared: bool, seconds: float, models_url: str, logs: Path) -> dict[str, Any]:
    with databases.scratch_database("limits") as database:
        migrate.migrate(database, seed=False)
        if shared:
            databases.execute(
                database,
                f"insert into public.provider_limits values ('anthropic', '{MODEL}', {RPM}, null)",
            )
        with httpx.Client(base_url=models_url, timeout=10) as control, ExitStack() as stack:
            name = "shared" if shared else "alone"
            workers = []
            for i in range(WORKERS):
                workers.append(start_worker(database, models_url, shared, logs / f"worker-{name}-{i}.log"))
                stack.callback(processes.stop, workers[-1], 15)
            control.post("/_standin/reset").raise_for_status()  # a full bucket, an empty timing log
            control.post("/_standin/config", json={"rate_limit_per_minute": RPM, "latency_ms": 300}).raise_for_status()
            began = time.monotonic()
            # Enough work for the whole window at twice the limit: the workers are never idle.
            fill(database, int(RPM * seconds / 60 * 2) + RPM)
            time.sleep(max(0.0, seconds - (time.monotonic() - began)))
            seen = statuses(control)  # the window ends here, before the workers drain
            for proc in workers:
                proc.send_signal(signal.SIGTERM)
        done = databases.count(database, "select count(*) from public.jobs where status = 'succeeded'")
        cooldowns = databases.count(database, "select coalesce(sum(cooldowns), 0) from public.model_capacity")
    calls = len(seen)
    limited = seen.count(429)
    return {
        "shared limiter": shared,
        "window s": round(seconds),
        "model calls": calls,
        "answered 200": seen.count(200),
        "429s": limited,
        "429s per 1,000 calls": round(1000 * limited / calls, 1) if calls else None,
        "answered per minute": round(seen.count(200) * 60 / seconds, 1),
        "the limit lets through": RPM + round(seconds * RPM / 60),  # a full bucket, then the refill
        "jobs succeeded": done,
        "shared cooldowns opened": cooldowns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.provider_limits")
    parser.add_argument("--quick", action="store_true", help="a 30 s window per run instead of 90 s")
    args = parser.parse_args()
    seconds = 30.0 if args.quick else 90.0
    load_before = os.getloadavg()
    logs = Path(tempfile.mkdtemp(prefix="bench-provider-limits-"))
    print(f"worker and stand-in logs in {logs}")
    with standin_process(logs / "standins.log") as (models_url, _pid):
        rows = [run_once(shared, seconds, models_url, logs) for shared in (False, True)]
    print(f"{WORKERS} worker processes x {CONCURRENCY} jobs against a stand-in limited to {RPM} requests/min")
    print(md_table(rows))
    command = "python -m bench.provider_limits" + (" --quick" if args.quick else "")
    out = save_measurement("provider-limits", command, rows, load_before)
    print(f"saved {out.relative_to(ROOT)}/report.json and report.md")


if __name__ == "__main__":
    main()
