"""Gateway building blocks without a server: bounded body reads, token role checks, RPC type
composition, and the stand-ins' shared fault step."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
from psycopg import sql
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message

from devstack.gateway.http import BodyTooLarge, read_limited
from devstack.gateway.key_set import KeySet
from devstack.gateway.realtime import authz, jwt_check
from devstack.gateway.rest.catalog import Param
from devstack.gateway.storage import credentials
from devstack.gateway.storage.errors import StorageError
from devstack.models.faults import StandinState, take_fault
from devstack.models.knobs import FaultSpec

SECRET = "unit-test-secret-unit-test-secret-32"
KEYS = KeySet.legacy_only(SECRET)


def request_with(chunks: list[bytes], *, content_length: int | None = None) -> tuple[Request, list[int]]:
    """A request whose body arrives in ``chunks``; the list returned counts the chunks read."""
    headers = [] if content_length is None else [(b"content-length", str(content_length).encode())]
    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""}
    read = [0]

    async def receive() -> Message:
        index = read[0]
        read[0] += 1
        if index >= len(chunks):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunks[index], "more_body": index < len(chunks) - 1}

    return Request(scope, receive), read


async def test_read_limited_returns_a_body_within_the_limit() -> None:
    request, _ = request_with([b"abc", b"def"], content_length=6)
    assert await read_limited(request, 6) == b"abcdef"


async def test_read_limited_refuses_a_declared_length_before_reading() -> None:
    request, read = request_with([b"x" * 10], content_length=10)
    with pytest.raises(BodyTooLarge):
        await read_limited(request, 9)
    assert read == [0]


async def test_read_limited_stops_a_chunked_body_at_the_limit() -> None:
    request, read = request_with([b"x" * 4] * 100)  # no content-length: chunked
    with pytest.raises(BodyTooLarge):
        await read_limited(request, 10)
    assert read == [3]  # 12 bytes seen, the other 97 chunks never pulled


def token(**claims: Any) -> str:
    return jwt.encode(claims, SECRET, "HS256")


@pytest.mark.parametrize("role", ["postgres", "supabase_admin", "pg_signal_backend", ""])
def test_realtime_refuses_roles_outside_the_api_roles(role: str) -> None:
    with pytest.raises(jwt_check.RealtimeTokenError) as refused:
        jwt_check.check(token(role=role, exp=int(time.time()) + 60), KEYS)
    assert refused.value.kind == "role"
    assert refused.value.join_reason() == f"InvalidJWTToken: {jwt_check.ROLE_TEXT}"


@pytest.mark.parametrize("role", ["anon", "authenticated", "service_role"])
def test_realtime_accepts_the_api_roles(role: str) -> None:
    assert jwt_check.check(token(role=role, exp=int(time.time()) + 60), KEYS)["role"] == role


def test_policy_checks_never_switch_into_another_role() -> None:
    with pytest.raises(authz.PolicyError):
        authz.AuthContext("room", {"role": "postgres"}, {}).params()
    assert authz.AuthContext("room", {"role": "anon"}, {}).params()["role"] == "anon"


def test_storage_requires_exp() -> None:
    with pytest.raises(StorageError) as refused:
        credentials.caller(f"Bearer {token(role='service_role')}", KEYS)
    assert "exp" in refused.value.message
    with pytest.raises(StorageError) as unsigned_forever:
        credentials.verify_download(token(url="b/k", scope="download"), "b", "k", SECRET)
    assert unsigned_forever.value.code == "InvalidJWT"


def test_rpc_types_are_identifiers_never_sql_text() -> None:
    plain = Param("n", "integer", False, False, "pg_catalog", "int4", False)
    array = Param("m", '"x y"."Mood"[]', False, False, "x y", 'Mood"; drop table t; --', True)
    assert plain.type_sql().as_string(None) == '"pg_catalog"."int4"'
    assert array.type_sql().as_string(None) == '"x y"."Mood""; drop table t; --"[]'
    assert isinstance(array.type_sql(), sql.Composed)


def scope_request(body: bytes) -> Request:
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "headers": [], "query_string": b""}

    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(scope, receive)


def error_answer(spec: FaultSpec) -> Response:
    return JSONResponse({"fault": spec.kind}, status_code=int(spec.kind))


async def test_take_fault_logs_and_answers_error_faults() -> None:
    state = StandinState()
    state.faults.add(FaultSpec(kind="429", provider="gemini"))
    state.faults.add(FaultSpec(kind="503", match="boom"))
    quiet = await take_fault(
        state,
        scope_request(b"{}"),
        "anthropic",
        b'{"calm": 1}',
        model="m",
        job_kind="k",
        stream=False,
        body={},
        error_response=error_answer,
    )
    assert (quiet.spec, quiet.early, quiet.record.status, quiet.record.fault) == (None, None, 200, None)
    failed = await take_fault(
        state,
        scope_request(b"{}"),
        "anthropic",
        b'{"boom": 1}',
        model="m",
        job_kind="k",
        stream=True,
        body={"boom": 1},
        error_response=error_answer,
    )
    assert failed.early is not None and failed.early.status_code == 503
    assert (failed.record.status, failed.record.fault, failed.record.stream) == (503, "503", True)
    assert [r["status"] for r in state.log.select("anthropic")] == [200, 503]
    assert len(state.faults.pending()) == 1  # the gemini-only fault is still armed


async def test_take_fault_leaves_shaping_faults_to_the_caller() -> None:
    state = StandinState()
    state.faults.add(FaultSpec(kind="invalid_json"))
    outcome = await take_fault(
        state,
        scope_request(b"{}"),
        "gemini",
        b"{}",
        model=None,
        job_kind=None,
        stream=False,
        body={},
        error_response=error_answer,
    )
    assert outcome.early is None and outcome.spec is not None and outcome.spec.kind == "invalid_json"
