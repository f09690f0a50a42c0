"""Fault injection, latency knobs and the request log, plus the ``/_standin`` control API.

Tests and demos drive a worker they do not control; they shape what the worker sees by queueing
faults here. Each fault is consumed by the next matching provider request(s).

Benchmarks need load-shaped behaviour instead of scripted faults: a random latency per request
(``latency_min_ms``/``latency_max_ms``), a random share of 429s (``error_429_rate``), and a
timing log (``/_standin/timings``) that says when each request started and finished, with a tag
taken from its body (``tag_pattern``) so the requests of one job can be found again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import random
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from devstack.models.ratelimit import RateLimiter

Provider = Literal["anthropic", "gemini"]
FaultKind = Literal["429", "500", "503", "529", "timeout", "invalid_json", "disconnect"]
ERROR_KINDS: frozenset[str] = frozenset({"429", "500", "503", "529"})
LOG_LIMIT = 1000  # the demo runs for hours; keep the newest entries only
# Timing entries are small (no bodies), and a benchmark reads every request of its run: room
# for a few minutes of heavy load. Older entries are dropped first.
TIMING_LIMIT = 100_000
TIMINGS_PAGE = 10_000
M = TypeVar("M", bound=BaseModel)


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


@dataclass
class RequestRecord:
    seq: int
    provider: Provider
    path: str
    model: str | None
    job_kind: str | None
    stream: bool
    fault: str | None
    status: int
    timestamp: str
    headers: dict[str, str]
    body: Any
    disconnected: bool = False  # set when the client went away while a fault held the request


@dataclass
class RequestLog:
    entries: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, **fields: Any) -> RequestRecord:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = RequestRecord(seq=next(self._seq), timestamp=stamp, **fields)
        self.entries.append(record)
        return record

    def select(self, provider: str | None) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.entries if provider in (None, r.provider)]


@dataclass
class Timing:
    """When one provider request was served: epoch seconds on the stand-in's clock."""

    seq: int  # the same number as the request's entry in the request log
    provider: Provider
    job_kind: str | None
    stream: bool
    tag: str | None
    started: float  # the request reached the stand-in
    finished: float | None = None  # the last byte of the answer went out (None while in flight)
    status: int = 200
    fault: str | None = None
    latency_ms: int = 0  # the latency the knobs added

    def end(self) -> None:
        if self.finished is None:
            self.finished = time.time()


@dataclass
class TimingLog:
    entries: deque[Timing] = field(default_factory=lambda: deque(maxlen=TIMING_LIMIT))
    dropped: int = 0  # the oldest entries pushed out since the last clear: a reader missed them

    def add(self, timing: Timing) -> Timing:
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        self.entries.append(timing)
        return timing

    def clear(self) -> int:
        cleared = len(self.entries)
        self.entries.clear()
        self.dropped = 0
        return cleared

    def page(self, after: int, limit: int) -> dict[str, Any]:
        picked: list[dict[str, Any]] = []
        more = False
        for entry in self.entries:
            if entry.seq <= after:
                continue
            if len(picked) == limit:
                more = True
                break
            picked.append(asdict(entry))
        return {
            "count": len(picked),
            "timings": picked,
            "next_after": picked[-1]["seq"] if picked else after,
            "more": more,
            "dropped": self.dropped,
        }


@dataclass
class StandinState:
    faults: FaultQueue = field(default_factory=FaultQueue)
    log: RequestLog = field(default_factory=RequestLog)
    knobs: Knobs = field(default_factory=Knobs.from_env)
    timings: TimingLog = field(default_factory=TimingLog)


# Headers worth seeing in the log; credentials are reported by presence only.
_LOGGED_HEADERS = ("anthropic-version", "anthropic-beta", "content-type", "user-agent", "x-goog-api-client")
_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "x-goog-api-key")


def logged_headers(request: Request) -> dict[str, str]:
    picked = {name: request.headers[name] for name in _LOGGED_HEADERS if name in request.headers}
    present = [name for name in _CREDENTIAL_HEADERS if name in request.headers]
    if present:
        picked["credential"] = ",".join(present)
    return picked


async def hold(request: Request, seconds: float) -> bool:
    """Sleep ``seconds`` unless the client hangs up first; True if it hung up.

    Watching for the disconnect keeps a held request from outliving its client (and from
    stalling server shutdown for the whole hold).
    """

    async def client_gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait_for(asyncio.shield(watcher), timeout=seconds)
    except TimeoutError:
        return False
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return True


@dataclass
class FaultOutcome:
    """What ``take_fault`` decided for one provider request."""

    spec: FaultSpec | None  # the fault consumed, if any
    record: RequestRecord  # the log entry of the request
    early: Response | None  # answer now with this (error fault, or a timeout the client left)
    timing: Timing  # the caller ends it when the answer is out (already ended when ``early``)


async def take_fault(
    state: StandinState,
    request: Request,
    provider: Provider,
    raw: bytes,
    *,
    model: str | None,
    job_kind: str | None,
    stream: bool,
    body: Any,
    error_response: Callable[[FaultSpec], Response],
    received: float | None = None,
) -> FaultOutcome:
    """Consume the next matching fault (or draw a random 429), log the request, and play the
    faults that end it early: an error status (in the provider's error shape), or a ``timeout``
    hold the client hung up on (499). The other fault kinds shape the answer and are left to the
    caller. ``received`` (epoch seconds, default now) starts the request's timing entry."""
    text = raw.decode(errors="replace")
    spec = (
        state.faults.take(provider, text, model) or state.knobs.limited(provider, model) or state.knobs.random_fault()
    )
    record = state.log.add(
        provider=provider,
        path=request.url.path,
        model=model,
        job_kind=job_kind,
        stream=stream,
        fault=spec.kind if spec else None,
        status=200,
        headers=logged_headers(request),
        body=body,
    )
    timing = state.timings.add(
        Timing(
            seq=record.seq,
            provider=provider,
            job_kind=job_kind,
            stream=stream,
            tag=state.knobs.tag_of(text),
            started=received if received is not None else time.time(),
            fault=record.fault,
        )
    )
    early: Response | None = None
    if spec is not None and spec.kind in ERROR_KINDS:
        record.status = int(spec.kind)
        early = error_response(spec)
    elif spec is not None and spec.kind == "timeout" and await hold(request, spec.hold_seconds):
        record.disconnected = True
        early = Response(status_code=499)  # nobody is listening any more
    if early is not None:
        timing.status = early.status_code
        timing.end()
    return FaultOutcome(spec, record, early, timing)


class BadRequest(Exception):
    """Carries the error answer for a request a stand-in refuses before doing any work."""

    def __init__(self, response: JSONResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


class DroppedConnection(Response):
    """Starts a 200 answer, sends part of it, then returns without finishing.

    The ASGI server then closes the socket mid-body, which the client sees as a broken
    connection; this is the ``disconnect`` fault.
    """

    def __init__(self, partial: bytes, media_type: str) -> None:
        super().__init__(status_code=200, media_type=media_type)
        self.partial = partial
        del self.headers["content-length"]  # unknown length: chunked, so the cut is detectable

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.partial, "more_body": True})


def seconds_header(seconds: float) -> str:
    """Retry-After value: whole seconds when integral (what most servers send), else a decimal."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def _is_field(part: int | str) -> bool:
    # Pydantic puts union-member tags such as ``str`` or ``list[Block]`` into error locations.
    return isinstance(part, int) or not (part in {"str", "int", "float", "bool", "list", "dict"} or "[" in part)


def validation_message(exc: ValidationError, prefix: str = "", limit: int = 3) -> str:
    """``field.path: problem`` per failing field, e.g. ``max_tokens: Field required``.

    Errors from the branches of one union are merged (``a valid string or a valid list``), and a
    branch that failed deeper down wins over the shallow "wrong type" complaint of its sibling.
    """
    by_loc: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"] if _is_field(p))
        msg = err["msg"].removeprefix("Value error, ")
        if msg not in by_loc.setdefault(loc, []):
            by_loc[loc].append(msg)
    deepest = [loc for loc in by_loc if not any(o != loc and o.startswith(f"{loc}.") for o in by_loc)]
    parts = []
    for loc in deepest[:limit]:
        first, *rest = by_loc[loc]
        merged = " or ".join([first, *(m.removeprefix("Input should be ") for m in rest)])
        parts.append(f"{prefix}{loc}: {merged}" if loc else f"{prefix.rstrip('.')}: {merged}")
    return "; ".join(parts)


# --- control API -------------------------------------------------------------------------------


def _problem(message: str, errors: list[dict[str, Any]] | None = None) -> JSONResponse:
    return JSONResponse({"error": "invalid_control_request", "message": message, "errors": errors or []}, 422)


async def _parse(request: Request, model: type[M]) -> M | JSONResponse:
    raw = await request.body()
    try:
        data = json.loads(raw or b"{}")
    except ValueError as exc:
        return _problem(f"body is not valid JSON: {exc}")
    if not isinstance(data, dict):
        return _problem("body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _problem("; ".join(f"{e['loc'] or 'body'}: {e['msg']}" for e in errors), errors)


def control_routes(state: StandinState) -> list[BaseRoute]:
    async def add_fault(request: Request) -> Response:
        spec = await _parse(request, FaultSpec)
        if isinstance(spec, JSONResponse):
            return spec
        return JSONResponse(state.faults.add(spec).to_json(), 201)

    async def list_faults(_request: Request) -> Response:
        pending = state.faults.pending()
        return JSONResponse({"count": len(pending), "faults": pending})

    async def clear_faults(_request: Request) -> Response:
        return JSONResponse({"cleared": state.faults.clear()})

    async def requests_log(request: Request) -> Response:
        entries = state.log.select(request.query_params.get("provider"))
        return JSONResponse({"count": len(entries), "requests": entries})

    async def clear_requests(_request: Request) -> Response:
        state.log.entries.clear()
        return JSONResponse({"cleared": True})

    async def get_config(_request: Request) -> Response:
        return JSONResponse(state.knobs.to_json())

    async def set_config(request: Request) -> Response:
        spec = await _parse(request, ConfigSpec)
        if isinstance(spec, JSONResponse):
            return spec
        problem = spec.problem()
        if problem is not None:  # nothing is applied from a refused body
            loc, msg = problem
            return _problem(f"{loc}: {msg}", [{"loc": loc, "msg": msg}])
        state.knobs.apply(spec)
        return JSONResponse(state.knobs.to_json())

    async def timings(request: Request) -> Response:
        bounds = {"after": (0, 2**62), "limit": (1, TIMINGS_PAGE)}
        values = {"after": 0, "limit": TIMINGS_PAGE}
        for name, (lo, hi) in bounds.items():
            raw = request.query_params.get(name)
            if raw is None:
                continue
            if not raw.isdigit() or not lo <= int(raw) <= hi:
                msg = f"must be an integer from {lo} to {hi}, got {raw!r}"
                return _problem(f"{name}: {msg}", [{"loc": name, "msg": msg}])
            values[name] = int(raw)
        return JSONResponse(state.timings.page(values["after"], values["limit"]))

    async def clear_timings(_request: Request) -> Response:
        return JSONResponse({"cleared": state.timings.clear()})

    async def reset(_request: Request) -> Response:
        state.faults.clear()
        state.log.entries.clear()
        state.timings.clear()
        state.knobs = Knobs.from_env()
        return JSONResponse({"reset": True, "config": state.knobs.to_json()})

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok", "uptime_s": round(time.monotonic() - started, 3)})

    started = time.monotonic()
    return [
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/faults", add_fault, methods=["POST"]),
        Route("/_standin/faults", list_faults, methods=["GET"]),
        Route("/_standin/faults", clear_faults, methods=["DELETE"]),
        Route("/_standin/requests", requests_log, methods=["GET"]),
        Route("/_standin/requests", clear_requests, methods=["DELETE"]),
        Route("/_standin/config", get_config, methods=["GET"]),
        Route("/_standin/config", set_config, methods=["POST"]),
        Route("/_standin/timings", timings, methods=["GET"]),
        Route("/_standin/timings", clear_timings, methods=["DELETE"]),
        Route("/_standin/reset", reset, methods=["POST"]),
    ]
