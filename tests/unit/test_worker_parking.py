"""Routed wake-ups, the worker's side: it parks only while subscribed, a parked worker does not
claim on a freed slot (whatever became claimable woke a parked worker), and it unparks on stop."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.unit.test_worker_core import Handler, config, echo, running, status, until
from worker.adapters.memory import MemoryStore
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.jobs import JobHint, Wake
from worker.core.ports import ProgressReport
from worker.core.runtime import Worker
from worker.core.shutdown import Shutdown
from worker.core.wakeup import WakeSignal


class FakeWakeups:
    """A push channel whose state the test sets; hints are delivered by calling the worker."""

    def __init__(self, connected: bool) -> None:
        self._connected = connected
        self.worker_id: str | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self, worker_id: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        self.worker_id = worker_id
        if self._connected:
            on_joined()

    async def close(self) -> None:
        self._connected = False


class ReportingStore(MemoryStore):
    """Keeps every report_progress_batch call's items."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[ProgressReport]] = []

    async def report_progress_batch(
        self, worker_id: str, reports: Sequence[ProgressReport]
    ) -> dict[uuid.UUID, str | None]:
        self.batches.append(list(reports))
        return await super().report_progress_batch(worker_id, reports)


async def run_one_job(
    connected: bool, handler: Handler = echo, store: MemoryStore | None = None
) -> tuple[MemoryStore, Worker, int]:
    """A worker with a push channel: one job pushed and run; claims made from the push on."""
    store = store or MemoryStore()
    cfg = config(kinds=("rename_layers",))
    wakeups = FakeWakeups(connected)
    worker = Worker(cfg, store, {"rename_layers": handler}, SystemClock(), wakeups=wakeups)
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    try:
        await until(lambda: store.calls.count("claim_jobs") >= 1, "the start-up claim")
        assert wakeups.worker_id == cfg.worker_id
        assert (cfg.worker_id in store.parked) is connected
        before = store.calls.count("claim_jobs")
        job = store.enqueue("rename_layers")
        worker._on_hint(JobHint(kind="rename_layers", run_at=job.run_at))
        await until(lambda: status(store, job) == "succeeded" and not worker.runs, "job done")
        await asyncio.sleep(0.1)  # room for a freed-slot claim, if the worker made one
        return store, worker, store.calls.count("claim_jobs") - before
    finally:
        shutdown.request()
        shutdown.request()
        async with asyncio.timeout(10):
            await task


async def test_a_subscribed_worker_parks_and_claims_once_per_pushed_job() -> None:
    store, _, claims = await run_one_job(connected=True)
    assert claims == 1  # the pushed claim; its short answer parked it, so the freed slot needs none
    assert "unpark_worker" in store.calls and store.parked == {}  # unparked on stop


async def test_without_a_live_subscription_the_worker_does_not_park_and_claims_on_a_freed_slot() -> None:
    store, _, claims = await run_one_job(connected=False)
    assert store.parked == {}
    assert claims == 2  # the pushed claim and the freed slot's


async def test_without_a_push_channel_nothing_is_parked_or_unparked() -> None:
    store = MemoryStore()
    async with running(store, {"rename_layers": echo}):
        pass
    assert store.parked == {} and "unpark_worker" not in store.calls


async def test_a_due_time_armed_during_a_wait_ends_it_at_that_time() -> None:
    # A parked worker gets no push when its job is deferred: the loop, already waiting for the
    # hour-long sweep, must wake at the deferral's run_at instead.
    clock = SystemClock()
    signal = WakeSignal(clock)
    waiting = asyncio.create_task(signal.wait(3600))
    await asyncio.sleep(0)
    signal.due(clock.now() + timedelta(milliseconds=50))
    async with asyncio.timeout(10):
        assert await waiting == "due"
    assert signal.next_due is None


async def test_a_later_due_time_survives_an_earlier_one_firing() -> None:
    # A hand-off's re-park claim is due in 2 ms; a deferral armed meanwhile is due later. After the
    # first fires, the loop must still wake for the second (it once kept only the earliest time,
    # and a deferred job then waited for the next sweep).
    clock = SystemClock()
    signal = WakeSignal(clock)
    # Far enough apart that a slow scheduler cannot reach the first wait after both are due.
    soon, later = clock.now() + timedelta(milliseconds=20), clock.now() + timedelta(milliseconds=500)
    signal.due(soon)
    signal.due(later)
    async with asyncio.timeout(10):
        assert await signal.wait(3600) == "due"
        assert signal.next_due == later
        signal.claiming()  # the claim the first wake-up sends leaves the later time armed
        assert signal.next_due == later
        assert await signal.wait(3600) == "due"
    assert signal.next_due is None


class LaggingWallClock(SystemClock):
    """The loop's timers run on time; the wall clock reads ``lag`` behind."""

    lag = timedelta(0)

    def now(self) -> datetime:
        return super().now() - self.lag


async def test_a_timer_that_fires_before_its_due_time_by_the_wall_clock_keeps_it_armed() -> None:
    # uvloop's timers count from a cached millisecond clock and can fire a little early; a claim
    # sent then found the deferred job not yet due, the time was dropped, and the job waited for
    # the sweep (CI: the psycopg worker's deferred job in the 429 cooldown process test).
    clock = LaggingWallClock()
    signal = WakeSignal(clock)
    at = clock.now() + timedelta(milliseconds=30)
    signal.due(at)
    waiting = asyncio.create_task(signal.wait(3600))
    await asyncio.sleep(0)  # the wait's timer is set for 30 ms from now
    clock.lag = timedelta(seconds=1)  # from here the timer fires ~1 s early by the wall clock
    await asyncio.sleep(0.1)  # it has fired; the wall clock is not at `at` yet
    assert not waiting.done() and signal.next_due == at
    clock.lag = timedelta(0)
    async with asyncio.timeout(10):
        assert await waiting == "due"
    assert signal.next_due is None


def test_a_claim_drops_only_the_due_times_it_covers() -> None:
    clock = SystemClock()
    signal = WakeSignal(clock)
    past_soon = clock.now() + timedelta(milliseconds=1)
    signal.due(clock.now() + timedelta(hours=1))
    signal.due(past_soon)
    while clock.now() <= past_soon:
        time.sleep(0.001)
    signal.claiming()
    assert signal.next_due is not None and signal.next_due > clock.now() + timedelta(minutes=59)


async def first_step_flushed(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    await ctx.progress(5, "designing")
    await ctx.flush()  # the step goes out now, with whatever was queued before it
    return {}


async def test_a_parked_workers_claim_is_quiet_and_its_first_report_announces_the_job() -> None:
    """claim_jobs_or_park does not broadcast "running": the worker's "started" marker, queued at
    the claim, rides in one item with the handler's first step."""
    store = ReportingStore()
    await run_one_job(True, first_step_flushed, store)
    assert store.batches == [[ProgressReport(store.batches[0][0].job_id, 5, "designing", started=True)]]


async def test_a_loud_claim_is_not_announced_again() -> None:
    """Without a live subscription the worker claims with claim_jobs, which broadcasts "running"."""
    store = ReportingStore()
    await run_one_job(False, first_step_flushed, store)
    assert [[r.started for r in batch] for batch in store.batches] == [[False]]


class GatedClaims(MemoryStore):
    """claim_jobs waits at a gate the test opens, so a job can finish while a claim is in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.gate: asyncio.Event | None = None
        self.held = 0

    async def claim_jobs(self, *args: Any, **kwargs: Any) -> list[Any]:
        if self.gate is not None:
            self.held += 1
            await self.gate.wait()
        return await super().claim_jobs(*args, **kwargs)


async def test_a_job_that_finishes_while_a_parking_claim_is_in_flight_adds_no_claim() -> None:
    """Woken for job B while job A finishes: B's claim (it parks if short) covers A's freed slot;
    a second claim for that slot was one extra claim per job under load (the herd test)."""
    store = GatedClaims()
    release_a = asyncio.Event()

    async def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if payload.get("hold"):
            await release_a.wait()
        return {}

    worker = Worker(
        config(kinds=("rename_layers",)), store, {"rename_layers": handler}, SystemClock(), wakeups=FakeWakeups(True)
    )
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    try:
        await until(lambda: worker.parked, "parked after the start-up claim")
        a = store.enqueue("rename_layers", {"hold": True})
        worker._on_hint(JobHint(kind="rename_layers", run_at=a.run_at))
        await until(lambda: status(store, a) == "running" and worker.parked, "A running, the worker parked")
        before = store.calls.count("claim_jobs")
        store.gate = asyncio.Event()
        b = store.enqueue("rename_layers")
        worker._on_hint(JobHint(kind="rename_layers", run_at=b.run_at))
        await until(lambda: store.held == 1, "B's claim in flight")
        release_a.set()
        await until(lambda: status(store, a) == "succeeded" and a.id not in worker.runs, "A done")
        store.gate.set()
        await until(lambda: status(store, b) == "succeeded" and not worker.runs, "B done")
        await asyncio.sleep(0.1)  # room for a freed-slot claim, if the worker made one
        assert store.calls.count("claim_jobs") - before == 1
        assert worker.parked
    finally:
        shutdown.request()
        shutdown.request()
        async with asyncio.timeout(10):
            await task
