"""The ports: everything the core needs from the outside world, as narrow protocols, in one place.

``QueueStore`` (the queue API), ``Wakeups`` (push notifications), ``ArtifactStore`` (files),
``ModelProvider`` (a model SDK, with the request and image types it speaks), ``ProviderControl``
(shared provider capacity, cooldowns and fallback chains, kept in SQL) and ``Clock`` (time) are
what running jobs needs; ``Dashboard`` is the read-only view ``python -m worker stats`` prints,
kept off the queue port because running jobs never reads it.

``QueueStore`` has one method per queue RPC (River-style: one SQL statement per operation);
adapters in ``worker.adapters`` implement it over supabase-py or psycopg, and an in-memory fake
does for unit tests. All three pass the same conformance suite. Methods answering with job rows
read each row on its own (``worker.core.job_rows``): a row the worker cannot read comes back as an
``UnparseableJob`` instead of raising, so the other rows of the answer are not lost.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, get_args

from worker.core.jobs import JobKind, JobRow, Wake

# The dashboard views (supabase/migrations), the only relations ``Dashboard.read_view`` reads.
View = Literal[
    "job_stats", "active_jobs", "pending_jobs_queue", "spend_by_user_month", "cost_per_kind", "tokens_per_kind"
]
VIEWS: tuple[View, ...] = get_args(View)


@dataclass(frozen=True)
class ProgressReport:
    """One item of ``report_progress_batch``: a progress step and/or a piece of streamed text;
    ``started`` announces the job as running (its claim was quiet: claim_jobs_or_park)."""

    job_id: uuid.UUID
    percent: float | None = None
    message: str | None = None
    partial: str | None = None
    started: bool = False

    def item(self) -> dict[str, Any]:
        """The item as the SQL API takes it (absent fields left out)."""
        out: dict[str, Any] = {"job_id": str(self.job_id)}
        for key in ("percent", "message", "partial"):
            if (value := getattr(self, key)) is not None:
                out[key] = value
        if self.started:
            out["started"] = True
        return out

    @property
    def bare(self) -> bool:
        """Only the announcement: nothing the client would not learn from the job's next message."""
        return self.percent is None and self.message is None and self.partial is None


class QueueStore(Protocol):
    async def claim_jobs(
        self,
        worker_id: str,
        kinds: Sequence[str] | None,
        max_jobs: int,
        lease_seconds: int,
        *,
        park_seconds: int | None = None,
        handed_seen: Sequence[uuid.UUID] | None = None,
    ) -> list[JobRow]:
        """Claim up to ``max_jobs``. With ``park_seconds``, a claim that comes back short also parks
        the worker (in the same transaction) so that the next job queued for its kinds wakes it,
        and only it, through its Wakeups; a full claim unparks it. With ``handed_seen`` as well
        (hand-offs), the next due job is claimed for the parked worker and sent in its wake-up,
        and the answer starts with the jobs handed to it that ``handed_seen`` does not list."""

    async def unpark(self, worker_id: str, handed_seen: Sequence[uuid.UUID] | None = None) -> None:
        """A stopping worker: wake-ups go to others from now on. Jobs handed to it that
        ``handed_seen`` does not list go back to the queue (attempt given back)."""

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

    async def report_progress_batch(
        self, worker_id: str, reports: Sequence[ProgressReport]
    ) -> dict[uuid.UUID, str | None]:
        """Apply many jobs' reports in one call, each job's in order: job id → None when accepted,
        else why not (lease lost). A bad item raises InvalidArgument naming it; nothing changes."""
        ...

    async def complete_job(self, job_id: uuid.UUID, worker_id: str, result: dict[str, Any]) -> JobRow: ...

    async def complete_jobs(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> dict[uuid.UUID, str | None]:
        """Complete many held jobs at once: job id → None when completed, else why not (lease lost).
        ``last_progress`` carries a job's last progress step (percent, message) into the same call;
        ``usage`` its model calls not yet recorded, recorded first in the same transaction, held
        or not (a bad record refuses the call: ``InvalidArgument`` naming completions[i].usage[j])."""
        ...

    async def complete_and_claim(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        kinds: Sequence[str] | None,
        max_jobs: int,
        lease_seconds: int,
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], list[JobRow]]:
        """complete_jobs (``last_progress``, ``usage`` as there), then claim_jobs, in one statement: (the
        completions' outcomes as complete_jobs answers them, the claimed rows). A bad argument of
        either part changes nothing."""
        ...

    async def report_and_complete(
        self,
        worker_id: str,
        reports: Sequence[ProgressReport],
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], dict[uuid.UUID, str | None]]:
        """report_progress_batch, then complete_jobs (``last_progress``, ``usage`` as there), in one
        statement: (the reports' outcomes, the completions' outcomes), each as its part answers.
        A bad argument of either part changes nothing."""
        ...

    async def fail_job(self, job_id: uuid.UUID, worker_id: str, error: dict[str, Any], retryable: bool) -> JobRow: ...

    async def defer_job(self, job_id: uuid.UUID, worker_id: str, run_at: datetime, reason: str) -> JobRow: ...

    async def release_jobs(self, worker_id: str, job_ids: Sequence[uuid.UUID] | None) -> list[JobRow]: ...

    async def reap_expired_leases(self) -> int: ...

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None: ...

    async def job_kinds(self) -> list[JobKind]: ...

    async def record_usage(self, job_id: uuid.UUID, worker_id: str, attempt: int, call: ModelCall) -> float | None:
        """Record one model call of the job's attempt in the usage ledger; its cost in USD at list
        price, None when the model has no price."""
        ...

    async def record_usage_batch(self, worker_id: str, records: Sequence[UsageRecord]) -> list[UsageRecorded]:
        """``record_usage`` for each record, in one call and in order; a job that no longer exists
        is answered ``recorded=False`` and the others are recorded. A malformed record raises
        InvalidArgument naming it (``calls[i].field``) and nothing is recorded."""
        ...

    async def close(self) -> None: ...


class Dashboard(Protocol):
    """The dashboard views, for ``python -m worker stats`` (the stores implement it too)."""

    async def read_view(self, view: str) -> list[dict[str, Any]]:
        """Up to 200 rows of one of ``VIEWS``; ValueError for any other name."""
        ...


class Wakeups(Protocol):
    """Wake-ups addressed to this worker (Realtime topic worker:<id>, or NOTIFY on its channel),
    sent by the database when a job is queued and the worker is parked (``claim_jobs`` with
    ``park_seconds``)."""

    @property
    def connected(self) -> bool: ...

    async def start(self, worker_id: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        """Start listening in the background and return at once.

        The adapter keeps (re)connecting on its own; ``on_joined`` runs every time the
        subscription becomes live again, so the worker can sweep for what it missed meanwhile.
        """

    async def close(self) -> None: ...


class ArtifactStore(Protocol):
    """Where generated files go (Storage bucket job-artifacts, or a folder)."""

    async def upload(self, path: str, data: bytes, content_type: str) -> None: ...

    async def remove(self, paths: Sequence[str]) -> None:
        """Delete these files (at most ``MAX_REMOVE_BATCH``); one that is already gone is fine."""
        ...


# Hosted Storage deletes at most 1,000 objects per request (supabase/storage src/storage/limits.ts).
MAX_REMOVE_BATCH = 1000


@dataclass(frozen=True)
class ArtifactDeletion:
    """A row of the public.artifact_deletions outbox: one object to delete, leased to this worker."""

    id: int
    bucket_id: str
    name: str
    job_id: uuid.UUID | None
    reason: str
    attempts: int


class RetentionStore(Protocol):
    """Retention (20261204000300_artifact_retention.sql): purging jobs fills an outbox of Storage
    objects, which the worker deletes through the Storage API and then acknowledges."""

    async def purge_finished_jobs(self, older_than: timedelta) -> int: ...

    async def enqueue_orphaned_artifacts(self, grace: timedelta, max_items: int) -> int: ...

    async def claim_artifact_deletions(self, max_items: int, lease_seconds: int) -> list[ArtifactDeletion]: ...

    async def ack_artifact_deletions(self, ids: Sequence[int]) -> dict[int, str | None]:
        """Outbox id → None when acknowledged (its object is gone), else why not."""
        ...


class Clock(Protocol):
    """Wall time for the database, monotonic time for intervals, and sleeping."""

    def now(self) -> datetime: ...

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


# -- models ------------------------------------------------------------------------------------
Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class TextRequest:
    system: str
    messages: tuple[tuple[Role, str], ...]
    max_tokens: int = 4096

    @classmethod
    def ask(cls, system: str, prompt: str, max_tokens: int = 4096) -> TextRequest:
        return cls(system, (("user", prompt),), max_tokens)

    def followed_by(self, answer: str, prompt: str) -> TextRequest:
        return TextRequest(self.system, (*self.messages, ("assistant", answer), ("user", prompt)), self.max_tokens)


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class ModelUsage:
    """What one model call used, as the provider's response reports it."""

    input_tokens: int = 0  # every prompt token, cached ones included
    output_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens read from the provider's cache (billed lower)
    images: int = 0


@dataclass(frozen=True)
class ModelCall:
    """One model call, for the usage ledger (``QueueStore.record_usage``)."""

    provider: str
    model: str
    usage: ModelUsage
    latency_ms: int


@dataclass(frozen=True)
class UsageRecord:
    """One answered model call of a job's attempt, for ``QueueStore.record_usage_batch``."""

    job_id: uuid.UUID
    attempt: int
    call: ModelCall

    def carried(self) -> dict[str, Any]:
        """The record as a complete_jobs item carries it (``usage``: the job id is the item's)."""
        return {k: v for k, v in self.item().items() if k != "job_id"}

    def item(self) -> dict[str, Any]:
        """The record as record_usage_batch takes it (one element of ``calls``)."""
        u = self.call.usage
        return {
            "job_id": str(self.job_id),
            "attempt": self.attempt,
            "provider": self.call.provider,
            "model": self.call.model,
            "input_tokens": u.input_tokens,
            "output_tokens": u.output_tokens,
            "cached_tokens": u.cached_tokens,
            "images": u.images,
            "latency_ms": self.call.latency_ms,
        }


@dataclass(frozen=True)
class UsageRecorded:
    """record_usage_batch's answer for one record: its cost (None when the model has no price),
    or why it was not recorded."""

    job_id: uuid.UUID
    recorded: bool
    cost_usd: float | None
    reason: str | None = None


# Providers hand each response's usage to this callback (it must not block).
UsageSink = Callable[[ModelUsage], None]


class ModelProvider(Protocol):
    """The one small interface both model providers (``worker.providers``) sit behind; they
    translate SDK errors into ``worker.core.errors`` failures and report each answered call's
    usage to ``on_usage``."""

    name: str

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str: ...

    def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]: ...

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage: ...

    async def close(self) -> None: ...


# -- shared provider capacity and fallback chains ----------------------------------------------
@dataclass(frozen=True)
class ModelRoute:
    """One model of one provider: an entry of a kind's fallback chain."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


# "unlimited": granted for a model with no provider_limits row (only a cooldown could refuse it).
CapacityReason = Literal["granted", "unlimited", "cooldown", "requests", "tokens"]


@dataclass(frozen=True)
class Capacity:
    """acquire_model_capacity's answer: granted, or why not and when asking again can succeed."""

    granted: bool
    wait_seconds: float = 0.0
    reason: CapacityReason = "granted"


@dataclass(frozen=True)
class CapacityRequest:
    """One model call's ask, for ``ProviderControl.acquire_model_capacity_batch``."""

    provider: str
    model: str
    tokens: int = 0

    def item(self) -> dict[str, Any]:
        """The request as acquire_model_capacity_batch takes it (one element of ``requests``)."""
        return {"provider": self.provider, "model": self.model, "tokens": self.tokens}


class ProviderControl(Protocol):
    """What every replica shares about the providers, decided in SQL (one RPC each): capacity
    under the provider-wide limits, cooldowns after a 429/529, and each kind's fallback chain."""

    async def acquire_model_capacity(self, provider: str, model: str, tokens: int) -> Capacity: ...

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        """acquire_model_capacity for each request in one call; answers in the requests' order.
        A malformed request refuses the whole batch (``InvalidArgument`` naming ``requests[i]``)."""
        ...

    async def report_model_rate_limit(self, provider: str, model: str, status: int, retry_after: float) -> datetime:
        """Open (or extend) the shared cooldown; returns when it ends."""
        ...

    async def kind_models(self) -> dict[str, list[ModelRoute]]:
        """public.kind_models: each kind's chain in position order (kinds without rows absent)."""
        ...
