"""/auth/v1: the GoTrue subset the clients use (sign-up incl. anonymous, password and refresh grants,
user, logout) and the JWKS, with GoTrue's error codes in both API-version shapes."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route

from devstack.gateway.auth.endpoints import AuthEndpoints
from devstack.gateway.context import GatewayContext


def routes(ctx: GatewayContext) -> list[BaseRoute]:
    api = AuthEndpoints(ctx)
    return [
        Mount(
            "/auth/v1",
            routes=[
                Route("/signup", api.guarded(api.signup), methods=["POST"]),
                Route("/token", api.guarded(api.token), methods=["POST"]),
                Route("/user", api.guarded(api.get_user), methods=["GET"]),
                Route("/user", api.guarded(api.put_user), methods=["PUT"]),
                Route("/logout", api.guarded(api.logout), methods=["POST"]),
                Route("/settings", api.guarded(api.settings), methods=["GET"]),
                Route("/health", api.guarded(api.health), methods=["GET"]),
                # Open, as in the self-hosted gateway (kong.yml auth-v1-open-jwks): no apikey needed.
                Route("/.well-known/jwks.json", api.jwks, methods=["GET"]),
            ],
        )
    ]
