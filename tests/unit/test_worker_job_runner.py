"""execute(): how a stop, the timeout and the job's own cancellation meet the handler's task."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from worker.adapters.memory import MemoryStore
from worker.core.clock import SystemClock
from worker.core.errors import JobTimedOut, TransientFailure
from worker.core.job_runner import Failed, JobRun, Stopped, Succeeded, execute

pytestmark = pytest.mark.asyncio
WAIT = 10.0  # seconds: the bound on every wait below, never an expected duration


def a_run() -> JobRun:
    return JobRun(MemoryStore().enqueue("generate_design"), started=0.0)


class Sleeper:
    """A handler that sleeps until it is cancelled, and tells when it began and when it was."""

    def __init__(self) -> None:
        self.began = asyncio.Event()
        self.cancelled = asyncio.Event()

    async def __call__(self) -> dict[str, Any]:
        self.began.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return {}


async def test_a_stop_before_the_handler_began_never_runs_it() -> None:
    run, began = a_run(), []
    run.stop("cancel")

    async def handler() -> dict[str, Any]:
        began.append(True)
        return {}

    assert await execute(run, handler, WAIT, SystemClock()) == Stopped("cancel")
    assert began == []


async def test_a_stop_cancels_the_handler_at_its_await() -> None:
    run, handler = a_run(), Sleeper()
    outcome = asyncio.ensure_future(execute(run, handler, 3600, SystemClock()))
    async with asyncio.timeout(WAIT):
        await handler.began.wait()
    run.stop("lost")
    run.stop("cancel")  # the first reason stays
    async with asyncio.timeout(WAIT):
        assert await outcome == Stopped("lost")
    assert handler.cancelled.is_set()
    assert run.on_stop is None  # nothing left to cancel once execute returned


async def test_a_result_already_returned_wins_over_a_stop_that_comes_before_it_is_read() -> None:
    run = a_run()

    async def handler() -> dict[str, Any]:
        # Runs after the handler's task is done, before execute reads it.
        asyncio.get_running_loop().call_soon(run.stop, "release")
        return {"done": True}

    assert await execute(run, handler, WAIT, SystemClock()) == Succeeded({"done": True})


async def test_the_timeout_cancels_the_handler_and_fails_the_job() -> None:
    run, handler = a_run(), Sleeper()
    async with asyncio.timeout(WAIT):
        outcome = await execute(run, handler, 0.01, SystemClock())
    assert isinstance(outcome, Failed) and isinstance(outcome.failure, JobTimedOut)
    assert handler.cancelled.is_set()


async def test_cancelling_the_jobs_own_task_cancels_the_handler_and_is_not_an_outcome() -> None:
    run, handler = a_run(), Sleeper()
    task = asyncio.ensure_future(execute(run, handler, 3600, SystemClock()))
    async with asyncio.timeout(WAIT):
        await handler.began.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await task
    assert handler.cancelled.is_set()


async def test_a_handler_that_turns_its_tasks_cancellation_into_an_error_still_ends_cancelled() -> None:
    run, began = a_run(), asyncio.Event()

    async def handler() -> dict[str, Any]:
        began.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise TransientFailure("cleaned up") from None
        return {}

    task = asyncio.ensure_future(execute(run, handler, 3600, SystemClock()))
    async with asyncio.timeout(WAIT):
        await began.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(WAIT):
            await task


async def test_a_stop_while_the_handler_cleans_up_after_its_timeout_is_taken_quietly() -> None:
    run, cleaning, stopped = a_run(), asyncio.Event(), asyncio.Event()

    async def handler() -> dict[str, Any]:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cleaning.set()
            await stopped.wait()  # the deadline has passed; a stop comes meanwhile
            raise
        return {}

    outcome = asyncio.ensure_future(execute(run, handler, 0.01, SystemClock()))
    async with asyncio.timeout(WAIT):
        await cleaning.wait()
    run.stop("lost")  # must not raise in the caller (the heartbeat's renewal)
    stopped.set()
    async with asyncio.timeout(WAIT):
        assert await outcome == Stopped("lost")


async def test_a_task_group_whose_part_fails_after_its_body_ended_gives_that_failure() -> None:
    # Python 3.11's TaskGroup leaves a cancel request on the task that runs it when a part fails
    # while the group's exit waits (fixed in 3.12). The handler's own task takes it with it; run
    # in the job's task, it read as the job being cancelled and the job was never recorded.
    run = a_run()

    async def part() -> None:
        await asyncio.sleep(0)
        raise TransientFailure("a batch failed")

    async def handler() -> dict[str, Any]:
        async with asyncio.TaskGroup() as group:
            group.create_task(part())
        return {}

    async with asyncio.timeout(WAIT):
        outcome = await execute(run, handler, WAIT, SystemClock())
    assert isinstance(outcome, Failed) and outcome.failure.message == "a batch failed"
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
