"""The usage ledger's records of jobs that did not succeed, sent in few calls: one
``record_usage_batch`` carries whatever model calls were handed over, for any job, while the
previous call was in flight. (A success carries its own records in its ``complete_jobs`` item:
one transaction with the outcome, no call of their own; see ``JobContext.record_call``.)

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

    async def _call(self, items: list[UsageRecord]) -> list[UsageRecorded | Exception | None]:
        try:
            return list(await self._record(items))
        except Exception:  # a bug here must not stop later records, nor go unseen; None: not recorded
            log.exception("usage batch failed")
            return [None] * len(items)

    async def _record(self, records: list[UsageRecord]) -> list[UsageRecorded | None]:
        try:
            answers = await self.store.record_usage_batch(self.worker_id, records)
        except InvalidArgument as exc:
            if len(records) > 1:  # one bad record refuses the batch: the others go alone
                return [(await self._record([record]))[0] for record in records]
            log.warning("usage of job %s not recorded: %s", records[0].job_id, exc)
            return [None]
        except StoreUnavailable as exc:
            log.warning("usage of %d model call(s) not recorded: %s", len(records), exc)
            return [None] * len(records)
        if len(answers) != len(records):
            log.error("record_usage_batch answered %d rows for %d records", len(answers), len(records))
            return [None] * len(records)
        return list(answers)
