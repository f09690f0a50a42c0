"""The model stand-ins' provider-style knobs for issue 13: a per-model rate limit
(``rate_limit_per_minute``, a token bucket like Anthropic's) and faults aimed at one model
(``model`` in a fault, e.g. an overloaded model for fallback chains), through the real SDKs."""

from __future__ import annotations

import anthropic
import httpx
import pytest

from devstack.models.ratelimit import RateLimiter
from devstack.tests.integration.test_standin_load_knobs import RENAME_PROMPT, claude, configure, control, server

pytestmark = pytest.mark.integration
__all__ = ["claude", "control", "server"]  # fixtures used below


async def ask(client: anthropic.AsyncAnthropic, model: str) -> None:
    await client.messages.create(model=model, max_tokens=64, messages=[{"role": "user", "content": RENAME_PROMPT}])


async def test_a_per_model_rate_limit_answers_429_with_retry_after(
    control: httpx.Client, claude: anthropic.AsyncAnthropic
) -> None:
    assert configure(control, rate_limit_per_minute=3)["rate_limit_per_minute"] == 3
    for _ in range(3):
        await ask(claude, "claude-haiku-4-5")
    with pytest.raises(anthropic.RateLimitError) as limited:
        await ask(claude, "claude-haiku-4-5")
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 20  # 3/min: one back every 20 s
    await ask(claude, "claude-opus-4-5")  # each model has its own bucket
    statuses = [t["status"] for t in control.get("/_standin/timings").json()["timings"]]
    assert statuses == [200, 200, 200, 429, 200]
    assert "rate_limit_per_minute" not in configure(control, rate_limit_per_minute=0)  # 0 turns it off
    await ask(claude, "claude-haiku-4-5")


def test_the_bucket_refills_continuously_up_to_the_limit() -> None:
    now = [0.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limiter.configure(60)
    assert [limiter.take("anthropic", "m") for _ in range(60)] == [None] * 60
    assert limiter.take("anthropic", "m") == 1.0
    now[0] += 1.0
    assert limiter.take("anthropic", "m") is None
    now[0] += 3600
    assert [limiter.take("anthropic", "m") is None for _ in range(61)].count(True) == 60


def test_a_bad_rate_limit_is_refused_naming_the_field(control: httpx.Client) -> None:
    response = control.post("/_standin/config", json={"rate_limit_per_minute": -1})
    assert response.status_code == 422
    assert response.json()["message"].startswith("rate_limit_per_minute: ")
    response = control.post("/_standin/faults", json={"kind": "529", "model": ""})
    assert response.status_code == 422 and response.json()["message"].startswith("model: ")


async def test_a_fault_aimed_at_one_model_leaves_the_others_alone(
    control: httpx.Client, claude: anthropic.AsyncAnthropic
) -> None:
    body = {"provider": "anthropic", "kind": "529", "model": "claude-haiku-4-5", "count": 2}
    control.post("/_standin/faults", json=body).raise_for_status()
    await ask(claude, "claude-opus-4-5")
    for _ in range(2):
        with pytest.raises(anthropic.APIStatusError) as overloaded:
            await ask(claude, "claude-haiku-4-5")
        assert overloaded.value.status_code == 529
    await ask(claude, "claude-haiku-4-5")
