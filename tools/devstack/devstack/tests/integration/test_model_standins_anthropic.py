"""The Anthropic Messages stand-in, driven through the real ``anthropic`` SDK (messages, streams,
the SSE wire format, faults and request validation). Every test starts from a clean slate
(``POST /_standin/reset``) and shapes failures through the control API, the way the worker's own
tests and the demo do."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from devstack.tests.integration.standin_support import (
    DESIGN_PROMPT,
    EDITS_PROMPT,
    Standin,
    ask_claude,
    claude,
    gemini,
    server,
    standin,
    text_of,
)

pytestmark = pytest.mark.integration
__all__ = ["claude", "gemini", "server", "standin"]  # fixtures used below


# --- Anthropic ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_claude_message_is_parsed_by_the_sdk(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    message = await ask_claude(claude, DESIGN_PROMPT, system="You design Figma screens.")

    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == "claude-haiku-4-5"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    tree = json.loads(text_of(message))
    assert tree["type"] == "FRAME"
    assert "Coffee" in json.dumps(tree)

    [logged] = standin.requests("anthropic")
    assert logged["job_kind"] == "generate_design"
    assert logged["status"] == 200
    # anthropic 2.x sends the API key as a bearer token, not as x-api-key.
    assert logged["headers"]["credential"] == "authorization"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", logged["headers"]["anthropic-version"])
    assert logged["body"]["system"] == "You design Figma screens."
    assert logged["body"]["max_tokens"] == 4096


@pytest.mark.asyncio
async def test_claude_stream_deltas_rebuild_the_final_text(claude: anthropic.AsyncAnthropic) -> None:
    async with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=4096, messages=[{"role": "user", "content": EDITS_PROMPT}]
    ) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert len(deltas) > 10  # live partial output, not one lump
    assert "".join(deltas) == text_of(final)
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 1  # message_delta usage reached the snapshot
    variants = json.loads(text_of(final))["variants"]
    assert len(variants) == 3
    # Streaming and non-streaming give the same answer for the same input.
    assert text_of(await ask_claude(claude, EDITS_PROMPT)) == text_of(final)


@pytest.mark.asyncio
async def test_claude_sse_wire_format(standin: Standin) -> None:
    headers = {"x-api-key": "test", "anthropic-version": "2023-06-01"}
    body = {"model": "m", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with (
        httpx.AsyncClient(base_url=standin.url) as http,
        http.stream("POST", "/v1/messages", json=body, headers=headers) as response,
    ):
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("event: ") async for line in response.aiter_lines() if line.startswith("event:")]

    assert events[:3] == ["message_start", "content_block_start", "ping"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(events[3:-3]) == {"content_block_delta"}


@pytest.mark.asyncio
async def test_claude_max_tokens_truncates(claude: anthropic.AsyncAnthropic) -> None:
    message = await ask_claude(claude, DESIGN_PROMPT, max_tokens=10)
    assert message.stop_reason == "max_tokens"
    assert len(text_of(message)) == 40


@pytest.mark.asyncio
async def test_claude_429_carries_retry_after(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="429", retry_after=7)

    with pytest.raises(anthropic.RateLimitError) as caught:
        await ask_claude(claude, DESIGN_PROMPT)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"

    await ask_claude(claude, DESIGN_PROMPT)  # the fault was used up
    assert [(r["fault"], r["status"]) for r in standin.requests()] == [("429", 429), (None, 200)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("529", anthropic.OverloadedError),
        ("500", anthropic.InternalServerError),
        ("503", anthropic.ServiceUnavailableError),
    ],
)
async def test_claude_server_errors_map_to_sdk_types(
    claude: anthropic.AsyncAnthropic, standin: Standin, kind: str, error: type[anthropic.APIStatusError]
) -> None:
    standin.fault(provider="anthropic", kind=kind)
    with pytest.raises(error) as caught:
        await ask_claude(claude, "hello")
    assert caught.value.status_code == int(kind)
    assert "retry-after" not in caught.value.response.headers


@pytest.mark.asyncio
async def test_sdk_retry_honours_retry_after(standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="429", retry_after=0.01)
    async with anthropic.AsyncAnthropic(base_url=standin.url, api_key="test", max_retries=1) as client:
        message = await ask_claude(client, DESIGN_PROMPT)
    assert message.stop_reason == "end_turn"
    assert [r["status"] for r in standin.requests()] == [429, 200]


@pytest.mark.asyncio
async def test_fault_count_and_match_select_requests(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    created = standin.fault(provider="any", kind="500", count=2, match="job_kind: generate_edits")
    assert created["remaining"] == 2

    await ask_claude(claude, DESIGN_PROMPT)  # does not match: untouched
    assert standin.pending()[0]["remaining"] == 2
    with pytest.raises(anthropic.InternalServerError):
        await ask_claude(claude, EDITS_PROMPT)
    assert standin.pending()[0]["remaining"] == 1
    with pytest.raises(anthropic.InternalServerError):
        await ask_claude(claude, EDITS_PROMPT)
    assert standin.pending() == []
    await ask_claude(claude, EDITS_PROMPT)

    assert [r["fault"] for r in standin.requests()] == [None, "500", "500", None]


@pytest.mark.asyncio
async def test_claude_invalid_json_fault(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="invalid_json")
    broken = text_of(await ask_claude(claude, DESIGN_PROMPT))
    with pytest.raises(json.JSONDecodeError):
        json.loads(broken)
    json.loads(text_of(await ask_claude(claude, DESIGN_PROMPT)))  # the repair round gets good JSON


@pytest.mark.asyncio
async def test_claude_timeout_fault(standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="timeout", hold_seconds=30)
    async with anthropic.AsyncAnthropic(base_url=standin.url, api_key="test", max_retries=0, timeout=0.5) as client:
        with pytest.raises(anthropic.APITimeoutError):
            await ask_claude(client, DESIGN_PROMPT)
    # The held request notices the client left instead of sleeping out its 30 s.
    deadline = time.monotonic() + 10
    while not standin.requests()[0]["disconnected"]:
        assert time.monotonic() < deadline, "the held request never saw the client disconnect"
        time.sleep(0.05)
    assert standin.requests()[0]["fault"] == "timeout"


async def _stream_edits(claude: anthropic.AsyncAnthropic, received: list[str]) -> None:
    """Stream an edits answer through the SDK's helper, keeping each text piece as it comes."""
    async with claude.messages.stream(
        model="claude-haiku-4-5", max_tokens=4096, messages=[{"role": "user", "content": EDITS_PROMPT}]
    ) as stream:
        async for text in stream.text_stream:
            received.append(text)


@pytest.mark.asyncio
async def test_claude_disconnect_fault(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="disconnect", count=2)
    with pytest.raises(anthropic.APIConnectionError):
        await ask_claude(claude, DESIGN_PROMPT)

    received: list[str] = []
    # Mid-stream, the SDK lets the transport error through unwrapped.
    with pytest.raises(httpx2.RemoteProtocolError):
        await _stream_edits(claude, received)
    assert received  # some output arrived before the connection dropped


@pytest.mark.asyncio
async def test_claude_stream_error_fault_breaks_a_stream_off_after_the_200(
    claude: anthropic.AsyncAnthropic, standin: Standin
) -> None:
    standin.fault(provider="anthropic", kind="stream_error", count=2)
    received: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        await _stream_edits(claude, received)
    assert received  # part of the answer came first
    # The answer was a 200: the error is in the event, with the API's error shape.
    assert caught.value.status_code == 200
    assert caught.value.body == {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    # A request that does not stream gets the overloaded status itself.
    with pytest.raises(anthropic.InternalServerError) as plain:
        await ask_claude(claude, DESIGN_PROMPT)
    assert plain.value.status_code == 529
    assert [(r["fault"], r["status"]) for r in standin.requests("anthropic")] == [
        ("stream_error", 200),
        ("stream_error", 529),
    ]


@pytest.mark.asyncio
async def test_claude_bad_request_is_400_with_a_precise_message(claude: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await ask_claude(claude, "hi", max_tokens=0)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert caught.value.body["error"]["message"] == "max_tokens: Input should be greater than or equal to 1"


@pytest.mark.parametrize(
    ("body", "headers", "status", "message"),
    [
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, None, 400, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 5}, None, 400, "messages: Field required"),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "bot", "content": "x"}]},
            None,
            400,
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            {"x-api-key": "test"},
            400,
            "anthropic-version: header is required",
        ),
        (
            {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
            {"anthropic-version": "2023-06-01"},
            401,
            "missing credentials: send an x-api-key header or Authorization: Bearer <key>",
        ),
    ],
)
def test_claude_request_validation(
    standin: Standin, body: dict[str, Any], headers: dict[str, str] | None, status: int, message: str
) -> None:
    sent = headers if headers is not None else {"x-api-key": "test", "anthropic-version": "2023-06-01"}
    response = standin.control.post("/v1/messages", json=body, headers=sent)
    assert response.status_code == status
    assert response.json()["type"] == "error"
    assert response.json()["error"]["message"] == message
    assert standin.requests()[0]["status"] == status
