"""Drain throughput: a queue of 20,000 no-op jobs, one worker process, jobs/s, every system."""

from __future__ import annotations

from typing import Any

from bench import harness, plots
from bench.scenario import Context, Goal, ScenarioResult
from bench.systems import registry
from bench.systems.base import System

JOBS, QUICK_JOBS = 20_000, 2_000
CONCURRENCY = 20
CAP_S = 150.0  # per system: a run that is not done by then reports what it finished

METHOD = """\
Each system's queue (own database, same PostgreSQL) is filled with {jobs} no-op jobs in bulk
before its worker starts (ours: one INSERT … SELECT over 50 users; procrastinate and pgqueuer:
their own batch enqueue). Then one worker process starts (concurrency {concurrency}). Throughput
= jobs finished / (moment the harness first sees no unfinished job − first handler start); the
harness checks every 20 ms, so the end is at most 20 ms late, with a statement that reads the first
entry of each system's partial indexes of unfinished jobs (a count read the whole table: 27 % of a
core in our drain, 13 % in pgqueuer's). "Finished" means acknowledged in
the database (ours: `succeeded`; procrastinate: `succeeded`; pgqueuer: removed from its queue
table). Each run is capped at {cap:.0f} s; a capped run reports what it finished. Worker CPU
ms/job: user + system CPU time of the worker process (/proc/<pid>/stat) from the first count of
unfinished jobs (read every 0.5 s) that sees a job finished to the moment none is left, divided
by the jobs finished in between (start-up and imports left out)."""


def run(ctx: Context) -> ScenarioResult:
    jobs = QUICK_JOBS if ctx.quick else JOBS
    systems, problems = registry.available(list(ctx.systems) if ctx.systems else None)
    settings: dict[str, Any] = {"jobs": jobs, "worker_processes": 1}
    settings.update({s.name: s.settings(CONCURRENCY) for s in systems})

    def measure(system: System, db: str, gateway: str | None) -> dict[str, Any]:
        print(f"  drain: {system.label} ...", flush=True)
        return harness.run_drain(
            system, db, gateway, jobs=jobs, processes=1, concurrency=CONCURRENCY, log_dir=ctx.log_dir, cap_s=CAP_S
        )

    results, failures = harness.each_system(systems, "drain", measure)
    notes = [f"{name}: not run ({why})" for name, why in problems.items()] + failures
    labels = {s.name: s.label for s in systems}
    table = [
        {
            "system": labels[name],
            "jobs done": r["done"],
            "seconds": r["seconds"],
            "jobs/s": r["jobs_per_s"],
            "duplicates": r["duplicate_starts"],
            "capped": r["capped"],
            "worker CPU ms/job": r.get("worker_cpu_ms_per_job"),
            "worker RSS MB": max(r["worker_rss_mb"], default=None),
        }
        for name, r in results.items()
    ]
    plot = plots.bars(
        ctx.out_dir / "drain_throughput.png",
        {labels[name]: r["jobs_per_s"] for name, r in results.items()},
        f"Drain throughput: {jobs} no-op jobs, one worker process",
        "jobs/s",
    )
    out_goals: list[Goal] = []
    direct, pgq = results.get("ours_postgres"), results.get("pgqueuer")
    if direct and pgq:
        out_goals.append(
            Goal(
                "direct adapter drain rate vs pgqueuer",
                "at least pgqueuer's jobs/s",
                f"{direct['jobs_per_s']} vs {pgq['jobs_per_s']} jobs/s",
                direct["jobs_per_s"] >= pgq["jobs_per_s"],
            )
        )
    return ScenarioResult(
        name="drain",
        title="2. Drain throughput",
        method=METHOD.format(jobs=jobs, concurrency=CONCURRENCY, cap=CAP_S),
        settings=settings,
        table=table,
        data=results,
        plots=[plot],
        goals=out_goals,
        notes=notes,
    )
