"""The worker's event-loop lag as the reports put it, from the histogram its /metrics gives
(``worker_event_loop_lag_seconds``, worker/core/loop_lag.py). No plotting or load imports: the
product's unit tests check it."""

from __future__ import annotations

LAG = "worker_event_loop_lag_seconds"


def loop_lag_note(metrics: dict[str, float]) -> str | None:
    """The worker's event-loop lag histogram (a timer due every 0.1 s) in words: how many wake-ups
    came late by more than 25, 50 and 100 ms. Every job in flight waited that long too."""
    n = metrics.get(f"{LAG}_count")
    if not n:
        return None

    def over(bound: str) -> int:
        return int(n - metrics.get(f'{LAG}_bucket{{le="{bound}"}}', n))

    mean_ms = 1000 * metrics.get(f"{LAG}_sum", 0.0) / n
    return (
        f"Worker event-loop lag (a timer due every 0.1 s, {int(n)} wake-ups from start-up to the end of the "
        f"idle probe): {over('0.025')} late by more than 25 ms, {over('0.05')} by more than 50, "
        f"{over('0.1')} by more than 100; mean {mean_ms:.2f} ms. Each such stall delays every job in flight."
    )
