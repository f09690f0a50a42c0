"""The limits around the model port (``ModelProvider`` in ``worker.core.ports``).

``LimitedModel`` binds a provider to one model name and adds the per-provider concurrency limit
and quick in-call retries; each provider call that answers can be reported (provider, model,
usage, latency) for the usage ledger. ``ModelChain`` is what a handler calls: a kind's models in
order, moving to the next one on overload or a 429 (the model is then cooling down), an open
cooldown, or a 5xx that outlasted the quick retries; it tells the job which model answered and
reports every answered call. When every model refused for a while that ends within ``max_wait``
(a cooldown after a 429 usually lasts a second or two), the chain waits it out and asks again:
deferring the job instead would cost a queue round trip and two status messages to its user.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TypeVar

from worker.core.errors import JobFailure, RateLimited, TransientFailure
from worker.core.ports import (
    Clock,
    GeneratedImage,
    ModelCall,
    ModelProvider,
    ModelRoute,
    ModelUsage,
    TextRequest,
    UsageSink,
)
from worker.core.retry import RetryPolicy, after_refusal, retrying

log = logging.getLogger("worker.models")
T = TypeVar("T")
CallSink = Callable[[ModelCall], None]


@dataclass
class LimitedModel:
    """A provider bound to one model name, under a shared concurrency limit, with quick retries."""

    provider: ModelProvider
    model: str
    limit: asyncio.Semaphore
    clock: Clock
    retries: int = 2
    policy: RetryPolicy = field(default_factory=lambda: RetryPolicy(base=0.5, cap=5.0))
    rand: Callable[[], float] = random.random

    def _meter(self, on_call: CallSink | None) -> UsageSink | None:
        """A usage sink for one provider call that reports it with its latency (from now)."""
        if on_call is None:
            return None
        started = self.clock.monotonic()

        def sink(usage: ModelUsage) -> None:
            latency_ms = max(0, round((self.clock.monotonic() - started) * 1000))
            on_call(ModelCall(self.provider.name, self.model, usage, latency_ms))

        return sink

    async def complete(self, request: TextRequest, on_call: CallSink | None = None) -> str:
        async def once() -> str:
            async with self.limit:
                return await self.provider.complete(self.model, request, self._meter(on_call))

        return await retrying(once, retries=self.retries, policy=self.policy, clock=self.clock, rand=self.rand)

    async def stream(self, request: TextRequest, on_call: CallSink | None = None) -> AsyncIterator[str]:
        """Deltas as they arrive. A transient failure before the first delta is retried; after
        it, the failure propagates (a replay would duplicate output the user already saw)."""
        failures = 0
        while True:
            started = False
            try:
                async with self.limit:
                    async for delta in self.provider.stream(self.model, request, self._meter(on_call)):
                        started = True
                        yield delta
                return
            except TransientFailure:
                failures += 1
                if started or failures > self.retries:
                    raise
                await self.clock.sleep(self.policy.delay(failures, self.rand()))

    async def generate_image(
        self, prompt: str, aspect_ratio: str | None, on_call: CallSink | None = None
    ) -> GeneratedImage:
        async def once() -> GeneratedImage:
            async with self.limit:
                return await self.provider.generate_image(self.model, prompt, aspect_ratio, self._meter(on_call))

        return await retrying(once, retries=self.retries, policy=self.policy, clock=self.clock, rand=self.rand)


@dataclass(frozen=True)
class ModelAnswer:
    """A model that answered a handler's request: which one (``position`` 0 is the chain's first)
    and how long it took, retries and fallbacks included. The job's result names the last one."""

    route: ModelRoute
    position: int
    seconds: float
    waited: float = 0.0  # of ``seconds``, waiting for every model's cooldown / 429 to end


@dataclass(frozen=True)
class ModelChain:
    """A kind's models in fallback order, each a ``LimitedModel``. Shared by every job of the
    kind; ``for_job`` gives a job its own copy that reports each answer (``on_answer``) and each
    provider call that answered, with its usage (``on_call``: the usage ledger)."""

    links: tuple[tuple[ModelRoute, LimitedModel], ...]
    clock: Clock
    on_answer: Callable[[ModelAnswer], None] | None = None
    on_call: CallSink | None = None
    max_wait: float = 0.0  # seconds a call may wait for a refusal to end before the job is deferred
    rand: Callable[[], float] = random.random  # spreads the waits (``after_refusal``)

    @classmethod
    def of(
        cls,
        links: Sequence[LimitedModel],
        clock: Clock,
        max_wait: float = 0.0,
        rand: Callable[[], float] = random.random,
    ) -> ModelChain:
        routes = tuple((ModelRoute(m.provider.name, m.model), m) for m in links)
        return cls(routes, clock, max_wait=max_wait, rand=rand)

    def for_job(self, on_answer: Callable[[ModelAnswer], None], on_call: CallSink | None = None) -> ModelChain:
        return replace(self, on_answer=on_answer, on_call=on_call)

    @property
    def routes(self) -> tuple[ModelRoute, ...]:
        return tuple(route for route, _ in self.links)

    async def complete(self, request: TextRequest) -> str:
        return await self._first(lambda link: link.complete(request, self.on_call))

    async def generate_image(self, prompt: str, aspect_ratio: str | None) -> GeneratedImage:
        return await self._first(lambda link: link.generate_image(prompt, aspect_ratio, self.on_call))

    async def stream(self, request: TextRequest) -> AsyncIterator[str]:
        """Deltas of the first model that starts answering. Once a delta went out, a failure
        propagates: another model would start the answer over."""
        began, waited = self.clock.monotonic(), 0.0
        while True:
            failures: list[JobFailure] = []
            for position, (route, link) in enumerate(self.links):
                started = False
                try:
                    async for delta in link.stream(request, self.on_call):
                        started = True
                        yield delta
                except (RateLimited, TransientFailure) as exc:
                    if started:
                        raise
                    self._failed(failures, position, route, exc)
                    continue
                self._answered(route, position, began, waited)
                return
            waited = await self._wait_or_give_up(failures, waited)

    async def _first(self, call: Callable[[LimitedModel], Awaitable[T]]) -> T:
        began, waited = self.clock.monotonic(), 0.0
        while True:
            failures: list[JobFailure] = []
            for position, (route, link) in enumerate(self.links):
                try:
                    value = await call(link)
                except (RateLimited, TransientFailure) as exc:
                    self._failed(failures, position, route, exc)
                    continue
                self._answered(route, position, began, waited)
                return value
            waited = await self._wait_or_give_up(failures, waited)

    async def _wait_or_give_up(self, failures: list[JobFailure], waited: float) -> float:
        """Every model refused: wait for the soonest to take calls again if that is within the
        ``max_wait`` left (the caller then asks the chain again), else raise what the job gets."""
        failure = _giving_up(failures)
        if not isinstance(failure, RateLimited):
            raise failure
        wait = max(failure.retry_after, 0.05)  # never spin on a rounding-error wait
        if waited + wait > self.max_wait:
            raise failure
        # Every job waiting on this cooldown would come back at its end at once: spread them.
        wait = after_refusal(wait, self.rand())
        log.info("every model of the chain is refusing (%s); asking again in %.2f s", failure.message[:200], wait)
        await self.clock.sleep(wait)
        return waited + wait

    def _failed(self, failures: list[JobFailure], position: int, route: ModelRoute, exc: JobFailure) -> None:
        failures.append(exc)
        if position + 1 < len(self.links):
            log.warning(
                "%s did not answer (%s); falling back to %s", route, exc.message[:200], self.links[position + 1][0]
            )

    def _answered(self, route: ModelRoute, position: int, began: float, waited: float) -> None:
        if self.on_answer is not None:
            self.on_answer(ModelAnswer(route, position, self.clock.monotonic() - began, waited))


def _giving_up(failures: list[JobFailure]) -> JobFailure:
    """What the job gets when no model answered: if any was rate limited or cooling down, the
    one that comes back soonest (the job is deferred, keeping its attempt); else the last 5xx."""
    if not failures:
        return TransientFailure("no model is configured for this kind")
    limited = [f for f in failures if isinstance(f, RateLimited)]
    return min(limited, key=lambda f: f.retry_after) if limited else failures[-1]
