"""The queue port's job operations as calls of the SQL API: one RPC each, named arguments in
native Python types. Adapters decide only how a call travels and how values are encoded, so the
mapping from port to RPC exists once."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from worker.core.errors import StoreError
from worker.core.job_rows import read_job_text, read_time
from worker.core.jobs import JobRow
from worker.core.ports import (
    ArtifactDeletion,
    Capacity,
    CapacityRequest,
    ModelCall,
    ModelRoute,
    ProgressReport,
    UsageRecord,
    UsageRecorded,
)


class RpcStore(ABC):
    # How this adapter's wake-ups travel (claim_jobs_or_park's wake_via): the database then sends
    # a parked worker only the message it can receive. None: both.
    wake_via: str | None = None

    @abstractmethod
    async def _jobs(self, name: str, args: dict[str, Any]) -> list[JobRow]:
        """Call ``name`` and return the job rows it answers with, each read on its own
        (``worker.core.job_rows``): a row the worker cannot read comes back as an ``UnparseableJob``."""

    async def _job(self, name: str, args: dict[str, Any]) -> JobRow:
        """Call ``name`` and return its single job row (StoreError if none)."""
        rows = await self._jobs(name, args)
        if not rows:
            raise StoreError(f"{name}: returned no row")
        return rows[0]

    @abstractmethod
    async def _void(self, name: str, args: dict[str, Any]) -> None:
        """Call ``name`` for its effect."""

    @abstractmethod
    async def _records(self, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        """Call ``name`` and return the rows of the table it answers with."""

    @abstractmethod
    async def _scalar(self, name: str, args: dict[str, Any]) -> Any:
        """Call ``name`` and return the one value it answers with, as JSON would carry it."""

    @abstractmethod
    async def _kind_model_rows(self) -> list[dict[str, Any]]:
        """public.kind_models (kind, provider, model), ordered by kind and position."""

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
        args: dict[str, Any] = {
            "worker_id": worker_id,
            "kinds": list(kinds) if kinds else None,
            "max_jobs": max_jobs,
            "lease_seconds": lease_seconds,
        }
        if park_seconds is None:
            return await self._jobs("claim_jobs", args)
        handoffs = {"handoffs": handed_seen is not None, "handed_seen": list(handed_seen or ())}
        parking = {"park_seconds": park_seconds, **handoffs, "wake_via": self.wake_via}
        return await self._jobs("claim_jobs_or_park", {**args, **parking})

    async def unpark(self, worker_id: str, handed_seen: Sequence[uuid.UUID] | None = None) -> None:
        seen = None if handed_seen is None else list(handed_seen)
        await self._void("unpark_worker", {"worker_id": worker_id, "handed_seen": seen})

    async def renew_leases(self, worker_id: str, job_ids: Sequence[uuid.UUID], lease_seconds: int) -> list[JobRow]:
        return await self._jobs(
            "renew_leases", {"worker_id": worker_id, "job_ids": list(job_ids), "lease_seconds": lease_seconds}
        )

    async def report_progress(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        *,
        percent: float | None = None,
        message: str | None = None,
        partial: str | None = None,
    ) -> None:
        args = {"job_id": job_id, "worker_id": worker_id, "percent": percent, "message": message, "partial": partial}
        await self._void("report_progress", args)

    async def complete_job(self, job_id: uuid.UUID, worker_id: str, result: dict[str, Any]) -> JobRow:
        return await self._job("complete_job", {"job_id": job_id, "worker_id": worker_id, "result": result})

    async def report_progress_batch(
        self, worker_id: str, reports: Sequence[ProgressReport]
    ) -> dict[uuid.UUID, str | None]:
        items = [r.item() for r in reports]
        rows = await self._records("report_progress_batch", {"worker_id": worker_id, "reports": items})
        return _outcomes(rows, "accepted")

    async def complete_jobs(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> dict[uuid.UUID, str | None]:
        items = _items(completions, last_progress, usage)
        rows = await self._records("complete_jobs", {"worker_id": worker_id, "completions": items})
        return _outcomes(rows, "completed")

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
        args = {
            "worker_id": worker_id,
            "completions": _items(completions, last_progress, usage),
            "kinds": list(kinds) if kinds else None,
            "max_jobs": max_jobs,
            "lease_seconds": lease_seconds,
        }
        rows = await self._records("complete_and_claim", args)
        # Claimed rows come as JSON text, each read on its own (a row the worker cannot read
        # fails that job alone, as for claim_jobs).
        claimed = (read_job_text(r["job"]) for r in rows if r["entry"] == "claimed")
        acks = _outcomes((r for r in rows if r["entry"] == "completed"), "completed")
        return acks, [job for job in claimed if job is not None]

    async def report_and_complete(
        self,
        worker_id: str,
        reports: Sequence[ProgressReport],
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], dict[uuid.UUID, str | None]]:
        args = {
            "worker_id": worker_id,
            "reports": [r.item() for r in reports],
            "completions": _items(completions, last_progress, usage),
        }
        rows = await self._records("report_and_complete", args)
        reported = _outcomes((r for r in rows if r["entry"] == "reported"), "recorded")
        return reported, _outcomes((r for r in rows if r["entry"] == "completed"), "recorded")

    async def fail_job(self, job_id: uuid.UUID, worker_id: str, error: dict[str, Any], retryable: bool) -> JobRow:
        args = {"job_id": job_id, "worker_id": worker_id, "error": error, "retryable": retryable}
        return await self._job("fail_job", args)

    async def defer_job(self, job_id: uuid.UUID, worker_id: str, run_at: datetime, reason: str) -> JobRow:
        args = {"job_id": job_id, "worker_id": worker_id, "run_at": run_at, "reason": reason}
        return await self._job("defer_job", args)

    async def release_jobs(self, worker_id: str, job_ids: Sequence[uuid.UUID] | None) -> list[JobRow]:
        ids = list(job_ids) if job_ids is not None else None
        return await self._jobs("release_jobs", {"worker_id": worker_id, "job_ids": ids})

    async def record_usage(self, job_id: uuid.UUID, worker_id: str, attempt: int, call: ModelCall) -> float | None:
        args = {
            "job_id": job_id,
            "worker_id": worker_id,
            "attempt": attempt,
            "provider": call.provider,
            "model": call.model,
            "input_tokens": call.usage.input_tokens,
            "output_tokens": call.usage.output_tokens,
            "cached_tokens": call.usage.cached_tokens,
            "images": call.usage.images,
            "latency_ms": call.latency_ms,
        }
        rows = await self._records("record_usage", args)
        if not rows:
            raise StoreError("record_usage: returned no row")
        cost = rows[0]["cost_usd"]
        return None if cost is None else float(cost)

    async def record_usage_batch(self, worker_id: str, records: Sequence[UsageRecord]) -> list[UsageRecorded]:
        calls = [r.item() for r in records]
        rows = await self._records("record_usage_batch", {"worker_id": worker_id, "calls": calls})
        return [
            UsageRecorded(
                uuid.UUID(str(r["job_id"])),
                bool(r["recorded"]),
                None if r["cost_usd"] is None else float(r["cost_usd"]),
                None if r["reason"] is None else str(r["reason"]),
            )
            for r in rows
        ]

    # -- ProviderControl: shared capacity, cooldowns, fallback chains ---------------------------
    async def acquire_model_capacity(self, provider: str, model: str, tokens: int) -> Capacity:
        rows = await self._records("acquire_model_capacity", {"provider": provider, "model": model, "tokens": tokens})
        if not rows:
            raise StoreError("acquire_model_capacity: returned no row")
        row = rows[0]
        return Capacity(bool(row["granted"]), float(row["wait_seconds"]), row["reason"])

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        rows = await self._records("acquire_model_capacity_batch", {"requests": [r.item() for r in requests]})
        if [row["item"] for row in rows] != list(range(len(requests))):
            raise StoreError(f"acquire_model_capacity_batch: answered {len(rows)} rows for {len(requests)} requests")
        return [Capacity(bool(row["granted"]), float(row["wait_seconds"]), row["reason"]) for row in rows]

    async def report_model_rate_limit(self, provider: str, model: str, status: int, retry_after: float) -> datetime:
        args = {"provider": provider, "model": model, "status": status, "retry_after_seconds": retry_after}
        until = read_time(await self._scalar("report_model_rate_limit", args))
        if until is None:
            raise StoreError("report_model_rate_limit: returned no time")
        return until

    async def kind_models(self) -> dict[str, list[ModelRoute]]:
        chains: dict[str, list[ModelRoute]] = {}
        for row in await self._kind_model_rows():
            chains.setdefault(str(row["kind"]), []).append(ModelRoute(str(row["provider"]), str(row["model"])))
        return chains

    # -- retention (the RetentionStore port) ---------------------------------------------------
    async def purge_finished_jobs(self, older_than: timedelta) -> int:
        return int(await self._scalar("purge_finished_jobs", {"older_than": _interval(older_than)}))

    async def enqueue_orphaned_artifacts(self, grace: timedelta, max_items: int) -> int:
        args = {"grace": _interval(grace), "max_items": max_items}
        return int(await self._scalar("enqueue_orphaned_artifacts", args))

    async def claim_artifact_deletions(self, max_items: int, lease_seconds: int) -> list[ArtifactDeletion]:
        rows = await self._records("claim_artifact_deletions", {"max_items": max_items, "lease_seconds": lease_seconds})
        return [
            ArtifactDeletion(
                id=int(r["id"]),
                bucket_id=str(r["bucket_id"]),
                name=str(r["name"]),
                job_id=uuid.UUID(str(r["job_id"])) if r["job_id"] is not None else None,
                reason=str(r["reason"]),
                attempts=int(r["attempts"]),
            )
            for r in rows
        ]

    async def ack_artifact_deletions(self, ids: Sequence[int]) -> dict[int, str | None]:
        rows = await self._records("ack_artifact_deletions", {"ids": list(ids)})
        return {int(r["id"]): None if r["acknowledged"] else str(r["reason"]) for r in rows}


def _items(
    completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
    last_progress: Mapping[uuid.UUID, ProgressReport] | None,
    usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None,
) -> list[dict[str, Any]]:
    """complete_jobs' items; a job's last progress step (percent, message) and its model calls
    not yet recorded ride along."""
    items: list[dict[str, Any]] = []
    for job_id, result in completions:
        item: dict[str, Any] = {"job_id": str(job_id), "result": result}
        if last_progress and (step := last_progress.get(job_id)) is not None:
            item["progress"] = {k: v for k, v in step.item().items() if k in ("percent", "message")}
        if usage and (records := usage.get(job_id)):
            item["usage"] = [r.carried() for r in records]
        items.append(item)
    return items


def _outcomes(rows: Iterable[dict[str, Any]], done: str) -> dict[uuid.UUID, str | None]:
    """A batch call's rows (job_id, ``done``, reason): job id → None when done, else why not."""
    return {uuid.UUID(str(r["job_id"])): None if r[done] else str(r["reason"]) for r in rows}


def _interval(value: timedelta) -> str:
    """An interval both transports carry as text (PostgREST has no JSON form for one)."""
    return f"{value.total_seconds():.6f} seconds"
