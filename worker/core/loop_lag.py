"""How late the event loop runs a timer that is due: the time it spent on other work meanwhile
(handlers' synchronous steps, the SDKs' parsing, garbage collections). Every job in flight waits
that long, so it is the worker's own latency floor; ``/metrics`` shows it as
``worker_event_loop_lag_seconds``. A timer every 0.1 s costs ~10 wake-ups a second, and a stall
shorter than that is seen in proportion to how often it overlaps a due timer."""

from __future__ import annotations

from worker.core.metrics import Metrics
from worker.core.ports import Clock

LOOP_LAG_METRIC = "worker_event_loop_lag_seconds"
LOOP_LAG_INTERVAL = 0.1


async def watch_loop_lag(metrics: Metrics, clock: Clock, interval: float = LOOP_LAG_INTERVAL) -> None:
    """Sleep ``interval`` at a time, forever, observing how far past its due time each wake-up came."""
    while True:
        due = clock.monotonic() + interval
        await clock.sleep(interval)
        metrics.observe(LOOP_LAG_METRIC, max(0.0, clock.monotonic() - due))
