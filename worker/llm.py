"""The one small interface both model providers sit behind, and the limits around it.

Providers (``worker.providers``) translate SDK errors into ``worker.errors`` failures;
``LimitedModel`` adds the per-provider concurrency limit and quick in-call retries.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

from worker.clock import Clock
from worker.errors import TransientFailure
from worker.retry import RetryPolicy, retrying

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class TextRequest:
    system: str
    messages: tuple[tuple[Role, str], ...]
    max_tokens: int = 4096

    @classmethod
    def ask(cls, system: str, prompt: str, max_tokens: int = 4096) -> TextRequest:
        return cls(system, (("user", prompt),), max_tokens)

    def followed_by(self, answer: str, prompt: str) -> TextRequest:
        return TextRequest(self.system, (*self.messages, ("assistant", answer), ("user", prompt)), self.max_tokens)


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes
    mime_type: str


class ModelProvider(Protocol):
    name: str

    async def complete(self, model: str, request: TextRequest) -> str: ...

    def stream(self, model: str, request: TextRequest) -> AsyncIterator[str]: ...

    async def generate_image(self, model: str, prompt: str, aspect_ratio: str | None) -> GeneratedImage: ...

    async def close(self) -> None: ...


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
