"""The pure retry policy, the Backoff state against an injected clock, and in-call retries."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from worker.core.errors import PermanentFailure, TransientFailure
from worker.core.retry import Backoff, RetryPolicy, after_refusal, retrying


class FakeClock:
    def __init__(self) -> None:
        self.mono = 1000.0
        self.wall = datetime(2026, 11, 23, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.mono - 1000.0)

    def monotonic(self) -> float:
        return self.mono

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.mono += seconds


def test_delay_grows_exponentially_with_equal_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base=1.0, factor=2.0, cap=10.0)
    assert [policy.delay(n, 1.0) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    assert [policy.delay(n, 0.0) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 5.0]
    assert policy.delay(3, 0.5) == 3.0
    assert policy.delay(0, 1.0) == 0.0
    assert policy.delay(2, 7.0) == 2.0  # jitter is clamped to [0, 1]


def test_a_wait_for_a_named_end_is_never_shorter_and_spread_over_a_window_after_it() -> None:
    assert after_refusal(1.0, 0.0) == 1.0
    assert after_refusal(1.0, 0.5) == 1.25
    assert after_refusal(1.0, 1.0) == 1.5  # half the wait
    assert after_refusal(0.1, 1.0) == 0.35  # at least a quarter second
    assert after_refusal(20.0, 1.0) == 21.0  # at most a second
    assert after_refusal(1.0, 7.0) == 1.5 and after_refusal(1.0, -1.0) == 1.0  # jitter clamped to [0, 1]
    assert after_refusal(-2.0, 1.0) == 0.0 and after_refusal(0.0, 1.0) == 0.0  # nothing to wait for


def test_backoff_counts_failures_against_the_clock_and_resets() -> None:
    clock = FakeClock()
    backoff = Backoff(RetryPolicy(base=1.0, cap=4.0), clock, rand=lambda: 1.0)
    assert backoff.remaining() == 0
    assert backoff.failed() == 1.0
    assert backoff.remaining() == 1.0
    clock.mono += 0.25
    assert backoff.remaining() == 0.75
    assert backoff.failed() == 2.0
    assert backoff.failed() == 4.0
    assert backoff.failed() == 4.0  # capped
    clock.mono += 10
    assert backoff.remaining() == 0
    backoff.succeeded()
    assert backoff.failures == 0 and backoff.failed() == 1.0


async def test_retrying_retries_transient_failures_with_policy_delays() -> None:
    clock = FakeClock()
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise TransientFailure("503")
        return "ok"

    result = await retrying(flaky, retries=2, policy=RetryPolicy(base=1.0), clock=clock, rand=lambda: 1.0)
    assert (result, calls, clock.slept) == ("ok", 3, [1.0, 2.0])


async def test_retrying_gives_up_after_the_budget_and_reraises() -> None:
    clock = FakeClock()

    async def down() -> str:
        raise TransientFailure("503")

    with pytest.raises(TransientFailure):
        await retrying(down, retries=2, policy=RetryPolicy(base=1.0), clock=clock, rand=lambda: 0.0)
    assert clock.slept == [0.5, 1.0]


async def test_retrying_does_not_retry_permanent_failures() -> None:
    clock = FakeClock()
    calls = 0

    async def bad() -> str:
        nonlocal calls
        calls += 1
        raise PermanentFailure("400")

    with pytest.raises(PermanentFailure):
        await retrying(bad, retries=5, policy=RetryPolicy(), clock=clock)
    assert calls == 1 and clock.slept == []


async def test_a_call_that_succeeds_at_once_leaves_no_reference_cycles() -> None:
    async def ok() -> str:
        return "ok"

    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            assert await retrying(ok, retries=2, policy=RetryPolicy(), clock=FakeClock()) == "ok"
        assert gc.collect() == 0  # a tenacity run per call left ~25 objects in cycles
    finally:
        gc.enable()


async def test_without_retries_a_transient_failure_propagates_at_once() -> None:
    clock = FakeClock()

    async def down() -> str:
        raise TransientFailure("503")

    with pytest.raises(TransientFailure):
        await retrying(down, retries=0, policy=RetryPolicy(), clock=clock)
    assert clock.slept == []
