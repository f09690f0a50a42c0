"""JWT verification shared by REST, Realtime and Storage (HS256 with the stack's secret)."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import jwt


class TokenError(Exception):
    """A token that must be refused; ``reason`` is the human text the hosted servers give."""

    def __init__(self, reason: str, *, expired: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.expired = expired


def verify(token: str, secret: str) -> dict[str, Any]:
    """Return the claims of a valid token; raise TokenError otherwise.

    Audience is not enforced (hosted PostgREST accepts the anon/service keys, which carry none);
    ``role`` must be present because it selects the database role.

    A token's signature is checked once and its claims cached (as PostgREST's JWT cache does): the
    worker and each plugin send the same token on every request, and HS256 verification was a
    seventh of a simple RPC's time in the gateway. Expiry is checked on every call.
    """
    claims = dict(_verified(token, secret))
    if claims["exp"] <= time.time():  # jwt.decode checks it too, but the cached answer may be old
        raise TokenError("JWT expired", expired=True)
    return claims


@functools.lru_cache(maxsize=4096)
def _verified(token: str, secret: str) -> Mapping[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            options={"require": ["exp"], "verify_aud": False},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenError("JWT expired", expired=True) from exc
    except jwt.InvalidSignatureError as exc:
        raise TokenError("JWT cryptographic operation failed") from exc
    except jwt.DecodeError as exc:
        raise TokenError("Invalid JWT serialization") from exc
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"JWT invalid: {exc}") from exc
    role_of(claims)
    if not isinstance(claims.get("exp"), int | float):
        raise TokenError("JWT invalid: exp must be a number")
    return MappingProxyType(claims)  # read-only: every caller gets its own copy


def role_of(claims: Mapping[str, Any]) -> str:
    """The ``role`` claim; a token whose role is missing or not a non-empty string (a list, an
    object, a number) is invalid, so no service ever compares or hashes anything else as a role."""
    role = claims.get("role")
    if isinstance(role, str) and role:
        return role
    if role is None or role == "":
        raise TokenError("JWT claims lack a role")
    kind = {list: "an array", dict: "an object", bool: "a boolean"}.get(type(role), "a number")
    raise TokenError(f"JWT claim role must be a string, not {kind}")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
