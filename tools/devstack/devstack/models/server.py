"""One ASGI app serving both model stand-ins and the ``/_standin`` control API.

Run it with ``python -m devstack.models [--host 127.0.0.1] [--port 54329]``. It binds loopback
only: it is a development and test tool with no authentication of its own.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Sequence

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute

from devstack import paths
from devstack.gc_tuning import freeze_imports
from devstack.models import anthropic_api, gemini_api
from devstack.models.control import control_routes
from devstack.models.faults import StandinState


def create_app(state: StandinState | None = None) -> Starlette:
    state = state or StandinState()
    routes: list[BaseRoute] = [*control_routes(state), *anthropic_api.routes(state), *gemini_api.routes(state)]

    async def not_found(request: Request, _exc: Exception) -> JSONResponse:
        # Both SDKs turn a 404 into a typed error; say which path was wrong.
        return JSONResponse({"error": {"code": 404, "message": f"no stand-in route for {request.url.path}"}}, 404)

    app = Starlette(routes=routes, exception_handlers={404: not_found})
    app.state.standin = state
    return app


def _loopback(host: str) -> str:
    if host == "localhost":
        return host
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{host!r} is not a loopback address; the stand-ins only bind loopback")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.models", description=__doc__)
    parser.add_argument("--host", type=_loopback, default=paths.HOST)
    parser.add_argument("--port", type=int, default=paths.MODELS_PORT)
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    args = parser.parse_args(argv)
    try:
        state = StandinState()  # reads STANDIN_LATENCY_MS / STANDIN_STREAM_DELAY_MS
    except ValueError as exc:
        parser.error(str(exc))
    app = create_app(state)
    freeze_imports()
    # A held ("timeout" fault) request must not keep Ctrl-C waiting for its whole hold.
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=2)
