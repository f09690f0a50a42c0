"""JobContext progress: reports from concurrent tasks go out in order and never move backwards."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from worker.adapters.memory import MemoryStore
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.errors import LeaseLost
from worker.core.jobs import Job


class GatedStore(MemoryStore):
    """Holds the first progress report in flight until released, like a slow network call."""

    def __init__(self) -> None:
        super().__init__()
        self.first_in_flight = asyncio.Event()
        self.release_first = asyncio.Event()
        self.progress_calls = 0

    async def report_progress(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        *,
        percent: float | None = None,
        message: str | None = None,
        partial: str | None = None,
    ) -> None:
        self.progress_calls += 1
        if self.progress_calls == 1:
            self.first_in_flight.set()
            await self.release_first.wait()
        await super().report_progress(job_id, worker_id, percent=percent, message=message, partial=partial)


async def test_a_report_overtaken_while_waiting_is_dropped() -> None:
    store = GatedStore()
    store.enqueue("rename_layers", {"n": 1})
    (job,) = await store.claim_jobs("w1", None, 1, 60)
    assert isinstance(job, Job)
    ctx = JobContext(job=job, worker_id="w1", store=store, clock=SystemClock())

    # Batch 1 reports 50 % but its call is slow; meanwhile batches 2 then 1' (a stale 50 %) queue up.
    first = asyncio.create_task(ctx.progress(50, "batch 1 of 2"))
    await store.first_in_flight.wait()
    second = asyncio.create_task(ctx.progress(100, "batch 2 of 2"))
    stale = asyncio.create_task(ctx.progress(50, "batch 1 of 2 (late)"))
    await asyncio.sleep(0)
    store.release_first.set()
    await asyncio.gather(first, second, stale)
    await ctx.flush()

    assert store.get(job.id).progress == {"percent": 100, "message": "batch 2 of 2"}
    assert store.progress_calls == 2  # the stale report never reached the store
    messages = [e.data.get("message") for e in store.events if e.job_id == job.id and e.type == "progress"]
    assert messages == ["batch 1 of 2", "batch 2 of 2"]


async def test_reports_do_not_wait_for_the_store_and_all_go_out_in_order() -> None:
    store = GatedStore()
    store.enqueue("generate_edits", {"n": 1})
    (job,) = await store.claim_jobs("w1", None, 1, 60)
    assert isinstance(job, Job)
    ctx = JobContext(job=job, worker_id="w1", store=store, clock=SystemClock())

    await ctx.progress(10, "starting")  # returns while its call is held in flight
    await store.first_in_flight.wait()
    await ctx.progress(40, "thinking")
    await ctx.partial("Hello")
    await ctx.progress(30, "stale")  # behind 40: never sent
    await ctx.partial(" world")
    finishing = asyncio.create_task(ctx.flush())
    await asyncio.sleep(0)
    assert not finishing.done()  # the outcome waits for the queued reports
    store.release_first.set()
    await finishing

    events = [(e.type, e.data) for e in store.events if e.job_id == job.id]
    assert events == [
        ("progress", {"percent": 10, "message": "starting"}),
        ("progress", {"percent": 40, "message": "thinking"}),
        ("partial", {"text": "Hello world"}),  # queued together behind the call in flight
    ]


async def test_streamed_text_queued_behind_a_call_goes_out_in_one_piece() -> None:
    store = GatedStore()
    store.enqueue("generate_edits", {"n": 1})
    (job,) = await store.claim_jobs("w1", None, 1, 60)
    assert isinstance(job, Job)
    ctx = JobContext(job=job, worker_id="w1", store=store, clock=SystemClock())

    await ctx.partial("A")  # in flight, held
    await store.first_in_flight.wait()
    for piece in ("b", "c", "d"):
        await ctx.partial(piece)
    await ctx.progress(50, "half")
    await ctx.partial("e")
    store.release_first.set()
    await ctx.flush()

    events = [(e.type, e.data) for e in store.events if e.job_id == job.id]
    assert events == [
        ("partial", {"text": "A"}),
        ("partial", {"text": "bcd"}),  # three pieces, one call; nothing lost, order kept
        ("progress", {"percent": 50, "message": "half"}),
        ("partial", {"text": "e"}),
    ]
    assert store.progress_calls == 4


async def test_a_lost_lease_found_by_a_report_stops_the_handler_at_its_next_report() -> None:
    store = MemoryStore()
    store.enqueue("rename_layers", {"n": 1})
    (job,) = await store.claim_jobs("w1", None, 1, 60)
    assert isinstance(job, Job)
    ctx = JobContext(job=job, worker_id="someone-else", store=store, clock=SystemClock())

    await ctx.progress(10, "starting")  # queued; the store will refuse it
    await ctx.flush()
    with pytest.raises(LeaseLost):
        await ctx.progress(20, "next")
