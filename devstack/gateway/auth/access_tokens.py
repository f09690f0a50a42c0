"""Access tokens: minting them with GoTrue's claim set and reading them back as GoTrue does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from devstack.gateway.auth.errors import AuthError
from devstack.gateway.auth.params import go_type
from devstack.gateway.auth.users import User


@dataclass(frozen=True)
class AuthMethod:
    """One `amr` entry: how (and when) the session was authenticated."""

    method: str
    timestamp: int


def mint(
    *,
    user: User,
    session_id: str,
    amr: list[AuthMethod],
    issuer: str,
    secret: str,
    lifetime_seconds: int,
) -> tuple[str, int]:
    """Return (token, expires_at) for the user's session, HS256 with the stack secret."""
    issued_at = int(time.time())
    expires_at = issued_at + lifetime_seconds
    claims: dict[str, Any] = {
        "iss": issuer,
        "sub": str(user["id"]),
        "aud": user["aud"],
        "exp": expires_at,
        "iat": issued_at,
        "email": user["email"] or "",
        "phone": user["phone"] or "",
        "app_metadata": user["raw_app_meta_data"] or {},
        "user_metadata": user["raw_user_meta_data"] or {},
        "role": user["role"],
        "aal": "aal1",
        "amr": [{"method": m.method, "timestamp": m.timestamp} for m in amr],
        "session_id": session_id,
        "is_anonymous": bool(user["is_anonymous"]),
    }
    return jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"}), expires_at


def read(token: str, secret: str) -> dict[str, Any]:
    """Verify signature and expiry; errors carry the golang-jwt wording GoTrue passes on (403 bad_jwt)."""
    try:
        claims: dict[str, Any] = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_aud": False})
    except jwt.ExpiredSignatureError as exc:
        raise _bad_jwt("token has invalid claims: token is expired") from exc
    except jwt.InvalidSignatureError as exc:
        raise _bad_jwt("token signature is invalid: signature is invalid") from exc
    except jwt.DecodeError as exc:
        raise _bad_jwt("token is malformed: could not base64 decode or parse the token") from exc
    except jwt.InvalidTokenError as exc:
        raise _bad_jwt(f"token has invalid claims: {exc}") from exc
    role = claims.get("role")
    if role is not None and not isinstance(role, str):
        # GoTrue decodes the claims into a struct whose role is a string.
        raise _bad_jwt(
            "token is malformed: could not JSON decode claim: json: cannot unmarshal"
            f" {go_type(role)} into Go struct field AccessTokenClaims.role of type string"
        )
    return claims


def _bad_jwt(detail: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {detail}")
