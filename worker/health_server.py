"""The /health and /metrics HTTP endpoints (Starlette, served by uvicorn beside the worker)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from worker.core.health import HealthState
from worker.core.metrics import Metrics


def create_app(state: HealthState, metrics: Metrics) -> Starlette:
    async def health(_request: Request) -> JSONResponse:
        healthy, body = state.report()
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def prometheus(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/health", health), Route("/metrics", prometheus)])


@contextlib.asynccontextmanager
async def http_server(state: HealthState, metrics: Metrics, host: str, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(create_app(state, metrics), host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    # _serve, not serve: serve() captures SIGTERM/SIGINT, which belong to the worker's two-phase shutdown.
    task = asyncio.create_task(server._serve(), name="health-http")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)
