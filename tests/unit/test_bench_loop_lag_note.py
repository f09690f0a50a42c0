"""The AI report's note on the worker's event-loop lag, read from the histogram /metrics gives."""

from __future__ import annotations

from bench.worker_lag import gc_pause_note, loop_lag_note
from worker.core.loop_lag import LOOP_LAG_METRIC as LAG
from worker.gc_pauses import GC_PAUSE_METRIC as GC


def test_the_note_counts_the_wake_ups_past_each_bound() -> None:
    metrics = {
        f'{LAG}_bucket{{le="0.005"}}': 900.0,
        f'{LAG}_bucket{{le="0.01"}}': 950.0,
        f'{LAG}_bucket{{le="0.025"}}': 990.0,
        f'{LAG}_bucket{{le="0.05"}}': 996.0,
        f'{LAG}_bucket{{le="0.1"}}': 999.0,
        f'{LAG}_bucket{{le="+Inf"}}': 1000.0,
        f"{LAG}_sum": 2.5,
        f"{LAG}_count": 1000.0,
    }
    note = loop_lag_note(metrics)
    assert note is not None
    assert "1000 wake-ups" in note
    assert "10 late by more than 25 ms, 4 by more than 50, 1 by more than 100; mean 2.50 ms" in note


def test_no_note_without_the_histogram() -> None:
    # A worker from before the probe, or /metrics unreachable at the end of the run.
    assert loop_lag_note({}) is None
    assert loop_lag_note({f"{LAG}_count": 0.0}) is None


def test_the_gc_note_gives_each_generation_its_count_total_and_longest() -> None:
    young = 'generation="0"'
    full = 'generation="2"'
    metrics = {
        f'{GC}_bucket{{{young},le="0.005"}}': 10.0,
        f'{GC}_bucket{{{young},le="0.01"}}': 10.0,
        f'{GC}_bucket{{{young},le="0.025"}}': 11.0,
        f'{GC}_bucket{{{young},le="0.05"}}': 12.0,
        f'{GC}_bucket{{{young},le="0.1"}}': 12.0,
        f"{GC}_sum{{{young}}}": 0.075,
        f"{GC}_count{{{young}}}": 12.0,
        f'{GC}_bucket{{{full},le="0.005"}}': 1.0,
        f"{GC}_sum{{{full}}}": 0.002,
        f"{GC}_count{{{full}}}": 1.0,
    }
    note = gc_pause_note(metrics)
    assert note == (
        "Worker garbage collections (each stops every job in flight): young 12 (75 ms in all, 1 over 25 ms, "
        "the longest ≤ 50 ms); full 1 (2 ms in all, 0 over 25 ms, the longest ≤ 5 ms)."
    )
    assert gc_pause_note({}) is None
