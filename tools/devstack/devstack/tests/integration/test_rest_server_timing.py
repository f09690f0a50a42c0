"""PostgREST's ``Server-Timing`` header (``server-timing-enabled``, off by default): with it on, a
REST answer says how long its transaction took (the benchmarks place an enqueue's commit with it);
with it off, as on the session's stack, no answer carries the header."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from devstack.gateway.app import create_app
from devstack.gateway.context import SERVER_TIMING_VARIABLE, Settings
from devstack.testing.fixtures import Stack
from devstack.testing.servers import Server

pytestmark = pytest.mark.integration

FUNCTION = f"conformance_rest_timing_{secrets.token_hex(4)}"
SLEEP_S = 0.05
STAGE = re.compile(r"^(\w+);dur=(\d+\.\d)$")


@pytest.fixture(scope="module")
def sleeping_function(stack: Stack) -> Iterator[str]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            f"create function public.{FUNCTION}() returns int language sql volatile as $$"  # a constant name
            f" select 1 from pg_sleep({SLEEP_S}) $$; notify pgrst, 'reload schema';"
        )
    try:
        yield FUNCTION
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f"drop function if exists public.{FUNCTION}(); notify pgrst, 'reload schema';")


@pytest.fixture(scope="module")
def timed_gateway(stack: Stack) -> Iterator[str]:
    if os.environ.get("SUPABASE_URL"):
        pytest.skip("runs an in-process gateway of the local stack")
    settings = dataclasses.replace(Settings.from_stack(), server_timing=True)
    with Server(create_app(settings)) as server:
        yield server.url


def stages(header: str) -> dict[str, float]:
    out = {}
    for part in header.split(", "):
        match = STAGE.match(part)
        assert match, f"not a Server-Timing stage: {part!r} in {header!r}"
        out[match.group(1)] = float(match.group(2))
    return out


async def test_the_transaction_stage_covers_the_statement(
    stack: Stack, sleeping_function: str, timed_gateway: str
) -> None:
    async with httpx.AsyncClient(base_url=f"{timed_gateway}/rest/v1", timeout=30) as http:
        answer = await http.post(f"/rpc/{sleeping_function}", json={}, headers={"apikey": stack.anon_key})
    assert answer.status_code == 200, answer.text
    timing = stages(answer.headers["server-timing"])
    assert list(timing) == ["jwt", "transaction"]
    # A lower bound only: the transaction ran a statement that sleeps SLEEP_S, so it cannot be shorter.
    assert timing["transaction"] >= SLEEP_S * 1000


async def test_a_request_refused_before_its_transaction_has_no_transaction_stage(
    stack: Stack, timed_gateway: str
) -> None:
    async with httpx.AsyncClient(base_url=f"{timed_gateway}/rest/v1", timeout=30) as http:
        answer = await http.post("/rpc/no_such_function_here", json={}, headers={"apikey": stack.anon_key})
    assert answer.status_code == 404, answer.text
    assert list(stages(answer.headers["server-timing"])) == ["jwt"]


async def test_off_by_default(stack: Stack, sleeping_function: str) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", timeout=30) as http:
        answer = await http.post(f"/rpc/{sleeping_function}", json={}, headers={"apikey": stack.anon_key})
    assert answer.status_code == 200, answer.text
    assert "server-timing" not in answer.headers


def test_the_setting_takes_true_or_false_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SERVER_TIMING_VARIABLE, "TRUE")
    assert Settings.from_stack().server_timing is True
    monkeypatch.setenv(SERVER_TIMING_VARIABLE, "yes")
    with pytest.raises(ValueError, match="PGRST_SERVER_TIMING_ENABLED must be true or false, not 'yes'"):
        Settings.from_stack()
