"""CompletionBatcher: successes that finish during a call go out together in the next one."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from tests.unit.test_worker_progress import events, running
from worker.adapters.memory import MemoryStore
from worker.core.acks import MAX_IN_FLIGHT, PARALLEL_MIN, CompletionBatcher
from worker.core.errors import InvalidArgument, LeaseLost
from worker.core.ports import ProgressReport


async def held_jobs(store: MemoryStore, n: int) -> list[uuid.UUID]:
    for _ in range(n):  # one user each: the per-user cap must not bind
        store.enqueue("rename_layers", {"layers": []}, user_id=uuid.uuid4())
    return [job.id for job in await store.claim_jobs("w1", None, n, 60)]


async def settle() -> None:
    """Let every ready task run (a few loop turns; no wall-clock time involved)."""
    for _ in range(5):
        await asyncio.sleep(0)


class SlowStore(MemoryStore):
    """Records each complete_jobs batch and holds it until released, like a slow round trip."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[uuid.UUID]] = []
        self.release = asyncio.Event()

    async def complete_jobs(
        self, worker_id: str, completions: Any, last_progress: Any = None, usage: Any = None
    ) -> dict[uuid.UUID, str | None]:
        self.batches.append([job_id for job_id, _ in completions])
        await self.release.wait()
        return await super().complete_jobs(worker_id, completions)


async def test_a_lone_success_is_sent_at_once_and_later_ones_share_the_next_call() -> None:
    store = SlowStore()
    a, b, c, d = await held_jobs(store, 4)
    acks = CompletionBatcher(store, "w1")
    first = asyncio.create_task(acks.complete(a, {"n": 1}))
    await settle()
    assert store.batches == [[a]]  # not waiting for company
    rest = [asyncio.create_task(acks.complete(j, {})) for j in (b, c, d)]
    await settle()
    assert store.batches == [[a]]  # the others wait for the call in flight
    store.release.set()
    await asyncio.gather(first, *rest)
    assert store.batches == [[a], [b, c, d]]
    assert all(store.rows[j].status == "succeeded" for j in (a, b, c, d))


async def test_a_job_no_longer_held_raises_lease_lost_for_that_job_only() -> None:
    store = MemoryStore()
    a, b = await held_jobs(store, 2)
    await store.complete_job(b, "w1", {"first": True})
    acks = CompletionBatcher(store, "w1")
    results = await asyncio.gather(acks.complete(a, {}), acks.complete(b, {}), return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], LeaseLost)


async def test_an_invalid_batch_is_retried_one_by_one_so_only_the_bad_job_fails() -> None:
    class Picky(MemoryStore):
        async def complete_jobs(
            self, worker_id: str, completions: Any, last_progress: Any = None, usage: Any = None
        ) -> dict[uuid.UUID, str | None]:
            if any("bad" in result for _, result in completions):
                raise InvalidArgument("completions[1].result: 2000000 bytes exceeds 1 MiB")
            return await super().complete_jobs(worker_id, completions)

    store = Picky()
    good, bad = await held_jobs(store, 2)
    acks = CompletionBatcher(store, "w1")
    results = await asyncio.gather(acks.complete(good, {}), acks.complete(bad, {"bad": 1}), return_exceptions=True)
    assert results[0] is None and store.rows[good].status == "succeeded"
    assert isinstance(results[1], InvalidArgument) and store.rows[bad].status == "running"


@pytest.mark.parametrize("max_batch", [1, 2])
async def test_batches_never_exceed_max_batch(max_batch: int) -> None:
    store = SlowStore()
    store.release.set()
    jobs = await held_jobs(store, 5)
    acks = CompletionBatcher(store, "w1", max_batch=max_batch)
    await asyncio.gather(*(acks.complete(j, {}) for j in jobs))
    assert max(len(b) for b in store.batches) <= max_batch
    assert sorted(j for b in store.batches for j in b) == sorted(jobs)


class HeldStore(MemoryStore):
    """Holds every complete_jobs call until released, counting the calls in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[uuid.UUID]] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()

    async def complete_jobs(
        self, worker_id: str, completions: Any, last_progress: Any = None, usage: Any = None
    ) -> dict[uuid.UUID, str | None]:
        self.batches.append([job_id for job_id, _ in completions])
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self.release.wait()
            return await super().complete_jobs(worker_id, completions)
        finally:
            self.in_flight -= 1


async def test_a_big_batch_goes_out_as_two_halves_in_flight_together() -> None:
    store = HeldStore()
    jobs = await held_jobs(store, 2 * PARALLEL_MIN + 4)
    acks = CompletionBatcher(store, "w1")
    waiters = [asyncio.create_task(acks.complete(j, {})) for j in jobs]
    await settle()
    assert store.in_flight == 2  # both out before either answered
    assert sorted(len(b) for b in store.batches) == [PARALLEL_MIN + 2, PARALLEL_MIN + 2]
    store.release.set()
    await asyncio.gather(*waiters)
    assert sorted(j for b in store.batches for j in b) == sorted(jobs)  # each exactly once
    assert all(store.rows[j].status == "succeeded" for j in jobs)


async def test_never_more_than_max_in_flight_calls_and_later_successes_share_the_next() -> None:
    assert MAX_IN_FLIGHT == 3  # the waves below are sized for three
    store = HeldStore()
    jobs = await held_jobs(store, 6 * PARALLEL_MIN)
    acks = CompletionBatcher(store, "w1")
    first = [asyncio.create_task(acks.complete(j, {})) for j in jobs[: 2 * PARALLEL_MIN]]
    await settle()
    assert store.in_flight == 2  # two half batches
    later = [asyncio.create_task(acks.complete(j, {})) for j in jobs[2 * PARALLEL_MIN :]]
    await settle()
    # 32 more: enough for a fourth sender without the cap (one per PARALLEL_MIN waiting)
    assert store.in_flight == MAX_IN_FLIGHT and len(store.batches) == MAX_IN_FLIGHT
    store.release.set()
    await asyncio.gather(*first, *later)
    assert store.most_in_flight == MAX_IN_FLIGHT
    assert sorted(j for b in store.batches for j in b) == sorted(jobs)
    assert len(store.batches) <= MAX_IN_FLIGHT + 1  # the later ones went in at most two calls


async def test_a_few_successes_beside_a_call_in_flight_wait_for_it() -> None:
    store = HeldStore()
    jobs = await held_jobs(store, PARALLEL_MIN)
    acks = CompletionBatcher(store, "w1")
    first = asyncio.create_task(acks.complete(jobs[0], {}))
    await settle()
    rest = [asyncio.create_task(acks.complete(j, {})) for j in jobs[1:]]  # 7: fewer than PARALLEL_MIN
    await settle()
    assert store.in_flight == 1 and len(store.batches) == 1
    store.release.set()
    await asyncio.gather(first, *rest)
    assert store.batches == [[jobs[0]], jobs[1:]]


async def test_without_a_progress_batcher_a_refused_outcome_still_records_its_reports_first() -> None:
    store = MemoryStore()
    (job,) = await running(store, 1, kind="rename_layers")
    store.calls.clear()
    acks = CompletionBatcher(store, "w1")  # no Riders: the reports go in one call of their own
    own = [ProgressReport(job.id, 50, "batch 1 of 2")]
    with pytest.raises(InvalidArgument, match="1 MiB"):
        await acks.complete(job.id, {"text": "x" * (1024 * 1024 + 1)}, None, (), own)
    assert store.calls == ["report_and_complete", "report_progress_batch", "complete_jobs"]
    assert events(store, job) == [("progress", {"percent": 50, "message": "batch 1 of 2"})]
    assert store.get(job.id).status == "running"  # the outcome changed nothing


async def test_without_a_progress_batcher_a_bad_report_is_dropped_and_the_job_still_succeeds() -> None:
    store = MemoryStore()
    (job,) = await running(store, 1, kind="rename_layers")
    store.calls.clear()
    acks = CompletionBatcher(store, "w1")
    own = [ProgressReport(job.id, 50, "m" * 1001)]  # over the 1,000-character message limit
    await acks.complete(job.id, {"renamed": 1}, None, (), own)
    assert store.calls == ["report_and_complete", "report_progress_batch", "complete_jobs"]
    assert events(store, job) == []  # neither the bad report nor a half of the refused call
    assert store.get(job.id).status == "succeeded"
