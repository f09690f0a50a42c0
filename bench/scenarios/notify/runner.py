"""Client notification through the harness: each system with the Notifying capability gets a
scratch database (prepared with ``prepare_notifications``) and a gateway from
``harness.each_system``; then two subscribers join the user's topic, the driver makes the status
changes, and the receipts are joined to the commits."""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass
from typing import Any

from bench import databases, harness
from bench.scenario import Context, ScenarioResult
from bench.scenarios.notify import clients
from bench.scenarios.notify.drive import Change, WalSamples, drive, wal_samples
from bench.scenarios.notify.plan import (
    DRAIN_S,
    GAP_MS,
    JOBS_FULL,
    JOBS_QUICK,
    KIND,
    READY_TIMEOUT_S,
    SEED,
    SYSTEMS,
    WARMUP_JOBS,
)
from bench.scenarios.notify.report import analyse, build_result
from bench.systems import registry
from bench.systems.capabilities import Notifying


@dataclass
class Measured:
    changes: list[Change]
    results: dict[str, dict[str, Any]]  # per client: analyse()
    metas: dict[str, dict[str, Any]]
    protocols: dict[str, str]
    exits: dict[str, str]
    skipped: dict[str, str]
    job_events: int
    samples: WalSamples
    drive_s: float


def run(ctx: Context) -> ScenarioResult:
    jobs = JOBS_QUICK if ctx.quick else JOBS_FULL
    started = time.monotonic()
    loaded, problems = registry.available(SYSTEMS)
    systems = [s for s in loaded if isinstance(s, Notifying)]
    notes = [f"{name}: not run ({why})" for name, why in problems.items()]
    notes += [f"{s.name}: not run (no client notifications)" for s in loaded if not isinstance(s, Notifying)]

    def measure(system: Notifying, database: str, gateway: str | None) -> Measured:
        assert gateway is not None  # each_system(gateway=True)
        return _measure(ctx, system, database, gateway, jobs)

    measured, failures = harness.each_system(
        systems, "notify", measure, prepare=lambda s, db: s.prepare_notifications(db, KIND), gateway=True
    )
    m: Measured | None = next(iter(measured.values()), None)  # one system: the Supabase path
    if m is None:
        raise RuntimeError("; ".join(notes + failures) or "no system with client notifications")
    result = build_result(
        ctx, jobs, m.changes, m.results, m.metas, m.protocols, m.exits, m.skipped, m.job_events, m.samples,
        m.drive_s, time.monotonic() - started,
    )  # fmt: skip
    result.notes += notes + failures
    return result


def _measure(ctx: Context, system: Notifying, database: str, gateway: str, jobs: int) -> Measured:
    total = 3 * (WARMUP_JOBS + jobs)
    work = ctx.log_dir / "notify"
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    # Upper bound of a subscriber's life, whatever happens to the harness.
    max_seconds = 60 + total * (GAP_MS[1] / 1000 + 0.05)
    uid = system.create_users(database, 1)[0]
    env = {
        **os.environ,
        "NOTIFY_ANON_KEY": system.anon_key(database),
        "NOTIFY_ACCESS_TOKEN": system.user_token(database, uid),
    }
    topic = system.status_topic(uid)
    common = ["--url", gateway, "--topic", topic, "--expect", str(total), "--max-seconds", f"{max_seconds:.0f}"]
    specs, skipped = clients.specs()
    subscribers: list[clients.Subscriber] = []
    with system.lifecycle(database, uid) as lifecycle, wal_samples(database) as samples:
        try:
            for label, protocol, argv in specs:
                out = work / f"{label}.jsonl"
                out.unlink(missing_ok=True)
                argv = [*argv, *common, "--out", str(out)]
                subscribers.append(clients.start(label, protocol, argv, env, out, ctx.log_dir))
            ready_by = time.monotonic() + READY_TIMEOUT_S
            for sub in subscribers:
                sub.wait_subscribed(ready_by)
            drive_started = time.monotonic()
            changes = drive(lifecycle, jobs, rng, samples)
            samples.take(len(changes))
            drive_s = time.monotonic() - drive_started
            drain_by = time.monotonic() + DRAIN_S
            exits = {sub.label: sub.stop(drain_by) for sub in subscribers}
        finally:
            for sub in subscribers:
                sub.kill()
    return Measured(
        changes=changes,
        results={sub.label: analyse(changes, sub.records()) for sub in subscribers},
        metas={sub.label: sub.meta() for sub in subscribers},
        protocols={sub.label: sub.protocol for sub in subscribers},
        exits=exits,
        skipped=skipped,
        job_events=databases.count(database, "select count(*) from public.job_events"),
        samples=samples,
        drive_s=drive_s,
    )
