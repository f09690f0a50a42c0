"""Phoenix protocol edge cases with a raw websocket: handshake errors, heartbeat, unmatched topics,
garbage frames, join errors, leave, and vsn 2.0.0 framing (JSON arrays, binary kind 3 → kind 4)."""

from __future__ import annotations

import json
import struct

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from devstack.testing.fixtures import Stack
from devstack.tests.integration.realtime_support import mint, raw_socket, ws_url

pytestmark = pytest.mark.integration


async def _handshake_error(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str]]:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, additional_headers=headers):
            pass
    response = info.value.response
    return response.status_code, json.loads(response.body or b"{}")


@pytest.mark.parametrize(
    ("apikey", "error"),
    [
        (None, "API key is missing"),
        ("not-a-jwt", "The token provided is not a valid JWT"),
        ("signed-elsewhere", "Failed to validate JWT signature"),
        ("expired", "Token has expired"),
    ],
)
async def test_handshake_refused_with_401(stack: Stack, apikey: str | None, error: str) -> None:
    if apikey == "signed-elsewhere":
        import jwt

        apikey = jwt.encode({"role": "anon", "exp": 4102444800}, "another-secret-another-secret-32b", "HS256")
    elif apikey == "expired":
        apikey = mint(stack, role="anon", ttl=-60)
    status, body = await _handshake_error(ws_url(stack, apikey=apikey))
    assert (status, body) == (401, {"error": error})


async def test_unknown_protocol_version_refused(stack: Stack) -> None:
    status, body = await _handshake_error(ws_url(stack, apikey=stack.anon_key, vsn="9.9.9"))
    assert status == 403 and "error" in body


async def test_x_api_key_header_wins_over_query(stack: Stack) -> None:
    status, _ = await _handshake_error(ws_url(stack, apikey=stack.anon_key), {"x-api-key": "not-a-jwt"})
    assert status == 401
    async with connect(ws_url(stack, apikey="not-a-jwt"), additional_headers={"x-api-key": stack.anon_key}) as ws:
        await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "1"}))
        assert json.loads(await ws.recv())["payload"] == {"status": "ok", "response": {}}


async def test_heartbeat_v1_and_v2(stack: Stack) -> None:
    async with raw_socket(stack, vsn="1.0.0") as sock:
        ref = await sock.heartbeat()
        assert await sock.recv() == {
            "topic": "phoenix",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": ref,
        }
    async with raw_socket(stack, vsn="2.0.0") as sock:
        await sock.ws.send(json.dumps([None, "7", "phoenix", "heartbeat", {}]))
        assert json.loads(await sock.ws.recv()) == [None, "7", "phoenix", "phx_reply", {"status": "ok", "response": {}}]


async def test_unmatched_topic(stack: Stack) -> None:
    async with raw_socket(stack) as sock:
        ref = await sock.push("realtime:never-joined", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
        reply = await sock.recv_json()
        assert reply["ref"] == ref
        assert reply["payload"] == {"status": "error", "response": {"reason": "unmatched topic"}}
        ref = await sock.push("elsewhere:room", "phx_join", {"config": {}})
        assert (await sock.recv_json())["payload"]["response"] == {"reason": "unmatched topic"}


async def test_garbage_frames_are_ignored(stack: Stack) -> None:
    async with raw_socket(stack) as sock, raw_socket(stack) as bystander:
        await bystander.join("realtime:garbage-room")
        for junk in ["not json", "[1, 2, 3]", '{"topic": 5, "event": "x", "payload": {}, "ref": "1"}', "null"]:
            await sock.ws.send(junk)
        await sock.ws.send(b"\x03\x01")  # binary on a v1 socket, and truncated
        await sock.push("realtime:x", "phx_join", [])  # type: ignore[arg-type]  # payload must be an object
        ref = await sock.heartbeat()
        assert (await sock.recv_json())["ref"] == ref  # nothing answered the junk; the socket still works
        ref = await bystander.heartbeat()
        assert (await bystander.recv_json())["ref"] == ref


@pytest.mark.parametrize(
    ("token_kind", "reason"),
    [
        ("expired", "InvalidJWTToken: Token has expired "),
        ("no-exp", "InvalidJWTToken: Fields `role` and `exp` are required in JWT"),
        ("garbage", "MalformedJWT: The token provided is not a valid JWT"),
    ],
)
async def test_join_refused_for_bad_tokens(stack: Stack, token_kind: str, reason: str) -> None:
    if token_kind == "expired":
        token = mint(stack, "00000000-0000-0000-0000-000000000001", ttl=-30)
    elif token_kind == "no-exp":
        import jwt

        mint(stack)  # skips without a secret
        assert stack.jwt_secret is not None
        token = jwt.encode({"role": "authenticated"}, stack.jwt_secret, "HS256")
    else:
        token = "garbage"
    async with raw_socket(stack) as sock:
        reply = await sock.join("realtime:room-tokens", token=token)
        assert reply["payload"]["status"] == "error"
        assert reply["payload"]["response"]["reason"].startswith(reason)
        assert sock.ws.state.name == "OPEN"


async def test_topic_name_required(stack: Stack) -> None:
    async with raw_socket(stack) as sock:
        reply = await sock.join("realtime:")
        assert reply["payload"] == {
            "status": "error",
            "response": {"reason": "TopicNameRequired: You must provide a topic name"},
        }


async def test_join_reply_and_leave(stack: Stack) -> None:
    async with raw_socket(stack) as sock:
        reply = await sock.join("realtime:leave-room", {"broadcast": {"self": True}})
        assert reply["payload"] == {"status": "ok", "response": {"postgres_changes": []}}
        assert "join_ref" not in reply  # v1 replies carry topic, event, payload, ref only
        join_ref = reply["ref"]
        ref = await sock.push("realtime:leave-room", "phx_leave", {}, join_ref=join_ref)
        assert await sock.recv_json() == {
            "topic": "realtime:leave-room",
            "event": "phx_reply",
            "payload": {"status": "ok", "response": {}},
            "ref": ref,
        }
        closed = await sock.recv_json()
        assert closed == {"topic": "realtime:leave-room", "event": "phx_close", "payload": {}, "ref": join_ref}
        ref = await sock.push("realtime:leave-room", "broadcast", {"type": "broadcast", "event": "e", "payload": {}})
        assert (await sock.recv_json())["payload"]["response"] == {"reason": "unmatched topic"}


def _kind3(join_ref: str, ref: str, topic: str, event: str, payload: bytes, *, json_payload: bool = True) -> bytes:
    fields = [join_ref.encode(), ref.encode(), topic.encode(), event.encode(), b""]
    header = bytes([3, *(len(f) for f in fields), 1 if json_payload else 0])
    return header + b"".join(fields) + payload


def _parse_kind4(frame: bytes) -> tuple[str, str, dict[str, object] | None, int, bytes]:
    kind, topic_len, event_len, meta_len, encoding = struct.unpack("5B", frame[:5])
    assert kind == 4
    pos = 5
    topic = frame[pos : pos + topic_len].decode()
    pos += topic_len
    event = frame[pos : pos + event_len].decode()
    pos += event_len
    meta = json.loads(frame[pos : pos + meta_len]) if meta_len else None
    pos += meta_len
    return topic, event, meta, encoding, frame[pos:]


async def test_v2_arrays_and_binary_broadcast(stack: Stack) -> None:
    topic = "realtime:v2-room"
    async with (
        raw_socket(stack, vsn="2.0.0") as sender,
        raw_socket(stack, vsn="2.0.0") as v2_listener,
        raw_socket(stack, vsn="1.0.0") as v1_listener,
    ):
        await sender.ws.send(json.dumps(["1", "1", topic, "phx_join", {"config": {"broadcast": {"ack": True}}}]))
        assert json.loads(await sender.ws.recv()) == [
            "1",
            "1",
            topic,
            "phx_reply",
            {"status": "ok", "response": {"postgres_changes": []}},
        ]
        await v2_listener.join(topic)
        await v1_listener.join(topic)

        await sender.ws.send(_kind3("1", "2", topic, "cursor", b'{"x":1}'))
        ack = json.loads(await sender.ws.recv())
        assert ack == ["1", "2", topic, "phx_reply", {"status": "ok", "response": {}}]

        frame = await v2_listener.recv()
        assert isinstance(frame, bytes)
        assert _parse_kind4(frame) == (topic, "cursor", None, 1, b'{"x":1}')
        assert await v1_listener.recv() == {
            "topic": topic,
            "event": "broadcast",
            "payload": {"event": "cursor", "payload": {"x": 1}, "type": "broadcast"},
            "ref": None,
        }

        # Opaque binary payloads reach v2 subscribers only (v1 cannot represent them).
        await sender.ws.send(_kind3("1", "3", topic, "blob", b"\x00\xff", json_payload=False))
        await sender.ws.recv()  # ack
        frame = await v2_listener.recv()
        assert isinstance(frame, bytes) and _parse_kind4(frame) == (topic, "blob", None, 0, b"\x00\xff")

        # A JSON (text) broadcast reaches v2 subscribers as an array with null refs.
        text = {"type": "broadcast", "event": "note", "payload": {"a": 2}}
        await sender.ws.send(json.dumps(["1", "4", topic, "broadcast", text]))
        await sender.ws.recv()  # ack
        assert json.loads(await v2_listener.ws.recv()) == [None, None, topic, "broadcast", text]
        assert (await v1_listener.recv_json())["payload"] == text  # the blob never reached it


async def test_no_per_message_compression_as_on_hosted(stack: Stack) -> None:
    # websockets offers permessage-deflate by default, as realtime-py's connection does;
    # hosted Realtime (Phoenix, compress: false) answers without it.
    async with connect(ws_url(stack, apikey=stack.anon_key)) as ws:
        assert ws.request is not None and ws.response is not None
        assert "permessage-deflate" in (ws.request.headers.get("Sec-WebSocket-Extensions") or "")
        assert ws.response.headers.get("Sec-WebSocket-Extensions") is None
        assert ws.protocol.extensions == []
