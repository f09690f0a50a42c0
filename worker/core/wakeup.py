"""When to try claiming: pushed now, at the next known due time, or at the safety sweep."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from typing import Literal

from worker.core.ports import Clock

WakeReason = Literal["push", "due", "timeout"]


class WakeSignal:
    """An event plus a timer on the earliest known ``run_at``.

    ``push()`` wakes the claim loop at once (Realtime insert, a freed slot, shutdown);
    ``due(at)`` arms the timer for a job that becomes due later (retry, deferral, scheduled).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._event = asyncio.Event()  # set by push() and by an earlier due time
        self._pushed = False
        self._due: datetime | None = None

    def push(self) -> None:
        self._pushed = True
        self._event.set()

    def due(self, at: datetime) -> None:
        if at <= self.clock.now():
            self.push()
        elif self._due is None or at < self._due:
            self._due = at
            # A wait in progress computed its timeout without this time: let it recompute. (A
            # parked worker gets no push when its job is deferred or a hint names a later time.)
            self._event.set()

    def claiming(self) -> None:
        """A claim is being sent now: it takes every job due by now, so a timer for such a time
        has nothing left to do (else a claim just made would be followed by one for nothing)."""
        if self._due is not None and self._due <= self.clock.now():
            self._due = None

    @property
    def next_due(self) -> datetime | None:
        return self._due

    async def wait(self, max_seconds: float) -> WakeReason:
        """Until pushed, the timer falls due, or ``max_seconds`` pass, whichever is first."""
        deadline = self.clock.monotonic() + max(0.0, max_seconds)
        while True:
            timeout = max(0.0, deadline - self.clock.monotonic())
            due_in: float | None = None
            if self._due is not None:
                due_in = max(0.0, (self._due - self.clock.now()).total_seconds())
                timeout = min(timeout, due_in)
            if not self._event.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(timeout):
                        await self._event.wait()
            if self._event.is_set():
                self._event.clear()
                if self._pushed:
                    self._pushed = False
                    return "push"
                continue  # only an earlier due time: wait again with it
            if due_in is not None and due_in <= timeout:
                self._due = None
                return "due"
            return "timeout"
