"""The shared-capacity gate: a ``ModelProvider`` that asks SQL for capacity before every call.

Every replica asks the same row (``ProviderControl.acquire_model_capacity_batch``: the asks of
every job of this process that became ready during the previous call, in one call), so together they
stay under the provider's limits instead of each discovering them through 429s. A 429/529 the
provider still answers is reported (``report_model_rate_limit``): the shared cooldown then keeps
every replica away from that model until it ends.

A model with no configured limits has nothing to count: SQL answers "unlimited" unless it is
cooling down, and the gate grants that model locally for ``UNLIMITED_RECHECK_SECONDS`` after such an
answer instead of a round trip before every call. A cooldown another replica reports reaches this
one within that time; one this replica reports applies to it at once. A call in the second half of
that time asks again in the background (one ask per model at a time): under steady traffic the
grant is renewed before it runs out, so no call waits for a capacity round trip while its model
stays unlimited (a call after a quiet spell still asks first).

A "cooldown" answer is kept too, until the end it named: SQL refuses every ask for that model until
then (a cooldown only ever grows), so the calls meanwhile are refused here without a round trip.
Under the AI load's 2 % of 429s, those refusals were half of all capacity asks.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from worker.core.coalesce import Coalescer
from worker.core.errors import CapacityUnavailable, RateLimited, StoreError, StoreUnavailable
from worker.core.ports import (
    Capacity,
    CapacityRequest,
    Clock,
    GeneratedImage,
    ModelProvider,
    ProviderControl,
    TextRequest,
    UsageSink,
)
from worker.core.retry import after_refusal

log = logging.getLogger("worker.gate")
CHARS_PER_TOKEN = 4  # a rough input-token estimate; the limiter needs an upper-ish bound, not a count
MAX_ASKS = 200  # per acquire_model_capacity_batch call; the SQL function takes up to 1000
IMAGE_TOKENS = 1290  # what one generated image counts as (Gemini bills 1290 output tokens per image)
ASK_TRIES = 3  # a capacity ask that finds the queue unreachable is tried this often
ASK_RETRY_SECONDS = 0.2  # then 0.4: a pool's connections broken by a database restart fail one call each
UNLIMITED_RECHECK_SECONDS = 0.5  # how long an "unlimited" answer is trusted (see the module's doc)


def estimate_tokens(request: TextRequest) -> int:
    chars = len(request.system) + sum(len(text) for _role, text in request.messages)
    return chars // CHARS_PER_TOKEN + 1


class CapacityBatcher(Coalescer[CapacityRequest, Capacity]):
    """Every model call's capacity ask, for any job and provider, in few calls: one
    ``acquire_model_capacity_batch`` carries whatever asked while the previous call was in flight.
    Each ask is still decided alone in SQL, in the same buckets; only the round trips are shared."""

    def __init__(self, control: ProviderControl) -> None:
        super().__init__("capacity-batch", MAX_ASKS)
        self.control = control

    async def acquire(self, provider: str, model: str, tokens: int) -> Capacity:
        return await self.add(CapacityRequest(provider, model, tokens))

    async def _call(self, items: list[CapacityRequest]) -> list[Capacity]:
        return await self.control.acquire_model_capacity_batch(items)


@dataclass
class GatedProvider:
    """``provider`` behind the shared limiter and cooldowns of ``control``.

    A refusal shorter than ``max_wait`` seconds is waited out here (the call keeps its slot and
    asks again); a longer one, or an open cooldown, raises ``CapacityUnavailable``: the fallback
    chain tries its next model, and without one the job is deferred without spending an attempt.
    """

    provider: ModelProvider
    control: ProviderControl
    clock: Clock
    max_wait: float = 10.0
    capacity: CapacityBatcher | None = None  # share one among the providers: fewer, bigger calls
    name: str = field(init=False)
    unlimited_recheck: float = UNLIMITED_RECHECK_SECONDS
    rand: Callable[[], float] = random.random  # spreads the waits for a refill (``after_refusal``)
    _refused: set[str] = field(default_factory=set, init=False, repr=False)
    _unlimited_until: dict[str, float] = field(default_factory=dict, init=False, repr=False)  # monotonic
    _cooling_until: dict[str, float] = field(default_factory=dict, init=False, repr=False)  # monotonic
    _renewing: dict[str, asyncio.Task[None]] = field(default_factory=dict, init=False, repr=False)
    _asks: CapacityBatcher = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.name = self.provider.name
        self._asks = self.capacity or CapacityBatcher(self.control)

    async def _ask(self, model: str, tokens: int) -> Capacity:
        # A job can start with no queue call before its first ask (a hand-off: the enqueue
        # claimed it), so a blip the claim used to absorb meets the ask: it must not cost the
        # job an attempt. A queue away for longer still fails the ask after the last try.
        for attempt in range(ASK_TRIES - 1):
            try:
                return await self._asks.acquire(self.name, model, tokens)
            except StoreUnavailable as exc:
                log.warning("capacity ask for %s/%s failed (%s); asking again", self.name, model, exc)
                await self.clock.sleep(ASK_RETRY_SECONDS * 2**attempt)
        return await self._asks.acquire(self.name, model, tokens)

    async def admit(self, model: str, tokens: int) -> None:
        now = self.clock.monotonic()
        cooling = self._cooling_until.get(model, 0.0)
        if now < cooling:
            raise _refusal(self.name, model, "cooldown", cooling - now)
        until = self._unlimited_until.get(model, 0.0)
        if now < until:
            if now >= until - self.unlimited_recheck / 2 and model not in self._renewing:
                self._renewing[model] = asyncio.create_task(self._renew(model, tokens), name=f"renew-{model}")
            return
        waited = 0.0
        while True:
            try:
                capacity = await self._ask(model, tokens)
            except StoreUnavailable:
                raise  # the queue is away too: the job's outcome could not be recorded either
            except StoreError as exc:
                # The SQL API refused the call itself (say the migration is not pushed yet): an
                # unchecked call beats failing every job; the log says why, once per model.
                if model not in self._refused:
                    self._refused.add(model)
                    log.error("shared capacity for %s/%s unavailable, calling unchecked: %s", self.name, model, exc)
                return
            if capacity.granted:
                if capacity.reason == "unlimited":
                    self._unlimited_until[model] = self.clock.monotonic() + self.unlimited_recheck
                return
            self._unlimited_until.pop(model, None)
            if capacity.reason == "cooldown":
                self._cool(model, capacity.wait_seconds)
                raise _refusal(self.name, model, capacity.reason, capacity.wait_seconds)
            wait = max(capacity.wait_seconds, 0.05)  # never spin on a rounding-error wait
            if waited + wait > self.max_wait:
                raise _refusal(self.name, model, capacity.reason, capacity.wait_seconds)
            wait = after_refusal(wait, self.rand())  # the calls the refill admits do not all ask at once
            await self.clock.sleep(wait)
            waited += wait

    async def _renew(self, model: str, tokens: int) -> None:
        """Ask ahead of the local grant's end. Only a grant still held is extended: a 429 of this
        replica, or a refusal, dropped it meanwhile and must not be undone by an older answer."""
        try:
            capacity = await self._asks.acquire(self.name, model, tokens)
        except StoreError as exc:  # the grant runs out; the next call asks in line
            log.info("capacity ask ahead for %s/%s failed: %s", self.name, model, exc)
            return
        finally:
            self._renewing.pop(model, None)
        if capacity.granted and capacity.reason == "unlimited":
            if model in self._unlimited_until:
                self._unlimited_until[model] = self.clock.monotonic() + self.unlimited_recheck
        else:
            self._unlimited_until.pop(model, None)  # cooling down, or limits now: every call asks
            if capacity.reason == "cooldown":
                self._cool(model, capacity.wait_seconds)

    def _cool(self, model: str, seconds: float) -> None:
        self._cooling_until[model] = max(self._cooling_until.get(model, 0.0), self.clock.monotonic() + seconds)

    async def report(self, model: str, exc: RateLimited) -> None:
        self._unlimited_until.pop(model, None)  # ask SQL again: it holds the cooldown from now on
        if exc.status is None:
            return
        try:
            until = await self.control.report_model_rate_limit(self.name, model, exc.status, exc.retry_after)
        except StoreError as err:  # the job is deferred anyway; only the other replicas miss out
            log.warning("cooldown of %s/%s not shared: %s", self.name, model, err)
            return
        log.info("%s/%s cooling down until %s (%s)", self.name, model, until.isoformat(), exc.status)

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str:
        await self.admit(model, estimate_tokens(request))
        try:
            return await self.provider.complete(model, request, on_usage)
        except RateLimited as exc:
            await self.report(model, exc)
            raise

    async def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]:
        await self.admit(model, estimate_tokens(request))
        try:
            async for delta in self.provider.stream(model, request, on_usage):
                yield delta
        except RateLimited as exc:
            await self.report(model, exc)
            raise

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        await self.admit(model, len(prompt) // CHARS_PER_TOKEN + IMAGE_TOKENS)
        try:
            return await self.provider.generate_image(model, prompt, aspect_ratio, on_usage)
        except RateLimited as exc:
            await self.report(model, exc)
            raise

    async def close(self) -> None:
        for task in list(self._renewing.values()):
            task.cancel()
        await self.provider.close()


def _refusal(provider: str, model: str, reason: str, seconds: float) -> CapacityUnavailable:
    return CapacityUnavailable(
        f"{provider}/{model}: {_why(reason)}; retry in {seconds:.1f} s", retry_after=seconds, reason=reason
    )


def _why(reason: str) -> str:
    if reason == "cooldown":
        return "cooling down after a 429/529 (shared by every replica)"
    return f"the shared {reason}-per-minute limit is spent"
