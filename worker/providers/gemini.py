"""ModelProvider over google-genai (text, streaming text, and image models), with error classification."""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio.lowlevel
import httpx2
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from worker.core.errors import InvalidOutput, JobFailure, PermanentFailure, RateLimited, TransientFailure
from worker.core.ports import GeneratedImage, ModelUsage, TextRequest, UsageSink
from worker.providers import canned

DEFAULT_RETRY_AFTER = 5.0


def _retry_after(exc: genai_errors.APIError) -> float:
    headers = getattr(exc.response, "headers", None)
    raw = headers.get("retry-after") if headers is not None else None
    if raw is not None:
        try:
            return max(0.0, float(raw))
        except ValueError:
            pass
    # google.rpc.RetryInfo in the error details: {"retryDelay": "12s"}
    details: Any = exc.details
    error = details.get("error") if isinstance(details, dict) else None
    for item in (error or {}).get("details", []) if isinstance(error, dict) else []:
        delay = item.get("retryDelay") if isinstance(item, dict) else None
        match = re.fullmatch(r"(\d+(?:\.\d+)?)s", str(delay or ""))
        if match:
            return float(match.group(1))
    return DEFAULT_RETRY_AFTER


def classify(exc: BaseException) -> JobFailure | None:
    if isinstance(exc, genai_errors.APIError):
        code = exc.code or 0
        label = f"gemini {code} {exc.status or ''}".strip()
        if code == 429:
            return RateLimited(f"{label}: {exc.message}", retry_after=_retry_after(exc))
        if isinstance(exc, genai_errors.ServerError) or code >= 500 or code == 408:
            return TransientFailure(f"{label}: {exc.message}")
        return PermanentFailure(f"{label}: {exc.message}")
    if isinstance(exc, httpx2.HTTPError):  # google-genai raises raw transport errors
        return TransientFailure(f"gemini transport: {type(exc).__name__}: {exc}")
    return None


def usage_of(metadata: types.GenerateContentResponseUsageMetadata | None, images: int = 0) -> ModelUsage:
    """google-genai's usage metadata: the prompt count includes cached tokens; thinking tokens
    are billed as output."""
    if metadata is None:
        return ModelUsage(images=images)
    return ModelUsage(
        input_tokens=metadata.prompt_token_count or 0,
        output_tokens=(metadata.candidates_token_count or 0) + (metadata.thoughts_token_count or 0),
        cached_tokens=metadata.cached_content_token_count or 0,
        images=images,
    )


class GeminiProvider:
    name = "gemini"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout_seconds: float = 120.0,
        *,
        transport: httpx2.AsyncBaseTransport | None = None,  # the warm-up's canned answers
    ) -> None:
        # An explicit httpx2 transport: with aiohttp installed (the anthropic SDK's transport),
        # google-genai would switch to it, and there it sleeps 1-10 s and retries once on a
        # connection error by itself; retries belong to the worker.
        options = types.HttpOptions(
            base_url=base_url,
            timeout=int(timeout_seconds * 1000),  # milliseconds
            async_client_args={"transport": transport or httpx2.AsyncHTTPTransport()},
        )
        self.client = genai.Client(api_key=api_key, http_options=options)

    async def warm_up(self) -> None:
        """Each call once, offline, before the first job: a spare provider of the same SDK
        answered by ``canned.gemini`` (worker/providers/canned.py says why). httpx2's connection
        pool, which the canned transport skips, has anyio load its asyncio backend on its first
        request: that is done here too."""
        await anyio.lowlevel.checkpoint()
        spare = GeminiProvider("warm-up", canned.WARM_UP_BASE_URL, transport=httpx2.MockTransport(canned.gemini))
        request = TextRequest.ask("warm-up", "warm-up", max_tokens=1)
        try:
            await spare.generate_image(canned.WARM_UP_MODEL, "warm-up", "1:1")
            await spare.complete(canned.WARM_UP_MODEL, request)
            async for _piece in spare.stream(canned.WARM_UP_MODEL, request):
                pass
            with contextlib.suppress(RateLimited):
                await spare.generate_image(canned.WARM_UP_429, "warm-up", None)
        finally:
            await spare.close()

    @staticmethod
    def _contents(request: TextRequest) -> list[types.Content]:
        return [
            types.Content(role="model" if role == "assistant" else "user", parts=[types.Part(text=text)])
            for role, text in request.messages
        ]

    def _config(self, request: TextRequest) -> types.GenerateContentConfig:
        return types.GenerateContentConfig(system_instruction=request.system, max_output_tokens=request.max_tokens)

    async def complete(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> str:
        try:
            response = await self.client.aio.models.generate_content(
                model=model, contents=self._contents(request), config=self._config(request)
            )
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        if on_usage is not None:
            on_usage(usage_of(response.usage_metadata))
        return response.text or ""

    async def stream(self, model: str, request: TextRequest, on_usage: UsageSink | None = None) -> AsyncIterator[str]:
        metadata: types.GenerateContentResponseUsageMetadata | None = None
        try:
            chunks = await self.client.aio.models.generate_content_stream(
                model=model, contents=self._contents(request), config=self._config(request)
            )
            async for chunk in chunks:
                metadata = chunk.usage_metadata or metadata  # the last chunk has the totals
                if chunk.text:
                    yield chunk.text
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        if on_usage is not None:
            on_usage(usage_of(metadata))

    async def generate_image(
        self, model: str, prompt: str, aspect_ratio: str | None, on_usage: UsageSink | None = None
    ) -> GeneratedImage:
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"],
            image_config=types.ImageConfig(aspect_ratio=aspect_ratio) if aspect_ratio else None,
        )
        try:
            response = await self.client.aio.models.generate_content(model=model, contents=prompt, config=config)
        except Exception as exc:
            raise (classify(exc) or exc) from exc
        for candidate in response.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data and part.inline_data.data:
                    if on_usage is not None:
                        on_usage(usage_of(response.usage_metadata, images=1))
                    return GeneratedImage(part.inline_data.data, part.inline_data.mime_type or "image/png")
        if on_usage is not None:  # billed even without an image
            on_usage(usage_of(response.usage_metadata))
        raise InvalidOutput(f"gemini {model} answered without an image")

    async def close(self) -> None:
        await self.client.aio.aclose()
