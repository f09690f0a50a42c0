"""`python -m bench.enqueuecost [--enqueues 800] [--rounds 3] [--out DIR]`: the database's work per
`enqueue_job`, the call every job starts with, and where it goes.

No gateway and no worker process: one psycopg connection calls ``enqueue_job`` as each user, with
the GUCs PostgREST sets (SqlApi), one call after the other, with the AI load's payloads (a
50-layer rename, a design brief, an edit, an image prompt: ``bench/scenarios/ai_workload/plan.py``),
each user enqueueing each kind once (the free plan's per-minute limits never bind). Per round and
variant: the call's wall time (p50, mean) and each SQL function's own and total time per enqueue
(PostgreSQL's ``track_functions = all``).

Variants, interleaved round by round (this box's speed drifts between minutes):
  idle     no worker parked: the enqueue queues the job and announces it;
  handoff  a worker parked for hand-offs before each call (``claim_jobs_or_park(..., handoffs =>
           true, wake_via => 'realtime')``, outside the measured time), as the Supabase worker
           parks under the AI load: the enqueue's trigger claims the new job for it, in the same
           transaction, and broadcasts the hand-off;
  handoff_notify  the same, parked as the direct worker parks (``wake_via => 'notify'``);
  handoff_both    the same, parked without ``wake_via``: both messages (every worker before it).
Writes bench/results/<timestamp>-enqueuecost/report.md and report.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench.databases import scratch_database
from bench.dbcost import function_rows, own_times
from bench.scenarios.ai_workload.plan import Plan, payload_for
from bench.support import results_folder, write_tool_report
from devstack import migrate, paths
from devstack.cli import db_up
from devstack.sqlapi import SqlApi

VARIANTS = ("idle", "handoff", "handoff_notify", "handoff_both")
WAKE_VIA = {"handoff": "realtime", "handoff_notify": "notify", "handoff_both": None}
KINDS = ("rename_layers", "generate_design", "generate_edits", "generate_image")
PLAN = Plan(users=200, duration_s=60, probe_jobs=0, drain_cap_s=10, ramp_s=5)
PARK = (
    "select id from claim_jobs_or_park(worker_id => 'bench-enqueuecost', kinds => null, max_jobs => 200,"
    " lease_seconds => 60, park_seconds => 60, handoffs => true, wake_via => %(wake_via)s)"
)


def one_round(variant: str, enqueues: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    with scratch_database(f"enqueuecost_{variant}") as database:
        migrate.migrate(database, seed=True)
        with psycopg.connect(paths.admin_url(database), autocommit=True) as admin:
            admin.execute(sql.SQL("alter database {} set track_functions = 'all'").format(sql.Identifier(database)))
        with SqlApi(database) as api:  # connects after the setting, so its backend has it
            users = [api.create_user() for _ in range(-(-enqueues // len(KINDS)))]
            with psycopg.connect(paths.admin_url(database), autocommit=True) as admin:
                admin.execute("select pg_stat_reset()")  # the users' creation left out
            walls: list[float] = []
            for i in range(enqueues):
                if variant in WAKE_VIA:
                    api.as_service(PARK, {"wake_via": WAKE_VIA[variant]})
                kind = KINDS[i // len(users)]
                payload = payload_for(kind, f"e{i}", rng, PLAN)
                started = time.perf_counter()
                api.enqueue(users[i % len(users)], kind, payload)
                walls.append(time.perf_counter() - started)
        functions = own_times(database, enqueues, "self_us_per_enqueue")
        with psycopg.connect(paths.admin_url(database), autocommit=True) as admin:
            running = admin.execute("select count(*) from public.jobs where status = 'running'").fetchone()
    return {
        "variant": variant,
        "enqueues": enqueues,
        "handed_off": int(running[0]) if running else 0,
        "p50_ms": round(statistics.median(walls) * 1000, 3),
        "mean_ms": round(statistics.fmean(walls) * 1000, 3),
        "functions": functions,
    }


def render(rounds: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [
        "# Database work per enqueue (`python -m bench.enqueuecost`)",
        "",
        f"Settings: `{json.dumps(settings)}`. One connection calls `enqueue_job` as each user (the GUCs "
        "PostgREST sets), one call after the other: no gateway, no worker process.",
        "",
        "| variant | p50 ms per round | mean ms per round | median of the p50s | jobs handed off |",
        "|---|---|---|---|---|",
    ]
    for variant in VARIANTS:
        mine = [r for r in rounds if r["variant"] == variant]
        p50s = [r["p50_ms"] for r in mine]
        means = ", ".join(f"{r['mean_ms']:.2f}" for r in mine)
        handed = ", ".join(str(r["handed_off"]) for r in mine)
        p50_text = ", ".join(f"{x:.2f}" for x in p50s)
        lines.append(f"| {variant} | {p50_text} | {means} | {statistics.median(p50s):.2f} | {handed} |")
    for variant in VARIANTS:
        mine = sorted((r for r in rounds if r["variant"] == variant), key=lambda r: r["p50_ms"])
        middle = mine[len(mine) // 2]
        lines += [
            "",
            f"`{variant}`, its median round (p50 {middle['p50_ms']:.2f} ms): each SQL function's own time per "
            "enqueue, the functions it calls excluded.",
            *function_rows(middle["functions"], "self_us_per_enqueue", "enqueue"),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.enqueuecost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--enqueues", type=int, default=800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 4 <= args.enqueues <= 20_000 or not 1 <= args.rounds <= 20:
        parser.error("--enqueues must be 4-20000, --rounds 1-20")
    db_up()
    out = results_folder(args.out, "enqueuecost")
    settings = {"enqueues": args.enqueues, "rounds": args.rounds}
    rounds = []
    for n in range(args.rounds):
        for variant in VARIANTS:
            result = one_round(variant, args.enqueues, seed=n)
            print(
                f"round {n + 1} {variant}: p50 {result['p50_ms']:.2f} ms, mean {result['mean_ms']:.2f} ms", flush=True
            )
            rounds.append(result)
    return write_tool_report(out, {"settings": settings, "rounds": rounds}, render(rounds, settings))


if __name__ == "__main__":
    raise SystemExit(main())
