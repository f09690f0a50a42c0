"""devstack's opaque API keys: their format and storage (devstack/keys.py), the CLI that makes and
revokes them, and the gateway's translation (devstack/gateway/api_keys.py), without servers."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import random
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from devstack import cli, keys, paths, signing_keys
from devstack.gateway import api_keys
from devstack.gateway.api_keys import Incoming, KeyRegistry, Refusal, Translation, translate
from devstack.gateway.context import Settings
from devstack.gateway.key_set import LiveKeySet

BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
USER_JWT = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYXV0aGVudGljYXRlZCJ9.c2ln"


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(paths, "STATE", tmp_path)
    monkeypatch.setattr(paths, "SECRETS_FILE", tmp_path / "secrets.json")
    monkeypatch.setattr(paths, "ENV_FILE", tmp_path / "env")
    return tmp_path / "secrets.json"


@pytest.fixture
def stack_keys(state: Path) -> keys.StackKeys:
    return keys.load_or_create()


@pytest.fixture
def settings(stack_keys: keys.StackKeys, state: Path) -> Settings:
    signing = LiveKeySet(stack_keys.jwt_secret, "legacy")
    return Settings(
        stack_keys.jwt_secret, stack_keys.anon_key, stack_keys.service_role_key, secrets_file=state, signing=signing
    )


# --- format -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "length"), [("publishable", 46), ("secret", 41)])
def test_keys_have_the_hosted_shape_and_the_self_hosting_checksum(kind: keys.ApiKeyKind, length: int) -> None:
    seen = set()
    for _ in range(200):
        key = keys.opaque_key(kind)
        assert len(key) == length  # as the CLI's fixed local keys and observed hosted keys
        assert api_keys.KEY_SHAPE.fullmatch(key) and key.startswith(keys.PREFIXES[kind])
        body, checksum = key[:-9], key[-8:]
        digest = base64.urlsafe_b64encode(hashlib.sha256(f"supabase-devstack|{body}".encode()).digest())
        assert checksum == digest.decode()[:8]
        seen.add(key)
    assert len(seen) == 200


def test_the_shape_accepts_known_keys_and_nothing_near_them() -> None:
    for known in ("sb_publishable_ACJWlzQHlZjBrEguHvfOxg_3BJgxAaH", "sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz"):
        assert api_keys.KEY_SHAPE.fullmatch(known)
    rng = random.Random(11)
    good = keys.opaque_key("secret")
    for _ in range(300):  # any one-character deletion or insertion breaks the shape
        i = rng.randrange(len("sb_secret_"), len(good))
        assert not api_keys.KEY_SHAPE.fullmatch(good[:i] + good[i + 1 :])
        assert not api_keys.KEY_SHAPE.fullmatch(good[:i] + rng.choice("aZ9-_") + good[i:])
    assert not api_keys.KEY_SHAPE.fullmatch(good + "\n")


# --- storage ----------------------------------------------------------------------------------------


def test_an_old_secrets_file_keeps_its_keys_and_gains_the_opaque_ones(state: Path) -> None:
    old = {"jwt_secret": "s" * 64, "anon_key": "anon.jwt.x", "service_role_key": "service.jwt.x", "other": [1]}
    state.write_text(json.dumps(old))
    loaded = keys.load_or_create()
    assert (loaded.jwt_secret, loaded.anon_key, loaded.service_role_key) == ("s" * 64, "anon.jwt.x", "service.jwt.x")
    assert loaded.publishable_key.startswith("sb_publishable_") and loaded.secret_key.startswith("sb_secret_")
    stored = json.loads(state.read_text())
    assert stored["other"] == [1]  # fields of other modules survive
    assert keys.load_or_create() == loaded  # generated once, then stable
    assert oct(state.stat().st_mode & 0o777) == "0o600"


def test_revoking_keeps_the_key_recorded_and_a_stack_always_has_one_active(stack_keys: keys.StackKeys) -> None:
    extra = keys.new("secret", "ci")
    assert keys.revoke(extra.key[:18]).revoked
    after = keys.load_or_create()
    assert [k.name for k in after.api_keys if k.revoked] == ["ci"]
    assert after.secret_key == stack_keys.secret_key  # the default stays active
    with pytest.raises(LookupError, match="revoked already"):
        keys.revoke(extra.key)
    keys.revoke(stack_keys.publishable_key)
    replaced = keys.load_or_create()
    assert replaced.publishable_key not in (stack_keys.publishable_key, "")
    assert len(replaced.api_keys) == 4


@pytest.mark.parametrize(
    ("given", "problem"),
    [("sb_secret_", r"4\+ more characters"), ("sb_secre", r"4\+ more characters"), ("sb_secret_####", "no such key")],
)
def test_revoke_names_what_it_cannot_find(stack_keys: keys.StackKeys, given: str, problem: str) -> None:
    with pytest.raises(LookupError, match=problem):
        keys.revoke(given)
    assert keys.load_or_create() == stack_keys  # nothing changed


def test_a_duplicate_name_is_refused(stack_keys: keys.StackKeys) -> None:
    with pytest.raises(ValueError, match="named 'default' exists already"):
        keys.new("secret", "default")


def test_the_cli_lists_makes_and_revokes_and_rewrites_the_env_file(
    stack_keys: keys.StackKeys, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["keys", "new", "publishable", "--name", "plugin"]) == 0
    made = capsys.readouterr().out.strip().rsplit(" ", 1)[1]
    assert cli.main(["keys", "revoke", stack_keys.publishable_key]) == 0
    out = capsys.readouterr().out
    assert "revoked the publishable key 'default'" in out and "last active" not in out  # 'plugin' is active
    env = paths.ENV_FILE.read_text()
    assert f"SUPABASE_PUBLISHABLE_KEY={made}\n" in env and f"SUPABASE_SECRET_KEY={stack_keys.secret_key}\n" in env
    assert cli.main(["keys", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 3 and any("revoked" in line and stack_keys.publishable_key in line for line in listed)
    assert cli.main(["keys", "revoke", "nope"]) == 2
    assert "devstack keys: 'nope':" in capsys.readouterr().err


# --- the gateway's translation --------------------------------------------------------------------


def run(
    settings: Settings, apikey: str | None, authorization: str | None = None, **kw: object
) -> Translation | Refusal:
    incoming = Incoming(apikey, authorization, str(kw.get("ua", "python-httpx/0.28")), bool(kw.get("ws", False)))
    return translate(incoming, api_keys.RoleTokens(settings), KeyRegistry(settings.secrets_file))


def test_opaque_keys_become_the_role_jwt(stack_keys: keys.StackKeys, settings: Settings) -> None:
    anon, service = settings.anon_key, settings.service_role_key
    pk, sk = stack_keys.publishable_key, stack_keys.secret_key
    assert run(settings, pk) == Translation({"apikey": anon, "authorization": f"Bearer {anon}"}, anon)
    assert run(settings, sk, f"Bearer {sk}") == Translation(
        {"apikey": service, "authorization": f"Bearer {service}"}, service
    )
    # A user's token passes through and wins; the key still becomes the role JWT in apikey.
    assert run(settings, sk, f"Bearer {USER_JWT}") == Translation({"apikey": service}, service)
    assert run(settings, pk, ws=True) == Translation(
        {"apikey": anon, "authorization": f"Bearer {anon}", "x-api-key": anon}, anon
    )


def test_legacy_keys_pass_unchanged_except_an_opaque_bearer(stack_keys: keys.StackKeys, settings: Settings) -> None:
    anon = settings.anon_key
    assert run(settings, anon) == Translation({})
    assert run(settings, anon, f"Bearer {USER_JWT}") == Translation({})
    assert run(settings, None) == Translation({})
    assert run(settings, "not-a-key") == Translation({})  # each service answers it as before
    assert run(settings, anon, f"Bearer {stack_keys.secret_key}") == Translation({"authorization": f"Bearer {anon}"})
    assert run(settings, None, f"Bearer {stack_keys.secret_key}") == Translation({"authorization": ""})


def test_refusals(stack_keys: keys.StackKeys, settings: Settings) -> None:
    assert run(settings, "sb_secret_short") is api_keys.INVALID
    assert run(settings, "sb_secret_" + "a" * 22 + "_" + "b" * 8) is api_keys.UNREGISTERED
    assert run(settings, stack_keys.secret_key, ua=BROWSER_UA) is api_keys.SECRET_IN_BROWSER
    assert isinstance(run(settings, stack_keys.publishable_key, ua=BROWSER_UA), Translation)
    assert isinstance(run(settings, stack_keys.secret_key, ua="MyApp/1.0 (Macintosh)"), Translation)
    assert api_keys.INVALID.response().headers["sb-error-code"] == "UNAUTHORIZED_INVALID_API_KEY"
    assert "sb-error-code" not in api_keys.UNREGISTERED.response().headers


def test_the_registry_sees_a_revocation_without_a_restart(stack_keys: keys.StackKeys, settings: Settings) -> None:
    registry = KeyRegistry(settings.secrets_file)
    made = keys.new("secret")
    found = registry.lookup(made.key)
    assert found is not None and not found.revoked
    keys.revoke(made.key)
    found = registry.lookup(made.key)
    assert found is not None and found.revoked
    assert registry.lookup("sb_secret_" + "x" * 31) is None


def test_the_url_parameter_is_replaced_and_nothing_else_is_reencoded() -> None:
    query = b"select=id&apikey=sb_publishable_x&or=(a.eq.1%2C2,b.is.null)&apikeys=keep&apikey"
    assert (
        api_keys._rewrite_query(query, "J.W.T")
        == b"select=id&apikey=J.W.T&or=(a.eq.1%2C2,b.is.null)&apikeys=keep&apikey=J.W.T"
    )


def test_role_tokens_know_only_the_two_key_roles(settings: Settings) -> None:
    tokens = api_keys.RoleTokens(settings)
    assert tokens.token("anon") == settings.anon_key  # DEVSTACK_JWT=legacy: the CLI's mapping
    assert tokens.token("service_role") == settings.service_role_key
    with pytest.raises(ValueError, match="authenticated"):
        tokens.token("authenticated")


def test_role_tokens_are_signed_by_the_current_key_and_follow_rotation(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring_file = tmp_path / "signing_keys.json"
    live = LiveKeySet(settings.jwt_secret, "asymmetric", ring_file)
    tokens = api_keys.RoleTokens(dataclasses.replace(settings, signing=live))

    def header_and_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
        key = live.snapshot().signer.key
        assert not isinstance(key, str)
        claims = jwt.decode(token, key.public_key(), algorithms=["ES256"], options={"verify_aud": False})
        return jwt.get_unverified_header(token), claims

    first = tokens.token("service_role")
    header, claims = header_and_claims(first)
    assert header["kid"] == live.snapshot().signer.kid and header["alg"] == "ES256"
    assert claims["role"] == "service_role" and claims["exp"] == claims["iat"] + api_keys.ROLE_TOKEN_LIFETIME_SECONDS
    assert tokens.token("service_role") == first  # minted once per key set, not per request
    assert header_and_claims(tokens.token("anon"))[1]["role"] == "anon"

    signing_keys.change("standby", path=ring_file)
    rotated = signing_keys.change("rotate", path=ring_file)
    after = tokens.token("service_role")
    assert after != first and jwt.get_unverified_header(after)["kid"] == rotated.kid

    # Close to expiry it is re-minted, so a token handed downstream never lapses in flight.
    later = int(time.time()) + api_keys.ROLE_TOKEN_LIFETIME_SECONDS - api_keys.ROLE_TOKEN_RENEW_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)  # the module api_keys reads the clock from
    assert jwt.decode(tokens.token("service_role"), options={"verify_signature": False})["iat"] == later
