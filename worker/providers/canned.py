"""Canned model answers for the providers' start-up warm-up (never a real job's answer).

The model SDKs do part of their work on their first call: google-genai builds its pydantic
models then (they are ``defer_build``), and the anthropic SDK builds its ~90 error-detail models
on the first error answer. Under load the first jobs of a fresh worker paid 40–150 ms for it
while every other job of the process waited (bench/FIXES.md). ``warm_up`` runs each call of a
provider once at start-up on a spare client whose transport answers from here (httpx2's
``MockTransport``: nothing leaves the process), so that work is done before the first job.

The model name picks the answer: ``WARM_UP_MODEL`` succeeds, ``WARM_UP_429`` is rate limited.
"""

from __future__ import annotations

import base64
import json

import httpx2

WARM_UP_MODEL = "warm-up"
WARM_UP_429 = "warm-up-429"
WARM_UP_BASE_URL = "http://warm-up.invalid"  # MockTransport answers; the name is never resolved
_PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
).decode()
_SSE = {"content-type": "text/event-stream"}


def _sse(events: list[tuple[str | None, dict[str, object]]]) -> bytes:
    lines = [(f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events]
    return "".join(lines).encode()


def _rate_limited(body: dict[str, object]) -> httpx2.Response:
    return httpx2.Response(429, headers={"retry-after": "1"}, json=body)


def claude(request: httpx2.Request) -> httpx2.Response:
    """``POST /v1/messages``: a message, its stream, or a 429 with the API's error body."""
    params = json.loads(request.content or b"{}")
    if params.get("model") == WARM_UP_429:
        return _rate_limited({"type": "error", "error": {"type": "rate_limit_error", "message": "warm-up"}})
    usage = {"input_tokens": 1, "output_tokens": 1}
    message = {"id": "msg_warm_up", "type": "message", "role": "assistant", "model": WARM_UP_MODEL}
    if not params.get("stream"):
        text = {"content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "usage": usage}
        return httpx2.Response(200, json=message | text)
    delta = {"type": "text_delta", "text": "ok"}
    events: list[tuple[str | None, dict[str, object]]] = [
        ("message_start", {"type": "message_start", "message": message | {"content": [], "usage": usage}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": usage}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return httpx2.Response(200, headers=_SSE, content=_sse(events))


def gemini(request: httpx2.Request) -> httpx2.Response:
    """``models/{model}:generateContent`` and ``:streamGenerateContent``: an image or text, or a 429."""
    path = request.url.path
    if f"/{WARM_UP_429}:" in path:
        return _rate_limited({"error": {"code": 429, "message": "warm-up", "status": "RESOURCE_EXHAUSTED"}})
    image = b'"IMAGE"' in (request.content or b"")
    part = {"inlineData": {"mimeType": "image/png", "data": _PNG_1PX}} if image else {"text": "ok"}
    answer: dict[str, object] = {
        "candidates": [{"content": {"role": "model", "parts": [part]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1, "totalTokenCount": 2},
    }
    if path.endswith(":streamGenerateContent"):
        return httpx2.Response(200, headers=_SSE, content=_sse([(None, answer)]))
    return httpx2.Response(200, json=answer)
