"""Progress and streamed text of every running job, sent in few, big calls: one
``report_progress_batch`` carries whatever all jobs queued while the previous call was in flight.

Like ``CompletionBatcher`` there is no timer for the batch: a lone report goes out at once and
under load a batch grows to whatever queued during one round trip (bench/FIXES.md: one call per
report fell behind and delayed every job's end). Per job, reports keep their order and nothing
is dropped: consecutive text fragments are concatenated, a fragment rides in the same item as
the progress step before it (the SQL API applies an item's progress before its text), and every
progress step stays its own item (the client shows each rename batch).

Realtime budget (issue 14): the SQL API sends one message per job per call, so a job's reports
are also paced and held: a job's reports go out ``min_interval`` after its last message (its
claim, at first) and no sooner than ``min_interval`` after the oldest of them was queued, all
together. Streamed text thus reaches the client in pieces of at least that interval, and
whatever a job reports within that interval of its end rides with its outcome (``settle``).

The moment a held report becomes due is rounded up to a shared beat of ``min_interval / 2``
(at most that much later), so the reports of all jobs that fall due in one beat share one call,
and a call made anyway (a job's ``settle``) also takes every job whose hold is over. Without the
beat, each job fell due at its own moment and nearly every call carried one job: 1.9–2.2
progress calls per AI job (bench/FIXES.md).

Reports also ride with acknowledgements (``take``, report_and_complete): a success sent while
reports are held takes along every job's that the next beat would send, and every job's first
message once its first step has joined its "started" marker, so under load a job's announcement
and another job's outcome share one round trip instead of two (bench/FIXES.md). Streamed text
keeps to the beat.

A worker's claim is quiet (claim_jobs_or_park, complete_and_claim: no "running" message), so a
job claimed that way starts with a "started" marker queued (``start(announce=True)``), held like
any report: the handler's first step, usually milliseconds later, joins it in one message, and a
job that ends within the hold is announced by its outcome alone (the client sees the final state;
the marker is dropped, as it is before a failure, deferral or release, which broadcast their row).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from worker.core.errors import InvalidArgument, LeaseLost, StoreUnavailable
from worker.core.ports import Clock, ProgressReport, QueueStore

log = logging.getLogger("worker.progress")
MAX_ITEMS = 500  # well under the SQL function's 1000
MAX_PARTIAL_CHARS = 16_000  # ≤ 64 KiB per item even in 4-byte characters
MIN_INTERVAL = 0.1  # seconds between two messages of one job
MAX_JOB_CHARS = 64_000  # text of one job per call: its one message stays within Free's 256 KB


@dataclass
class _Job:
    items: list[ProgressReport] = field(default_factory=list)
    last_sent: float = 0.0  # monotonic; the job's claim counts as its first message
    first_queued: float = 0.0  # monotonic, when the oldest unsent item was queued
    in_flight: bool = False
    sent: asyncio.Event = field(default_factory=asyncio.Event)  # set whenever nothing is pending
    lost: LeaseLost | None = None
    solo: bool = False  # its reports were refused along with an acknowledgement: sent on their own


class ProgressBatcher:
    def __init__(
        self,
        store: QueueStore,
        worker_id: str,
        clock: Clock,
        *,
        min_interval: float = MIN_INTERVAL,
        max_items: int = MAX_ITEMS,
    ) -> None:
        self.store = store
        self.worker_id = worker_id
        self.clock = clock
        self.min_interval = min_interval
        self.max_items = max_items
        self.calls = 0  # report_progress_batch calls made (bench and tests)
        self._jobs: dict[uuid.UUID, _Job] = {}
        self._sender: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def start(self, job_id: uuid.UUID, *, announce: bool = False) -> None:
        """A job began running: its claim was its last message, or, with ``announce`` (a quiet
        claim), its "started" marker is queued. A job already started is left as it is."""
        if job_id in self._jobs:
            return
        self._jobs[job_id] = _Job(last_sent=self.clock.monotonic())
        self._jobs[job_id].sent.set()
        if announce:
            self._add(job_id, ProgressReport(job_id, started=True))

    def lost(self, job_id: uuid.UUID) -> LeaseLost | None:
        """Set once a report found that the job is no longer this worker's."""
        job = self._jobs.get(job_id)
        return job.lost if job is not None else None

    def progress(self, job_id: uuid.UUID, percent: float | None, message: str | None) -> None:
        self._add(job_id, ProgressReport(job_id, percent, message))

    def partial(self, job_id: uuid.UUID, text: str) -> None:
        if len(text) > MAX_PARTIAL_CHARS:  # within the SQL API's 64 KiB per item
            for start in range(0, len(text), MAX_PARTIAL_CHARS):
                self.partial(job_id, text[start : start + MAX_PARTIAL_CHARS])
            return
        job = self._job(job_id)
        if job.lost is not None:
            return
        last = job.items[-1] if job.items else None
        if last is not None and len(last.partial or "") + len(text) <= MAX_PARTIAL_CHARS:
            job.items[-1] = dataclasses.replace(last, partial=(last.partial or "") + text)
            return
        self._add(job_id, ProgressReport(job_id, partial=text))

    async def settle(self, job_id: uuid.UUID, *, carry: bool) -> list[ProgressReport]:
        """Before a job's outcome. With ``carry`` (a success) what the job queued and has not sent
        is returned, to ride with the outcome in one call (report_and_complete: its reports are
        applied first), once nothing of the job is in flight; empty if its lease was lost.
        Otherwise (a failure, deferral or release), or if the text queued is more than one call
        takes, everything is sent now (no pacing) and waited for."""
        job = self._jobs.get(job_id)
        if job is None:
            return []
        # A marker with nothing else: the outcome's own message announces the job's final state.
        job.items = [item for item in job.items if not item.bare]
        if carry and _prefix(job.items) == len(job.items):
            carried, job.items = job.items, []
            if job.in_flight:  # earlier reports first: the outcome must not overtake them
                job.sent.clear()
                await job.sent.wait()
            job.sent.set()
            return [] if job.lost is not None else carried
        if job.items or job.in_flight:
            job.last_sent = job.first_queued = float("-inf")  # due now
            job.sent.clear()
            self._kick()
            await job.sent.wait()
        return []

    async def sent(self, job_ids: Sequence[uuid.UUID]) -> None:
        """Wait until nothing of these jobs is queued or in flight."""
        for job_id in job_ids:
            if (job := self._jobs.get(job_id)) is not None:
                await job.sent.wait()

    def forget(self, job_id: uuid.UUID) -> None:
        """The job's outcome is recorded (or given up): nothing more will be reported for it."""
        self._jobs.pop(job_id, None)

    # -- riding with an acknowledgement ----------------------------------------------------------
    def take(self) -> list[ProgressReport]:
        """The reports a call made now can carry: every job's that the next beat would send, and a
        job's first message once its handler's first step has joined the "started" marker (no
        message of the job before it to pace against; it only brings the news sooner). Not
        streamed text: it keeps to the beat (taken as soon as its hold ended, the next piece's hold
        started sooner and the text came in more pieces, bench/FIXES.md). The jobs taken count as
        in flight until ``landed``, ``refused`` or ``failed`` is called with the same reports."""
        beat = self._on_beat(now := self.clock.monotonic())
        batch: list[ProgressReport] = []
        for job in self._jobs.values():
            if not job.items or job.in_flight or job.solo or any(i.partial is not None for i in job.items):
                continue
            first = job.items[0].started and not job.items[0].bare
            if not first and self._on_beat(self._due_at(job)) > beat:
                continue
            take = _prefix(job.items)
            if len(batch) + take > self.max_items:
                break
            batch += job.items[:take]
            job.items, job.in_flight, job.last_sent, job.first_queued = job.items[take:], True, now, now
        return batch

    def landed(self, reports: Sequence[ProgressReport], outcome: dict[uuid.UUID, str | None]) -> None:
        """The call carrying ``reports`` answered: each job's outcome, as report_progress_batch's."""
        self._lose(outcome, "report_and_complete")
        self._settled(reports)

    def refused(self, reports: Sequence[ProgressReport]) -> None:
        """The call refused its arguments (nothing changed): the reports go back to be sent on their own."""
        for job_id in dict.fromkeys(r.job_id for r in reports):
            if (job := self._jobs.get(job_id)) is not None:
                job.items = [r for r in reports if r.job_id == job_id] + job.items
                job.solo, job.last_sent, job.first_queued = True, float("-inf"), float("-inf")
                job.sent.clear()
        self._settled(reports)

    def failed(self, reports: Sequence[ProgressReport], exc: BaseException) -> None:
        """The call failed otherwise: best effort, as a batch of its own that fails."""
        log.warning("progress not recorded: %s", exc)
        self._settled(reports)

    def _settled(self, reports: Sequence[ProgressReport]) -> None:
        pending = False
        for job_id in dict.fromkeys(r.job_id for r in reports):
            if (job := self._jobs.get(job_id)) is not None:
                job.in_flight = False
                if job.items:
                    pending = True
                else:
                    job.sent.set()
        # Only reports queued meanwhile need the sender to look again (it skipped these jobs in
        # flight); a wake-up per call for nothing made it rescan every held job.
        if pending:
            self._kick()

    # -- sending ------------------------------------------------------------------------------
    def _job(self, job_id: uuid.UUID) -> _Job:
        if job_id not in self._jobs:
            self.start(job_id)
        return self._jobs[job_id]

    def _add(self, job_id: uuid.UUID, report: ProgressReport) -> None:
        job = self._job(job_id)
        if job.lost is not None:
            return
        if not job.items:
            job.first_queued = self.clock.monotonic()
        if job.items and job.items[-1].bare:  # the first step joins the job's "started" marker
            job.items[-1] = dataclasses.replace(report, started=True)
        else:
            job.items.append(report)
        job.sent.clear()
        # No wake-up for a sender already waiting: a new report is due a pacing interval after
        # now or later, and every report already held is due by then, so the time it waits for
        # comes first anyway (a wake-up per report rescanned every held job for nothing).
        self._ensure_sender()

    def _kick(self) -> None:
        """Something is due now (a settle): the sender must look again at once."""
        self._wake.set()
        self._ensure_sender()

    def _ensure_sender(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="progress-batch")

    async def _send(self) -> None:
        while any(j.items for j in self._jobs.values()):
            self._wake.clear()
            now = self.clock.monotonic()
            held = [j for j in self._jobs.values() if j.items and not j.in_flight]
            if not held:  # only jobs whose reports ride with an acknowledgement: wait for it
                await self._wake.wait()
                continue
            next_beat = min(self._on_beat(self._due_at(j)) for j in held)
            if next_beat > now:
                await self._sleep_or_wake(next_beat - now)
                continue
            batch: list[ProgressReport] = []
            sending: list[_Job] = []
            # A call is made: it takes every job whose hold is over, beat or not.
            for job in (j for j in held if self._due_at(j) <= now):
                take = _prefix(job.items)
                if len(batch) + take > self.max_items and batch:
                    break
                batch += job.items[:take]
                job.items, job.in_flight, job.last_sent, job.first_queued = job.items[take:], True, now, now
                sending.append(job)
            try:
                await self._send_batch(batch)
            except Exception:  # a bug here must not stop later reports, nor go unseen
                log.exception("progress report failed")
            finally:
                for job in sending:
                    job.in_flight, job.solo = False, False
                    if not job.items:
                        job.sent.set()
        for job in self._jobs.values():
            if not job.in_flight:
                job.sent.set()

    def _due_at(self, job: _Job) -> float:
        # Paced (a job's messages at least min_interval apart) and held (a report waits as long
        # after it was queued, so the reports of a job that ends meanwhile ride with its outcome).
        return max(job.last_sent, job.first_queued) + self.min_interval

    def _on_beat(self, due_at: float) -> float:
        """``due_at`` rounded up to the shared beat (``min_interval / 2`` of the clock); a settle's
        (minus infinity) and an unpaced batcher's stay as they are."""
        beat = self.min_interval / 2
        if beat <= 0 or not math.isfinite(due_at):
            return due_at
        # The tolerance keeps a time already on a beat (up to float error) on that beat.
        return math.ceil(due_at / beat - 1e-9) * beat

    async def _sleep_or_wake(self, seconds: float) -> None:
        # A settle (due now) must not wait out another job's pacing.
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self.clock.sleep(max(0.0, seconds)))
        try:
            await asyncio.wait((waiter, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            sleeper.cancel()

    async def _send_batch(self, batch: Sequence[ProgressReport]) -> None:
        # Best effort: a blip must not fail a job whose model call succeeded. A lost lease is
        # kept for the job's handler, which must stop at its next report.
        self.calls += 1
        try:
            outcome = await self.store.report_progress_batch(self.worker_id, batch)
        except InvalidArgument as exc:
            jobs = list(dict.fromkeys(r.job_id for r in batch))
            if len(jobs) == 1:
                log.warning("progress not recorded: %s", exc, extra={"job_id": jobs[0]})
                return
            # One job's bad report (e.g. a message over 1000 characters) must not sink the others.
            for job_id in jobs:
                await self._send_batch([r for r in batch if r.job_id == job_id])
            return
        except StoreUnavailable as exc:
            log.warning("progress not recorded: %s", exc)
            return
        self._lose(outcome, "report_progress_batch")

    def _lose(self, outcome: dict[uuid.UUID, str | None], call: str) -> None:
        for job_id, reason in outcome.items():
            job = self._jobs.get(job_id)
            if reason is not None and job is not None:
                job.lost = LeaseLost(f"{call}: job {job_id}: {reason}")
                job.items = []


def _prefix(items: Sequence[ProgressReport]) -> int:
    """How many of a job's queued items one call takes: at least one, at most MAX_JOB_CHARS of text."""
    chars = 0
    for n, item in enumerate(items):
        chars += len(item.partial or "")
        if chars > MAX_JOB_CHARS and n > 0:
            return n
    return len(items)
