"""The usage ledger of the in-memory QueueStore: record_usage's checks and pricing, mirrored from
20261204000110_usage_ledger.sql and held to it by the conformance suite."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from worker.core.errors import InvalidArgument, JobNotFound
from worker.core.ports import ModelCall, UsageRecord, UsageRecorded

# Mirrors the seed rows of public.model_prices: (input, cached input, output) USD per MTok, per image.
PRICES: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal, Decimal]] = {
    ("anthropic", "claude-haiku-4-5"): (Decimal("1.00"), Decimal("0.10"), Decimal("5.00"), Decimal(0)),
    ("anthropic", "claude-sonnet-4-5"): (Decimal("3.00"), Decimal("0.30"), Decimal("15.00"), Decimal(0)),
    ("gemini", "gemini-2.5-flash-image"): (Decimal("0.30"), Decimal("0.03"), Decimal("30.00"), Decimal(0)),
}
MAX_TOKENS = 100_000_000
_PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,62}")


@dataclass(frozen=True)
class UsageEntry:
    job_id: uuid.UUID
    user_id: uuid.UUID
    kind: str
    attempt: int
    worker_id: str
    call: ModelCall
    cost_usd: Decimal | None


@dataclass
class UsageLedger:
    entries: list[UsageEntry] = field(default_factory=list)

    def record(
        self,
        job: tuple[uuid.UUID, str, int] | None,  # (user_id, kind, attempts) of the job, None if there is none
        job_id: uuid.UUID,
        worker_id: str,
        attempt: int,
        call: ModelCall,
    ) -> float | None:
        check_call(call)
        if job is None:
            raise JobNotFound(f"record_usage: job {job_id} not found")
        user_id, kind, attempts = job
        check_attempt(attempt, attempts)
        cost = price(call)
        self.entries.append(UsageEntry(job_id, user_id, kind, attempt, worker_id, call, cost))
        return None if cost is None else float(cost)

    def check_batch(
        self,
        job_of: Callable[[uuid.UUID], tuple[uuid.UUID, str, int] | None],
        records: Sequence[UsageRecord],
        names: Sequence[str] | None = None,
    ) -> list[tuple[uuid.UUID, str, int] | None]:
        """record_batch's checks alone (nothing recorded): each record's job, None if it is gone."""
        if not 1 <= len(records) <= 1000:
            raise InvalidArgument(f"calls: must hold 1 to 1000 items, got {len(records)}")
        jobs = [job_of(r.job_id) for r in records]
        for i, (r, job) in enumerate(zip(records, jobs, strict=True)):
            try:
                check_call(r.call)
                if job is not None:
                    check_attempt(r.attempt, job[2])
            except InvalidArgument as exc:
                raise InvalidArgument(f"{names[i] if names else f'calls[{i}]'}.{exc}") from None
        return jobs

    def record_batch(
        self,
        job_of: Callable[[uuid.UUID], tuple[uuid.UUID, str, int] | None],
        worker_id: str,
        records: Sequence[UsageRecord],
        names: Sequence[str] | None = None,
    ) -> list[UsageRecorded]:
        """record_usage_batch: every record checked first (a refusal names the record, ``calls[i]``
        or ``names[i]``, and records nothing), then each recorded in order; a job that is gone is
        answered, not raised."""
        jobs = self.check_batch(job_of, records, names)
        return [
            UsageRecorded(r.job_id, False, None, "job not found")
            if job is None
            else UsageRecorded(r.job_id, True, self.record(job, r.job_id, worker_id, r.attempt, r.call))
            for r, job in zip(records, jobs, strict=True)
        ]

    def view(self, name: str) -> list[dict[str, Any]] | None:
        """The spend views over the ledger (all time, not the views' month or 30 days); None for others."""
        if name == "spend_by_user_month":
            return [
                {"user_id": user, "calls": len(rows), "spent_usd": _total(rows)}
                for user, rows in self._by(lambda e: e.user_id).items()
            ]
        if name == "cost_per_kind":
            out = []
            for kind, rows in self._by(lambda e: e.kind).items():
                jobs = len({e.job_id for e in rows})
                out.append(
                    {
                        "kind": kind,
                        "jobs": jobs,
                        "calls": len(rows),
                        "cost_usd": _total(rows),
                        "cost_per_1k_jobs_usd": _total(rows) * 1000 / jobs,
                    }
                )
            return out
        if name == "tokens_per_kind":
            return [
                {
                    "kind": kind,
                    "provider": provider,
                    "model": model,
                    "calls": len(rows),
                    "input_tokens": sum(e.call.usage.input_tokens for e in rows),
                    "output_tokens": sum(e.call.usage.output_tokens for e in rows),
                }
                for (kind, provider, model), rows in self._by(lambda e: (e.kind, e.call.provider, e.call.model)).items()
            ]
        return None

    def _by(self, key: Callable[[UsageEntry], Any]) -> dict[Any, list[UsageEntry]]:
        groups: dict[Any, list[UsageEntry]] = {}
        for entry in self.entries:
            groups.setdefault(key(entry), []).append(entry)
        return groups


def _total(rows: list[UsageEntry]) -> Decimal:
    return sum((e.cost_usd or Decimal(0) for e in rows), Decimal(0))


def check_call(call: ModelCall) -> None:
    if not _PROVIDER.fullmatch(call.provider):
        raise InvalidArgument(f'provider: must be 1 to 63 lowercase letters, digits, _ or -, got "{call.provider}"')
    if not 1 <= len(call.model) <= 200 or re.search(r"\s", call.model):
        raise InvalidArgument(f'model: must be 1 to 200 characters without spaces, got "{call.model}"')
    u = call.usage
    for name, value, most in (
        ("input_tokens", u.input_tokens, MAX_TOKENS),
        ("output_tokens", u.output_tokens, MAX_TOKENS),
        ("cached_tokens", u.cached_tokens, MAX_TOKENS),
    ):
        if not 0 <= value <= most:
            raise InvalidArgument(f"{name}: must be between 0 and {most}, got {value}")
    if u.cached_tokens > u.input_tokens:
        raise InvalidArgument(f"cached_tokens: must not exceed input_tokens ({u.input_tokens}), got {u.cached_tokens}")
    if not 0 <= u.images <= 1000:
        raise InvalidArgument(f"images: must be between 0 and 1000, got {u.images}")
    if not 0 <= call.latency_ms <= 86_400_000:
        raise InvalidArgument(f"latency_ms: must be between 0 and 86400000, got {call.latency_ms}")


def check_attempt(attempt: int, attempts: int) -> None:
    if not 1 <= attempt <= max(attempts, 1):
        raise InvalidArgument(f"attempt: must be between 1 and the job's attempts ({attempts}), got {attempt}")


def price(call: ModelCall) -> Decimal | None:
    rates = PRICES.get((call.provider, call.model))
    if rates is None:
        return None
    fresh, cached, output, image = rates
    u = call.usage
    tokens = (u.input_tokens - u.cached_tokens) * fresh + u.cached_tokens * cached + u.output_tokens * output
    cost = tokens / Decimal(1_000_000) + u.images * image
    return cost.quantize(Decimal("0.00000001"), rounding=ROUND_HALF_EVEN)  # numeric(14, 8)
