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
from devstack.gateway.key_set import KeySet
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


# jose's texts (hosted Storage verifies with jose v6 and wraps them in AccessDenied).
_ALG_NOT_ALLOWED = '"alg" (Algorithm) Header Parameter value not allowed'
_BAD_SIGNATURE = "signature verification failed"


def _jose_message(exc: tokens.TokenError, keys: KeySet) -> str:
    """What jose says where the shared verifier refused: Storage falls back to the legacy secret
    when no JWK matches, so an HS* token without a key fails its signature check and an ES* one
    fails jose's key type check; algorithms without any key are not allowed at all."""
    if exc.kind == "malformed":
        return "Invalid Compact JWS"
    if exc.kind == "signature" or (exc.kind == "no_key" and exc.alg in tokens.HMAC_ALGORITHMS):
        return _BAD_SIGNATURE
    if exc.kind == "no_key" and exc.alg is not None and exc.alg.startswith("ES") and keys.trusted:
        return (
            f"Key for the {exc.alg} algorithm must be one of type CryptoKey, KeyObject, or JSON Web Key."
            " Received an instance of Uint8Array"
        )
    if exc.kind in ("no_key", "unsecured", "unsupported_alg"):
        return _ALG_NOT_ALLOWED
    return exc.reason


def _caller_claims(token: str, keys: KeySet) -> dict[str, Any]:
    """Verify with the gateway's key set, then ``exp`` (required, as everywhere in the gateway)
    and ``nbf`` as jose checks them; raise ValueError carrying jose's message."""
    try:
        claims = dict(tokens.signed_claims(token, keys))
    except tokens.TokenError as exc:
        raise ValueError(_jose_message(exc, keys)) from exc
    _check_times(claims)
    return claims


def _check_times(claims: dict[str, Any]) -> None:
    now = time.time()
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if exp is None:
        raise ValueError('missing required "exp" claim')
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        raise ValueError('"exp" claim must be a number')
    if exp <= now:
        raise ValueError('"exp" claim timestamp check failed')
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > now):
        raise ValueError('"nbf" claim timestamp check failed')


def _url_token_claims(token: str, secret: str) -> dict[str, Any]:
    """Signed-URL tokens: Storage's own URL-signing key (here the stack secret), HS256 only.

    Hosted signs URLs with a separate Storage key that JWT signing-key changes do not touch
    (doc storage/security/signing-keys), so revoking the legacy JWT key leaves them valid.
    """
    try:
        claims: dict[str, Any] = jwt.decode(
            token, secret, algorithms=["HS256"], options={"require": ["exp"], "verify_aud": False}
        )
    except jwt.ExpiredSignatureError as exc:
        raise ValueError('"exp" claim timestamp check failed') from exc
    except jwt.MissingRequiredClaimError as exc:
        raise ValueError('missing required "exp" claim') from exc
    except jwt.InvalidSignatureError as exc:
        raise ValueError(_BAD_SIGNATURE) from exc
    except jwt.InvalidTokenError as exc:
        raise ValueError("Invalid Compact JWS") from exc
    return claims


def caller(authorization: str | None, keys: KeySet, *, optional: bool = False) -> Caller | None:
    """The verified caller; None when ``optional`` and no valid token (Storage then treats it as anon)."""
    token = _BEARER.sub("", authorization or "")
    try:
        claims = _caller_claims(token, keys)
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
        claims = _url_token_claims(token, secret)
    except ValueError as exc:
        raise invalid_jwt(str(exc)) from exc
    scope = claims.get("scope")
    if not (scope == SIGNED_URL_SCOPE_DOWNLOAD or (scope is None and "upsert" not in claims)):
        raise invalid_signature(f"Token is not scoped for {SIGNED_URL_SCOPE_DOWNLOAD}")
    if claims.get("url") != f"{bucket}/{key}":
        raise invalid_signature()
