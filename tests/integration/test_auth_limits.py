"""/auth/v1 reads request bodies only up to Settings.max_body_bytes."""

from __future__ import annotations

import os

import httpx
import pytest

from tests.integration.auth_helpers import unique_email
from tests.integration.conftest import Stack

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
