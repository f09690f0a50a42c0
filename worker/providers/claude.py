"""ModelProvider over the anthropic SDK (AsyncAnthropic, Messages API), with error classification."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anthropic
import httpx2
import pydantic
from anthropic.types import MessageDeltaUsage, MessageParam, Usage
from anthropic.types.assistant_message_param import AssistantMessageParam
from anthropic.types.user_message_param import UserMessageParam

from worker.core.errors import (
    JobFailure,
    PermanentFailure,
    RateLimited,
    TransientFailure,
    UnsupportedOperation,
    describe_validation,
)
from worker.core.ports import GeneratedImage, ModelUsage, TextRequest, UsageSink

DEFAULT_RETRY_AFTER = 5.0


def retry_after(headers: Any, default: float = DEFAULT_RETRY_AFTER) -> float:
    raw = headers.get("retry-after") if headers is not None else None
    try:
        return max(0.0, float(raw)) if raw is not None else default
    except ValueError:
        return default


def classify(exc: BaseException) -> JobFailure | None:
    """What the queue should do about an anthropic/httpx2 exception; None if it is not one."""
    if isinstance(exc, anthropic.APIStatusError):
        status = exc.status_code
        detail = _message(exc)
        if status == 429 or status == 529:  # rate limited / overloaded: come back later
            return RateLimited(
                f"anthropic {status}: {detail}", retry_after=retry_after(exc.response.headers), status=status
            )
        if status >= 500 or status in (408, 409):
            return TransientFailure(f"anthropic {status}: {detail}")
        return PermanentFailure(f"anthropic {status}: {detail}")
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


def streamed_usage(start: Usage, delta: MessageDeltaUsage | None) -> ModelUsage:
    """A raw stream's usage, summed as the SDK's ``MessageStream`` sums it: a ``message_delta``'s
    counts are cumulative totals that replace ``message_start``'s, the optional ones only when
    present."""
    if delta is None:
        return usage_of(start)
    latest = {
        "output_tokens": delta.output_tokens,
        "input_tokens": delta.input_tokens,
        "cache_creation_input_tokens": delta.cache_creation_input_tokens,
        "cache_read_input_tokens": delta.cache_read_input_tokens,
    }
    return usage_of(start.model_copy(update={k: v for k, v in latest.items() if v is not None}))


class _Block(pydantic.BaseModel):
    type: str
    text: str | None = None  # only text blocks are read; other kinds (tool use, thinking) pass by


class _Usage(pydantic.BaseModel):
    # Only the counts: the SDK's Usage also checks fields such as service_tier against the
    # values it knows, and a new one would fail an answer already paid for.
    input_tokens: int
    output_tokens: int
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


def _message(exc: anthropic.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc)


class ClaudeProvider:
    name = "anthropic"

    def __init__(self, api_key: str, base_url: str | None = None, timeout_seconds: float = 120.0) -> None:
        # max_retries=0: retries belong to the worker (quick in-call retries, then the queue).
        # The SDK's aiohttp transport (the `aiohttp` extra): half the CPU per request of its
        # default httpx2/httpcore pool under 200 concurrent requests (bench/FIXES.md). Its
        # session is made on the first request, in the running loop.
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            max_retries=0,
            timeout=timeout_seconds,
            http_client=anthropic.DefaultAioHttpClient(timeout=timeout_seconds),
        )

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
        # The raw event stream (stream=True), not the messages.stream() helper: the helper builds a
        # snapshot of the whole message and an event object for every delta, a third of a streamed
        # answer's CPU (4.7 -> 3.2 ms per answer, bench/FIXES.md). Only the text and the usage are needed.
        start: Usage | None = None
        delta: MessageDeltaUsage | None = None
        try:
            async with await self.client.messages.create(
                model=model,
                max_tokens=request.max_tokens,
                system=request.system,
                messages=self._messages(request),
                stream=True,
            ) as events:
                async for event in events:
                    if event.type == "content_block_delta":
                        if event.delta.type == "text_delta":
                            yield event.delta.text
                    elif event.type == "message_start":
                        start = event.message.usage
                    elif event.type == "message_delta":
                        delta = event.usage
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        if start is None:  # a stream that ended before its first event: nothing can be billed or trusted
            raise TransientFailure("anthropic: the stream ended without a message_start event")
        if on_usage is not None:
            on_usage(streamed_usage(start, delta))

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        raise UnsupportedOperation(
            "the anthropic provider does not generate images; use PROVIDER_GENERATE_IMAGE=gemini"
        )

    async def close(self) -> None:
        await self.client.close()
