"""Acknowledging successes: one ``complete_jobs`` call carries every success that finished while
the previous call was in flight.

No timer and no waiting: a lone success is sent at once (the latency of one round trip, as
before), and under load the batch grows by itself to whatever finished during one round trip.
A worker that dies with successes not yet acknowledged loses nothing but work: their leases run
out and the jobs are retried, exactly as if it had died one statement earlier.

With a ``Refill`` (the worker's claim side), a batch that frees slots while there is a backlog
claims the next jobs in the same statement (``complete_and_claim``): a draining worker makes one
round trip per batch instead of two.

A success also carries the reports its job queued and had not sent (its last beat's worth:
applied first, in the same call), and with ``Riders`` (the progress batcher) a batch that claims
nothing takes along other jobs' reports due by the next beat (``report_and_complete``): under load
a job's first step rode in a call of its own on the next beat, and its last reports in one just
before its outcome, round trips per job beside its acknowledgement.

More calls may be in flight (``MAX_IN_FLIGHT``), for a big batch only (``PARALLEL_MIN``
successes or more per sender): a draining worker then keeps two or three part batches going, so
the database works on one while another travels and its jobs run (one stream left a 2-core
database half idle: 3,500 vs 6,750 jobs/s with two; a third: a median +5 % in 20 alternated
pairs, bench/FIXES.md). A few successes still wait for the call in flight and share the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from worker.core.errors import InvalidArgument, LeaseLost
from worker.core.jobs import JobRow
from worker.core.ports import ProgressReport, QueueStore, UsageRecord

MAX_BATCH = 500  # well under the SQL function's 1000, and a bounded request body
MAX_IN_FLIGHT = 3
PARALLEL_MIN = 8  # successes waiting before a second call goes out beside the one in flight


@dataclass
class _Pending:
    job_id: uuid.UUID
    result: dict[str, Any]
    progress: ProgressReport | None
    usage: Sequence[UsageRecord]
    reports: Sequence[ProgressReport]
    done: asyncio.Future[None]


class Refill(Protocol):
    """The claim side of acknowledging: how many jobs to claim along with a batch, and what to do
    with them. Slots handed out by ``reserve`` stay reserved, and the jobs being acknowledged
    count as leaving, until ``claimed`` or ``released`` (with the same two numbers)."""

    @property
    def kinds(self) -> tuple[str, ...]: ...

    @property
    def lease_seconds(self) -> int: ...

    def reserve(self, acknowledging: int) -> int:
        """Slots to claim along with acknowledging this many jobs (0: acknowledge only)."""
        ...

    def claimed(self, jobs: list[JobRow], reserved: int, acknowledged: int) -> None: ...

    def released(self, reserved: int, acknowledged: int) -> None: ...


class Riders(Protocol):
    """Progress reports that can go along with an acknowledgement (ProgressBatcher): those taken
    are in flight until handed back with one of the three outcomes."""

    def take(self) -> list[ProgressReport]: ...

    def landed(self, reports: Sequence[ProgressReport], outcome: dict[uuid.UUID, str | None]) -> None: ...

    def refused(self, reports: Sequence[ProgressReport]) -> None: ...

    def failed(self, reports: Sequence[ProgressReport], exc: BaseException) -> None: ...

    async def sent(self, job_ids: Sequence[uuid.UUID]) -> None: ...


class CompletionBatcher:
    def __init__(
        self,
        store: QueueStore,
        worker_id: str,
        max_batch: int = MAX_BATCH,
        refill: Refill | None = None,
        riders: Riders | None = None,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.max_batch = max_batch
        self.refill = refill
        self.riders = riders
        self._queue: list[_Pending] = []
        self._senders: set[asyncio.Task[None]] = set()
        self._taking = 0  # senders about to take a batch: the queue is shared out among them

    async def complete(
        self,
        job_id: uuid.UUID,
        result: dict[str, Any],
        progress: ProgressReport | None = None,
        usage: Sequence[UsageRecord] = (),
        reports: Sequence[ProgressReport] = (),
    ) -> None:
        """Mark ``job_id`` succeeded. Raises LeaseLost if this worker no longer holds it, and the
        store's own errors (StoreUnavailable, InvalidArgument) as complete_job would. ``progress``,
        the job's last progress step, ``usage``, its model calls not yet recorded, and
        ``reports``, what it queued before that step, are recorded in the same call (a refused
        call sends the reports on their own first)."""
        future = asyncio.get_running_loop().create_future()
        pending = _Pending(job_id, result, progress, usage, reports, future)
        self._queue.append(pending)
        busy = len(self._senders)
        if busy == 0 or (busy < MAX_IN_FLIGHT and len(self._queue) >= PARALLEL_MIN * (self._taking + 1)):
            self._taking += 1
            sender = asyncio.create_task(self._send(), name="complete-jobs")
            self._senders.add(sender)
        await pending.done

    async def _send(self) -> None:
        try:
            while True:
                # Shared out among the senders about to take (each started for its part of the queue).
                share = min(self.max_batch, -(-len(self._queue) // max(1, self._taking)))
                self._taking -= 1
                if share == 0:
                    return
                batch, self._queue = self._queue[:share], self._queue[share:]
                try:
                    await self._send_batch(batch)
                except Exception as exc:  # every waiter gets the failure; their callers retry or give up
                    for p in batch:
                        _settle(p, exc)
                self._taking += 1
        finally:
            # At once, not in a done callback: a success queued in between must start a sender.
            if (me := asyncio.current_task()) is not None:
                self._senders.discard(me)

    async def _send_batch(self, batch: list[_Pending]) -> None:
        try:
            last = {p.job_id: p.progress for p in batch if p.progress is not None}
            usage = {p.job_id: p.usage for p in batch if p.usage}
            own = [r for p in batch for r in p.reports]
            outcome = await self._acknowledge([(p.job_id, p.result) for p in batch], last, usage, own)
        except InvalidArgument:
            for p in batch:
                p.reports = ()  # sent on their own by now (_send_apart): not again with the retry
            if len(batch) == 1:
                raise
            # One bad result (e.g. over 1 MiB) must not sink the others: settle each on its own.
            await asyncio.gather(*(self._send_alone(p) for p in batch))
            return
        for p in batch:
            reason = outcome.get(p.job_id, "not in the answer")
            _settle(p, None if reason is None else LeaseLost(f"complete_jobs: job {p.job_id}: {reason}"))

    async def _acknowledge(
        self,
        completions: list[tuple[uuid.UUID, dict[str, Any]]],
        last: dict[uuid.UUID, ProgressReport],
        usage: dict[uuid.UUID, Sequence[UsageRecord]],
        own: list[ProgressReport],
    ) -> dict[uuid.UUID, str | None]:
        r = self.refill
        # complete_and_claim takes no reports: a batch carrying its jobs' own claims nothing.
        slots = r.reserve(len(completions)) if r is not None and not own else 0
        if r is None or slots <= 0:
            riders = self.riders.take() if self.riders is not None else []
            if own or riders:
                return await self._with_reports(own, riders, completions, last, usage)
            return await self.store.complete_jobs(self.worker_id, completions, last, usage)
        try:
            outcome, jobs = await self.store.complete_and_claim(
                self.worker_id, completions, r.kinds, slots, r.lease_seconds, last, usage
            )
        except InvalidArgument:
            # A refused claim (say a kind removed from job_kinds) must not fail finished jobs:
            # acknowledge alone, which raises the completions' own error if they have one.
            r.released(slots, len(completions))
            return await self.store.complete_jobs(self.worker_id, completions, last, usage)
        except BaseException:
            r.released(slots, len(completions))
            raise
        r.claimed(jobs, slots, len(completions))
        return outcome

    async def _with_reports(
        self,
        own: list[ProgressReport],
        riders: list[ProgressReport],
        completions: list[tuple[uuid.UUID, dict[str, Any]]],
        last: dict[uuid.UUID, ProgressReport],
        usage: dict[uuid.UUID, Sequence[UsageRecord]],
    ) -> dict[uuid.UUID, str | None]:
        try:
            reported, outcome = await self.store.report_and_complete(
                self.worker_id, own + riders, completions, last, usage
            )
        except InvalidArgument:
            # Either part may be the bad one: every report goes back to be sent on its own (the
            # progress batcher isolates a bad one), the jobs' own before their completions, which
            # then go alone, raising their own error.
            await self._send_apart(own, riders)
            return await self.store.complete_jobs(self.worker_id, completions, last, usage)
        except BaseException as exc:
            if self.riders is not None and riders:
                self.riders.failed(riders, exc)
            raise
        if self.riders is not None and riders:
            self.riders.landed(riders, reported)
        return outcome  # a lost lease shows in the completion's row as in its reports'

    async def _send_apart(self, own: list[ProgressReport], riders: list[ProgressReport]) -> None:
        if self.riders is not None:
            self.riders.refused(own + riders)
            await self.riders.sent(list(dict.fromkeys(r.job_id for r in own)))
        elif own:  # no progress batcher to hand them to: best effort, in one call
            with contextlib.suppress(InvalidArgument):
                await self.store.report_progress_batch(self.worker_id, own)

    async def _send_alone(self, pending: _Pending) -> None:
        try:
            await self._send_batch([pending])
        except Exception as exc:
            _settle(pending, exc)


def _settle(pending: _Pending, exc: BaseException | None) -> None:
    if pending.done.done():  # its waiter was cancelled meanwhile
        return
    if exc is None:
        pending.done.set_result(None)
    else:
        pending.done.set_exception(exc)
