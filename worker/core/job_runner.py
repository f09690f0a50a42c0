"""Run one claimed job's handler and turn what happened into an ``Outcome``.

The handler runs in its own task so that a cancel request, a lost lease or shutdown can stop it
from outside (cooperatively: the task is cancelled at its next await), and so that a timeout
never leaves it running. A stop and the timeout cancel that task directly: no task waits for
either (a waiter task and an ``asyncio.wait`` per job were 60 % of this module's CPU per job, a
tenth of a draining worker's, bench/FIXES.md).

The handler keeps a task of its own, although running it in the job's task under an
``asyncio.timeout`` cost half as much (5.2 against 10.1 µs per job): Python 3.11's TaskGroup
leaves a cancel request on the task that runs it when a part fails while the group's exit waits
(fixed in 3.12), and in the job's task that read as the job being cancelled, so a deferred
``rename_layers`` was never recorded. The handler's task takes such state with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from worker.core.errors import (
    InternalError,
    JobFailure,
    JobTimedOut,
    LeaseLost,
    RateLimited,
    StoreError,
    TransientFailure,
)
from worker.core.jobs import JobRow
from worker.core.ports import Clock, ProgressReport, UsageRecord
from worker.core.retry import after_refusal

StopReason = Literal["cancel", "lost", "release"]
MAX_DEFER = timedelta(hours=23)  # defer_job accepts at most one day ahead


@dataclass
class JobRun:
    job: JobRow
    started: float  # monotonic
    stop_reason: StopReason | None = None
    task: asyncio.Task[None] | None = None
    last_progress: ProgressReport | None = None  # rides with a success (complete_jobs)
    reports: tuple[ProgressReport, ...] = ()  # queued before it, applied first in the same call
    usage: tuple[UsageRecord, ...] = ()  # a success's model calls, recorded with it (complete_jobs)
    on_stop: Callable[[], object] | None = field(default=None, repr=False)  # set while the handler runs

    def stop(self, reason: StopReason) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason
            if self.on_stop is not None:
                self.on_stop()


@dataclass(frozen=True)
class Succeeded:
    result: dict[str, Any]


@dataclass(frozen=True)
class Failed:
    failure: JobFailure


@dataclass(frozen=True)
class Deferred:
    run_at: datetime
    reason: str


@dataclass(frozen=True)
class Stopped:
    reason: StopReason


Outcome = Succeeded | Failed | Deferred | Stopped


def outcome_of_error(exc: BaseException, clock: Clock, jitter: float = 0.0) -> Outcome:
    """Error classification: what the queue should do about a handler's exception. A deferral
    is due after the refusal's end, spread by ``jitter`` in [0, 1] (``after_refusal``): the jobs
    one cooldown deferred do not all fall due in the same instant."""
    if isinstance(exc, BaseExceptionGroup):  # concurrent parts of a handler (TaskGroup) failed
        exc = representative(exc)
    if isinstance(exc, RateLimited):
        wait = timedelta(seconds=after_refusal(max(1.0, exc.retry_after), jitter))
        return Deferred(clock.now() + min(wait, MAX_DEFER), f"provider rate limit ({exc.message})"[:500])
    if isinstance(exc, JobFailure):
        return Failed(exc)
    if isinstance(exc, LeaseLost):
        return Stopped("lost")
    if isinstance(exc, StoreError):
        return Failed(TransientFailure(f"queue call failed while running: {exc}", details={"code": exc.code}))
    return Failed(InternalError(f"{type(exc).__name__}: {exc}"))


def representative(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error of a group that decides the outcome: a lost lease (nothing else matters),
    then a provider rate limit (defer, keeping the attempt), then a permanent failure (retrying
    cannot help), then any job failure, then the first error."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop(0)
        if isinstance(exc, BaseExceptionGroup):
            pending[:0] = exc.exceptions
        else:
            leaves.append(exc)

    def rank(e: BaseException) -> int:
        if isinstance(e, LeaseLost):
            return 0
        if isinstance(e, RateLimited):
            return 1
        if isinstance(e, JobFailure):
            return 2 if not e.retryable else 3
        return 4

    return min(leaves, key=rank) if leaves else group  # min is stable: the first of the best rank


async def execute(
    run: JobRun, call: Callable[[], Awaitable[dict[str, Any]]], limit_seconds: float, clock: Clock
) -> Outcome:
    handler = asyncio.ensure_future(call())
    timer = asyncio.get_running_loop().call_later(limit_seconds, handler.cancel)
    run.on_stop = handler.cancel
    if run.stop_reason is not None:  # stopped before it began
        handler.cancel()
    try:
        await handler
    except BaseException as raised:
        # The handler's own error or cancellation is read below; this job's task being
        # cancelled (shutdown's last resort) is not an outcome, even when the handler, cancelled
        # with it, turned its cancellation into an error.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            if isinstance(raised, asyncio.CancelledError):
                raise
            raise asyncio.CancelledError() from raised
    finally:
        timer.cancel()
        run.on_stop = None
        if not handler.done():
            handler.cancel()
            with contextlib.suppress(BaseException):
                await handler
    # A result that arrived wins over a stop that came at the same moment (cancelling a done
    # task does nothing).
    if not handler.cancelled():
        exc = handler.exception()
        return Succeeded(handler.result()) if exc is None else outcome_of_error(exc, clock, random.random())
    if run.stop_reason is not None:
        return Stopped(run.stop_reason)
    return Failed(JobTimedOut(f"the job ran longer than its kind's timeout of {limit_seconds:g} s"))
