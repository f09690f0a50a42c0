"""Claiming along with acknowledging: CompletionBatcher with a Refill, and the worker using it."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.unit.test_worker_acks import held_jobs
from tests.unit.test_worker_core import config, running, until
from worker.adapters.memory import MemoryStore
from worker.core.acks import CompletionBatcher
from worker.core.context import JobContext
from worker.core.errors import InvalidArgument, StoreUnavailable
from worker.core.jobs import JobRow


class FixedRefill:
    """Hands out ``slots`` per batch and records what comes back."""

    def __init__(self, slots: int) -> None:
        self.kinds: tuple[str, ...] = ("rename_layers",)
        self.lease_seconds = 60
        self.slots = slots
        self.reserved = 0
        self.claims: list[tuple[list[uuid.UUID], int]] = []
        self.releases: list[int] = []

    def reserve(self, acknowledging: int) -> int:
        self.reserved += self.slots
        return self.slots

    def claimed(self, jobs: list[JobRow], reserved: int, acknowledged: int) -> None:
        self.reserved -= reserved
        self.claims.append(([j.id for j in jobs], reserved))

    def released(self, reserved: int, acknowledged: int) -> None:
        self.reserved -= reserved
        self.releases.append(reserved)


async def test_a_batch_with_free_slots_claims_in_the_same_call() -> None:
    store = MemoryStore()
    [held] = await held_jobs(store, 1)
    queued = [store.enqueue("rename_layers", user_id=uuid.uuid4()).id for _ in range(3)]
    refill = FixedRefill(2)
    await CompletionBatcher(store, "w1", refill=refill).complete(held, {"n": 1})
    assert store.calls[-1:] == ["complete_and_claim"] and "complete_jobs" not in store.calls
    assert store.rows[held].status == "succeeded"
    [(claimed, reserved)] = refill.claims
    assert reserved == 2 and len(claimed) == 2 and set(claimed) <= set(queued)
    assert all(store.rows[j].status == "running" for j in claimed)
    assert refill.reserved == 0


async def test_no_free_slots_means_a_plain_acknowledgement() -> None:
    store = MemoryStore()
    [held] = await held_jobs(store, 1)
    store.enqueue("rename_layers", user_id=uuid.uuid4())
    refill = FixedRefill(0)
    await CompletionBatcher(store, "w1", refill=refill).complete(held, {})
    assert store.calls[-1] == "complete_jobs" and refill.claims == []


async def test_a_refused_claim_still_acknowledges_the_jobs() -> None:
    class RefusesClaims(MemoryStore):
        async def complete_and_claim(self, *args: Any, **kw: Any) -> Any:
            raise InvalidArgument('kinds: unknown job kind(s): "rename_layers"')

    store = RefusesClaims()
    [held] = await held_jobs(store, 1)
    refill = FixedRefill(3)
    await CompletionBatcher(store, "w1", refill=refill).complete(held, {})
    assert store.rows[held].status == "succeeded"  # not failed for the claim's sake
    assert refill.releases == [3] and refill.reserved == 0 and refill.claims == []


async def test_an_unreachable_store_releases_the_slots_and_reports_to_the_waiter() -> None:
    store = MemoryStore()
    [held] = await held_jobs(store, 1)
    store.fail_next.append(StoreUnavailable("connection refused"))
    refill = FixedRefill(3)
    result = await asyncio.gather(
        CompletionBatcher(store, "w1", refill=refill).complete(held, {}), return_exceptions=True
    )
    assert isinstance(result[0], StoreUnavailable)
    assert refill.releases == [3] and refill.reserved == 0
    assert store.rows[held].status == "running"


async def noop(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {}


async def test_a_draining_worker_claims_with_its_acknowledgements_and_never_exceeds_its_concurrency() -> None:
    store = MemoryStore()
    jobs = [store.enqueue("generate_design", user_id=uuid.uuid4()) for _ in range(60)]
    most = 0
    gate = asyncio.Event()

    async def counted(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        nonlocal most
        most = max(most, sum(1 for r in store.rows.values() if r.status == "running"))
        await gate.wait()
        return {}

    async with running(store, {"generate_design": counted}, config(concurrency=4)) as (worker, _):
        await until(lambda: len(worker.runs) == 4, "four running")
        gate.set()
        await until(lambda: all(store.get(j.id).status == "succeeded" for j in jobs), "all succeeded")
        assert worker._reserved == 0
    assert most <= 4
    assert store.calls.count("complete_and_claim") > 0
    # Each ack-and-claim replaced a claim_jobs call: fewer claims than batches of acknowledgements.
    acks = store.calls.count("complete_and_claim") + store.calls.count("complete_jobs")
    assert store.calls.count("claim_jobs") < acks


async def test_an_idle_queue_is_acknowledged_without_claiming() -> None:
    store = MemoryStore()
    async with running(store, {"generate_design": noop}) as (worker, _):
        job = store.enqueue("generate_design")
        worker.wake.push()
        await until(lambda: store.get(job.id).status == "succeeded", "succeeded")
    assert "complete_and_claim" not in store.calls  # the claim came back short: no backlog


class Overlapping(MemoryStore):
    """Every acknowledgement takes a few loop turns, so two calls in flight overlap."""

    async def complete_and_claim(self, *args: Any, **kw: Any) -> Any:
        for _ in range(3):
            await asyncio.sleep(0)
        return await super().complete_and_claim(*args, **kw)

    async def complete_jobs(self, *args: Any, **kw: Any) -> Any:
        for _ in range(3):
            await asyncio.sleep(0)
        return await super().complete_jobs(*args, **kw)


async def test_two_acknowledgements_in_flight_each_claim_the_slots_they_free() -> None:
    # A call in flight acknowledges jobs that are still running in the worker's view: counting
    # them as busy in the other call's reservation left it claiming nothing (then a claim_jobs).
    store = Overlapping()
    jobs = [store.enqueue("generate_design", user_id=uuid.uuid4()) for _ in range(200)]
    most = 0

    async def counted(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        nonlocal most
        most = max(most, sum(1 for r in store.rows.values() if r.status == "running"))
        return {}

    async with running(store, {"generate_design": counted}, config(concurrency=16)) as (worker, _):
        await until(lambda: all(store.get(j.id).status == "succeeded" for j in jobs), "all succeeded")
        assert worker._reserved == 0 and worker._leaving == 0
    assert most <= 16
    refills = store.calls.count("complete_and_claim")
    assert refills >= 200 // 16
    assert store.calls.count("claim_jobs") + store.calls.count("complete_jobs") <= 4, store.calls
