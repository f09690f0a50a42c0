"""The worker's event-loop lag and garbage-collection pauses as the reports put them, from the
histograms its /metrics gives (``worker_event_loop_lag_seconds``, worker/core/loop_lag.py;
``worker_gc_pause_seconds``, worker/gc_pauses.py). No plotting or load imports: the product's unit
tests check them."""

from __future__ import annotations

from worker.core.loop_lag import LOOP_LAG_INTERVAL
from worker.core.loop_lag import LOOP_LAG_METRIC as LAG
from worker.core.metrics import BUCKETS
from worker.gc_pauses import GC_PAUSE_METRIC as GC

GENERATIONS = {"0": "young", "1": "gen-1", "2": "full"}


def _late(metrics: dict[str, float], name: str, labels: str, n: float, bound: float) -> int:
    """How many of a histogram's ``n`` observations were over ``bound`` (a bucket of /metrics)."""
    le = f'le="{bound:g}"'
    return int(n - metrics.get(f"{name}_bucket{{{labels},{le}}}" if labels else f"{name}_bucket{{{le}}}", n))


def loop_lag_note(metrics: dict[str, float]) -> str | None:
    """The worker's event-loop lag histogram in words: how many wake-ups came late by more than
    25, 50 and 100 ms. Every job in flight waited that long too."""
    n = metrics.get(f"{LAG}_count")
    if not n:
        return None
    late = [_late(metrics, LAG, "", n, bound) for bound in (0.025, 0.05, 0.1)]
    mean_ms = 1000 * metrics.get(f"{LAG}_sum", 0.0) / n
    return (
        f"Worker event-loop lag (a timer due every {LOOP_LAG_INTERVAL:g} s, {int(n)} wake-ups from start-up to "
        f"the end of the idle probe): {late[0]} late by more than 25 ms, {late[1]} by more than 50, "
        f"{late[2]} by more than 100; mean {mean_ms:.2f} ms. A stall shows only when it overlaps a due "
        "wake-up, and then by its part after it (a 30 ms stall: about one time in three, 0–30 ms late)."
    )


def gc_pause_note(metrics: dict[str, float]) -> str | None:
    """The worker's garbage collections per generation: how many, their total pause, how many
    stopped it for more than 25 ms, and the bucket of the longest."""
    parts = []
    for generation, name in GENERATIONS.items():
        labels = f'generation="{generation}"'
        n = metrics.get(f"{GC}_count{{{labels}}}")
        if not n:
            continue
        longest = next((b for b in BUCKETS if metrics.get(f'{GC}_bucket{{{labels},le="{b:g}"}}', -1) >= n), None)
        bound = f"≤ {longest * 1000:g} ms" if longest is not None else f"over {BUCKETS[-1]:g} s"
        total_ms = 1000 * metrics.get(f"{GC}_sum{{{labels}}}", 0.0)
        over_25 = _late(metrics, GC, labels, n, 0.025)
        parts.append(f"{name} {int(n)} ({total_ms:.0f} ms in all, {over_25} over 25 ms, the longest {bound})")
    if not parts:
        return None
    return "Worker garbage collections (each stops every job in flight): " + "; ".join(parts) + "."
