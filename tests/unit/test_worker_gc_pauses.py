"""Garbage collections timed by generation into the worker's metrics, until stopped."""

from __future__ import annotations

import gc

from worker.core.metrics import Metrics
from worker.gc_pauses import GC_PAUSE_METRIC, watch_gc_pauses


def test_each_collection_is_timed_by_its_generation_until_stopped() -> None:
    metrics = Metrics()
    stop = watch_gc_pauses(metrics)
    try:
        gc.collect(0)
        gc.collect(2)
    finally:
        stop()
    timed = metrics.histograms[GC_PAUSE_METRIC]
    assert timed[(("generation", "0"),)].n >= 1
    assert timed[(("generation", "2"),)].n >= 1
    assert all(h.total >= 0 for h in timed.values())
    counts = {labels: h.n for labels, h in timed.items()}
    gc.collect()
    assert {labels: h.n for labels, h in timed.items()} == counts  # stopped: nothing more observed
    text = metrics.render()
    assert f"# TYPE {GC_PAUSE_METRIC} histogram" in text
    assert f'{GC_PAUSE_METRIC}_count{{generation="2"}}' in text
