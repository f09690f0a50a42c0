"""Broadcast between clients, Broadcast from Database on private channels authorized by RLS on
realtime.messages, write authorization, and access_token refresh.

"Not delivered" is shown by ordering: a message that must not arrive is followed by one that
must, and the latter has to be the first received.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from realtime.exceptions import RealtimeHTTPError
from realtime.types import RealtimePostgresChangesListenEvent as Ev

from devstack.testing.callbacks import Collector, SubscribeStatus
from devstack.testing.fixtures import Stack
from devstack.tests.integration.realtime_support import (
    Fixture,
    User,
    db,
    insert_row,
    mint,
    new_user,
    raw_socket,
    realtime_fixture,
    supabase_client,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def writer(stack: Stack) -> User:
    return new_user(stack)


@pytest.fixture(scope="module")
def fx(stack: Stack, writer: User) -> Iterator[Fixture]:
    with realtime_fixture(stack, writer=writer.id) as fixture:
        yield fixture


async def _join(client: Any, topic: str, config: dict[str, Any], events: dict[str, Collector]) -> tuple[Any, Any]:
    status = SubscribeStatus()
    channel = client.channel(topic, {"config": config})
    for event, cb in events.items():
        channel.on_broadcast(event, cb)
    await channel.subscribe(status)
    return channel, await status.next()


async def _send(stack: Stack, topic: str, event: str, payload: dict[str, Any], *, private: bool) -> None:
    async with await db(stack) as conn:
        await conn.execute("select realtime.send(%s, %s, %s, %s)", (Jsonb(payload), event, topic, private))


async def _sync(client: Any) -> None:
    """Wait until the server handled everything this client sent so far: a socket's messages are
    processed in order, so the reply to a later join proves the earlier ones were applied."""
    status = SubscribeStatus()
    await client.channel(f"sync-{id(status)}").subscribe(status)
    assert await status.wait_for("SUBSCRIBED") is None


async def test_broadcast_self_and_ack(flavoured_stack: Stack) -> None:
    stack = flavoured_stack
    got_a, got_b = Collector(), Collector()
    async with supabase_client(stack) as client_a, supabase_client(stack) as client_b:
        config_a = {"broadcast": {"self": False, "ack": True}}
        chan_a, (status, _) = await _join(client_a, "bc-room", config_a, {"m": got_a})
        assert status.value == "SUBSCRIBED"
        chan_b, _ = await _join(client_b, "bc-room", {"broadcast": {"self": True}}, {"m": got_b})

        acked = Collector()
        push = await chan_a.push("broadcast", {"type": "broadcast", "event": "m", "payload": {"from": "a"}})
        push.receive("ok", acked)
        assert await acked.next() is not None  # ack: true → {"status": "ok"} reply
        await chan_b.send_broadcast("m", {"from": "b"})

        first_b = await got_b.next()
        assert first_b["event"] == "m" and first_b["payload"] == {"from": "a"}
        assert (await got_b.next())["payload"] == {"from": "b"}  # self: true echoes to the sender
        assert (await got_a.next())["payload"] == {"from": "b"}  # self: false never echoed "a"


async def test_broadcast_from_database_private_topic(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    alice, bob = new_user(stack), new_user(stack)
    got = Collector()
    async with supabase_client(stack, alice.token) as client_a, supabase_client(stack, bob.token) as client_b:
        _, (status, err) = await _join(client_a, f"{fx.prefix}:{alice.id}", {"private": True}, {"row_changed": got})
        assert status.value == "SUBSCRIBED", err

        _, (status, err) = await _join(client_b, f"{fx.prefix}:{alice.id}", {"private": True}, {})
        assert status.value == "CHANNEL_ERROR"
        assert (
            f"Unauthorized: You do not have permissions to read from this Channel topic: {fx.prefix}:{alice.id}"
            in str(err)
        )

        row_id = await insert_row(stack, fx, alice.id, n=5)  # its trigger calls realtime.send
        message = await got.next()
        assert message["event"] == "row_changed" and message["payload"]["id"] == row_id
        assert message["payload"]["n"] == 5
        assert isinstance(message["meta"]["id"], str)  # Broadcast from Database carries the message id


async def test_private_and_public_messages_stay_apart(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    alice = new_user(stack)
    topic = f"{fx.prefix}:{alice.id}"
    private_got, public_got = Collector(), Collector()
    async with supabase_client(stack, alice.token) as client:
        await _join(client, topic, {"private": True}, {"*": private_got})
        async with supabase_client(stack, alice.token) as other:
            await _join(other, topic, {"private": False}, {"*": public_got})
            await _send(stack, topic, "m", {"seq": 1}, private=True)
            await _send(stack, topic, "m", {"seq": 2}, private=False)
            await _send(stack, topic, "m", {"seq": 3}, private=True)
            assert (await public_got.next())["payload"]["seq"] == 2
            assert [(await private_got.next())["payload"]["seq"] for _ in range(2)] == [1, 3]


async def test_private_client_broadcast_needs_write_permission(stack: Stack, fx: Fixture, writer: User) -> None:
    reader = new_user(stack)
    config = {"private": True, "broadcast": {"ack": True}}
    topic = f"realtime:{fx.room}"
    async with (
        raw_socket(stack) as listener,
        raw_socket(stack) as unauthorized,
        raw_socket(stack) as authorized,
    ):
        assert (await listener.join(topic, config, token=reader.token))["payload"]["status"] == "ok"
        join = await unauthorized.join(topic, config, token=reader.token)
        assert join["payload"]["status"] == "ok"  # reading is allowed for everyone here
        await authorized.join(topic, config, token=writer.token)

        message = {"type": "broadcast", "event": "say", "payload": {"who": "reader"}}
        await unauthorized.push(topic, "broadcast", message, join_ref=join["ref"])
        hb = await unauthorized.heartbeat()
        assert (await unauthorized.recv_json())["ref"] == hb  # no reply to the refused send, not even with ack

        ref = await authorized.push(topic, "broadcast", {**message, "payload": {"who": "writer"}})
        assert (await authorized.recv_json())["ref"] == ref
        assert (await listener.recv_json())["payload"]["payload"] == {"who": "writer"}


async def test_access_token_refresh_reruns_rls_for_postgres_changes(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    alice, bob = new_user(stack), new_user(stack)
    got = Collector()
    async with supabase_client(stack, alice.token) as client:
        status = SubscribeStatus()
        channel = client.channel(f"refresh-{fx.table}")
        channel.on_postgres_changes(Ev.Insert, schema="public", table=fx.table, callback=got)
        await channel.subscribe(status)
        assert await status.wait_for("SUBSCRIBED") is None
        await insert_row(stack, fx, alice.id, n=1)
        assert (await got.next())["data"]["record"]["n"] == 1

        await client.realtime.set_auth(bob.token)  # sends access_token to the joined channel
        await _sync(client)
        await insert_row(stack, fx, alice.id, n=2)
        await insert_row(stack, fx, bob.id, n=3)
        record = (await got.next())["data"]["record"]
        assert (record["owner"], record["n"]) == (bob.id, 3)


async def test_access_token_refresh_revokes_private_channel(stack: Stack, fx: Fixture) -> None:
    alice, bob = new_user(stack), new_user(stack)
    topic = f"realtime:{fx.prefix}:{alice.id}"
    async with raw_socket(stack) as sock:
        join = await sock.join(topic, {"private": True}, token=alice.token)
        assert join["payload"]["status"] == "ok"
        await sock.push(topic, "access_token", {"access_token": bob.token}, join_ref=join["ref"])
        system = await sock.recv_json()
        assert system["event"] == "system" and system["ref"] is None
        assert system["payload"] == {
            "extension": "system",
            "status": "error",
            "message": f"You do not have permissions to read from this Channel topic: {fx.prefix}:{alice.id}",
            "channel": f"{fx.prefix}:{alice.id}",
        }
        closed = await sock.recv_json()
        assert closed["event"] == "phx_close" and closed["ref"] == join["ref"]


async def test_access_token_refresh_with_bad_token_closes_channel(stack: Stack) -> None:
    user = new_user(stack)
    async with raw_socket(stack) as sock:
        join = await sock.join("realtime:refresh-bad", {}, token=user.token)
        expired = mint(stack, user.id, ttl=-5)
        await sock.push("realtime:refresh-bad", "access_token", {"access_token": expired}, join_ref=join["ref"])
        system = await sock.recv_json()
        assert system["payload"]["status"] == "error"
        assert system["payload"]["message"].startswith("Token has expired ")
        assert (await sock.recv_json())["event"] == "phx_close"
        # Same token again, or a refresh to the token already in use: no answer at all.
        fresh = await sock.join("realtime:refresh-bad", {}, token=user.token)
        await sock.push("realtime:refresh-bad", "access_token", {"access_token": user.token}, join_ref=fresh["ref"])
        hb = await sock.heartbeat()
        assert (await sock.recv_json())["ref"] == hb


async def test_http_broadcast_single(flavoured_stack: Stack, fx: Fixture, writer: User) -> None:
    stack = flavoured_stack
    """realtime-py's http_send → POST /realtime/v1/api/broadcast/{topic}/events/{event}."""
    reader = new_user(stack)
    got, private_got = Collector(), Collector()
    async with supabase_client(stack, reader.token) as client, supabase_client(stack, writer.token) as writer_client:
        public_channel, _ = await _join(client, "http-room", {}, {"note": got})
        await public_channel.http_send("note", {"via": "http"})
        message = await got.next()
        assert message["event"] == "note" and message["payload"] == {"via": "http"}

        room, (status, _) = await _join(client, fx.room, {"private": True}, {"say": private_got})
        assert status.value == "SUBSCRIBED"
        with pytest.raises(RealtimeHTTPError) as refused:
            await room.http_send("say", {"who": "reader"})  # reader may read the room, not write
        assert refused.value.status == 403
        writer_room, _ = await _join(writer_client, fx.room, {"private": True}, {})
        await writer_room.http_send("say", {"who": "writer"})
        assert (await private_got.next())["payload"] == {"who": "writer"}


async def test_http_broadcast_batch(flavoured_stack: Stack) -> None:
    stack = flavoured_stack
    got = Collector()
    url = f"{stack.url}/realtime/v1/api/broadcast"
    headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {stack.service_role_key}"}
    async with supabase_client(stack) as client, httpx.AsyncClient() as http:
        await _join(client, "batch-room", {}, {"*": got})
        bad = await http.post(url, headers={"apikey": "nope"}, json={"messages": []})
        assert (bad.status_code, bad.json()) == (401, {"message": "Unauthorized"})
        invalid = await http.post(url, headers=headers, json={"messages": [{"topic": "batch-room", "event": "e"}]})
        assert invalid.status_code == 422 and "payload" in invalid.json()["errors"]["messages"][0]
        messages = [{"topic": "batch-room", "event": "e", "payload": {"n": n}, "id": f"m{n}"} for n in (1, 2)]
        accepted = await http.post(url, headers=headers, json={"messages": messages})
        assert accepted.status_code == 202
        first, second = await got.next(), await got.next()
        assert (first["payload"], first["meta"]) == ({"n": 1}, {"id": "m1"})
        assert second["payload"] == {"n": 2}
