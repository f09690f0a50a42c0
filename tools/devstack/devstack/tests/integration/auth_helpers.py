"""Helpers shared by the Auth and Storage conformance suites: real supabase-py clients and users."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
import pytest
from supabase.lib.client_options import AsyncClientOptions

from devstack.testing.fixtures import KEY_FLAVOURS, KeyFlavour, Stack
from supabase import AsyncClient, acreate_client

PASSWORD = "correct-horse-battery"


def unique_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture(scope="module", params=KEY_FLAVOURS, name="stack")
def stack_in_both_flavours(stack: Stack, request: pytest.FixtureRequest) -> Stack:
    """Imported by a conformance module, this overrides ``stack`` there: every test of the module
    runs once per key flavour, its clients made with ``client_key`` / ``server_key``."""
    flavour: KeyFlavour = request.param
    return stack.with_flavour(flavour)


async def new_client(stack: Stack, key: str | None = None) -> AsyncClient:
    """A fresh client (with the stack's client key unless told) with its own in-memory session;
    no background refresh timer."""
    options = AsyncClientOptions(auto_refresh_token=False)
    return await acreate_client(stack.url, key or stack.client_key, options=options)


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
