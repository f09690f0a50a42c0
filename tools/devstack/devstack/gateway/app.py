"""Assemble the gateway from its components.

Each component module exposes ``routes(ctx) -> list[BaseRoute]`` and may expose
``async start(ctx)`` / ``async stop(ctx)`` for background work (e.g. Realtime's change feed).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import ModuleType

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from devstack.gateway import auth, realtime, rest, storage
from devstack.gateway.api_keys import ApiKeyGateway
from devstack.gateway.context import GatewayContext, Settings
from devstack.gateway.edge import RequestLimits
from devstack.gateway.route_errors import not_found, route_error

COMPONENTS: tuple[ModuleType, ...] = (rest, auth, realtime, storage)

# Hosted Supabase answers any origin (the Figma plugin iframe has a null origin).
EXPOSED_HEADERS = ["Content-Range", "Content-Profile", "Preference-Applied", "X-Supabase-Api-Version", "Location"]


class JsonCors(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight (a method or header outside the
    lists) answered in the JSON error shape every client parses rather than as plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return JSONResponse({"message": bytes(response.body).decode()}, response.status_code, headers=headers)


def create_app(settings: Settings | None = None) -> Starlette:
    ctx = GatewayContext(settings or Settings.from_stack())

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await ctx.open()
        started: list[ModuleType] = []
        try:
            for comp in COMPONENTS:
                start = getattr(comp, "start", None)
                if start is not None:
                    await start(ctx)
                started.append(comp)
            yield
        finally:
            for comp in reversed(started):
                stop = getattr(comp, "stop", None)
                if stop is not None:
                    await stop(ctx)
            await ctx.close()

    async def health(_request: Request) -> JSONResponse:
        async with ctx.admin.connection() as conn:
            await conn.execute("select 1")
        return JSONResponse({"status": "ok"})

    routes: list[BaseRoute] = [Route("/health", health)]
    for comp in COMPONENTS:
        routes.extend(comp.routes(ctx))
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(
                JsonCors,
                allow_origins=["*"],
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=EXPOSED_HEADERS,
            ),
            Middleware(RequestLimits),
            # After the head limits, before any service: opaque API keys become role JWTs here.
            Middleware(ApiKeyGateway, settings=ctx.settings),
        ],
        exception_handlers={HTTPException: route_error},
    )
    # Unknown paths raise to route_error, websocket upgrades included (also inside a Mount).
    app.router.default = not_found
    for route in routes:
        if isinstance(route, Mount) and isinstance(route.app, Router):
            route.app.default = not_found
    app.state.ctx = ctx
    return app
