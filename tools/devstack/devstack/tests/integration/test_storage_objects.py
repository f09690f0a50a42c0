"""/storage/v1 objects with the real storage3 client: RLS-decided upload, download, signed URLs,
remove and list, plus the refusals hosted Storage gives (its bodies carry the semantic status in
``statusCode`` while most are sent with HTTP 400)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator

import httpx
import jwt
import pytest
from storage3.exceptions import StorageApiError

from devstack import paths
from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import stack_in_both_flavours
from devstack.tests.integration.storage_helpers import (
    LIMITED_MAX_BYTES,
    LIMITED_MIME,
    Buckets,
    anonymous_user,
    fixture_buckets,
    object_row,
)
from supabase import AsyncClient

__all__ = ["stack_in_both_flavours"]  # the whole module runs under both key flavours
pytestmark = pytest.mark.integration

# Bytes that look like multipart framing, so a sloppy parser would corrupt them.
PAYLOAD = b"\x00\x01binary\r\n--boundary\r\n\r\n\xff\xfe end"


@pytest.fixture(scope="module")
def buckets(stack: Stack) -> Iterator[Buckets]:
    with fixture_buckets(stack) as created:
        yield created


def storage_url(stack: Stack, *parts: str) -> str:
    return "/".join([stack.url, "storage", "v1", *parts])


def auth_headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def access_token(client: AsyncClient) -> str:
    session = await client.auth.get_session()
    assert session is not None
    return session.access_token


# -- owner's round trip -----------------------------------------------------------------------------


async def test_owner_uploads_and_downloads_and_the_row_is_theirs(stack: Stack, buckets: Buckets) -> None:
    client, uid = await anonymous_user(stack)
    path = f"{uid}/docs/blob.bin"

    uploaded = await client.storage.from_(buckets.main).upload(
        path, PAYLOAD, {"content-type": "application/octet-stream"}
    )
    assert uploaded.path == path
    assert uploaded.full_path == f"{buckets.main}/{path}"
    assert await client.storage.from_(buckets.main).download(path) == PAYLOAD

    row = object_row(stack, buckets.main, path)
    assert row is not None
    assert row["owner"] == uid
    assert row["owner_id"] == uid
    metadata = row["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["size"] == len(PAYLOAD)
    assert metadata["contentLength"] == len(PAYLOAD)
    assert metadata["mimetype"] == "application/octet-stream"
    assert metadata["eTag"] == f'"{hashlib.md5(PAYLOAD, usedforsecurity=False).hexdigest()}"'
    assert metadata["cacheControl"] == "max-age=3600"
    assert metadata["httpStatusCode"] == 200


async def test_raw_body_upload_as_storage_js_sends_it(stack: Stack, buckets: Buckets) -> None:
    client, uid = await anonymous_user(stack)
    path = f"{uid}/pixel.png"
    async with httpx.AsyncClient() as raw:
        res = await raw.post(
            storage_url(stack, "object", buckets.main, path),
            content=PAYLOAD,
            headers={
                **auth_headers(await access_token(client)),
                "Content-Type": "image/png",
                "cache-control": "max-age=60",
            },
        )
        assert res.status_code == 200, res.text
        assert res.json()["Key"] == f"{buckets.main}/{path}"
        got = await raw.get(
            storage_url(stack, "object", "authenticated", buckets.main, path),
            headers=auth_headers(await access_token(client)),
        )
    assert got.status_code == 200
    assert got.content == PAYLOAD
    assert got.headers["content-type"] == "image/png"
    assert got.headers["cache-control"] == "max-age=60"


async def test_upload_without_upsert_conflicts_and_upsert_replaces(stack: Stack, buckets: Buckets) -> None:
    client, uid = await anonymous_user(stack)
    bucket = client.storage.from_(buckets.main)
    path = f"{uid}/report.txt"
    await bucket.upload(path, b"first")
    first_version = (object_row(stack, buckets.main, path) or {})["version"]

    with pytest.raises(StorageApiError) as err:
        await bucket.upload(path, b"second")
    assert str(err.value.status) == "409"
    assert err.value.code == "Duplicate"
    assert await bucket.download(path) == b"first"

    await bucket.upload(path, b"second", {"upsert": "true"})
    assert await bucket.download(path) == b"second"
    await bucket.update(path, b"third")
    assert await bucket.download(path) == b"third"
    if stack.jwt_secret is not None:  # in-process: replaced versions leave no bytes behind
        versions = list((paths.STATE / "storage" / buckets.main / uid / "report.txt").iterdir())
        assert [v.name for v in versions] == [f"~{(object_row(stack, buckets.main, path) or {})['version']}"]
        assert f"~{first_version}" not in [v.name for v in versions]


# -- other users and RLS ------------------------------------------------------------------------------


async def test_another_user_can_neither_read_sign_overwrite_nor_remove(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    bob, _ = await anonymous_user(stack)
    path = f"{alice_id}/private.txt"
    await alice.storage.from_(buckets.main).upload(path, b"alice's")
    as_bob = bob.storage.from_(buckets.main)

    with pytest.raises(StorageApiError) as read_err:
        await as_bob.download(path)
    assert (str(read_err.value.status), read_err.value.code) == ("404", "not_found")
    with pytest.raises(StorageApiError) as sign_err:
        await as_bob.create_signed_url(path, 60)
    assert str(sign_err.value.status) == "404"
    for options in ({}, {"upsert": "true"}):
        with pytest.raises(StorageApiError) as write_err:
            await as_bob.upload(path, b"bob's", options)  # type: ignore[arg-type]
        assert str(write_err.value.status) == "403"
        assert write_err.value.message == "new row violates row-level security policy"
    assert await as_bob.remove([path]) == []

    assert await alice.storage.from_(buckets.main).download(path) == b"alice's"


async def test_user_cannot_upload_into_another_users_folder(stack: Stack, buckets: Buckets) -> None:
    alice, _ = await anonymous_user(stack)
    _, bob_id = await anonymous_user(stack)
    path = f"{bob_id}/planted.txt"

    with pytest.raises(StorageApiError) as err:
        await alice.storage.from_(buckets.main).upload(path, b"x")
    assert str(err.value.status) == "403"
    assert err.value.code == "Unauthorized"
    assert object_row(stack, buckets.main, path) is None
    if stack.jwt_secret is not None:
        assert not (paths.STATE / "storage" / buckets.main / bob_id).exists(), "no bytes are left behind"


async def test_missing_or_invalid_token_is_refused(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    path = f"{alice_id}/secret.txt"
    await alice.storage.from_(buckets.main).upload(path, b"secret")
    async with httpx.AsyncClient() as raw:
        no_token = await raw.post(storage_url(stack, "object", buckets.main, f"{alice_id}/x.txt"), content=b"x")
        forged = await raw.post(
            storage_url(stack, "object", buckets.main, f"{alice_id}/x.txt"),
            content=b"x",
            headers=auth_headers(jwt.encode({"sub": alice_id, "role": "authenticated"}, "not-the-secret")),
        )
        anonymous_read = await raw.get(storage_url(stack, "object", buckets.main, path))
        authenticated_route = await raw.get(storage_url(stack, "object", "authenticated", buckets.main, path))
    for res in (no_token, forged, authenticated_route):
        assert res.status_code == 400
        assert res.json()["statusCode"] == "403"
        assert res.json()["error"] == "Unauthorized"
    assert anonymous_read.status_code == 400
    assert anonymous_read.json()["statusCode"] == "404"  # a private bucket does not exist for anon
    assert object_row(stack, buckets.main, f"{alice_id}/x.txt") is None


@pytest.mark.parametrize("bad_segment", ["%2e%2e/%2e%2e/escape.txt", "a%5cb.txt", "nul%00.txt", "%2e/dot.txt"])
async def test_path_traversal_and_unsafe_keys_are_refused(stack: Stack, buckets: Buckets, bad_segment: str) -> None:
    alice, alice_id = await anonymous_user(stack)
    url = f"{storage_url(stack, 'object', buckets.main)}/{alice_id}/{bad_segment}"
    async with httpx.AsyncClient() as raw:
        res = await raw.post(url, content=b"x", headers=auth_headers(await access_token(alice)))
        still_serving = await raw.get(
            storage_url(stack, "bucket", buckets.main),
            headers={**auth_headers(stack.server_key), "apikey": stack.server_key},
        )
    assert res.status_code == 400
    assert res.json()["statusCode"] == "400"
    assert res.json()["error"] == "InvalidKey"
    assert still_serving.status_code == 200
    assert object_row(stack, buckets.main, f"{alice_id}/{bad_segment}") is None


async def test_bucket_size_and_mime_limits(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    limited = alice.storage.from_(buckets.limited)

    with pytest.raises(StorageApiError) as too_large:
        await limited.upload(f"{alice_id}/big.txt", b"x" * (LIMITED_MAX_BYTES + 1), {"content-type": LIMITED_MIME})
    assert str(too_large.value.status) == "413"
    with pytest.raises(StorageApiError) as wrong_type:
        await limited.upload(f"{alice_id}/img.png", b"png", {"content-type": "image/png"})
    assert str(wrong_type.value.status) == "415"
    assert wrong_type.value.code == "invalid_mime_type"

    await limited.upload(f"{alice_id}/ok.txt", b"x" * LIMITED_MAX_BYTES, {"content-type": LIMITED_MIME})
    assert object_row(stack, buckets.limited, f"{alice_id}/big.txt") is None
    assert object_row(stack, buckets.limited, f"{alice_id}/img.png") is None


# -- signed URLs ------------------------------------------------------------------------------------------


async def test_signed_url_downloads_without_auth(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    path = f"{alice_id}/shared.bin"
    await alice.storage.from_(buckets.main).upload(path, PAYLOAD)

    signed = await alice.storage.from_(buckets.main).create_signed_url(path, 60)
    url = signed["signedURL"]
    assert url is not None
    async with httpx.AsyncClient() as raw:
        res = await raw.get(url)
    assert res.status_code == 200
    assert res.content == PAYLOAD


async def test_tampered_or_misused_signed_urls_are_refused(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    bucket = alice.storage.from_(buckets.main)
    await bucket.upload(f"{alice_id}/one.txt", b"one")
    await bucket.upload(f"{alice_id}/two.txt", b"two")
    url = (await bucket.create_signed_url(f"{alice_id}/one.txt", 60))["signedURL"]
    assert url is not None
    base, _, token = url.partition("?token=")
    header, _payload, signature = token.split(".")
    forged_payload = jwt.utils.base64url_encode(
        f'{{"url":"{buckets.main}/{alice_id}/two.txt","exp":{int(time.time()) + 60}}}'.encode()
    ).decode()

    async with httpx.AsyncClient() as raw:
        tampered = await raw.get(f"{base}?token={header}.{forged_payload}.{signature}")
        other_object = await raw.get(f"{base.replace('one.txt', 'two.txt')}?token={token}")
        no_token = await raw.get(base)
    assert tampered.status_code == 400
    assert tampered.json()["error"] == "InvalidJWT"
    assert other_object.status_code == 400
    assert other_object.json()["error"] == "InvalidSignature"
    assert no_token.status_code == 400

    if stack.jwt_secret is not None:
        expired = jwt.encode(
            {"url": f"{buckets.main}/{alice_id}/one.txt", "iat": 1, "exp": int(time.time()) - 10}, stack.jwt_secret
        )
        async with httpx.AsyncClient() as raw:
            res = await raw.get(f"{base}?token={expired}")
        assert res.status_code == 400
        assert res.json()["error"] == "InvalidJWT"


# -- remove and list ------------------------------------------------------------------------------------------


async def test_remove_returns_the_removed_objects_and_their_bytes_are_gone(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    bucket = alice.storage.from_(buckets.main)
    names = [f"{alice_id}/a.txt", f"{alice_id}/b.txt"]
    for name in names:
        await bucket.upload(name, name.encode())

    removed = await bucket.remove([*names, f"{alice_id}/never-existed.txt"])
    assert sorted(obj["name"] for obj in removed) == names
    assert all(obj["bucket_id"] == buckets.main for obj in removed)
    for name in names:
        with pytest.raises(StorageApiError):
            await bucket.download(name)
    if stack.jwt_secret is not None:
        assert not (paths.STATE / "storage" / buckets.main / alice_id).exists()


async def test_list_shows_files_and_folders_the_caller_may_see(stack: Stack, buckets: Buckets) -> None:
    alice, alice_id = await anonymous_user(stack)
    bob, _ = await anonymous_user(stack)
    bucket = alice.storage.from_(buckets.main)
    await bucket.upload(f"{alice_id}/top.txt", b"1")
    await bucket.upload(f"{alice_id}/sub/inner.txt", b"2")

    entries = await bucket.list(alice_id)
    by_name = {e["name"]: e for e in entries}
    assert set(by_name) == {"top.txt", "sub"}
    assert by_name["sub"]["id"] is None
    assert by_name["top.txt"]["metadata"]["size"] == 1
    assert await bob.storage.from_(buckets.main).list(alice_id) == []
