"""Every garbage collection's pause, by generation, on ``/metrics`` (``worker_gc_pause_seconds``).

A collection stops the event loop, so every job in flight waits for it; a young one walks the
objects of every job started since the last one (23–33 ms with 200 AI jobs in flight on the bench
machine, a few times a minute). The loop-lag probe (``core/loop_lag.py``) sees such a stall only
when it overlaps a due wake-up; these callbacks time each one. They run twice per collection, a
few times a minute under load."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from worker.core.metrics import Metrics

GC_PAUSE_METRIC = "worker_gc_pause_seconds"
_GENERATIONS = ("0", "1", "2")


def watch_gc_pauses(metrics: Metrics) -> Callable[[], None]:
    """Time every collection into ``metrics`` from now on; returns what stops it."""
    started = 0.0

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        else:
            metrics.observe(GC_PAUSE_METRIC, time.perf_counter() - started, generation=_GENERATIONS[info["generation"]])

    gc.callbacks.append(on_collection)
    return lambda: gc.callbacks.remove(on_collection)
