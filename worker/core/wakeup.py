"""When to try claiming: pushed now, at the next known due time, or at the safety sweep."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
from datetime import datetime
from typing import Literal

from worker.core.ports import Clock

WakeReason = Literal["push", "due", "timeout"]
MAX_DUE_TIMES = 256  # beyond this the latest are dropped: the safety sweep's next_run_at finds them


class WakeSignal:
    """An event plus a timer on every known ``run_at`` (the earliest armed, the rest queued).

    ``push()`` wakes the claim loop at once (Realtime insert, a freed slot, shutdown);
    ``due(at)`` arms the timer for a job that becomes due later (retry, deferral, scheduled).
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._event = asyncio.Event()  # set by push() and by an earlier due time
        self._pushed = False
        # Every known due time, not just the earliest: when a hand-off's re-park claim (due in
        # 2 ms) fires, a deferral armed meanwhile (due in 8 s) must still wake the loop then.
        self._dues: list[datetime] = []

    def push(self) -> None:
        self._pushed = True
        self._event.set()

    def due(self, at: datetime) -> None:
        if at <= self.clock.now():
            self.push()
            return
        earliest = not self._dues or at < self._dues[0]
        heapq.heappush(self._dues, at)
        if len(self._dues) > MAX_DUE_TIMES:
            self._dues = heapq.nsmallest(MAX_DUE_TIMES, self._dues)  # sorted: still a heap
        if earliest:
            # A wait in progress computed its timeout without this time: let it recompute. (A
            # parked worker gets no push when its job is deferred or a hint names a later time.)
            self._event.set()

    def claiming(self) -> None:
        """A claim is being sent now: it takes every job due by now, so the timers for such times
        have nothing left to do (else a claim just made would be followed by one for nothing)."""
        self._drop_due(self.clock.now())

    def _drop_due(self, by: datetime) -> None:
        while self._dues and self._dues[0] <= by:
            heapq.heappop(self._dues)

    @property
    def next_due(self) -> datetime | None:
        return self._dues[0] if self._dues else None

    async def wait(self, max_seconds: float) -> WakeReason:
        """Until pushed, the timer falls due, or ``max_seconds`` pass, whichever is first."""
        deadline = self.clock.monotonic() + max(0.0, max_seconds)
        while True:
            timeout = max(0.0, deadline - self.clock.monotonic())
            due_in: float | None = None
            if self._dues:
                due_in = max(0.0, (self._dues[0] - self.clock.now()).total_seconds())
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
            if self._dues and self._dues[0] <= self.clock.now():
                # The head fell due: the claim this wakes takes it and everything else due by now;
                # later times stay armed.
                self._drop_due(self.clock.now())
                return "due"
            if due_in is not None and due_in <= timeout:
                # The loop's timer fired before the head by the wall clock (uvloop's timers count
                # from a cached, millisecond clock): a claim now would find the job not yet due,
                # in the database too, and the time would be gone. Wait out the rest.
                continue
            return "timeout"
