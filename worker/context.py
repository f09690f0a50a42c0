"""What a handler gets: its job, a model, artifact storage, and progress reporting."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from worker.clock import Clock
from worker.errors import InvalidArgument, StoreUnavailable, UnsupportedOperation
from worker.jobs import Job
from worker.llm import LimitedModel
from worker.ports import ArtifactStore, QueueStore

log = logging.getLogger("worker.job")


@dataclass
class JobContext:
    job: Job
    worker_id: str
    store: QueueStore
    clock: Clock
    model_or_none: LimitedModel | None = None
    artifacts_or_none: ArtifactStore | None = None
    # Handlers report from concurrent tasks (rename_layers' batches): reports go out one at a
    # time, in call order, and the percentage never moves backwards.
    _report_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)
    _last_percent: float = field(default=-1.0, init=False, repr=False)

    @property
    def model(self) -> LimitedModel:
        if self.model_or_none is None:
            raise UnsupportedOperation(f"no model is configured for kind {self.job.kind}")
        return self.model_or_none

    @property
    def artifacts(self) -> ArtifactStore:
        if self.artifacts_or_none is None:
            raise UnsupportedOperation("no artifact store is configured")
        return self.artifacts_or_none

    @property
    def fields(self) -> dict[str, Any]:
        return {"job_id": self.job.id, "kind": self.job.kind, "attempt": self.job.attempts}

    async def progress(self, percent: float | None = None, message: str | None = None) -> None:
        async with self._report_lock:
            if percent is not None:
                if percent < self._last_percent:
                    return  # overtaken by a later report; stale
                self._last_percent = percent
            await self._report(percent=percent, message=message)

    async def partial(self, text: str) -> None:
        if text:
            async with self._report_lock:
                await self._report(partial=text)

    async def _report(self, **what: Any) -> None:
        # Progress is best effort: a blip in the connection must not fail the job. A lost lease
        # (LeaseLost) does propagate: the job is no longer ours and must stop.
        try:
            await self.store.report_progress(self.job.id, self.worker_id, **what)
        except (StoreUnavailable, InvalidArgument) as exc:
            log.warning("progress not recorded: %s", exc, extra=self.fields)
