"""Rows of the queue as the worker sees them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict

from worker.core.errors import InvalidJobRow


class Job(BaseModel):
    """A public.jobs row (the columns the worker uses)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    status: str
    priority: int = 0
    payload: dict[str, Any] = {}
    attempts: int = 0
    max_attempts: int = 1
    # Aware only: the worker compares these with its clock, and a naive value could not be.
    run_at: AwareDatetime
    lease_expires_at: AwareDatetime | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    result: dict[str, Any] | list[Any] | None = None
    progress: dict[str, Any] = {}


@dataclass(frozen=True)
class UnparseableJob:
    """A row the worker cannot read as a ``Job`` (say run_at = -infinity, written by an operator
    or an older version): what could be read of it, and the failure to record for it.

    Adapters return it in place of a ``Job`` so that one such row is failed on its own instead
    of taking the rest of the batch (and the worker) down with it.
    """

    id: uuid.UUID
    failure: InvalidJobRow
    kind: str = "unknown"
    status: str | None = None
    attempts: int = 0


JobRow = Job | UnparseableJob


class JobKind(BaseModel):
    """A public.job_kinds row: the limits the worker honours (timeout)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str
    timeout_seconds: int = 300
    max_attempts: int = 3


class JobHint(BaseModel):
    """What a wake-up says about a job: enough to decide between claiming now and a timer."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    kind: str
    status: str = "queued"
    run_at: AwareDatetime | None = None


@dataclass(frozen=True)
class Wake:
    """A routed wake-up (20261204000600_worker_wakeups.sql). ``hints``: jobs queued for the
    worker's kinds (claim now, or arm a timer). A worker that parks with hand-offs may also get
    ``jobs``: rows already claimed for it by the statement that queued them, and ``parked``:
    the database kept it parked (it owes no claim: the hand-off did all a claim would have)."""

    hints: tuple[JobHint, ...]
    jobs: tuple[JobRow, ...] = ()
    parked: bool = False
