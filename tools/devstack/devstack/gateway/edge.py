"""What hosted Supabase's edge does before a service sees a request: refuse oversized request heads
at once, with a JSON answer, and close.

Three places see a head, each with its own limits, and each gets a refusal here:

- ``RequestLimits`` (ASGI): a complete head whose target or header section is over
  ``URL_LIMIT`` / ``HEADERS_LIMIT`` → 414 / 431. h11 parses a head that arrives in one read
  whatever its size, so this is where most oversized heads are caught.
- ``GatewayH11Protocol``: a head still incomplete past ``HEAD_LIMIT`` bytes (h11's
  ``max_incomplete_event_size``), or unparsable. uvicorn answers those with plain text and closes
  with unread input, which resets the connection and can destroy the answer.
- ``GatewayWebSocketProtocol``: uvicorn hands an upgrade's head to ``websockets``, which parses it
  again with stricter limits (8 KB lines, 128 headers). When that parse fails, uvicorn's sans-I/O
  protocol never looks at the failure: no byte is answered and the socket stays open until the
  client gives up.

Protocol-level refusals write the response, half-close, and drop what the client still sends for
``LINGER_SECONDS`` before closing, so the client can read the answer.
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from typing import Any

import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn._types import ASGISendEvent
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import SecurityError
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS

# Cloudflare, in front of hosted Supabase, refuses URLs over 16 KB and header sections over 32 KB.
URL_LIMIT = 16 * 1024
HEADERS_LIMIT = 32 * 1024
# The request line and headers together, for a head that has not arrived in full.
HEAD_LIMIT = URL_LIMIT + HEADERS_LIMIT + 1024
LINGER_SECONDS = 2.0

URL_TOO_LONG = (414, f"URI too long: the request target is over {URL_LIMIT} bytes")
HEADERS_TOO_LARGE = (431, f"Request header fields too large: the header section is over {HEADERS_LIMIT} bytes")


def _error_body(message: str) -> dict[str, str]:
    return {"message": message}


class RequestLimits:
    """ASGI middleware refusing a complete head over the limits (websocket upgrades included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            refusal = self.check(scope)
            if refusal is not None:
                status, message = refusal
                response = JSONResponse(_error_body(message), status_code=status, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    def check(scope: Scope) -> tuple[int, str] | None:
        target = len(scope.get("raw_path") or scope["path"].encode()) + 1 + len(scope.get("query_string", b""))
        if target > URL_LIMIT:
            return URL_TOO_LONG
        # Each line is "name: value\r\n".
        if sum(len(name) + len(value) + 4 for name, value in scope["headers"]) > HEADERS_LIMIT:
            return HEADERS_TOO_LARGE
        return None


def _raw_response(status: int, message: str) -> bytes:
    body = json.dumps(_error_body(message)).encode()
    head = (
        f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n"
        "content-type: application/json\r\n"
        f"content-length: {len(body)}\r\n"
        # Written below the ASGI app, so CORS is added here: the plugin's iframe can read the answer.
        "access-control-allow-origin: *\r\n"
        "connection: close\r\n\r\n"
    )
    return head.encode() + body


def _oversized(head: bytes, line_limit: int, headers_problem: str) -> tuple[int, str]:
    """414 when the request line alone is over ``line_limit``, else 431."""
    if head.find(b"\r\n", 0, line_limit + 2) == -1:
        return 414, f"URI too long: the request line is over {line_limit} bytes"
    return 431, f"Request header fields too large: {headers_problem}"


class _Refusal:
    """Answer once with a JSON error, half-close, drop further input, close after a moment."""

    transport: asyncio.Transport
    refused = False

    def refuse(self, status: int, message: str) -> None:
        self.refused = True
        transport = self.transport
        transport.write(_raw_response(status, message))
        if transport.can_write_eof():
            transport.write_eof()
        # Closing while the client is still sending would reset the connection, and a reset can
        # reach the client before it reads the answer.
        asyncio.get_running_loop().call_later(LINGER_SECONDS, transport.close)


class GatewayH11Protocol(_Refusal, H11Protocol):
    def data_received(self, data: bytes) -> None:
        if not self.refused:
            super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        # uvicorn calls this for every h11.RemoteProtocolError: a malformed head, or one still
        # incomplete past max_incomplete_event_size.
        pending, _closed = self.conn.trailing_data
        if len(pending) > HEAD_LIMIT:
            self.refuse(*_oversized(pending, URL_LIMIT, f"the request head is over {HEAD_LIMIT} bytes"))
        else:
            self.refuse(400, msg)

    def shutdown(self) -> None:
        if self.refused:
            self.transport.close()
        else:
            super().shutdown()


class GatewayWebSocketProtocol(_Refusal, WebSocketsSansIOProtocol):
    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        # A refusal through the denial-response extension (a bad key: a 401 in JSON) is a finished
        # handshake too; uvicorn's sans-I/O protocol does not mark it so and logs "ASGI callable
        # returned without completing handshake" at ERROR for every refused upgrade (its wsproto
        # protocol does; Kludex/uvicorn#3138).
        if message["type"] == "websocket.http.response.body" and not message.get("more_body", False):
            self.handshake_complete = True

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)
        failure = self.conn.handshake_exc
        if failure is not None and not self.handshake_initiated:
            if isinstance(failure.__cause__, SecurityError):
                problem = f"a line over {MAX_LINE_LENGTH} bytes or over {MAX_NUM_HEADERS} headers"
                self.refuse(*_oversized(data, MAX_LINE_LENGTH, problem))
            else:
                self.refuse(400, "Invalid websocket upgrade request")

    def shutdown(self) -> None:
        if self.refused:
            self.transport.close()
        else:
            super().shutdown()


def server_config(app: ASGIApp, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the gateway: its HTTP and websocket protocols and head limit."""
    return uvicorn.Config(
        app,
        http=GatewayH11Protocol,
        ws=GatewayWebSocketProtocol,
        h11_max_incomplete_event_size=HEAD_LIMIT,
        # Hosted Realtime never compresses a frame (Phoenix's websocket `compress` defaults to
        # false and supabase/realtime does not set it: docs/hosted-platform.md §3); uvicorn would
        # accept permessage-deflate, which every client offers, and spend CPU on both ends.
        ws_per_message_deflate=False,
        **options,
    )
