"""The gateway's edges, over raw sockets and plain HTTP: oversized or malformed request heads
(websocket upgrades included) are answered at once with a JSON 4xx and the socket is closed;
requests no route takes are answered in the error shape of the service owning the prefix."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from devstack.gateway import edge
from devstack.testing.fixtures import Stack

pytestmark = pytest.mark.integration

# Only to fail instead of hanging: the answers come at once (they used to never come).
ANSWER_TIMEOUT = 30


@pytest.fixture
def local(stack: Stack) -> Stack:
    if not stack.jwt_secret:
        pytest.skip("the limits and shapes are the local gateway's")
    return stack


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def exchange(stack: Stack, head: bytes, *, chunk: int | None = None) -> Answer:
    """Send ``head`` as is (in ``chunk``-byte writes if given), then read until the server closes."""
    url = urlsplit(stack.url)
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        step = chunk or len(head)
        for start in range(0, len(head), step):
            writer.write(head[start : start + step])
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT)  # to EOF: the server closed
    finally:
        writer.close()
    top, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return Answer(int(status_line.split(" ")[1]), headers, body)


def upgrade(target: str, extra: str = "") -> bytes:
    return (
        f"GET {target} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def plain(target: str, extra: str = "") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: localhost\r\n{extra}\r\n".encode()


async def still_serving(stack: Stack) -> None:
    async with httpx.AsyncClient() as client:
        assert (await client.get(f"{stack.url}/health")).status_code == 200


@pytest.mark.parametrize(
    ("head", "status"),
    [
        # A 20 KB apikey: no byte was answered and the socket was held for minutes.
        (upgrade(f"/realtime/v1/websocket?apikey={'a' * 20_000}&vsn=1.0.0"), 414),
        (upgrade(f"/realtime/v1/websocket?apikey={'a' * 10_000}&vsn=1.0.0"), 414),  # over websockets' 8 KB line
        (upgrade("/realtime/v1/websocket?vsn=1.0.0", f"X-Big: {'b' * 10_000}\r\n"), 431),
        (upgrade("/realtime/v1/websocket?vsn=1.0.0", "".join(f"X-H{i}: v\r\n" for i in range(200))), 431),
        (upgrade("/realtime/v1/websocket?vsn=1.0.0", "Bad Header Name: v\r\n"), 400),
    ],
    ids=["url-20KB", "url-10KB", "header-10KB", "200-headers", "bad-header-name"],
)
async def test_a_websocket_upgrade_it_cannot_take_is_answered_and_closed(
    local: Stack, head: bytes, status: int
) -> None:
    answer = await exchange(local, head)
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    assert answer.headers["access-control-allow-origin"] == "*"
    assert set(answer.json()) == {"message"}
    await still_serving(local)


@pytest.mark.parametrize(
    ("head", "chunk", "status", "message"),
    [
        (plain(f"/rest/v1/jobs?apikey={'a' * 20_000}"), None, 414, edge.URL_TOO_LONG[1]),
        (plain("/health", f"X-Big: {'b' * 40_000}\r\n"), None, 431, edge.HEADERS_TOO_LARGE[1]),
        (plain("/health", f"X-Big: {'b' * 600_000}\r\n"), None, 431, None),
        (plain(f"/health?{'q' * 60_000}"), 4096, 414, None),  # arrives in pieces: h11 gives up first
        (b"NOT AN HTTP REQUEST\r\n\r\n", None, 400, None),
    ],
    ids=["url-20KB", "headers-40KB", "header-600KB", "url-60KB-in-pieces", "garbage"],
)
async def test_an_http_request_head_it_cannot_take_is_answered_in_json_and_closed(
    local: Stack, head: bytes, chunk: int | None, status: int, message: str | None
) -> None:
    answer = await exchange(local, head, chunk=chunk)
    assert answer.status == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["connection"] == "close"
    body = answer.json()
    assert set(body) == {"message"}
    if message is not None:
        assert body["message"] == message
    await still_serving(local)


async def test_a_websocket_upgrade_to_an_unknown_path_gets_the_owners_json(local: Stack) -> None:
    realtime = await exchange(local, upgrade("/realtime/v1/nope"))
    assert (realtime.status, realtime.json()) == (404, {"message": "no Route matched with those values"})
    auth = await exchange(local, upgrade("/auth/v1/nope"))
    assert auth.status == 404 and auth.json()["error_code"] == "not_found"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_a_refused_websocket_upgrade_is_not_logged_as_a_server_error(local: Stack) -> None:
    # uvicorn's "uvicorn" logger does not propagate to the root, so listen on it directly.
    errors = _Records()
    logger = logging.getLogger("uvicorn.error")
    logger.addHandler(errors)
    try:
        refused = await exchange(local, upgrade("/realtime/v1/websocket?apikey=sb_publishable_nope&vsn=1.0.0"))
        await still_serving(local)  # the refused connection's task has finished by now
    finally:
        logger.removeHandler(errors)
    assert refused.status == 401 and refused.json()["message"]
    assert [r.getMessage() for r in errors.records] == []


def postgrest(code: str, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": None, "hint": None}


ROUTER_CASES: list[tuple[str, str, int, dict[str, Any], str | None]] = [
    ("GET", "/nope", 404, {"message": "no Route matched with those values"}, None),
    ("GET", "/", 404, {"message": "no Route matched with those values"}, None),
    ("POST", "/health", 405, {"message": "Method POST is not allowed on /health"}, "GET, HEAD"),
    ("GET", "/rest/v1/", 404, postgrest("PGRST126", "Root endpoint metadata is disabled"), None),
    ("GET", "/rest/v1/a/b", 404, postgrest("PGRST125", "Invalid path specified in request URL"), None),
    (
        "OPTIONS",
        "/rest/v1/jobs",
        405,
        postgrest("PGRST117", "Unsupported HTTP method: OPTIONS"),
        "DELETE, GET, HEAD, PATCH, POST, PUT",
    ),
    ("GET", "/auth/v1/nope", 404, {"code": 404, "error_code": "not_found", "msg": "No endpoint /auth/v1/nope"}, None),
    (
        "DELETE",
        "/auth/v1/user",
        405,
        {"code": 405, "error_code": "method_not_allowed", "msg": "Method DELETE is not allowed on /auth/v1/user"},
        "GET, HEAD, PUT",
    ),
    (
        "GET",
        "/auth/v1/signup",
        405,
        {"code": 405, "error_code": "method_not_allowed", "msg": "Method GET is not allowed on /auth/v1/signup"},
        "POST",
    ),
    (
        "GET",
        "/storage/v1/nope",
        404,
        {
            "statusCode": "404",
            "code": "NotFound",
            "error": "not_found",
            "message": "Route GET:/storage/v1/nope not found",
        },
        None,
    ),
    (
        "DELETE",
        "/storage/v1/object/bucket/a/key",
        405,
        {
            "statusCode": "405",
            "code": "MethodNotAllowed",
            "error": "method_not_allowed",
            "message": "Method DELETE is not allowed on /storage/v1/object/bucket/a/key",
        },
        "GET, HEAD, POST, PUT",
    ),
    ("GET", "/realtime/v1/nope", 404, {"message": "no Route matched with those values"}, None),
    (
        "GET",
        "/realtime/v1/api/broadcast",
        405,
        {"message": "Method GET is not allowed on /realtime/v1/api/broadcast"},
        "POST",
    ),
]


@pytest.mark.parametrize(("method", "path", "status", "body", "allow"), ROUTER_CASES)
async def test_requests_no_route_takes_get_the_owning_services_json(
    local: Stack, method: str, path: str, status: int, body: dict[str, Any], allow: str | None
) -> None:
    headers = {"apikey": local.anon_key, "Origin": "https://www.figma.com"}
    async with httpx.AsyncClient(base_url=local.url, headers=headers) as client:
        response = await client.request(method, path)
        assert response.status_code == status
        assert response.headers["content-type"].startswith("application/json")
        assert response.json() == body
        assert response.headers.get("allow") == allow
        assert response.headers["access-control-allow-origin"] == "*"  # CORS as for any answer


async def test_head_where_no_route_takes_it(local: Stack) -> None:
    async with httpx.AsyncClient(base_url=local.url, headers={"apikey": local.anon_key}) as client:
        wrong_method = await client.head("/auth/v1/signup")
        assert (wrong_method.status_code, wrong_method.headers["allow"], wrong_method.content) == (405, "POST", b"")
        unknown = await client.head("/storage/v1/nope")
        assert (unknown.status_code, unknown.content) == (404, b"")
        assert unknown.headers["content-type"] == "application/json"


async def test_gotrue_shape_follows_the_api_version_header(local: Stack) -> None:
    async with httpx.AsyncClient(base_url=local.url, headers={"apikey": local.anon_key}) as client:
        response = await client.get("/auth/v1/nope", headers={"X-Supabase-Api-Version": "2024-01-01"})
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "No endpoint /auth/v1/nope"}


async def test_cors_preflight_is_still_answered_before_routing(local: Stack) -> None:
    preflight = {"Origin": "null", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "apikey"}
    async with httpx.AsyncClient(base_url=local.url) as client:
        for path in ("/rest/v1/jobs", "/auth/v1/signup", "/nope"):
            response = await client.options(path, headers=preflight)
            assert response.status_code == 200, path
            assert response.headers["access-control-allow-origin"] == "*"


async def test_a_refused_cors_preflight_is_answered_in_json(local: Stack) -> None:
    preflight = {"Origin": "null", "Access-Control-Request-Method": "BREW"}
    async with httpx.AsyncClient(base_url=local.url) as client:
        response = await client.options("/rest/v1/jobs", headers=preflight)
    assert response.status_code == 400
    assert response.json() == {"message": "Disallowed CORS method"}
