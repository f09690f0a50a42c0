"""The worker's event-loop lag and garbage-collection pauses as the reports put them, from the
histograms its /metrics gives (``worker_event_loop_lag_seconds``, worker/core/loop_lag.py;
``worker_gc_pause_seconds``, worker/gc_pauses.py). No plotting or load imports: the product's unit
tests check them."""

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
        f"{over('0.1')} by more than 100; mean {mean_ms:.2f} ms. A stall shows only when it overlaps a due "
        "wake-up, and then by its part after it (a 30 ms stall: about one time in three, 0–30 ms late)."
    )


GC = "worker_gc_pause_seconds"
BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1")
GENERATIONS = {"0": "young", "1": "gen-1", "2": "full"}


def gc_pause_note(metrics: dict[str, float]) -> str | None:
    """The worker's garbage collections per generation: how many, their total pause, how many
    stopped it for more than 25 ms, and the bucket of the longest."""
    parts = []
    for generation, name in GENERATIONS.items():
        labels = f'generation="{generation}"'
        n = metrics.get(f"{GC}_count{{{labels}}}")
        if not n:
            continue
        over_25 = int(n - metrics.get(f'{GC}_bucket{{{labels},le="0.025"}}', n))
        longest = next((b for b in BOUNDS if metrics.get(f'{GC}_bucket{{{labels},le="{b}"}}', -1) >= n), None)
        bound = f"≤ {float(longest) * 1000:g} ms" if longest else "over 1 s"
        total_ms = 1000 * metrics.get(f"{GC}_sum{{{labels}}}", 0.0)
        parts.append(f"{name} {int(n)} ({total_ms:.0f} ms in all, {over_25} over 25 ms, the longest {bound})")
    if not parts:
        return None
    return "Worker garbage collections (each stops every job in flight): " + "; ".join(parts) + "."
