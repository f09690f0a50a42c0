"""/auth/v1 reads request bodies only up to Settings.max_body_bytes."""

from __future__ import annotations

import asyncio
import os

import httpx
import pytest

from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import unique_email

pytestmark = pytest.mark.integration

OVER_LIMIT = 11 * 1024 * 1024  # above the local gateway's Settings.max_body_bytes (10 MiB)


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/signup"), ("POST", "/token?grant_type=password"), ("POST", "/token?grant_type=refresh_token")],
)
async def test_oversized_bodies_are_refused_with_413(stack: Stack, method: str, path: str) -> None:
    if os.environ.get("SUPABASE_URL"):
        pytest.skip("the local gateway's limit; hosted limits differ")
    big = b'{"email": "' + unique_email().encode() + b'", "password": "' + b"x" * OVER_LIMIT + b'"}'
    headers = {"apikey": stack.anon_key, "Content-Type": "application/json", "X-Supabase-Api-Version": "2024-01-01"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/auth/v1", headers=headers, timeout=60) as http:
        answer = await http.request(method, path, content=big)
    assert answer.status_code == 413
    assert answer.json() == {"code": "request_too_large", "message": "Request body is too large"}


@pytest.mark.parametrize("scope", ["global", "local"])
async def test_a_refresh_racing_a_sign_out_never_fails_with_5xx(stack: Stack, scope: str) -> None:
    """Refresh and sign-out lock the same session and tokens: in opposite orders they could
    deadlock (PostgreSQL aborts one with 40P01, which surfaced as a 500). 40 races, 8 at a time."""
    headers = {"apikey": stack.anon_key, "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=f"{stack.url}/auth/v1", headers=headers, timeout=60) as http:

        async def race() -> None:
            session = (await http.post("/signup", json={})).json()
            refreshed, signed_out = await asyncio.gather(
                http.post("/token?grant_type=refresh_token", json={"refresh_token": session["refresh_token"]}),
                http.post(f"/logout?scope={scope}", headers={"Authorization": f"Bearer {session['access_token']}"}),
            )
            assert signed_out.status_code == 204, signed_out.text
            # Either order is fine: refreshed before the sign-out, or refused after it.
            assert refreshed.status_code in (200, 400), refreshed.text
            if refreshed.status_code == 400:
                assert refreshed.json()["error_code"] in ("refresh_token_not_found", "session_not_found")
            # Whatever the order, the session is gone afterwards.
            again = await http.post("/token?grant_type=refresh_token", json={"refresh_token": session["refresh_token"]})
            assert again.status_code == 400

        for _ in range(5):
            await asyncio.gather(*(race() for _ in range(8)))
