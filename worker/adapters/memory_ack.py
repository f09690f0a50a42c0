"""The in-memory fake's combined acknowledgements: ``complete_and_claim`` (its complete_jobs and
claim_jobs in one call) and ``report_and_complete`` (its report_progress_batch and complete_jobs),
as the SQL functions run them in one statement (validated first, so a bad argument changes
nothing)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from worker.adapters.memory_progress import check_reports
from worker.adapters.memory_rows import check_worker
from worker.core.jobs import JobRow
from worker.core.ports import ProgressReport, UsageRecord


class _Parts(Protocol):
    def _call(self, name: str) -> None: ...

    def _check_claim(self, worker_id: str, kinds: Sequence[str] | None, max_jobs: int, lease_seconds: int) -> None: ...

    def _complete(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
        checked: list[tuple[str, UsageRecord]] | None = None,
    ) -> dict[uuid.UUID, str | None]: ...

    def _claim(
        self, worker_id: str, kinds: Sequence[str] | None, max_jobs: int, lease_seconds: int
    ) -> list[JobRow]: ...

    def _check_completions(
        self,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None,
    ) -> list[tuple[str, UsageRecord]]: ...

    def _report(self, worker_id: str, reports: Sequence[ProgressReport]) -> dict[uuid.UUID, str | None]: ...


class AckAndClaim:
    async def complete_and_claim(
        self: _Parts,
        worker_id: str,
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        kinds: Sequence[str] | None,
        max_jobs: int,
        lease_seconds: int,
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], list[JobRow]]:
        self._call("complete_and_claim")
        self._check_claim(worker_id, kinds, max_jobs, lease_seconds)  # before anything changes
        # _complete validates the whole batch before changing any row
        acks = self._complete(worker_id, completions, last_progress, usage)
        return acks, self._claim(worker_id, kinds, max_jobs, lease_seconds)

    async def report_and_complete(
        self: _Parts,
        worker_id: str,
        reports: Sequence[ProgressReport],
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], dict[uuid.UUID, str | None]]:
        self._call("report_and_complete")
        check_worker(worker_id)
        check_reports(reports)
        checked = self._check_completions(worker_id, completions, last_progress, usage)  # before anything changes
        reported = self._report(worker_id, reports)
        return reported, self._complete(worker_id, completions, last_progress, usage, checked)
