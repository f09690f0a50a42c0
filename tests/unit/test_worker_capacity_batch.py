"""CapacityBatcher: the capacity asks of many model calls in few acquire_model_capacity_batch
calls, each answered alone and in order; a bad ask refuses only itself; an unreachable store
reaches every waiter."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from tests.unit.test_worker_retry import FakeClock
from worker.adapters.memory_limits import MemoryProviderControl
from worker.core.errors import InvalidArgument, StoreUnavailable
from worker.core.gate import CapacityBatcher
from worker.core.ports import Capacity, CapacityRequest


class Counting(MemoryProviderControl):
    """The in-memory control, remembering each batch call's asks; a call stays in flight until
    ``answer`` is set, then answers or fails with ``error``."""

    def __init__(self) -> None:
        super().__init__(FakeClock())
        self.batches: list[list[CapacityRequest]] = []
        self.error: Exception | None = None
        self.answer = asyncio.Event()
        self.answer.set()

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        self.batches.append(list(requests))
        await self.answer.wait()
        if self.error is not None:
            raise self.error
        return await super().acquire_model_capacity_batch(requests)

    async def in_flight(self, calls: int) -> None:
        for _ in range(100):  # bounded: the sender task needs a few loop turns to start
            if len(self.batches) >= calls:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{calls} call(s) expected, {len(self.batches)} made")


def ask(asks: CapacityBatcher, model: str, provider: str = "anthropic") -> asyncio.Future[Capacity]:
    return asyncio.ensure_future(asks.acquire(provider, model, 10))


async def test_asks_made_during_a_call_go_together_in_the_next_and_each_gets_its_own_answer() -> None:
    control = Counting()
    control.set_limits("anthropic", "m1", rpm=3)
    asks = CapacityBatcher(control)
    control.answer.clear()
    first = ask(asks, "m1")
    await control.in_flight(1)  # a lone ask goes at once, without waiting for company
    rest = [ask(asks, "m1") for _ in range(4)] + [ask(asks, "g", provider="gemini")]
    control.answer.set()
    answers = [await first, *await asyncio.gather(*rest)]
    assert [(a.granted, a.reason) for a in answers] == [(True, "granted")] * 3 + [(False, "requests")] * 2 + [
        (True, "unlimited")
    ]
    assert [len(b) for b in control.batches] == [1, 5]  # the rest went in one call
    assert control.batches[1][-1] == CapacityRequest("gemini", "g", 10)
    assert (await asks.acquire("gemini", "g", 0)).granted and [len(b) for b in control.batches] == [1, 5, 1]


async def test_a_bad_ask_refuses_only_itself() -> None:
    control = Counting()
    control.set_limits("anthropic", "m1", rpm=1)
    asks = CapacityBatcher(control)
    answers = await asyncio.gather(ask(asks, "m1"), ask(asks, ""), ask(asks, "m2"), return_exceptions=True)
    assert answers[0] == Capacity(True, 0.0, "granted") and answers[2] == Capacity(True, 0.0, "unlimited")
    assert isinstance(answers[1], InvalidArgument) and str(answers[1]).startswith("requests[0].model: ")
    # The refused batch took nothing, and each ask then went alone.
    assert [len(b) for b in control.batches] == [3, 1, 1, 1]
    assert not (await asks.acquire("anthropic", "m1", 0)).granted  # m1's one request went once


async def test_an_unreachable_store_reaches_every_waiter_and_the_next_ask_tries_again() -> None:
    control = Counting()
    control.error = StoreUnavailable("connection refused")
    asks = CapacityBatcher(control)
    answers = await asyncio.gather(*(ask(asks, "m1") for _ in range(3)), return_exceptions=True)
    assert len(answers) == 3 and all(isinstance(a, StoreUnavailable) for a in answers)
    control.error = None
    assert (await asks.acquire("anthropic", "m1", 0)).granted


async def test_a_cancelled_waiter_does_not_stop_the_others() -> None:
    control = Counting()
    asks = CapacityBatcher(control)
    control.answer.clear()
    first = ask(asks, "a")
    await control.in_flight(1)
    leaving, staying = ask(asks, "b"), ask(asks, "c")
    await asyncio.sleep(0)
    leaving.cancel()
    control.answer.set()
    assert (await first).granted and (await staying).granted
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert [len(b) for b in control.batches] == [1, 2]
