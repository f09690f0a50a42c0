"""What a handler gets: its job, a model, artifact storage, and progress reporting."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker.core.errors import UnsupportedOperation
from worker.core.jobs import Job
from worker.core.llm import ModelAnswer, ModelChain
from worker.core.ports import ArtifactStore, Clock, ModelCall, ProgressReport, QueueStore, UsageRecord, UsageRecorded
from worker.core.progress import ProgressBatcher
from worker.core.usage import UsageBatcher

log = logging.getLogger("worker.job")


@dataclass
class JobContext:
    job: Job
    worker_id: str
    store: QueueStore
    clock: Clock
    model_or_none: ModelChain | None = None
    artifacts_or_none: ArtifactStore | None = None
    # Every answer a handler got, in order: the result says which model gave the last one. (Each
    # provider call that answered also goes to the usage ledger: ``_holder``.)
    model_calls: list[ModelAnswer] = field(default_factory=list)
    # Progress and streamed text go to the worker's ProgressBatcher (one call for many jobs, paced
    # per job: worker/core/progress.py); a context made on its own gets a private, unpaced one.
    reports: ProgressBatcher | None = None
    _bound: ModelChain | None = field(default=None, init=False, repr=False)
    # Usage records are held until the outcome: a success carries them into complete_jobs (one
    # transaction, no call of their own); any other outcome sends them first through the worker's
    # UsageBatcher (one call for many jobs: worker/core/usage.py) and waits (settle).
    usage: UsageBatcher | None = None
    _held: list[UsageRecord] = field(default_factory=list, init=False, repr=False)
    _reports: list[ProgressReport] = field(default_factory=list, init=False, repr=False)
    _usage: deque[asyncio.Future[UsageRecorded | None]] = field(default_factory=deque, init=False, repr=False)
    _last_percent: float = field(default=-1.0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.reports is None:
            self.reports = ProgressBatcher(self.store, self.worker_id, self.clock, min_interval=0.0)
        if self.usage is None:
            self.usage = UsageBatcher(self.store, self.worker_id)
        self.reports.start(self.job.id)

    @property
    def model(self) -> ModelChain:
        """The kind's models (its fallback chain); every call that answers is recorded in the
        usage ledger."""
        if self.model_or_none is None:
            raise UnsupportedOperation(f"no model is configured for kind {self.job.kind}")
        if self._bound is None:
            self._bound = self.model_or_none.for_job(self.model_calls.append, self._holder())
        return self._bound

    def _holder(self) -> Callable[[ModelCall], None]:
        """What the chain calls for every model call that answered: the call is held for the usage
        ledger (returns at once) and goes with the outcome (``settle``, ``carried_usage``); held
        even when the lease is lost: the call was made, and paid for. Not a bound method: the
        chain this context keeps must not point back at it (a reference cycle per job, left for
        the full garbage collections to find)."""
        held, job_id, attempt = self._held, self.job.id, max(1, self.job.attempts)

        def hold(call: ModelCall) -> None:
            held.append(UsageRecord(job_id, attempt, call))

        return hold

    def carried_usage(self) -> tuple[UsageRecord, ...]:
        """After ``settle(carry=True)``: the model calls to record with the success (taken once)."""
        held = tuple(self._held)
        self._held.clear()  # the same list: the chain's holder appends to it
        return held

    def _send_held(self) -> None:
        for record in self._held:
            done = self._ledger.add(record)
            done.add_done_callback(functools.partial(self._priced, record.call))
            self._usage.append(done)
        self._held.clear()

    @property
    def answered_by(self) -> dict[str, object] | None:
        """For the job's result: the model that gave the last answer, and whether it was a fallback."""
        if not self.model_calls:
            return None
        last = self.model_calls[-1]
        waited = max(answer.waited for answer in self.model_calls)
        return {
            "provider": last.route.provider,
            "model": last.route.model,
            "fallback": last.position > 0,
            "cooldown_wait_s": round(waited, 3),
        }

    @property
    def artifacts(self) -> ArtifactStore:
        if self.artifacts_or_none is None:
            raise UnsupportedOperation("no artifact store is configured")
        return self.artifacts_or_none

    @property
    def fields(self) -> dict[str, Any]:
        return {"job_id": self.job.id, "kind": self.job.kind, "attempt": self.job.attempts}

    async def progress(self, percent: float | None = None, message: str | None = None) -> None:
        """Queue a progress update (returns at once). Raises LeaseLost if an earlier report
        found that the job is no longer this worker's: the handler must stop."""
        self._check_lease()
        if percent is not None:
            if percent < self._last_percent:
                return  # overtaken by a later report; stale
            self._last_percent = percent
        self._batcher.progress(self.job.id, percent, message)

    async def partial(self, text: str) -> None:
        """Queue streamed text (returns at once); all of it is sent, in order, in pieces."""
        self._check_lease()
        if text:
            self._batcher.partial(self.job.id, text)

    async def settle(self, *, carry: bool) -> ProgressReport | None:
        """Before the outcome: every queued report reaches the client, in order, before the final
        state. With ``carry`` (a success) they ride with the outcome instead of a call of their
        own: a trailing progress step is returned (the success's last progress), the reports
        before it are kept (``carried_reports``), and so are the usage records
        (``carried_usage``); without, the reports and the usage records are sent and waited for."""
        reports = await self._batcher.settle(self.job.id, carry=carry)
        carried = reports.pop() if reports and reports[-1].partial is None else None
        self._reports = reports
        if not carry:
            self._send_held()
        while self._usage:
            await asyncio.shield(self._usage.popleft())
        return carried

    def carried_reports(self) -> tuple[ProgressReport, ...]:
        """After ``settle(carry=True)``: the reports to apply before the success, in the same call."""
        reports, self._reports = tuple(self._reports), []
        return reports

    async def flush(self) -> None:
        """Send every queued report and usage record (``settle`` without carrying)."""
        await self.settle(carry=False)

    @property
    def _ledger(self) -> UsageBatcher:
        assert self.usage is not None  # set in __post_init__
        return self.usage

    @property
    def _batcher(self) -> ProgressBatcher:
        assert self.reports is not None  # set in __post_init__
        return self.reports

    def _check_lease(self) -> None:
        if (lost := self._batcher.lost(self.job.id)) is not None:
            raise lost

    def _priced(self, call: ModelCall, done: asyncio.Future[UsageRecorded | None]) -> None:
        answer = None if done.cancelled() else done.result()
        if answer is None:
            return  # not recorded; the batcher logged why
        if not answer.recorded:
            log.warning("usage not recorded: %s", answer.reason, extra=self.fields)
        elif answer.cost_usd is None:
            log.warning("model %s/%s has no price in public.model_prices", call.provider, call.model, extra=self.fields)
