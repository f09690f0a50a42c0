"""Tokens for the gateway fuzz test's credentials: forged ones (unknown key, ``alg: none``, wrong
secret, expired), and correctly signed ones with hostile claims (a list or dict ``role``, a role
the API may not switch to, a ``sub`` that is not a uuid). The signed ones stand for a verifier or
a claims check that lets something through: they must still get a 4xx, never a 5xx."""

from __future__ import annotations

import secrets
from typing import Any

import jwt

from devstack.testing import jwt_forge

HOSTILE_CLAIMS: list[dict[str, Any]] = [
    {"role": ["service_role", "authenticated"]},
    {"role": {"name": "service_role"}},
    {"role": "supabase_admin"},
    {"role": "postgres"},
    {"role": "authenticated\u0000"},
    {"role": "x" * 100},
    {"sub": ["a"]},
    {"sub": "not-a-uuid"},
    {"exp": "tomorrow"},
    {"exp": 10**30},
    {"aud": ["authenticated", "x"]},
    {"session_id": 1},
]


def forged(uid: str) -> dict[str, str]:
    body = jwt_forge.claims(sub=uid)
    return {
        "forged": jwt_forge.foreign_es256(body),
        "alg_none": jwt_forge.unsecured(body),
        "wrong_secret": jwt_forge.hs256_with_secret(body, secrets.token_bytes(32)),
    }


def signed(jwt_secret: str, uid: str, extra: dict[str, Any]) -> str:
    """Signed with the stack's legacy secret, so only the claims are wrong."""
    return jwt.encode({**jwt_forge.claims(sub=uid), **extra}, jwt_secret, "HS256")


def expired(jwt_secret: str, uid: str) -> str:
    return jwt.encode(jwt_forge.claims(sub=uid, expires_in=-3600), jwt_secret, "HS256")
