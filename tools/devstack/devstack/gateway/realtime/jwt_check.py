"""Token checks with Realtime's own wording (it differs from PostgREST's).

Realtime needs ``role`` and ``exp``, and ``role`` must be one of the API roles (the policy checks
switch into it); its handshake answers 401 ``{"error": ...}`` and its joins
answer ``{"reason": "<Code>: <message>"}``. ``kind`` selects between the two texts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

from devstack.gateway import tokens
from devstack.gateway.key_set import KeySet
from devstack.gateway.pg import API_ROLES

Kind = Literal["missing", "expired", "missing_claims", "malformed", "signature", "role", "signer"]
ROLE_TEXT = "The `role` in the JWT must be one of anon, authenticated, service_role"
SIGNER_TEXT = "Failed to generate JWT signer, check your JWT secret or JWKS configuration"

# Handshake (HTTP 401 body) texts, as RealtimeWeb.UserSocket.error_response/1.
HANDSHAKE_TEXT: dict[Kind, str] = {
    "missing": "API key is missing",
    "expired": "Token has expired",
    "missing_claims": "Fields `role` and `exp` are required in JWT",
    "malformed": "The token provided is not a valid JWT",
    "signature": "Failed to validate JWT signature",
    "role": ROLE_TEXT,
    "signer": SIGNER_TEXT,
}


@dataclass
class RealtimeTokenError(Exception):
    kind: Kind
    detail: str = ""  # the expiry text, or the kid no signer was found for

    def handshake_text(self) -> str:
        """The ``{"error": ...}`` of a refused websocket upgrade (UserSocket.error_response/1)."""
        if self.kind == "signer" and self.detail:
            return _signer_text(self.detail)
        return HANDSHAKE_TEXT[self.kind]

    def join_reason(self) -> str:
        """The ``reason`` of a join error reply (RealtimeChannel.join/3)."""
        if self.kind == "signer":
            return f"JwtSignerError: {self.handshake_text()}"
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
        if self.kind == "signer":
            return self.handshake_text()
        if self.kind == "expired":
            return self.detail
        if self.kind == "missing_claims":
            return "Fields `role` and `exp` are required in JWT"
        if self.kind == "signature":
            return ":signature_error"  # hosted pushes inspect(reason) here
        if self.kind == "role":
            return ROLE_TEXT
        return "The token provided is not a valid JWT"


def _signer_text(kid: str) -> str:
    # Elixir's inspect/1 of a string: double-quoted, with " and \\ escaped.
    quoted = '"' + kid.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"Failed to generate JWT signer for key ID (kid) {quoted}, check your JWT secret or JWKS configuration"


def _refusal(exc: tokens.TokenError) -> RealtimeTokenError:
    """Realtime's generate_signer: an HS* token with no matching key falls back to the legacy
    secret and fails its signature check; an asymmetric one with an unknown kid has no signer."""
    if exc.kind == "malformed":
        return RealtimeTokenError("malformed")
    if exc.kind == "signature" or (exc.kind == "no_key" and exc.alg in tokens.HMAC_ALGORITHMS):
        return RealtimeTokenError("signature")
    if exc.kind == "no_key" and exc.kid is not None:
        return RealtimeTokenError("signer", exc.kid)
    return RealtimeTokenError("signer")


def check(token: str | None, keys: KeySet) -> dict[str, Any]:
    """Return the claims of a usable token or raise RealtimeTokenError."""
    if not isinstance(token, str) or not token:
        raise RealtimeTokenError("missing")
    token = "".join(token.split())  # Realtime strips whitespace before verifying
    try:
        claims = dict(tokens.signed_claims(token, keys, tokens.HMAC_ALGORITHMS))
    except tokens.TokenError as exc:
        raise _refusal(exc) from exc
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
