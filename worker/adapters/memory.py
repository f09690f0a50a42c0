"""An in-memory QueueStore with the SQL API's semantics, for unit tests and local experiments.

It is held honest by the conformance suite that also runs against the psycopg and supabase-py
adapters (tests/integration/test_worker_conformance.py). The ``enqueue``/``cancel``/``expire``
helpers play the user's and the clock's part.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from worker.adapters.memory_ack import AckAndClaim
from worker.adapters.memory_progress import check_last_progress, check_reports, check_step, next_progress
from worker.adapters.memory_rows import (
    DEFAULT_KINDS,
    Event,
    Row,
    check_lease,
    check_worker,
    retry_delay,
    row_of,
    rows_of,
)
from worker.adapters.memory_usage import UsageLedger
from worker.core.clock import SystemClock
from worker.core.errors import InvalidArgument, JobNotFound, LeaseLost
from worker.core.jobs import Job, JobKind, JobRow
from worker.core.ports import Clock, ModelCall, ProgressReport, UsageRecord, UsageRecorded

MAX_RESULT_BYTES = 1024 * 1024  # complete_jobs' limit per result


class MemoryStore(AckAndClaim):
    def __init__(self, clock: Clock | None = None, rand: Callable[[], float] = random.random) -> None:
        self.clock = clock or SystemClock()
        self.rand = rand
        self.rows: dict[uuid.UUID, Row] = {}
        self.events: list[Event] = []
        self.kinds = {k: JobKind(kind=k, max_attempts=a, timeout_seconds=t) for k, (a, t, _) in DEFAULT_KINDS.items()}
        self.caps = {k: cap for k, (_, _, cap) in DEFAULT_KINDS.items()}
        self.calls: list[str] = []  # which RPCs were called, in order (tests assert on it)
        self.fail_next: list[Exception] = []  # injected transport failures, raised by the next calls
        self.ledger = UsageLedger()
        self.parked: dict[str, int] = {}  # worker_id -> free slots (claim_jobs with park_seconds)

    # -- the user's side and test controls ---------------------------------------------------
    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user_id: uuid.UUID | None = None,
        run_at: datetime | None = None,
        priority: int = 0,
    ) -> Job:
        if kind not in self.kinds:
            raise InvalidArgument(f'kind: unknown job kind "{kind}"')
        now = self.clock.now()
        row = Row(
            id=uuid.uuid4(),
            user_id=user_id or uuid.uuid4(),
            kind=kind,
            payload=payload or {},
            max_attempts=self.kinds[kind].max_attempts,
            run_at=run_at or now,
            created_at=now,
            priority=priority,
        )
        self.rows[row.id] = row
        return row.to_job()

    def cancel(self, job_id: uuid.UUID) -> Job:
        row = self.rows[job_id]
        if row.status in ("queued", "waiting"):
            row.status, row.cancel_requested, row.finished_at = "cancelled", True, self.clock.now()
            row.error = {"type": "cancelled", "message": "cancelled by the user", "retryable": False}
        elif row.status == "running":
            row.cancel_requested = True
        return row.to_job()

    def corrupt(self, job_id: uuid.UUID, **wire: Any) -> None:
        """Make the row hold what an operator or an older version could write, as the API would
        send it (e.g. ``run_at="-infinity"``, ``result=5``)."""
        self.rows[job_id].wire.update(wire)

    def expire_lease(self, job_id: uuid.UUID) -> None:
        self.rows[job_id].lease_expires_at = self.clock.now() - timedelta(seconds=1)

    def get(self, job_id: uuid.UUID) -> Job:
        return self.rows[job_id].to_job()

    # -- the QueueStore port -----------------------------------------------------------------
    def _call(self, name: str) -> None:
        self.calls.append(name)
        if self.fail_next:
            raise self.fail_next.pop(0)

    def _held(self, fn: str, job_id: uuid.UUID, worker_id: str) -> Row:
        check_worker(worker_id)
        row = self.rows.get(job_id)
        if row is None:
            raise JobNotFound(f"{fn}: job {job_id} not found")
        if row.status != "running" or row.worker_id != worker_id:
            raise LeaseLost(f'{fn}: job {job_id} is not held by worker "{worker_id}"')
        if row.lease_expires_at is not None and row.lease_expires_at < self.clock.now():
            raise LeaseLost(f"{fn}: the lease of job {job_id} expired at {row.lease_expires_at}")
        return row

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
        self._call("claim_jobs")
        if handed_seen is not None and len(handed_seen) > 1000:
            raise InvalidArgument(f"handed_seen: must hold at most 1000 items, got {len(handed_seen)}")
        # No hand-offs here (no wake-ups to route): nothing is ever handed, so nothing is unseen.
        return self._claim(worker_id, kinds, max_jobs, lease_seconds, park_seconds)

    def _check_claim(
        self,
        worker_id: str,
        kinds: Sequence[str] | None,
        max_jobs: int,
        lease_seconds: int,
        park_seconds: int | None = None,
    ) -> None:
        check_worker(worker_id)
        if park_seconds is not None and not 1 <= park_seconds <= 86400:
            raise InvalidArgument(f"park_seconds: must be between 1 and 86400, got {park_seconds}")
        check_lease(lease_seconds)
        if not 1 <= max_jobs <= 1000:
            raise InvalidArgument(f"max_jobs: must be between 1 and 1000, got {max_jobs}")
        unknown = [k for k in kinds or () if k not in self.kinds]
        if unknown:
            raise InvalidArgument("kinds: unknown job kind(s): " + ", ".join(f'"{k}"' for k in unknown))

    def _claim(
        self,
        worker_id: str,
        kinds: Sequence[str] | None,
        max_jobs: int,
        lease_seconds: int,
        park_seconds: int | None = None,
    ) -> list[JobRow]:
        self._check_claim(worker_id, kinds, max_jobs, lease_seconds, park_seconds)
        now = self.clock.now()
        due = sorted(
            (
                r
                for r in self.rows.values()
                if r.status == "queued" and r.run_at <= now and (not kinds or r.kind in kinds)
            ),
            key=lambda r: (-r.priority, r.run_at, str(r.id)),
        )
        running: dict[tuple[uuid.UUID, str], int] = {}
        for r in self.rows.values():
            if r.status == "running":
                running[(r.user_id, r.kind)] = running.get((r.user_id, r.kind), 0) + 1
        claimed: list[Row] = []
        for row in due:
            if len(claimed) >= max_jobs:
                break
            group = (row.user_id, row.kind)
            if running.get(group, 0) >= self.caps[row.kind]:
                continue
            running[group] = running.get(group, 0) + 1
            row.status, row.worker_id, row.attempts = "running", worker_id, row.attempts + 1
            row.lease_expires_at, row.started_at = now + timedelta(seconds=lease_seconds), now
            claimed.append(row)
        # Parking only records who would be woken: this fake has no wake-ups to route.
        if park_seconds is not None and len(claimed) < max_jobs:
            self.parked[worker_id] = max_jobs - len(claimed)
        else:
            self.parked.pop(worker_id, None)
        return rows_of(claimed)

    async def unpark(self, worker_id: str, handed_seen: Sequence[uuid.UUID] | None = None) -> None:
        self._call("unpark_worker")  # nothing is ever handed here (see claim_jobs)
        self.parked.pop(worker_id, None)

    async def renew_leases(self, worker_id: str, job_ids: Sequence[uuid.UUID], lease_seconds: int) -> list[JobRow]:
        self._call("renew_leases")
        check_worker(worker_id)
        check_lease(lease_seconds)
        now = self.clock.now()
        out: list[Row] = []
        for job_id in sorted(set(job_ids), key=str):
            row = self.rows.get(job_id)
            if row is None:
                continue
            held = row.status == "running" and row.worker_id == worker_id
            if held and row.lease_expires_at is not None and row.lease_expires_at >= now:
                row.lease_expires_at = now + timedelta(seconds=lease_seconds)
            out.append(row)
        return rows_of(out)

    async def report_progress(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        *,
        percent: float | None = None,
        message: str | None = None,
        partial: str | None = None,
    ) -> None:
        self._call("report_progress")
        if percent is None and message is None and partial is None:
            raise InvalidArgument("percent: nothing to report: give percent, message or partial")
        check_step("", percent, message)
        self._apply(self._held("report_progress", job_id, worker_id), ProgressReport(job_id, percent, message, partial))

    def _apply(self, row: Row, report: ProgressReport) -> None:
        if report.percent is not None or report.message is not None:
            row.progress = next_progress(row.progress, report.percent, report.message)
            self.events.append(Event(row.id, "progress", dict(row.progress)))
        if report.partial is not None:
            self.events.append(Event(row.id, "partial", {"text": report.partial}))

    async def report_progress_batch(
        self, worker_id: str, reports: Sequence[ProgressReport]
    ) -> dict[uuid.UUID, str | None]:
        self._call("report_progress_batch")
        check_worker(worker_id)
        check_reports(reports)
        return self._report(worker_id, reports)

    def _report(self, worker_id: str, reports: Sequence[ProgressReport]) -> dict[uuid.UUID, str | None]:
        out: dict[uuid.UUID, str | None] = {}
        for r in reports:
            if r.job_id not in out:
                out[r.job_id] = self._not_held("report_progress_batch", r.job_id, worker_id)
            if out[r.job_id] is None:
                self._apply(self.rows[r.job_id], r)
        return out

    def _not_held(self, fn: str, job_id: uuid.UUID, worker_id: str) -> str | None:
        try:
            self._held(fn, job_id, worker_id)
        except (JobNotFound, LeaseLost) as exc:
            return "not found" if isinstance(exc, JobNotFound) else str(exc)
        return None

    async def complete_job(self, job_id: uuid.UUID, worker_id: str, result: dict[str, Any]) -> JobRow:
        self._call("complete_job")
        row = self._held("complete_job", job_id, worker_id)
        self._succeed(row, result)
        return row_of(row, "complete_job")

    async def complete_jobs(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> dict[uuid.UUID, str | None]:
        self._call("complete_jobs")
        return self._complete(worker_id, completions, last_progress, usage)

    def _check_completions(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None,
    ) -> list[tuple[str, UsageRecord]]:
        """complete_jobs' checks, before anything changes: the usage records carried, named."""
        check_worker(worker_id)
        if not 1 <= len(completions) <= 1000:
            raise InvalidArgument(f"completions: must hold 1 to 1000 items, got {len(completions)}")
        if len({job_id for job_id, _ in completions}) != len(completions):
            raise InvalidArgument("completions: lists a job_id more than once")
        for i, (_, result) in enumerate(completions):
            # As the SQL API measures it: the JSON text's bytes (jsonb's spacing, characters unescaped).
            if (size := len(json.dumps(result, ensure_ascii=False).encode())) > MAX_RESULT_BYTES:
                raise InvalidArgument(
                    f"completions[{i}].result: {size} bytes exceeds 1 MiB; store large outputs in Storage"
                )
        check_last_progress(completions, last_progress)
        carried = [
            (f"completions[{i}].usage[{j}]", record)
            for i, (job_id, _) in enumerate(completions)
            for j, record in enumerate((usage or {}).get(job_id, ()))
        ]
        if len(carried) > 1000:
            raise InvalidArgument(f"completions: carry {len(carried)} usage records; at most 1000 in one call")
        if carried:
            self.ledger.check_batch(self._job_of, [r for _, r in carried], [n for n, _ in carried])
        return carried

    def _complete(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
        checked: list[tuple[str, UsageRecord]] | None = None,
    ) -> dict[uuid.UUID, str | None]:
        """complete_jobs; ``checked``: what ``_check_completions`` answered for these arguments."""
        carried = self._check_completions(worker_id, completions, last_progress, usage) if checked is None else checked
        if carried:  # recorded first, held or not: the calls were made and paid for
            self.ledger.record_batch(self._job_of, worker_id, [r for _, r in carried], [n for n, _ in carried])
        out: dict[uuid.UUID, str | None] = {}
        for job_id, result in completions:
            out[job_id] = self._not_held("complete_jobs", job_id, worker_id)
            if out[job_id] is None:
                step = (last_progress or {}).get(job_id)
                if step is not None and (step.percent is not None or step.message is not None):
                    self._apply(self.rows[job_id], ProgressReport(job_id, step.percent, step.message))
                self._succeed(self.rows[job_id], result)
        return out

    def _succeed(self, row: Row, result: dict[str, Any]) -> None:
        row.status, row.result, row.finished_at = "succeeded", result, self.clock.now()
        row.lease_expires_at, row.error = None, None
        row.progress = {"percent": 100, "message": row.progress.get("message") or "done"}

    async def fail_job(self, job_id: uuid.UUID, worker_id: str, error: dict[str, Any], retryable: bool) -> JobRow:
        self._call("fail_job")
        if not isinstance(error.get("message"), str) or not error["message"]:
            raise InvalidArgument('error: must have a non-empty "message" string')
        row = self._held("fail_job", job_id, worker_id)
        now = self.clock.now()
        row.error = {**error, "type": error.get("type") or "error", "retryable": retryable, "attempt": row.attempts}
        row.lease_expires_at = None
        if row.cancel_requested:
            row.status, row.finished_at = "cancelled", now
        elif retryable and row.attempts < row.max_attempts:
            row.status, row.worker_id = "queued", None
            row.run_at = now + retry_delay(row.attempts, self.rand())
        else:
            row.status, row.finished_at = "failed", now
        return row_of(row, "fail_job")

    async def defer_job(self, job_id: uuid.UUID, worker_id: str, run_at: datetime, reason: str) -> JobRow:
        self._call("defer_job")
        now = self.clock.now()
        if run_at > now + timedelta(days=1):
            raise InvalidArgument(f"run_at: must be within 1 day from now, got {run_at}")
        if not reason.strip() or len(reason) > 500:
            raise InvalidArgument("reason: must be a non-empty string of at most 500 characters")
        row = self._held("defer_job", job_id, worker_id)
        row.lease_expires_at = None
        if row.cancel_requested:
            row.status, row.finished_at = "cancelled", now
            row.error = {"type": "cancelled", "message": "cancelled by the user", "retryable": False}
            return row_of(row, "defer_job")
        row.status, row.worker_id, row.attempts = "queued", None, max(0, row.attempts - 1)
        row.run_at = max(run_at, now)
        row.progress = {"percent": row.progress.get("percent"), "message": f"waiting: {reason}"}
        self.events.append(Event(job_id, "log", {"event": "deferred", "reason": reason}))
        return row_of(row, "defer_job")

    async def release_jobs(self, worker_id: str, job_ids: Sequence[uuid.UUID] | None) -> list[JobRow]:
        self._call("release_jobs")
        check_worker(worker_id)
        now = self.clock.now()
        out: list[Row] = []
        for row in sorted(self.rows.values(), key=lambda r: str(r.id)):
            if row.status != "running" or row.worker_id != worker_id:
                continue
            if job_ids is not None and row.id not in job_ids:
                continue
            row.attempts, row.lease_expires_at, row.run_at = max(0, row.attempts - 1), None, now
            if row.cancel_requested:
                row.status, row.finished_at = "cancelled", now
            else:
                row.status, row.worker_id = "queued", None
            out.append(row)
        return rows_of(out)

    async def reap_expired_leases(self) -> int:
        self._call("reap_expired_leases")
        now = self.clock.now()
        count = 0
        for row in self.rows.values():
            if row.status != "running" or row.lease_expires_at is None or row.lease_expires_at >= now:
                continue
            count += 1
            retry = row.attempts < row.max_attempts
            row.error = {
                "type": "lease_expired",
                "message": f'worker "{row.worker_id}" lost its lease',
                "retryable": retry,
                "attempt": row.attempts,
            }
            row.lease_expires_at = None
            if row.cancel_requested:
                row.status, row.finished_at = "cancelled", now
            elif retry:
                row.status, row.worker_id = "queued", None
                row.run_at = now + retry_delay(row.attempts, self.rand())
            else:
                row.status, row.finished_at = "failed", now
        return count

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None:
        self._call("next_run_at")
        now = self.clock.now()
        times = [
            r.run_at
            for r in self.rows.values()
            if r.status == "queued" and r.run_at > now and (not kinds or r.kind in kinds)
        ]
        return min(times, default=None)

    async def job_kinds(self) -> list[JobKind]:
        self._call("job_kinds")
        return sorted(self.kinds.values(), key=lambda k: k.kind)

    async def record_usage(self, job_id: uuid.UUID, worker_id: str, attempt: int, call: ModelCall) -> float | None:
        self._call("record_usage")
        check_worker(worker_id)
        row = self.rows.get(job_id)
        job = None if row is None else (row.user_id, row.kind, row.attempts)
        return self.ledger.record(job, job_id, worker_id, attempt, call)

    async def record_usage_batch(self, worker_id: str, records: Sequence[UsageRecord]) -> list[UsageRecorded]:
        self._call("record_usage_batch")
        check_worker(worker_id)
        return self.ledger.record_batch(self._job_of, worker_id, records)

    def _job_of(self, job_id: uuid.UUID) -> tuple[uuid.UUID, str, int] | None:
        """(user_id, kind, attempts) of a job, for the ledger; None if there is none."""
        row = self.rows.get(job_id)
        return None if row is None else (row.user_id, row.kind, row.attempts)

    async def read_view(self, view: str) -> list[dict[str, Any]]:
        self._call("read_view")
        spend = self.ledger.view(view)
        if spend is not None:
            return spend
        if view == "active_jobs":
            return [
                {"id": r.id, "kind": r.kind, "worker_id": r.worker_id}
                for r in self.rows.values()
                if r.status == "running"
            ]
        if view == "pending_jobs_queue":
            return [
                {"id": r.id, "kind": r.kind, "status": r.status} for r in self.rows.values() if r.status == "queued"
            ]
        counts: dict[tuple[str, str], int] = {}
        for r in self.rows.values():
            counts[(r.kind, r.status)] = counts.get((r.kind, r.status), 0) + 1
        return [{"kind": k, "status": s, "jobs": n} for (k, s), n in sorted(counts.items())]

    async def close(self) -> None:
        return None
