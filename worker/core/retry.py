"""A pure retry policy (exponential backoff with equal jitter), its two uses, and the spread of a
wait whose end a refusal named (``after_refusal``).

``RetryPolicy`` is arithmetic only. ``Backoff`` tracks consecutive failures of one dependency
against an injected clock (the worker's Supabase connection). ``retrying`` runs a provider call
with a few quick in-call retries for transient errors (tenacity), sleeping through the clock.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from worker.core.errors import TransientFailure
from worker.core.ports import Clock

T = TypeVar("T")
# A refusal that names its end (a 429's retry-after, a shared cooldown, a spent per-minute limit)
# turns away every call that meets it with the same end: callers that slept exactly that long
# would all come back in the same instant, a burst that can draw the next 429 and that, on the
# worker's cores, delays every other job in flight (bench/FIXES.md, "the herd at a cooldown's
# end"). Each caller waits for the end plus a random share of a window: half the wait, at least
# 0.25 s (a job that met the cooldown late still spreads) and at most 1 s.
REFUSAL_SPREAD = 0.5
REFUSAL_SPREAD_MIN = 0.25
REFUSAL_SPREAD_MAX = 1.0


def after_refusal(seconds: float, jitter: float) -> float:
    """Seconds to wait for a refusal that ends in ``seconds``, ``jitter`` in [0, 1]: never sooner
    than the refusal said, then somewhere in the window after it (see ``REFUSAL_SPREAD``)."""
    if seconds <= 0:
        return 0.0
    window = min(REFUSAL_SPREAD_MAX, max(REFUSAL_SPREAD_MIN, seconds * REFUSAL_SPREAD))
    return seconds + window * min(1.0, max(0.0, jitter))


@dataclass(frozen=True)
class RetryPolicy:
    base: float = 0.5
    factor: float = 2.0
    cap: float = 30.0

    def delay(self, failures: int, jitter: float) -> float:
        """Seconds to wait after ``failures`` consecutive failures (>= 1), ``jitter`` in [0, 1].

        Half the exponential delay is fixed and half is random ("equal jitter"): retries spread
        out without ever coming back sooner than half the nominal delay.
        """
        if failures < 1:
            return 0.0
        nominal = min(self.cap, self.base * self.factor ** (failures - 1))
        return nominal / 2 + nominal / 2 * min(1.0, max(0.0, jitter))


@dataclass
class Backoff:
    """Consecutive-failure state of one dependency, read against an injected clock."""

    policy: RetryPolicy
    clock: Clock
    rand: Callable[[], float] = field(default=random.random)
    failures: int = 0
    retry_at: float = 0.0  # monotonic seconds

    def failed(self) -> float:
        """Record a failure; returns the delay before the next try."""
        self.failures += 1
        wait = self.policy.delay(self.failures, self.rand())
        self.retry_at = self.clock.monotonic() + wait
        return wait

    def succeeded(self) -> None:
        self.failures = 0
        self.retry_at = 0.0

    def remaining(self) -> float:
        """Seconds until the next try is due (0 when it is due now)."""
        return max(0.0, self.retry_at - self.clock.monotonic())


async def retrying(
    call: Callable[[], Awaitable[T]],
    *,
    retries: int,
    policy: RetryPolicy,
    clock: Clock,
    rand: Callable[[], float] = random.random,
) -> T:
    """Run ``call``, retrying TransientFailure up to ``retries`` more times; others propagate.

    The first attempt runs bare: nearly every call succeeds at once, and a tenacity run per call
    left ~25 objects in reference cycles (its per-attempt future holds a lock and a condition) for
    the full garbage collections to find. Only a call that needs a retry builds one."""
    try:
        return await call()
    except TransientFailure:
        if retries == 0:
            raise
    await clock.sleep(policy.delay(1, rand()))

    def wait(state: RetryCallState) -> float:
        return policy.delay(state.attempt_number + 1, rand())  # attempt 1 here is the call's second

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(retries),
        wait=wait,
        retry=retry_if_exception_type(TransientFailure),
        sleep=clock.sleep,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity either returns or reraises")
