"""Coalesce streamed deltas so the database sees a few writes per second, not one per token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from worker.core.ports import Clock


class PartialBuffer:
    """Flush when ``min_chars`` are buffered or ``min_interval`` has passed since the last flush."""

    def __init__(
        self,
        flush: Callable[[str], Awaitable[None]],
        clock: Clock,
        *,
        min_interval: float = 0.05,
        min_chars: int = 200,
        max_chars: int = 60_000,  # report_progress takes at most 64 KiB per call
    ) -> None:
        self._flush = flush
        self.clock = clock
        self.min_interval = min_interval
        self.min_chars = min_chars
        self.max_chars = max_chars
        self._buffer = ""
        self._last = clock.monotonic()
        self.flushes = 0

    async def add(self, text: str) -> None:
        self._buffer += text
        if len(self._buffer) >= self.min_chars or self.clock.monotonic() - self._last >= self.min_interval:
            await self.flush()

    async def flush(self) -> None:
        while self._buffer:
            chunk, self._buffer = self._buffer[: self.max_chars], self._buffer[self.max_chars :]
            await self._flush(chunk)
            self.flushes += 1
        self._last = self.clock.monotonic()
