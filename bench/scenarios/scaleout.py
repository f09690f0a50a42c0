"""Scale-out: drain throughput and pickup latency with 1, 2 and 4 worker processes, and claims
per job (the thundering herd) with 1, 4 and 16 workers."""

from __future__ import annotations

from typing import Any

from bench import harness, plots
from bench.scenario import Context, Goal, ScenarioResult
from bench.systems import registry
from bench.systems.base import System

PROCESSES = (1, 2, 4)
HERD = 16  # worker instances sharing one process (ours only): claims per job with many workers
HERD_KEY = f"{HERD} in 1"
CLAIMS_GOAL = 1.5  # issue 14: claims per job at 4 and 16 workers
PICKUP_P99_GOAL_MS = 30.0  # issue 14: pickup p99 via Supabase at 4 processes
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
not make pickup slower.

Claims per job (ours): the claim_jobs calls all workers made after they were ready, divided by
the jobs of the pickup run (warm-up included), counted by each worker (its claim histogram). With
{herd} workers, {herd} Worker instances share one process, each with its own connections and
wake-up channel. Before routed wake-ups every idle worker claimed on every insert (N per job).
Handed per job (ours): the jobs the enqueue's own transaction claimed for a parked worker and sent
in its wake-up (hand-offs); the worker starts them without a claim, and claims after the message
only when the database asks (the hand-off took its entry's last free slot, it parked more than two
seconds ago, or a due job of the kind was left queued); those calls are in claims/job. The goal
counts both: a hand-off is a claim."""


def run(ctx: Context) -> ScenarioResult:
    import os

    drain_jobs = QUICK_DRAIN_JOBS if ctx.quick else DRAIN_JOBS
    pickup_jobs = QUICK_PICKUP_JOBS if ctx.quick else PICKUP_JOBS
    systems, problems = registry.available(SYSTEMS)

    def measure(system: System, db: str, gateway: str | None) -> dict[str, dict[str, Any]]:
        by_n: dict[str, dict[str, Any]] = {}
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
            by_n[str(n)] = {"drain": drain, "pickup": pickup}
        if system.name.startswith("ours_"):
            print(f"  scale-out: {system.label}, {HERD} instances in one process ...", flush=True)
            pickup = harness.run_pickup(
                system, db, gateway, jobs=pickup_jobs, gap_ms=GAP_MS, processes=1,
                concurrency=CONCURRENCY, log_dir=ctx.log_dir, warmup=5, instances=HERD,
            )  # fmt: skip
            by_n[HERD_KEY] = {"drain": None, "pickup": pickup}
        return by_n

    results, failures = harness.each_system(systems, "scale", measure)
    notes = [f"{name}: not run ({why})" for name, why in problems.items()] + failures
    labels = {s.name: s.label for s in systems}
    table = []
    for name, by_n in results.items():
        for n, r in by_n.items():
            lat = r["pickup"]["latency"]
            drain = r["drain"] or {"jobs_per_s": None, "capped": None, "left": 0, "duplicate_starts": 0}
            table.append(
                {
                    "system": labels[name],
                    "processes": n,
                    "drain jobs/s": drain["jobs_per_s"],
                    "drain capped": drain["capped"],
                    "pickup p50 ms": lat.get("p50_ms"),
                    "pickup p99 ms": lat.get("p99_ms"),
                    "claims/job": r["pickup"].get("claims_per_job"),
                    "handed/job": r["pickup"].get("handed_per_job"),
                    "missing": r["pickup"]["missing"] + drain["left"],
                    "duplicates": r["pickup"]["duplicate_starts"] + drain["duplicate_starts"],
                }
            )
    for per_system in results.values():
        for measured in per_system.values():
            measured["pickup"].pop("latencies_ms", None)
    plot = plots.bars(
        ctx.out_dir / "scaleout_throughput.png",
        {
            f"{labels[name]} ×{n}": r["drain"]["jobs_per_s"]
            for name, by_n in results.items()
            for n, r in by_n.items()
            if r["drain"] is not None
        },
        f"Drain throughput by worker processes ({drain_jobs} jobs)",
        "jobs/s",
    )
    return ScenarioResult(
        name="scaleout",
        title=f"5. Scale-out (1, 2, 4 worker processes; claims per job with up to {HERD} workers)",
        method=METHOD.format(
            concurrency=CONCURRENCY, drain=drain_jobs, pickup=pickup_jobs, gap=GAP_MS, cores=os.cpu_count(), herd=HERD
        ),
        settings={
            "processes": list(PROCESSES),
            "herd_instances_in_one_process": HERD,
            "concurrency_per_worker": CONCURRENCY,
            "systems": SYSTEMS,
        },
        table=table,
        data={name: dict(by_n) for name, by_n in results.items()},
        plots=[plot],
        goals=goals(results),
        notes=notes,
    )


def _claims(results: dict[str, dict[str, dict[str, Any]]], system: str, key: str) -> float | None:
    """Claims per job, a hand-off's claim (made in the enqueue for a worker) counted as one."""
    measured = results.get(system, {}).get(key)
    if measured is None or (calls := measured["pickup"].get("claims_per_job")) is None:
        return None
    return round(float(calls) + float(measured["pickup"].get("handed_per_job") or 0), 3)


def goals(results: dict[str, dict[str, dict[str, Any]]]) -> list[Goal]:
    """Issue 14's herd goals: claims per job at 4 and 16 workers (both adapters), pickup p99."""
    out: list[Goal] = []
    for workers, key in ((4, "4"), (HERD, HERD_KEY)):
        per = {s: _claims(results, s, key) for s in ("ours_postgres", "ours_supabase")}
        known = [v for v in per.values() if v is not None]
        out.append(
            Goal(
                f"claims per job (worker calls + hand-offs), {workers} workers",
                f"≤ {CLAIMS_GOAL} (Supabase and direct)",
                ", ".join(f"{s.removeprefix('ours_')} {'not run' if v is None else v}" for s, v in per.items()),
                None if len(known) < len(per) else all(v <= CLAIMS_GOAL for v in known),
            )
        )
    four = results.get("ours_supabase", {}).get("4")
    p99 = None if four is None else four["pickup"]["latency"].get("p99_ms")
    out.append(
        Goal(
            "pickup p99 via Supabase, 4 processes",
            f"≤ {PICKUP_P99_GOAL_MS:g} ms",
            "not run" if p99 is None else f"{p99} ms",
            None if p99 is None else p99 <= PICKUP_P99_GOAL_MS,
        )
    )
    return out
