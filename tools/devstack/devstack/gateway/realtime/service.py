"""The Realtime component of one gateway: websocket endpoint, subscriber hub and change feed."""

from __future__ import annotations

import json
import logging

from psycopg_pool import AsyncConnectionPool
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket

from devstack.gateway.context import GatewayContext
from devstack.gateway.key_set import KeySet
from devstack.gateway.realtime import jwt_check, rest_broadcast
from devstack.gateway.realtime.connection import Connection
from devstack.gateway.realtime.delivery import Delivery
from devstack.gateway.realtime.hub import Hub
from devstack.gateway.realtime.janitor import Janitor
from devstack.gateway.realtime.protocol import serializer_for
from devstack.gateway.realtime.subscriptions import Subscriptions
from devstack.gateway.realtime.wal import WalFeed

log = logging.getLogger(__name__)


class RealtimeService:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.hub = Hub()
        self.subscriptions = Subscriptions(ctx.admin)
        self.feed = WalFeed(ctx.settings.admin_url, Delivery(self.hub), interest=self.hub.wants_table)
        self.janitor = Janitor(ctx.admin)
        # Open sockets and the role of the key each was opened with (the fault control drops them).
        self.connections: dict[Connection, str] = {}

    @property
    def keys(self) -> KeySet:
        """The signing keys as of now (a revocation applies to the next check)."""
        return self.ctx.settings.signing.snapshot()

    @property
    def admin_pool(self) -> AsyncConnectionPool:
        return self.ctx.admin

    async def start(self) -> None:
        await self.janitor.start()
        await self.feed.start()

    async def stop(self) -> None:
        await self.janitor.stop()
        await self.feed.stop()

    async def broadcast_batch(self, request: Request) -> Response:
        return await rest_broadcast.batch(self, request)

    async def broadcast_single(self, request: Request) -> Response:
        return await rest_broadcast.single(self, request)

    async def endpoint(self, ws: WebSocket) -> None:
        # The x-api-key header, when sent, wins over the apikey query parameter.
        token = ws.headers["x-api-key"] if "x-api-key" in ws.headers else ws.query_params.get("apikey")
        serializer = serializer_for(ws.query_params.get("vsn"))
        if serializer is None:
            await _deny(ws, 403, "Unsupported protocol version")
            return
        try:
            role = str(jwt_check.check(token, self.keys).get("role", ""))
        except jwt_check.RealtimeTokenError as exc:
            await _deny(ws, 401, exc.handshake_text())
            return
        assert token is not None
        await ws.accept()
        headers = {k.lower(): v for k, v in ws.headers.items() if k.lower().startswith("x-")}
        connection = Connection(self, ws, serializer, token, headers)
        self.connections[connection] = role
        try:
            await connection.run()
        finally:
            self.connections.pop(connection, None)

    def drop(self, role: str | None) -> int:
        """Close every open socket (or those opened with a ``role`` key) with 1012 "service
        restart", as a Realtime node going away does; the clients must reconnect and rejoin."""
        dropped = [c for c, r in self.connections.items() if role is None or r == role]
        for connection in dropped:
            connection.close_socket(1012, "dropped by the devstack fault control")
        return len(dropped)


async def _deny(ws: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with an HTTP response, as Realtime does; servers without the denial
    extension can only close (the client then sees 403)."""
    body = Response(json.dumps({"error": message}), status_code=status, media_type="application/json")
    try:
        await ws.send_denial_response(body)
    except RuntimeError:
        await ws.close(code=1008)
