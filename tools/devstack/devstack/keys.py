"""Per-stack keys: the JWT secret, the legacy anon / service_role JWTs signed with it (HS256), and the
opaque API keys of today's projects (``sb_publishable_…`` / ``sb_secret_…``), kept in
``.devstack/secrets.json``.

Opaque keys are never deleted from the file: a revoked key stays recorded (with ``revoked_at``) so
the gateway can tell it from a key it never issued, and a file from before opaque keys gets them
on its next load.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Literal

import jwt

from devstack import paths

ISSUER = "supabase-devstack"
KEY_LIFETIME_SECONDS = 10 * 365 * 24 * 3600

ApiKeyKind = Literal["publishable", "secret"]
KINDS: tuple[ApiKeyKind, ...] = ("publishable", "secret")
PREFIXES: dict[ApiKeyKind, str] = {"publishable": "sb_publishable_", "secret": "sb_secret_"}
# The role the gateway gives each kind (docs/hosted-platform.md §1.1).
ROLES: dict[ApiKeyKind, str] = {"publishable": "anon", "secret": "service_role"}
DEFAULT_NAME = "default"  # hosted names a project's first secret key "default"

# Key shape (docs/hosted-platform.md §1.1). Known: prefix + 22 base64url characters + "_" + 8
# base64url characters, the shape of every hosted and CLI key seen. Assumed: the checksum formula
# of Supabase's self-hosting generator (first 8 base64url characters of
# SHA-256("<project ref>|<prefix><random>")); whether hosted computes it the same way is not
# documented, so the gateway checks the shape and looks the key up, and never judges a checksum.
RANDOM_CHARS = 22
CHECKSUM_CHARS = 8
# Self-hosting uses the fixed ref "supabase-self-hosted"; a devstack has no project ref either.
PROJECT_REF = "supabase-devstack"


@dataclass(frozen=True)
class ApiKey:
    name: str
    kind: ApiKeyKind
    key: str
    created_at: int
    revoked_at: int | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def role(self) -> str:
        return ROLES[self.kind]

    def masked(self) -> str:
        """The key as listings show it: the prefix and the first few characters."""
        return self.key[: len(PREFIXES[self.kind]) + 4] + "…"


@dataclass(frozen=True)
class StackKeys:
    jwt_secret: str
    anon_key: str
    service_role_key: str
    api_keys: tuple[ApiKey, ...] = ()

    def active(self, kind: ApiKeyKind) -> ApiKey | None:
        """The oldest unrevoked key of a kind: the one `status` and `.devstack/env` show."""
        return next((k for k in self.api_keys if k.kind == kind and not k.revoked), None)

    @property
    def publishable_key(self) -> str:
        return _require_active(self, "publishable")

    @property
    def secret_key(self) -> str:
        return _require_active(self, "secret")


def _require_active(keys: StackKeys, kind: ApiKeyKind) -> str:
    key = keys.active(kind)
    if key is None:
        raise LookupError(f"no active {kind} key; `python -m devstack keys new {kind}` makes one")
    return key.key


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def checksum(body: str) -> str:
    return _b64url(hashlib.sha256(f"{PROJECT_REF}|{body}".encode()).digest())[:CHECKSUM_CHARS]


def opaque_key(kind: ApiKeyKind) -> str:
    body = PREFIXES[kind] + _b64url(secrets.token_bytes(17))[:RANDOM_CHARS]
    return f"{body}_{checksum(body)}"


def _legacy_jwt(secret: str, role: str, now: int) -> str:
    return jwt.encode({"iss": ISSUER, "role": role, "iat": now, "exp": now + KEY_LIFETIME_SECONDS}, secret, "HS256")


def _api_key_from(raw: dict[str, Any]) -> ApiKey:
    return ApiKey(raw["name"], raw["kind"], raw["key"], int(raw["created_at"]), raw.get("revoked_at"))


def parse(data: dict[str, Any]) -> StackKeys:
    records = tuple(_api_key_from(r) for r in data.get("api_keys", []))
    return StackKeys(data["jwt_secret"], data["anon_key"], data["service_role_key"], records)


def read(path: Path = paths.SECRETS_FILE) -> StackKeys | None:
    """The stored keys as they are (nothing generated); None without a file."""
    try:
        return parse(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _raw() -> dict[str, Any]:
    if paths.SECRETS_FILE.exists():
        data: dict[str, Any] = json.loads(paths.SECRETS_FILE.read_text())
        return data
    secret = secrets.token_urlsafe(48)
    now = int(time.time())
    return {
        "jwt_secret": secret,
        "anon_key": _legacy_jwt(secret, "anon", now),
        "service_role_key": _legacy_jwt(secret, "service_role", now),
    }


def _write(data: dict[str, Any]) -> None:
    """Replace the file in one step: a running gateway rereads it and must never see half of it.
    Fields this module does not know are kept as they were."""
    paths.STATE.mkdir(parents=True, exist_ok=True)
    tmp = paths.SECRETS_FILE.with_name(paths.SECRETS_FILE.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.chmod(0o600)
    os.replace(tmp, paths.SECRETS_FILE)


def _add(data: dict[str, Any], kind: ApiKeyKind, name: str | None) -> ApiKey:
    records: list[dict[str, Any]] = data.setdefault("api_keys", [])
    taken = {r["name"] for r in records if r["kind"] == kind}
    if name is None:
        name = DEFAULT_NAME if DEFAULT_NAME not in taken else f"{kind}_{len(taken) + 1}"
    if name in taken:
        raise ValueError(f"a {kind} key named {name!r} exists already")
    key = ApiKey(name, kind, opaque_key(kind), int(time.time()))
    records.append(asdict(key))
    return key


def load_or_create() -> StackKeys:
    """Keys survive restarts of the stack; ``reset`` generates new ones. A file without an active
    key of some kind (one from before opaque keys, or after revoking the last one) gets one."""
    data = _raw()
    keys = parse(data)
    missing = [kind for kind in KINDS if keys.active(kind) is None]
    if missing or not paths.SECRETS_FILE.exists():
        for kind in missing:
            _add(data, kind, None)
        _write(data)
        keys = parse(data)
    return keys


def new(kind: ApiKeyKind, name: str | None = None) -> ApiKey:
    load_or_create()  # a first `keys new` on a fresh stack still gets the defaults first
    data = _raw()
    key = _add(data, kind, name)
    _write(data)
    return key


def find(keys: StackKeys, key_or_prefix: str) -> ApiKey:
    """The one recorded key equal to, or starting with, ``key_or_prefix`` (at least the prefix and
    four characters, so a typo cannot match a whole kind)."""
    exact = [k for k in keys.api_keys if k.key == key_or_prefix]
    if exact:
        return exact[0]
    if not any(key_or_prefix.startswith(p) and len(key_or_prefix) >= len(p) + 4 for p in PREFIXES.values()):
        raise LookupError(
            f"{key_or_prefix!r}: give a whole key, or its sb_publishable_/sb_secret_ prefix and 4+ more characters"
        )
    found = [k for k in keys.api_keys if k.key.startswith(key_or_prefix)]
    if not found:
        raise LookupError(f"{key_or_prefix!r}: no such key in this stack")
    if len(found) > 1:
        raise LookupError(f"{key_or_prefix!r}: matches {len(found)} keys; give more characters")
    return found[0]


def revoke(key_or_prefix: str) -> ApiKey:
    """Mark a key revoked (it stays recorded). Already revoked: LookupError."""
    data = _raw()
    target = find(parse(data), key_or_prefix)
    if target.revoked:
        raise LookupError(f"the {target.kind} key {target.name!r} ({target.masked()}) is revoked already")
    revoked_at = int(time.time())
    for record in data.get("api_keys", []):
        if record["key"] == target.key:
            record["revoked_at"] = revoked_at
    _write(data)
    return replace(target, revoked_at=revoked_at)


def forget() -> None:
    paths.SECRETS_FILE.unlink(missing_ok=True)
