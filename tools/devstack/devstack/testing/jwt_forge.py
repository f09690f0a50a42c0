"""Tokens an attacker could make, for the JWT tests (unit and integration).

PyJWT refuses to build some of them (HS256 with a PEM public key as secret, ``alg: none`` with a
signature), so those are assembled by hand here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from devstack.signing_keys import SigningKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _segment(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode())


def claims(
    role: str = "authenticated", *, expires_in: int = 3600, sub: str | None = None, **extra: Any
) -> dict[str, Any]:
    now = int(time.time())
    body: dict[str, Any] = {"role": role, "aud": "authenticated", "iat": now, "exp": now + expires_in, **extra}
    body["sub"] = sub or str(uuid.uuid4())
    return body


def with_key(key: SigningKey, body: dict[str, Any]) -> str:
    """Signed by one of the stack's keys (what Auth would have issued while it was current)."""
    return jwt.encode(body, key.private_key(), "ES256", headers={"kid": key.kid, "typ": "JWT"})


def foreign_es256(body: dict[str, Any], kid: str | None = None) -> str:
    """A well-formed ES256 token from a key the stack never had (claiming ``kid``, or a new one)."""
    private = ec.generate_private_key(ec.SECP256R1())
    return jwt.encode(body, private, "ES256", headers={"kid": kid or str(uuid.uuid4()), "typ": "JWT"})


def foreign_rs256(body: dict[str, Any], kid: str | None = None) -> str:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(body, private, "RS256", headers={"kid": kid or str(uuid.uuid4()), "typ": "JWT"})


def hs256_with_secret(body: dict[str, Any], secret: bytes, kid: str | None = None) -> str:
    header: dict[str, Any] = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    signing_input = f"{_segment(header)}.{_segment(body)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def alg_confusion(key: SigningKey, body: dict[str, Any], *, with_kid: bool = True) -> str:
    """HS256 'signed' with the public key (PEM, as a naive verifier would load it) as the secret."""
    pem = (
        key.private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return hs256_with_secret(body, pem, key.kid if with_kid else None)


def unsecured(body: dict[str, Any], kid: str | None = None) -> str:
    """``alg: none``, with an empty signature part (three parts, as the parsers expect)."""
    header: dict[str, Any] = {"alg": "none", "typ": "JWT", **({"kid": kid} if kid else {})}
    return f"{_segment(header)}.{_segment(body)}."
