"""(a) Forged credentials: every token and key an attacker can make without the project's private
keys, each sent to REST, RPC, Storage and Realtime, where every one must be refused.

Tokens that need a key the stack trusts (expired, no ``exp``, ``nbf`` ahead, roles the API must
not switch to) are minted only when the suite has such a key: the devstack signing key on a local
stack, or SUPABASE_JWT_SECRET (legacy HS256) elsewhere; otherwise they are reported as skipped.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from bench.attack import surfaces
from bench.attack.recorder import Recorder
from bench.attack.target import Target, User
from devstack.testing import jwt_forge

Mint = Callable[[dict[str, Any]], str]
CATEGORY = "forgery"
# Secrets people leave in place: the Supabase CLI's default JWT secret, and the obvious ones.
GUESSED_SECRETS = [
    b"super-secret-jwt-token-with-at-least-32-characters-long",
    b"secret",
    b"",
    b"your-super-secret-jwt-token-with-at-least-32-characters-long",
]


def _tamper(token: str, **changes: Any) -> str:
    """A real token with its claims edited and its signature kept (now wrong)."""
    header, body, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims.update(changes)
    edited = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{edited}.{signature}"


def _public_pems(jwks: dict[str, Any]) -> list[tuple[str, bytes, str]]:
    """(kid, PEM, JWK text) of every published public key: the secrets of an alg-confusion forgery."""
    out = []
    for jwk in jwks.get("keys", []):
        loader = ECAlgorithm if jwk.get("kty") == "EC" else RSAAlgorithm if jwk.get("kty") == "RSA" else None
        if loader is None:
            continue
        key = loader.from_jwk(jwk)
        pem = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)  # type: ignore[union-attr]
        out.append((str(jwk.get("kid", "")), pem, json.dumps(jwk)))
    return out


def tokens(target: Target, a: User, b: User, jwks: dict[str, Any], mint: Mint | None) -> dict[str, str]:
    """Name → forged bearer token. Every one claims user A (or a role above a user's)."""
    body = jwt_forge.claims(sub=a.id)
    admin = jwt_forge.claims("service_role", sub=a.id)
    known_kid = next((k["kid"] for k in jwks.get("keys", []) if "kid" in k), None)
    out: dict[str, str] = {
        "alg none": jwt_forge.unsecured(body),
        "alg none, service_role": jwt_forge.unsecured(admin),
        "alg none with a published kid": jwt_forge.unsecured(body, known_kid),
        "alg NONE (case)": _header_swap(jwt_forge.unsecured(body), alg="NONE"),
        "HS256 with the publishable key": jwt_forge.hs256_with_secret(body, target.client_key.encode()),
        "foreign ES256, new kid": jwt_forge.foreign_es256(body),
        "foreign RS256, new kid": jwt_forge.foreign_rs256(body),
        "foreign ES256, no kid": _header_swap(jwt_forge.foreign_es256(body), kid=None),
        "B's token, sub edited to A": _tamper(b.token, sub=a.id),
        "B's token, role edited to service_role": _tamper(b.token, role="service_role"),
        "B's token, role edited to supabase_admin": _tamper(b.token, role="supabase_admin"),
        "B's token, exp pushed a year": _tamper(b.token, exp=int(time.time()) + 365 * 86400),
        "B's token, signature stripped": b.token.rsplit(".", 1)[0] + ".",
        "B's token, signature of A's token": b.token.rsplit(".", 1)[0] + "." + a.token.rsplit(".", 1)[1],
        "2 segments": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0",
        "4 segments": b.token + ".AAAA",
        "1 segment": "eyJhbGciOiJIUzI1NiJ9",
        "bad base64": "!!!.@@@.###",
        "non-JSON header": "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln",
        "JSON array header": "WzFd.eyJzdWIiOiJ4In0.c2ln",
        "huge (24 KB)": jwt_forge.unsecured({**body, "pad": "x" * 24_000}),
        "unicode": "é.ü.ß",
    }
    for secret in GUESSED_SECRETS:
        out[f"HS256 with guessed secret {secret[:12]!r}"] = jwt_forge.hs256_with_secret(admin, secret)
    for kid, pem, jwk_text in _public_pems(jwks):
        out[f"alg confusion: HS256 with the public key PEM, kid {kid[:8]}"] = jwt_forge.hs256_with_secret(
            body, pem, kid
        )
        out[f"alg confusion: HS256 with the JWK text, kid {kid[:8]}"] = jwt_forge.hs256_with_secret(
            body, jwk_text.encode(), kid
        )
        out[f"foreign ES256 claiming kid {kid[:8]}"] = jwt_forge.foreign_es256(body, kid)
        out[f"foreign RS256 claiming kid {kid[:8]}"] = jwt_forge.foreign_rs256(body, kid)
    if mint is not None:
        now = int(time.time())
        out["trusted key, expired"] = mint({**body, "exp": now - 60, "iat": now - 3660})
        out["trusted key, no exp"] = mint({k: v for k, v in body.items() if k != "exp"})
        out["trusted key, nbf in an hour"] = mint({**body, "nbf": now + 3600})
        out["trusted key, role supabase_admin"] = mint({**body, "role": "supabase_admin"})
        out["trusted key, role postgres"] = mint({**body, "role": "postgres"})
        out["trusted key, role authenticator"] = mint({**body, "role": "authenticator"})
    return out


def _header_swap(token: str, **changes: Any) -> str:
    header, rest = token.split(".", 1)
    decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    for key, value in changes.items():
        if value is None:
            decoded.pop(key, None)
        else:
            decoded[key] = value
    return base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode() + "." + rest


def as_anon(target: Target) -> dict[str, str]:
    """Bearer values the gateway replaces by the apikey's role (supabase-js sends the key there
    when signed out, docs/hosted-platform.md §1): they act as anon, so they need not be refused,
    but must show nothing of A's and call nothing kept from anon."""
    return {
        "publishable key as Bearer": target.client_key,
        "secret-key shape as Bearer": "sb_secret_" + secrets.token_urlsafe(24),
    }


def bad_api_keys(target: Target) -> dict[str, str]:
    """``apikey`` values that must not open anything (sent without a user token)."""
    key = target.client_key
    flipped = key[:-1] + ("A" if key[-1] != "A" else "B")
    out = {
        "publishable key, last character changed": flipped,
        "secret-key shape, random suffix": "sb_secret_" + secrets.token_urlsafe(24),
        "publishable-key shape, random suffix": "sb_publishable_" + secrets.token_urlsafe(22),
        "sb_ prefix alone": "sb_",
        "legacy-looking JWT, alg none, service_role": jwt_forge.unsecured(jwt_forge.claims("service_role")),
    }
    if target.secret_key and target.secret_key.startswith("sb_secret_"):
        out["secret key, last character changed"] = target.secret_key[:-1] + (
            "A" if target.secret_key[-1] != "A" else "B"
        )
    return out


def run(target: Target, client: httpx.Client, rec: Recorder, a: User, b: User, planted_object: str | None) -> None:
    jwks = client.get(f"{target.url}/auth/v1/.well-known/jwks.json", headers=target.headers()).json()
    for name, token in tokens(target, a, b, jwks, target.extra.get("mint")).items():
        surfaces.probe_surfaces(target, client, rec, CATEGORY, name, target.headers(token), a, planted_object)
        # Hosted Realtime checks exp but not nbf (docs/hosted-platform.md §2), and only Auth can
        # mint such a token: a not-yet-valid token's join is not counted as a breach.
        surfaces.realtime_join(
            target, rec, CATEGORY, f"{name}: join jobs:A", a.id, token, must_refuse="nbf" not in name
        )
    for name, value in as_anon(target).items():
        surfaces.probe_surfaces(
            target, client, rec, CATEGORY, name, target.headers(value), a, planted_object, as_anon=True
        )
    for name, apikey in bad_api_keys(target).items():
        surfaces.probe_surfaces(target, client, rec, CATEGORY, f"apikey {name}", {"apikey": apikey}, a, planted_object)


def local_minter(ring_reader: Callable[[], Any]) -> Mint | None:
    """Signs with the local stack's current key, as Auth would (None if there is no key ring)."""
    ring = ring_reader()
    if ring is None:
        return None
    current = ring.current
    if current.legacy:
        return None
    return lambda claims: jwt_forge.with_key(current, claims)


def secret_minter(jwt_secret: str) -> Mint:
    return lambda claims: jwt.encode(claims, jwt_secret, "HS256")
