"""The ports: what the core needs from the outside world, as narrow protocols.

``QueueStore`` has one method per queue RPC (River-style: one SQL statement per operation);
adapters in ``worker.adapters`` implement it over supabase-py or psycopg, and an in-memory fake
does for unit tests. All three pass the same conformance suite. Methods answering with job rows
read each row on its own (``worker.job_rows``): a row the worker cannot read comes back as an
``UnparseableJob`` instead of raising, so the other rows of the answer are not lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol

from worker.jobs import JobHint, JobKind, JobRow


class QueueStore(Protocol):
    async def claim_jobs(
        self, worker_id: str, kinds: Sequence[str] | None, max_jobs: int, lease_seconds: int
    ) -> list[JobRow]: ...

    async def renew_leases(self, worker_id: str, job_ids: Sequence[uuid.UUID], lease_seconds: int) -> list[JobRow]: ...

    async def report_progress(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        *,
        percent: float | None = None,
        message: str | None = None,
        partial: str | None = None,
    ) -> None: ...

    async def complete_job(self, job_id: uuid.UUID, worker_id: str, result: dict[str, Any]) -> JobRow: ...

    async def complete_jobs(
        self, worker_id: str, completions: Sequence[tuple[uuid.UUID, dict[str, Any]]]
    ) -> dict[uuid.UUID, str | None]:
        """Complete many held jobs at once: job id → None when completed, else why not (lease lost)."""
        ...

    async def fail_job(self, job_id: uuid.UUID, worker_id: str, error: dict[str, Any], retryable: bool) -> JobRow: ...

    async def defer_job(self, job_id: uuid.UUID, worker_id: str, run_at: datetime, reason: str) -> JobRow: ...

    async def release_jobs(self, worker_id: str, job_ids: Sequence[uuid.UUID] | None) -> list[JobRow]: ...

    async def reap_expired_leases(self) -> int: ...

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None: ...

    async def job_kinds(self) -> list[JobKind]: ...

    async def read_view(self, view: str) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class Wakeups(Protocol):
    """Push notifications about queued jobs (Realtime or LISTEN/NOTIFY)."""

    @property
    def connected(self) -> bool: ...

    async def start(self, on_job: Callable[[JobHint], None], on_joined: Callable[[], None]) -> None:
        """Start listening in the background and return at once.

        The adapter keeps (re)connecting on its own; ``on_joined`` runs every time the
        subscription becomes live again, so the worker can sweep for what it missed meanwhile.
        """

    async def close(self) -> None: ...


class ArtifactStore(Protocol):
    """Where generated files go (Storage bucket job-artifacts, or a folder)."""

    async def upload(self, path: str, data: bytes, content_type: str) -> None: ...
