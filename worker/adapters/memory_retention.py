"""In-memory fakes for retention: a bucket (``MemoryObjects``, an ArtifactStore that also plays
storage.objects) and the outbox RPCs (``MemoryRetention``) over a ``MemoryStore``'s jobs.

Mirrors 20261204000300_artifact_retention.sql; tests/integration/test_worker_retention.py runs
the same assertions against it and both real adapters.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from worker.adapters.memory import MemoryStore
from worker.adapters.memory_rows import TERMINAL
from worker.core.errors import InvalidArgument
from worker.core.ports import ArtifactDeletion, Clock

BUCKET = "job-artifacts"
_JOB_FOLDER = re.compile(r"^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/([0-9a-f-]{36})/")
_TEN_YEARS = timedelta(days=3652)


class MemoryObjects:
    """Object name → (bytes, content type, created at); removing a missing name is fine."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.objects: dict[str, tuple[bytes, str, datetime]] = {}
        self.removed: list[str] = []  # every name a remove call was given, in order
        self.fail_next: list[Exception] = []

    async def upload(self, path: str, data: bytes, content_type: str) -> None:
        self.objects[path] = (data, content_type, self.clock.now())

    async def remove(self, paths: Sequence[str]) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)
        self.removed.extend(paths)
        for path in paths:
            self.objects.pop(path, None)


@dataclass(frozen=True)
class _Queued:
    row: ArtifactDeletion
    claimed_until: datetime | None = None


class MemoryRetention:
    def __init__(self, store: MemoryStore, objects: MemoryObjects) -> None:
        self.store = store
        self.objects = objects
        self.outbox: dict[int, _Queued] = {}
        self._next_id = 1

    def _queue(self, name: str, job_id: uuid.UUID | None, reason: str) -> bool:
        if any(q.row.name == name for q in self.outbox.values()):
            return False  # unique (bucket_id, name)
        self.outbox[self._next_id] = _Queued(ArtifactDeletion(self._next_id, BUCKET, name, job_id, reason, 0))
        self._next_id += 1
        return True

    async def purge_finished_jobs(self, older_than: timedelta) -> int:
        self.store._call("purge_finished_jobs")
        _check_interval("older_than", older_than)
        cutoff = self.store.clock.now() - older_than
        gone = [
            r
            for r in self.store.rows.values()
            if r.status in TERMINAL and r.finished_at is not None and r.finished_at < cutoff
        ]
        for row in gone:
            folder = f"{row.user_id}/{row.id}/"
            names = {name for name in self.objects.objects if name.startswith(folder)}
            path = row.result.get("path") if isinstance(row.result, dict) else None
            if isinstance(path, str) and path.startswith(folder):
                names.add(path)
            for name in sorted(names):
                self._queue(name, row.id, "job_deleted")
            del self.store.rows[row.id]
        ids = {row.id for row in gone}
        self.store.events = [e for e in self.store.events if e.job_id not in ids]
        return len(gone)

    async def enqueue_orphaned_artifacts(self, grace: timedelta, max_items: int) -> int:
        self.store._call("enqueue_orphaned_artifacts")
        _check_interval("grace", grace)
        if not 1 <= max_items <= 10000:
            raise InvalidArgument(f"max_items: must be between 1 and 10000, got {max_items}")
        cutoff = self.store.clock.now() - grace
        queued = {q.row.name for q in self.outbox.values()}
        orphans = [
            name
            for name, (_, _, created) in sorted(self.objects.objects.items())
            if created <= cutoff and name not in queued and not self._owned(name)
        ]
        return sum(self._queue(name, None, "orphaned") for name in orphans[:max_items])

    def _owned(self, name: str) -> bool:
        match = _JOB_FOLDER.match(name)
        if match is None:
            return False
        try:
            row = self.store.rows.get(uuid.UUID(match.group(2)))
        except ValueError:
            return False
        return row is not None and str(row.user_id) == match.group(1)

    async def claim_artifact_deletions(self, max_items: int, lease_seconds: int) -> list[ArtifactDeletion]:
        self.store._call("claim_artifact_deletions")
        if not 1 <= max_items <= 1000:
            raise InvalidArgument(f"max_items: must be between 1 and 1000, got {max_items}")
        if not 5 <= lease_seconds <= 3600:
            raise InvalidArgument(f"lease_seconds: must be between 5 and 3600, got {lease_seconds}")
        now = self.store.clock.now()
        due = sorted(
            (q for q in self.outbox.values() if q.claimed_until is None or q.claimed_until <= now),
            key=lambda q: (q.claimed_until is not None, q.claimed_until or now, q.row.id),
        )[:max_items]
        claimed = []
        for q in due:
            row = replace(q.row, attempts=q.row.attempts + 1)
            self.outbox[row.id] = _Queued(row, now + timedelta(seconds=lease_seconds))
            claimed.append(row)
        return claimed

    async def ack_artifact_deletions(self, ids: Sequence[int]) -> dict[int, str | None]:
        self.store._call("ack_artifact_deletions")
        if not ids:
            raise InvalidArgument("ids: must be a non-empty array of outbox ids")
        if len(ids) > 1000:
            raise InvalidArgument(f"ids: must hold at most 1000 items, got {len(ids)}")
        answers: dict[int, str | None] = {}
        for outbox_id in sorted(set(ids)):
            queued = self.outbox.get(outbox_id)
            if queued is None:
                answers[outbox_id] = "not in the outbox"
            elif queued.row.name in self.objects.objects:
                answers[outbox_id] = "object still in storage"
            else:
                del self.outbox[outbox_id]
                answers[outbox_id] = None
        return answers


def _check_interval(field: str, value: timedelta) -> None:
    if value < timedelta(0):
        raise InvalidArgument(f"{field}: must be a non-negative interval, got {value}")
    if value > _TEN_YEARS:
        raise InvalidArgument(f"{field}: must be at most 10 years, got {value}")
