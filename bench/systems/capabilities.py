"""Narrow extensions of the system contract (base.System) for the scenarios that need more than
a no-op queue: client notifications (notify) and a real AI worker under plugin users (ai).

A scenario picks the systems that have the capability with ``isinstance`` (the protocols are
runtime-checkable) and runs them through ``harness.each_system`` like the other scenarios. Today
only our own systems have them: procrastinate and pgqueuer push nothing to end users and run no
AI handlers, so those scenarios compare clients and measure the product, not competitors.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from bench.systems.base import System


@dataclass(frozen=True)
class StatusChange:
    """One committed job status change, as the call that made it returned."""

    job_id: str
    status: str
    t_commit: float  # time.time() right after the committing call returned
    updated_at: float  # the row's updated_at (database clock), epoch seconds


class JobLifecycle(Protocol):
    """Takes a user's job through queued → running → succeeded, one change per transaction, the
    way production makes them; each call returns once its transaction committed."""

    def enqueue(self, kind: str, payload: dict[str, Any]) -> StatusChange: ...

    def claim(self, job_id: str, kind: str) -> StatusChange: ...

    def complete(self, job_id: str, result: dict[str, Any]) -> StatusChange: ...


class ClientAccess(System, Protocol):
    """Plugin users who talk to the system's gateway themselves: accounts and their credentials."""

    def create_users(self, database: str, count: int) -> list[str]:
        """``count`` new user ids."""
        ...

    def anon_key(self, database: str) -> str:
        """The public key a client sends as ``apikey``."""
        ...

    def user_token(self, database: str, user_id: str) -> str:
        """A signed access token (JWT) for ``user_id``, valid for an hour."""
        ...

    def status_topic(self, user_id: str) -> str:
        """The private Realtime topic on which the user's job status changes are broadcast."""
        ...


@runtime_checkable
class Notifying(ClientAccess, Protocol):
    """Broadcasts every job status change to the job owner's clients (scenario notify)."""

    def prepare_notifications(self, database: str, kind: str) -> None:
        """The schema, with ``kind``'s per-user limits lifted: one user makes every change."""
        ...

    def lifecycle(self, database: str, user_id: str) -> AbstractContextManager[JobLifecycle]:
        """A driver of ``user_id``'s jobs through their statuses (harness side, synchronous)."""
        ...


@runtime_checkable
class RunsAiWorker(ClientAccess, Protocol):
    """Runs the product's AI job kinds against model endpoints (scenario ai)."""

    store: str  # how the worker reaches the queue: "supabase" (REST + Realtime) or "postgres"

    def prepare_product(self, database: str) -> None:
        """The schema with the job kinds and their limits as shipped."""
        ...

    def ai_worker(
        self,
        database: str,
        gateway: str,
        models: str,
        *,
        port: int,
        concurrency: int,
        provider_concurrency: int,
        artifacts: Path,
    ) -> tuple[list[str], dict[str, str]]:
        """argv and environment of one worker process that serves /health (200 once it can pick up
        jobs) and /metrics on ``port``, calls the models at ``models`` and keeps artifacts in
        ``artifacts`` where its store has no Storage of its own."""
        ...
