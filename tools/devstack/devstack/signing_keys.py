"""Per-stack JWT signing keys in the hosted rotation model (docs/hosted-platform.md §2.3).

An ES256 (P-256) key signs user access tokens and is published in the JWKS; the legacy HS256
secret (``secrets.json``'s ``jwt_secret``, which signs the legacy anon/service_role keys) stays a
trusted verification key until it is revoked. States:

- ``standby``: published in the JWKS, signs nothing; its tokens are refused (none can exist);
- ``current``: signs new access tokens, published, trusted;
- ``previously_used``: published and trusted until revoked;
- ``revoked``: neither published nor trusted.

``DEVSTACK_JWT=legacy`` makes the stack a project that never migrated: Auth signs with the legacy
secret, the JWKS is empty and the keys here are ignored. The ring lives in
``.devstack/signing_keys.json`` (mode 0600); every change replaces the file atomically, and the
gateway reloads it when it changes, so a revocation takes effect with the next request.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from devstack import paths

State = Literal["standby", "current", "previously_used", "revoked"]
Mode = Literal["asymmetric", "legacy"]
STATES: tuple[State, ...] = ("standby", "current", "previously_used", "revoked")
ASYMMETRIC_ALG = "ES256"
LEGACY_ALG = "HS256"
LEGACY_ALIAS = "legacy"  # the CLI accepts this instead of the legacy key's kid
MODE_VARIABLE = "DEVSTACK_JWT"


class SigningKeyError(ValueError):
    """A transition the rotation model does not allow; the message says what to do instead."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str  # ES256, or HS256 for the legacy secret (whose value lives in secrets.json)
    state: State
    created_at: int
    private_key_pem: str | None = None

    @property
    def legacy(self) -> bool:
        return self.alg == LEGACY_ALG

    def private_key(self) -> ec.EllipticCurvePrivateKey:
        assert self.private_key_pem is not None, "the legacy key has no private key here"
        key = serialization.load_pem_private_key(self.private_key_pem.encode(), password=None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return key

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kid": self.kid, "alg": self.alg, "state": self.state, "created_at": self.created_at}
        if self.private_key_pem is not None:
            data["private_key_pem"] = self.private_key_pem
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SigningKey:
        state = data["state"]
        if state not in STATES:
            raise SigningKeyError(f"{paths.SIGNING_KEYS_FILE}: unknown state {state!r} for kid {data['kid']}")
        return cls(data["kid"], data["alg"], state, int(data["created_at"]), data.get("private_key_pem"))


def new_asymmetric_key(state: State) -> SigningKey:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(str(uuid.uuid4()), ASYMMETRIC_ALG, state, int(time.time()), pem)


@dataclass(frozen=True)
class KeyRing:
    keys: tuple[SigningKey, ...]

    @classmethod
    def fresh(cls) -> KeyRing:
        """A new stack: the legacy secret as a previously used key, an ES256 key current."""
        legacy = SigningKey(str(uuid.uuid4()), LEGACY_ALG, "previously_used", int(time.time()))
        return cls((legacy, new_asymmetric_key("current")))

    @property
    def legacy(self) -> SigningKey:
        return next(k for k in self.keys if k.legacy)

    @property
    def current(self) -> SigningKey:
        return next(k for k in self.keys if k.state == "current")

    def in_state(self, *states: State) -> tuple[SigningKey, ...]:
        return tuple(k for k in self.keys if k.state in states and not k.legacy)

    def find(self, kid: str) -> SigningKey:
        if kid == LEGACY_ALIAS:
            return self.legacy
        for key in self.keys:
            if key.kid == kid:
                return key
        raise SigningKeyError(f"no signing key with kid {kid!r} (see `python -m devstack signing-keys list`)")

    def _with(self, *changed: SigningKey) -> KeyRing:
        by_kid = {k.kid: k for k in changed}
        kept = tuple(by_kid.pop(k.kid, k) for k in self.keys)
        return KeyRing(kept + tuple(by_kid.values()))

    # -- transitions (doc signing-keys, "Lifetime of a signing key") -----------------------------

    def add_standby(self) -> tuple[KeyRing, SigningKey]:
        if self.in_state("standby"):
            raise SigningKeyError(
                f"a standby key already exists ({self.in_state('standby')[0].kid}); rotate to it or revoke nothing"
            )
        key = new_asymmetric_key("standby")
        return self._with(key), key

    def rotate(self, kid: str | None = None) -> tuple[KeyRing, SigningKey]:
        """Make the standby key (or ``kid``: a standby or previously used ES256 key) current; the
        current key becomes previously used, so the tokens it signed keep working."""
        if kid is None:
            standby = self.in_state("standby")
            if not standby:
                raise SigningKeyError("no standby key to rotate to: create one with `signing-keys standby` first")
            target = standby[0]
        else:
            target = self.find(kid)
        if target.legacy:
            raise SigningKeyError(
                "the legacy HS256 secret signs only with DEVSTACK_JWT=legacy; it cannot become current"
            )
        if target.state not in ("standby", "previously_used"):
            raise SigningKeyError(
                f"key {target.kid} is {target.state}; only a standby or previously used key can be rotated to"
            )
        old = replace(self.current, state="previously_used")
        new = replace(target, state="current")
        return self._with(old, new), new

    def revoke(self, kid: str) -> tuple[KeyRing, SigningKey]:
        key = self.find(kid)
        if key.state != "previously_used":
            hint = " (rotate to another key first)" if key.state == "current" else ""
            raise SigningKeyError(f"key {key.kid} is {key.state}; only a previously used key can be revoked{hint}")
        revoked = replace(key, state="revoked")
        return self._with(revoked), revoked

    def unrevoke(self, kid: str) -> tuple[KeyRing, SigningKey]:
        """Undo a revocation: an ES256 key goes back to standby (as hosted), the legacy secret back
        to previously used (trusted again)."""
        key = self.find(kid)
        if key.state != "revoked":
            raise SigningKeyError(f"key {key.kid} is {key.state}, not revoked")
        if not key.legacy and self.in_state("standby"):
            raise SigningKeyError("a standby key already exists; rotate to it before moving another key to standby")
        restored = replace(key, state="previously_used" if key.legacy else "standby")
        return self._with(restored), restored

    def to_json(self) -> dict[str, Any]:
        return {"keys": [k.to_json() for k in self.keys]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyRing:
        ring = cls(tuple(SigningKey.from_json(k) for k in data["keys"]))
        if sum(k.legacy for k in ring.keys) != 1 or sum(k.state == "current" for k in ring.keys) != 1:
            raise SigningKeyError(f"{paths.SIGNING_KEYS_FILE}: needs exactly one legacy and one current key")
        return ring


# -- the file ----------------------------------------------------------------------------------


def mode() -> Mode:
    """``DEVSTACK_JWT``: unset (or ``es256``) signs with the asymmetric key; ``legacy`` with the secret."""
    value = os.environ.get(MODE_VARIABLE, "").strip().lower()
    if value in ("", "es256", "asymmetric"):
        return "asymmetric"
    if value == "legacy":
        return "legacy"
    raise SigningKeyError(f"{MODE_VARIABLE} must be 'legacy' or unset (ES256 signing keys), not {value!r}")


def read(path: Path | None = None) -> KeyRing | None:
    path = path or paths.SIGNING_KEYS_FILE
    try:
        return KeyRing.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None


def _write(ring: KeyRing, path: Path) -> None:
    """Replace the file atomically (the gateway may read it at any moment), never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".signing_keys.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:  # mkstemp creates it 0600
            json.dump(ring.to_json(), out, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialize read-modify-write of the ring between concurrent CLI calls."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def load_or_create(path: Path | None = None) -> KeyRing:
    path = path or paths.SIGNING_KEYS_FILE
    with _locked(path):
        ring = read(path)
        if ring is None:
            ring = KeyRing.fresh()
            _write(ring, path)
        return ring


def change(action: str, kid: str | None = None, path: Path | None = None) -> SigningKey:
    """Apply one CLI transition (``standby``, ``rotate``, ``revoke``, ``unrevoke``) and save it."""
    path = path or paths.SIGNING_KEYS_FILE
    with _locked(path):
        ring = read(path) or KeyRing.fresh()
        if action == "standby":
            ring, key = ring.add_standby()
        elif action == "rotate":
            ring, key = ring.rotate(kid)
        elif kid is None:
            raise SigningKeyError(f"`signing-keys {action}` needs a kid")
        elif action == "revoke":
            ring, key = ring.revoke(kid)
        elif action == "unrevoke":
            ring, key = ring.unrevoke(kid)
        else:
            raise SigningKeyError(f"unknown action {action!r}")
        _write(ring, path)
        return key


def forget(path: Path | None = None) -> None:
    (path or paths.SIGNING_KEYS_FILE).unlink(missing_ok=True)


def describe(ring: KeyRing, current_mode: Mode) -> str:
    """The `signing-keys list` table."""
    rows = [("KID", "ALG", "STATE", "CREATED")]
    for key in sorted(ring.keys, key=lambda k: (STATES.index(k.state), k.created_at)):
        state: str = key.state
        if current_mode == "legacy":
            state = "current (DEVSTACK_JWT=legacy)" if key.legacy else f"{state} (ignored: DEVSTACK_JWT=legacy)"
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(key.created_at))
        rows.append((key.kid + (" (legacy)" if key.legacy else ""), key.alg, state, created))
    widths = [max(len(row[i]) for row in rows) for i in range(3)] + [0]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)
