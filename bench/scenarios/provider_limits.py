"""Scenario ``limits``: 429s per 1,000 model calls with and without the shared provider limiter.

The model stand-ins run with ``rate_limit_per_minute`` = 60 (a token bucket per model, like
Anthropic's limits). Four ``python -m worker run`` processes of the product (direct Postgres,
4 jobs each) serve a queue holding more rename_layers jobs than the limit lets through, twice
in a fixed window: once with ``SHARED_PROVIDER_LIMITS=false`` (each replica finds the limit
through 429s, as before issue 13) and once with the shared limiter (a ``public.provider_limits``
row of 60 requests/min). The stand-ins' timing log says how many requests were answered 200 and
how many 429. Runs through ``harness.each_system`` over the systems that run the AI worker on
the direct store.
"""

from __future__ import annotations

import signal
import subprocess
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from bench import databases, harness, processes
from bench.scenario import Context, Goal, ScenarioResult
from bench.support import ROOT, standin_process
from bench.systems import registry
from bench.systems.capabilities import RunsAiWorker
from devstack.paths import free_port
from devstack.sqlapi import SqlApi

NAME = "limits"
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


def start_worker(
    system: RunsAiWorker, database: str, models_url: str, shared: bool, logs: Path, i: int
) -> subprocess.Popen[bytes]:
    port = free_port()
    argv, env = system.ai_worker(
        database,
        "",
        models_url,
        port=port,
        concurrency=CONCURRENCY,
        provider_concurrency=CONCURRENCY,
        artifacts=logs / "limits-artifacts",
    )
    env |= {
        "WORKER_KINDS": "rename_layers",
        "SHARED_PROVIDER_LIMITS": "true" if shared else "false",
        "SWEEP_SECONDS": "2",
        "DRAIN_TIMEOUT_SECONDS": "2",
    }
    log = logs / f"limits-worker-{'shared' if shared else 'alone'}-{i}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    # Four processes importing the SDKs on two cores take a while: the window starts once all are up.
    processes.wait_http(f"http://127.0.0.1:{port}/health", proc, "worker", log, timeout=120)
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


def run_variant(
    system: RunsAiWorker, database: str, shared: bool, seconds: float, models_url: str, logs: Path
) -> dict[str, Any]:
    # Each variant starts from an empty queue and fresh limiter state.
    databases.execute(database, "delete from public.jobs")
    databases.execute(database, "delete from public.model_capacity")
    databases.execute(database, "delete from public.provider_limits")
    if shared:
        databases.execute(database, f"insert into public.provider_limits values ('anthropic', '{MODEL}', {RPM}, null)")
    with httpx.Client(base_url=models_url, timeout=10) as control, ExitStack() as stack:
        workers = []
        for i in range(WORKERS):
            workers.append(start_worker(system, database, models_url, shared, logs, i))
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
    calls, limited = len(seen), seen.count(429)
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


def run(ctx: Context) -> ScenarioResult:
    seconds = 30.0 if ctx.quick else 90.0
    loaded, problems = registry.available(["ours_postgres"])
    systems = [s for s in loaded if isinstance(s, RunsAiWorker)]
    notes = [f"{name}: not run: {why}" for name, why in problems.items()]
    with standin_process(ctx.log_dir / "limits-standins.log") as (models_url, _pid):

        def measure(system: RunsAiWorker, database: str, _gateway: str | None) -> list[dict[str, Any]]:
            print(f"  limits: {system.label}, shared limiter off, then on ({seconds:.0f} s each) ...", flush=True)
            return [run_variant(system, database, shared, seconds, models_url, ctx.log_dir) for shared in (False, True)]

        measured, failures = harness.each_system(
            systems, NAME, measure, prepare=lambda system, database: system.prepare_product(database)
        )
    rows = [row for variants in measured.values() for row in variants]
    goals = []
    for row in rows:
        if row["shared limiter"]:
            goals.append(
                Goal(
                    "429s with the shared limiter",
                    f"{WORKERS} workers against {RPM} requests/min: at most a handful of 429s, throughput at the limit",
                    f"{row['429s']} 429s in {row['model calls']} calls; {row['answered 200']} answered "
                    f"(the limit lets through {row['the limit lets through']})",
                    row["429s"] <= 5 and row["answered 200"] >= 0.8 * row["the limit lets through"],
                )
            )
    return ScenarioResult(
        name=NAME,
        title=f"Provider limits: {WORKERS} worker processes against a model limited to {RPM} requests/min",
        method=__doc__ or "",
        settings={"workers": WORKERS, "concurrency": CONCURRENCY, "rpm": RPM, "window_s": seconds, "model": MODEL},
        table=rows,
        goals=goals,
        notes=notes + failures,
    )
