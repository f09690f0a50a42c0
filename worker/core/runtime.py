"""The worker's core loop: wake, claim up to free capacity, run, heartbeat, record, drain.

Everything outside is reached through ports (QueueStore, Wakeups, ArtifactStore, models), so
this module runs unchanged on supabase-py, psycopg or the in-memory fake.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from worker.core.acks import CompletionBatcher
from worker.core.background import in_background
from worker.core.context import JobContext
from worker.core.errors import PermanentFailure, StoreError, StoreUnavailable
from worker.core.handoffs import Handoffs
from worker.core.health import HealthState
from worker.core.job_runner import Failed, JobRun, Outcome, Succeeded, execute
from worker.core.jobs import JobHint, JobRow, UnparseableJob, Wake
from worker.core.metrics import Metrics
from worker.core.outcomes import OutcomeRecorder
from worker.core.ports import ArtifactStore, Clock, QueueStore, Wakeups
from worker.core.progress import ProgressBatcher
from worker.core.retry import Backoff, RetryPolicy
from worker.core.routing import ModelRouter
from worker.core.shutdown import Shutdown
from worker.core.usage import UsageBatcher
from worker.core.wakeup import WakeSignal

log = logging.getLogger("worker")

HandlerFn = Callable[[dict[str, Any], JobContext], Awaitable[dict[str, Any]]]
DEFAULT_TIMEOUT = 300.0
PARK_SECONDS_MAX = 86400  # claim_jobs_or_park's bound
REPARK_AFTER = timedelta(milliseconds=2)  # the claim after a hand-off (see _on_wake)


@dataclass(frozen=True)
class WorkerConfig:
    worker_id: str
    kinds: tuple[str, ...]
    concurrency: int = 4
    lease_seconds: int = 60
    heartbeat_interval: float = 20.0
    sweep_interval: float = 30.0
    drain_timeout: float = 60.0
    handoffs: bool = True  # parked, take jobs claimed for it by the enqueue (False: plain wake-ups)


class Worker:
    def __init__(
        self,
        config: WorkerConfig,
        store: QueueStore,
        handlers: Mapping[str, HandlerFn],
        clock: Clock,
        *,
        wakeups: Wakeups | None = None,
        models: ModelRouter | None = None,
        artifacts: ArtifactStore | None = None,
        metrics: Metrics | None = None,
        store_retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.handlers = handlers
        self.clock = clock
        self.wakeups = wakeups
        self.models = models
        self.artifacts = artifacts
        self.metrics = metrics or Metrics()
        self.health = HealthState(
            clock,
            config.heartbeat_interval,
            (lambda: wakeups.connected) if wakeups else None,
            started=clock.monotonic(),
        )
        self.wake = WakeSignal(clock)
        self.backoff = Backoff(store_retry or RetryPolicy(base=0.5, cap=15.0), clock)
        self.reports = ProgressBatcher(store, config.worker_id, self.clock)
        self.acks = CompletionBatcher(store, config.worker_id, refill=self, riders=self.reports)
        self.usage = UsageBatcher(store, config.worker_id)
        self._releasing = False  # the drain is giving jobs back
        self.outcomes = OutcomeRecorder(
            store,
            self.acks,
            self.metrics,
            clock,
            config.worker_id,
            config.lease_seconds,
            due=lambda job: self.wake.due(job.run_at),
            releasing=lambda: self._releasing,
            usage=self.usage,
        )
        self._reserved = 0  # slots a claim in flight will fill
        self._leaving = 0  # running jobs a call in flight acknowledges (their slots are reserved)
        self._backlog = False  # the last claim came back full: more is probably due
        self.runs: dict[uuid.UUID, JobRun] = {}
        self.timeouts: dict[str, float] = {}
        self.shutdown = Shutdown()
        self._sweep_now = True
        self._parked = False  # the last claim came back short and parked us: wake-ups will come
        self._parking = False  # a claim that parks if it comes back short is in flight
        self.handoffs = Handoffs()
        self._fields: dict[str, Any] = {"worker_id": config.worker_id}

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self, shutdown: Shutdown | None = None) -> None:
        """Run until shutdown is requested, then drain and release. Returns normally."""
        self.shutdown = shutdown or self.shutdown
        log.info(
            "worker starting: kinds %s, concurrency %d",
            ",".join(self.config.kinds),
            self.config.concurrency,
            extra=self._fields,
        )
        if self.wakeups is not None:
            await self.wakeups.start(self.config.worker_id, self._on_wake, self._on_joined)
        async with in_background(self._heartbeat_loop()), in_background(self._push_on_stop()):
            await self._claim_loop()
            await self._unpark()
            await self._drain()
        if self.wakeups is not None:
            await self.wakeups.close()
        log.info("worker stopped", extra=self._fields)

    async def _push_on_stop(self) -> None:
        await self.shutdown.stopping.wait()
        self.wake.push()

    # -- wake-ups ------------------------------------------------------------------------------
    def _on_wake(self, wake: Wake) -> None:
        if self.shutdown.stopping.is_set():
            return  # nothing new once stopping: the unpark gives back what was handed meanwhile
        # A hand-off: the database claimed these for this worker; they start without a claim.
        handed = [job for job in self.handoffs.handed(wake.jobs) if job.id not in self.runs]
        for job in handed:
            self.metrics.inc("worker_jobs_handed_total", kind=job.kind)
            self._start(job, announce=True)
        hints = wake.hints
        kept_parked = wake.parked and bool(handed)  # the database kept it parked: no claim owed
        if handed:
            if not kept_parked:
                # Then claim once more, as after any wake-up: that parks the worker again with
                # the slots it really has free, takes what the hand-off left (a capped user,
                # rows too long for the message) and tells the database this worker is alive. A
                # moment later, so that the handlers just started run their first steps before
                # the claim's own work (measured: +0.3 ms p50 pickup when the claim went first).
                self.wake.due(self.clock.now() + REPARK_AFTER)
            hints = tuple(h for h in hints if h.run_at is not None and h.run_at > self.clock.now())
        for hint in hints:
            self._on_hint(hint, still_parked=kept_parked)

    def _on_hint(self, hint: JobHint, *, still_parked: bool = False) -> None:
        if not still_parked:
            self._parked = False  # the database took us off the list to send this
        if hint.kind not in self.config.kinds or hint.status != "queued":
            return
        if hint.run_at is None or hint.run_at <= self.clock.now():
            self.wake.push()
        else:
            self.wake.due(hint.run_at)

    @property
    def park_seconds(self) -> int | None:
        """How long a short claim parks this worker for routed wake-ups; None (not parked) without
        a live subscription, so no wake-up is sent where nobody listens. The entry outlives two
        sweeps (each sweep's claim renews it) and lapses soon after the worker dies."""
        if self.wakeups is None or not self.wakeups.connected:
            return None
        return min(PARK_SECONDS_MAX, max(10, int(2 * self.config.sweep_interval) + 5))

    @property
    def parked(self) -> bool:
        """Its last claim came back short and parked it: the next job for its kinds wakes it."""
        return self._parked

    async def _unpark(self) -> None:
        if self.wakeups is None:
            return
        try:
            seen = self.handoffs.take_seen() if self.config.handoffs else None
            await self.store.unpark(self.config.worker_id, seen)
        except StoreError as exc:  # the entry lapses by itself
            log.warning("could not unpark: %s", exc, extra=self._fields)

    def _on_joined(self) -> None:
        # Anything inserted while the subscription was down was not pushed: sweep.
        self._sweep_now = True
        self._parked = False
        self.wake.push()

    # -- the claim loop ------------------------------------------------------------------------
    async def _claim_loop(self) -> None:
        next_sweep = self.clock.monotonic()
        while not self.shutdown.stopping.is_set():
            sweep_due = self._sweep_now or self.clock.monotonic() >= next_sweep
            if self.backoff.remaining() == 0 and sweep_due and await self._sweep():
                next_sweep = self.clock.monotonic() + self.config.sweep_interval
            if self.backoff.remaining() == 0:
                await self._claim_while_free()
            # While the queue is unreachable, the next try is the backoff's; otherwise the sweep's.
            wait = self.backoff.remaining() or max(0.0, next_sweep - self.clock.monotonic())
            reason = await self.wake.wait(wait)
            self.metrics.inc("worker_wakeups_total", reason=reason)

    async def _sweep(self) -> bool:
        """Reap expired leases, refresh kind timeouts, and arm the timer for the next due job."""
        self._sweep_now = False
        try:
            reaped = await self.store.reap_expired_leases()
            kinds = await self.store.job_kinds()
            next_at = await self.store.next_run_at(self.config.kinds)
        except StoreError as exc:
            self._store_failed(exc)
            return False
        self._store_ok()
        if self.models is not None:
            try:
                await self.models.refresh()
            except StoreError as exc:  # keep the chains read last time; claiming must not stop for this
                log.warning("fallback chains not refreshed: %s", exc, extra=self._fields)
        self.timeouts = {k.kind: float(k.timeout_seconds) for k in kinds}
        if reaped:
            log.info("reaped %d expired lease(s)", reaped, extra=self._fields)
        if next_at is not None:
            self.wake.due(next_at)
        return True

    async def _claim_while_free(self) -> None:
        while not self.shutdown.stopping.is_set():
            free = self.config.concurrency - (len(self.runs) - self._leaving) - self._reserved
            if free <= 0:
                # Full (say a hand-off took its last slots before the claim it owes the database):
                # like any busy worker, it claims when a slot frees. (No claim of this loop is in
                # flight here: it is the only parking claimer.)
                self._parked = False
                return
            started = self.clock.monotonic()
            self._reserved += free
            park_seconds = self.park_seconds
            self._parking = park_seconds is not None
            seen = self.handoffs.take_seen() if park_seconds is not None and self.config.handoffs else None
            self.wake.claiming()
            try:
                jobs = await self.store.claim_jobs(
                    self.config.worker_id,
                    self.config.kinds,
                    free,
                    self.config.lease_seconds,
                    park_seconds=park_seconds,
                    handed_seen=seen,
                )
            except StoreError as exc:
                if seen:
                    self.handoffs.put_back(seen)
                self._parked = False  # not known: claim again when a slot frees
                self._store_failed(exc)
                return
            finally:
                self._reserved -= free
                self._parking = False
            self.metrics.observe("worker_claim_duration_seconds", self.clock.monotonic() - started)
            self._backlog = len(jobs) >= free
            if park_seconds is not None:  # it may answer with jobs handed to this worker
                jobs = [job for job in self.handoffs.claimed(jobs) if job.id not in self.runs]
            # claim_jobs_or_park (with park_seconds) claims quietly: the worker announces each job.
            self._start_all(jobs, quiet=park_seconds is not None)
            if not self._backlog:
                self._parked = park_seconds is not None
                return
            self._parked = False

    # -- claiming along with acknowledgements (the CompletionBatcher's Refill) -----------------
    @property
    def kinds(self) -> tuple[str, ...]:
        return self.config.kinds

    @property
    def lease_seconds(self) -> int:
        return self.config.lease_seconds

    def reserve(self, acknowledging: int) -> int:
        """While there is a backlog, the slots the acknowledged jobs free (and any free now) are
        filled in the same statement; otherwise acknowledging alone is cheaper (an idle queue)."""
        if not self._backlog or self.shutdown.stopping.is_set() or self.backoff.remaining() > 0:
            return 0
        # Jobs another call in flight acknowledges are leaving too (two calls may be in flight).
        free = self.config.concurrency - (len(self.runs) - self._leaving - acknowledging) - self._reserved
        if free <= 0:
            return 0
        self._reserved += free
        self._leaving += acknowledging
        return free

    def claimed(self, jobs: list[JobRow], reserved: int, acknowledged: int) -> None:
        self._reserved -= reserved
        self._leaving -= acknowledged
        self._backlog = len(jobs) >= reserved  # a short answer: the queue ran dry
        self._start_all(jobs, quiet=True)  # complete_and_claim's claim is quiet
        if not self._backlog:
            # complete_and_claim does not park: claim once more through the loop, which parks
            # this worker, so the next job to arrive wakes it.
            self.wake.push()

    def _start_all(self, jobs: list[JobRow], *, quiet: bool) -> None:
        self._store_ok()
        for job in jobs:
            self._start(job, announce=quiet)

    def released(self, reserved: int, acknowledged: int) -> None:
        self._reserved -= reserved
        self._leaving -= acknowledged

    def _store_ok(self) -> None:
        if self.backoff.failures:
            log.info("queue reachable again after %d failed call(s)", self.backoff.failures, extra=self._fields)
            self._sweep_now = True  # pushes may have been missed meanwhile
        self.backoff.succeeded()
        self.health.store_ok, self.health.store_error = True, None

    def _store_failed(self, exc: StoreError) -> None:
        if not isinstance(exc, StoreUnavailable):
            log.error("queue call refused: %s", exc, extra=self._fields)
        wait = self.backoff.failed()
        self.health.store_ok, self.health.store_error = False, str(exc)[:300]
        log.warning("queue unreachable (%s); retrying in %.1f s", exc, wait, extra=self._fields)

    # -- running jobs --------------------------------------------------------------------------
    def _start(self, job: JobRow, *, announce: bool) -> None:
        if announce and not isinstance(job, UnparseableJob):  # that one's failure announces it
            self.reports.start(job.id, announce=True)
        run = JobRun(job, started=self.clock.monotonic())
        self.runs[job.id] = run
        run.task = asyncio.create_task(self._run_job(run), name=f"job-{job.id}")
        self.metrics.inc("worker_jobs_claimed_total", kind=job.kind)
        self.metrics.set("worker_jobs_in_flight", len(self.runs))
        if isinstance(job, UnparseableJob):
            self.metrics.inc("worker_jobs_unreadable_total", kind=job.kind)
            log.error("job claimed, row unreadable: %s", job.failure.message[:500], extra=self._job_fields(job))
        else:
            log.info("job claimed", extra=self._job_fields(job))

    async def _outcome(self, run: JobRun) -> Outcome:
        job = run.job
        if isinstance(job, UnparseableJob):
            return Failed(job.failure)  # fails that job alone, not retried: the row will not change
        handler = self.handlers.get(job.kind)
        chain = self.models.chain(job.kind) if self.models is not None else None
        ctx = JobContext(
            job,
            self.config.worker_id,
            self.store,
            self.clock,
            chain,
            self.artifacts,
            reports=self.reports,
            usage=self.usage,
        )
        timeout = self.timeouts.get(job.kind, DEFAULT_TIMEOUT)
        if handler is None:
            outcome: Outcome = Failed(PermanentFailure(f"this worker has no handler for kind {job.kind}"))
        else:
            outcome = await execute(run, lambda: handler(job.payload, ctx), timeout, self.clock)
            if isinstance(outcome, Succeeded) and (answered := ctx.answered_by) is not None:
                outcome = Succeeded({**outcome.result, "model": answered})
        # The client sees every report before the job's final state; a success's queued reports
        # and last progress step ride with the outcome (report_and_complete, complete_jobs)
        # instead of a call of their own.
        run.last_progress = await ctx.settle(carry=isinstance(outcome, Succeeded))
        run.reports = ctx.carried_reports()
        run.usage = ctx.carried_usage()  # nothing unless carried: settle sent the rest
        return outcome

    async def _run_job(self, run: JobRun) -> None:
        job = run.job
        try:
            outcome = await self._outcome(run)
            duration = self.clock.monotonic() - run.started
            self.metrics.observe("worker_run_duration_seconds", duration, kind=job.kind)
            await self._record(run, outcome, duration)
        except Exception:
            log.exception("job bookkeeping failed", extra=self._job_fields(job))
        finally:
            self.reports.forget(job.id)
            self.runs.pop(job.id, None)
            self.metrics.set("worker_jobs_in_flight", len(self.runs))
            if not self._parked and not self._parking:
                # A slot is free: claim again. A parked worker need not: whatever became
                # claimable since its last claim (a new job, a place under a user's cap) woke
                # a parked worker, and the sweep is the safety net. Nor need one whose parking
                # claim is in flight (woken while this job finished): a full answer claims on
                # for the freed slot, a short one parks, and the database's wake-up gate
                # promises that anything claimable after that claim's snapshot wakes a parked
                # worker (20261204000600_worker_wakeups.sql).
                self.wake.push()

    async def _record(self, run: JobRun, outcome: Outcome, duration: float) -> None:
        fields = {**self._job_fields(run.job), "duration_ms": round(duration * 1000)}
        await self.outcomes.record(run, outcome, fields)

    # -- heartbeat -----------------------------------------------------------------------------
    async def _heartbeat_loop(self) -> None:
        while True:
            await self.clock.sleep(self.config.heartbeat_interval)
            await self.heartbeat()

    async def heartbeat(self) -> None:
        """Renew every running job's lease; stop jobs that were cancelled or are no longer ours."""
        ids = list(self.runs)
        if not ids:
            self.health.beat()
            return
        try:
            rows = await self.store.renew_leases(self.config.worker_id, ids, self.config.lease_seconds)
        except StoreError as exc:
            log.warning("heartbeat failed: %s", exc, extra=self._fields)
            return
        self.health.beat()
        now = self.clock.now()
        by_id = {row.id: row for row in rows}
        for job_id in ids:
            run = self.runs.get(job_id)
            row = by_id.get(job_id)
            if run is None or isinstance(row, UnparseableJob):
                continue  # an unreadable row tells nothing: the job's next queue call will
            if (
                row is None
                or row.status != "running"
                or row.worker_id != self.config.worker_id
                or (row.lease_expires_at is not None and row.lease_expires_at < now)
            ):
                run.stop("lost")
            elif row.cancel_requested:
                run.stop("cancel")

    # -- shutdown ------------------------------------------------------------------------------
    async def _drain(self) -> None:
        """Phase two of shutdown: let running jobs finish until the drain timeout (or a second
        signal), then stop the rest and give them back to the queue with release_jobs."""
        deadline = self.clock.monotonic() + self.config.drain_timeout
        hurry = asyncio.ensure_future(self.shutdown.hurry.wait())
        try:
            while self.runs and not self.shutdown.hurry.is_set():
                left = deadline - self.clock.monotonic()
                if left <= 0:
                    break
                tasks = {run.task for run in self.runs.values() if run.task is not None}
                await asyncio.wait({*tasks, hurry}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
        finally:
            hurry.cancel()
        leftovers = list(self.runs.values())
        if not leftovers:
            return
        self._releasing = True
        for run in leftovers:
            run.stop("release")
        await asyncio.gather(*(run.task for run in leftovers if run.task is not None), return_exceptions=True)
        ids = [run.job.id for run in leftovers]
        for attempt in range(3):
            try:
                released = await self.store.release_jobs(self.config.worker_id, ids)
                log.info("released %d job(s) back to the queue", len(released), extra=self._fields)
                return
            except StoreError as exc:
                log.warning("release failed (%s), attempt %d", exc, attempt + 1, extra=self._fields)
                await self.clock.sleep(0.5 * (attempt + 1))
        log.error("could not release %d job(s); the reaper will take them back", len(ids), extra=self._fields)

    def _job_fields(self, job: JobRow) -> dict[str, Any]:
        return {**self._fields, "job_id": job.id, "kind": job.kind, "attempt": job.attempts}

    @property
    def next_due(self) -> datetime | None:
        return self.wake.next_due
