"""The in-memory fake's rows (worker.adapters.memory): a jobs row with the columns the queue
uses, how the port reads it back, and the seed values of public.job_kinds."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from worker.core.errors import InvalidArgument, StoreError
from worker.core.job_rows import read_job
from worker.core.jobs import Job, JobRow

# Mirrors the seed rows of public.job_kinds (20261123000100_jobs_schema.sql).
DEFAULT_KINDS: dict[str, tuple[int, int, int]] = {  # kind: (max_attempts, timeout_seconds, max_running_per_user)
    "generate_design": (3, 180, 2),
    "rename_layers": (3, 120, 3),
    "generate_edits": (3, 180, 1),
    "generate_image": (2, 180, 1),
}
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


def retry_delay(attempt: int, jitter: float) -> timedelta:
    """private.retry_delay: exponential from 5 s, capped at 10 min, equal jitter."""
    base = min(600.0, 5.0 * 2 ** (max(attempt, 1) - 1))
    return timedelta(seconds=base / 2 + base / 2 * max(0.0, min(1.0, jitter)))


@dataclass
class Row:
    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    payload: dict[str, Any]
    max_attempts: int
    run_at: datetime
    created_at: datetime
    priority: int = 0
    status: str = "queued"
    attempts: int = 0
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    progress: dict[str, Any] = field(default_factory=lambda: {"percent": 0, "message": None})
    started_at: datetime | None = None
    finished_at: datetime | None = None
    # Values as the API would send them, over the typed ones: a row the worker cannot read
    # (see ``MemoryStore.corrupt``). The queue's own logic keeps using the typed fields.
    wire: dict[str, Any] = field(default_factory=dict)

    def __setattr__(self, name: str, value: Any) -> None:
        wire = self.__dict__.get("wire")
        if wire:  # writing a column replaces what it held, as an UPDATE does
            wire.pop(name, None)
        super().__setattr__(name, value)

    def to_job(self) -> Job:
        return Job.model_validate(self.__dict__)

    def to_row(self) -> JobRow | None:
        """The row as the port answers with it: read the way the real adapters read theirs."""
        return read_job({**self.__dict__, **self.wire})


def rows_of(rows: list[Row]) -> list[JobRow]:
    return [job for row in rows if (job := row.to_row()) is not None]


def row_of(row: Row, fn: str) -> JobRow:
    job = row.to_row()
    if job is None:  # as an adapter does when the one row it got back has no usable id
        raise StoreError(f"{fn}: returned no row")
    return job


@dataclass
class Event:
    job_id: uuid.UUID
    type: str
    data: dict[str, Any]


def check_worker(worker_id: str) -> None:
    if not worker_id or not worker_id.strip():
        raise InvalidArgument("worker_id: must be a non-empty string")
    if len(worker_id) > 200:
        raise InvalidArgument(f"worker_id: must be at most 200 characters, got {len(worker_id)}")


def check_lease(lease_seconds: int) -> None:
    if not 5 <= lease_seconds <= 3600:
        raise InvalidArgument(f"lease_seconds: must be between 5 and 3600, got {lease_seconds}")
