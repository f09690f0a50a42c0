"""PostgREST applies the impersonated role's own settings per request (anon's 3 s and
authenticated's 8 s statement_timeout on hosted), on top of the login role's (authenticator: 8 s
statement and lock timeouts), as in docs/hosted-platform.md §4.2."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from devstack import paths
from devstack.testing.fixtures import Stack
from devstack.tests.integration.rest_support import new_user

pytestmark = pytest.mark.integration

FUNCTION = f"conformance_rest_settings_{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def settings_function(stack: Stack) -> Iterator[str]:
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            f"create function public.{FUNCTION}() returns jsonb language sql stable as $$"  # a constant name
            " select jsonb_build_object('statement_timeout', current_setting('statement_timeout'),"
            " 'lock_timeout', current_setting('lock_timeout'), 'role', current_user) $$;"
            "notify pgrst, 'reload schema';"
        )
    try:
        yield FUNCTION
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(f"drop function if exists public.{FUNCTION}(); notify pgrst, 'reload schema';")


async def test_each_role_runs_under_its_own_settings(stack: Stack, settings_function: str) -> None:
    user = await new_user(stack)
    callers = {
        "anon": {"apikey": stack.anon_key},
        "authenticated": {"apikey": stack.anon_key, "Authorization": f"Bearer {user.token}"},
        "service_role": {"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"},
    }
    expected = {"anon": "3s", "authenticated": "8s", "service_role": "8s"}  # service_role: authenticator's
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", timeout=30) as http:
        for role, headers in callers.items():
            answer = await http.post(f"/rpc/{settings_function}", json={}, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json() == {"role": role, "statement_timeout": expected[role], "lock_timeout": "8s"}


async def test_changed_settings_apply_after_reload_config(stack: Stack, settings_function: str) -> None:
    """As PostgREST: role settings are cached, and `NOTIFY pgrst, 'reload config'` picks up a change."""
    if not stack.local:
        pytest.skip("changes the anon role's settings: the local stack only")

    async def anon_timeout(http: httpx.AsyncClient) -> str:
        answer = await http.post(f"/rpc/{settings_function}", json={}, headers={"apikey": stack.anon_key})
        assert answer.status_code == 200, answer.text
        return str(answer.json()["statement_timeout"])

    async def settle(http: httpx.AsyncClient, want: str) -> str:
        deadline = time.monotonic() + 10  # the notification reaches the gateway's listener soon after
        while (got := await anon_timeout(http)) != want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return got

    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", timeout=30) as http:
        assert await anon_timeout(http) == "3s"
        try:
            with psycopg.connect(paths.admin_url(), autocommit=True) as conn:
                conn.execute("alter role anon set statement_timeout = '2500ms'")
            assert await anon_timeout(http) == "3s"  # cached until told
            with psycopg.connect(stack.database_url, autocommit=True) as conn:
                conn.execute("notify pgrst, 'reload config'")
            assert await settle(http, "2500ms") == "2500ms"
        finally:
            with psycopg.connect(paths.admin_url(), autocommit=True) as conn:
                conn.execute("alter role anon set statement_timeout = '3s'")
                conn.execute("notify pgrst, 'reload config'")
        assert await settle(http, "3s") == "3s"
