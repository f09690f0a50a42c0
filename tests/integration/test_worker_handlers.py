"""Handlers and providers against the model stand-ins, through the real anthropic / google-genai SDKs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from anthropic.types import MessageParam

from devstack.testing.servers import Server
from tests.integration.worker_support import model_standins
from worker.adapters.files import FolderArtifacts
from worker.adapters.memory import MemoryStore
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.errors import InvalidOutput, PermanentFailure, RateLimited, TransientFailure
from worker.core.jobs import Job
from worker.core.llm import LimitedModel, ModelChain
from worker.core.ports import ModelProvider, ModelUsage, TextRequest
from worker.core.retry import RetryPolicy
from worker.handlers import HANDLERS
from worker.providers.claude import ClaudeProvider, usage_of
from worker.providers.gemini import GeminiProvider

pytestmark = pytest.mark.integration
CLAUDE, GEMINI_IMAGE = "claude-haiku-4-5", "gemini-2.5-flash-image"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with model_standins() as s:
        yield s


@pytest.fixture
def standin(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as control:
        control.post("/_standin/reset").raise_for_status()
        yield control


def fault(control: httpx.Client, **spec: Any) -> None:
    control.post("/_standin/faults", json=spec).raise_for_status()


def requests_seen(control: httpx.Client, provider: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = control.get("/_standin/requests", params={"provider": provider}).json()["requests"]
    return rows


@pytest_asyncio.fixture
async def claude(server: Server) -> AsyncIterator[ClaudeProvider]:
    provider = ClaudeProvider("test-key", server.url, timeout_seconds=10)
    yield provider
    await provider.close()


@pytest_asyncio.fixture
async def gemini(server: Server) -> AsyncIterator[GeminiProvider]:
    provider = GeminiProvider("test-key", server.url, timeout_seconds=10)
    yield provider
    await provider.close()


def limited(provider: ModelProvider, model: str, concurrency: int = 4, retries: int = 2) -> LimitedModel:
    return LimitedModel(
        provider,
        model,
        asyncio.Semaphore(concurrency),
        SystemClock(),
        retries=retries,
        policy=RetryPolicy(base=0.01, cap=0.05),
    )


async def run_kind(
    kind: str, payload: dict[str, Any], model: LimitedModel, artifacts: FolderArtifacts | None = None
) -> tuple[dict[str, Any], MemoryStore, JobContext]:
    store = MemoryStore()
    store.enqueue(kind, payload)
    [job] = await store.claim_jobs("w", [kind], 1, 60)
    assert isinstance(job, Job)
    ctx = JobContext(job, "w", store, SystemClock(), ModelChain.of([model], SystemClock()), artifacts)
    result = await HANDLERS[kind](job.payload, ctx)
    await ctx.flush()  # reports go out in the background; the runtime records the outcome after them
    return result, store, ctx


async def test_generate_design_returns_a_validated_tree(claude: ClaudeProvider, standin: httpx.Client) -> None:
    payload = {
        "prompt": "A pricing page for a coffee subscription",
        "design_system": {"summary": "warm palette", "components": [{"name": "Button", "key": "a1b2c3d4e5f6a7b8c9d0"}]},
    }
    result, store, _ = await run_kind("generate_design", payload, limited(claude, CLAUDE))
    assert result["root"]["type"] == "FRAME" and result["node_count"] > 5
    assert '"componentKey": "a1b2c3d4e5f6a7b8c9d0"' in json.dumps(result)  # the design system's key was used
    [logged] = requests_seen(standin, "anthropic")
    assert logged["job_kind"] == "generate_design"
    assert [e.data["percent"] for e in store.events] == [5, 95]


async def test_invalid_model_json_gets_one_repair_round(claude: ClaudeProvider, standin: httpx.Client) -> None:
    fault(standin, provider="anthropic", kind="invalid_json", count=1)
    result, _, _ = await run_kind("generate_design", {"prompt": "A login screen"}, limited(claude, CLAUDE))
    assert result["root"]["type"] == "FRAME"
    sent = requests_seen(standin, "anthropic")
    assert [r["fault"] for r in sent] == ["invalid_json", None]
    # The repair round shows the model its broken answer and asks again.
    assert [m["role"] for m in sent[1]["body"]["messages"]] == ["user", "assistant", "user"]


async def test_invalid_output_after_the_repair_round_is_a_typed_failure(
    claude: ClaudeProvider, standin: httpx.Client
) -> None:
    fault(standin, provider="anthropic", kind="invalid_json", count=2)
    with pytest.raises(InvalidOutput, match="after one repair round") as caught:
        await run_kind("generate_design", {"prompt": "A login screen"}, limited(claude, CLAUDE))
    assert caught.value.retryable is False


async def test_rename_layers_runs_batches_in_parallel_with_progress(
    claude: ClaudeProvider, standin: httpx.Client
) -> None:
    layers = [{"id": f"1:{i}", "type": "TEXT", "text": f"Item number {i}", "parent_id": "1:0"} for i in range(60)]
    layers[0] = {"id": "1:0", "type": "FRAME"}
    result, store, _ = await run_kind("rename_layers", {"layers": layers}, limited(claude, CLAUDE, concurrency=2))
    names = result["names"]
    assert [n["id"] for n in names] == [layer["id"] for layer in layers]
    assert all(0 < len(n["name"]) <= 80 for n in names)
    siblings = [n["name"].casefold() for n in names[1:]]
    assert len(set(siblings)) == len(siblings)
    assert len(requests_seen(standin, "anthropic")) == 3  # 60 layers in batches of 25
    progress = [e.data["message"] for e in store.events if e.type == "progress"]
    assert sorted(progress) == ["batch 1 of 3", "batch 2 of 3", "batch 3 of 3"]


async def test_generate_edits_streams_coalesced_partials(claude: ClaudeProvider, standin: httpx.Client) -> None:
    standin.post("/_standin/config", json={"stream_delay_ms": 2}).raise_for_status()
    payload = {"text": "Start your free trial today", "variants": 3}
    result, store, _ = await run_kind("generate_edits", payload, limited(claude, CLAUDE))
    assert len(result["variants"]) == 3
    partials = [e.data["text"] for e in store.events if e.type == "partial"]
    whole = "".join(partials)
    assert json.loads(whole)["variants"][0]["text"] == result["variants"][0]["text"]
    assert 1 < len(partials) < len(whole) // 2  # live output, but far fewer writes than tokens


async def test_generate_image_uploads_bytes_and_returns_metadata(
    gemini: GeminiProvider, standin: httpx.Client, tmp_path: Path
) -> None:
    payload = {"prompt": "A lighthouse at dusk", "aspect_ratio": "16:9"}
    result, _, ctx = await run_kind("generate_image", payload, limited(gemini, GEMINI_IMAGE), FolderArtifacts(tmp_path))
    assert result["path"] == f"{ctx.job.user_id}/{ctx.job.id}/image.png"
    assert (result["mime_type"], result["width"], result["height"]) == ("image/png", 256, 144)
    stored = (tmp_path / result["path"]).read_bytes()
    assert len(stored) == result["bytes"] and stored.startswith(b"\x89PNG")


@pytest.mark.parametrize("kind", ["429", "529"])
async def test_claude_rate_limits_become_rate_limited(claude: ClaudeProvider, standin: httpx.Client, kind: str) -> None:
    fault(standin, provider="anthropic", kind=kind, retry_after=7)
    with pytest.raises(RateLimited) as caught:
        await limited(claude, CLAUDE).complete(TextRequest.ask("job_kind: generate_design", "hi"))
    assert caught.value.retry_after == 7
    assert len(requests_seen(standin, "anthropic")) == 1  # no in-call retry of a rate limit


async def test_gemini_429_carries_retry_info(gemini: GeminiProvider, standin: httpx.Client) -> None:
    fault(standin, provider="gemini", kind="429", retry_after=12)
    with pytest.raises(RateLimited) as caught:
        await limited(gemini, GEMINI_IMAGE).generate_image("job_kind: generate_image a cat", None)
    assert caught.value.retry_after == 12


async def test_server_errors_are_retried_inside_the_call(claude: ClaudeProvider, standin: httpx.Client) -> None:
    fault(standin, provider="anthropic", kind="503", count=2)
    text = await limited(claude, CLAUDE, retries=2).complete(TextRequest.ask("job_kind: generate_design", "hi"))
    assert json.loads(text)["type"] == "FRAME"
    assert [r["status"] for r in requests_seen(standin, "anthropic")] == [503, 503, 200]


async def test_server_errors_past_the_budget_are_transient(gemini: GeminiProvider, standin: httpx.Client) -> None:
    fault(standin, provider="gemini", kind="500", count=3)
    with pytest.raises(TransientFailure):
        await limited(gemini, GEMINI_IMAGE, retries=2).generate_image("job_kind: generate_image a cat", None)
    assert len(requests_seen(standin, "gemini")) == 3


async def test_a_bad_request_is_permanent(claude: ClaudeProvider) -> None:
    with pytest.raises(PermanentFailure, match="max_tokens"):
        await claude.complete(CLAUDE, TextRequest.ask("x", "hi", max_tokens=0))


async def test_timeouts_and_dropped_streams_are_transient(standin: httpx.Client, server: Server) -> None:
    fault(standin, provider="anthropic", kind="timeout", hold_seconds=30)
    quick = ClaudeProvider("k", server.url, timeout_seconds=0.5)
    try:
        with pytest.raises(TransientFailure):
            await quick.complete(CLAUDE, TextRequest.ask("job_kind: generate_design", "hi"))
        fault(standin, provider="anthropic", kind="disconnect")
        got: list[str] = []

        async def consume() -> None:
            async for delta in quick.stream(CLAUDE, TextRequest.ask("job_kind: generate_edits", 'x "Start now"')):
                got.append(delta)

        with pytest.raises(TransientFailure):
            await consume()
        assert got  # partial output arrived before the drop
    finally:
        await quick.close()


async def test_an_overloaded_model_mid_stream_is_rate_limited_not_permanent(
    claude: ClaudeProvider, standin: httpx.Client
) -> None:
    """The API reports a failure after the 200 as an SSE error event; the SDK raised it as a
    status error of the 200 answer, which read as permanent and failed the job."""
    fault(standin, provider="anthropic", kind="stream_error")
    got: list[str] = []

    async def consume() -> None:
        async for delta in claude.stream(CLAUDE, TextRequest.ask("job_kind: generate_edits", 'x "Start now"')):
            got.append(delta)

    with pytest.raises(RateLimited) as caught:
        await consume()
    assert got  # part of the answer came first
    assert caught.value.status == 529 and "overloaded_error during the stream: Overloaded" in str(caught.value)


# -- the usage ledger: each answered call, read from the real SDK responses ---------------------
async def test_every_answered_call_is_recorded_with_its_usage(claude: ClaudeProvider, standin: httpx.Client) -> None:
    fault(standin, provider="anthropic", kind="invalid_json", count=1)  # two calls: the answer and its repair
    _, store, ctx = await run_kind("generate_design", {"prompt": "A login screen"}, limited(claude, CLAUDE))
    entries = store.ledger.entries
    assert [(e.job_id, e.attempt, e.call.provider, e.call.model) for e in entries] == [
        (ctx.job.id, 1, "anthropic", CLAUDE)
    ] * 2
    for e in entries:
        u = e.call.usage
        assert u.input_tokens > 0 and u.output_tokens > 0 and (u.cached_tokens, u.images) == (0, 0)
        assert e.call.latency_ms >= 0
        expected = (Decimal(u.input_tokens) * 1 + Decimal(u.output_tokens) * 5) / 1_000_000  # Haiku 4.5 list price
        assert e.cost_usd == expected.quantize(Decimal("0.00000001"))
    # The repair round re-sends the first answer: its prompt is longer.
    assert entries[1].call.usage.input_tokens > entries[0].call.usage.input_tokens


async def test_a_streamed_call_records_the_final_usage(claude: ClaudeProvider, standin: httpx.Client) -> None:
    payload = {"text": "Start your free trial today", "variants": 3}
    result, store, _ = await run_kind("generate_edits", payload, limited(claude, CLAUDE))
    [streamed] = store.ledger.entries
    # The stand-in counts about 4 characters a token, as its message_delta reports.
    assert streamed.call.usage.output_tokens >= len(json.dumps(result)) // 8


async def test_an_image_call_records_the_image_and_its_tokens(
    gemini: GeminiProvider, standin: httpx.Client, tmp_path: Path
) -> None:
    payload = {"prompt": "A lighthouse at dusk"}
    _, store, _ = await run_kind("generate_image", payload, limited(gemini, GEMINI_IMAGE), FolderArtifacts(tmp_path))
    [image] = store.ledger.entries
    assert (image.call.provider, image.call.model, image.call.usage.images) == ("gemini", GEMINI_IMAGE, 1)
    assert image.call.usage.output_tokens >= 1290  # an image is 1290 output tokens
    assert image.cost_usd is not None and Decimal("0.0387") <= image.cost_usd < Decimal("0.04")


async def test_a_raw_streams_text_and_usage_are_what_the_sdks_own_stream_helper_gives(
    claude: ClaudeProvider, standin: httpx.Client
) -> None:
    """The provider reads the raw event stream and sums the usage itself; the SDK's
    messages.stream() helper, on the same answer, is the reference."""
    request = TextRequest(system="edits", messages=(("user", "job_kind: generate_edits"),), max_tokens=200)
    used: list[ModelUsage] = []
    text = "".join([piece async for piece in claude.stream(CLAUDE, request, used.append)])
    async with claude.client.messages.stream(
        model=CLAUDE, max_tokens=200, system="edits", messages=[{"role": "user", "content": "job_kind: generate_edits"}]
    ) as reference:
        expected_text = "".join([piece async for piece in reference.text_stream])
        final = await reference.get_final_message()
    assert text == expected_text and text
    assert used == [usage_of(final.usage)]
    assert used[0].output_tokens > 1  # the message_delta's count, not message_start's


async def test_a_completions_text_and_usage_are_what_the_sdks_message_gives(
    claude: ClaudeProvider, standin: httpx.Client
) -> None:
    """The provider reads the raw response's JSON itself; the SDK's Message, built from the same
    answer, is the reference."""
    request = TextRequest(system="design", messages=(("user", "job_kind: generate_design"),), max_tokens=400)
    used: list[ModelUsage] = []
    text = await claude.complete(CLAUDE, request, used.append)
    ask: list[MessageParam] = [{"role": "user", "content": "job_kind: generate_design"}]
    reference = await claude.client.messages.create(model=CLAUDE, max_tokens=400, system="design", messages=ask)
    assert text == "".join(block.text for block in reference.content if block.type == "text") and text
    assert used == [usage_of(reference.usage)]
    assert used[0].input_tokens > 0 and used[0].output_tokens > 0
