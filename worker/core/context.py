"""What a handler gets: its job, a model, artifact storage, and progress reporting."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from worker.core.errors import InvalidArgument, LeaseLost, StoreUnavailable, UnsupportedOperation
from worker.core.jobs import Job
from worker.core.llm import ModelAnswer, ModelChain
from worker.core.ports import ArtifactStore, Clock, ModelCall, QueueStore

log = logging.getLogger("worker.job")
MAX_PARTIAL_CHARS = 60_000  # report_progress takes at most 64 KiB per call


@dataclass
class JobContext:
    job: Job
    worker_id: str
    store: QueueStore
    clock: Clock
    model_or_none: ModelChain | None = None
    artifacts_or_none: ArtifactStore | None = None
    # Every answer a handler got, in order: the result says which model gave the last one. (Each
    # provider call that answered also goes to the usage ledger: ``record_call``.)
    model_calls: list[ModelAnswer] = field(default_factory=list)
    _bound: ModelChain | None = field(default=None, init=False, repr=False)
    # Reports go out in the background, one at a time and in call order, so a handler never waits
    # for a round trip to the queue before calling its model (under load that round trip was most
    # of the worker's own time per job: bench/FIXES.md). Every report is sent (the plugin shows
    # each batch), the percentage never moves backwards, and the outcome is recorded after them.
    _pending: deque[dict[str, Any]] = field(default_factory=deque, init=False, repr=False)
    _sender: asyncio.Task[None] | None = field(default=None, init=False, repr=False)
    _last_percent: float = field(default=-1.0, init=False, repr=False)
    _lost: LeaseLost | None = field(default=None, init=False, repr=False)

    @property
    def model(self) -> ModelChain:
        """The kind's models (its fallback chain); every call that answers is recorded in the
        usage ledger."""
        if self.model_or_none is None:
            raise UnsupportedOperation(f"no model is configured for kind {self.job.kind}")
        if self._bound is None:
            self._bound = self.model_or_none.for_job(self.model_calls.append, self.record_call)
        return self._bound

    def record_call(self, call: ModelCall) -> None:
        """Queue a model call for the usage ledger (returns at once). Recorded even when the
        lease is lost: the call was made, and paid for."""
        self._queue({"usage": call})

    @property
    def answered_by(self) -> dict[str, object] | None:
        """For the job's result: the model that gave the last answer, and whether it was a fallback."""
        if not self.model_calls:
            return None
        last = self.model_calls[-1]
        return {"provider": last.route.provider, "model": last.route.model, "fallback": last.position > 0}

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
        self._queue({"percent": percent, "message": message})

    async def partial(self, text: str) -> None:
        """Queue streamed text (returns at once); all of it is sent, in order. Pieces queued
        behind a call in flight go out together: under load one call per piece fell behind the
        stream and delayed the job's end (bench/FIXES.md)."""
        self._check_lease()
        if not text:
            return
        last = self._pending[-1] if self._pending else None
        if last is not None and "partial" in last and len(last["partial"]) + len(text) <= MAX_PARTIAL_CHARS:
            last["partial"] += text
        else:
            self._queue({"partial": text})

    async def flush(self) -> None:
        """Wait until every queued report was sent (or refused). The runtime calls it before
        recording the outcome, so a client sees every report, in order, before the final state."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    def _check_lease(self) -> None:
        if self._lost is not None:
            raise self._lost

    def _queue(self, what: dict[str, Any]) -> None:
        self._pending.append(what)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name=f"progress-{self.job.id}")

    async def _send(self) -> None:
        while self._pending:
            what = self._pending.popleft()
            try:
                if "usage" in what:
                    await self._record_usage(what["usage"])
                else:
                    await self._report(**{k: v for k, v in what.items() if v is not None})
            except LeaseLost as exc:
                self._lost = exc
                # Progress no longer matters; the ledger still does.
                self._pending = deque(w for w in self._pending if "usage" in w)
            except Exception:  # a bug here must not stop later reports, nor go unseen
                log.exception("progress report failed", extra=self.fields)

    async def _record_usage(self, call: ModelCall) -> None:
        # Best effort like progress: a blip must not fail a job whose model call succeeded.
        try:
            cost = await self.store.record_usage(self.job.id, self.worker_id, max(1, self.job.attempts), call)
        except (StoreUnavailable, InvalidArgument) as exc:
            log.warning("usage not recorded: %s", exc, extra=self.fields)
            return
        if cost is None:
            log.warning("model %s/%s has no price in public.model_prices", call.provider, call.model, extra=self.fields)

    async def _report(self, **what: Any) -> None:
        # Progress is best effort: a blip in the connection must not fail the job. A lost lease
        # (LeaseLost) does propagate: the job is no longer ours and must stop.
        try:
            await self.store.report_progress(self.job.id, self.worker_id, **what)
        except (StoreUnavailable, InvalidArgument) as exc:
            log.warning("progress not recorded: %s", exc, extra=self.fields)
