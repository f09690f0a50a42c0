"""The gateway's view of the signing keys: what verifies, what the JWKS publishes, what signs.

``LiveKeySet.snapshot()`` returns an immutable ``KeySet`` and re-reads the key file whenever it
changed (one ``stat`` per call), so a key revoked with the CLI is refused from the next request
on. Verified tokens are cached per ``KeySet`` object (tokens.py), so a new snapshot starts with
an empty cache as far as it is concerned.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from devstack import paths, signing_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Signer:
    """How Auth signs access tokens: the current ES256 key with its ``kid``, or the legacy secret."""

    alg: str
    key: ec.EllipticCurvePrivateKey | str
    kid: str | None

    def headers(self) -> dict[str, str]:
        return {"typ": "JWT", **({"kid": self.kid} if self.kid else {})}


@dataclass(frozen=True, eq=False)  # compared and hashed by identity: one cache generation each
class KeySet:
    signer: Signer
    legacy_secret: str | None  # None once the legacy key is revoked
    legacy_kid: str | None
    trusted: Mapping[str, tuple[str, ec.EllipticCurvePublicKey]] = field(default_factory=dict)  # kid -> (alg, key)
    jwks: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def legacy_only(cls, secret: str) -> KeySet:
        """A project that never migrated (DEVSTACK_JWT=legacy): one HS256 secret, an empty JWKS."""
        return cls(Signer(signing_keys.LEGACY_ALG, secret, None), secret, None)

    @classmethod
    def from_ring(cls, ring: signing_keys.KeyRing, secret: str) -> KeySet:
        current = ring.current
        trusted: dict[str, tuple[str, ec.EllipticCurvePublicKey]] = {}
        published: list[Mapping[str, Any]] = []
        for key in ring.in_state("current", "previously_used", "standby"):
            public = key.private_key().public_key()
            published.append(MappingProxyType(public_jwk(key.kid, key.alg, public)))
            if key.state != "standby":  # no token can legitimately carry a standby kid yet
                trusted[key.kid] = (key.alg, public)
        legacy = ring.legacy
        return cls(
            signer=Signer(current.alg, current.private_key(), current.kid),
            legacy_secret=None if legacy.state == "revoked" else secret,
            legacy_kid=legacy.kid,
            trusted=MappingProxyType(trusted),
            jwks=tuple(published),
        )

    def jwks_document(self) -> dict[str, Any]:
        return {"keys": [dict(k) for k in self.jwks]}


def public_jwk(kid: str, alg: str, public: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """A JWKS entry as hosted Auth publishes it (doc §2.2): never any private or symmetric part."""
    jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    return {
        "kty": jwk["kty"],
        "crv": jwk["crv"],
        "x": jwk["x"],
        "y": jwk["y"],
        "kid": kid,
        "alg": alg,
        "use": "sig",
        "key_ops": ["verify"],
    }


class LiveKeySet:
    """The key set of a running gateway, following the key file as the CLI changes it."""

    def __init__(self, secret: str, mode: signing_keys.Mode, path: Path | None = None) -> None:
        self.secret = secret
        self.mode = mode
        self.path = path or paths.SIGNING_KEYS_FILE
        self._stamp: tuple[int, int, int] | None = None
        if mode == "legacy":
            self._keys = KeySet.legacy_only(secret)
            return
        self._keys = KeySet.from_ring(signing_keys.load_or_create(self.path), secret)
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def snapshot(self) -> KeySet:
        if self.mode == "legacy":
            return self._keys
        stamp = self._stat()
        if stamp is not None and stamp != self._stamp:
            try:
                ring = signing_keys.read(self.path)
            except (ValueError, KeyError, OSError) as exc:
                # A broken file never widens trust: keep the last good keys and say why.
                log.error("signing keys: %s unreadable, keeping the previous keys: %s", self.path, exc)
            else:
                if ring is not None:
                    self._keys = KeySet.from_ring(ring, self.secret)
            self._stamp = stamp
        return self._keys
