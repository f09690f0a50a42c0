"""Answers for requests no route takes: an unknown path (404) or a method the path does not
serve (405), in the error shape of the service that owns the path's prefix, as its clients parse
it. Starlette's router answers these in plain text; here they are one exception handler.

Outside the services' prefixes the answer is hosted's API gateway's (Kong): ``{"message": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from starlette.exceptions import HTTPException
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Receive, Scope, Send

from devstack.gateway.auth import errors as auth_errors
from devstack.gateway.rest import errors as rest_errors
from devstack.gateway.storage import errors as storage_errors

Shape = Callable[[HTTPConnection, int, str], Response]


def _rest(conn: HTTPConnection, status: int, method: str) -> Response:
    if status == 405:
        return rest_errors.unsupported_method(method).response()
    if conn.url.path.rstrip("/") == "/rest/v1":
        return rest_errors.root_disabled().response()
    return rest_errors.invalid_path().response()


def _auth(conn: HTTPConnection, status: int, method: str) -> Response:
    return auth_errors.render(conn, auth_errors.unknown_route(status, method, conn.url.path))


def _storage(conn: HTTPConnection, status: int, method: str) -> Response:
    return storage_errors.unknown_route(status, method, conn.url.path).response()


def _gateway(conn: HTTPConnection, status: int, method: str) -> Response:
    if status == 405:
        return JSONResponse({"message": f"Method {method} is not allowed on {conn.url.path}"}, status_code=405)
    return JSONResponse({"message": "no Route matched with those values"}, status_code=404)


SHAPES: tuple[tuple[str, Shape], ...] = (
    ("/rest/v1", _rest),
    ("/auth/v1", _auth),
    ("/storage/v1", _storage),
)


async def route_error(conn: HTTPConnection, exc: Exception) -> Response:
    """The exception handler for Starlette's HTTPException (raised by the router)."""
    assert isinstance(exc, HTTPException)
    if exc.status_code not in (404, 405):  # not the router's: none is raised today
        return JSONResponse({"message": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    method = conn.scope.get("method", "GET")  # a websocket upgrade is a GET
    path = conn.url.path
    shape = next((s for prefix, s in SHAPES if path == prefix or path.startswith(prefix + "/")), _gateway)
    response = shape(conn, exc.status_code, method)
    if exc.status_code == 405:
        # Starlette's Allow names the first route matching the path; several may (GET and PUT /user).
        # Routing a Mount rewrote the scope's root_path; match from the application's own root.
        scope = {**conn.scope, "root_path": conn.scope.get("app_root_path", conn.scope.get("root_path", ""))}
        app_routes = getattr(conn.scope.get("app"), "routes", [])
        response.headers["Allow"] = ", ".join(sorted(allowed_methods(app_routes, scope)))
    return response


def allowed_methods(routes: Iterable[BaseRoute], scope: Scope) -> set[str]:
    """The methods of every route (inside Mounts too) whose path matches the request's."""
    methods: set[str] = set()
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        if isinstance(route, Mount):
            methods |= allowed_methods(route.routes, {**scope, **child})
        elif isinstance(route, Route) and route.methods:
            methods |= route.methods
    return methods


async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """A router's default: for websocket upgrades too (Starlette closes them, answering 403)."""
    raise HTTPException(404)
