"""Recording a finished job's outcome: success (batched, with its last progress), failure,
deferral or cancellation, retried while the queue is unreachable (up to twice the lease; after
that the reaper gives the job back), never after the lease was lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from worker.core.acks import CompletionBatcher
from worker.core.errors import InvalidArgument, LeaseLost, StoreUnavailable
from worker.core.job_runner import Deferred, Failed, JobRun, Outcome, Stopped, Succeeded
from worker.core.jobs import Job, JobRow
from worker.core.metrics import Metrics
from worker.core.ports import Clock, QueueStore
from worker.core.retry import Backoff, RetryPolicy
from worker.core.usage import UsageBatcher

log = logging.getLogger("worker")


class OutcomeRecorder:
    def __init__(
        self,
        store: QueueStore,
        acks: CompletionBatcher,
        metrics: Metrics,
        clock: Clock,
        worker_id: str,
        lease_seconds: int,
        *,
        due: Callable[[Job], None],
        releasing: Callable[[], bool],
        usage: UsageBatcher | None = None,
    ) -> None:
        self.store, self.acks, self.metrics, self.clock = store, acks, metrics, clock
        self.worker_id, self.lease_seconds = worker_id, lease_seconds
        self._due = due  # a job back in the queue: arm the timer for its run_at
        self._releasing = releasing  # the drain is giving jobs back: stop retrying
        self._usage = usage  # where a success's usage goes when complete_jobs refuses to carry it

    async def record(self, run: JobRun, outcome: Outcome, fields: dict[str, Any]) -> None:
        job = run.job
        if isinstance(outcome, Stopped):
            if outcome.reason == "lost":
                self.metrics.inc("worker_jobs_lost_total", kind=job.kind)
                log.warning("job stopped: lease lost", extra={**fields, "outcome": "lost"})
                return
            if outcome.reason == "release":
                return  # the drain releases it
        deadline = self.clock.monotonic() + max(30.0, 2.0 * self.lease_seconds)
        retry = Backoff(RetryPolicy(base=0.5, cap=10.0), self.clock)
        while True:
            try:
                await self._record_once(run, outcome, fields)
                return
            except LeaseLost as exc:
                self.metrics.inc("worker_jobs_lost_total", kind=job.kind)
                log.warning("outcome not recorded, lease lost: %s", exc, extra={**fields, "outcome": "lost"})
                return
            except StoreUnavailable as exc:
                if run.usage:
                    # The call may have committed, usage and all: sending it again could count the
                    # calls twice. Dropped, as a usage batch that met an outage is.
                    log.warning("usage of %d model call(s) not recorded: %s", len(run.usage), exc, extra=fields)
                    run.usage = ()
                if self.clock.monotonic() >= deadline or self._releasing():
                    log.error("outcome not recorded (%s); the reaper will retry the job", exc, extra=fields)
                    return
                await self.clock.sleep(retry.failed())

    async def _record_once(self, run: JobRun, outcome: Outcome, fields: dict[str, Any]) -> None:
        job = run.job
        me = self.worker_id
        if isinstance(outcome, Succeeded):
            try:
                await self.acks.complete(job.id, outcome.result, run.last_progress, run.usage, run.reports)
            except InvalidArgument as exc:
                run.reports = ()  # refused with the outcome, then sent on their own (CompletionBatcher)
                if run.usage:
                    # A usage record it refused must not fail the job: the records go on their
                    # own (each alone if need be, logged), then the success without them.
                    log.warning("usage refused with the outcome, sent apart: %s", exc, extra=fields)
                    records, run.usage = run.usage, ()
                    if self._usage is not None:
                        await asyncio.gather(*(self._usage.add(r) for r in records))
                    await self._record_once(run, outcome, fields)
                    return
                # e.g. a result over 1 MiB: the job cannot succeed like this
                await self.store.fail_job(job.id, me, {"type": "invalid_output", "message": str(exc)[:4000]}, False)
                self.metrics.inc("worker_jobs_failed_total", kind=job.kind)
                log.error("job failed: result refused: %s", exc, extra={**fields, "outcome": "failed"})
                return
            self.metrics.inc("worker_jobs_succeeded_total", kind=job.kind)
            log.info("job succeeded", extra={**fields, "outcome": "succeeded"})
        elif isinstance(outcome, Failed):
            failure = outcome.failure
            row = await self.store.fail_job(job.id, me, failure.to_error(), failure.retryable)
            self.metrics.inc("worker_jobs_failed_total", kind=job.kind)
            self._due_again(row)
            log.warning(
                "job failed: %s",
                failure.message[:500],
                extra={**fields, "outcome": f"failed->{row.status}", "error_type": failure.type},
            )
        elif isinstance(outcome, Deferred):
            row = await self.store.defer_job(job.id, me, outcome.run_at, outcome.reason)
            self.metrics.inc("worker_jobs_deferred_total", kind=job.kind)
            self._due_again(row)
            log.info(
                "job deferred until %s",
                outcome.run_at.isoformat(),
                extra={**fields, "outcome": "deferred", "reason": outcome.reason},
            )
        elif outcome.reason == "cancel":
            error = {"type": "cancelled", "message": "cancelled by the user while running"}
            await self.store.fail_job(job.id, me, error, False)
            self.metrics.inc("worker_jobs_cancelled_total", kind=job.kind)
            log.info("job cancelled", extra={**fields, "outcome": "cancelled"})

    def _due_again(self, row: JobRow) -> None:
        # A row it cannot read arms no timer: the sweep finds the job when it is due.
        if isinstance(row, Job) and row.status == "queued":
            self._due(row)
