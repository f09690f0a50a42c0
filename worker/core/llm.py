"""The limits around the model port (``ModelProvider`` in ``worker.core.ports``).

``LimitedModel`` binds a provider to one model name and adds the per-provider concurrency limit
and quick in-call retries.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from worker.core.errors import TransientFailure
from worker.core.ports import Clock, GeneratedImage, ModelProvider, TextRequest
from worker.core.retry import RetryPolicy, retrying


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

    async def complete(self, request: TextRequest) -> str:
        async def once() -> str:
            async with self.limit:
                return await self.provider.complete(self.model, request)

        return await retrying(once, retries=self.retries, policy=self.policy, clock=self.clock, rand=self.rand)

    async def stream(self, request: TextRequest) -> AsyncIterator[str]:
        """Deltas as they arrive. A transient failure before the first delta is retried; after
        it, the failure propagates (a replay would duplicate output the user already saw)."""
        failures = 0
        while True:
            started = False
            try:
                async with self.limit:
                    async for delta in self.provider.stream(self.model, request):
                        started = True
                        yield delta
                return
            except TransientFailure:
                failures += 1
                if started or failures > self.retries:
                    raise
                await self.clock.sleep(self.policy.delay(failures, self.rand()))

    async def generate_image(self, prompt: str, aspect_ratio: str | None) -> GeneratedImage:
        async def once() -> GeneratedImage:
            async with self.limit:
                return await self.provider.generate_image(self.model, prompt, aspect_ratio)

        return await retrying(once, retries=self.retries, policy=self.policy, clock=self.clock, rand=self.rand)
