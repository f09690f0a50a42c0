"""Reading the queue's rows without trusting them.

A row can hold what the worker cannot represent: run_at = -infinity or a date before the common
era, a bare number as result, JSON nested deeper than Python's parser goes. An operator or an
older version may have written it. Every adapter reads rows through here, one at a time: a row
that does not parse becomes an ``UnparseableJob`` (the worker fails that job alone), and a row
whose id cannot be read is logged and skipped (the lease reaper takes it back).
"""

from __future__ import annotations

import contextlib
import json
import logging
import reprlib
import uuid
from collections.abc import Mapping
from datetime import datetime

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from worker.core.errors import InvalidJobRow, describe_validation
from worker.core.jobs import Job, JobHint, JobRow, UnparseableJob, Wake
from worker.core.json_scan import array_items, top_level_string

log = logging.getLogger("worker.rows")
PROBLEM = "the worker cannot read this job's row: "
_TIME: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


def read_job(raw: object) -> JobRow | None:
    """A decoded row (a JSON object as the API answers it)."""
    try:
        return Job.model_validate(raw)
    except ValidationError as exc:
        problem = describe_validation(exc, with_input=True)
    fields = raw if isinstance(raw, Mapping) else {}
    return _unparseable(fields.get("id"), problem, fields)


def read_job_text(text: str) -> JobRow | None:
    """One row as JSON text. Decoded by Python's json, as a whole PostgREST answer is, so every
    adapter accepts the same rows (pydantic's own JSON parser takes numbers json refuses)."""
    try:
        raw = json.loads(text)
    except (ValueError, RecursionError) as exc:
        fields = {key: top_level_string(text, key) for key in ("id", "kind", "status")}
        return _unparseable(fields["id"], f"not JSON the worker can decode ({type(exc).__name__}: {exc})", fields)
    return read_job(raw)


def read_job_list(text: str) -> list[JobRow]:
    """Rows from a JSON array (or one bare object, as for a function returning one row): decoded
    whole when possible, else element by element, so one undecodable row does not hide the rest."""
    try:
        data = json.loads(text) if text.strip() else None
    except (ValueError, RecursionError):
        rows = [read_job_text(item) for item in array_items(text)]
    else:
        items = data if isinstance(data, list) else [] if data is None else [data]
        rows = [read_job(item) for item in items]
    return [row for row in rows if row is not None]


def read_hint(raw: object) -> JobHint | None:
    """A wake-up's facts (decoded, or JSON text), or None for anything malformed: it is only a hint,
    and the periodic sweep finds whatever it was about."""
    try:
        return JobHint.model_validate_json(raw) if isinstance(raw, str | bytes) else JobHint.model_validate(raw)
    except ValidationError as exc:
        log.warning("ignoring a malformed wake-up (%s): %s", describe_validation(exc, 2), reprlib.repr(raw))
        return None


def read_wake(raw: object) -> Wake | None:
    """A routed wake-up (20261204000600_worker_wakeups.sql): one hint, or two when the statement
    queued jobs due now (``run_at``) and later ones too (``next_at``, for the timer); with
    hand-offs, the rows claimed for this worker. None for a message that is not one (logged)."""
    if isinstance(raw, str | bytes):
        with contextlib.suppress(ValueError, RecursionError):  # read_hint logs it
            raw = json.loads(raw)
    hint = read_hint(raw)
    if hint is None or not isinstance(raw, Mapping):
        return None
    later = read_time(raw.get("next_at")) if raw.get("next_at") is not None else None
    hints = (hint,) if later is None else (hint, hint.model_copy(update={"run_at": later}))
    rows = [read_job(item) for item in _handed_rows(raw.get("jobs"))]
    # A row without a usable id is dropped (read_job logs it): then the worker claims as after a
    # plain wake-up, and the claim returns it again, a handed job the worker has not seen.
    jobs = tuple(row for row in rows if row is not None)
    parked = raw.get("parked") is True and bool(jobs) and len(jobs) == len(rows)
    return Wake(hints, jobs, parked)


def _handed_rows(raw: object) -> list[object]:
    """A wake-up's rows: one JSON text of an array, as the database sends them (see
    private.wake_parked_workers). Anything else is logged and read as no rows: the worker's
    claim after the wake-up returns them."""
    if raw is None:
        return []
    if isinstance(raw, str):
        with contextlib.suppress(ValueError, RecursionError):
            rows = json.loads(raw)
            if isinstance(rows, list):
                return rows
    log.warning("ignoring a wake-up's rows that are not the JSON text of an array: %s", reprlib.repr(raw))
    return []


def read_time(raw: object) -> datetime | None:
    """A timestamptz as the API answers it, or None when Python cannot hold it (±infinity, before
    year 1, after 9999): the caller then has no due time to arm, and the sweep covers it."""
    if raw is None:
        return None
    if isinstance(raw, str):  # ISO text only: pydantic would read a number as epoch seconds
        with contextlib.suppress(ValidationError):
            return _TIME.validate_python(raw)
    log.warning("ignoring a timestamp the worker cannot represent: %s", reprlib.repr(raw))
    return None


def _unparseable(job_id: object, problem: str, fields: Mapping[str, object]) -> UnparseableJob | None:
    try:
        parsed = uuid.UUID(job_id) if isinstance(job_id, str) else job_id if isinstance(job_id, uuid.UUID) else None
    except ValueError:
        parsed = None
    if parsed is None:
        # Nothing to fail without a name: its lease lapses and the reaper takes it back.
        log.error("skipped a job row without a usable id (%s): %s", reprlib.repr(job_id), problem[:500])
        return None
    kind, status, attempts = fields.get("kind"), fields.get("status"), fields.get("attempts")
    return UnparseableJob(
        parsed,
        InvalidJobRow(PROBLEM + problem),
        kind=kind[:63] if isinstance(kind, str) and kind else "unknown",
        status=status[:20] if isinstance(status, str) else None,
        attempts=attempts if isinstance(attempts, int) and not isinstance(attempts, bool) else 0,
    )
