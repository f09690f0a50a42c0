"""Who is calling: the API key (Kong's check) and the JWT that selects role and claims (PostgREST's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from devstack.gateway import api_keys, tokens
from devstack.gateway.context import Settings
from devstack.gateway.key_set import KeySet
from devstack.gateway.rest.errors import (
    ApiError,
    invalid_api_key,
    jwt_claims_error,
    jwt_decode_error,
    no_api_key,
)


@dataclass(frozen=True)
class Credentials:
    role: str
    claims: dict[str, Any]

    @property
    def authenticated(self) -> bool:
        """PostgREST's notion: any role other than the anonymous one (decides 401 vs 403)."""
        return self.role != "anon"


def api_key(request: Request) -> str | None:
    return request.headers.get("apikey") or request.query_params.get("apikey")


def resolve(request: Request, settings: Settings) -> Credentials:
    key = api_key(request)
    if not key:
        raise no_api_key()
    if not api_keys.key_passes(request, settings):
        raise invalid_api_key()
    authorization = request.headers.get("authorization")
    token = tokens.bearer(authorization) if authorization else key
    if authorization is not None and token is None:
        raise jwt_decode_error("Empty JWT is sent in Authorization header")
    assert token is not None
    return Credentials(*_verify(token, settings.signing.snapshot()))


def _verify(token: str, keys: KeySet) -> tuple[str, dict[str, Any]]:
    try:
        claims = tokens.verify(token, keys)
    except tokens.TokenError as exc:
        if exc.kind == "claims":
            raise jwt_claims_error(exc.reason) from exc
        raise jwt_decode_error(exc.reason, details=exc.details) from exc
    return str(claims["role"]), claims


__all__ = ["ApiError", "Credentials", "api_key", "resolve"]
