"""`python -m bench.coldstart [--connections 5] [--batch 5] [--out DIR]`: what a fresh database
connection's first calls of the worker's hot SQL functions cost against the same calls once warm.

PostgreSQL compiles a plpgsql function and plans each of its statements once per backend, on first
use, so every connection a pool opens pays that again; a freshly started stack opens its pools as
load arrives. Per fresh connection, on a scratch database with queued no-op jobs, the worker's
sequence runs twice: claim (``claim_jobs_or_park``), progress (``report_progress_batch``), capacity
(``acquire_model_capacity_batch``), acknowledgement (``complete_jobs``), each of ``--batch`` jobs.
Writes bench/results/<timestamp>-coldstart/report.md and report.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import psycopg

from bench.databases import scratch_database
from bench.support import results_folder, write_tool_report
from bench.systems.ours import OursSystem
from devstack import paths
from devstack.cli import db_up

WORKER = "bench-coldstart"
CALLS = ("claim_jobs_or_park", "report_progress_batch", "acquire_model_capacity_batch", "complete_jobs")


def one_sequence(conn: psycopg.Connection[tuple[object, ...]], batch: int) -> dict[str, float]:
    """The worker's calls for one batch of jobs: ms per call."""
    timings: dict[str, float] = {}
    started = time.perf_counter()
    rows = conn.execute("select id from public.claim_jobs_or_park(%s, null, %s, 60, 60)", (WORKER, batch)).fetchall()
    held = [str(r[0]) for r in rows]
    timings["claim_jobs_or_park"] = time.perf_counter() - started
    reports = json.dumps([{"job_id": j, "percent": 10, "message": "started"} for j in held])
    asks = json.dumps([{"provider": "anthropic", "model": "claude-haiku-4-5", "tokens": 100}] * len(held))
    completions = json.dumps([{"job_id": j, "result": {}} for j in held])
    for name, query, args in (
        ("report_progress_batch", "select * from public.report_progress_batch(%s, %s::jsonb)", (WORKER, reports)),
        ("acquire_model_capacity_batch", "select * from public.acquire_model_capacity_batch(%s::jsonb)", (asks,)),
        ("complete_jobs", "select * from public.complete_jobs(%s, %s::jsonb)", (WORKER, completions)),
    ):
        started = time.perf_counter()
        conn.execute(query, args).fetchall()
        timings[name] = time.perf_counter() - started
    return {name: round(seconds * 1000, 2) for name, seconds in timings.items()}


def measure(connections: int, batch: int) -> list[dict[str, dict[str, float]]]:
    system = OursSystem("postgres")
    results = []
    with scratch_database("coldstart") as database:
        system.prepare(database)
        system.fill(database, connections * batch * 2)
        for _ in range(connections):
            with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
                results.append({"first": one_sequence(conn, batch), "warm": one_sequence(conn, batch)})
    return results


def render(results: list[dict[str, dict[str, float]]], settings: dict[str, int]) -> str:
    lines = [
        "# A fresh connection's first calls (`python -m bench.coldstart`)",
        "",
        f"Settings: `{json.dumps(settings)}`. Per fresh connection, the worker's four hot calls, each "
        "of one batch of jobs: first on the new backend, then again (warm). Medians over the "
        "connections, ms per call.",
        "",
        "| call | first on a new connection | warm | extra |",
        "|---|---|---|---|",
    ]
    total = 0.0
    for name in CALLS:
        first = statistics.median(r["first"][name] for r in results)
        warm = statistics.median(r["warm"][name] for r in results)
        total += first - warm
        lines.append(f"| `{name}` | {first:.1f} | {warm:.1f} | {first - warm:+.1f} |")
    lines += ["", f"Extra per new connection, the four together: {total:.1f} ms."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=5)
    parser.add_argument("--batch", type=int, default=5, help="jobs per call (1-100)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.connections <= 50 or not 1 <= args.batch <= 100:
        parser.error("--connections must be 1-50, --batch 1-100")
    db_up()
    out = results_folder(args.out, "coldstart")
    settings = {"connections": args.connections, "batch": args.batch}
    results = measure(args.connections, args.batch)
    return write_tool_report(out, {"settings": settings, "connections": results}, render(results, settings), echo=True)


if __name__ == "__main__":
    raise SystemExit(main())
