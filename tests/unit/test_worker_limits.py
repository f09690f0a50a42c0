"""The shared-capacity gate, fallback chains and the router, over the in-memory ProviderControl."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tests.unit.test_worker_core import running, until
from tests.unit.test_worker_retry import FakeClock
from worker.adapters.memory import MemoryStore
from worker.adapters.memory_limits import MemoryProviderControl
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.errors import (
    CapacityUnavailable,
    InvalidArgument,
    RateLimited,
    StoreError,
    StoreUnavailable,
    TransientFailure,
)
from worker.core.gate import GatedProvider
from worker.core.llm import LimitedModel, ModelAnswer, ModelChain
from worker.core.ports import (
    Capacity,
    CapacityRequest,
    Clock,
    GeneratedImage,
    ModelProvider,
    ModelRoute,
    TextRequest,
    UsageSink,
)
from worker.core.retry import RetryPolicy
from worker.core.routing import ModelRouter

ASK = TextRequest.ask("system", "hello")


class Scripted:
    """A ModelProvider answering from a script: each item is a text or an exception to raise;
    after the script, it answers ``"<name>:<model>"``."""

    def __init__(self, name: str, *script: str | Exception) -> None:
        self.name = name
        self.script = list(script)
        self.calls: list[str] = []

    def _next(self, model: str) -> str:
        self.calls.append(model)
        item = self.script.pop(0) if self.script else f"{self.name}:{model}"
        if isinstance(item, Exception):
            raise item
        return item

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str:
        return self._next(model)

    async def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]:
        text = self._next(model)
        for word in text.split(" "):
            yield word
            failure = self.script[0] if self.script and word == "then" else None
            if isinstance(failure, Exception):
                self.script.pop(0)
                raise failure

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        return GeneratedImage(self._next(model).encode(), "image/png")

    async def close(self) -> None:
        pass


def overloaded(retry_after: float = 30) -> RateLimited:
    return RateLimited("anthropic 529: overloaded", retry_after=retry_after, status=529)


def link(provider: ModelProvider, model: str, clock: Clock, retries: int = 1) -> LimitedModel:
    return LimitedModel(
        provider, model, asyncio.Semaphore(4), clock, retries=retries, policy=RetryPolicy(base=0.01, cap=0.01)
    )


def chain(
    clock: Clock, *links: LimitedModel, max_wait: float = 0.0, jitter: float = 0.0
) -> tuple[ModelChain, list[ModelAnswer]]:
    calls: list[ModelAnswer] = []
    return ModelChain.of(links, clock, max_wait, rand=lambda: jitter).for_job(calls.append), calls


# -- the gate ---------------------------------------------------------------------------------
def two_replicas() -> tuple[FakeClock, tuple[Scripted, GatedProvider], tuple[Scripted, GatedProvider]]:
    """Two replicas' gates on one control; the first one's first call meets a 429 (retry in 20 s)."""
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    first = Scripted("anthropic", RateLimited("429", retry_after=20, status=429))
    second = Scripted("anthropic")
    return (
        clock,
        (first, GatedProvider(first, control, clock)),
        (second, GatedProvider(second, control, clock)),
    )


async def test_a_429_is_shared_so_the_other_replica_does_not_send() -> None:
    clock, (_, replica_a), (second, replica_b) = two_replicas()
    with pytest.raises(RateLimited):
        await replica_a.complete("m1", ASK)
    with pytest.raises(CapacityUnavailable) as refused:
        await replica_b.complete("m1", ASK)
    assert refused.value.reason == "cooldown" and 0 < refused.value.retry_after <= 20
    assert second.calls == []  # nothing was sent while the model cooled down
    assert await replica_b.complete("m2", ASK) == "anthropic:m2"  # only that model cools down
    clock.mono += 20
    assert await replica_b.complete("m1", ASK) == "anthropic:m1"


async def test_a_short_wait_for_capacity_is_waited_out_a_long_one_defers() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    control.set_limits("anthropic", "m1", rpm=60)  # one request a second
    gated = GatedProvider(Scripted("anthropic"), control, clock, max_wait=10, rand=lambda: 0.0)
    for _ in range(61):
        await gated.complete("m1", ASK)
    assert 0 < sum(clock.slept) <= 1.01  # the 61st waited for about a second of refill
    # With the largest spread, the next call waits its second of refill and half as long again.
    gated.rand = lambda: 1.0
    clock.slept.clear()
    await gated.complete("m1", ASK)
    assert 1.45 <= sum(clock.slept) <= 1.51  # ~1 s of refill, then half of it (the old wait: ~1.0)
    control.set_limits("anthropic", "m1", rpm=1)
    with pytest.raises(CapacityUnavailable) as refused:
        await gated.complete("m1", ASK)
    assert refused.value.reason == "requests" and refused.value.retry_after > 10


async def test_the_gate_counts_tokens_against_the_token_budget() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    control.set_limits("anthropic", "m1", rpm=None, tpm=100)
    gated = GatedProvider(Scripted("anthropic"), control, clock, max_wait=0)
    big = TextRequest.ask("s", "x" * 300)  # about 75 tokens
    await gated.complete("m1", big)
    with pytest.raises(CapacityUnavailable) as refused:
        await gated.complete("m1", big)
    assert refused.value.reason == "tokens"


class Blipping(MemoryProviderControl):
    """Fails the next ``blips`` capacity asks as an unreachable queue, then answers."""

    def __init__(self, clock: Clock, blips: int) -> None:
        super().__init__(clock)
        self.blips = blips

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        if self.blips:
            self.blips -= 1
            raise StoreUnavailable("terminating connection due to administrator command")
        return await super().acquire_model_capacity_batch(requests)


async def test_a_capacity_ask_rides_out_a_queue_blip_and_fails_when_the_queue_stays_away() -> None:
    clock = FakeClock()
    gated = GatedProvider(Scripted("anthropic"), Blipping(clock, blips=2), clock)
    await gated.complete("m1", ASK)  # two failed asks, then granted: the job goes on
    assert clock.slept == [0.2, 0.4]
    gated = GatedProvider(Scripted("anthropic"), Blipping(clock, blips=3), clock)
    with pytest.raises(StoreUnavailable):
        await gated.complete("m1", ASK)


def asks(control: MemoryProviderControl, model: str = "m1") -> int:
    return control.calls.count(("acquire", "anthropic", model))


async def test_a_model_without_limits_is_granted_locally_for_a_moment_after_sql_said_unlimited() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    gated = GatedProvider(Scripted("anthropic"), control, clock)
    for _ in range(3):
        await gated.complete("m1", ASK)
    assert asks(control) == 1  # one round trip; the next two were granted here
    clock.mono += gated.unlimited_recheck
    await gated.complete("m1", ASK)
    assert asks(control) == 2  # the answer is trusted for unlimited_recheck seconds, no longer
    control.set_limits("anthropic", "m2", rpm=100)
    for _ in range(3):
        await gated.complete("m2", ASK)
    assert asks(control, "m2") == 3  # a model with limits is counted in SQL on every call


async def test_another_replicas_cooldown_reaches_a_local_grant_within_the_recheck_time() -> None:
    clock, (first, replica_a), (second, replica_b) = two_replicas()
    await replica_b.complete("m1", ASK)  # "unlimited": granted locally from now on, for a moment
    with pytest.raises(RateLimited):
        await replica_a.complete("m1", ASK)  # a's own call met the 429 and reported it
    with pytest.raises(CapacityUnavailable):
        await replica_a.complete("m1", ASK)  # a's own report applies to a at once
    assert first.calls == ["m1"]
    clock.mono += replica_b.unlimited_recheck
    with pytest.raises(CapacityUnavailable) as refused:
        await replica_b.complete("m1", ASK)
    assert refused.value.reason == "cooldown" and second.calls == ["m1"]


async def test_a_cooldown_answer_is_kept_until_its_end_and_refused_without_asking() -> None:
    clock, (_first, replica_a), (second, replica_b) = two_replicas()
    with pytest.raises(RateLimited):
        await replica_a.complete("m1", ASK)  # a's 429: the shared cooldown, 20 s
    with pytest.raises(CapacityUnavailable) as refused:
        await replica_b.complete("m1", ASK)  # b asks and hears "cooldown"
    control = replica_b.control
    assert isinstance(control, MemoryProviderControl)
    before = asks(control)
    clock.mono += 5
    with pytest.raises(CapacityUnavailable) as again:
        await replica_b.complete("m1", ASK)
    assert asks(control) == before  # refused here: SQL would have said the same
    assert again.value.reason == "cooldown"
    assert again.value.retry_after == pytest.approx(refused.value.retry_after - 5)
    clock.mono += again.value.retry_after
    assert await replica_b.complete("m1", ASK) == "anthropic:m1"  # at its end: asked, granted
    assert asks(control) == before + 1 and second.calls == ["m1"]


class HeldAsks(MemoryProviderControl):
    """A control whose capacity answers, decided when asked (as the SQL statement runs), reach
    the caller only once ``release`` is set: a slow way back."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.release = asyncio.Event()
        self.waiting = 0

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        answers = await super().acquire_model_capacity_batch(requests)
        self.waiting += 1
        await self.release.wait()
        self.waiting -= 1
        return answers


async def test_under_steady_calls_the_grant_is_renewed_ahead_and_no_call_waits_for_an_ask() -> None:
    clock = FakeClock()
    control = HeldAsks(clock)
    provider = Scripted("anthropic")
    gated = GatedProvider(provider, control, clock)
    control.release.set()
    await gated.complete("m1", ASK)  # the first call asks in line: "unlimited"
    control.release.clear()
    for step in range(6):  # calls every 0.3 of the recheck time; each ask is held until released
        clock.mono += gated.unlimited_recheck * 0.3
        await asyncio.wait_for(gated.complete("m1", ASK), 1)  # returns while the ask ahead is held
        assert control.waiting <= 1, step  # one ask ahead per model at a time
        if control.waiting:
            control.release.set()
            await until(lambda: control.waiting == 0, "the ask ahead answered")
            control.release.clear()
    assert len(provider.calls) == 7 and asks(control) >= 3  # asked ahead, none in line


async def test_an_ask_ahead_that_meets_a_cooldown_ends_the_local_grant() -> None:
    clock, (_first, replica_a), (second, replica_b) = two_replicas()
    await replica_b.complete("m1", ASK)  # "unlimited", granted locally
    with pytest.raises(RateLimited):
        await replica_a.complete("m1", ASK)  # a's 429 opens the shared cooldown
    clock.mono += replica_b.unlimited_recheck * 0.6
    await replica_b.complete("m1", ASK)  # still inside b's grant: it goes, and b asks ahead
    await until(lambda: not replica_b._renewing, "the ask ahead answered")
    with pytest.raises(CapacityUnavailable) as refused:
        await replica_b.complete("m1", ASK)  # the ask ahead heard "cooldown": b asks in line now
    assert refused.value.reason == "cooldown" and second.calls == ["m1", "m1"]


async def test_an_older_unlimited_answer_does_not_undo_this_replicas_own_429() -> None:
    clock = FakeClock()
    control = HeldAsks(clock)
    control.release.set()
    provider = Scripted("anthropic", "ok", "ok", RateLimited("429", retry_after=20, status=429))
    gated = GatedProvider(provider, control, clock)
    await gated.complete("m1", ASK)
    control.release.clear()
    clock.mono += gated.unlimited_recheck * 0.6
    await gated.complete("m1", ASK)  # inside the grant: goes, and asks ahead
    await until(lambda: control.waiting == 1, "the ask ahead answered unlimited, on its way back")
    with pytest.raises(RateLimited):
        await gated.complete("m1", ASK)  # still inside the grant: meets a 429 and reports it
    control.release.set()  # the older "unlimited" arrives after the report
    await until(lambda: not gated._renewing, "the ask ahead answered")
    with pytest.raises(CapacityUnavailable):
        await gated.complete("m1", ASK)  # the report holds: this replica waits out its cooldown


async def test_the_memory_control_refuses_bad_arguments_like_the_sql() -> None:
    control = MemoryProviderControl(FakeClock())
    with pytest.raises(InvalidArgument, match=r"^provider: "):
        await control.acquire_model_capacity("Bad Name", "m1", 0)
    with pytest.raises(InvalidArgument, match=r"^status: "):
        await control.report_model_rate_limit("anthropic", "m1", 500, 1)
    assert control.buckets == {}


# -- fallback chains --------------------------------------------------------------------------
async def test_an_overloaded_model_falls_back_and_then_is_skipped_while_cooling_down() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    claude = Scripted("anthropic", overloaded())
    gemini = Scripted("gemini")
    model, calls = chain(
        clock,
        link(GatedProvider(claude, control, clock), "claude-haiku-4-5", clock),
        link(GatedProvider(gemini, control, clock), "gemini-2.5-flash", clock),
    )
    assert await model.complete(ASK) == "gemini:gemini-2.5-flash"
    assert await model.complete(ASK) == "gemini:gemini-2.5-flash"
    assert claude.calls == ["claude-haiku-4-5"]  # the second job did not try the cooling model
    assert [(c.route, c.position) for c in calls] == [(ModelRoute("gemini", "gemini-2.5-flash"), 1)] * 2


async def test_5xx_falls_back_only_after_the_quick_retries() -> None:
    clock = FakeClock()
    flaky = Scripted("anthropic", TransientFailure("500"), TransientFailure("500"))
    spare = Scripted("anthropic")
    model, calls = chain(clock, link(flaky, "a", clock, retries=1), link(spare, "b", clock))
    assert await model.complete(ASK) == "anthropic:b"
    assert flaky.calls == ["a", "a"] and calls[0].position == 1


async def test_when_every_model_is_limited_the_soonest_back_defers_the_job() -> None:
    clock = FakeClock()
    model, calls = chain(
        clock,
        link(Scripted("anthropic", overloaded(30)), "a", clock),
        link(Scripted("gemini", RateLimited("429", retry_after=5)), "b", clock),
        link(Scripted("gemini", TransientFailure("503")), "c", clock, retries=0),
    )
    with pytest.raises(RateLimited) as limited:
        await model.complete(ASK)
    assert limited.value.retry_after == 5 and calls == []


async def test_a_short_cooldown_of_every_model_is_waited_out_a_long_one_defers() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    claude = Scripted("anthropic", RateLimited("429", retry_after=1, status=429))
    model, calls = chain(clock, link(GatedProvider(claude, control, clock), "a", clock), max_wait=10)
    assert await model.complete(ASK) == "anthropic:a"
    # The 429 opened the shared cooldown; the chain waited for it instead of deferring the job,
    # and the answer says how long (the job's result carries it).
    assert claude.calls == ["a", "a"] and clock.slept == [1.0]
    assert calls[0].waited == 1.0 and calls[0].position == 0
    # Waits add up: one more than max_wait allows, and the job is deferred as before.
    claude.script = [RateLimited("429", retry_after=6, status=429), RateLimited("429", retry_after=6, status=429)]
    with pytest.raises(RateLimited) as deferred:
        await model.complete(ASK)
    assert deferred.value.retry_after > 0 and claude.calls == ["a", "a", "a", "a"]
    assert clock.slept == [1.0, 6.0]
    # Without max_wait (the default) nothing is waited: the job is deferred at once.
    clock.mono += 60
    claude.script = [RateLimited("429", retry_after=1, status=429)]
    eager, _ = chain(clock, link(GatedProvider(claude, control, clock), "a", clock))
    with pytest.raises(RateLimited):
        await eager.complete(ASK)
    assert clock.slept == [1.0, 6.0]


async def test_the_jobs_waiting_out_one_cooldown_come_back_spread_after_its_end() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    claude = Scripted("anthropic", RateLimited("429", retry_after=1, status=429))
    first, _ = chain(clock, link(GatedProvider(claude, control, clock), "a", clock), max_wait=10)
    with pytest.raises(RateLimited):
        await link(GatedProvider(claude, control, clock), "a", clock).complete(ASK)  # opens the cooldown
    late, late_calls = chain(clock, link(GatedProvider(claude, control, clock), "a", clock), max_wait=10, jitter=1.0)
    began = clock.mono
    assert await first.complete(ASK) == "anthropic:a"
    assert clock.slept == [1.0]  # no later than the cooldown's end
    clock.mono = began  # the second job met the same cooldown at the same moment
    assert await late.complete(ASK) == "anthropic:a"
    assert clock.slept == [1.0, 1.5]  # half the wait later at most, and its result says so
    assert late_calls[0].waited == 1.5


async def test_a_chain_waits_only_after_its_fallbacks_refused_and_never_for_a_5xx() -> None:
    clock = FakeClock()
    control = MemoryProviderControl(clock)
    claude = Scripted("anthropic", overloaded(2))
    model, calls = chain(
        clock,
        link(GatedProvider(claude, control, clock), "a", clock),
        link(Scripted("gemini"), "b", clock),
        max_wait=10,
    )
    assert [d async for d in model.stream(ASK)] == ["gemini:b"]  # the fallback, no wait
    assert clock.slept == [] and calls[0].waited == 0.0 and calls[0].position == 1
    broken, _ = chain(clock, link(Scripted("anthropic", TransientFailure("503")), "a", clock, retries=0), max_wait=10)
    with pytest.raises(TransientFailure):
        await broken.complete(ASK)
    assert clock.slept == []
    # A stream whose only model is cooling down waits, then streams from the start.
    clock.mono += 60
    claude.script = [RateLimited("429", retry_after=2, status=429), "one two"]
    only, calls = chain(clock, link(GatedProvider(claude, control, clock), "a", clock), max_wait=10)
    assert [d async for d in only.stream(ASK)] == ["one", "two"]
    assert clock.slept == [2.0] and calls[0].waited == 2.0


async def test_a_stream_falls_back_before_its_first_delta_never_after() -> None:
    clock = FakeClock()
    model, calls = chain(
        clock, link(Scripted("anthropic", overloaded()), "a", clock), link(Scripted("gemini"), "b", clock)
    )
    assert [d async for d in model.stream(ASK)] == ["gemini:b"] and calls[0].position == 1
    broken = Scripted("anthropic", "first then more", TransientFailure("dropped"))
    model, _ = chain(clock, link(broken, "a", clock), link(Scripted("gemini"), "b", clock))
    seen: list[str] = []

    async def read() -> None:
        async for delta in model.stream(ASK):
            seen.append(delta)

    with pytest.raises(TransientFailure):
        await read()
    assert seen == ["first", "then"]


# -- the router and the runtime ---------------------------------------------------------------
def router(control: MemoryProviderControl, providers: dict[str, ModelProvider]) -> ModelRouter:
    clock = SystemClock()

    def make(route: ModelRoute) -> LimitedModel | None:
        provider = providers.get(route.provider)
        return None if provider is None else link(GatedProvider(provider, control, clock), route.model, clock)

    return ModelRouter({"generate_design": ModelRoute("anthropic", "env-model")}, make, clock, control)


async def test_the_router_uses_the_sql_chain_over_the_environment_and_skips_unknown_providers() -> None:
    control = MemoryProviderControl()
    r = router(control, {"anthropic": Scripted("anthropic")})
    assert (c := r.chain("generate_design")) is not None and c.routes == (ModelRoute("anthropic", "env-model"),)
    control.set_chain(
        "generate_design", [ModelRoute("openai", "x"), ModelRoute("anthropic", "a"), ModelRoute("anthropic", "b")]
    )
    await r.refresh()
    assert (c := r.chain("generate_design")) is not None
    assert c.routes == (ModelRoute("anthropic", "a"), ModelRoute("anthropic", "b"))


async def answer(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"text": await ctx.model.complete(ASK)}


async def test_the_result_says_which_model_answered_and_a_cooling_only_model_defers() -> None:
    store, control = MemoryStore(), MemoryProviderControl()
    claude = Scripted("anthropic", overloaded(600))
    control.set_chain("generate_design", [ModelRoute("anthropic", "a"), ModelRoute("gemini", "b")])
    r = router(control, {"anthropic": claude, "gemini": Scripted("gemini")})
    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": answer}, models=r):
        await until(lambda: store.get(job.id).status == "succeeded", "succeeded on the fallback")
    result = store.rows[job.id].result
    assert result == {
        "text": "gemini:b",
        "model": {"provider": "gemini", "model": "b", "fallback": True, "cooldown_wait_s": 0.0},
    }
    # Without a fallback, the cooling model defers the job and keeps its attempt; nothing is sent.
    control.set_chain("generate_design", [ModelRoute("anthropic", "a")])
    await r.refresh()
    second = store.enqueue("generate_design")
    async with running(store, {"generate_design": answer}, models=r):
        await until(lambda: "defer_job" in store.calls, "deferred")
    row = store.get(second.id)
    assert row.status == "queued" and row.attempts == 0
    assert claude.calls == ["a"]


async def test_chains_that_cannot_be_read_keep_the_worker_claiming_on_the_environments_model() -> None:
    class Unreadable(MemoryProviderControl):
        async def kind_models(self) -> dict[str, list[ModelRoute]]:
            raise StoreError("relation public.kind_models does not exist", code="42P01")

    store, control = MemoryStore(), Unreadable()
    r = router(control, {"anthropic": Scripted("anthropic")})
    job = store.enqueue("generate_design")
    async with running(store, {"generate_design": answer}, models=r):
        await until(lambda: store.get(job.id).status == "succeeded", "succeeded on the environment's model")
    assert store.rows[job.id].result == {
        "text": "anthropic:env-model",
        "model": {"provider": "anthropic", "model": "env-model", "fallback": False, "cooldown_wait_s": 0.0},
    }


async def test_a_refused_capacity_call_lets_the_model_call_through_but_an_unreachable_store_does_not() -> None:
    class Refusing(MemoryProviderControl):
        def __init__(self, error: StoreError) -> None:
            super().__init__(FakeClock())
            self.error = error

        async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
            raise self.error

    clock = FakeClock()
    refused = GatedProvider(Scripted("anthropic"), Refusing(StoreError("no function", code="42883")), clock)
    assert await refused.complete("m1", ASK) == "anthropic:m1"
    away = Scripted("anthropic")
    with pytest.raises(StoreUnavailable):
        await GatedProvider(away, Refusing(StoreUnavailable("connection refused")), clock).complete("m1", ASK)
    assert away.calls == []
