"""The usage ledger's records of jobs that did not succeed, sent in few calls: one
``record_usage_batch`` carries whatever model calls were handed over, for any job, while the
previous call was in flight. (A success carries its own records in its ``complete_jobs`` item:
one transaction with the outcome, no call of their own; see ``JobContext._holder``.)

As for progress and outcomes there is no timer: a lone record goes out at once, and under load a
batch grows to what arrived during one round trip. A job's outcome waits for its own records
(``JobContext.settle``): a finished job stops reserving its kind's estimated cost, so its spend
must be in the ledger by then or a concurrent enqueue could slip under the user's budget.
Recording is best effort, like progress: a blip loses the batch's records (logged), never a job."""

from __future__ import annotations

import logging

from worker.core.coalesce import Coalescer
from worker.core.errors import InvalidArgument, StoreUnavailable
from worker.core.ports import QueueStore, UsageRecord, UsageRecorded

log = logging.getLogger("worker.usage")
MAX_ITEMS = 500  # well under the SQL function's 1000


class UsageBatcher(Coalescer[UsageRecord, UsageRecorded | None]):
    def __init__(self, store: QueueStore, worker_id: str) -> None:
        super().__init__("usage-batch", MAX_ITEMS)
        self.store = store
        self.worker_id = worker_id

    async def _call(self, items: list[UsageRecord]) -> list[UsageRecorded]:
        return await self.store.record_usage_batch(self.worker_id, items)

    def _failed(self, items: list[UsageRecord], exc: Exception) -> list[UsageRecorded | Exception | None]:
        # Not recorded (None), logged; a bug here must not stop later records, nor go unseen.
        if isinstance(exc, InvalidArgument):
            log.warning("usage of job %s not recorded: %s", items[0].job_id, exc)
        elif isinstance(exc, StoreUnavailable):
            log.warning("usage of %d model call(s) not recorded: %s", len(items), exc)
        else:
            log.error("usage of %d model call(s) not recorded", len(items), exc_info=exc)
        return [None] * len(items)
