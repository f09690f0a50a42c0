"""/realtime/v1 — Phoenix channels (vsn 1.0.0 and 2.0.0): broadcast, Broadcast from Database with
private-channel authorization, postgres_changes; plus the HTTP broadcast API. See README.md."""

from __future__ import annotations

import json
import os

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute

from devstack.gateway.context import GatewayContext
from devstack.gateway.realtime.service import RealtimeService

# One service per gateway instance (tests run several in one process). GatewayContext is an
# unhashable dataclass, so instances are keyed by identity.
_services: dict[int, RealtimeService] = {}

# Test-only: with DEVSTACK_FAULT_CONTROL=1 (off by default; the chaos suite sets it) a loopback
# client may drop open sockets, as a Realtime node restart does (POST {"role": "service_role"}).
FAULT_CONTROL_ENV = "DEVSTACK_FAULT_CONTROL"
LOOPBACK = frozenset({"127.0.0.1", "::1"})


def _service(ctx: GatewayContext) -> RealtimeService:
    service = _services.get(id(ctx))
    if service is None or service.ctx is not ctx:
        service = _services[id(ctx)] = RealtimeService(ctx)
    return service


def routes(ctx: GatewayContext) -> list[BaseRoute]:
    service = _service(ctx)
    found: list[BaseRoute] = [
        WebSocketRoute("/realtime/v1/websocket", service.endpoint),
        Route("/realtime/v1/api/broadcast", service.broadcast_batch, methods=["POST"]),
        Route("/realtime/v1/api/broadcast/{topic}/events/{event}", service.broadcast_single, methods=["POST"]),
    ]
    if os.environ.get(FAULT_CONTROL_ENV) == "1":

        async def drop(request: Request) -> Response:
            return await _drop(service, request)

        found.append(Route("/realtime/v1/_devstack/drop", drop, methods=["POST"]))
    return found


async def _drop(service: RealtimeService, request: Request) -> Response:
    if request.client is None or request.client.host not in LOOPBACK:
        return JSONResponse({"error": "the fault control answers loopback clients only"}, 403)
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        return JSONResponse({"error": f"body is not valid JSON: {exc}"}, 422)
    role = body.get("role") if isinstance(body, dict) else None
    if not isinstance(body, dict) or set(body) - {"role"} or not (role is None or isinstance(role, str)):
        return JSONResponse({"error": 'body must be {} or {"role": "<role of the socket\'s key>"}'}, 422)
    return JSONResponse({"dropped": service.drop(role)})


async def start(ctx: GatewayContext) -> None:
    await _service(ctx).start()


async def stop(ctx: GatewayContext) -> None:
    service = _services.pop(id(ctx), None)
    if service is not None:
        await service.stop()
