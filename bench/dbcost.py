"""`python -m bench.dbcost [--jobs 10000] [--batch 20] [--rounds 3] [--out DIR]`: the database's own
work per job on the worker's hot path, and what the product's per-job features cost there.

No worker and no Python in the loop beyond one psycopg connection: a queue of ``--jobs`` no-op jobs
(the drain scenario's fill, 50 users) is drained by ``complete_and_claim`` calls of ``--batch``
jobs, one after the other, exactly the statement a draining worker sends. Per round and variant:
jobs/s, the call's wall time, and each SQL function's own time per job (PostgreSQL's
``track_functions = all``; a function's time excludes the functions it calls).

Variants, interleaved round by round (this box's speed drifts between minutes):
  shipped       the migrations as they are;
  no_broadcast  ``realtime.send`` and ``private.send_messages`` no-ops (no Realtime message), which
                prices a feature the product keeps: a measurement, not an option.
Three baselines run beside them (``bench/dbfloor.py``): ``bare_updates``, the two row updates of a
job as plain statements on our table with every trigger off; ``split_rows``, the same with the
queue's state moved to a narrow table of its own so that the kept row's updates can be HOT (a
design not built); and ``pgqueuer``, pgqueuer's own dequeue and acknowledgement statements on its
schema. Writes
bench/results/<timestamp>-dbcost/report.md and report.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import dbfloor
from bench.databases import scratch_database
from bench.support import results_folder, write_tool_report
from bench.systems.ours import OursSystem, without
from devstack import paths
from devstack.cli import db_up

VARIANTS: dict[str, list[str]] = {
    "shipped": [],
    "no_broadcast": ["broadcasts"],
}
BASELINES = {"bare_updates": dbfloor.bare_updates, "split_rows": dbfloor.split_rows, "pgqueuer": dbfloor.pgqueuer}
WORKER = "bench-dbcost"
FUNCTIONS = """
select n.nspname || '.' || f.funcname as function, f.calls, f.self_time
from pg_stat_user_functions f join pg_namespace n on n.nspname = f.schemaname
order by f.self_time desc
"""


def own_times(database: str, per: int, key: str) -> list[dict[str, Any]]:
    """Each SQL function's calls and own µs per unit of work (``per`` units, under ``key``), read
    once the measured backend has exited (it publishes its function statistics as it does)."""
    time.sleep(0.6)
    with psycopg.connect(paths.admin_url(database), autocommit=True) as admin:
        return [
            {"function": f, "calls": int(c), key: round(float(t) * 1000 / max(1, per), 1)}
            for f, c, t in admin.execute(FUNCTIONS).fetchall()
        ]


def function_rows(functions: list[dict[str, Any]], key: str, unit: str) -> list[str]:
    """The markdown table of the 15 functions with the most own time."""
    header = ["", f"| function | calls | own µs per {unit} |", "|---|---|---|"]
    return header + [f"| `{f['function']}` | {f['calls']} | {f[key]} |" for f in functions[:15]]


def drain(database: str, batch: int) -> tuple[int, int, float]:
    """Claim and acknowledge until the queue is empty: (jobs, calls, seconds)."""
    with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
        held = [
            str(r[0])
            for r in conn.execute(
                "select id from public.claim_jobs_or_park(%s, null, %s, 60, 60)", (WORKER, batch)
            ).fetchall()
        ]
        jobs, calls, started = 0, 1, time.perf_counter()
        while held:
            completions = json.dumps([{"job_id": j, "result": {}} for j in held])
            rows = conn.execute(
                "select entry, job_id from public.complete_and_claim(%s, %s::jsonb, null, %s, 60)",
                (WORKER, completions, batch),
            ).fetchall()
            calls += 1
            jobs += len(held)
            held = [str(r[1]) for r in rows if r[0] == "claimed"]
        return jobs, calls, time.perf_counter() - started


def one_round(variant: str, jobs: int, batch: int) -> dict[str, Any]:
    if variant in BASELINES:
        done, calls, seconds = BASELINES[variant](jobs, batch)
        return summary(variant, done, calls, seconds, [])
    system = OursSystem("postgres")
    with scratch_database(f"dbcost_{variant}") as database:
        system.prepare(database)
        without(database, VARIANTS[variant])
        system.fill(database, jobs)
        with psycopg.connect(paths.admin_url(database), autocommit=True) as admin:
            admin.execute(sql.SQL("alter database {} set track_functions = 'all'").format(sql.Identifier(database)))
            admin.execute("select pg_stat_reset()")
        done, calls, seconds = drain(database, batch)
        functions = own_times(database, done, "self_us_per_job")
    return summary(variant, done, calls, seconds, functions)


def summary(variant: str, done: int, calls: int, seconds: float, functions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "variant": variant,
        "jobs": done,
        "calls": calls,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(done / seconds, 1),
        "ms_per_call": round(seconds * 1000 / calls, 2),
        "functions": functions,
    }


def render(rounds: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [
        "# Database work per job (`python -m bench.dbcost`)",
        "",
        f"Settings: `{json.dumps(settings)}`. One connection drains the queue with `complete_and_claim` "
        "calls, one after the other: no worker, so this is the database's side of a job alone. "
        "`bare_updates`: the same two row updates per job as plain statements on our table, every "
        "trigger off; `split_rows`: the queue's state in a narrow table of its own and the kept row "
        "without the indexes that name it (HOT updates; a design not built); `pgqueuer`: its own "
        "dequeue and acknowledgement statements on its schema (`bench/dbfloor.py`).",
        "",
        "| variant | jobs/s per round | median jobs/s | median µs of wall time per job |",
        "|---|---|---|---|",
    ]
    for variant in [*VARIANTS, *BASELINES]:
        rates = [r["jobs_per_s"] for r in rounds if r["variant"] == variant]
        median = statistics.median(rates)
        lines.append(f"| {variant} | {', '.join(f'{x:,.0f}' for x in rates)} | {median:,.0f} | {1e6 / median:,.0f} |")
    shipped = sorted((r for r in rounds if r["variant"] == "shipped"), key=lambda r: r["jobs_per_s"])
    middle = shipped[len(shipped) // 2]
    lines += [
        "",
        f"Where the shipped variant's time goes (its median round, {middle['jobs_per_s']:,.0f} jobs/s): "
        "each SQL function's own time per job, the functions it calls excluded; the rest of the wall "
        "time is the statements' parse/plan/execute outside functions, the round trip and the client.",
        *function_rows(middle["functions"], "self_us_per_job", "job"),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbcost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=20, help="jobs per complete_and_claim call (1-1000)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.batch <= 1000 or not 1 <= args.jobs <= 1_000_000 or not 1 <= args.rounds <= 20:
        parser.error("--batch must be 1-1000, --jobs 1-1000000, --rounds 1-20")
    db_up()
    out = results_folder(args.out, "dbcost")
    settings = {"jobs": args.jobs, "batch": args.batch, "rounds": args.rounds}
    rounds = []
    for n in range(args.rounds):
        for variant in [*VARIANTS, *BASELINES]:
            result = one_round(variant, args.jobs, args.batch)
            print(f"round {n + 1} {variant}: {result['jobs_per_s']:,.0f} jobs/s", flush=True)
            rounds.append(result)
    return write_tool_report(out, {"settings": settings, "rounds": rounds}, render(rounds, settings))


if __name__ == "__main__":
    raise SystemExit(main())
