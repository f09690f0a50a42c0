"""/rest/v1 — the PostgREST subset (see REST.md): tables, views and RPC over the request's role."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from devstack.gateway.context import GatewayContext
from devstack.gateway.rest.rpc import RpcHandler
from devstack.gateway.rest.service import RestService
from devstack.gateway.rest.tables import TableHandler

# One service per gateway context (contexts are unhashable dataclasses, hence the id key).
_services: dict[int, RestService] = {}

ALL_METHODS = ["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE"]


def service_for(ctx: GatewayContext) -> RestService:
    if id(ctx) not in _services:
        _services[id(ctx)] = RestService(ctx)
    return _services[id(ctx)]


def routes(ctx: GatewayContext) -> list[BaseRoute]:
    service = service_for(ctx)
    tables, rpc = TableHandler(service), RpcHandler(service)

    async def table_endpoint(request: Request) -> Response:
        return await service.run(request, f"/{request.path_params['table']}", tables)

    async def rpc_endpoint(request: Request) -> Response:
        return await service.run(request, f"/rpc/{request.path_params['function']}", rpc)

    return [
        Route("/rest/v1/rpc/{function}", rpc_endpoint, methods=ALL_METHODS),
        Route("/rest/v1/{table}", table_endpoint, methods=ALL_METHODS),
    ]


async def start(ctx: GatewayContext) -> None:
    await service_for(ctx).catalog.start()


async def stop(ctx: GatewayContext) -> None:
    service = _services.pop(id(ctx), None)
    if service is not None:
        await service.catalog.stop()
