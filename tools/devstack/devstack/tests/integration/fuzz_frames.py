"""Seeded hostile Phoenix frames for the Realtime websocket part of the gateway fuzz test."""

from __future__ import annotations

import json
import random
from typing import Any

from devstack.tests.integration.fuzz_values import HOSTILE_VALUES, dumps

RAW_FRAMES: list[str | bytes] = [
    "not json",
    "[]",
    "[1,2,3,4,5]",
    "null",
    '{"topic": "phoenix"}',
    "[" * 5000 + "]" * 5000,
    '{"a":' * 3000 + "1" + "}" * 3000,
    json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "x" * 200_000}),
    b"\x00\x01binary",
]


def encode(frame: dict[str, Any], vsn2: bool) -> str:
    """A frame as the protocol version sends it: an object (1.0.0) or
    ``[join_ref, ref, topic, event, payload]`` (2.0.0, supabase-js's default)."""
    if not vsn2:
        return dumps(frame)
    keys = ("join_ref", "ref", "topic", "event", "payload")
    return dumps([frame.get(k, "1" if k == "join_ref" else None) for k in keys])


def decode(raw: str | bytes) -> dict[str, Any] | None:
    """A server frame in either version, as an object (None for anything else: a binary frame
    is a 2.0.0 broadcast, never a reply)."""
    if isinstance(raw, bytes):
        return None
    message = json.loads(raw)
    if isinstance(message, list) and len(message) == 5:
        return dict(zip(("join_ref", "ref", "topic", "event", "payload"), message, strict=True))
    return message if isinstance(message, dict) else None


def session_frames(rng: random.Random, uid: str, token: str, hostile_token: str, *, vsn2: bool) -> list[str | bytes]:
    """A client's usual frames (join, broadcast, token refresh, heartbeat, leave), some mutated."""
    topic = f"realtime:jobs:{uid}"
    config = {
        "broadcast": {"self": False, "ack": True},
        "presence": {"key": ""},
        "postgres_changes": [{"event": "*", "schema": "public", "table": "jobs", "filter": f"user_id=eq.{uid}"}],
        "private": True,
    }
    frames: list[dict[str, Any]] = [
        {"topic": topic, "event": "phx_join", "payload": {"config": config, "access_token": token}, "ref": "1"},
        {
            "topic": topic,
            "event": "broadcast",
            "payload": {"type": "broadcast", "event": "e", "payload": {}},
            "ref": "2",
        },
        {"topic": topic, "event": "access_token", "payload": {"access_token": token}, "ref": "3"},
        {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": "4"},
        {"topic": topic, "event": "presence", "payload": {"type": "presence", "event": "track"}, "ref": "5"},
        {"topic": topic, "event": "phx_leave", "payload": {}, "ref": "6"},
    ]
    out: list[str | bytes] = []
    for _ in range(rng.randint(5, 16)):
        if rng.random() < 0.04:  # most of these close the socket (1007, 1009)
            out.append(rng.choice(RAW_FRAMES))
            continue
        frame = json.loads(json.dumps(rng.choice(frames)))  # a deep copy to mutate
        if rng.random() < 0.7:
            _mutate(rng, frame, hostile_token)
        out.append(encode(frame, vsn2))
    return out


def _mutate(rng: random.Random, frame: dict[str, Any], hostile_token: str) -> None:
    target = rng.randrange(5)
    if target == 0:
        frame[rng.choice(["topic", "event", "ref", "join_ref"])] = rng.choice(HOSTILE_VALUES)
    elif target == 1:
        frame["payload"] = rng.choice(HOSTILE_VALUES)
    elif target == 2 and isinstance(frame.get("payload"), dict):
        frame["payload"]["access_token"] = rng.choice([hostile_token, *HOSTILE_VALUES[:12]])
    elif target == 3 and isinstance(frame.get("payload"), dict) and isinstance(frame["payload"].get("config"), dict):
        config = frame["payload"]["config"]
        config[rng.choice(["broadcast", "presence", "postgres_changes", "private"])] = rng.choice(HOSTILE_VALUES)
        if rng.random() < 0.5:
            config["postgres_changes"] = [
                {"event": "*", "schema": "public", "table": "jobs", "filter": rng.choice(HOSTILE_VALUES)}
            ]
    else:
        frame["topic"] = rng.choice(["realtime:jobs:" + "x" * 5000, "realtime:", "phoenix", "realtime:jobs:\u0000"])
