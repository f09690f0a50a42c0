"""Who is calling Storage (the Bearer JWT), and signed-URL tokens.

Errors use the wording of the `jose` library hosted Storage verifies with, wrapped as Storage
does (AccessDenied for the caller's JWT, InvalidJWT / InvalidSignature for signed URLs).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import jwt

from devstack.gateway import tokens
from devstack.gateway.pg import API_ROLES
from devstack.gateway.storage.errors import access_denied, invalid_jwt, invalid_signature

_BEARER = re.compile(r"^Bearer\s+", re.IGNORECASE)
SIGNED_URL_SCOPE_DOWNLOAD = "download"


@dataclass(frozen=True)
class Caller:
    role: str
    claims: dict[str, Any]

    @property
    def owner(self) -> str | None:
        sub = self.claims.get("sub")
        return sub if isinstance(sub, str) and sub else None


def _decode(token: str, secret: str) -> dict[str, Any]:
    """Verify HS256 + expiry (``exp`` is required, as everywhere else in the gateway); raise
    ValueError carrying jose's message."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp"], "verify_aud": False}
        )
    except jwt.ExpiredSignatureError as exc:
        raise ValueError('"exp" claim timestamp check failed') from exc
    except jwt.MissingRequiredClaimError as exc:
        raise ValueError('missing required "exp" claim') from exc
    except jwt.InvalidSignatureError as exc:
        raise ValueError("signature verification failed") from exc
    except jwt.InvalidTokenError as exc:
        raise ValueError("Invalid Compact JWS") from exc
    return claims


def caller(authorization: str | None, secret: str, *, optional: bool = False) -> Caller | None:
    """The verified caller; None when ``optional`` and no valid token (Storage then treats it as anon)."""
    token = _BEARER.sub("", authorization or "")
    try:
        claims = _decode(token, secret)
        role = tokens.role_of(claims)
    except (ValueError, tokens.TokenError) as exc:
        if optional:
            return None
        raise access_denied(str(exc)) from exc
    if role not in API_ROLES:
        # The gateway only switches into the API roles; anything else never reaches the database.
        raise access_denied("Access denied: Invalid role", http_status=403)
    return Caller(role=role, claims=claims)


def sign_download(bucket: str, key: str, expires_in: int, secret: str) -> str:
    now = int(time.time())
    claims = {"url": f"{bucket}/{key}", "scope": SIGNED_URL_SCOPE_DOWNLOAD, "iat": now, "exp": now + expires_in}
    return jwt.encode(claims, secret, algorithm="HS256")


def verify_download(token: str, bucket: str, key: str, secret: str) -> None:
    """Storage's verifyObjectSignature for downloads: signature, scope, object binding, expiry."""
    try:
        claims = _decode(token, secret)
    except ValueError as exc:
        raise invalid_jwt(str(exc)) from exc
    scope = claims.get("scope")
    if not (scope == SIGNED_URL_SCOPE_DOWNLOAD or (scope is None and "upsert" not in claims)):
        raise invalid_signature(f"Token is not scoped for {SIGNED_URL_SCOPE_DOWNLOAD}")
    if claims.get("url") != f"{bucket}/{key}":
        raise invalid_signature()
