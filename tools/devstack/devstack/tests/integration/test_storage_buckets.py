"""/storage/v1 buckets: reads and creation run as the caller's role, so RLS on storage.buckets
decides (service_role bypasses it; users without bucket policies see and create nothing)."""

from __future__ import annotations

import httpx
import psycopg
import pytest

from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import new_client, stack_in_both_flavours
from devstack.tests.integration.storage_helpers import Buckets, anonymous_user, buckets, new_bucket_id, storage_url

__all__ = ["buckets", "new_bucket_id", "stack_in_both_flavours"]  # fixtures used by name
pytestmark = pytest.mark.integration


def bucket_url(stack: Stack, *parts: str) -> str:
    return storage_url(stack, "bucket", *parts)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "apikey": token}


async def test_service_role_reads_buckets(stack: Stack, buckets: Buckets) -> None:
    async with httpx.AsyncClient(headers=bearer(stack.server_key)) as raw:
        one = await raw.get(bucket_url(stack, buckets.limited))
        listed = await raw.get(bucket_url(stack))
    assert one.status_code == 200
    body = one.json()
    assert body["id"] == body["name"] == buckets.limited
    assert body["public"] is False
    assert body["file_size_limit"] == 16
    assert body["allowed_mime_types"] == ["text/plain"]
    assert {"created_at", "updated_at", "owner"} <= set(body)
    assert {buckets.main, buckets.limited} <= {b["id"] for b in listed.json()}


async def test_users_without_bucket_policies_see_no_buckets(stack: Stack, buckets: Buckets) -> None:
    client, _ = await anonymous_user(stack)
    session = await client.auth.get_session()
    assert session is not None
    async with httpx.AsyncClient(headers=bearer(session.access_token)) as raw:
        one = await raw.get(bucket_url(stack, buckets.main))
        listed = await raw.get(bucket_url(stack))
    assert one.status_code == 400
    assert one.json()["statusCode"] == "404"
    assert listed.status_code == 200
    assert buckets.main not in {b["id"] for b in listed.json()}


async def test_service_role_creates_a_bucket_and_duplicates_conflict(stack: Stack, new_bucket_id: str) -> None:
    service = await new_client(stack, stack.server_key)
    created = await service.storage.create_bucket(new_bucket_id, options={"public": True, "file_size_limit": 1024})
    assert created == {"name": new_bucket_id}
    async with httpx.AsyncClient(headers=bearer(stack.server_key)) as raw:
        fetched = (await raw.get(bucket_url(stack, new_bucket_id))).json()
        duplicate = await raw.post(bucket_url(stack), json={"name": new_bucket_id})
        bad_name = await raw.post(bucket_url(stack), json={"name": "no/slashes"})
    assert fetched["public"] is True
    assert fetched["file_size_limit"] == 1024
    assert duplicate.status_code == 400
    assert duplicate.json()["statusCode"] == "409"
    assert duplicate.json()["error"] == "Duplicate"
    assert bad_name.status_code == 400
    assert bad_name.json()["statusCode"] == "400"


async def test_users_cannot_create_buckets_without_a_policy(stack: Stack, new_bucket_id: str) -> None:
    client, _ = await anonymous_user(stack)
    session = await client.auth.get_session()
    assert session is not None
    async with httpx.AsyncClient(headers=bearer(session.access_token)) as raw:
        res = await raw.post(bucket_url(stack), json={"name": new_bucket_id})
    assert res.status_code == 400
    assert res.json()["statusCode"] == "403"
    assert res.json()["message"] == "new row violates row-level security policy"
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("select count(*) from storage.buckets where id = %s", (new_bucket_id,)).fetchone() == (0,)
