"""One websocket: Phoenix socket semantics (heartbeat, join/leave, unmatched topics) and the
Realtime channel events (broadcast, access_token). Messages of one socket are handled in order,
like Phoenix's transport process; sends go through a queue so fan-out never waits on a client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from devstack.gateway.bounded_json import THREAD_ABOVE_BYTES
from devstack.gateway.realtime import authz, jwt_check
from devstack.gateway.realtime.hub import Channel
from devstack.gateway.realtime.protocol import Frame, FrameRefused, ProtocolError, Serializer

if TYPE_CHECKING:
    from devstack.gateway.realtime.service import RealtimeService

log = logging.getLogger(__name__)

MAX_QUEUED = 10_000  # a client this far behind is disconnected rather than buffered forever
CONFIRM_TOKEN_INTERVAL = 300.0  # Realtime re-checks a channel's token every 5 minutes (or at exp)


def _flag(value: Any) -> bool:
    """Realtime's FlexibleBoolean: true, "true", "TRUE" ..."""
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


class Connection:
    def __init__(
        self, service: RealtimeService, ws: WebSocket, serializer: Serializer, token: str, headers: dict[str, str]
    ) -> None:
        self.service = service
        self.ws = ws
        self.serializer = serializer
        self.socket_token = token
        self.headers = headers
        self.channels: dict[str, Channel] = {}
        self._token_watch: dict[Channel, asyncio.Task[None]] = {}
        self._queue: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._closed = False
        self._close_frame = (1000, "")  # what the writer closes the socket with

    # -- sending ------------------------------------------------------------------------------
    def send(self, data: str | bytes) -> None:
        if self._closed:
            return
        if self._queue.qsize() >= MAX_QUEUED:
            log.warning("realtime: client too slow, closing socket")
            self.close_socket(1000, "")
            return
        self._queue.put_nowait(data)

    def close_socket(self, code: int, reason: str) -> None:
        """Close after what is already queued, with a close frame carrying ``code`` and ``reason``."""
        if self._closed:
            return
        self._closed = True
        # A close reason holds at most 123 bytes.
        self._close_frame = (code, reason.encode()[:123].decode(errors="ignore"))
        self._queue.put_nowait(None)

    async def _writer(self) -> None:
        while (data := await self._queue.get()) is not None:
            if isinstance(data, bytes):
                await self.ws.send_bytes(data)
            else:
                await self.ws.send_text(data)
        code, reason = self._close_frame
        await self.ws.close(code=code, reason=reason)

    def reply(self, frame: Frame, status: str, response: dict[str, Any]) -> None:
        self.send(
            self.serializer.message(
                frame.topic,
                "phx_reply",
                {"status": status, "response": response},
                ref=frame.ref,
                join_ref=frame.join_ref,
            )
        )

    # -- main loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            while not writer.done():
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    break
                await self._receive(message)
        except WebSocketDisconnect:
            pass
        finally:
            self._closed = True
            for channel in list(self.channels.values()):
                self._forget(channel)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer

    async def _receive(self, message: MutableMapping[str, Any]) -> None:
        try:
            frame = await self._decode(message)
        except FrameRefused as exc:
            log.info("realtime: refused frame, closing the socket: %s", exc)
            self.close_socket(exc.close_code, str(exc))
            return
        except ProtocolError as exc:
            log.info("realtime: MalformedWebSocketMessage: %s", exc)
            return
        try:
            await self._handle(frame)
        except Exception:  # never let one message take the socket down
            log.exception("realtime: UnknownErrorOnWebSocketMessage on %s/%s", frame.topic, frame.event)

    async def _decode(self, message: MutableMapping[str, Any]) -> Frame:
        data: str | bytes | None = message.get("bytes")
        decode: Callable[[Any], Frame] = self.serializer.decode_binary
        if data is None:
            data, decode = message.get("text") or "", self.serializer.decode_text
        if len(data) > THREAD_ABOVE_BYTES:  # a large frame is parsed off the event loop
            return await asyncio.to_thread(decode, data)
        return decode(data)

    async def _handle(self, frame: Frame) -> None:
        if frame.topic == "phoenix" and frame.event == "heartbeat":
            self.reply(frame, "ok", {})
            return
        if frame.event == "phx_join":
            if frame.topic.startswith("realtime:"):
                await self._join(frame)
            else:
                self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        channel = self.channels.get(frame.topic)
        if channel is None:
            self.reply(frame, "error", {"reason": "unmatched topic"})
            return
        if frame.event == "phx_leave":
            self.reply(frame, "ok", {})
            self._close(channel)
        elif frame.event == "broadcast":
            await self._broadcast(channel, frame)
        elif frame.event == "access_token":
            await self._refresh_token(channel, frame)
        else:
            # Presence and anything unknown: Realtime logs and does not answer.
            log.info("realtime: unexpected message of type %r on %s", frame.event, frame.topic)

    # -- channel lifecycle --------------------------------------------------------------------
    async def _join(self, frame: Frame) -> None:
        name = frame.topic.removeprefix("realtime:")
        if not name:
            self.reply(frame, "error", {"reason": "TopicNameRequired: You must provide a topic name"})
            return
        if (previous := self.channels.get(frame.topic)) is not None:
            self._close(previous)  # Phoenix closes the existing channel on a duplicate join
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        config = payload.get("config") if isinstance(payload.get("config"), dict) else {}
        assert isinstance(config, dict)
        token = payload.get("access_token") or payload.get("user_token")
        if not isinstance(token, str) or token.startswith("sb_"):
            token = self.socket_token
        try:
            claims = jwt_check.check(token, self.service.keys)
        except jwt_check.RealtimeTokenError as exc:
            self.reply(frame, "error", {"reason": exc.join_reason()})
            return
        broadcast, presence = _section(config, "broadcast"), _section(config, "presence")
        channel = Channel(
            outbox=self,
            topic=frame.topic,
            join_ref=frame.join_ref,
            private=_flag(config.get("private")),
            self_broadcast=_flag(broadcast.get("self")),
            ack_broadcast=_flag(broadcast.get("ack")),
            presence_enabled=_flag(presence.get("enabled")),
            access_token=token,
            claims=claims,
        )
        if channel.private and not await self._authorize_read(channel):
            reason = f"Unauthorized: You do not have permissions to read from this Channel topic: {name}"
            self.reply(frame, "error", {"reason": reason})
            return
        raw = config.get("postgres_changes")
        requested = [p for p in raw if isinstance(p, dict)] if isinstance(raw, list) else []
        bindings, error = await self.service.subscriptions.resolve(requested, channel.role)
        channel.bindings = bindings
        self.channels[frame.topic] = channel
        self.service.hub.add(channel)
        echoed = [
            {**p, "id": b_id} for p, b_id in zip(requested, self.service.subscriptions.ids(requested), strict=True)
        ]
        self.reply(frame, "ok", {"postgres_changes": echoed})
        if requested:
            if error is None:
                channel.system("postgres_changes", "ok", "Subscribed to PostgreSQL")
            else:
                channel.system("postgres_changes", "error", error)
        self._watch_token(channel)

    async def _authorize_read(self, channel: Channel) -> bool:
        try:
            perms = await authz.can_read(
                self.service.admin_pool, self._auth_context(channel), presence_enabled=channel.presence_enabled
            )
        except authz.PolicyError as exc:
            log.warning("realtime: RlsPolicyError on %s: %s", channel.name, exc)
            return False
        channel.can_read = perms.get("broadcast", False)
        return any(perms.values())

    def _auth_context(self, channel: Channel) -> authz.AuthContext:
        return authz.AuthContext(topic=channel.name, claims=channel.claims, headers=self.headers)

    def _close(self, channel: Channel) -> None:
        """End a channel: the server side of phx_leave and of a shutdown (Phoenix sends phx_close)."""
        self._forget(channel)
        self.send(
            self.serializer.message(channel.topic, "phx_close", {}, ref=channel.join_ref, join_ref=channel.join_ref)
        )

    def _forget(self, channel: Channel) -> None:
        if self.channels.get(channel.topic) is channel:
            del self.channels[channel.topic]
        self.service.hub.remove(channel)
        task = self._token_watch.pop(channel, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def _shutdown(self, channel: Channel, message: str) -> None:
        channel.system("system", "error", message)
        self._close(channel)

    # -- broadcast ----------------------------------------------------------------------------
    async def _broadcast(self, channel: Channel, frame: Frame) -> None:
        if channel.private:
            if channel.can_write is None:
                try:
                    perms = await authz.can_write(
                        self.service.admin_pool, self._auth_context(channel), presence_enabled=channel.presence_enabled
                    )
                except authz.PolicyError as exc:
                    log.warning("realtime: RlsPolicyError on %s: %s", channel.name, exc)
                    return
                channel.can_write = perms.get("broadcast", False)
            if not channel.can_write:
                return  # hosted: silently dropped, no reply even with ack
        self.service.hub.broadcast(channel.name, channel.private, frame.payload, sender=channel)
        if channel.ack_broadcast:
            self.reply(frame, "ok", {})

    # -- token refresh and expiry -------------------------------------------------------------
    async def _refresh_token(self, channel: Channel, frame: Frame) -> None:
        payload = frame.payload if isinstance(frame.payload, dict) else {}
        token = payload.get("access_token")
        if not isinstance(token, str) or token.startswith("sb_") or token == channel.access_token:
            return
        channel.access_token = token
        try:
            claims = jwt_check.check(token, self.service.keys)
        except jwt_check.RealtimeTokenError as exc:
            self._shutdown(channel, exc.shutdown_message())
            return
        channel.claims = claims
        if channel.private:
            could_read = channel.can_read
            if not await self._authorize_read(channel):
                self._shutdown(channel, f"You do not have permissions to read from this Channel topic: {channel.name}")
                return
            if could_read and not channel.can_read:
                self._shutdown(
                    channel, f"You no longer have permission to read from this Channel topic: {channel.name}"
                )
                return
            channel.can_write = None  # re-evaluated on the next send
        self._watch_token(channel)

    def _watch_token(self, channel: Channel) -> None:
        previous = self._token_watch.pop(channel, None)
        if previous is not None:
            previous.cancel()
        self._token_watch[channel] = asyncio.create_task(self._confirm_token(channel))

    async def _confirm_token(self, channel: Channel) -> None:
        """Close the channel once its token expires, as Realtime's :confirm_token timer does."""
        while True:
            exp = channel.claims.get("exp")
            remaining = float(exp) - time.time() if isinstance(exp, int | float) else 0.0
            await asyncio.sleep(max(0.0, min(CONFIRM_TOKEN_INTERVAL, remaining + 0.05)))
            try:
                channel.claims = jwt_check.check(channel.access_token, self.service.keys)
            except jwt_check.RealtimeTokenError as exc:
                self._token_watch.pop(channel, None)
                if self.channels.get(channel.topic) is channel:
                    self._shutdown(channel, exc.shutdown_message())
                return
