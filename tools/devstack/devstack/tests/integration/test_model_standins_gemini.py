"""The Gemini stand-in, driven through the real ``google-genai`` SDK (images, text, streams, faults,
request validation), and the stand-ins' control API. Every test starts from a clean slate."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from devstack.models.content import PNG_SIGNATURE
from devstack.tests.integration.standin_support import (
    EDITS_PROMPT,
    Standin,
    ask_claude,
    claude,
    gemini,
    parts_of,
    server,
    standin,
)

pytestmark = pytest.mark.integration
__all__ = ["claude", "gemini", "server", "standin"]  # fixtures used below


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
        ({"kind": "stream_error"}, 'kind "stream_error" needs provider "anthropic"'),
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
