"""Retention maintenance: delete the files of deleted jobs, and orphaned files, through the
ArtifactStore (the Storage API), then acknowledge them in SQL.

SQL decides what goes (the public.artifact_deletions outbox, filled in the transaction that
deletes jobs, and by ``enqueue_orphaned_artifacts``); the worker only carries it out, because
hosted Supabase deletes Storage objects through its API alone. Every step is idempotent: a
batch whose removal or acknowledgement fails stays leased and is claimed again after its lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta

from worker.core.errors import StoreError
from worker.core.metrics import Metrics
from worker.core.ports import MAX_REMOVE_BATCH, ArtifactStore, RetentionStore

log = logging.getLogger("worker.retention")
# ack_artifact_deletions' answer for an id no longer queued.
ALREADY_ACKNOWLEDGED = "not in the outbox"


@dataclass(frozen=True)
class RetentionConfig:
    batch: int = 100
    lease_seconds: int = 300
    orphan_grace: timedelta = timedelta(days=1)
    max_orphans: int = 1000
    # One run drains at most this many batches, so a huge backlog cannot starve the next run's
    # orphan search; what is left is taken by the next run.
    max_batches: int = 100

    def __post_init__(self) -> None:
        if not 1 <= self.batch <= MAX_REMOVE_BATCH:
            raise ValueError(f"batch: must be between 1 and {MAX_REMOVE_BATCH}, got {self.batch}")


@dataclass
class RetentionReport:
    purged_jobs: int | None = None  # None: this run did not purge (pg_cron does)
    orphans_queued: int = 0
    removed: int = 0  # outbox rows acknowledged: their object is gone
    not_removed: int = 0  # outbox rows left for a later run
    failed: str | None = None  # why the run stopped early

    def line(self) -> str:
        parts = [] if self.purged_jobs is None else [f"purged {self.purged_jobs} finished job(s)"]
        parts += [
            f"queued {self.orphans_queued} orphaned object(s)",
            f"deleted {self.removed} object(s) through the artifact store",
            f"{self.not_removed} left for a later run",
        ]
        return "; ".join(parts) + (f" (stopped: {self.failed})" if self.failed else "")


class Retention:
    def __init__(
        self,
        store: RetentionStore,
        artifacts: ArtifactStore,
        config: RetentionConfig | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.config = config or RetentionConfig()
        self.metrics = metrics or Metrics()

    async def run_once(self, purge_older_than: timedelta | None = None) -> RetentionReport:
        """Purge (if asked), queue orphans, then drain the outbox. Store errors end the run early
        and are reported, not raised: what was not done stays in the outbox."""
        report = RetentionReport()
        try:
            if purge_older_than is not None:
                report.purged_jobs = await self.store.purge_finished_jobs(purge_older_than)
            report.orphans_queued = await self.store.enqueue_orphaned_artifacts(
                self.config.orphan_grace, self.config.max_orphans
            )
            for _ in range(self.config.max_batches):
                if not await self._drain_batch(report):
                    break
        except StoreError as exc:
            report.failed = str(exc)[:300]
            log.warning("retention run stopped: %s", report.failed)
        self.metrics.inc("worker_artifacts_deleted_total", report.removed)
        return report

    async def _drain_batch(self, report: RetentionReport) -> bool:
        """One leased batch: remove, acknowledge. True while a full batch suggests more is due."""
        rows = await self.store.claim_artifact_deletions(self.config.batch, self.config.lease_seconds)
        if not rows:
            return False
        await self.artifacts.remove([row.name for row in rows])
        answers = await self.store.ack_artifact_deletions([row.id for row in rows])
        for row in rows:
            reason = answers.get(row.id, "no answer")
            if reason is None:
                report.removed += 1
            elif reason == ALREADY_ACKNOWLEDGED:
                # Its lease ran out while this worker was slow, and another replica finished it.
                log.info("artifact %s was acknowledged by another worker", row.name)
            else:
                report.not_removed += 1
                log.warning("artifact %s not acknowledged: %s", row.name, reason)
        return len(rows) == self.config.batch


async def run_periodically(retention: Retention, interval: float, stopping: asyncio.Event) -> None:
    """Run retention now and then every ``interval`` seconds until ``stopping`` is set: a timer,
    not a poll (the outbox is small work, done in batches at a steady pace)."""
    while not stopping.is_set():
        try:
            report = await retention.run_once()
        except Exception:  # a bug or an artifact-store surprise must not end maintenance for good
            log.exception("retention run failed")
        else:
            if report.removed or report.not_removed or report.orphans_queued or report.failed:
                log.info("retention: %s", report.line())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval):
                await stopping.wait()
