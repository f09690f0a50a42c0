"""The model stand-in server for the SDK suites (test_model_standins_*.py): one in-process server
per module on a free loopback port, reset before every test, and helpers to read SDK answers."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest
import pytest_asyncio
import uvicorn
from google import genai
from google.genai import types as genai_types

from devstack.models import create_app

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
