"""Helpers shared by the Auth and Storage conformance suites: real supabase-py clients and users."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from supabase.lib.client_options import AsyncClientOptions

from supabase import AsyncClient, acreate_client
from tests.integration.conftest import Stack

PASSWORD = "correct-horse-battery"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


async def new_client(stack: Stack, key: str | None = None) -> AsyncClient:
    """A fresh client with its own in-memory session; no background refresh timer."""
    options = AsyncClientOptions(auto_refresh_token=False)
    return await acreate_client(stack.url, key or stack.anon_key, options=options)


async def signed_up_client(stack: Stack) -> tuple[AsyncClient, str]:
    """A client signed in as a new email user; returns it with the user's id."""
    client = await new_client(stack)
    res = await client.auth.sign_up({"email": unique_email(), "password": PASSWORD})
    assert res.user is not None
    assert res.session is not None
    return client, res.user.id


def unverified_claims(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims
