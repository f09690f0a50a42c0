"""The limits around the model port (``ModelProvider`` in ``worker.core.ports``).

``LimitedModel`` binds a provider to one model name and adds the per-provider concurrency limit
and quick in-call retries; ``MeteredModel`` is what a job's handler gets: the same calls, each
answered one reported (provider, model, usage, latency) for the usage ledger.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from worker.core.errors import TransientFailure
from worker.core.ports import Clock, GeneratedImage, ModelCall, ModelProvider, ModelUsage, TextRequest, UsageSink
from worker.core.retry import RetryPolicy, retrying

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
class MeteredModel:
    """A ``LimitedModel`` for one job: every answered call goes to ``on_call``."""

    limited: LimitedModel
    on_call: CallSink

    @property
    def model(self) -> str:
        return self.limited.model

    async def complete(self, request: TextRequest) -> str:
        return await self.limited.complete(request, self.on_call)

    def stream(self, request: TextRequest) -> AsyncIterator[str]:
        return self.limited.stream(request, self.on_call)

    async def generate_image(self, prompt: str, aspect_ratio: str | None) -> GeneratedImage:
        return await self.limited.generate_image(prompt, aspect_ratio, self.on_call)
