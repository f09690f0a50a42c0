"""The core loop against the in-memory store: wake-ups, outcomes, heartbeat, shutdown, outages."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest

from worker.adapters.memory import MemoryStore
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.errors import PermanentFailure, RateLimited, StoreUnavailable, TransientFailure
from worker.core.jobs import Job, JobHint, JobKind
from worker.core.routing import ModelRouter
from worker.core.runtime import Worker, WorkerConfig
from worker.core.shutdown import Shutdown

Handler = Callable[[dict[str, Any], JobContext], Awaitable[dict[str, Any]]]
WAIT = 10.0  # seconds: the bound on every wait below, never an expected duration


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)
    assert predicate(), what


async def echo(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await ctx.progress(50, "half way")
    return {"echo": payload}


def config(**overrides: Any) -> WorkerConfig:
    base: dict[str, Any] = {
        "worker_id": f"test-{uuid.uuid4().hex[:6]}",
        "kinds": ("generate_design", "rename_layers", "generate_edits", "generate_image"),
        "concurrency": 4,
        "lease_seconds": 30,
        "heartbeat_interval": 0.05,
        "sweep_interval": 3600.0,  # no sweeps unless a test asks: wake-ups must come from elsewhere
        "drain_timeout": 5.0,
    }
    return WorkerConfig(**{**base, **overrides})


@asynccontextmanager
async def running(
    store: MemoryStore, handlers: dict[str, Handler], cfg: WorkerConfig | None = None, models: ModelRouter | None = None
) -> AsyncIterator[tuple[Worker, Shutdown]]:
    worker = Worker(cfg or config(), store, handlers, SystemClock(), models=models)
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    try:
        await until(lambda: "next_run_at" in store.calls, "the startup sweep ran")
        yield worker, shutdown
    finally:
        shutdown.request()
        shutdown.request()
        async with asyncio.timeout(WAIT):
            await task


def status(store: MemoryStore, job: Job) -> str:
    return store.get(job.id).status


async def test_a_pushed_job_is_claimed_and_completed_with_progress() -> None:
    store = MemoryStore()
    async with running(store, {"rename_layers": echo}) as (worker, _):
        job = store.enqueue("rename_layers", {"n": 1})
        worker._on_hint(JobHint(kind="rename_layers", run_at=job.run_at))  # what Realtime delivers
        await until(lambda: status(store, job) == "succeeded", "job succeeded")
    row = store.get(job.id)
    assert row.result == {"echo": {"n": 1}}
    assert next(e.data for e in store.events if e.job_id == job.id) == {"percent": 50, "message": "half way"}
    assert worker.metrics.count("worker_jobs_succeeded_total", kind="rename_layers") == 1


async def test_hints_for_other_kinds_do_not_wake_the_loop() -> None:
    store = MemoryStore()
    async with running(store, {"rename_layers": echo}, config(kinds=("rename_layers",))) as (worker, _):
        claims = store.calls.count("claim_jobs")
        worker._on_hint(JobHint(kind="generate_image"))
        await asyncio.sleep(0.1)
        assert store.calls.count("claim_jobs") == claims


async def test_a_future_job_is_claimed_by_the_due_timer_without_a_push_or_sweep() -> None:
    store = MemoryStore()
    job = store.enqueue("rename_layers", run_at=store.clock.now() + timedelta(milliseconds=300))
    async with running(store, {"rename_layers": echo}) as (worker, _):
        assert worker.next_due == job.run_at  # armed by the startup sweep's next_run_at
        await until(lambda: status(store, job) == "succeeded", "job succeeded")
    assert store.calls.count("next_run_at") == 1  # no second sweep was needed
    assert worker.metrics.count("worker_wakeups_total", reason="due") >= 1


async def test_claims_in_batches_up_to_free_capacity() -> None:
    store = MemoryStore()
    gate = asyncio.Event()

    async def held(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await gate.wait()
        return {}

    jobs = [store.enqueue("generate_design", user_id=uuid.uuid4()) for _ in range(5)]
    async with running(store, {"generate_design": held}, config(concurrency=3)) as (worker, _):
        await until(lambda: len(worker.runs) == 3, "three running")
        assert sorted(status(store, j) for j in jobs).count("running") == 3
        gate.set()
        await until(lambda: all(status(store, j) == "succeeded" for j in jobs), "all succeeded")


async def test_per_user_concurrency_is_respected() -> None:
    store = MemoryStore()
    user = uuid.uuid4()
    gate = asyncio.Event()
    seen: list[int] = []

    async def held(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        seen.append(sum(1 for r in store.rows.values() if r.status == "running" and r.user_id == user))
        await gate.wait()
        return {}

    jobs = [store.enqueue("generate_edits", user_id=user) for _ in range(3)]  # cap 1 per user
    async with running(store, {"generate_edits": held}) as (worker, _):
        await until(lambda: len(worker.runs) == 1, "one running")
        await asyncio.sleep(0.1)
        assert len(worker.runs) == 1
        gate.set()
        await until(lambda: all(status(store, j) == "succeeded" for j in jobs), "all succeeded")
    assert seen == [1, 1, 1]


async def test_rate_limit_defers_without_using_an_attempt() -> None:
    store = MemoryStore()

    async def limited(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        raise RateLimited("429 from anthropic", retry_after=120)

    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": limited}) as (worker, _):
        await until(lambda: "defer_job" in store.calls, "deferred")
        row = store.get(job.id)
        assert row.status == "queued" and row.attempts == 0
        assert timedelta(seconds=110) < row.run_at - store.clock.now() <= timedelta(seconds=121)
        assert worker.next_due == row.run_at  # the worker's own timer knows when it is due
        assert worker.metrics.count("worker_jobs_deferred_total", kind="generate_design") == 1


@pytest.mark.parametrize(
    ("failure", "expected_status", "expected_type"),
    [
        (TransientFailure("503 upstream"), "queued", "provider_unavailable"),
        (PermanentFailure("400 bad request"), "failed", "invalid_request"),
        (ValueError("boom"), "queued", "internal_error"),
    ],
)
async def test_failures_map_to_fail_job(failure: Exception, expected_status: str, expected_type: str) -> None:
    store = MemoryStore()

    async def failing(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        raise failure

    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": failing}):
        await until(lambda: "fail_job" in store.calls, "failed")
    row = store.get(job.id)
    assert row.status == expected_status
    assert row.error is not None and row.error["type"] == expected_type
    assert row.attempts == 1


async def test_a_job_over_its_kind_timeout_fails_retryably() -> None:
    store = MemoryStore()
    store.kinds["generate_design"] = JobKind(kind="generate_design", timeout_seconds=1, max_attempts=3)

    async def slow(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {}

    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": slow}):
        await until(lambda: "fail_job" in store.calls, "timed out")
    row = store.get(job.id)
    assert row.error is not None and row.error["type"] == "timeout" and row.status == "queued"


async def test_cancel_request_stops_the_handler_and_records_cancelled() -> None:
    store = MemoryStore()
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": forever}):
        async with asyncio.timeout(WAIT):
            await started.wait()
        store.cancel(job.id)
        await until(lambda: status(store, job) == "cancelled", "cancelled")
    assert cancelled.is_set()
    row = store.get(job.id)
    assert row.error is not None and row.error["type"] == "cancelled"


async def test_a_lost_lease_stops_the_job_without_recording_anything() -> None:
    store = MemoryStore()
    started = asyncio.Event()

    async def forever(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        started.set()
        await asyncio.sleep(3600)
        return {}

    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": forever}) as (worker, _):
        async with asyncio.timeout(WAIT):
            await started.wait()
        store.expire_lease(job.id)
        assert await store.reap_expired_leases() == 1
        await until(lambda: not worker.runs, "job dropped")
        assert worker.metrics.count("worker_jobs_lost_total", kind="generate_design") == 1
    assert not {"complete_job", "fail_job"} & set(store.calls)
    error = store.get(job.id).error
    assert error is not None and (error["type"], error["retryable"], error["attempt"]) == ("lease_expired", True, 1)


async def test_shutdown_drains_running_jobs_then_exits() -> None:
    store = MemoryStore()
    gate = asyncio.Event()

    async def held(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await gate.wait()
        return {"done": True}

    job = store.enqueue("generate_design")
    worker = Worker(config(), store, {"generate_design": held}, SystemClock())
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    await until(lambda: status(store, job) == "running", "running")
    shutdown.request()
    late = store.enqueue("generate_design", user_id=uuid.uuid4())
    await asyncio.sleep(0.1)
    assert not task.done()  # still draining
    gate.set()
    async with asyncio.timeout(WAIT):
        await task
    assert status(store, job) == "succeeded"
    assert status(store, late) == "queued"  # no claims after the first signal


async def forever(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A handler that never finishes on its own: only shutdown ends it."""
    await asyncio.sleep(3600)
    return {}


async def test_drain_timeout_releases_the_rest_with_the_attempt_given_back() -> None:
    store = MemoryStore()

    job = store.enqueue("generate_design")
    worker = Worker(config(drain_timeout=0.2), store, {"generate_design": forever}, SystemClock())
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    await until(lambda: status(store, job) == "running", "running")
    shutdown.request()
    async with asyncio.timeout(WAIT):
        await task
    row = store.get(job.id)
    assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None)
    assert "fail_job" not in store.calls


async def test_a_second_signal_releases_at_once() -> None:
    store = MemoryStore()

    job = store.enqueue("generate_design")
    worker = Worker(config(drain_timeout=3600), store, {"generate_design": forever}, SystemClock())
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    await until(lambda: status(store, job) == "running", "running")
    shutdown.request()
    await asyncio.sleep(0.05)
    assert not task.done()
    shutdown.request()
    async with asyncio.timeout(WAIT):  # far less than the hour-long drain timeout
        await task
    assert status(store, job) == "queued"


async def test_the_worker_survives_an_unreachable_store_and_resumes() -> None:
    store = MemoryStore()
    store.fail_next = [StoreUnavailable("connection refused")] * 4
    job = store.enqueue("rename_layers")
    async with running(store, {"rename_layers": echo}, config()) as (worker, _):
        await until(lambda: status(store, job) == "succeeded", "succeeded after the outage")
        assert worker.health.store_ok
    # The first failures hit the startup sweep; after recovery, a sweep ran again (missed pushes).
    assert store.calls.count("reap_expired_leases") >= 2


async def test_health_reports_an_unreachable_store() -> None:
    store = MemoryStore()
    store.fail_next = [StoreUnavailable("connection refused")] * 1000
    worker = Worker(config(), store, {}, SystemClock())
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    await until(lambda: store.calls.count("reap_expired_leases") >= 2, "retried")
    healthy, body = worker.health.report()
    assert not healthy
    assert body["database"] == {"reachable": False, "error": "connection refused"}
    shutdown.request()
    async with asyncio.timeout(WAIT):
        await task
