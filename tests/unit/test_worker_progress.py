"""Progress coalescing (worker/core/progress.py): reports of many jobs share one call, each job's
keep their order, text is merged and never dropped, and a success's last step rides with it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from worker.adapters.memory import MemoryStore
from worker.core.acks import CompletionBatcher
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.errors import LeaseLost
from worker.core.jobs import Job
from worker.core.ports import ProgressReport
from worker.core.progress import ProgressBatcher


class GatedStore(MemoryStore):
    """Holds the first batch in flight until released, like a slow network call."""

    def __init__(self) -> None:
        super().__init__()
        self.first_in_flight = asyncio.Event()
        self.release_first = asyncio.Event()
        self.batches: list[list[ProgressReport]] = []

    async def report_progress_batch(
        self, worker_id: str, reports: Sequence[ProgressReport]
    ) -> dict[uuid.UUID, str | None]:
        self.batches.append(list(reports))
        if len(self.batches) == 1:
            self.first_in_flight.set()
            await self.release_first.wait()
        return await super().report_progress_batch(worker_id, reports)


async def running(store: MemoryStore, n: int = 1, kind: str = "generate_edits") -> list[Job]:
    for _ in range(n):
        store.enqueue(kind, {"n": 1})
    jobs = await store.claim_jobs("w1", None, n, 60)
    assert all(isinstance(j, Job) for j in jobs)
    return [j for j in jobs if isinstance(j, Job)]


def contexts(store: MemoryStore, jobs: list[Job], worker: str = "w1") -> tuple[ProgressBatcher, list[JobContext]]:
    batcher = ProgressBatcher(store, worker, SystemClock(), min_interval=0.0)
    return batcher, [JobContext(j, worker, store, SystemClock(), reports=batcher) for j in jobs]


def events(store: MemoryStore, job: Job) -> list[tuple[str, object]]:
    return [(e.type, e.data) for e in store.events if e.job_id == job.id]


async def test_reports_of_many_jobs_queued_behind_a_call_share_the_next_one_in_order() -> None:
    store = GatedStore()
    a, b = await running(store, 2)
    _, (ca, cb) = contexts(store, [a, b])

    await ca.progress(10, "starting")  # in flight, held
    await store.first_in_flight.wait()
    await ca.partial("Hel")
    await cb.progress(5, "b starts")
    await ca.partial("lo")
    await cb.partial("B1")
    await ca.progress(50, "half")
    await ca.partial(" world")
    await cb.partial("B2")
    store.release_first.set()
    await ca.flush()
    await cb.flush()

    assert len(store.batches) == 2  # everything queued behind the first call went in one
    assert events(store, a) == [
        ("progress", {"percent": 10, "message": "starting"}),
        ("partial", {"text": "Hello"}),  # two pieces merged, order kept
        ("progress", {"percent": 50, "message": "half"}),
        ("partial", {"text": " world"}),
    ]
    assert events(store, b) == [("progress", {"percent": 5, "message": "b starts"}), ("partial", {"text": "B1B2"})]


async def test_every_fragment_arrives_in_order_and_the_final_state_is_the_whole_text() -> None:
    store = GatedStore()
    store.release_first.set()
    (job,) = await running(store)
    _, (ctx,) = contexts(store, [job])
    pieces = [f"token{i} " for i in range(300)]
    for i, piece in enumerate(pieces):
        await ctx.partial(piece)
        if i % 7 == 0:
            await asyncio.sleep(0)  # let some calls go out in between
    await ctx.flush()
    texts = [data["text"] for kind, data in events(store, job) if kind == "partial" and isinstance(data, dict)]
    assert "".join(texts) == "".join(pieces)
    assert len(texts) < len(pieces)  # coalesced


async def test_a_report_overtaken_while_waiting_is_dropped_but_every_step_is_kept() -> None:
    store = GatedStore()
    (job,) = await running(store, kind="rename_layers")
    _, (ctx,) = contexts(store, [job])
    await ctx.progress(25, "batch 1 of 4")
    await store.first_in_flight.wait()
    await ctx.progress(50, "batch 2 of 4")
    await ctx.progress(75, "batch 3 of 4")
    await ctx.progress(40, "late")  # behind 75: stale, never sent
    store.release_first.set()
    await ctx.flush()
    messages = [d["message"] for t, d in events(store, job) if t == "progress" and isinstance(d, dict)]
    assert messages == ["batch 1 of 4", "batch 2 of 4", "batch 3 of 4"]  # each rename batch, none merged away
    assert store.get(job.id).progress == {"percent": 75, "message": "batch 3 of 4"}


async def test_a_success_carries_its_last_progress_into_the_outcome() -> None:
    store = GatedStore()
    store.release_first.set()
    a, b = await running(store, 2, kind="generate_design")
    _, (ca, cb) = contexts(store, [a, b])
    acks = CompletionBatcher(store, "w1")

    await ca.progress(95, "12 nodes")
    carried = await ca.settle(carry=True)
    assert carried == ProgressReport(a.id, 95, "12 nodes")
    await acks.complete(a.id, {"nodes": 12}, carried)
    assert store.batches == []  # no call of its own
    assert events(store, a) == [("progress", {"percent": 95, "message": "12 nodes"})]
    assert store.get(a.id).progress == {"percent": 100, "message": "12 nodes"}

    # Text after the last step: no step is carried, every report rides with the outcome, first.
    await cb.progress(50, "writing")
    await cb.partial("the end")
    assert await cb.settle(carry=True) is None
    reports = cb.carried_reports()
    assert reports == (ProgressReport(b.id, 50, "writing", partial="the end"),) and cb.carried_reports() == ()
    await acks.complete(b.id, {}, None, (), reports)
    assert store.batches == [] and store.calls[-1] == "report_and_complete"
    assert events(store, b) == [
        ("progress", {"percent": 50, "message": "writing"}),
        ("partial", {"text": "the end"}),
    ]
    assert store.get(b.id).status == "succeeded"


async def test_a_failure_sends_everything_before_its_outcome() -> None:
    store = GatedStore()
    store.release_first.set()
    (job,) = await running(store)
    _, (ctx,) = contexts(store, [job])
    await ctx.progress(30, "trying")
    assert await ctx.settle(carry=False) is None
    assert events(store, job) == [("progress", {"percent": 30, "message": "trying"})]


async def test_a_lost_lease_stops_that_handler_at_its_next_report_and_not_the_others() -> None:
    store = GatedStore()
    store.release_first.set()
    a, b = await running(store, 2)
    _, (ca, cb) = contexts(store, [a, b])
    store.expire_lease(a.id)
    await ca.progress(10, "starting")  # queued; the batch refuses this job's row only
    await cb.progress(10, "starting")
    await ca.flush()
    with pytest.raises(LeaseLost):
        await ca.progress(20, "next")
    await cb.progress(20, "next")
    await cb.flush()
    assert store.get(b.id).progress == {"percent": 20, "message": "next"}


async def test_one_jobs_bad_report_does_not_sink_the_others_in_its_batch() -> None:
    store = GatedStore()
    a, b = await running(store, 2)
    _, (ca, cb) = contexts(store, [a, b])
    await cb.progress(1, "first")
    await store.first_in_flight.wait()
    await ca.progress(10, "m" * 1001)  # refused by the API: over 1000 characters
    await cb.progress(20, "fine")
    store.release_first.set()
    await ca.flush()
    await cb.flush()
    assert store.get(b.id).progress == {"percent": 20, "message": "fine"}
    assert events(store, a) == []


class StillClock:
    """Time stands still: a held or paced report never becomes due by itself."""

    def now(self) -> datetime:
        return datetime(2026, 12, 4, tzinfo=UTC)

    def monotonic(self) -> float:
        return 1000.0

    async def sleep(self, seconds: float) -> None:
        await asyncio.Event().wait()


async def test_reports_within_the_window_wait_and_go_out_together_or_with_the_outcome() -> None:
    store = GatedStore()
    store.release_first.set()
    design, edits = await running(store, 2, kind="generate_design")
    batcher = ProgressBatcher(store, "w1", StillClock(), min_interval=0.1)
    cd, ce = (JobContext(j, "w1", store, SystemClock(), reports=batcher) for j in (design, edits))

    await cd.progress(5, "designing")
    await cd.progress(95, "12 nodes")
    for piece in ("Var", "iant", " A"):
        await ce.partial(piece)
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.batches == []  # held: nothing is due yet

    assert await cd.settle(carry=True) == ProgressReport(design.id, 95, "12 nodes")
    assert cd.carried_reports() == (ProgressReport(design.id, 5, "designing"),)  # all ride with the outcome
    assert await ce.settle(carry=True) is None
    assert ce.carried_reports() == (ProgressReport(edits.id, partial="Variant A"),)  # one piece
    assert store.batches == []


async def test_a_quiet_claims_marker_joins_the_first_step_and_a_quick_end_needs_no_call() -> None:
    """The "started" marker is held like any report: the first step joins it in one item, and a
    job that ends within the hold is announced by its outcome alone."""
    store = GatedStore()
    store.release_first.set()
    design, quick, failing = await running(store, 3, kind="generate_design")
    batcher = ProgressBatcher(store, "w1", StillClock(), min_interval=0.1)
    for job in (design, quick, failing):
        batcher.start(job.id, announce=True)
    cd, cq, cf = (JobContext(j, "w1", store, SystemClock(), reports=batcher) for j in (design, quick, failing))

    await cd.progress(5, "designing")
    await cd.progress(95, "12 nodes")
    await cq.progress(95, "3 nodes")
    for _ in range(5):
        await asyncio.sleep(0)
    assert store.batches == []  # held, markers included

    assert await cd.settle(carry=True) == ProgressReport(design.id, 95, "12 nodes")
    assert cd.carried_reports() == (ProgressReport(design.id, 5, "designing", started=True),)
    carried = await cq.settle(carry=True)  # its only step rides with the outcome, marker and all
    assert carried is not None and (carried.percent, carried.message) == (95, "3 nodes")
    assert cq.carried_reports() == ()
    assert await cf.settle(carry=False) is None  # a failure broadcasts its own row: marker dropped
    assert store.batches == []


async def test_a_marker_alone_goes_out_when_due_and_writes_no_event() -> None:
    store = GatedStore()
    store.release_first.set()
    (job,) = await running(store)
    batcher = ProgressBatcher(store, "w1", SystemClock(), min_interval=0.0)
    batcher.start(job.id, announce=True)
    batcher.start(job.id, announce=True)  # already started: nothing more queued
    async with asyncio.timeout(5):
        while not store.batches:
            await asyncio.sleep(0.01)
    assert store.batches == [[ProgressReport(job.id, started=True)]]
    assert events(store, job) == [] and store.get(job.id).progress.get("percent") in (None, 0)
    await batcher.settle(job.id, carry=False)
    assert len(store.batches) == 1


async def test_text_streamed_right_after_the_claim_keeps_the_marker() -> None:
    store = GatedStore()
    store.release_first.set()
    (job,) = await running(store)
    batcher = ProgressBatcher(store, "w1", StillClock(), min_interval=0.1)
    batcher.start(job.id, announce=True)
    batcher.partial(job.id, "Var")
    batcher.partial(job.id, "iant")
    assert await batcher.settle(job.id, carry=True) == [ProgressReport(job.id, partial="Variant", started=True)]
    assert store.batches == []


class ManualClock:
    """Time moves only when the test moves it; sleepers wake once it has passed their deadline."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t
        self._moved = asyncio.Event()

    def now(self) -> datetime:
        return datetime(2026, 12, 5, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        # The deadline is taken at the call, as a real clock's: a sleeper task may first run
        # after the test has moved the time on.
        return self._until(self.t + seconds)

    async def _until(self, deadline: float) -> None:
        while self.t < deadline:
            await self._moved.wait()

    async def move_to(self, t: float) -> None:
        self.t = t
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()
        for _ in range(20):  # let the sender run to its next wait
            await asyncio.sleep(0)


async def test_jobs_falling_due_within_one_beat_share_one_call_and_stay_paced() -> None:
    store = GatedStore()
    store.release_first.set()
    clock = ManualClock()
    a, b, c = await running(store, 3, kind="generate_design")
    batcher = ProgressBatcher(store, "w1", clock, min_interval=0.1)  # a beat of 0.05 s
    for job in (a, b, c):
        batcher.start(job.id)  # each claim counts as its job's last message, at 1000.0

    for job, at in ((a, 1000.06), (b, 1000.08), (c, 1000.09)):
        await clock.move_to(at)
        batcher.progress(job.id, 10, "started")  # each due 0.1 s later, within the beat ending 1000.20
    await clock.move_to(1000.199)
    assert store.batches == []  # a's hold ended at 1000.16: it waits for the beat
    await clock.move_to(1000.201)
    assert store.batches == [[ProgressReport(j.id, 10, "started") for j in (a, b, c)]]  # one call

    # Still paced: a's next step goes out no sooner than 0.1 s after the last message (1000.201).
    batcher.progress(a.id, 50, "half")
    await clock.move_to(1000.299)
    assert len(store.batches) == 1
    await clock.move_to(1000.351)
    assert store.batches[1] == [ProgressReport(a.id, 50, "half")]


async def test_a_settle_takes_along_every_job_whose_hold_is_over() -> None:
    store = GatedStore()
    store.release_first.set()
    clock = ManualClock()
    a, b, ending = await running(store, 3, kind="generate_design")
    batcher = ProgressBatcher(store, "w1", clock, min_interval=0.1)
    for job in (a, b, ending):
        batcher.start(job.id)
    await clock.move_to(1000.06)
    batcher.progress(a.id, 10, "a")  # hold over at 1000.16, beat at 1000.20
    await clock.move_to(1000.09)
    batcher.progress(b.id, 10, "b")  # hold over at 1000.19
    batcher.progress(ending.id, 50, "writing")
    batcher.partial(ending.id, "the end")
    await clock.move_to(1000.17)
    assert store.batches == []
    assert await batcher.settle(ending.id, carry=False) == []  # a failure's: everything sent now
    assert store.batches == [
        [ProgressReport(a.id, 10, "a"), ProgressReport(ending.id, 50, "writing", partial="the end")]
    ]  # a rode along (its hold was over); b, still held, did not
    await clock.move_to(1000.201)
    assert store.batches[1] == [ProgressReport(b.id, 10, "b")]
