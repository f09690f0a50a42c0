"""What a provider request gets from the stand-ins besides its answer: the shared state (faults,
knobs, logs), a fault taken from the queue or the load knobs (an error, a hold, invalid JSON, a
dropped connection), and request-validation messages in the providers' style.

Tests and demos drive a worker they do not control; they shape what the worker sees by queueing
faults (``knobs.FaultQueue``) through the control API (``control.py``); benchmarks use the load
knobs and read the timing log (``request_log.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from devstack.models.knobs import ERROR_KINDS, FaultQueue, FaultSpec, Knobs, Provider
from devstack.models.request_log import RequestLog, RequestRecord, Timing, TimingLog, logged_headers


@dataclass
class StandinState:
    faults: FaultQueue = field(default_factory=FaultQueue)
    log: RequestLog = field(default_factory=RequestLog)
    knobs: Knobs = field(default_factory=Knobs.from_env)
    timings: TimingLog = field(default_factory=TimingLog)


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
    if spec is not None and (spec.kind in ERROR_KINDS or (spec.kind == "stream_error" and not stream)):
        record.status = spec.status()
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
