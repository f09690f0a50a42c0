"""The knobs of a chaos run (``ChaosPlan``) and its seeded fault schedule (``schedule``)."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

# Fault types, in report order. "kill" is a worker kill -9 (its point is chosen at run time:
# mid-stream, mid-upload or any running job); the others are scheduled at fixed moments.
KILL = "kill_9"
SCHEDULED = (
    "sigterm_drain",
    "postgres_restart",
    "gateway_restart",
    "realtime_drop_worker",
    "realtime_drop_clients",
    "model_429",
    "model_529",
    "model_500",
    "model_hang",
    "model_drop_mid_stream",
)
# Faults a hosted stack cannot take from us (no control of its database, gateway or Realtime).
LOCAL_ONLY = frozenset({"postgres_restart", "gateway_restart", "realtime_drop_worker", "realtime_drop_clients"})


@dataclass(frozen=True)
class ChaosPlan:
    seed: int = 20261204
    duration_s: float = 540.0  # load and faults (longer while faults remain, at most 1.5x); then the drain
    max_jobs: int = 6000  # the users stop enqueuing at this many jobs
    users: int = 40
    subscribers: int = 16  # users whose every message on jobs:<uid> is recorded
    workers: int = 3
    worker_concurrency: int = 16
    kills: int = 60  # kill -9 of a worker holding a running job, spread evenly over the run
    rounds: int = 2  # each scheduled fault type happens this many times
    lease_s: int = 6
    sweep_s: float = 2.0
    drain_timeout_s: float = 8.0  # the worker's DRAIN_TIMEOUT_SECONDS (SIGTERM → exit)
    provider_timeout_s: float = 8.0  # a hanging model answer is abandoned after this
    latency_ms: tuple[int, int] = (600, 2500)
    stream_delay_ms: int = 25
    error_429_rate: float = 0.02
    drain_cap_s: float = 120.0  # after the load: how long jobs may take to settle
    think_s: tuple[float, float] = (0.5, 2.0)

    @classmethod
    def quick(cls, seed: int) -> ChaosPlan:
        return cls(seed=seed, duration_s=75.0, max_jobs=1200, users=30, subscribers=12, kills=12, rounds=1)

    def settings(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Planned:
    at_s: float  # seconds after the load started
    fault: str


def schedule(plan: ChaosPlan, skip: frozenset[str] = frozenset()) -> list[Planned]:
    """Kills evenly spaced with jitter; each other fault ``rounds`` times at random moments in
    the middle 80 % of the run (so load is flowing before and after each). Seeded."""
    rng = random.Random(plan.seed)
    span = plan.duration_s
    out: list[Planned] = []
    gap = span * 0.9 / max(1, plan.kills)
    for i in range(plan.kills):
        out.append(Planned(round(span * 0.05 + i * gap + rng.uniform(0, gap * 0.5), 2), KILL))
    for fault in SCHEDULED:
        if fault in skip:
            continue
        for _ in range(plan.rounds):
            out.append(Planned(round(rng.uniform(span * 0.1, span * 0.9), 2), fault))
    return sorted(out, key=lambda p: p.at_s)
