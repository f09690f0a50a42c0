"""The one JWT verifier of the gateway: Auth, REST, Realtime and Storage all call ``signed_claims``.

It picks the key the way the hosted services do (docs/hosted-platform.md §2.1, §2.5): an
asymmetric ``alg`` needs a ``kid`` naming a trusted key of that algorithm (current or previously
used; a standby, revoked or unknown kid is refused); HS256 is checked against the legacy secret
only, and only while that key is not revoked. The key decides the algorithm, so a token signed
with HS256 and the public key as secret ("alg confusion") finds no key, and ``alg: none`` never
gets that far. Each service words a ``TokenError`` its own way by its ``kind``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.types import Options

from devstack.gateway.key_set import KeySet

ErrorKind = Literal["malformed", "unsecured", "unsupported_alg", "no_key", "signature", "claims", "role"]

HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
HS256_ONLY = frozenset({"HS256"})
ASYMMETRIC_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
CLOCK_SKEW_SECONDS = 30  # PostgREST's allowance for nbf/iat

# The signature alone: registered claims are each service's business (they word them differently).
_SIGNATURE_ONLY: Options = {
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


class TokenError(Exception):
    """A token that must be refused; ``reason`` is PostgREST's text, ``kind`` lets the other
    services choose theirs."""

    def __init__(
        self,
        reason: str,
        *,
        kind: ErrorKind = "claims",
        expired: bool = False,
        details: str | None = None,
        alg: str | None = None,
        kid: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind
        self.expired = expired
        self.details = details
        self.alg = alg
        self.kid = kid


def _no_key(alg: str, kid: object) -> TokenError:
    return TokenError(
        "No suitable key or wrong key type",
        kind="no_key",
        details="No suitable key was found to decode the JWT",
        alg=alg,
        kid=kid if isinstance(kid, str) else None,
    )


VerificationKey = str | ec.EllipticCurvePublicKey


def _key_for(header: Mapping[str, Any], keys: KeySet, hmac: frozenset[str]) -> tuple[str, VerificationKey]:
    alg, kid = header.get("alg"), header.get("kid")
    if isinstance(alg, str) and alg.lower() == "none":
        raise TokenError(
            "Wrong or unsupported encoding algorithm",
            kind="unsecured",
            details="JWT is unsecured but expected 'alg' was not 'none'",
            alg=alg,
        )
    if not isinstance(alg, str) or alg not in HMAC_ALGORITHMS | ASYMMETRIC_ALGORITHMS:
        raise TokenError(
            "Wrong or unsupported encoding algorithm",
            kind="unsupported_alg",
            details=f"Unsupported alg: {alg}",
            alg=alg if isinstance(alg, str) else None,
        )
    if alg in HMAC_ALGORITHMS:
        if alg in hmac and keys.legacy_secret is not None and (kid is None or kid == keys.legacy_kid):
            return alg, keys.legacy_secret
        raise _no_key(alg, kid)
    entry = keys.trusted.get(kid) if isinstance(kid, str) else None
    if entry is None or entry[0] != alg:
        raise _no_key(alg, kid)
    return entry


@functools.lru_cache(maxsize=4096)
def signed_claims(token: str, keys: KeySet, hmac: frozenset[str] = HS256_ONLY) -> Mapping[str, Any]:
    """The claims of a token whose signature one of ``keys`` vouches for (read-only; copy to edit).

    Verified tokens are cached (as PostgREST and Storage cache them): the worker and each plugin
    send the same token on every request. The cache key includes the KeySet, and a changed key
    file gives a new KeySet, so a revoked key is refused at once. Failures are never cached.
    """
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError(f"Expected 3 parts in JWT; got {len(parts)}", kind="malformed")
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise TokenError("JWT cryptographic operation failed", kind="malformed") from exc
    alg, key = _key_for(header, keys, hmac)
    try:
        claims: dict[str, Any] = jwt.decode(token, key, algorithms=[alg], options=_SIGNATURE_ONLY)
    except jwt.InvalidSignatureError as exc:
        raise TokenError("JWT cryptographic operation failed", kind="signature", alg=alg) from exc
    except jwt.InvalidTokenError as exc:  # payload not base64/JSON/an object
        raise TokenError("JWT cryptographic operation failed", kind="malformed") from exc
    return MappingProxyType(claims)


def verify(token: str, keys: KeySet) -> dict[str, Any]:
    """PostgREST's check: a good signature, a numeric ``exp`` in the future, a ``role``.

    ``exp`` is required (hosted PostgREST would take a token without one; the gateway never
    issues such a token, so it refuses them). Audience is not enforced: hosted PostgREST accepts
    the anon/service keys, which carry none. Returns a copy the caller may change.
    """
    claims = dict(signed_claims(token, keys))
    now = time.time()
    exp = claims.get("exp")
    if not _is_number(exp):
        raise TokenError("The JWT 'exp' claim must be a number")
    assert isinstance(exp, int | float)
    if exp <= now:
        raise TokenError("JWT expired", expired=True)
    for name, text in (("nbf", "JWT not yet valid"), ("iat", "JWT issued at future")):
        value = claims.get(name)
        if value is None:
            continue
        if not _is_number(value):
            raise TokenError(f"The JWT '{name}' claim must be a number")
        if value > now + CLOCK_SKEW_SECONDS:
            raise TokenError(text)
    role_of(claims)
    return claims


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def role_of(claims: Mapping[str, Any]) -> str:
    """The ``role`` claim; a token whose role is missing or not a non-empty string (a list, an
    object, a number) is invalid, so no service ever compares or hashes anything else as a role."""
    role = claims.get("role")
    if isinstance(role, str) and role:
        return role
    if role is None or role == "":
        raise TokenError("JWT claims lack a role", kind="role")
    kind = {list: "an array", dict: "an object", bool: "a boolean"}.get(type(role), "a number")
    raise TokenError(f"JWT claim role must be a string, not {kind}", kind="role")


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
