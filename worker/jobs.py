"""Rows of the queue as the worker sees them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict


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
    run_at: datetime
    lease_expires_at: datetime | None = None
    worker_id: str | None = None
    cancel_requested: bool = False
    error: dict[str, Any] | None = None
    result: dict[str, Any] | list[Any] | None = None
    progress: dict[str, Any] = {}


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
    run_at: datetime | None = None
