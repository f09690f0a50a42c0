"""ModelProvider over the anthropic SDK (AsyncAnthropic, Messages API), with error classification."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from typing import Any, Literal

import aiohttp
import anthropic
import httpx2
import pydantic
from anthropic.types import MessageParam
from anthropic.types.assistant_message_param import AssistantMessageParam
from anthropic.types.user_message_param import UserMessageParam
from opentelemetry import trace

from worker.core.errors import (
    JobFailure,
    PermanentFailure,
    RateLimited,
    TransientFailure,
    UnsupportedOperation,
    describe_validation,
)
from worker.core.ports import GeneratedImage, ModelUsage, TextRequest, UsageSink
from worker.providers import canned

DEFAULT_RETRY_AFTER = 5.0


def retry_after(headers: Any, default: float = DEFAULT_RETRY_AFTER) -> float:
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def _by_status(status: int, detail: str, headers: Any) -> JobFailure:
    if status == 429 or status == 529:  # rate limited / overloaded: come back later
        return RateLimited(f"anthropic {status}: {detail}", retry_after=retry_after(headers), status=status)
    if status >= 500 or status in (408, 409):
        return TransientFailure(f"anthropic {status}: {detail}")
    return PermanentFailure(f"anthropic {status}: {detail}")


def classify(exc: BaseException) -> JobFailure | None:
    """What the queue should do about an anthropic/httpx2 exception; None if it is not one."""
    if isinstance(exc, anthropic.APIStatusError):
        return _by_status(exc.status_code, _message(exc), exc.response.headers)
    if isinstance(exc, anthropic.APIConnectionError):  # includes APITimeoutError
        return TransientFailure(f"anthropic: {type(exc).__name__}: {exc}")
    # The SDK lets some transport errors through unwrapped: httpx2's, and an aiohttp error its
    # aiohttp transport does not map to one of those.
    if isinstance(exc, (httpx2.HTTPError, aiohttp.ClientError)):
        return TransientFailure(f"anthropic transport: {type(exc).__name__}: {exc}")
    return None


def usage_of(usage: Any) -> ModelUsage:
    """An anthropic ``Usage``: input_tokens excludes cache reads and writes, which come beside it."""
    read = usage.cache_read_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return ModelUsage(
        input_tokens=usage.input_tokens + read + written, output_tokens=usage.output_tokens, cached_tokens=read
    )


class _Block(pydantic.BaseModel):
    # An answer's content block, or a stream's block delta: only the text kinds are read; the
    # others (tool use, thinking) pass by.
    type: str
    text: str | None = None


class _Usage(pydantic.BaseModel):
    # Only the counts: the SDK's Usage also checks fields such as service_tier against the
    # values it knows, and a new one would fail an answer already paid for.
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _DeltaUsage(pydantic.BaseModel):
    # message_delta's counts: cumulative totals, each only when present.
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_read_input_tokens: int | None = None


class _Answer(pydantic.BaseModel):
    """The parts of a Messages API response the worker reads (its other fields are ignored)."""

    content: list[_Block]
    usage: _Usage


def read_answer(body: bytes) -> tuple[str, ModelUsage]:
    """A non-streamed response's text and usage, validated straight from its JSON in one pass.
    The SDK's ``Message`` is built field by field in Python (``construct_type``): a quarter of
    a call's CPU in the worker's profile (bench/FIXES.md). A body that is not a message is the
    transport's fault (a proxy's page, a cut response): worth another attempt."""
    try:
        answer = _Answer.model_validate_json(body)
    except pydantic.ValidationError as exc:
        raise TransientFailure(f"anthropic: unreadable response: {describe_validation(exc)}") from exc
    text = "".join(block.text or "" for block in answer.content if block.type == "text")
    return text, usage_of(answer.usage)


class _BlockDelta(pydantic.BaseModel):
    delta: _Block


class _StartMessage(pydantic.BaseModel):
    usage: _Usage


class _Start(pydantic.BaseModel):
    message: _StartMessage


class _MessageDelta(pydantic.BaseModel):
    usage: _DeltaUsage | None = None


class _ErrorDetail(pydantic.BaseModel):
    type: str = "unknown"
    message: str = ""


class _StreamError(pydantic.BaseModel):
    error: _ErrorDetail = _ErrorDetail()


# An `error` event comes after the 200, so its status is in its type (the API's error types,
# docs.anthropic.com "Errors"). The request was accepted: a type not listed is the API's trouble.
_STREAM_ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "overloaded_error": 529,
}


class StreamReader:
    """What the worker reads from a raw Messages stream: each event's text, then the usage.

    Each event is validated straight from its JSON for only what is read: the SDK's event
    objects (``construct_type`` per event) were ~4 % of the AI worker's CPU (bench/FIXES.md). An
    ``error`` event is classified by its error type: the SDK raised it as a status error of the
    200 answer, which read as permanent, so an overloaded model mid-stream failed the job."""

    def __init__(self) -> None:
        self.start: _Usage | None = None
        self.delta: _DeltaUsage | None = None

    def text_of(self, event: str | None, data: str) -> str | None:
        """The text an event carries (None for the others); raises the failure an error event
        stands for, TransientFailure for an event that cannot be read."""
        try:
            if event == "content_block_delta":
                delta = _BlockDelta.model_validate_json(data).delta
                return delta.text if delta.type == "text_delta" else None
            if event == "message_start":
                self.start = _Start.model_validate_json(data).message.usage
            elif event == "message_delta":
                self.delta = _MessageDelta.model_validate_json(data).usage or self.delta
            elif event == "error":
                error = _StreamError.model_validate_json(data).error
                status = _STREAM_ERROR_STATUS.get(error.type, 500)
                raise _by_status(status, f"{error.type} during the stream: {error.message}", None)
        except pydantic.ValidationError as exc:
            raise TransientFailure(f"anthropic: unreadable {event} event: {describe_validation(exc)}") from exc
        return None

    def usage(self) -> ModelUsage:
        """Summed as the SDK's ``MessageStream`` sums it: a ``message_delta``'s counts are
        cumulative totals that replace ``message_start``'s, the optional ones only when present."""
        if self.start is None:  # a stream that ended before its first event: nothing can be billed or trusted
            raise TransientFailure("anthropic: the stream ended without a message_start event")
        latest = self.delta.model_dump(exclude_none=True) if self.delta is not None else {}
        return usage_of(self.start.model_copy(update=latest))


async def stream_text(client: anthropic.AsyncAnthropic, reader: StreamReader, **params: Any) -> AsyncIterator[str]:
    """A streamed answer's text pieces, read by ``reader`` from the raw server-sent events (the
    SDK's public ``with_streaming_response`` and ``AsyncStream.raw_events``)."""
    async with client.messages.with_streaming_response.create(stream=True, **params) as response:
        async for sse in anthropic.AsyncStream.raw_events(response.http_response):
            piece = reader.text_of(sse.event, sse.data)
            if piece:
                yield piece


def _message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc)


def spans_option() -> Literal[False] | None:
    """The SDK's ``open_telemetry`` option: its default (a span per call, and its own
    ``ANTHROPIC_OPEN_TELEMETRY*`` variables) when a tracer provider is registered before the
    worker starts (``opentelemetry-instrument``, or ``OTEL_PYTHON_TRACER_PROVIDER``); off
    otherwise. Without one the spans record nothing, yet the SDK still built each call's span
    attributes and trace headers: ~2 % of the AI worker's CPU (bench/FIXES.md)."""
    if os.environ.get("OTEL_PYTHON_TRACER_PROVIDER"):
        return None
    return None if not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider) else False


class ClaudeProvider:
    name = "anthropic"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 120.0,
        *,
        http_client: httpx2.AsyncClient | None = None,  # the warm-up's canned answers
    ) -> None:
        # max_retries=0: retries belong to the worker (quick in-call retries, then the queue).
        # The SDK's aiohttp transport (the `aiohttp` extra): half the CPU per request of its
        # default httpx2/httpcore pool under 200 concurrent requests (bench/FIXES.md). Its
        # session is made on the first request, in the running loop.
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
            http_client=http_client or anthropic.DefaultAioHttpClient(timeout=timeout_seconds),
            open_telemetry=spans_option(),
        )

    async def warm_up(self) -> None:
        """Each call once, offline, before the first job: a spare provider of the same SDK
        answered by ``canned.claude`` (worker/providers/canned.py says why)."""
        transport = httpx2.MockTransport(canned.claude)
        spare = ClaudeProvider("warm-up", canned.WARM_UP_BASE_URL, http_client=httpx2.AsyncClient(transport=transport))
        request = TextRequest.ask("warm-up", "warm-up", max_tokens=1)
        try:
            await spare.complete(canned.WARM_UP_MODEL, request)
            async for _piece in spare.stream(canned.WARM_UP_MODEL, request):
                pass
            with contextlib.suppress(RateLimited):
                await spare.complete(canned.WARM_UP_429, request)
        finally:
            await spare.close()

    @staticmethod
    def _messages(request: TextRequest) -> list[MessageParam]:
        out: list[MessageParam] = []
        for role, text in request.messages:
            if role == "assistant":
                out.append(AssistantMessageParam(role="assistant", content=text))
            else:
                out.append(UserMessageParam(role="user", content=text))
        return out

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str:
        # The raw response (status errors are still raised as the SDK's), read by read_answer.
        try:
            response = await self.client.messages.with_raw_response.create(
                model=model, max_tokens=request.max_tokens, system=request.system, messages=self._messages(request)
            )
            body = await response.read()
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        text, usage = read_answer(body)
        if on_usage is not None:
            on_usage(usage)
        return text

    async def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]:
        # The raw events, not the messages.stream() helper (a snapshot of the whole message and an
        # event object per delta: 4.7 -> 3.1 ms per answer) nor the SDK's event objects
        # (StreamReader): only the text and the usage are needed (bench/FIXES.md).
        reader = StreamReader()
        messages = self._messages(request)
        try:
            async for piece in stream_text(
                self.client,
                reader,
                model=model,
                max_tokens=request.max_tokens,
                system=request.system,
                messages=messages,
            ):
                yield piece
        except JobFailure:
            raise
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        usage = reader.usage()
        if on_usage is not None:
            on_usage(usage)

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        raise UnsupportedOperation(
            "the anthropic provider does not generate images; use PROVIDER_GENERATE_IMAGE=gemini"
        )

    async def close(self) -> None:
        await self.client.close()
