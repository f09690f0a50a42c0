"""The usage ledger from the worker's side: every answered model call is recorded with its
latency and attempt, after a lost lease too; a store blip or an unpriced model is a warning;
records of many jobs share one record_usage_batch call, and a job's outcome waits for its own."""

from __future__ import annotations

import asyncio
import gc
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.test_worker_core import config, running, until
from tests.unit.test_worker_limits import router
from worker.adapters.memory import MemoryStore
from worker.adapters.memory_limits import MemoryProviderControl
from worker.core.context import JobContext
from worker.core.errors import InvalidArgument, LeaseLost, StoreUnavailable
from worker.core.jobs import Job
from worker.core.llm import LimitedModel, ModelChain
from worker.core.ports import (
    GeneratedImage,
    ModelCall,
    ModelUsage,
    TextRequest,
    UsageRecord,
    UsageRecorded,
    UsageSink,
)
from worker.core.routing import ModelRouter
from worker.core.usage import UsageBatcher
from worker.handlers import HANDLERS
from worker.handlers.base import AnsweredBy

USAGE = ModelUsage(input_tokens=1000, output_tokens=500, cached_tokens=200)


class TickClock:
    """Monotonic time advances 0.25 s per reading; a call spans two readings."""

    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        self.t += 0.25
        return self.t

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(0)


class Provider:
    name = "anthropic"

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str:
        if on_usage:
            on_usage(USAGE)
        return "ok"

    async def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]:
        for piece in ("a", "b"):
            yield piece
        if on_usage:
            on_usage(ModelUsage(input_tokens=10, output_tokens=2))

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        if on_usage:
            on_usage(ModelUsage(input_tokens=10, output_tokens=1290, images=1))
        return GeneratedImage(b"png", "image/png")

    async def close(self) -> None:
        return None


def usage_router() -> ModelRouter:
    """The runtime's models: the Provider above as every kind's environment model."""
    return router(MemoryProviderControl(), {"anthropic": Provider()})


async def context(store: MemoryStore, model: str = "claude-haiku-4-5") -> JobContext:
    store.enqueue("generate_design", {"prompt": "x"})
    [job] = await store.claim_jobs("w", None, 1, 60)
    assert isinstance(job, Job)
    clock = TickClock()
    limited = LimitedModel(Provider(), model, asyncio.Semaphore(1), clock)
    return JobContext(job, "w", store, clock, ModelChain.of([limited], clock))


async def test_each_answered_call_is_recorded_with_latency_and_attempt() -> None:
    store = MemoryStore()
    ctx = await context(store)
    assert await ctx.model.complete(TextRequest.ask("s", "p")) == "ok"
    assert [d async for d in ctx.model.stream(TextRequest.ask("s", "p"))] == ["a", "b"]
    await ctx.model.generate_image("a lake", None)
    await ctx.flush()
    entries = store.ledger.entries
    assert [(e.job_id, e.attempt, e.call.provider, e.call.model) for e in entries] == [
        (ctx.job.id, 1, "anthropic", "claude-haiku-4-5")
    ] * 3
    assert [e.call.usage for e in entries] == [
        USAGE,
        ModelUsage(input_tokens=10, output_tokens=2),
        ModelUsage(input_tokens=10, output_tokens=1290, images=1),
    ]
    assert entries[0].call.latency_ms == 250  # one clock tick between the call and its usage


async def test_usage_is_recorded_after_the_lease_is_lost() -> None:
    store = MemoryStore()
    ctx = await context(store)
    store.expire_lease(ctx.job.id)
    await ctx.progress(10, "working")  # this report finds the lease lost
    await ctx.model.complete(TextRequest.ask("s", "p"))  # the call was made, and paid for
    await ctx.flush()
    with pytest.raises(LeaseLost):
        await ctx.progress(20)
    assert len(store.ledger.entries) == 1


async def test_a_store_blip_or_an_unpriced_model_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    ctx = await context(store, model="claude-unknown-9")
    await ctx.model.complete(TextRequest.ask("s", "p"))
    await ctx.flush()
    assert store.ledger.entries[0].cost_usd is None
    assert "model anthropic/claude-unknown-9 has no price in public.model_prices" in caplog.text
    store.fail_next.append(StoreUnavailable("connection refused"))
    with caplog.at_level(logging.WARNING):
        await ctx.model.complete(TextRequest.ask("s", "p"))
        await ctx.flush()
    assert "not recorded: connection refused" in caplog.text
    assert len(store.ledger.entries) == 1


async def test_what_the_worker_adds_to_a_result_is_declared_by_every_result_model() -> None:
    # The result models are the contract with the plugin (its types are generated from them): the
    # "model" field the runtime adds after the handler must be one they declare, in their shape.
    ctx = await context(MemoryStore())
    await ctx.model.complete(TextRequest.ask("s", "p"))
    answered = ctx.answered_by
    assert answered == {"provider": "anthropic", "model": "claude-haiku-4-5", "fallback": False, "cooldown_wait_s": 0.0}
    assert AnsweredBy.model_validate(answered).fallback is False
    for kind, handler in HANDLERS.items():
        assert handler.result.model_fields["model"].annotation == AnsweredBy | None, kind


class GatedStore(MemoryStore):
    """record_usage_batch waits for ``release`` on its first call, to hold a call in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.release = asyncio.Event()
        self.batches: list[int] = []

    async def record_usage_batch(self, worker_id: str, records: Sequence[UsageRecord]) -> list[UsageRecorded]:
        self.batches.append(len(records))
        if len(self.batches) == 1:
            await self.release.wait()
        return await super().record_usage_batch(worker_id, records)


async def test_records_of_many_jobs_queued_during_a_call_go_out_together_in_order() -> None:
    store = GatedStore()
    contexts = [await context(store) for _ in range(4)]
    batcher = UsageBatcher(store, "w")
    for ctx in contexts:
        ctx.usage = batcher
    await contexts[0].model.complete(TextRequest.ask("s", "p"))
    first = asyncio.create_task(contexts[0].flush())
    await until(lambda: store.batches == [1], "a lone record goes at once (and is held in flight here)")
    for ctx in contexts[1:]:
        await ctx.model.complete(TextRequest.ask("s", "p"))
    rest = [asyncio.create_task(ctx.flush()) for ctx in contexts[1:]]
    await asyncio.sleep(0)
    store.release.set()
    await asyncio.gather(first, *rest)
    assert store.batches == [1, 3]  # the three that answered while the first call was in flight
    assert [e.job_id for e in store.ledger.entries] == [ctx.job.id for ctx in contexts]


async def test_a_bad_record_is_sent_alone_and_a_gone_job_is_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryStore()
    ctx = await context(store)
    good = ModelCall("anthropic", "claude-haiku-4-5", USAGE, 5)
    bad = ModelCall("Anthropic", "claude-haiku-4-5", USAGE, 5)
    batcher = UsageBatcher(store, "w")
    with caplog.at_level(logging.WARNING):
        answers = await asyncio.gather(
            batcher.add(UsageRecord(ctx.job.id, 1, good)),
            batcher.add(UsageRecord(ctx.job.id, 1, bad)),
            batcher.add(UsageRecord(uuid.uuid4(), 1, good)),
        )
    assert [a.recorded if a else None for a in answers] == [True, None, False]
    assert answers[2] is not None and answers[2].reason == "job not found"
    assert "provider: must be" in caplog.text
    assert len(store.ledger.entries) == 1  # the good one, sent again alone after the batch was refused


async def test_a_success_carries_its_usage_and_any_other_outcome_waits_for_it() -> None:
    store = GatedStore()
    ctx = await context(store)
    ctx.usage = UsageBatcher(store, "w")
    await ctx.model.complete(TextRequest.ask("s", "p"))
    await ctx.model.complete(TextRequest.ask("s", "p"))
    await ctx.settle(carry=True)  # returns at once: nothing is sent, the records ride with the success
    assert store.batches == []
    carried = ctx.carried_usage()
    assert [(r.job_id, r.attempt, r.call.usage) for r in carried] == [(ctx.job.id, 1, USAGE)] * 2
    assert ctx.carried_usage() == ()  # taken once

    other = await context(store)
    other.usage = ctx.usage
    await other.model.complete(TextRequest.ask("s", "p"))
    settling = asyncio.create_task(other.settle(carry=False))  # a failure, a deferral, a lost lease
    await until(lambda: store.batches == [1], "the record was sent")
    assert not settling.done() and store.ledger.entries == []  # its record is still in flight
    store.release.set()
    await asyncio.wait_for(settling, 5)
    assert [e.job_id for e in store.ledger.entries] == [other.job.id] and other.carried_usage() == ()


async def test_the_worker_records_a_successs_usage_with_its_outcome_in_one_call() -> None:
    store = MemoryStore()

    async def design(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await ctx.model.complete(TextRequest.ask("s", "p"))
        await ctx.model.complete(TextRequest.ask("s", "p"))
        return {"ok": True}

    job = store.enqueue("generate_design")  # found by the startup sweep
    async with running(store, {"generate_design": design}, models=usage_router()):
        await until(lambda: store.get(job.id).status == "succeeded", "succeeded")
    assert "record_usage_batch" not in store.calls  # the two calls went with complete_jobs
    assert [(e.job_id, e.call.model) for e in store.ledger.entries] == [(job.id, "env-model")] * 2


async def test_usage_the_outcome_cannot_carry_goes_apart_and_the_job_still_succeeds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Refusing(MemoryStore):  # complete_jobs and complete_and_claim both complete through _complete
        def _complete(
            self, worker_id: str, completions: Any, last_progress: Any, usage: Any = None, checked: Any = None
        ) -> dict[uuid.UUID, str | None]:
            if usage:
                raise InvalidArgument("completions[0].usage[0].model: must be a model name of 1 to 200 characters")
            return super()._complete(worker_id, completions, last_progress)

    store = Refusing()

    async def design(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await ctx.model.complete(TextRequest.ask("s", "p"))
        return {"ok": True}

    with caplog.at_level(logging.WARNING):
        job = store.enqueue("generate_design")
        async with running(store, {"generate_design": design}, config(concurrency=1), usage_router()):
            await until(lambda: store.get(job.id).status == "succeeded", "succeeded")
    assert "usage refused with the outcome, sent apart" in caplog.text
    assert store.calls.count("record_usage_batch") == 1 and len(store.ledger.entries) == 1


async def test_a_context_whose_model_answered_is_freed_without_the_cycle_collector() -> None:
    """Nothing a context keeps points back at it: dropped, it is freed at once, not left for a full
    garbage collection (a pause of the whole worker that grows with the jobs in flight)."""
    ctx = await context(MemoryStore())
    await ctx.model.complete(TextRequest.ask("s", "p"))
    assert len(ctx.carried_usage()) == 1
    gone = weakref.ref(ctx)
    gc.disable()
    try:
        del ctx
        assert gone() is None
    finally:
        gc.enable()
