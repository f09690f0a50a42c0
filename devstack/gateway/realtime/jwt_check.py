"""Token checks with Realtime's own wording (it differs from PostgREST's).

Realtime needs ``role`` and ``exp``, and ``role`` must be one of the API roles (the policy checks
switch into it); its handshake answers 401 ``{"error": ...}`` and its joins
answer ``{"reason": "<Code>: <message>"}``. ``kind`` selects between the two texts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from devstack.gateway import tokens
from devstack.gateway.pg import API_ROLES

Kind = Literal["missing", "expired", "missing_claims", "malformed", "signature", "role"]
ROLE_TEXT = "The `role` in the JWT must be one of anon, authenticated, service_role"

# Handshake (HTTP 401 body) texts, as RealtimeWeb.UserSocket.error_response/1.
HANDSHAKE_TEXT: dict[Kind, str] = {
    "missing": "API key is missing",
    "expired": "Token has expired",
    "missing_claims": "Fields `role` and `exp` are required in JWT",
    "malformed": "The token provided is not a valid JWT",
    "signature": "Failed to validate JWT signature",
    "role": ROLE_TEXT,
}


@dataclass
class RealtimeTokenError(Exception):
    kind: Kind
    detail: str = ""

    def join_reason(self) -> str:
        """The ``reason`` of a join error reply (RealtimeChannel.join/3)."""
        if self.kind == "expired":
            return f"InvalidJWTToken: {self.detail}"
        if self.kind == "missing_claims":
            return "InvalidJWTToken: Fields `role` and `exp` are required in JWT"
        if self.kind == "signature":
            return "JwtSignatureError: Failed to validate JWT signature"
        if self.kind == "role":
            return f"InvalidJWTToken: {ROLE_TEXT}"
        return "MalformedJWT: The token provided is not a valid JWT"

    def shutdown_message(self) -> str:
        """The system message text when a refreshed token is refused (no code prefix)."""
        if self.kind == "expired":
            return self.detail
        if self.kind == "missing_claims":
            return "Fields `role` and `exp` are required in JWT"
        if self.kind == "signature":
            return ":signature_error"  # hosted pushes inspect(reason) here
        if self.kind == "role":
            return ROLE_TEXT
        return "The token provided is not a valid JWT"


def check(token: str | None, secret: str) -> dict[str, Any]:
    """Return the claims of a usable token or raise RealtimeTokenError."""
    if not isinstance(token, str) or not token:
        raise RealtimeTokenError("missing")
    token = "".join(token.split())  # Realtime strips whitespace before verifying
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256", "HS384", "HS512"], options={"verify_exp": False, "verify_aud": False}
        )
    except jwt.InvalidSignatureError as exc:
        raise RealtimeTokenError("signature") from exc
    except jwt.InvalidTokenError as exc:
        raise RealtimeTokenError("malformed") from exc
    exp = claims.get("exp")
    if "role" not in claims or exp is None:
        raise RealtimeTokenError("missing_claims")
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise RealtimeTokenError("malformed")
    now = int(time.time())
    if exp <= now:
        raise RealtimeTokenError("expired", f"Token has expired {now - int(exp)} seconds ago")
    try:
        role = tokens.role_of(claims)
    except tokens.TokenError:
        role = None  # a list, object or number names no role at all
    if role not in API_ROLES:
        # authz switches the admin pool's session into this role: only the API roles may be named.
        raise RealtimeTokenError("role")
    return claims
