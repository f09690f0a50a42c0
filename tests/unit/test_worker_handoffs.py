"""Hand-offs, the worker's side: a handed job runs without a claim, whichever of its message and
a parking claim's answer comes second is dropped, and the worker claims (now or when a slot
frees) only when the database asks or its parking entry has no slots left."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from tests.unit.test_worker_core import Handler, config, echo, status, until
from tests.unit.test_worker_parking import FakeWakeups, ReportingStore, first_step_flushed
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.handoffs import SEEN_MAX, Handoffs
from worker.core.job_rows import read_wake
from worker.core.jobs import Job, JobHint, JobRow, Wake
from worker.core.ports import ProgressReport
from worker.core.runtime import Worker
from worker.core.shutdown import Shutdown


class SeenStore(ReportingStore):
    """Keeps the handed_seen of every parking claim."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[list[uuid.UUID] | None] = []
        self.unparked: list[uuid.UUID] | None = None

    async def claim_jobs(self, *args: Any, handed_seen: Sequence[uuid.UUID] | None = None, **kw: Any) -> list[JobRow]:
        self.seen.append(None if handed_seen is None else list(handed_seen))
        return await super().claim_jobs(*args, handed_seen=handed_seen, **kw)

    async def unpark(self, worker_id: str, handed_seen: Sequence[uuid.UUID] | None = None) -> None:
        self.unparked = None if handed_seen is None else list(handed_seen)
        await super().unpark(worker_id, handed_seen)


@asynccontextmanager
async def parked_worker(store: SeenStore, handler: Handler = echo, concurrency: int = 4) -> AsyncIterator[Worker]:
    cfg = config(kinds=("rename_layers",), concurrency=concurrency)
    worker = Worker(cfg, store, {"rename_layers": handler}, SystemClock(), wakeups=FakeWakeups(True))
    shutdown = Shutdown()
    task = asyncio.create_task(worker.run(shutdown))
    try:
        await until(lambda: worker.parked, "parked after the start-up claim")
        yield worker
    finally:
        shutdown.request()
        shutdown.request()
        async with asyncio.timeout(10):
            await task


def held_until(release: asyncio.Event) -> Handler:
    """A handler that runs until the test sets ``release``."""

    async def held(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await release.wait()
        return {}

    return held


async def hand_off(store: SeenStore, worker: Worker, *, parked: bool = False) -> Job:
    """What the database does for a parked worker: claim a new job for it, then send the row
    (``parked``: saying that the worker stays parked)."""
    store.enqueue("rename_layers")
    [row] = await store.claim_jobs(worker.config.worker_id, None, 1, 60)
    assert isinstance(row, Job)
    worker._on_wake(Wake((JobHint(kind="rename_layers", run_at=row.run_at),), (row,), parked))
    return row


async def test_a_handed_job_runs_without_a_claim_and_the_worker_parks_again_listing_it() -> None:
    store = SeenStore()
    async with parked_worker(store, first_step_flushed) as worker:
        claims = len(store.seen)
        job = await hand_off(store, worker)
        await until(lambda: status(store, job) == "succeeded" and not worker.runs, "the handed job done")
        await until(lambda: len(store.seen) >= claims + 2, "the worker's claim after the message")
        await asyncio.sleep(0.1)  # room for more claims, if the worker made any
        # The test's own claim for the hand-off, then the worker's one claim after the message,
        # which says it saw the job (so the database does not answer with it) and parks it again.
        assert store.seen[claims:] == [None, [job.id]]
        assert worker.parked
        assert store.batches == [[ProgressReport(job.id, 5, "designing", started=True)]]  # claimed quietly


async def test_a_worker_the_database_keeps_parked_owes_no_claim_until_a_hand_off_asks() -> None:
    store = SeenStore()
    async with parked_worker(store) as worker:
        claims = len(store.seen)
        first = await hand_off(store, worker, parked=True)
        second = await hand_off(store, worker, parked=True)
        await until(lambda: {status(store, first), status(store, second)} == {"succeeded"}, "both handed jobs done")
        await until(lambda: not worker.runs, "both recorded")
        await asyncio.sleep(0.1)  # room for a claim, if the worker made one
        assert store.seen[claims:] == [None, None]  # the test's own claims only
        assert worker.parked
        last = await hand_off(store, worker)  # the last free slot, say: a claim is owed
        await until(lambda: len(store.seen) >= claims + 4, "the worker's claim after the message")
        assert store.seen[claims + 3 :] == [[first.id, second.id, last.id]]
        assert worker.parked


async def hand_off_with_a_later_hint(store: SeenStore, worker: Worker, *, parked: bool) -> datetime:
    """A hand-off whose message also names a job due in an hour; waits until the handed job is
    done and returns that later time."""
    store.enqueue("rename_layers")
    [row] = await store.claim_jobs(worker.config.worker_id, None, 1, 60)
    assert isinstance(row, Job)
    later = store.clock.now() + timedelta(hours=1)
    hints = (JobHint(kind="rename_layers", run_at=row.run_at), JobHint(kind="rename_layers", run_at=later))
    worker._on_wake(Wake(hints, (row,), parked))
    await until(lambda: status(store, row) == "succeeded" and not worker.runs, "the handed job done")
    return later


async def test_a_later_hint_with_a_hand_off_that_keeps_it_parked_arms_the_timer_only() -> None:
    store = SeenStore()
    async with parked_worker(store) as worker:
        claims = len(store.seen)
        later = await hand_off_with_a_later_hint(store, worker, parked=True)
        await asyncio.sleep(0.1)  # room for a claim, if the worker made one
        assert len(store.seen) == claims + 1  # the test's own claim only: still parked
        assert worker.parked and worker.next_due == later


async def test_a_later_hint_with_a_hand_off_that_asks_for_a_claim_stays_armed_after_that_claim() -> None:
    """The re-park claim is due in 2 ms and the later hint's time after it: both must wake the
    loop (it once kept only the earliest time, so a job deferred meanwhile waited for a sweep)."""
    store = SeenStore()
    async with parked_worker(store) as worker:
        claims = len(store.seen)
        later = await hand_off_with_a_later_hint(store, worker, parked=False)
        await until(lambda: len(store.seen) >= claims + 2, "the re-park claim")
        assert worker.parked and worker.next_due == later


async def test_a_worker_a_hand_off_filled_claims_when_its_slot_frees() -> None:
    """It owes the database a claim (the hand-off marked it woken) but has no slot to claim
    with: it must claim when the job ends, or new jobs would skip it after two seconds and wait
    for a sweep."""
    store = SeenStore()
    release = asyncio.Event()
    async with parked_worker(store, held_until(release), concurrency=1) as worker:
        claims = len(store.seen)
        job = await hand_off(store, worker)
        # The moment it would claim comes, and with no free slot it only stops counting as parked.
        await until(lambda: not worker.parked, "the claim it owes, put off")
        assert len(store.seen) == claims + 1  # the test's own claim only
        release.set()
        await until(lambda: status(store, job) == "succeeded", "the handed job done")
        await until(lambda: store.seen[claims + 1 :] == [[job.id]], "its claim once the slot freed")
        assert worker.parked


async def test_a_later_hint_only_arms_the_timer() -> None:
    store = SeenStore()
    async with parked_worker(store) as worker:
        claims = len(store.seen)
        later = store.clock.now() + timedelta(hours=1)
        worker._on_wake(Wake((JobHint(kind="rename_layers", run_at=later),)))
        await asyncio.sleep(0.1)
        assert len(store.seen) == claims and worker.next_due == later


async def test_a_stopping_worker_runs_no_hand_off_and_its_unpark_lists_what_it_took() -> None:
    store = SeenStore()
    release = asyncio.Event()
    async with parked_worker(store, held_until(release), concurrency=1) as worker:
        taken = await hand_off(store, worker)  # fills its one slot: no claim follows it
        await until(lambda: taken.id in worker.runs, "the handed job running")
        worker.shutdown.request()
        late = await hand_off(store, worker)  # its message comes after the signal
        await until(lambda: store.unparked is not None, "unparked")
        assert late.id not in worker.runs
        release.set()
    assert store.unparked == [taken.id]  # the database gives back the rest (tests/sql/test_handoffs.py)
    assert (status(store, taken), status(store, late)) == ("succeeded", "running")  # late never started here


def job_row(job_id: uuid.UUID, lease_minutes: int = 1) -> Job:
    now = SystemClock().now()
    return Job(
        id=job_id,
        user_id=uuid.uuid4(),
        kind="rename_layers",
        status="running",
        run_at=now,
        lease_expires_at=now + timedelta(minutes=lease_minutes),
    )


def test_a_message_that_comes_while_the_claim_travels_drops_the_claims_copy() -> None:
    handoffs, x, y = Handoffs(), job_row(uuid.uuid4()), job_row(uuid.uuid4())
    assert handoffs.take_seen() == []  # the claim is sent
    assert handoffs.handed([x]) == [x]  # the message arrives and starts x
    assert handoffs.claimed([x, y]) == [y]  # the claim had it too (handed before it, not yet seen)
    assert handoffs.take_seen() == [x.id]  # the next claim says it was seen


def test_a_message_that_comes_after_the_claim_drops_the_messages_copy() -> None:
    handoffs, x = Handoffs(), job_row(uuid.uuid4())
    handoffs.take_seen()
    assert handoffs.claimed([x]) == [x]
    assert handoffs.handed([x]) == []  # the same claim of x (same lease expiry), already started
    again = job_row(x.id, lease_minutes=2)  # x claimed again later (released, handed anew)
    assert handoffs.handed([again]) == [again]


def test_seen_jobs_of_a_failed_claim_are_listed_by_the_next() -> None:
    handoffs, x, y = Handoffs(), job_row(uuid.uuid4()), job_row(uuid.uuid4())
    handoffs.handed([x])
    seen = handoffs.take_seen()
    handoffs.handed([y])
    handoffs.put_back(seen)  # that claim failed
    assert handoffs.take_seen() == [x.id, y.id]


def test_what_is_remembered_is_bounded() -> None:
    handoffs = Handoffs(remember=2)
    first, *rest = (job_row(uuid.uuid4()) for _ in range(3))
    handoffs.claimed([first, *rest])
    assert handoffs.handed([first]) == [first]  # forgotten: the oldest of three
    handoffs.handed([job_row(uuid.uuid4()) for _ in range(SEEN_MAX + 5)])
    assert len(handoffs.take_seen()) == SEEN_MAX


def test_a_hand_off_message_is_read_with_its_rows() -> None:
    row = job_row(uuid.uuid4())
    raw = {"kind": "rename_layers", "status": "queued", "run_at": row.run_at.isoformat()}
    good = row.model_dump(mode="json")

    def rows(*items: object) -> str:  # as the database sends them: one JSON text of an array
        return json.dumps(list(items))

    wake = read_wake({**raw, "jobs": rows(good)})
    assert wake is not None and wake.jobs == (row,) and [h.kind for h in wake.hints] == ["rename_layers"]
    unnamed = read_wake({**raw, "jobs": rows({"kind": "rename_layers"})})  # a row without an id
    assert unnamed is not None and unnamed.jobs == ()  # the claim after the wake-up returns it
    plain = read_wake(raw)
    assert plain is not None and plain.jobs == () and not plain.parked
    parked = read_wake({**raw, "jobs": rows(good), "parked": True})
    assert parked is not None and parked.parked
    # Rows that are not the JSON text of an array are read as none (logged); the claim returns them.
    for odd_rows in ([good], "not json", json.dumps(good), json.dumps(None), 7):
        unread = read_wake({**raw, "jobs": odd_rows, "parked": True})
        assert unread is not None and unread.jobs == () and not unread.parked, odd_rows
    # Staying parked needs every row: a dropped one is returned by the claim the worker then makes.
    for odd in (
        {"jobs": rows(good, {"kind": "rename_layers"}), "parked": True},
        {"jobs": rows(good), "parked": "yes"},
        {"parked": True},
    ):
        wake = read_wake({**raw, **odd})
        assert wake is not None and not wake.parked, odd
    assert read_wake({"kind": 5, "jobs": rows(good)}) is None
