"""A provider-style rate limit for the stand-ins: ``rate_limit_per_minute`` requests per
provider/model, enforced as a token bucket (capacity = the limit, refilled continuously), which is
how Anthropic documents its own limits. A request finding the bucket empty gets a 429 whose
``retry-after`` (whole seconds, rounded up) says when one request's worth is back."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    per_minute: int | None = None
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)  # (left, at)

    def configure(self, per_minute: int | None) -> None:
        self.per_minute = per_minute or None
        self._buckets.clear()  # a new limit starts full, like a fresh API key

    def take(self, provider: str, model: str | None) -> float | None:
        """None when the request may pass; else the seconds to put in ``retry-after``."""
        if self.per_minute is None:
            return None
        key = (provider, model or "")
        now = self.clock()
        left, at = self._buckets.get(key, (float(self.per_minute), now))
        left = min(float(self.per_minute), left + (now - at) * self.per_minute / 60)
        if left >= 1:
            self._buckets[key] = (left - 1, now)
            return None
        self._buckets[key] = (left, now)
        return float(max(1, math.ceil((1 - left) * 60 / self.per_minute)))
