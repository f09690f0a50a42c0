"""An in-memory ``ProviderControl`` with the SQL API's semantics (20261204000200_provider_limits.sql),
for unit tests; held honest by the conformance suite (tests/integration/test_worker_conformance.py).

``set_limits`` and ``set_chain`` play the operator's part (rows of provider_limits, kind_models).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from worker.core.clock import SystemClock
from worker.core.errors import InvalidArgument
from worker.core.ports import Capacity, CapacityReason, CapacityRequest, Clock, ModelRoute

_PROVIDER = re.compile(r"[a-z][a-z0-9_-]{0,39}")


@dataclass
class _Bucket:
    requests_left: float
    tokens_left: float
    refilled_at: datetime
    cooldown_until: datetime | None = None
    cooldown_status: int | None = None
    cooldowns: int = 0


class MemoryProviderControl:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.limits: dict[tuple[str, str], tuple[int | None, int | None]] = {}
        self.buckets: dict[tuple[str, str], _Bucket] = {}
        self.chains: dict[str, list[ModelRoute]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (rpc, provider, model), for tests

    # -- the operator's side -------------------------------------------------------------------
    def set_limits(self, provider: str, model: str, rpm: int | None, tpm: int | None = None) -> None:
        self.limits[(provider, model)] = (rpm, tpm)

    def set_chain(self, kind: str, routes: list[ModelRoute]) -> None:
        self.chains[kind] = list(routes)

    # -- ProviderControl -------------------------------------------------------------------------
    async def acquire_model_capacity(self, provider: str, model: str, tokens: int) -> Capacity:
        _check(provider, model, tokens)
        self.calls.append(("acquire", provider, model))
        now = self.clock.now()
        if (provider, model) not in self.limits:  # only a cooldown applies; no bucket is made
            cooling = self.buckets.get((provider, model))
            if cooling is not None and cooling.cooldown_until is not None and cooling.cooldown_until > now:
                return Capacity(False, (cooling.cooldown_until - now).total_seconds(), "cooldown")
            return Capacity(True, 0.0, "unlimited")
        rpm, tpm = self.limits[(provider, model)]
        bucket = self.buckets.setdefault((provider, model), _Bucket(float(rpm or 0), float(tpm or 0), now))
        if bucket.cooldown_until is not None and bucket.cooldown_until > now:
            return Capacity(False, (bucket.cooldown_until - now).total_seconds(), "cooldown")
        elapsed = max(0.0, (now - bucket.refilled_at).total_seconds())
        requests, tokens_left, need = bucket.requests_left, bucket.tokens_left, 0.0
        wait, reason = 0.0, "granted"
        if rpm is not None:
            requests = min(float(rpm), requests + elapsed * rpm / 60)
            if requests < 1:
                wait, reason = (1 - requests) * 60 / rpm, "requests"
        if tpm is not None:
            tokens_left = min(float(tpm), tokens_left + elapsed * tpm / 60)
            need = float(min(tokens, tpm))
            if tokens_left < need and (need - tokens_left) * 60 / tpm > wait:
                wait, reason = (need - tokens_left) * 60 / tpm, "tokens"
        if reason == "granted":
            requests -= 1 if rpm is not None else 0
            tokens_left -= need
        bucket.requests_left, bucket.tokens_left, bucket.refilled_at = requests, tokens_left, now
        why: CapacityReason = "granted" if reason == "granted" else ("requests" if reason == "requests" else "tokens")
        return Capacity(why == "granted", wait, why)

    async def acquire_model_capacity_batch(self, requests: Sequence[CapacityRequest]) -> list[Capacity]:
        """Every request checked first (a refusal names ``requests[i]`` and takes nothing), then
        each answered as ``acquire_model_capacity`` would, in order."""
        if not 1 <= len(requests) <= 1000:
            raise InvalidArgument(f"requests: must hold 1 to 1000 items, got {len(requests)}")
        for i, request in enumerate(requests):
            try:
                _check(request.provider, request.model, request.tokens)
            except InvalidArgument as exc:
                raise InvalidArgument(f"requests[{i}].{exc}") from None
        return [await self.acquire_model_capacity(r.provider, r.model, r.tokens) for r in requests]

    async def report_model_rate_limit(self, provider: str, model: str, status: int, retry_after: float) -> datetime:
        _check(provider, model)
        if status not in (429, 529):
            raise InvalidArgument(f"status: must be 429 (rate limited) or 529 (overloaded), got {status}")
        if not 0 <= retry_after <= 3600:
            raise InvalidArgument(f"retry_after_seconds: must be between 0 and 3600, got {retry_after:g}")
        self.calls.append(("report", provider, model))
        until = self.clock.now() + timedelta(seconds=retry_after)
        bucket = self.buckets.get((provider, model))
        if bucket is None:
            bucket = self.buckets[(provider, model)] = _Bucket(0.0, 0.0, until)
        elif status == 429:
            bucket.requests_left, bucket.refilled_at = 0.0, max(bucket.refilled_at, until)
        if bucket.cooldown_until is None or until > bucket.cooldown_until:
            bucket.cooldown_until = until
        bucket.cooldown_status = status
        bucket.cooldowns += 1
        return bucket.cooldown_until

    async def kind_models(self) -> dict[str, list[ModelRoute]]:
        return {kind: list(routes) for kind, routes in self.chains.items() if routes}


def _check(provider: str, model: str, tokens: int = 0) -> None:
    if not _PROVIDER.fullmatch(provider):
        raise InvalidArgument(
            "provider: must be a lowercase provider name such as anthropic "
            f"(letters, digits, _ or -, at most 40), got {provider!r}"
        )
    if not 1 <= len(model) <= 200:
        raise InvalidArgument(f"model: must be a model name of 1 to 200 characters, got {model!r}")
    if not 0 <= tokens <= 1_000_000_000:
        raise InvalidArgument(f"tokens: must be between 0 and 1000000000, got {tokens}")
