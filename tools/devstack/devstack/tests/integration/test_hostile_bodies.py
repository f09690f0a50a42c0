"""Hostile JSON, NUL characters, oversized integers and malformed role claims get a precise 4xx in
each service's own error shape (never a 500, never a dropped socket), and nothing is written."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import pytest_asyncio
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devstack.gateway.bounded_json import MAX_DEPTH, MAX_VALUES
from devstack.gateway.pg import BIGINT_MAX
from devstack.gateway.realtime.jwt_check import ROLE_TEXT
from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import PASSWORD, unique_email
from devstack.tests.integration.realtime_support import raw_socket, ws_url
from devstack.tests.integration.storage_helpers import Buckets, buckets, object_row, storage_url

__all__ = ["buckets"]  # fixtures used by name
pytestmark = pytest.mark.integration

TOO_DEEP = f"JSON nested deeper than {MAX_DEPTH} levels"
TOO_MANY = f"more than {MAX_VALUES} values in one JSON document"
NUL_TEXT = "must not contain NUL characters (\\u0000)"
HOSTILE = {5_000: TOO_DEEP, 100_000: TOO_MANY}  # levels of `[` → what the answer must say


@pytest.fixture(autouse=True)
def local_only(stack: Stack) -> None:
    if os.environ.get("SUPABASE_URL") or stack.jwt_secret is None:
        pytest.skip("the local gateway's limits and wording")


def deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def role_token(stack: Stack, role: Any, sub: str | None = None) -> str:
    assert stack.jwt_secret is not None
    now = int(time.time())
    claims = {"role": role, "iat": now, "exp": now + 600, "sub": sub or str(uuid.uuid4())}
    return jwt.encode(claims, stack.jwt_secret, "HS256")


def service(stack: Stack) -> dict[str, str]:
    return {"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"}


def scalar(stack: Stack, query: str, *params: Any) -> Any:
    with psycopg.connect(stack.database_url) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


class User:
    def __init__(self, stack: Stack, answer: dict[str, Any]) -> None:
        self.id: str = answer["user"]["id"]
        self.token: str = answer["access_token"]
        self.refresh_token: str = answer["refresh_token"]
        self.headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {self.token}"}

    def jobs(self, stack: Stack) -> int:
        return int(scalar(stack, "select count(*) from public.jobs where user_id = %s", self.id))


@pytest_asyncio.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers, timeout=60) as client:
        yield client


@pytest_asyncio.fixture
async def user(stack: Stack, http: httpx.AsyncClient) -> User:
    answer = await http.post("/auth/v1/signup", json={}, headers={"apikey": stack.anon_key})
    assert answer.status_code == 200, answer.text
    return User(stack, answer.json())


def assert_postgrest(answer: httpx.Response, code: str, text: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert set(body) == {"code", "message", "details", "hint"} and body["code"] == code
    assert text in body["message"]


def assert_gotrue(answer: httpx.Response, error_code: str, text: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["code"], body["error_code"]) == (400, error_code)
    assert text in body["msg"]


def assert_storage(answer: httpx.Response, message: str) -> None:
    assert answer.status_code == 400, answer.text
    body = answer.json()
    assert (body["statusCode"], body["error"]) == ("400", "InvalidRequest")
    assert body["message"] == message


# -- deeply nested and oversized JSON ---------------------------------------------------------------


@pytest.mark.parametrize("levels", HOSTILE)
async def test_rest_rpc_insert_and_patch(stack: Stack, http: httpx.AsyncClient, user: User, levels: int) -> None:
    hostile = deep(levels)
    rpc = await http.post(
        "/rest/v1/rpc/enqueue_job",
        content=f'{{"kind": "generate_design", "payload": {{"prompt": {hostile}}}}}',
        headers=user.headers,
    )
    insert = await http.post("/rest/v1/jobs", content=f'{{"payload": {hostile}}}', headers=user.headers)
    patch = await http.patch(
        "/rest/v1/jobs", params={"id": f"eq.{uuid.uuid4()}"}, content=f'{{"payload": {hostile}}}', headers=user.headers
    )
    for answer in (rpc, insert, patch):
        assert_postgrest(answer, "PGRST102", HOSTILE[levels])
    assert user.jobs(stack) == 0


@pytest.mark.parametrize("levels", HOSTILE)
@pytest.mark.parametrize(
    ("path", "template"),
    [
        ("/auth/v1/signup", '{{"email": "{email}", "password": "{password}", "data": {hostile}}}'),
        ("/auth/v1/token?grant_type=password", '{{"email": "{email}", "password": {hostile}}}'),
        ("/auth/v1/token?grant_type=refresh_token", '{{"refresh_token": {hostile}}}'),
    ],
    ids=["signup", "password-grant", "refresh-grant"],
)
async def test_auth_endpoints(stack: Stack, http: httpx.AsyncClient, levels: int, path: str, template: str) -> None:
    email = unique_email("hostile")
    body = template.format(email=email, password=PASSWORD, hostile=deep(levels))
    answer = await http.post(path, content=body, headers={"apikey": stack.anon_key})
    assert_gotrue(answer, "bad_json", f"Could not parse request body as JSON: {HOSTILE[levels]}")
    assert scalar(stack, "select count(*) from auth.users where email = %s", email) == 0


@pytest.mark.parametrize("levels", HOSTILE)
async def test_storage_json_endpoints(stack: Stack, http: httpx.AsyncClient, buckets: Buckets, levels: int) -> None:
    hostile = deep(levels)
    bucket_id = f"hostile-{uuid.uuid4().hex[:8]}"
    requests = [
        ("POST", storage_url(stack, "object", "sign", buckets.main, "a.txt"), f'{{"expiresIn": {hostile}}}'),
        ("POST", storage_url(stack, "object", "list", buckets.main), f'{{"prefix": {hostile}}}'),
        ("DELETE", storage_url(stack, "object", buckets.main), f'{{"prefixes": {hostile}}}'),
        ("POST", storage_url(stack, "bucket"), f'{{"name": "{bucket_id}", "x": {hostile}}}'),
    ]
    answers = [await http.request(method, url, content=body, headers=service(stack)) for method, url, body in requests]
    for answer in answers:
        assert_storage(answer, f"body: {HOSTILE[levels]}")
    assert scalar(stack, "select count(*) from storage.buckets where id = %s", bucket_id) == 0


@pytest.mark.parametrize("levels", HOSTILE)
async def test_realtime_http_broadcast(stack: Stack, http: httpx.AsyncClient, levels: int) -> None:
    hostile = deep(levels)
    batch = await http.post("/realtime/v1/api/broadcast", content=f'{{"messages": {hostile}}}', headers=service(stack))
    single = await http.post(
        "/realtime/v1/api/broadcast/room/events/e", content=f'{{"x": {hostile}}}', headers=service(stack)
    )
    assert (batch.status_code, batch.json()) == (422, {"errors": {"body": [f"is invalid: {HOSTILE[levels]}"]}})
    assert (single.status_code, single.json()) == (422, {"errors": {"payload": [f"is invalid: {HOSTILE[levels]}"]}})


def frame(vsn: str, payload: str) -> str:
    """A broadcast push whose payload is the JSON text ``payload``, as vsn 1.0.0 or 2.0.0 frames it."""
    if vsn == "2.0.0":
        return f'[null, "1", "realtime:room", "broadcast", {payload}]'
    return f'{{"topic": "realtime:room", "event": "broadcast", "payload": {payload}, "ref": "1"}}'


@pytest.mark.parametrize(
    ("vsn", "payload", "code", "reason"),
    [
        ("1.0.0", f'{{"a": {deep(5_000)}}}', 1009, TOO_DEEP),
        ("2.0.0", f'{{"a": {deep(100_000)}}}', 1009, TOO_MANY),
        ("1.0.0", '{"a": "\\ud800"}', 1007, "payload.a: contains an unpaired UTF-16 surrogate escape"),
        ("2.0.0", '{"n": 1e999}', 1007, "number 1e999 is out of range"),
    ],
    ids=["v1-too-deep", "v2-too-many-values", "v1-unpaired-surrogate", "v2-number-out-of-range"],
)
async def test_websocket_frames_beyond_the_limits_get_a_close_frame(
    stack: Stack, http: httpx.AsyncClient, vsn: str, payload: str, code: int, reason: str
) -> None:
    async with connect(ws_url(stack, apikey=stack.anon_key, vsn=vsn), max_size=None) as ws:
        await ws.send(frame(vsn, payload))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None, "the server closed without a close frame"
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)
    # The gateway keeps serving: a new socket answers heartbeats, HTTP answers.
    async with raw_socket(stack, vsn=vsn) as sock:
        ref = await sock.heartbeat()
        reply = await sock.recv_json()
        assert (reply["ref"], reply["payload"]["status"]) == (ref, "ok")
    assert (await http.get("/health")).status_code == 200


async def test_malformed_frames_are_still_ignored_and_the_socket_stays(stack: Stack) -> None:
    async with raw_socket(stack) as sock:
        await sock.ws.send("{not json")
        ref = await sock.heartbeat()
        assert (await sock.recv_json())["ref"] == ref


# -- NUL characters ---------------------------------------------------------------------------------


async def test_auth_refuses_nul_naming_the_field(stack: Stack, http: httpx.AsyncClient, user: User) -> None:
    anon = {"apikey": stack.anon_key}
    email = unique_email("nul")
    signup = await http.post(
        "/auth/v1/signup", json={"email": email, "password": PASSWORD, "data": {"nick": "a\x00"}}, headers=anon
    )
    assert_gotrue(signup, "validation_failed", f"data.nick: {NUL_TEXT}")
    assert scalar(stack, "select count(*) from auth.users where email = %s", email) == 0
    login = await http.post(
        "/auth/v1/token?grant_type=password", json={"email": email, "password": "x\x00yyyyyy"}, headers=anon
    )
    assert_gotrue(login, "validation_failed", f"password: {NUL_TEXT}")
    refresh = await http.post(
        "/auth/v1/token?grant_type=refresh_token", json={"refresh_token": user.refresh_token + "\x00"}, headers=anon
    )
    assert_gotrue(refresh, "validation_failed", f"refresh_token: {NUL_TEXT}")
    update = await http.put("/auth/v1/user", json={"data": {"nick": "b\x00"}}, headers=user.headers)
    assert_gotrue(update, "validation_failed", f"data.nick: {NUL_TEXT}")
    me = await http.get("/auth/v1/user", headers=user.headers)
    assert me.status_code == 200 and "nick" not in me.json()["user_metadata"]
    still = await http.post(
        "/auth/v1/token?grant_type=refresh_token", json={"refresh_token": user.refresh_token}, headers=anon
    )
    assert still.status_code == 200, still.text  # the refused attempt used nothing up


async def test_storage_refuses_nul_naming_the_field(stack: Stack, http: httpx.AsyncClient, buckets: Buckets) -> None:
    key = f"nul-{uuid.uuid4().hex[:8]}.txt"
    kept = await http.post(
        storage_url(stack, "object", buckets.main, key),
        content=b"keep",
        headers={**service(stack), "Content-Type": "text/plain"},
    )
    assert kept.status_code == 200, kept.text
    listing = storage_url(stack, "object", "list", buckets.main)
    search = await http.post(listing, json={"prefix": "", "search": "a\x00"}, headers=service(stack))
    assert_storage(search, f"body/search {NUL_TEXT}")
    prefix = await http.post(listing, json={"prefix": "a\x00"}, headers=service(stack))
    assert_storage(prefix, f"body/prefix {NUL_TEXT}")
    remove = await http.request(
        "DELETE", storage_url(stack, "object", buckets.main), json={"prefixes": [key, "b\x00"]}, headers=service(stack)
    )
    assert_storage(remove, f"body/prefixes/1 {NUL_TEXT}")
    assert object_row(stack, buckets.main, key) is not None  # nothing half-removed
    metadata = base64.b64encode(json.dumps({"owner": "x\x00"}).encode()).decode()
    upload = await http.post(
        storage_url(stack, "object", buckets.main, "meta-" + key),
        content=b"data",
        headers={**service(stack), "Content-Type": "text/plain", "x-metadata": metadata},
    )
    assert_storage(upload, f"x-metadata/owner {NUL_TEXT}")
    assert object_row(stack, buckets.main, "meta-" + key) is None


async def test_rest_refuses_nul_in_bodies(stack: Stack, http: httpx.AsyncClient, user: User) -> None:
    rpc = await http.post(
        "/rest/v1/rpc/enqueue_job",
        json={"kind": "generate_design", "payload": {"prompt": "a\x00"}},
        headers=user.headers,
    )
    assert_postgrest(rpc, "PGRST102", f"payload.prompt: {NUL_TEXT}")
    assert user.jobs(stack) == 0  # NUL in query parameters: tests/integration/test_rest_hostile_queries.py


# -- integers beyond bigint -------------------------------------------------------------------------


@pytest.mark.parametrize("field", ["limit", "offset"])
async def test_storage_list_bounds_limit_and_offset(
    stack: Stack, http: httpx.AsyncClient, buckets: Buckets, field: str
) -> None:
    answer = await http.post(
        storage_url(stack, "object", "list", buckets.main), json={"prefix": "", field: 10**30}, headers=service(stack)
    )
    assert_storage(answer, f"body/{field} must be integer >= 0 and <= {BIGINT_MAX}")
    at_most = await http.post(
        storage_url(stack, "object", "list", buckets.main),
        json={"prefix": "", field: BIGINT_MAX},
        headers=service(stack),
    )
    assert at_most.status_code == 200, at_most.text


async def test_storage_bounds_bucket_size_and_signed_url_lifetime(
    stack: Stack, http: httpx.AsyncClient, buckets: Buckets
) -> None:
    bucket_id = f"hostile-{uuid.uuid4().hex[:8]}"
    created = await http.post(
        storage_url(stack, "bucket"), json={"name": bucket_id, "file_size_limit": 10**30}, headers=service(stack)
    )
    assert created.status_code == 400 and created.json()["message"].startswith(
        f"body/file_size_limit must be null or an integer >= 0 and <= {BIGINT_MAX}"
    )
    assert scalar(stack, "select count(*) from storage.buckets where id = %s", bucket_id) == 0
    for expires in (10**30, "9" * 5_000):
        signed = await http.post(
            storage_url(stack, "object", "sign", buckets.main, "a.txt"),
            json={"expiresIn": expires},
            headers=service(stack),
        )
        assert_storage(signed, f"body/expiresIn must be integer >= 1 and <= {BIGINT_MAX}")


# -- role claims that are not strings ---------------------------------------------------------------

ODD_ROLES = [(["authenticated"], "an array"), ({"name": "service_role"}, "an object"), (7, "a number")]


@pytest.mark.parametrize(("role", "kind"), ODD_ROLES)
async def test_http_services_refuse_a_role_that_is_not_a_string(
    stack: Stack, http: httpx.AsyncClient, role: Any, kind: str
) -> None:
    token = role_token(stack, role)
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {token}"}
    rest = await http.get("/rest/v1/jobs", headers=headers)
    assert rest.status_code == 401 and rest.json()["code"] == "PGRST301"
    assert rest.json()["message"] == f"JWT claim role must be a string, not {kind}"
    storage = await http.get(storage_url(stack, "bucket"), headers=headers)
    assert storage.status_code == 400
    assert (storage.json()["statusCode"], storage.json()["code"]) == ("403", "AccessDenied")
    assert storage.json()["message"] == f"JWT claim role must be a string, not {kind}"
    message = {"topic": "room", "event": "e", "payload": {}}
    broadcast = await http.post("/realtime/v1/api/broadcast", json={"messages": [message]}, headers=headers)
    assert (broadcast.status_code, broadcast.json()) == (401, {"message": "Unauthorized"})
    auth = await http.get("/auth/v1/user", headers=headers)
    assert auth.status_code == 403 and auth.json()["error_code"] == "bad_jwt"
    assert "AccessTokenClaims.role of type string" in auth.json()["msg"]


@pytest.mark.parametrize(("role", "kind"), ODD_ROLES)
async def test_websocket_refuses_a_role_that_is_not_a_string(stack: Stack, role: Any, kind: str) -> None:
    token = role_token(stack, role)
    async with raw_socket(stack) as sock:
        reply = await sock.join("realtime:odd-role", {}, token=token)
        assert reply["payload"] == {"status": "error", "response": {"reason": f"InvalidJWTToken: {ROLE_TEXT}"}}
        ref = await sock.heartbeat()
        assert (await sock.recv_json())["ref"] == ref  # the socket lives on
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(stack, apikey=token)):
            pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body or b"{}") == {"error": ROLE_TEXT}
