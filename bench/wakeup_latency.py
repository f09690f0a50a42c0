"""Wake-up latency: enqueue → claimed, for a real ``python -m worker run`` subprocess, per wake-up mode.

Modes (one fresh database cloned from a migrated template of this benchmark's own each):

* ``realtime``: WORKER_STORE=supabase; the worker is woken by a Realtime postgres_changes INSERT
  (through the devstack gateway, which runs in its own process);
* ``listen``: WORKER_STORE=postgres; the worker is woken by LISTEN jobs_queued (NOTIFY trigger);
* ``sweep``: no push at all. The worker has no setting to turn push wake-ups off, so this mode
  runs the psycopg adapter against a clone where the ``jobs_notify_queued`` trigger is dropped:
  the worker only finds jobs at its safety sweep (SWEEP_SECONDS=2 here; 30 by default).

Jobs are ``rename_layers`` with one layer, answered by the model stand-ins (in this process,
latency 0). They are submitted one at a time as a user (psycopg, the same GUCs PostgREST sets);
each must have succeeded before the next is submitted, after a short random pause (uniform over
0–20 ms in the push modes, over one sweep interval in the sweep mode, so jobs arrive at a random
phase of the sweep). Two numbers per job:

* server clock: ``jobs.started_at − jobs.created_at`` (both ``now()`` of their transactions);
* client: enqueue call returned → the user's ``running`` broadcast arrived on ``jobs:<uid>``
  (supabase-py, private channel), i.e. what the plugin sees.

Push modes use SWEEP_SECONDS=3600 so that every claim comes from a push. Bounded: ``--jobs``
(default 200) per push mode, ``--sweep-jobs`` (default 25) for the sweep mode, and a time cap
per mode; every subprocess and server is stopped and every database dropped in ``finally``.

    .venv/bin/python bench/wakeup_latency.py [--jobs 200] [--sweep-jobs 25] [--modes realtime,listen,sweep]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.types import BroadcastPayload, RealtimeChannelOptions  # noqa: E402

from bench.support import gateway_process, machine_info, summary  # noqa: E402
from devstack import migrate, paths  # noqa: E402
from devstack.gateway.context import Settings  # noqa: E402
from supabase import acreate_client  # noqa: E402
from tests.integration.test_worker_process import Env, WorkerProcess  # noqa: E402
from tests.integration.worker_support import Gateway, SqlHarness, drop_database, model_standins  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "wakeup_latency.json"
KIND = "rename_layers"
PAYLOAD = {"layers": [{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}], "context": "bench"}
SWEEP_SECONDS = 2.0
MODE_CAP_S = 60.0  # measuring time per mode; the run stops early (and says so) beyond it
JOB_WAIT_S = 15.0  # per job: claimed and finished
MODES = ("realtime", "listen", "sweep")
WARMUP_PUSH, WARMUP_SWEEP = 3, 1


@contextmanager
def bench_template() -> Iterator[str]:
    """A migrated database of this run's own to clone from (the tests' shared template is left alone)."""
    name = f"bench_wake_tmpl_{uuid.uuid4().hex[:8]}"
    try:
        migrate.recreate_database(name)
        migrate.migrate(name, seed=False)
        with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
            # One user submits every job: lift the per-minute rate limit for the benchmark's kind.
            # max_attempts = 1: started_at stays the first claim's even if the attempt fails (the
            # psycopg adapter's report_progress is refused by the database at the time of writing;
            # the job's outcome after its claim does not change enqueue → claimed).
            conn.execute(
                "update public.job_kinds set rate_limit_per_minute = 100000, max_attempts = 1 where kind = %s", (KIND,)
            )
        yield name
    finally:
        drop_database(name)


@contextmanager
def cloned_database(template: str, mode: str) -> Iterator[str]:
    name = f"bench_wake_{mode}_{uuid.uuid4().hex[:8]}"
    try:
        migrate.recreate_database(name, template=template)
        if mode == "sweep":
            with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
                conn.execute(sql.SQL("drop trigger jobs_notify_queued on public.jobs"))
        yield name
    finally:
        drop_database(name)


@dataclass
class Arrivals:
    """The user's broadcasts by job id: when 'running' and a final status arrived (perf_counter)."""

    running: dict[str, float] = field(default_factory=dict)
    final: dict[str, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_job(self, message: BroadcastPayload) -> None:
        now = time.perf_counter()
        p = message.get("payload") or {}
        job_id, status = str(p.get("id")), p.get("status")
        if status == "running":
            self.running.setdefault(job_id, now)
        elif status in ("succeeded", "failed", "cancelled"):
            self.final[job_id] = str(status)
        self.changed.set()

    async def until(self, job_id: str, deadline: float) -> bool:
        while job_id not in self.final:
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)
        return True


def wakeup_counts(metrics_text: str) -> dict[str, float]:
    counts: dict[str, float] = {}
    for line in metrics_text.splitlines():
        if line.startswith("worker_wakeups_total{"):
            labels, _, value = line.rpartition(" ")
            reason = labels.split('reason="', 1)[1].split('"', 1)[0]
            counts[reason] = float(value)
    return counts


async def run_mode(mode: str, template: str, count: int, workdir: Path) -> dict[str, Any]:
    store = "supabase" if mode == "realtime" else "postgres"
    sweep = SWEEP_SECONDS if mode == "sweep" else 3600.0
    with (
        cloned_database(template, mode) as database,
        gateway_process(database) as url,
        model_standins() as models,
    ):
        async with httpx.AsyncClient(base_url=models.url, timeout=10) as control:
            knobs = {"latency_ms": 0, "stream_delay_ms": 0}
            (await control.post("/_standin/config", json=knobs)).raise_for_status()
        settings = Settings.from_stack(database=database)
        db = SqlHarness(database)
        gw = Gateway(url, settings.service_role_key, settings.anon_key, database)
        env = Env(gw=gw, models=models, db=db, gateway_port=int(url.rsplit(":", 1)[1]), restart_gateway=lambda: None)
        worker = WorkerProcess(
            env,
            workdir / f"worker-{mode}.log",
            store,
            SWEEP_SECONDS=str(sweep),
            LEASE_SECONDS="60",
            WORKER_KINDS=KIND,
        )
        try:
            health = worker.wait_healthy()
            user = db.new_user()
            token = jwt.encode(
                {"sub": str(user), "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 3600},
                settings.jwt_secret,
                "HS256",
            )
            plugin = await acreate_client(url, settings.anon_key)
            await plugin.realtime.set_auth(token)
            arrivals = Arrivals()
            subscribed = asyncio.Event()
            options: RealtimeChannelOptions = {"config": {"private": True, "broadcast": None, "presence": None}}
            channel = plugin.channel(f"jobs:{user}", options)
            channel.on_broadcast("job", arrivals.on_job)
            await channel.subscribe(
                lambda state, _err: subscribed.set() if getattr(state, "value", state) == "SUBSCRIBED" else None
            )
            await asyncio.wait_for(subscribed.wait(), 15)

            ids: list[str] = []
            client_ms: list[float] = []
            missing_running = 0
            stopped_early = None
            gap = SWEEP_SECONDS if mode == "sweep" else 0.02
            for _ in range(WARMUP_SWEEP if mode == "sweep" else WARMUP_PUSH):  # connections, caches; not counted
                await asyncio.sleep(random.uniform(0, gap))
                warm = str(db.api.enqueue(user, KIND, PAYLOAD)["id"])
                await arrivals.until(warm, time.monotonic() + JOB_WAIT_S + (sweep if mode == "sweep" else 0.0))
            started = time.monotonic()
            for _ in range(count):
                if time.monotonic() - started > MODE_CAP_S:
                    stopped_early = f"time cap of {MODE_CAP_S:.0f} s reached after {len(ids)} jobs"
                    break
                await asyncio.sleep(random.uniform(0, gap))
                # Synchronous on purpose: no broadcast callback can run before `returned` is taken.
                job = db.api.enqueue(user, KIND, PAYLOAD)
                returned = time.perf_counter()
                job_id = str(job["id"])
                ids.append(job_id)
                wait = JOB_WAIT_S + (sweep if mode == "sweep" else 0.0)
                if not await arrivals.until(job_id, time.monotonic() + wait):
                    stopped_early = f"job {job_id} did not finish within {wait:.0f} s"
                    break
                if job_id in arrivals.running:
                    client_ms.append((arrivals.running[job_id] - returned) * 1000)
                else:
                    missing_running += 1
            elapsed = time.monotonic() - started

            rows = db.sql(
                "select status, attempts, extract(epoch from started_at - created_at) * 1000 as ms "
                "from public.jobs where id = any(%s::uuid[])",
                (ids,),
            )
            server_ms = [float(r["ms"]) for r in rows if r["ms"] is not None]
            statuses: dict[str, int] = {}
            for r in rows:
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
            async with httpx.AsyncClient(timeout=5) as http:
                wakeups = wakeup_counts((await http.get(f"http://{paths.HOST}:{worker.port}/metrics")).text)
            await plugin.realtime.remove_all_channels()
            return {
                "store": store,
                "wake_up": {
                    "realtime": "Realtime postgres_changes INSERT (supabase-py adapter, via the gateway)",
                    "listen": "LISTEN jobs_queued / NOTIFY trigger (psycopg adapter)",
                    "sweep": f"sweep only: psycopg adapter, notify trigger dropped, SWEEP_SECONDS={sweep:g}",
                }[mode],
                "sweep_seconds": sweep,
                "jobs": len(ids),
                "statuses": statuses,
                "retried": sum(1 for r in rows if r["attempts"] > 1),
                "elapsed_s": round(elapsed, 2),
                "stopped_early": stopped_early,
                "worker_realtime_joined": health.get("realtime", {}).get("joined"),
                "worker_wakeups_total": wakeups,
                "server_enqueue_to_claimed": summary(server_ms),
                "client_enqueue_return_to_running_broadcast": summary(client_ms),
                "running_broadcast_missing": missing_running,
            }
        finally:
            worker.kill()
            db.close()


async def run(modes: list[str], jobs: int, sweep_jobs: int) -> dict[str, Any]:
    load_before = os.getloadavg()
    results: dict[str, Any] = {}
    with bench_template() as template, tempfile.TemporaryDirectory(prefix="bench-wakeup-") as tmp:
        for mode in modes:
            count = sweep_jobs if mode == "sweep" else jobs
            print(f"[{mode}] {count} jobs ...", flush=True)
            results[mode] = await run_mode(mode, template, count, Path(tmp))
    return {
        "benchmark": "wakeup_latency",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(load_before),
        "kind": KIND,
        "payload_layers": len(PAYLOAD["layers"]),
        "model_standin_latency_ms": 0,
        "modes": results,
    }


def print_table(report: dict[str, Any]) -> None:
    header = f"{'mode':9s} {'clock':7s} {'n':>4s} {'p50':>9s} {'p95':>9s} {'p99':>9s} {'max':>9s}  wake-ups"
    print(header)
    print("-" * len(header))
    for mode, r in report["modes"].items():
        for clock, key in (
            ("server", "server_enqueue_to_claimed"),
            ("client", "client_enqueue_return_to_running_broadcast"),
        ):
            s = r[key]
            if not s.get("count"):
                print(f"{mode:9s} {clock:7s} {0:>4d}")
                continue
            cells = " ".join(f"{s[k]:>7.1f}ms" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
            wakes = (
                ", ".join(f"{k}={v:g}" for k, v in sorted(r["worker_wakeups_total"].items()))
                if clock == "server"
                else ""
            )
            print(f"{mode:9s} {clock:7s} {s['count']:>4d} {cells}  {wakes}")
        outcomes = ", ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items()))
        print(f"{'':9s} job outcomes after the claim: {outcomes}")
        if r["stopped_early"]:
            print(f"{'':9s} stopped early: {r['stopped_early']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=200, help="jobs per push mode (max 2000)")
    parser.add_argument("--sweep-jobs", type=int, default=25, help="jobs in the sweep-only mode (max 200)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated subset of " + ",".join(MODES))
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown or not modes:
        parser.error(f"unknown mode(s) {unknown}; known: {', '.join(MODES)}")
    report = asyncio.run(run(modes, max(1, min(args.jobs, 2000)), max(1, min(args.sweep_jobs, 200))))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    m = report["machine"]
    print(f"nproc={m['nproc']} loadavg before={m['loadavg_before']} after={m['loadavg_after']}")
    print(f"saved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
