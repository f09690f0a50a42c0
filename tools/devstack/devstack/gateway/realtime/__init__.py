"""/realtime/v1 — Phoenix channels (vsn 1.0.0 and 2.0.0): broadcast, Broadcast from Database with
private-channel authorization, postgres_changes; plus the HTTP broadcast API. See README.md."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route, WebSocketRoute

from devstack.gateway.context import GatewayContext
from devstack.gateway.realtime.service import RealtimeService

# One service per gateway instance (tests run several in one process). GatewayContext is an
# unhashable dataclass, so instances are keyed by identity.
_services: dict[int, RealtimeService] = {}


def _service(ctx: GatewayContext) -> RealtimeService:
    service = _services.get(id(ctx))
    if service is None or service.ctx is not ctx:
        service = _services[id(ctx)] = RealtimeService(ctx)
    return service


def routes(ctx: GatewayContext) -> list[BaseRoute]:
    service = _service(ctx)
    return [
        WebSocketRoute("/realtime/v1/websocket", service.endpoint),
        Route("/realtime/v1/api/broadcast", service.broadcast_batch, methods=["POST"]),
        Route("/realtime/v1/api/broadcast/{topic}/events/{event}", service.broadcast_single, methods=["POST"]),
    ]


async def start(ctx: GatewayContext) -> None:
    await _service(ctx).start()


async def stop(ctx: GatewayContext) -> None:
    service = _services.pop(id(ctx), None)
    if service is not None:
        await service.stop()
