"""Access tokens: minting them with GoTrue's claim set and reading them back as GoTrue does."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import jwt

from devstack.gateway import tokens
from devstack.gateway.auth.errors import AuthError
from devstack.gateway.auth.params import go_type
from devstack.gateway.auth.users import User
from devstack.gateway.key_set import KeySet, Signer


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
    signer: Signer,
    lifetime_seconds: int,
) -> tuple[str, int]:
    """Return (token, expires_at) for the user's session, signed by the current key: ES256 with its
    ``kid`` as hosted (or the legacy HS256 secret with DEVSTACK_JWT=legacy)."""
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
    return jwt.encode(claims, signer.key, algorithm=signer.alg, headers=signer.headers()), expires_at


def read(token: str, keys: KeySet) -> dict[str, Any]:
    """Verify signature and expiry; errors carry the golang-jwt wording GoTrue passes on (403 bad_jwt)."""
    try:
        claims = dict(tokens.signed_claims(token, keys))
    except tokens.TokenError as exc:
        raise _bad_jwt(_golang_jwt_text(exc)) from exc
    exp, nbf, now = claims.get("exp"), claims.get("nbf"), time.time()
    if exp is not None and (not isinstance(exp, int | float) or isinstance(exp, bool)):
        raise _bad_jwt("token is malformed: could not JSON decode claim: invalid type for claim: exp is invalid")
    if exp is not None and exp <= now:
        raise _bad_jwt("token has invalid claims: token is expired")
    if isinstance(nbf, int | float) and nbf > now:
        raise _bad_jwt("token has invalid claims: token is not valid yet")
    role = claims.get("role")
    if role is not None and not isinstance(role, str):
        # GoTrue decodes the claims into a struct whose role is a string.
        raise _bad_jwt(
            "token is malformed: could not JSON decode claim: json: cannot unmarshal"
            f" {go_type(role)} into Go struct field AccessTokenClaims.role of type string"
        )
    return claims


def _golang_jwt_text(exc: tokens.TokenError) -> str:
    """GoTrue's keyfunc (auth.go parseJWTClaims): the key by kid, else the legacy secret for HS256;
    the parser accepts only the configured keys' algorithms (HS256, ES256)."""
    if exc.kind == "malformed":
        return "token is malformed: could not base64 decode or parse the token"
    if exc.kind == "signature" or (exc.kind == "no_key" and exc.alg == "HS256"):
        if exc.alg == "ES256":
            return "token signature is invalid: crypto/ecdsa: verification error"
        return "token signature is invalid: signature is invalid"
    if exc.kind == "no_key" and exc.alg == "ES256":
        keyfunc = f"unrecognized JWT kid {exc.kid or ''} for algorithm ES256"
        return f"token is unverifiable: error while executing keyfunc: {keyfunc}"
    return f"token signature is invalid: signing method {exc.alg or 'none'} is invalid"


def _bad_jwt(detail: str) -> AuthError:
    return AuthError(403, "bad_jwt", f"invalid JWT: unable to parse or verify signature, {detail}")
