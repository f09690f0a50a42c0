"""/storage/v1 input limits and validation: bounded JSON bodies, strict bucket attributes, tokens
that must expire, listing paged by the database, and file cleanup that cannot fail a committed
change."""

from __future__ import annotations

import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest

from devstack.gateway.storage import endpoints
from devstack.testing.fixtures import Stack
from devstack.tests.integration.storage_helpers import Buckets, buckets, new_bucket_id, storage_url

__all__ = ["buckets", "new_bucket_id"]  # fixtures used by name
pytestmark = pytest.mark.integration

OVER_LIMIT = 11 * 1024 * 1024  # above the local gateway's Settings.max_body_bytes (10 MiB)


def service(stack: Stack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.service_role_key}", "apikey": stack.service_role_key}


def local_only(stack: Stack) -> str:
    if os.environ.get("SUPABASE_URL") or stack.jwt_secret is None:
        pytest.skip("needs the in-process local gateway")
    return stack.jwt_secret


async def test_json_bodies_over_the_limit_are_refused_unread(stack: Stack, buckets: Buckets) -> None:
    local_only(stack)
    big = b'{"prefix": "' + b"x" * OVER_LIMIT + b'"}'
    headers = {**service(stack), "Content-Type": "application/json"}
    async with httpx.AsyncClient(headers=headers, timeout=60) as raw:
        answers = [
            await raw.post(storage_url(stack, "object", "list", buckets.main), content=big),
            await raw.post(storage_url(stack, "object", "sign", buckets.main, "a.txt"), content=big),
            await raw.request("DELETE", storage_url(stack, "object", buckets.main), content=big),
            await raw.post(storage_url(stack, "bucket"), content=big),
        ]
    for answer in answers:
        assert answer.json()["statusCode"] == "413", answer.text
        assert answer.json()["error"] == "Payload too large"


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ({"public": "false"}, "body/public must be boolean"),
        ({"public": 1}, "body/public must be boolean"),
        ({"public": None}, "body/public must be boolean"),
        ({"file_size_limit": -1}, "body/file_size_limit must be null or an integer >= 0"),
        ({"file_size_limit": "10"}, "body/file_size_limit must be null or an integer >= 0"),
        ({"file_size_limit": True}, "body/file_size_limit must be null or an integer >= 0"),
        ({"file_size_limit": 1.5}, "body/file_size_limit must be null or an integer >= 0"),
        ({"allowed_mime_types": "image/png"}, "body/allowed_mime_types must be null or an array of strings"),
        ({"allowed_mime_types": ["image/png", 7]}, "body/allowed_mime_types must be null or an array of strings"),
    ],
)
async def test_create_bucket_refuses_mistyped_attributes(
    stack: Stack, new_bucket_id: str, attributes: dict[str, Any], message: str
) -> None:
    async with httpx.AsyncClient(headers=service(stack)) as raw:
        answer = await raw.post(storage_url(stack, "bucket"), json={"name": new_bucket_id, **attributes})
    assert answer.status_code == 400
    body = answer.json()
    assert (body["statusCode"], body["error"]) == ("400", "InvalidRequest")
    assert body["message"].startswith(message)
    with psycopg.connect(stack.database_url) as conn:
        assert conn.execute("select 1 from storage.buckets where id = %s", (new_bucket_id,)).fetchone() is None


async def test_create_bucket_keeps_booleans_and_treats_a_zero_limit_as_none(stack: Stack, new_bucket_id: str) -> None:
    async with httpx.AsyncClient(headers=service(stack)) as raw:
        created = await raw.post(
            storage_url(stack, "bucket"),
            json={"name": new_bucket_id, "public": False, "file_size_limit": 0, "allowed_mime_types": ["text/plain"]},
        )
        assert created.status_code == 200, created.text
        row = (await raw.get(storage_url(stack, "bucket", new_bucket_id))).json()
    assert row["public"] is False
    assert row["file_size_limit"] is None  # 0 means "no bucket limit", as on hosted Storage
    assert row["allowed_mime_types"] == ["text/plain"]


async def test_tokens_without_exp_are_refused(stack: Stack, buckets: Buckets) -> None:
    secret = local_only(stack)
    forever = jwt.encode({"role": "service_role", "iat": int(time.time())}, secret, "HS256")
    async with httpx.AsyncClient() as raw:
        listed = await raw.get(storage_url(stack, "bucket"), headers={"Authorization": f"Bearer {forever}"})
        key = "no-exp.txt"
        await raw.post(storage_url(stack, "object", buckets.main, key), content=b"hi", headers=service(stack))
        signed = jwt.encode({"url": f"{buckets.main}/{key}", "scope": "download"}, secret, "HS256")
        download = await raw.get(storage_url(stack, "object", "sign", buckets.main, key), params={"token": signed})
    assert listed.status_code in (400, 403)
    assert listed.json()["error"] == "Unauthorized" and "exp" in listed.json()["message"]
    assert download.status_code == 400
    assert download.json()["error"] == "InvalidJWT" and "exp" in download.json()["message"]


async def test_failed_cleanup_after_a_commit_is_logged_not_an_error(
    stack: Stack, buckets: Buckets, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    local_only(stack)

    def broken_remove(path: Path, stop_at: Path) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(endpoints, "_remove_file", broken_remove)
    key = f"cleanup-{uuid.uuid4().hex[:8]}.txt"
    caplog.set_level(logging.WARNING, logger=endpoints.__name__)
    async with httpx.AsyncClient(headers=service(stack)) as raw:
        first = await raw.post(storage_url(stack, "object", buckets.main, key), content=b"one")
        replaced = await raw.put(storage_url(stack, "object", buckets.main, key), content=b"two")
        assert (first.status_code, replaced.status_code) == (200, 200), replaced.text
        assert (await raw.get(storage_url(stack, "object", buckets.main, key))).content == b"two"
        removed = await raw.request("DELETE", storage_url(stack, "object", buckets.main), json={"prefixes": [key]})
        assert removed.status_code == 200, removed.text
        assert [row["name"] for row in removed.json()] == [key]
    assert sum("could not remove" in r.getMessage() for r in caplog.records) == 2


async def test_list_pages_and_sorts_folder_entries(stack: Stack, buckets: Buckets) -> None:
    suffix = uuid.uuid4().hex[:8]
    folder = f"paged_{suffix}"  # `_` is a LIKE wildcard: the prefix match must escape it
    names = ["b.txt", "a.txt", "A.txt", "c/one.txt", "c/two.txt", "d/x/y.txt", "e.txt", "1_done.txt"]
    async with httpx.AsyncClient(headers=service(stack)) as raw:
        for name in names:
            answer = await raw.post(storage_url(stack, "object", buckets.main, folder, name), content=name.encode())
            assert answer.status_code == 200, answer.text
        await raw.post(storage_url(stack, "object", buckets.main, f"pagedZ{suffix}", "outside.txt"), content=b"x")

        async def listing(**options: Any) -> list[dict[str, Any]]:
            answer = await raw.post(
                storage_url(stack, "object", "list", buckets.main), json={"prefix": folder, **options}
            )
            assert answer.status_code == 200, answer.text
            entries: list[dict[str, Any]] = answer.json()
            return entries

        everything = await listing()
        assert [e["name"] for e in everything] == ["1_done.txt", "A.txt", "a.txt", "b.txt", "c", "d", "e.txt"]
        assert [e["id"] is None for e in everything] == [False, False, False, False, True, True, False]
        page = await listing(limit=2, offset=3, sortBy={"column": "name", "order": "desc"})
        assert [e["name"] for e in page] == ["b.txt", "a.txt"]
        by_time = await listing(sortBy={"column": "created_at", "order": "asc"})
        assert [e["name"] for e in by_time][-2:] == ["c", "d"]  # folders have no timestamps: last
        assert [e["name"] for e in by_time][:5] == ["b.txt", "a.txt", "A.txt", "e.txt", "1_done.txt"]
        assert [e["name"] for e in await listing(search="A")] == ["A.txt", "a.txt"]
        assert [e["name"] for e in await listing(search="1_")] == ["1_done.txt"]
        assert await listing(limit=0) == []
        # Any JSON where the schema wants a string enum (a list once got past the check as a 500).
        for sort_by, message in [
            ({"column": "id; drop"}, "body/sortBy/column must be equal to one of the allowed values"),
            ({"column": ["name"]}, "body/sortBy/column must be string"),
            ({"column": "name", "order": {"a": 1}}, "body/sortBy/order must be string"),
            ({"column": "name", "order": "up"}, "body/sortBy/order must be equal to one of the allowed values"),
            ([], "body/sortBy must be object"),
        ]:
            refused = await raw.post(
                storage_url(stack, "object", "list", buckets.main), json={"prefix": folder, "sortBy": sort_by}
            )
            assert refused.status_code == 400 and refused.json()["message"] == message, (sort_by, refused.text)


async def test_a_value_the_database_cannot_convert_is_a_400_invalid_parameter(stack: Stack, buckets: Buckets) -> None:
    # A token whose sub is not a uuid (only a forged or foreign-issued token has one): auth.uid()
    # fails with 22P02, which Storage answers InvalidParameter 400, not DatabaseError 500.
    secret = local_only(stack)
    claims = {"role": "authenticated", "sub": "not-a-uuid", "exp": int(time.time()) + 60}
    token = jwt.encode(claims, secret, "HS256")
    key = f"not-a-uuid/{uuid.uuid4().hex[:8]}.txt"  # the policy is checked against an existing row
    async with httpx.AsyncClient() as raw:
        stored = await raw.post(storage_url(stack, "object", buckets.main, key), content=b"x", headers=service(stack))
        assert stored.status_code == 200, stored.text
        caller = {"Authorization": f"Bearer {token}", "apikey": stack.anon_key}
        answer = await raw.get(storage_url(stack, "object", buckets.main, key), headers=caller)
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["statusCode"], body["error"]) == ("400", "InvalidParameter")
    assert "uuid" in body["message"]


async def test_a_stored_header_value_that_cannot_be_sent_falls_back(stack: Stack, buckets: Buckets) -> None:
    # A row an operator or an older version wrote: the download still works, without that value.
    local_only(stack)
    key = f"bad-header-{uuid.uuid4().hex[:8]}.txt"
    async with httpx.AsyncClient(headers=service(stack)) as raw:
        stored = await raw.post(
            storage_url(stack, "object", buckets.main, key), content=b"hi", headers={"content-type": "text/plain"}
        )
        assert stored.status_code == 200, stored.text
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(
                "update storage.objects set metadata = metadata || jsonb_build_object('mimetype', %s::text,"
                " 'cacheControl', %s::text, 'eTag', %s::text) where bucket_id = %s and name = %s",
                ("text/plain\r\nx-injected: 1", "max-age=\u00fc", "\x01", buckets.main, key),
            )
        answer = await raw.get(storage_url(stack, "object", buckets.main, key))
    assert answer.status_code == 200 and answer.content == b"hi"
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["cache-control"] == "no-cache"
    assert "\x01" not in answer.headers.get("etag", "") and "x-injected" not in answer.headers
