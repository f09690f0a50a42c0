"""Phoenix channel framing: vsn 1.0.0 (JSON objects, realtime-py) and 2.0.0 (JSON arrays plus
binary user-broadcast frames, realtime-js). Pure functions, no I/O.

Server → client shapes follow Phoenix's serializers as Realtime uses them:
- v1 writes ``{"topic","event","payload","ref"}`` (never ``join_ref``);
- v2 writes ``[join_ref, ref, topic, event, payload]``; broadcasts fanned out to subscribers carry
  ``null`` refs; a broadcast whose user payload travels as bytes (client kind 3, or a row of
  ``realtime.messages``) becomes a binary kind-4 frame.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from devstack.gateway import bounded_json

USER_BROADCAST_PUSH = 3  # client → server
USER_BROADCAST = 4  # server → client
_ENCODING_BINARY = 0
_ENCODING_JSON = 1
_MAX_FIELD = 255


class ProtocolError(ValueError):
    """A frame that cannot be understood; Realtime logs it and keeps the socket."""


class FrameRefused(ProtocolError):
    """Well-formed JSON beyond the reader's limits (depth, size, numbers, unpaired surrogates):
    the socket is closed with ``close_code`` and the reason, as an oversized frame is."""

    def __init__(self, exc: bounded_json.JsonError) -> None:
        super().__init__(exc.message())
        # 1009 "message too big" for what is too large to process, 1007 for data no JSON
        # text can carry onwards (an unpaired surrogate, an out-of-range number).
        self.close_code = 1009 if exc.problem in ("depth", "values") else 1007


@dataclass(frozen=True)
class UserBroadcast:
    """A broadcast whose user payload is kept as raw bytes (JSON text or opaque binary)."""

    event: str
    data: bytes
    is_json: bool
    meta: dict[str, Any] | None = None


@dataclass(frozen=True)
class Frame:
    """One client message. ``payload`` is a JSON object, or a UserBroadcast for a kind-3 frame."""

    topic: str
    event: str
    payload: dict[str, Any] | UserBroadcast
    ref: str | None = None
    join_ref: str | None = None


# What a channel sends to its subscribers: either the client's JSON broadcast payload as-is, or
# a user broadcast with byte payload (v1 subscribers only see the JSON ones).
Broadcast = dict[str, Any] | UserBroadcast


def _ref(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ProtocolError(f"invalid ref {value!r}")


def _frame(topic: Any, event: Any, payload: Any, ref: Any, join_ref: Any) -> Frame:
    if not isinstance(topic, str) or not isinstance(event, str):
        raise ProtocolError("topic and event must be strings")
    if not isinstance(payload, dict):
        raise ProtocolError("payload must be an object")
    return Frame(topic, event, payload, _ref(ref), _ref(join_ref))


def _json(text: str | bytes) -> Any:
    try:
        return bounded_json.parse(text, allow_nul=True)  # frames are relayed, never stored as text
    except bounded_json.JsonError as exc:
        if exc.problem == "syntax":
            raise ProtocolError(f"invalid JSON: {exc}") from exc
        raise FrameRefused(exc) from exc


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def broadcast_json_payload(bc: UserBroadcast) -> dict[str, Any] | None:
    """The JSON shape of a byte broadcast, or None when its payload is opaque binary."""
    if not bc.is_json:
        return None
    try:
        payload = bounded_json.parse(bc.data, allow_nul=True)
    except bounded_json.JsonError:
        return None
    out: dict[str, Any] = {"event": bc.event, "payload": payload, "type": "broadcast"}
    if bc.meta:
        out["meta"] = bc.meta
    return out


class Serializer(Protocol):
    vsn: str

    def decode_text(self, text: str) -> Frame: ...

    def decode_binary(self, data: bytes) -> Frame: ...

    def message(
        self, topic: str, event: str, payload: dict[str, Any], *, ref: str | None = None, join_ref: str | None = None
    ) -> str: ...

    def broadcast(self, topic: str, bc: Broadcast) -> str | bytes | None: ...


class V1Serializer:
    vsn = "1.0.0"

    def decode_text(self, text: str) -> Frame:
        obj = _json(text)
        if not isinstance(obj, dict) or not {"topic", "event", "payload"} <= obj.keys():
            raise ProtocolError("expected an object with topic, event, payload, ref")
        return _frame(obj["topic"], obj["event"], obj["payload"], obj.get("ref"), obj.get("join_ref"))

    def decode_binary(self, data: bytes) -> Frame:
        raise ProtocolError("binary frames need vsn 2.0.0")

    def message(
        self, topic: str, event: str, payload: dict[str, Any], *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        return _dumps({"topic": topic, "event": event, "payload": payload, "ref": ref})

    def broadcast(self, topic: str, bc: Broadcast) -> str | None:
        payload = bc if isinstance(bc, dict) else broadcast_json_payload(bc)
        if payload is None:
            return None  # v1 cannot carry binary payloads; Realtime drops them for these sockets
        return self.message(topic, "broadcast", payload)


class V2Serializer:
    vsn = "2.0.0"

    def decode_text(self, text: str) -> Frame:
        arr = _json(text)
        if not isinstance(arr, list) or len(arr) < 5:
            raise ProtocolError("expected V2 array [join_ref, ref, topic, event, payload]")
        join_ref, ref, topic, event, payload = arr[:5]
        return _frame(topic, event, payload, ref, join_ref)

    def decode_binary(self, data: bytes) -> Frame:
        if len(data) < 7 or data[0] != USER_BROADCAST_PUSH:
            raise ProtocolError("unsupported binary frame")
        join_ref_len, ref_len, topic_len, event_len, meta_len, encoding = data[1:7]
        pos = 7
        fields: list[bytes] = []
        for size in (join_ref_len, ref_len, topic_len, event_len, meta_len):
            if pos + size > len(data):
                raise ProtocolError("truncated binary frame")
            fields.append(data[pos : pos + size])
            pos += size
        try:
            join_ref, ref, topic, event = (f.decode() for f in fields[:4])
        except UnicodeDecodeError as exc:
            raise ProtocolError("binary frame header is not UTF-8") from exc
        # Only "persist" may travel as metadata; Realtime does not use it for delivery.
        if fields[4]:
            meta = _json(fields[4].decode(errors="replace"))
            if not isinstance(meta, dict):
                raise ProtocolError("binary frame metadata must be an object")
        bc = UserBroadcast(event=event, data=data[pos:], is_json=encoding != _ENCODING_BINARY)
        return Frame(topic, "broadcast", bc, ref or None, join_ref or None)

    def message(
        self, topic: str, event: str, payload: dict[str, Any], *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        return _dumps([join_ref, ref, topic, event, payload])

    def broadcast(self, topic: str, bc: Broadcast) -> str | bytes:
        if isinstance(bc, dict):
            return self.message(topic, "broadcast", bc)
        return encode_user_broadcast(topic, bc)


def encode_user_broadcast(topic: str, bc: UserBroadcast) -> bytes:
    """Kind-4 frame: u8 4 | topicLen | eventLen | metaLen | enc | topic | event | meta | payload."""
    topic_b, event_b = topic.encode(), bc.event.encode()
    meta_b = _dumps(bc.meta).encode() if bc.meta else b""
    for name, field in (("topic", topic_b), ("event", event_b), ("metadata", meta_b)):
        if len(field) > _MAX_FIELD:
            raise ProtocolError(f"{name} longer than {_MAX_FIELD} bytes")
    header = bytes(
        [USER_BROADCAST, len(topic_b), len(event_b), len(meta_b), _ENCODING_JSON if bc.is_json else _ENCODING_BINARY]
    )
    return header + topic_b + event_b + meta_b + bc.data


def serializer_for(vsn: str | None) -> Serializer | None:
    """Missing vsn means 1.0.0, as in Realtime; unknown versions are refused."""
    if vsn in (None, "", "1.0.0"):
        return V1Serializer()
    if vsn == "2.0.0":
        return V2Serializer()
    return None
