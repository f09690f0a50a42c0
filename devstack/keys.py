"""Per-stack JWT secret and the anon / service_role API keys signed with it (HS256, as hosted)."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

import jwt

from devstack import paths

ISSUER = "supabase-devstack"
KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class StackKeys:
    jwt_secret: str
    anon_key: str
    service_role_key: str


def _api_key(secret: str, role: str, now: int) -> str:
    return jwt.encode({"iss": ISSUER, "role": role, "iat": now, "exp": now + KEY_LIFETIME_SECONDS}, secret, "HS256")


def load_or_create() -> StackKeys:
    """Keys survive restarts of the stack; ``reset`` generates new ones."""
    if paths.SECRETS_FILE.exists():
        data = json.loads(paths.SECRETS_FILE.read_text())
        return StackKeys(data["jwt_secret"], data["anon_key"], data["service_role_key"])
    secret = secrets.token_urlsafe(48)
    now = int(time.time())
    keys = StackKeys(secret, _api_key(secret, "anon", now), _api_key(secret, "service_role", now))
    paths.STATE.mkdir(parents=True, exist_ok=True)
    paths.SECRETS_FILE.write_text(json.dumps(keys.__dict__, indent=2))
    paths.SECRETS_FILE.chmod(0o600)
    return keys


def forget() -> None:
    paths.SECRETS_FILE.unlink(missing_ok=True)
