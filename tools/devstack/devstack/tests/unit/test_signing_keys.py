"""The signing-key ring follows the hosted rotation model, and what it publishes and trusts follows
from the states: standby/current/previously used are in the JWKS, only current and previously
used (plus the legacy secret until revoked) verify, nothing secret is ever published."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from devstack import signing_keys
from devstack.gateway.key_set import KeySet, LiveKeySet
from devstack.signing_keys import KeyRing, SigningKeyError

SECRET = "unit-test-legacy-secret-unit-test-legacy-secret"


def states(ring: KeyRing) -> dict[str, str]:
    return {k.kid: k.state for k in ring.keys}


def test_a_fresh_ring_signs_with_es256_and_keeps_the_legacy_secret_as_previously_used() -> None:
    ring = KeyRing.fresh()
    assert ring.current.alg == "ES256" and ring.current.private_key_pem is not None
    assert ring.legacy.alg == "HS256" and ring.legacy.state == "previously_used"
    assert ring.legacy.private_key_pem is None  # the secret itself stays in secrets.json
    assert len(ring.keys) == 2


def test_rotation_walks_standby_current_previously_used_revoked() -> None:
    ring = KeyRing.fresh()
    first = ring.current
    with pytest.raises(SigningKeyError, match="no standby key"):
        ring.rotate()
    ring, standby = ring.add_standby()
    assert standby.state == "standby"
    with pytest.raises(SigningKeyError, match="already exists"):
        ring.add_standby()
    ring, now_current = ring.rotate()
    assert now_current.kid == standby.kid
    assert states(ring)[first.kid] == "previously_used" and states(ring)[standby.kid] == "current"
    with pytest.raises(SigningKeyError, match="rotate to another key first"):
        ring.revoke(standby.kid)
    ring, revoked = ring.revoke(first.kid)
    assert revoked.state == "revoked"
    with pytest.raises(SigningKeyError, match="revoked; only a standby or previously used"):
        ring.rotate(first.kid)
    ring, back = ring.unrevoke(first.kid)
    assert back.state == "standby"  # as hosted: a revoked key can go back to standby
    ring, again = ring.rotate(first.kid)
    assert again.kid == first.kid and states(ring)[standby.kid] == "previously_used"


def test_the_legacy_key_can_be_revoked_and_restored_but_never_made_current() -> None:
    ring = KeyRing.fresh()
    with pytest.raises(SigningKeyError, match="cannot become current"):
        ring.rotate("legacy")
    ring, revoked = ring.revoke("legacy")
    assert revoked.legacy and revoked.state == "revoked"
    ring, restored = ring.unrevoke(ring.legacy.kid)
    assert restored.state == "previously_used"
    with pytest.raises(SigningKeyError, match="no signing key with kid 'nope'"):
        ring.revoke("nope")
    ring, standby = ring.add_standby()
    with pytest.raises(SigningKeyError, match="is standby; only a previously used"):
        ring.revoke(standby.kid)


def test_the_file_is_private_replaced_whole_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "state" / "signing_keys.json"
    ring = signing_keys.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_keys.load_or_create(path) == ring  # a second call reads, never regenerates
    inode = path.stat().st_ino
    added = signing_keys.change("standby", path=path)
    assert path.stat().st_ino != inode  # os.replace: a reader sees the old file or the new one
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert signing_keys.read(path) == KeyRing((*ring.keys, added))
    with pytest.raises(SigningKeyError, match="needs a kid"):
        signing_keys.change("revoke", path=path)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".signing_keys.")] == []


def test_a_ring_file_without_exactly_one_current_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "signing_keys.json"
    data = KeyRing.fresh().to_json()
    data["keys"] = [k for k in data["keys"] if k["state"] != "current"]
    path.write_text(json.dumps(data))
    with pytest.raises(SigningKeyError, match="exactly one legacy and one current"):
        signing_keys.read(path)


@pytest.mark.parametrize(("value", "mode"), [("", "asymmetric"), ("es256", "asymmetric"), ("LEGACY", "legacy")])
def test_devstack_jwt_selects_the_mode(monkeypatch: pytest.MonkeyPatch, value: str, mode: str) -> None:
    monkeypatch.setenv("DEVSTACK_JWT", value)
    assert signing_keys.mode() == mode


def test_an_unknown_devstack_jwt_value_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEVSTACK_JWT", "hs512")
    with pytest.raises(SigningKeyError, match=r"DEVSTACK_JWT must be 'legacy' or unset .*'hs512'"):
        signing_keys.mode()


def test_the_jwks_publishes_standby_current_and_previous_public_keys_only() -> None:
    ring = KeyRing.fresh()
    first = ring.current
    ring, standby = ring.add_standby()
    keys = KeySet.from_ring(ring, SECRET)
    assert {k["kid"] for k in keys.jwks} == {first.kid, standby.kid}
    assert set(keys.trusted) == {first.kid}  # a standby key signs nothing yet, so it verifies nothing
    ring, _ = ring.rotate()
    ring, _ = ring.add_standby()
    ring, _ = ring.revoke(first.kid)
    keys = KeySet.from_ring(ring, SECRET)
    published = {k["kid"] for k in keys.jwks}
    assert first.kid not in published and ring.legacy.kid not in published and len(published) == 2
    for jwk in keys.jwks_document()["keys"]:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use", "key_ops"}  # no "d", no "k"
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"], jwk["key_ops"]) == (
            "EC",
            "P-256",
            "ES256",
            "sig",
            ["verify"],
        )
    assert SECRET not in json.dumps(keys.jwks_document())


def test_legacy_mode_is_a_project_that_never_migrated(tmp_path: Path) -> None:
    live = LiveKeySet(SECRET, "legacy", tmp_path / "signing_keys.json")
    keys = live.snapshot()
    assert keys.jwks_document() == {"keys": []}
    assert (keys.signer.alg, keys.signer.kid, keys.signer.key) == ("HS256", None, SECRET)
    assert not (tmp_path / "signing_keys.json").exists()  # no asymmetric key is even created


def test_the_live_key_set_follows_the_file(tmp_path: Path) -> None:
    path = tmp_path / "signing_keys.json"
    live = LiveKeySet(SECRET, "asymmetric", path)
    before = live.snapshot()
    assert live.snapshot() is before  # unchanged file: the same object, so the token cache holds
    signing_keys.change("revoke", "legacy", path=path)
    after = live.snapshot()
    assert after is not before and after.legacy_secret is None and before.legacy_secret == SECRET
    path.write_text("{not json")
    assert live.snapshot() is after  # a broken file keeps the last good keys
