"""Pickup latency: an idle worker, jobs enqueued 20 ms apart from another process; commit of the
enqueue → handler start, for every system."""

from __future__ import annotations

from typing import Any

from bench import harness, plots
from bench.scenario import Context, Goal, ScenarioResult
from bench.systems import registry
from bench.systems.base import System

JOBS, QUICK_JOBS = 500, 60
GAP_MS = 20.0
CONCURRENCY = 10

METHOD = """\
Each system gets its own database on the same local PostgreSQL 15 and one worker process (its
own worker, concurrency {concurrency}, one no-op task), started and idle (it printed READY once
listening). Another process then enqueues {jobs} jobs through the system's own enqueue API, one
per transaction, {gap:g} ms apart (start to start), and takes `time.time()` right after each
enqueue call returned (its transaction committed). The handler's first statement takes
`time.time()` again. Latency = handler start − enqueue commit, joined on a sequence number in
the payload; both clocks are the same machine's wall clock. The enqueue time is taken when the
call returned, a little after the commit itself, so every system's latency is understated by the
time its enqueue call needed to return (a fraction of a millisecond; it is why pgqueuer shows a
few values under 0.5 ms, and why a hand-off, which reaches the worker at the commit itself, can
show values below zero when the enqueuing process is slow to read its answer). Ten warm-up jobs
run first and are not counted. Ours hands a new job to the parked worker inside the enqueue's
transaction (the insert claims it for that worker, and the wake-up carries the row), so part of
its pickup moved into the enqueue call: "enqueue call" is the call's own time and "call start →
handler" the whole path, for every system (the same enqueuer process; ours calls `enqueue_job`
as the user over psycopg, with the JWT claims set per call as PostgREST does). *ours (Supabase)*
goes through the devstack gateway (a separate process): the hand-off arrives on the worker's
private Realtime topic; *ours (direct Postgres)* by NOTIFY on its own channel."""


def run(ctx: Context) -> ScenarioResult:
    jobs = QUICK_JOBS if ctx.quick else JOBS
    systems, problems = registry.available(list(ctx.systems) if ctx.systems else None)
    settings: dict[str, Any] = {"jobs": jobs, "gap_ms": GAP_MS, "worker_processes": 1}
    settings.update({s.name: s.settings(CONCURRENCY) for s in systems})

    def measure(system: System, db: str, gateway: str | None) -> dict[str, Any]:
        print(f"  pickup: {system.label} ...", flush=True)
        return harness.run_pickup(
            system, db, gateway, jobs=jobs, gap_ms=GAP_MS, processes=1, concurrency=CONCURRENCY, log_dir=ctx.log_dir
        )

    results, failures = harness.each_system(systems, "pickup", measure)
    notes = [f"{name}: not run ({why})" for name, why in problems.items()] + failures
    labels = {s.name: s.label for s in systems}
    table = [_row(labels[name], r) for name, r in results.items()]
    plot = plots.latency_cdf(
        ctx.out_dir / "pickup_cdf.png",
        {labels[name]: r["latencies_ms"] for name, r in results.items()},
        f"Pickup latency: enqueue commit → handler start ({jobs} jobs, {GAP_MS:g} ms apart)",
    )
    return ScenarioResult(
        name="pickup",
        title="1. Pickup latency (idle worker)",
        method=METHOD.format(concurrency=CONCURRENCY, jobs=jobs, gap=GAP_MS),
        settings=settings,
        table=table,
        data=results,
        plots=[plot],
        goals=goals(results),
        notes=notes,
    )


def _row(label: str, r: dict[str, Any]) -> dict[str, Any]:
    lat = r["latency"]
    return {
        "system": label,
        "jobs": lat.get("count", 0),
        "p50 ms": lat.get("p50_ms"),
        "p90 ms": lat.get("p90_ms"),
        "p99 ms": lat.get("p99_ms"),
        "max ms": lat.get("max_ms"),
        "enqueue call p50 ms": r.get("enqueue_call", {}).get("p50_ms"),
        "call start → handler p50 / p99 ms": _pair(r.get("from_call_start", {})),
        "missing": r["missing"],
        "duplicates": r["duplicate_starts"],
    }


def _pair(lat: dict[str, Any]) -> str | None:
    return f"{lat['p50_ms']} / {lat['p99_ms']}" if lat.get("count") else None


def goals(results: dict[str, Any]) -> list[Goal]:
    out: list[Goal] = []
    supa = results.get("ours_supabase", {}).get("latency", {})
    if supa.get("count"):
        p50, p99 = supa["p50_ms"], supa["p99_ms"]
        out.append(Goal("pickup via Supabase", "p50 ≤ 10 ms and p99 ≤ 30 ms", f"p50 {p50} ms, p99 {p99} ms",
                        p50 <= 10 and p99 <= 30))  # fmt: skip
    direct = results.get("ours_postgres", {}).get("latency", {})
    pgq = results.get("pgqueuer", {}).get("latency", {})
    if direct.get("count") and pgq.get("count"):
        r50, r99 = direct["p50_ms"] / pgq["p50_ms"], direct["p99_ms"] / pgq["p99_ms"]
        out.append(Goal("direct adapter pickup vs pgqueuer", "within 1.2× of pgqueuer (p50 and p99)",
                        f"p50 {direct['p50_ms']} vs {pgq['p50_ms']} ms ({r50:.2f}×), "
                        f"p99 {direct['p99_ms']} vs {pgq['p99_ms']} ms ({r99:.2f}×)",
                        r50 <= 1.2 and r99 <= 1.2))  # fmt: skip
    return out
