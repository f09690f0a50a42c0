"""What tests, demos and benchmarks set on the model stand-ins: scripted faults (each consumed by
the next matching provider request(s)) and the load knobs (a random latency per request, a random
share of 429s, a per-model rate limit, and the tag taken from each body for the timing log)."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devstack.models.ratelimit import RateLimiter

Provider = Literal["anthropic", "gemini"]
# stream_error: a streamed Claude answer breaks off with an SSE `error` event (overloaded_error)
# after the 200, as the Messages API does; a request that does not stream gets the 529 instead.
FaultKind = Literal["429", "500", "503", "529", "timeout", "invalid_json", "disconnect", "stream_error"]
ERROR_KINDS: frozenset[str] = frozenset({"429", "500", "503", "529"})


class FaultSpec(BaseModel):
    """Body of ``POST /_standin/faults``."""

    model_config = ConfigDict(extra="forbid", strict=True)

    provider: Literal["anthropic", "gemini", "any"] = "any"
    kind: FaultKind
    count: int = Field(default=1, ge=1, le=10_000)
    retry_after: float | None = Field(default=None, ge=0, le=86_400)
    match: str | None = Field(default=None, min_length=1)
    # Only requests for this model take the fault (e.g. an overloaded model, for fallbacks).
    model: str | None = Field(default=None, min_length=1, max_length=200)
    hold_seconds: float = Field(default=30.0, gt=0, le=3600)

    @model_validator(mode="after")
    def _stream_error_is_claudes(self) -> FaultSpec:
        if self.kind == "stream_error" and self.provider != "anthropic":
            raise ValueError('kind "stream_error" needs provider "anthropic" (only Claude answers are streamed)')
        return self

    def status(self) -> int:
        """The HTTP status an error fault answers with (a stream_error's, when nothing streams)."""
        return 529 if self.kind == "stream_error" else int(self.kind)

    def retry_after_or_default(self) -> float | None:
        # A 429 always tells the client when to come back; other errors only if asked to.
        return self.retry_after if self.retry_after is not None or self.kind != "429" else 1.0


class ConfigSpec(BaseModel):
    """Body of ``POST /_standin/config``; omitted fields keep their value.

    ``null`` keeps a value too, except for the latency range and ``tag_pattern``, where it
    clears them (both range fields at once).
    """

    model_config = ConfigDict(extra="forbid", strict=True)

    latency_ms: int | None = Field(default=None, ge=0, le=600_000)
    stream_delay_ms: int | None = Field(default=None, ge=0, le=60_000)
    latency_min_ms: int | None = Field(default=None, ge=0, le=600_000)
    latency_max_ms: int | None = Field(default=None, ge=0, le=600_000)
    error_429_rate: float | None = Field(default=None, ge=0, le=1)
    error_429_retry_after: float | None = Field(default=None, ge=0, le=86_400)
    random_seed: int | None = None
    tag_pattern: str | None = Field(default=None, min_length=1, max_length=500)
    rate_limit_per_minute: int | None = Field(default=None, ge=0, le=1_000_000)

    @field_validator("tag_pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a regular expression: {exc}") from exc
        return value

    def problem(self) -> tuple[str, str] | None:
        """The first rule across fields this body breaks, as (field, message); None if none."""
        given = self.model_fields_set
        lo, hi = self.latency_min_ms, self.latency_max_ms
        if ("latency_min_ms" in given) != ("latency_max_ms" in given):
            present = "latency_min_ms" if "latency_min_ms" in given else "latency_max_ms"
            missing = "latency_max_ms" if present == "latency_min_ms" else "latency_min_ms"
            return missing, f"required together with {present}"
        if (lo is None) != (hi is None):
            return ("latency_min_ms" if lo is None else "latency_max_ms"), "set both bounds, or null both to clear"
        if lo is not None and hi is not None and hi < lo:
            return "latency_max_ms", f"must be at least latency_min_ms ({lo}), got {hi}"
        if self.latency_ms is not None and lo is not None:
            return "latency_ms", "give either latency_ms or latency_min_ms/latency_max_ms, not both"
        return None


@dataclass
class Knobs:
    latency_ms: int = 0
    stream_delay_ms: int = 0
    # Load knobs (benchmarks). Unset by default; GET /_standin/config shows them once set.
    latency_min_ms: int | None = None  # with latency_max_ms: uniform per request, instead of latency_ms
    latency_max_ms: int | None = None
    error_429_rate: float = 0.0  # share of requests (without a queued fault) answered 429
    error_429_retry_after: float = 1.0
    random_seed: int | None = None
    tag_pattern: str | None = None
    limiter: RateLimiter = field(default_factory=RateLimiter, repr=False, compare=False)
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)
    _tag_re: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_env(cls) -> Knobs:
        return cls(_env_ms("STANDIN_LATENCY_MS"), _env_ms("STANDIN_STREAM_DELAY_MS"))

    def apply(self, spec: ConfigSpec) -> None:
        if spec.latency_ms is not None:
            self.latency_ms = spec.latency_ms
            self.latency_min_ms = self.latency_max_ms = None  # a fixed latency replaces the range
        if spec.stream_delay_ms is not None:
            self.stream_delay_ms = spec.stream_delay_ms
        if "latency_min_ms" in spec.model_fields_set:
            self.latency_min_ms, self.latency_max_ms = spec.latency_min_ms, spec.latency_max_ms
        if spec.error_429_rate is not None:
            self.error_429_rate = spec.error_429_rate
        if spec.error_429_retry_after is not None:
            self.error_429_retry_after = spec.error_429_retry_after
        if spec.random_seed is not None:
            self.random_seed = spec.random_seed
            self._rng.seed(spec.random_seed)
        if spec.rate_limit_per_minute is not None:
            self.limiter.configure(spec.rate_limit_per_minute)
        if "tag_pattern" in spec.model_fields_set:
            self.tag_pattern = spec.tag_pattern
            self._tag_re = re.compile(spec.tag_pattern) if spec.tag_pattern is not None else None

    def to_json(self) -> dict[str, Any]:
        # The load knobs appear only once set, so the answer stays small for the common case.
        out: dict[str, Any] = {"latency_ms": self.latency_ms, "stream_delay_ms": self.stream_delay_ms}
        if self.latency_min_ms is not None:
            out["latency_min_ms"], out["latency_max_ms"] = self.latency_min_ms, self.latency_max_ms
        if self.error_429_rate:
            out["error_429_rate"], out["error_429_retry_after"] = self.error_429_rate, self.error_429_retry_after
        if self.random_seed is not None:
            out["random_seed"] = self.random_seed
        if self.tag_pattern is not None:
            out["tag_pattern"] = self.tag_pattern
        if self.limiter.per_minute is not None:
            out["rate_limit_per_minute"] = self.limiter.per_minute
        return out

    def pick_latency_ms(self) -> int:
        if self.latency_min_ms is not None and self.latency_max_ms is not None:
            return self._rng.randint(self.latency_min_ms, self.latency_max_ms)
        return self.latency_ms

    async def before_answer(self) -> int:
        """Wait the request's latency; returns it in milliseconds (for the timing log)."""
        delay = self.pick_latency_ms()
        if delay:
            await asyncio.sleep(delay / 1000)
        return delay

    async def between_deltas(self) -> None:
        if self.stream_delay_ms:
            await asyncio.sleep(self.stream_delay_ms / 1000)

    def limited(self, provider: Provider, model: str | None) -> FaultSpec | None:
        """A 429 when the provider/model's ``rate_limit_per_minute`` bucket is empty."""
        wait = self.limiter.take(provider, model)
        return None if wait is None else FaultSpec(kind="429", retry_after=wait)

    def random_fault(self) -> FaultSpec | None:
        """A 429 for ``error_429_rate`` of the requests, drawn per request."""
        if self.error_429_rate and self._rng.random() < self.error_429_rate:
            return FaultSpec(kind="429", retry_after=self.error_429_retry_after)
        return None

    def tag_of(self, body: str) -> str | None:
        """The request's tag: the pattern's first group (or whole match) in the raw body."""
        match = self._tag_re.search(body) if self._tag_re is not None else None
        if match is None:
            return None
        return match.group(1) if match.re.groups else match.group(0)


def _env_ms(name: str) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return 0
    if not raw.isdigit():
        raise ValueError(f"{name} must be a non-negative integer number of milliseconds, got {raw!r}")
    return int(raw)


@dataclass
class Fault:
    id: int
    spec: FaultSpec
    remaining: int

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "remaining": self.remaining, **self.spec.model_dump()}


class FaultQueue:
    """FIFO of armed faults; the first one matching a request is consumed (count goes down by one)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, spec: FaultSpec) -> Fault:
        fault = Fault(next(self._ids), spec, spec.count)
        self._faults.append(fault)
        return fault

    def take(self, provider: Provider, body: str, model: str | None = None) -> FaultSpec | None:
        for fault in self._faults:
            spec = fault.spec
            if spec.provider not in (provider, "any") or (spec.match is not None and spec.match not in body):
                continue
            if spec.model is not None and spec.model != model:
                continue
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)
            return spec
        return None

    def clear(self) -> int:
        dropped = len(self._faults)
        self._faults.clear()
        return dropped

    def pending(self) -> list[dict[str, Any]]:
        return [f.to_json() for f in self._faults]
