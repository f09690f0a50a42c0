"""JWT verification shared by REST, Realtime and Storage (HS256 with the stack's secret)."""

from __future__ import annotations

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
    """
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
    role = claims.get("role")
    if not isinstance(role, str) or not role:
        raise TokenError("JWT claims lack a role")
    return claims


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
