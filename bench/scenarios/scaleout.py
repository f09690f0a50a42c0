"""Scale-out: drain throughput and pickup latency with 1, 2 and 4 worker processes."""

from __future__ import annotations

from typing import Any

from bench import harness, plots
from bench.scenario import Context, ScenarioResult
from bench.systems import registry
from bench.systems.base import System

PROCESSES = (1, 2, 4)
SYSTEMS = ["ours_postgres", "ours_supabase", "pgqueuer", "procrastinate"]
DRAIN_JOBS, QUICK_DRAIN_JOBS = 10_000, 1_000
PICKUP_JOBS, QUICK_PICKUP_JOBS = 200, 40
GAP_MS = 20.0
CONCURRENCY = 20
CAP_S = 90.0

METHOD = """\
The drain and pickup measurements of scenarios 1 and 2 repeated with 1, 2 and 4 worker
processes of the same system on the same database (each process concurrency {concurrency}):
drain {drain} no-op jobs (jobs/s), then pickup of {pickup} jobs enqueued {gap:g} ms apart by
another process (commit → handler start). The machine has {cores} cores, shared by PostgreSQL,
the workers, the gateway (ours via Supabase) and the harness, so more processes than cores mostly
measure contention; the point is that adding workers neither loses nor duplicates jobs and does
not make pickup slower."""


def run(ctx: Context) -> ScenarioResult:
    import os

    drain_jobs = QUICK_DRAIN_JOBS if ctx.quick else DRAIN_JOBS
    pickup_jobs = QUICK_PICKUP_JOBS if ctx.quick else PICKUP_JOBS
    systems, problems = registry.available(SYSTEMS)

    def measure(system: System, db: str, gateway: str | None) -> dict[int, dict[str, Any]]:
        by_n: dict[int, dict[str, Any]] = {}
        for n in PROCESSES:
            print(f"  scale-out: {system.label}, {n} process(es) ...", flush=True)
            drain = harness.run_drain(
                system, db, gateway, jobs=drain_jobs, processes=n, concurrency=CONCURRENCY,
                log_dir=ctx.log_dir, cap_s=CAP_S,
            )  # fmt: skip
            pickup = harness.run_pickup(
                system, db, gateway, jobs=pickup_jobs, gap_ms=GAP_MS, processes=n,
                concurrency=CONCURRENCY, log_dir=ctx.log_dir, warmup=5,
            )  # fmt: skip
            by_n[n] = {"drain": drain, "pickup": pickup}
        return by_n

    results, failures = harness.each_system(systems, "scale", measure)
    notes = [f"{name}: not run ({why})" for name, why in problems.items()] + failures
    labels = {s.name: s.label for s in systems}
    table = []
    for name, by_n in results.items():
        for n, r in by_n.items():
            lat = r["pickup"]["latency"]
            table.append(
                {
                    "system": labels[name],
                    "processes": n,
                    "drain jobs/s": r["drain"]["jobs_per_s"],
                    "drain capped": r["drain"]["capped"],
                    "pickup p50 ms": lat.get("p50_ms"),
                    "pickup p99 ms": lat.get("p99_ms"),
                    "missing": r["pickup"]["missing"] + r["drain"]["left"],
                    "duplicates": r["pickup"]["duplicate_starts"] + r["drain"]["duplicate_starts"],
                }
            )
    for per_system in results.values():
        for measured in per_system.values():
            measured["pickup"].pop("latencies_ms", None)
    plot = plots.bars(
        ctx.out_dir / "scaleout_throughput.png",
        {f"{labels[name]} ×{n}": r["drain"]["jobs_per_s"] for name, by_n in results.items() for n, r in by_n.items()},
        f"Drain throughput by worker processes ({drain_jobs} jobs)",
        "jobs/s",
    )
    return ScenarioResult(
        name="scaleout",
        title="5. Scale-out (1, 2, 4 worker processes)",
        method=METHOD.format(
            concurrency=CONCURRENCY, drain=drain_jobs, pickup=pickup_jobs, gap=GAP_MS, cores=os.cpu_count()
        ),
        settings={"processes": list(PROCESSES), "concurrency_per_process": CONCURRENCY, "systems": SYSTEMS},
        table=table,
        data={name: {str(n): r for n, r in by_n.items()} for name, by_n in results.items()},
        plots=[plot],
        notes=notes,
    )
