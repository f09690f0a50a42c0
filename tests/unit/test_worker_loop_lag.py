"""The event-loop lag probe: each wake-up observes how far past its due time it came."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from worker.core.loop_lag import LOOP_LAG_METRIC, watch_loop_lag
from worker.core.metrics import Metrics

pytestmark = pytest.mark.asyncio


class LateClock:
    """Each sleep returns its own lateness later than asked; the probe is stopped after the last."""

    def __init__(self, late: list[float]) -> None:
        self.late = list(late)
        self.t = 100.0
        self.asked: list[float] = []

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if not self.late:
            raise asyncio.CancelledError
        self.asked.append(seconds)
        self.t += seconds + self.late.pop(0)


async def test_each_wake_up_is_observed_by_its_lateness() -> None:
    metrics = Metrics()
    clock = LateClock([0.0, 0.003, 0.03, 0.2])
    with pytest.raises(asyncio.CancelledError):
        await watch_loop_lag(metrics, clock, interval=0.1)
    assert clock.asked == [0.1] * 4
    hist = metrics.histograms[LOOP_LAG_METRIC][()]
    assert hist.n == 4
    assert hist.total == pytest.approx(0.233)
    text = metrics.render()
    assert f'{LOOP_LAG_METRIC}_bucket{{le="0.005"}} 2' in text  # on time, and 3 ms late
    assert f'{LOOP_LAG_METRIC}_bucket{{le="0.025"}} 2' in text
    assert f'{LOOP_LAG_METRIC}_bucket{{le="0.05"}} 3' in text
    assert f'{LOOP_LAG_METRIC}_bucket{{le="0.1"}} 3' in text
    assert f'{LOOP_LAG_METRIC}_bucket{{le="0.25"}} 4' in text
    assert f"# TYPE {LOOP_LAG_METRIC} histogram" in text


async def test_a_clock_that_runs_early_counts_as_on_time() -> None:
    metrics = Metrics()
    with pytest.raises(asyncio.CancelledError):
        await watch_loop_lag(metrics, LateClock([-0.01]), interval=0.1)
    assert metrics.histograms[LOOP_LAG_METRIC][()].total == 0.0
