"""Progress checks of the in-memory QueueStore, mirrored from report_progress and
report_progress_batch / complete_jobs (20261123000500_jobs_outcomes.sql,
20261204000500_progress_batch.sql) and held to them by the conformance suite."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from worker.core.errors import InvalidArgument
from worker.core.ports import ProgressReport

MAX_ITEMS = 1000
MAX_PARTIAL_BYTES = 65536
MAX_BODY_BYTES = 4 * 1024 * 1024


def check_step(field: str, percent: float | None, message: str | None) -> None:
    """A progress step's percent and message, named ``field.percent`` / ``field.message``."""
    if percent is not None and not 0 <= percent <= 100:
        raise InvalidArgument(f"{field}percent: must be between 0 and 100, got {percent:g}")
    if message is not None and len(message) > 1000:
        raise InvalidArgument(f"{field}message: must be at most 1000 characters, got {len(message)}")


def next_progress(prev: Mapping[str, Any], percent: float | None, message: str | None) -> dict[str, Any]:
    """The job's progress after a step: what the step gives, else what it had."""
    return {
        "percent": round(percent, 1) if percent is not None else prev.get("percent", 0),
        "message": message if message is not None else prev.get("message"),
    }


def check_reports(reports: Sequence[ProgressReport]) -> None:
    if not 1 <= len(reports) <= MAX_ITEMS:
        raise InvalidArgument(f"reports: must hold 1 to {MAX_ITEMS} items, got {len(reports)}")
    size = len(json.dumps([r.item() for r in reports]).encode())
    if size > MAX_BODY_BYTES:
        raise InvalidArgument(f"reports: {size} bytes exceeds 4 MiB; send fewer reports per call")
    for i, r in enumerate(reports):
        check_step(f"reports[{i}].", r.percent, r.message)
        size = len(r.partial.encode()) if r.partial is not None else 0
        if size > MAX_PARTIAL_BYTES:
            raise InvalidArgument(
                f"reports[{i}].partial: must be at most {MAX_PARTIAL_BYTES} bytes per item, got {size}"
            )
        if r.bare and not r.started:
            raise InvalidArgument(f"reports[{i}]: nothing to report: give percent, message, partial or started")


def check_last_progress(completions: Sequence[Any], last_progress: Mapping[Any, ProgressReport] | None) -> None:
    for i, (job_id, _) in enumerate(completions):
        step = (last_progress or {}).get(job_id)
        if step is not None:
            check_step(f"completions[{i}].progress.", step.percent, step.message)
