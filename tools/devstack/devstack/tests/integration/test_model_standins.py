"""The model stand-ins, driven through the real ``anthropic`` and ``google-genai`` SDKs.

A stand-in server runs in-process on a free loopback port for this module; every test starts
from a clean slate (``POST /_standin/reset``) and shapes failures through the control API, the
way the worker's own tests and the demo will.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import httpx2
import pytest
import pytest_asyncio
import uvicorn
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from devstack.models import create_app
from devstack.models.content import PNG_SIGNATURE

pytestmark = pytest.mark.integration

DESIGN_PROMPT = "job_kind: generate_design\nA pricing page for a coffee subscription service"
EDITS_PROMPT = 'job_kind: generate_edits\nRewrite this button copy: "Start your free trial today"'


@dataclass(frozen=True)
class Standin:
    url: str
    control: httpx.Client

    def fault(self, **spec: Any) -> dict[str, Any]:
        response = self.control.post("/_standin/faults", json=spec)
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else {}
        entries: list[dict[str, Any]] = self.control.get("/_standin/requests", params=params).json()["requests"]
        return entries

    def pending(self) -> list[dict[str, Any]]:
        faults: list[dict[str, Any]] = self.control.get("/_standin/faults").json()["faults"]
        return faults


@pytest.fixture(scope="module")
def server() -> Iterator[Standin]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; the bound socket is handed to uvicorn
    host, port = sock.getsockname()
    config = uvicorn.Config(create_app(), log_level="warning", timeout_graceful_shutdown=1)
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started:
        assert thread.is_alive(), "stand-in server thread died"
        assert time.monotonic() < deadline, "stand-in server did not start"
        time.sleep(0.02)
    url = f"http://{host}:{port}"
    with httpx.Client(base_url=url, timeout=10) as control:
        yield Standin(url, control)
    instance.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture
def standin(server: Standin) -> Standin:
    server.control.post("/_standin/reset").raise_for_status()
    return server


@pytest_asyncio.fixture
async def claude(standin: Standin) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # No SDK retries: the queue owns retries, and tests must see every fault surface.
    async with anthropic.AsyncAnthropic(base_url=standin.url, api_key="test", max_retries=0) as client:
        yield client


@pytest_asyncio.fixture
async def gemini(standin: Standin) -> AsyncIterator[genai.Client]:
    client = genai.Client(api_key="test", http_options=genai_types.HttpOptions(base_url=standin.url))
    yield client
    await client.aio.aclose()


async def ask_claude(client: anthropic.AsyncAnthropic, text: str, **kwargs: Any) -> anthropic.types.Message:
    message: anthropic.types.Message = await client.messages.create(
        model="claude-haiku-4-5",
        max_tokens=kwargs.pop("max_tokens", 4096),
        messages=[{"role": "user", "content": text}],
        **kwargs,
    )
    return message


def parts_of(response: genai_types.GenerateContentResponse) -> list[genai_types.Part]:
    assert response.candidates, "no candidates"
    candidate_content = response.candidates[0].content
    assert candidate_content is not None, "candidate without content"
    assert candidate_content.parts, "content without parts"
    return candidate_content.parts


def text_of(message: anthropic.types.Message) -> str:
    block = message.content[0]
    assert block.type == "text"
    return block.text


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


@pytest.mark.asyncio
async def test_claude_disconnect_fault(claude: anthropic.AsyncAnthropic, standin: Standin) -> None:
    standin.fault(provider="anthropic", kind="disconnect", count=2)
    with pytest.raises(anthropic.APIConnectionError):
        await ask_claude(claude, DESIGN_PROMPT)

    received: list[str] = []

    async def consume() -> None:
        async with claude.messages.stream(
            model="claude-haiku-4-5", max_tokens=4096, messages=[{"role": "user", "content": EDITS_PROMPT}]
        ) as stream:
            async for text in stream.text_stream:
                received.append(text)

    # Mid-stream, the SDK lets the transport error through unwrapped.
    with pytest.raises(httpx2.RemoteProtocolError):
        await consume()
    assert received  # some output arrived before the connection dropped


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


# --- Gemini ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_gemini_image_model_returns_a_png(gemini: genai.Client, standin: Standin) -> None:
    prompt = "job_kind: generate_image\nA red fox in fresh snow, flat illustration"
    response = await gemini.aio.models.generate_content(model="gemini-2.5-flash-image", contents=prompt)

    parts = parts_of(response)
    assert response.candidates
    assert response.candidates[0].finish_reason == genai_types.FinishReason.STOP
    images = [p.inline_data for p in parts if p.inline_data]
    assert len(images) == 1
    assert images[0].mime_type == "image/png"
    assert images[0].data
    assert images[0].data.startswith(PNG_SIGNATURE)
    assert any(p.text for p in parts)
    assert response.usage_metadata
    assert response.usage_metadata.total_token_count

    again = await gemini.aio.models.generate_content(model="gemini-2.5-flash-image", contents=prompt)
    assert [p.inline_data.data for p in parts_of(again) if p.inline_data] == [images[0].data]

    logged = standin.requests("gemini")
    assert [r["job_kind"] for r in logged] == ["generate_image", "generate_image"]
    assert logged[0]["headers"]["credential"] == "x-goog-api-key"
    assert logged[0]["path"] == "/v1/models/gemini-2.5-flash-image:generateContent"


@pytest.mark.asyncio
async def test_gemini_image_only_modality_has_no_text_part(gemini: genai.Client) -> None:
    config = genai_types.GenerateContentConfig(
        response_modalities=["IMAGE"], image_config=genai_types.ImageConfig(aspect_ratio="16:9")
    )
    response = await gemini.aio.models.generate_content(
        model="gemini-2.5-flash-image", contents="job_kind: generate_image\nA lighthouse at dusk", config=config
    )
    parts = parts_of(response)
    assert [p.text for p in parts] == [None]
    data = parts[0].inline_data.data if parts[0].inline_data else None
    assert data is not None
    assert data.startswith(PNG_SIGNATURE)
    assert data[16:24] == (256).to_bytes(4, "big") + (144).to_bytes(4, "big")  # IHDR width, height


@pytest.mark.asyncio
async def test_gemini_text_on_v1beta_with_system_instruction(standin: Standin) -> None:
    options = genai_types.HttpOptions(base_url=standin.url, api_version="v1beta")
    client = genai.Client(api_key="test", http_options=options)
    try:
        response = await client.aio.models.generate_content(
            model="gemini-2.5-flash",
            contents="A pricing page for a coffee subscription service",
            config=genai_types.GenerateContentConfig(system_instruction="job_kind: generate_design"),
        )
    finally:
        await client.aio.aclose()

    assert response.text is not None
    assert json.loads(response.text)["type"] == "FRAME"
    [logged] = standin.requests()
    assert logged["path"].startswith("/v1beta/models/gemini-2.5-flash:")
    assert logged["job_kind"] == "generate_design"


@pytest.mark.asyncio
async def test_gemini_stream_chunks_rebuild_the_text(gemini: genai.Client) -> None:
    chunks = [
        chunk
        async for chunk in await gemini.aio.models.generate_content_stream(
            model="gemini-2.5-flash", contents=EDITS_PROMPT
        )
    ]
    whole = await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents=EDITS_PROMPT)

    assert len(chunks) > 10
    assert "".join(c.text or "" for c in chunks) == whole.text
    last = chunks[-1].candidates
    assert last
    assert last[0].finish_reason == genai_types.FinishReason.STOP


@pytest.mark.asyncio
async def test_gemini_429_is_resource_exhausted(gemini: genai.Client, standin: Standin) -> None:
    standin.fault(provider="gemini", kind="429", retry_after=12)
    with pytest.raises(genai_errors.ClientError) as caught:
        await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.response.headers["retry-after"] == "12"
    details = caught.value.details["error"]["details"]
    assert {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"} in details


@pytest.mark.asyncio
@pytest.mark.parametrize(("kind", "status"), [("500", "INTERNAL"), ("503", "UNAVAILABLE")])
async def test_gemini_server_errors(gemini: genai.Client, standin: Standin, kind: str, status: str) -> None:
    standin.fault(provider="gemini", kind=kind)
    with pytest.raises(genai_errors.ServerError) as caught:
        await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert (caught.value.code, caught.value.status) == (int(kind), status)


@pytest.mark.asyncio
async def test_gemini_invalid_json_fault_on_an_image_model_drops_the_image(
    gemini: genai.Client, standin: Standin
) -> None:
    standin.fault(provider="gemini", kind="invalid_json")
    response = await gemini.aio.models.generate_content(
        model="gemini-2.5-flash-image", contents="job_kind: generate_image a cat"
    )
    parts = parts_of(response)
    assert not any(p.inline_data for p in parts)
    assert parts[0].text


@pytest.mark.asyncio
async def test_provider_specific_faults_skip_the_other_provider(
    claude: anthropic.AsyncAnthropic, gemini: genai.Client, standin: Standin
) -> None:
    standin.fault(provider="gemini", kind="503")
    await ask_claude(claude, "hello")  # not consumed by Anthropic traffic
    assert len(standin.pending()) == 1
    with pytest.raises(genai_errors.ServerError):
        await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert standin.pending() == []


def test_gemini_request_validation(standin: Standin) -> None:
    key = {"x-goog-api-key": "test"}
    empty = standin.control.post("/v1beta/models/gemini-2.5-flash:generateContent", json={"contents": []}, headers=key)
    assert empty.status_code == 400
    assert empty.json()["error"] == {
        "code": 400,
        "message": "* GenerateContentRequest.contents: List should have at least 1 item after validation, not 0",
        "status": "INVALID_ARGUMENT",
    }
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    keyless = standin.control.post("/v1beta/models/gemini-2.5-flash:generateContent", json=body)
    assert (keyless.status_code, keyless.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    unknown = standin.control.post("/v1beta/models/gemini-2.5-flash:countTokens", json=body, headers=key)
    assert (unknown.status_code, unknown.json()["error"]["status"]) == (404, "NOT_FOUND")


# --- control API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"kind": "418"}, "kind: Input should be"),
        ({"kind": "429", "count": 0}, "count: Input should be greater than or equal to 1"),
        ({"kind": "429", "provider": "openai"}, "provider: Input should be 'anthropic', 'gemini' or 'any'"),
        ({"kind": "429", "colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"count": 1}, "kind: Field required"),
    ],
)
def test_control_api_rejects_bad_faults(standin: Standin, body: dict[str, Any], message: str) -> None:
    response = standin.control.post("/_standin/faults", json=body)
    assert response.status_code == 422
    assert message in response.json()["message"]
    assert standin.pending() == []


def test_control_api_rejects_non_json(standin: Standin) -> None:
    response = standin.control.post("/_standin/faults", content=b"{not json")
    assert response.status_code == 422
    assert response.json()["message"].startswith("body is not valid JSON")


def test_control_api_config_and_clearing(standin: Standin) -> None:
    updated = standin.control.post("/_standin/config", json={"latency_ms": 5, "stream_delay_ms": 1})
    assert updated.json() == {"latency_ms": 5, "stream_delay_ms": 1}
    partial = standin.control.post("/_standin/config", json={"stream_delay_ms": 2})
    assert partial.json() == {"latency_ms": 5, "stream_delay_ms": 2}
    assert standin.control.post("/_standin/config", json={"latency_ms": -1}).status_code == 422

    standin.fault(kind="500", count=3)
    standin.fault(kind="timeout")
    assert standin.control.delete("/_standin/faults").json() == {"cleared": 2}
    assert standin.pending() == []
