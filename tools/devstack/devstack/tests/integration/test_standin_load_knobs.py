"""The model stand-ins' load knobs: a random latency range, a random share of 429s, and the timing
log with tags, driven through the control API and the real ``anthropic`` and ``google-genai`` SDKs.

These knobs exist for benchmarks (bench/scenarios/ai_workload/); the tests check what they do,
never how long anything takes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio
from google import genai
from google.genai import errors as genai_errors
from google.genai import types as genai_types

from devstack.models import create_app
from devstack.models.request_log import Timing, TimingLog
from devstack.testing.servers import Server

pytestmark = pytest.mark.integration

TAG_PATTERN = r"\[\[tag:([a-z0-9-]+)\]\]"
RENAME_PROMPT = 'job_kind: rename_layers\nLayers:\n[{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}]'


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with Server(create_app()) as running:
        yield running


@pytest.fixture
def control(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.post("/_standin/reset").raise_for_status()
        yield client
        client.post("/_standin/reset").raise_for_status()


@pytest_asyncio.fixture
async def claude(server: Server, control: httpx.Client) -> AsyncIterator[anthropic.AsyncAnthropic]:
    # No SDK retries: every 429 must reach the test.
    async with anthropic.AsyncAnthropic(base_url=server.url, api_key="test", max_retries=0) as client:
        yield client


@pytest_asyncio.fixture
async def gemini(server: Server, control: httpx.Client) -> AsyncIterator[genai.Client]:
    client = genai.Client(api_key="test", http_options=genai_types.HttpOptions(base_url=server.url))
    yield client
    await client.aio.aclose()


def configure(control: httpx.Client, **knobs: Any) -> dict[str, Any]:
    response = control.post("/_standin/config", json=knobs)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def timings(control: httpx.Client, **params: Any) -> dict[str, Any]:
    response = control.get("/_standin/timings", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ask(client: anthropic.AsyncAnthropic, text: str) -> anthropic.types.Message:
    message: anthropic.types.Message = await client.messages.create(
        model="claude-haiku-4-5", max_tokens=1024, messages=[{"role": "user", "content": text}]
    )
    return message


# -- control API ------------------------------------------------------------------------------------
def test_default_config_shows_only_the_basic_knobs(control: httpx.Client) -> None:
    # Load knobs stay out of the answer until set, so existing clients see the same shape.
    assert control.get("/_standin/config").json() == {"latency_ms": 0, "stream_delay_ms": 0}


def test_load_knobs_round_trip_and_clear(control: httpx.Client) -> None:
    body = configure(
        control,
        latency_min_ms=10,
        latency_max_ms=30,
        error_429_rate=0.25,
        error_429_retry_after=2.5,
        random_seed=7,
        tag_pattern=TAG_PATTERN,
    )
    assert body == {
        "latency_ms": 0,
        "stream_delay_ms": 0,
        "latency_min_ms": 10,
        "latency_max_ms": 30,
        "error_429_rate": 0.25,
        "error_429_retry_after": 2.5,
        "random_seed": 7,
        "tag_pattern": TAG_PATTERN,
    }
    assert control.get("/_standin/config").json() == body
    # Omitted fields keep their value.
    assert configure(control, stream_delay_ms=3)["latency_min_ms"] == 10
    # A fixed latency replaces the range; null clears the tag pattern; a 0 rate turns 429s off.
    cleared = configure(control, latency_ms=5, tag_pattern=None, error_429_rate=0)
    assert cleared == {"latency_ms": 5, "stream_delay_ms": 3, "random_seed": 7}
    configure(control, latency_min_ms=1, latency_max_ms=2)
    assert "latency_min_ms" not in configure(control, latency_min_ms=None, latency_max_ms=None)
    reset = control.post("/_standin/reset").json()
    assert reset["config"] == {"latency_ms": 0, "stream_delay_ms": 0}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"latency_min_ms": 10}, "latency_max_ms: required together with latency_min_ms"),
        ({"latency_max_ms": 10}, "latency_min_ms: required together with latency_max_ms"),
        ({"latency_min_ms": 50, "latency_max_ms": 10}, "latency_max_ms: must be at least latency_min_ms (50), got 10"),
        ({"latency_min_ms": None, "latency_max_ms": 10}, "latency_min_ms: set both bounds, or null both to clear"),
        (
            {"latency_ms": 5, "latency_min_ms": 1, "latency_max_ms": 2},
            "latency_ms: give either latency_ms or latency_min_ms/latency_max_ms, not both",
        ),
        ({"latency_min_ms": -1, "latency_max_ms": 10}, "latency_min_ms: Input should be greater than or equal to 0"),
        ({"error_429_rate": 1.5}, "error_429_rate: Input should be less than or equal to 1"),
        ({"error_429_rate": "2%"}, "error_429_rate: Input should be a valid number"),
        ({"error_429_retry_after": -1}, "error_429_retry_after: Input should be greater than or equal to 0"),
        ({"tag_pattern": "(unclosed"}, "tag_pattern: Value error, not a regular expression"),
        ({"tag_pattern": ""}, "tag_pattern: String should have at least 1 character"),
        ({"random_seed": 1.5}, "random_seed: Input should be a valid integer"),
    ],
)
def test_bad_load_knobs_are_refused_naming_the_field(control: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = control.post("/_standin/config", json=body)
    assert response.status_code == 422
    assert response.json()["message"].startswith(message), response.json()
    # A refused body changes nothing.
    assert control.get("/_standin/config").json() == {"latency_ms": 0, "stream_delay_ms": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [({"after": "-1"}, "after: must be an integer"), ({"limit": "0"}, "limit: must be an integer from 1 to 10000")],
)
def test_bad_timing_queries_are_refused_naming_the_parameter(
    control: httpx.Client, params: dict[str, str], message: str
) -> None:
    response = control.get("/_standin/timings", params=params)
    assert response.status_code == 422
    assert response.json()["message"].startswith(message)


# -- random latency ---------------------------------------------------------------------------------
async def test_latency_is_drawn_from_the_range_per_request(
    control: httpx.Client, claude: anthropic.AsyncAnthropic
) -> None:
    configure(control, latency_min_ms=1, latency_max_ms=12, random_seed=3)
    for _ in range(12):
        await ask(claude, RENAME_PROMPT)
    drawn = [t["latency_ms"] for t in timings(control)["timings"]]
    assert len(drawn) == 12
    assert all(1 <= ms <= 12 for ms in drawn)
    assert len(set(drawn)) > 1  # random per request, not one value for the run

    # The same seed gives the same sequence: runs can be repeated.
    control.delete("/_standin/timings")
    configure(control, random_seed=3)
    for _ in range(12):
        await ask(claude, RENAME_PROMPT)
    assert [t["latency_ms"] for t in timings(control)["timings"]] == drawn

    configure(control, latency_ms=0)
    control.delete("/_standin/timings")
    await ask(claude, RENAME_PROMPT)
    assert [t["latency_ms"] for t in timings(control)["timings"]] == [0]


# -- random 429s ------------------------------------------------------------------------------------
async def test_every_request_is_a_429_at_rate_one(
    control: httpx.Client, claude: anthropic.AsyncAnthropic, gemini: genai.Client
) -> None:
    configure(control, error_429_rate=1.0, error_429_retry_after=3)
    with pytest.raises(anthropic.RateLimitError) as claude_err:
        await ask(claude, RENAME_PROMPT)
    assert claude_err.value.response.headers["retry-after"] == "3"
    with pytest.raises(genai_errors.ClientError) as gemini_err:
        await gemini.aio.models.generate_content(model="gemini-2.5-flash", contents="job_kind: generate_edits\nHi")
    assert gemini_err.value.code == 429
    assert gemini_err.value.response.headers["retry-after"] == "3"
    log = control.get("/_standin/requests").json()["requests"]
    assert [(r["provider"], r["status"], r["fault"]) for r in log] == [
        ("anthropic", 429, "429"),
        ("gemini", 429, "429"),
    ]
    assert [(t["status"], t["fault"], t["latency_ms"]) for t in timings(control)["timings"]] == [
        (429, "429", 0),  # a 429 answers at once: no model latency
        (429, "429", 0),
    ]


async def test_a_share_of_requests_gets_429_and_queued_faults_come_first(
    control: httpx.Client, claude: anthropic.AsyncAnthropic
) -> None:
    configure(control, error_429_rate=0.5, random_seed=11)
    outcomes = []
    for _ in range(40):
        try:
            await ask(claude, RENAME_PROMPT)
            outcomes.append(200)
        except anthropic.RateLimitError:
            outcomes.append(429)
    # With this seed both outcomes occur; the split itself is the random generator's business.
    assert 0 < outcomes.count(429) < 40

    configure(control, error_429_rate=1.0)
    control.post("/_standin/faults", json={"kind": "500"}).raise_for_status()
    with pytest.raises(anthropic.InternalServerError):
        await ask(claude, RENAME_PROMPT)  # the scripted fault wins over the random 429
    with pytest.raises(anthropic.RateLimitError):
        await ask(claude, RENAME_PROMPT)

    configure(control, error_429_rate=0)
    await ask(claude, RENAME_PROMPT)


# -- timing log -------------------------------------------------------------------------------------
async def test_timings_carry_tags_and_cover_the_whole_stream(
    control: httpx.Client, claude: anthropic.AsyncAnthropic, gemini: genai.Client
) -> None:
    configure(control, tag_pattern=TAG_PATTERN, stream_delay_ms=1)
    await ask(claude, RENAME_PROMPT + "\nScreen: checkout [[tag:job-1]]")
    async with claude.messages.stream(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=[{"role": "user", "content": 'job_kind: generate_edits\nRewrite "Buy now" [[tag:job-2]]'}],
    ) as stream:
        deltas = [text async for text in stream.text_stream]
    assert deltas
    await gemini.aio.models.generate_content(
        model="gemini-2.5-flash-image",
        contents="job_kind: generate_image\nA lighthouse at dusk [[tag:job-3]]",
        config=genai_types.GenerateContentConfig(response_modalities=["IMAGE"]),
    )
    await ask(claude, RENAME_PROMPT)  # no tag in the body

    page = timings(control)
    entries = page["timings"]
    assert [(t["provider"], t["job_kind"], t["stream"], t["tag"]) for t in entries] == [
        ("anthropic", "rename_layers", False, "job-1"),
        ("anthropic", "generate_edits", True, "job-2"),
        ("gemini", "generate_image", False, "job-3"),
        ("anthropic", "rename_layers", False, None),
    ]
    assert all(t["status"] == 200 and t["finished"] is not None and t["finished"] >= t["started"] for t in entries)
    # Timing entries and request-log entries share their numbers.
    log_seqs = [r["seq"] for r in control.get("/_standin/requests").json()["requests"]]
    assert [t["seq"] for t in entries] == log_seqs
    assert page["more"] is False and page["dropped"] == 0 and page["next_after"] == entries[-1]["seq"]


async def test_timings_page_and_clear(control: httpx.Client, claude: anthropic.AsyncAnthropic) -> None:
    for _ in range(5):
        await ask(claude, RENAME_PROMPT)
    first = timings(control, limit=2)
    assert first["count"] == 2 and first["more"] is True
    rest = timings(control, after=first["next_after"], limit=10)
    assert rest["count"] == 3 and rest["more"] is False
    seqs = [t["seq"] for t in first["timings"] + rest["timings"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    assert timings(control, after=rest["next_after"])["count"] == 0
    assert control.delete("/_standin/timings").json() == {"cleared": 5}
    assert timings(control)["count"] == 0
    # The request log is separate: clearing timings leaves it alone.
    assert len(control.get("/_standin/requests").json()["requests"]) == 5


def test_a_full_timing_log_counts_what_it_dropped() -> None:
    log = TimingLog(entries=deque(maxlen=2))
    for seq in (1, 2, 3):
        log.add(Timing(seq=seq, provider="anthropic", job_kind=None, stream=False, tag=None, started=0.0))
    page = log.page(after=0, limit=10)
    assert [t["seq"] for t in page["timings"]] == [2, 3] and page["dropped"] == 1
    assert log.clear() == 2 and log.page(after=0, limit=10)["dropped"] == 0
