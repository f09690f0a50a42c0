"""Latency summaries: nearest-rank percentiles in milliseconds, the same for every system."""

from __future__ import annotations

import statistics
from datetime import datetime
from typing import Any


def percentile(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted list (p in 0..100)."""
    if not ordered:
        raise ValueError("percentile of an empty list")
    rank = max(1, int(-(-p * len(ordered) // 100)))  # ceil(p/100 * n), at least 1
    return ordered[min(rank, len(ordered)) - 1]


def summary(values_ms: list[float]) -> dict[str, float]:
    """count, p50/p90/p99, max and mean of latencies in milliseconds (rounded to 0.01 ms)."""
    if not values_ms:
        return {"count": 0}
    ordered = sorted(values_ms)
    return {
        "count": len(ordered),
        "p50_ms": round(percentile(ordered, 50), 2),
        "p90_ms": round(percentile(ordered, 90), 2),
        "p99_ms": round(percentile(ordered, 99), 2),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def epoch(value: Any) -> float:
    """A timestamptz from a row (datetime) or a JSON document (ISO text) as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()
