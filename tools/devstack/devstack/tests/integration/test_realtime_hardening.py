"""Realtime refuses tokens naming a role outside the API roles (its policy checks switch into that
role), and the HTTP broadcast endpoints bound what one request may carry."""

from __future__ import annotations

import json
import os

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from devstack.gateway.realtime.jwt_check import ROLE_TEXT
from devstack.testing.fixtures import Stack
from devstack.tests.integration.realtime_support import mint, new_user, raw_socket, ws_url

pytestmark = pytest.mark.integration

OVER_LIMIT = 11 * 1024 * 1024  # above the local gateway's Settings.max_body_bytes (10 MiB)


def local_only(stack: Stack) -> None:
    if os.environ.get("SUPABASE_URL") or stack.jwt_secret is None:
        pytest.skip("the local gateway's limits and wording")


@pytest.mark.parametrize("role", ["postgres", "supabase_admin", "pg_read_server_files", ""])
async def test_join_refused_for_a_role_outside_the_api_roles(stack: Stack, role: str) -> None:
    local_only(stack)
    token = mint(stack, "00000000-0000-0000-0000-000000000001", role=role)
    async with raw_socket(stack) as sock:
        reply = await sock.join("realtime:room-roles", {"private": True}, token=token)
        assert reply["payload"]["status"] == "error"
        assert reply["payload"]["response"]["reason"] == f"InvalidJWTToken: {ROLE_TEXT}"
        public = await sock.join("realtime:room-roles-public", {}, token=token)
        assert public["payload"]["status"] == "error"
        assert sock.ws.state.name == "OPEN"


async def test_handshake_refused_for_a_role_outside_the_api_roles(stack: Stack) -> None:
    local_only(stack)
    with pytest.raises(InvalidStatus) as info:
        async with connect(ws_url(stack, apikey=mint(stack, role="postgres"))):
            pass
    assert info.value.response.status_code == 401
    assert json.loads(info.value.response.body or b"{}") == {"error": ROLE_TEXT}


async def test_access_token_refresh_to_another_role_closes_the_channel(stack: Stack) -> None:
    local_only(stack)
    user = new_user(stack)
    async with raw_socket(stack) as sock:
        join = await sock.join("realtime:refresh-role", {}, token=user.token)
        assert join["payload"]["status"] == "ok"
        escalated = mint(stack, user.id, role="postgres")
        await sock.push("realtime:refresh-role", "access_token", {"access_token": escalated}, join_ref=join["ref"])
        system = await sock.recv_json()
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"] == ROLE_TEXT
        assert (await sock.recv_json())["event"] == "phx_close"


async def test_http_broadcast_refuses_other_roles_and_bounds_requests(stack: Stack) -> None:
    local_only(stack)
    base = f"{stack.url}/realtime/v1/api/broadcast"
    service = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.service_role_key}"}
    postgres = {"apikey": stack.anon_key, "Authorization": f"Bearer {mint(stack, role='postgres')}"}
    message = {"topic": "bounded", "event": "e", "payload": {}}
    async with httpx.AsyncClient(timeout=60) as http:
        wrong_role = await http.post(base, headers=postgres, json={"messages": [message]})
        assert (wrong_role.status_code, wrong_role.json()) == (401, {"message": "Unauthorized"})

        too_many = await http.post(base, headers=service, json={"messages": [message] * 1001})
        assert too_many.status_code == 422 and "messages" in too_many.json()["errors"]
        at_most = await http.post(base, headers=service, json={"messages": [message] * 1000})
        assert at_most.status_code == 202

        big = b'{"messages": [{"topic": "t", "event": "e", "payload": {"x": "' + b"x" * OVER_LIMIT + b'"}}]}'
        batch = await http.post(base, headers={**service, "Content-Type": "application/json"}, content=big)
        assert (batch.status_code, batch.json()) == (413, {"message": "Payload Too Large"})
        single = await http.post(
            f"{base}/bounded/events/e", headers={**service, "Content-Type": "application/octet-stream"}, content=big
        )
        assert (single.status_code, single.json()) == (413, {"message": "Payload Too Large"})
