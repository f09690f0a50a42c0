"""Claim throughput: jobs/s of claim_jobs + complete_job cycles, straight to Postgres and through REST.

A database of this run's own (migrated, no seed) gets a benchmark kind with a high per-user cap
and rate limit, and 50 users. Before each run the queue is refilled with N queued jobs spread
over the 50 users (one INSERT, so ``run_at`` ties and claim order interleaves the users); then C
concurrent claimers (threads, one connection or client each) loop: ``claim_jobs(max_jobs=B)``,
then ``complete_job`` once per claimed job, until the queue is empty. Throughput is completed
jobs / wall time of the run. The row triggers (Broadcast from Database to the user's topic,
NOTIFY) fire as in production, so their cost is part of the numbers.

1. SQL API: psycopg, autocommit, the worker's own queries (worker/adapters/queries.sql), as the
   psycopg adapter runs them; C in 1, 2, 4, 8 and B in 1, 10 over 5,000 jobs.
2. REST: supabase-py (sync) with the service-role key through the devstack gateway (in its own
   process, on a free loopback port, on this database); C in 1, 4 and B in 1, 10 over 1,000 jobs.

Each run is also capped in time; if it stops before the queue is empty it says so. The database
is dropped and the gateway stopped in ``finally``.

    .venv/bin/python bench/claim_throughput.py [--jobs 5000] [--rest-jobs 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.support import gateway_process, machine_info  # noqa: E402
from devstack import migrate, paths  # noqa: E402
from devstack.gateway.context import Settings  # noqa: E402
from devstack.sqlapi import SqlApi  # noqa: E402
from supabase import Client, create_client  # noqa: E402
from tests.integration.worker_support import drop_database  # noqa: E402
from worker.adapters.sql_queries import queries  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "claim_throughput.json"
KIND = "bench_claim"
USERS = 50
LEASE_SECONDS = 300
RUN_CAP_S = 12.0  # per run
EMPTY_CLAIMS_TO_STOP = 3  # an empty claim can also mean "the group I waited for was taken meanwhile"
SQL_CLAIMERS, SQL_BATCHES = (1, 2, 4, 8), (1, 10)
REST_CLAIMERS, REST_BATCHES = (1, 4), (1, 10)


@contextmanager
def bench_database() -> Iterator[tuple[str, list[uuid.UUID]]]:
    name = f"bench_claim_{uuid.uuid4().hex[:8]}"
    try:
        migrate.recreate_database(name)
        migrate.migrate(name, seed=False)
        with SqlApi(name) as api:
            api.admin(
                "insert into public.job_kinds (kind, max_attempts, timeout_seconds, rate_limit_per_minute, "
                "max_running_per_user, description) values (%s, 3, 600, 100000, 100000, 'claim benchmark')",
                (KIND,),
            )
            users = [api.create_user() for _ in range(USERS)]
        yield name, users
    finally:
        drop_database(name)


def refill(database: str, users: list[uuid.UUID], jobs: int) -> None:
    """Empty the queue and insert ``jobs`` queued jobs round-robin over ``users``."""
    with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
        conn.execute("delete from public.jobs")
        conn.execute("delete from realtime.messages")  # what the triggers broadcast last run
        conn.execute(
            "insert into public.jobs (user_id, kind, payload, max_attempts) "
            "select (%(users)s::uuid[])[1 + g %% %(n)s], %(kind)s, jsonb_build_object('n', g), 3 "
            "from generate_series(0, %(jobs)s - 1) g",
            {"users": users, "n": len(users), "kind": KIND, "jobs": jobs},
        )
        conn.execute("vacuum analyze public.jobs")


@dataclass
class Tally:
    completed: int = 0
    claims: int = 0
    empty_claims: int = 0
    claim_ms: list[float] = field(default_factory=list)
    complete_ms: list[float] = field(default_factory=list)
    error: str | None = None


# One claimer's two calls: claim(worker_id, batch) -> job ids; complete(job_id, worker_id).
Claim = Callable[[str, int], list[str]]
Complete = Callable[[str, str], None]


def claimer_loop(worker_id: str, batch: int, deadline: float, claim: Claim, complete: Complete, tally: Tally) -> None:
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        ids = claim(worker_id, batch)
        tally.claim_ms.append((time.perf_counter() - t0) * 1000)
        tally.claims += 1
        if not ids:
            tally.empty_claims += 1
            if tally.empty_claims >= EMPTY_CLAIMS_TO_STOP:
                return  # nothing due is left for this claimer (the others finish what they hold)
            continue
        for job_id in ids:
            t1 = time.perf_counter()
            complete(job_id, worker_id)
            tally.complete_ms.append((time.perf_counter() - t1) * 1000)
            tally.completed += 1


def psycopg_claimer(database: str) -> tuple[Claim, Complete, Callable[[], None]]:
    conn = psycopg.connect(paths.database_url(database), autocommit=True)
    q_claim, q_complete = queries()["claim_jobs"], queries()["complete_job"]

    def claim(worker_id: str, batch: int) -> list[str]:
        params = {"worker_id": worker_id, "kinds": [KIND], "max_jobs": batch, "lease_seconds": LEASE_SECONDS}
        return [str(row[0]) for row in conn.execute(q_claim, params).fetchall()]

    def complete(job_id: str, worker_id: str) -> None:
        conn.execute(q_complete, {"job_id": job_id, "worker_id": worker_id, "result": Jsonb({"ok": True})})

    return claim, complete, conn.close


def rest_claimer(url: str, service_role_key: str) -> tuple[Claim, Complete, Callable[[], None]]:
    client: Client = create_client(url, service_role_key)

    def claim(worker_id: str, batch: int) -> list[str]:
        args = {"worker_id": worker_id, "kinds": [KIND], "max_jobs": batch, "lease_seconds": LEASE_SECONDS}
        rows: list[dict[str, Any]] = client.rpc("claim_jobs", args).execute().data  # type: ignore[assignment]
        return [str(row["id"]) for row in rows]

    def complete(job_id: str, worker_id: str) -> None:
        client.rpc("complete_job", {"job_id": job_id, "worker_id": worker_id, "result": {"ok": True}}).execute()

    def close() -> None:
        client.postgrest.session.close()

    return claim, complete, close


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2) if ordered else 0.0


def measure(
    database: str,
    users: list[uuid.UUID],
    jobs: int,
    claimers: int,
    batch: int,
    make: Callable[[], tuple[Claim, Complete, Callable[[], None]]],
) -> dict[str, Any]:
    refill(database, users, jobs)
    made = [make() for _ in range(claimers)]
    tallies = [Tally() for _ in range(claimers)]
    start = threading.Barrier(claimers + 1)
    deadline_box: list[float] = []

    def body(i: int) -> None:
        claim, complete, _ = made[i]
        start.wait()
        try:
            claimer_loop(f"bench-{i}", batch, deadline_box[0], claim, complete, tallies[i])
        except Exception as exc:  # reported, not raised: the other claimers finish
            tallies[i].error = f"{type(exc).__name__}: {str(exc)[:300]}"

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(claimers)]
    try:
        for t in threads:
            t.start()
        deadline_box.append(time.monotonic() + RUN_CAP_S)
        t0 = time.perf_counter()
        start.wait()
        for t in threads:
            t.join(timeout=RUN_CAP_S + 30)
        elapsed = time.perf_counter() - t0
    finally:
        for _, _, close in made:
            close()
    with SqlApi(database) as api:
        state = api.admin(
            "select count(*) filter (where status = 'succeeded') as succeeded, "
            "count(*) filter (where status = 'queued') as queued, "
            "count(*) filter (where attempts > 1) as reclaimed from public.jobs"
        )[0]
    completed = sum(t.completed for t in tallies)
    claim_ms = [x for t in tallies for x in t.claim_ms]
    complete_ms = [x for t in tallies for x in t.complete_ms]
    return {
        "claimers": claimers,
        "batch": batch,
        "jobs": jobs,
        "completed": completed,
        "elapsed_s": round(elapsed, 3),
        "jobs_per_s": round(completed / elapsed, 1) if elapsed > 0 else 0.0,
        "claim_calls": sum(t.claims for t in tallies),
        "claim_call_ms": {"p50": pct(claim_ms, 50), "p95": pct(claim_ms, 95), "p99": pct(claim_ms, 99)},
        "complete_call_ms": {"p50": pct(complete_ms, 50), "p95": pct(complete_ms, 95), "p99": pct(complete_ms, 99)},
        "mean_jobs_per_claim": round(completed / max(1, sum(t.claims for t in tallies)), 2),
        "left_queued": int(state["queued"]),
        "succeeded_in_db": int(state["succeeded"]),
        "claimed_twice": int(state["reclaimed"]),
        "stopped_by_time_cap": elapsed >= RUN_CAP_S and int(state["queued"]) > 0,
        "errors": [t.error for t in tallies if t.error],
    }


def print_row(path: str, r: dict[str, Any]) -> None:
    note = " (time cap)" if r["stopped_by_time_cap"] else ""
    if r["left_queued"] and not r["stopped_by_time_cap"]:
        note += f" ({r['left_queued']} left queued)"
    if r["errors"]:
        note += f" errors: {r['errors'][0]}"
    print(
        f"{path:8s} {r['claimers']:>8d} {r['batch']:>6d} {r['completed']:>6d}/{r['jobs']:<6d} {r['elapsed_s']:>8.2f} "
        f"{r['jobs_per_s']:>9.1f} {r['claim_call_ms']['p50']:>9.2f} {r['complete_call_ms']['p50']:>11.2f}{note}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5000, help="jobs per SQL-API run (max 50000)")
    parser.add_argument("--rest-jobs", type=int, default=1000, help="jobs per REST run (max 10000)")
    args = parser.parse_args()
    jobs, rest_jobs = max(10, min(args.jobs, 50000)), max(10, min(args.rest_jobs, 10000))
    load_before = os.getloadavg()
    sql_runs: list[dict[str, Any]] = []
    rest_runs: list[dict[str, Any]] = []
    print(
        f"{'path':8s} {'claimers':>8s} {'batch':>6s} {'done/jobs':>13s} {'wall s':>8s} {'jobs/s':>9s} "
        f"{'claim p50':>9s} {'complete p50':>11s} (ms)"
    )
    with bench_database() as (database, users):
        warm = min(jobs, 500)
        measure(database, users, warm, 2, 10, lambda: psycopg_claimer(database))  # caches, plans; not reported
        for batch in SQL_BATCHES:
            for claimers in SQL_CLAIMERS:
                r = measure(database, users, jobs, claimers, batch, lambda: psycopg_claimer(database))
                sql_runs.append(r)
                print_row("psycopg", r)
        settings = Settings.from_stack(database=database)
        with gateway_process(database) as url:
            key = settings.service_role_key
            measure(database, users, min(rest_jobs, 100), 1, 10, lambda: rest_claimer(url, key))  # warm-up
            for batch in REST_BATCHES:
                for claimers in REST_CLAIMERS:
                    r = measure(database, users, rest_jobs, claimers, batch, lambda: rest_claimer(url, key))
                    rest_runs.append(r)
                    print_row("rest", r)
    report: dict[str, Any] = {
        "benchmark": "claim_throughput",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine_info(load_before),
        "users": USERS,
        "kind": {"name": KIND, "max_running_per_user": 100000, "rate_limit_per_minute": 100000},
        "run_cap_s": RUN_CAP_S,
        "sql_api_psycopg": sql_runs,
        "rest_supabase_py": rest_runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    m = report["machine"]
    print(f"nproc={m['nproc']} loadavg before={m['loadavg_before']} after={m['loadavg_after']}")
    print(f"saved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
