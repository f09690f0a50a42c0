"""The providers' start-up warm-up (worker/providers/canned.py): after it, real calls to the model
stand-ins (a message, a stream, a 429, an image, a Gemini text) build no pydantic model the SDKs
defer to first use, so the first jobs of a fresh worker do not pay for it while every other job
waits. Each check runs in a fresh interpreter: this test process has built those models already."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devstack.testing.servers import Server
from tests.integration.worker_support import model_standins

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import asyncio, contextlib, json, sys
import httpx
from pydantic import BaseModel
from worker.core.errors import RateLimited
from worker.core.ports import TextRequest
from worker.providers.claude import ClaudeProvider
from worker.providers.gemini import GeminiProvider

url, warm = sys.argv[1], sys.argv[2] == "warm"

def unbuilt():
    seen, stack = set(), [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in seen:
                seen.add(sub)
                stack.append(sub)
    return {m for m in seen if not m.__dict__.get("__pydantic_complete__", False)}

async def main():
    claude, gemini = ClaudeProvider("k", url, 10), GeminiProvider("k", url, 10)
    if warm:
        await claude.warm_up()
        await gemini.warm_up()
    before = unbuilt()
    request = TextRequest.ask("system", "hello", max_tokens=64)
    answers = [await claude.complete("claude-test", request)]
    answers.append("".join([piece async for piece in claude.stream("claude-test", request)]))
    httpx.post(url + "/_standin/faults", json={"provider": "anthropic", "kind": "429", "count": 1}).raise_for_status()
    with contextlib.suppress(RateLimited):
        await claude.complete("claude-test", request)
    image = await gemini.generate_image("gemini-image-test", "a red square", "1:1")
    answers.append(await gemini.complete("gemini-test", request))
    await claude.close()
    await gemini.close()
    built = sorted(f"{m.__module__}.{m.__qualname__}" for m in before - unbuilt())
    print(json.dumps({"built": built, "answers": [bool(a) for a in answers], "image_bytes": len(image.data)}))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def standins() -> Iterator[Server]:
    with model_standins() as server:
        yield server


def run_calls(url: str, mode: str) -> dict[str, object]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tools" / "devstack")])}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, url, mode], capture_output=True, text=True, timeout=120, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_after_the_warm_up_real_calls_build_no_model(standins: Server) -> None:
    result = run_calls(standins.url, "warm")
    assert result["answers"] == [True, True, True]
    assert isinstance(result["image_bytes"], int) and result["image_bytes"] > 0
    assert result["built"] == []


def test_without_it_the_first_calls_build_the_sdks_models(standins: Server) -> None:
    """What the warm-up takes away (and proof the check above can fail)."""
    built = run_calls(standins.url, "cold")["built"]
    assert isinstance(built, list)
    assert "google.genai.types.GenerateContentResponse" in built
    assert any(name.endswith("ErrorDetails") and name.startswith("anthropic.") for name in built)
