"""Typed failures: what a handler or provider raises, and what a store call can fail with.

Handlers raise ``JobFailure`` subclasses; the runner maps each to one queue call (defer or fail,
retryable or not). Stores raise ``StoreError`` subclasses named after the SQLSTATE they carry.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def describe_validation(exc: ValidationError, limit: int = 5, *, with_input: bool = False) -> str:
    """One line naming each field at fault and what was wrong (the first ``limit`` of them)."""
    parts = []
    for err in exc.errors(include_url=False)[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        got = err.get("input")
        shown = f" (got {got!r:.60})" if with_input and isinstance(got, str | int | float | bool) else ""
        parts.append(f"{loc}: {err['msg']}{shown}")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


class JobFailure(Exception):
    """A job attempt ended without a result. ``type`` lands in jobs.error.type."""

    type = "error"
    retryable = True

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def to_error(self) -> dict[str, Any]:
        return {"type": self.type, "message": self.message[:4000], **self.details}


class RateLimited(JobFailure):
    """Provider 429 / overloaded (529): not the job's fault; defer without using an attempt.

    ``status`` is what the provider answered (429 or 529); None when no provider was asked
    (``CapacityUnavailable``)."""

    type = "rate_limited"

    def __init__(
        self,
        message: str,
        *,
        retry_after: float,
        status: int | None = 429,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, details=details)
        self.retry_after = retry_after
        self.status = status


class CapacityUnavailable(RateLimited):
    """The shared limiter refused: the model is cooling down after a 429/529, or its per-minute
    budget is spent for longer than a call may wait. Deferred like a 429; nothing was sent."""

    def __init__(self, message: str, *, retry_after: float, reason: str) -> None:
        super().__init__(message, retry_after=retry_after, status=None, details={"reason": reason})
        self.reason = reason


class TransientFailure(JobFailure):
    """5xx, timeouts, dropped connections: worth another attempt later (job-level backoff)."""

    type = "provider_unavailable"


class PermanentFailure(JobFailure):
    """The request itself is wrong (4xx): retrying cannot help."""

    type = "invalid_request"
    retryable = False


class InvalidPayload(PermanentFailure):
    type = "invalid_payload"


class InvalidOutput(PermanentFailure):
    """The model's answer broke the kind's contract even after the repair round."""

    type = "invalid_output"


class InvalidJobRow(PermanentFailure):
    """The job's row holds values the worker cannot read (written by hand or an older version)."""

    type = "invalid_job_row"


class JobTimedOut(JobFailure):
    type = "timeout"


class InternalError(JobFailure):
    """A bug or an unexpected exception in the worker: retryable, in case it was transient."""

    type = "internal_error"


class UnsupportedOperation(PermanentFailure):
    type = "unsupported"


# --- store errors --------------------------------------------------------------------------


class StoreError(Exception):
    """A queue call failed; ``code`` is the SQLSTATE (or a transport label)."""

    code = "store"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class StoreUnavailable(StoreError):
    """Supabase / Postgres cannot be reached right now; retry with backoff."""

    code = "unavailable"


class InvalidArgument(StoreError):
    code = "22023"


class JobNotFound(StoreError):
    code = "PT404"


class LeaseLost(StoreError):
    """PT409: the job is no longer ours (reaped, released, cancelled, finished)."""

    code = "PT409"


# PGRST102 is PostgREST refusing the request body itself (and devstack's bounded JSON reader
# refusing one too deep or with too many values): the arguments are at fault, so a batch that
# gets it is split and each item retried alone, like any other invalid argument.
_BY_CODE: dict[str, type[StoreError]] = {
    "22023": InvalidArgument,
    "PGRST102": InvalidArgument,
    "PT404": JobNotFound,
    "PT409": LeaseLost,
}


def store_error(code: str | None, message: str) -> StoreError:
    """The typed error for a SQLSTATE as raised by the queue API."""
    cls = _BY_CODE.get(code or "", StoreError)
    return cls(message, code=code or "store")
