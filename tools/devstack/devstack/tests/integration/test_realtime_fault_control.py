"""The test-only socket-drop control (DEVSTACK_FAULT_CONTROL=1, used by `python -m bench chaos`):
absent by default; when on, it closes the sockets opened with one role's key with 1012 and leaves
the others open; a bad body changes nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from devstack.gateway.realtime import FAULT_CONTROL_ENV
from devstack.testing.fixtures import Stack
from devstack.testing.servers import Server
from devstack.tests.integration.realtime_support import ws_url

pytestmark = pytest.mark.integration
DROP = "/realtime/v1/_devstack/drop"


def local_only(stack: Stack) -> None:
    if os.environ.get("SUPABASE_URL") or not stack.local:
        pytest.skip("a control of the local gateway")


@pytest.fixture
def controlled(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[Stack]:
    """A second gateway on the same database, built with the control switched on."""
    local_only(stack)
    monkeypatch.setenv(FAULT_CONTROL_ENV, "1")
    with Server(create_app(Settings.from_stack())) as server:
        yield dataclasses.replace(stack, url=server.url)


def _headers(stack: Stack) -> dict[str, str]:
    return {"apikey": stack.service_role_key, "Authorization": f"Bearer {stack.service_role_key}"}


def test_the_control_is_absent_by_default(stack: Stack) -> None:
    local_only(stack)
    assert os.environ.get(FAULT_CONTROL_ENV) != "1"
    response = httpx.post(stack.url + DROP, json={}, headers=_headers(stack), timeout=10)
    assert response.status_code == 404


async def test_dropping_one_role_closes_its_sockets_only(controlled: Stack) -> None:
    async with (
        connect(ws_url(controlled, apikey=controlled.anon_key)) as client,
        connect(ws_url(controlled, apikey=controlled.service_role_key)) as worker,
    ):
        async with httpx.AsyncClient(timeout=10) as http:
            bad = await http.post(controlled.url + DROP, json={"role": 5}, headers=_headers(controlled))
            assert bad.status_code == 422
            response = await http.post(controlled.url + DROP, json={"role": "anon"}, headers=_headers(controlled))
        assert response.json() == {"dropped": 1}
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
        beat = {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "7"}
        await worker.send(json.dumps(beat))
        reply = json.loads(await asyncio.wait_for(worker.recv(), 10))
        assert reply["event"] == "phx_reply" and reply["ref"] == "7"
