"""The shared verifier refuses every forgery, and each service words the refusal as hosted does
(PostgREST PGRST301, Realtime's signer/signature errors, Storage's jose texts, GoTrue's bad_jwt)."""

from __future__ import annotations

import time
from collections.abc import Callable

import jwt
import pytest

from devstack.gateway import tokens
from devstack.gateway.auth import access_tokens
from devstack.gateway.auth.errors import AuthError
from devstack.gateway.key_set import KeySet
from devstack.gateway.realtime import jwt_check
from devstack.gateway.storage import credentials
from devstack.gateway.storage.errors import StorageError
from devstack.signing_keys import KeyRing
from devstack.testing import jwt_forge

SECRET = "unit-test-legacy-secret-unit-test-legacy-secret"
NO_KEY = ("No suitable key or wrong key type", "No suitable key was found to decode the JWT")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.fresh()


def refused(token: str, keys: KeySet) -> tokens.TokenError:
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify(token, keys)
    return err.value


def test_a_token_of_the_current_key_verifies_and_carries_its_claims(ring: KeyRing) -> None:
    body = jwt_forge.claims(email="a@example.com")
    claims = tokens.verify(jwt_forge.with_key(ring.current, body), KeySet.from_ring(ring, SECRET))
    assert claims["sub"] == body["sub"] and claims["email"] == "a@example.com"


Forgery = Callable[[KeyRing], str]
FORGERIES: dict[str, Forgery] = {
    "foreign key, unknown kid": lambda r: jwt_forge.foreign_es256(jwt_forge.claims()),
    "foreign key claiming the current kid": lambda r: jwt_forge.foreign_es256(jwt_forge.claims(), r.current.kid),
    "alg confusion: HS256 with the public key, its kid": lambda r: jwt_forge.alg_confusion(
        r.current, jwt_forge.claims()
    ),
    "alg confusion: HS256 with the public key, no kid": lambda r: jwt_forge.alg_confusion(
        r.current, jwt_forge.claims(), with_kid=False
    ),
    "alg none": lambda r: jwt_forge.unsecured(jwt_forge.claims(role="service_role")),
    "alg none with the current kid": lambda r: jwt_forge.unsecured(jwt_forge.claims(), r.current.kid),
    "RS256 with a key not in the set": lambda r: jwt_forge.foreign_rs256(jwt_forge.claims(), r.current.kid),
    "ES256 without a kid": lambda r: jwt.encode(jwt_forge.claims(), r.current.private_key(), "ES256"),
    "HS256 with another secret": lambda r: jwt_forge.hs256_with_secret(jwt_forge.claims(), b"x" * 48),
}


@pytest.mark.parametrize("name", sorted(FORGERIES))
def test_every_forgery_is_refused_by_every_service(ring: KeyRing, name: str) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    token = FORGERIES[name](ring)
    assert refused(token, keys).kind in ("no_key", "unsecured", "signature")
    with pytest.raises(jwt_check.RealtimeTokenError) as realtime:
        jwt_check.check(token, keys)
    assert realtime.value.kind in ("signer", "signature")
    with pytest.raises(StorageError) as storage:
        credentials.caller(f"Bearer {token}", keys)
    assert (storage.value.code, storage.value.http_status) == ("AccessDenied", 400)
    with pytest.raises(AuthError) as auth:
        access_tokens.read(token, keys)
    assert (auth.value.status, auth.value.code) == (403, "bad_jwt")


def test_postgrest_texts_for_a_key_it_cannot_find(ring: KeyRing) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    for token in (
        jwt_forge.foreign_es256(jwt_forge.claims()),
        jwt_forge.alg_confusion(ring.current, jwt_forge.claims()),
        jwt_forge.foreign_rs256(jwt_forge.claims()),
    ):
        err = refused(token, keys)
        assert (err.reason, err.details) == NO_KEY
    err = refused(jwt_forge.unsecured(jwt_forge.claims()), keys)
    assert err.reason == "Wrong or unsupported encoding algorithm"
    assert refused(jwt_forge.foreign_es256(jwt_forge.claims(), ring.current.kid), keys).kind == "signature"


def test_a_revoked_kid_is_refused_and_a_previously_used_one_is_not(ring: KeyRing) -> None:
    old = ring.current
    token = jwt_forge.with_key(old, jwt_forge.claims())
    ring, _ = ring.add_standby()
    ring, _ = ring.rotate()
    assert tokens.verify(token, KeySet.from_ring(ring, SECRET))["role"] == "authenticated"
    ring, _ = ring.revoke(old.kid)
    keys = KeySet.from_ring(ring, SECRET)
    assert (refused(token, keys).reason, refused(token, keys).kid) == (NO_KEY[0], old.kid)


def test_a_token_signed_by_the_standby_key_before_it_is_current_is_refused(ring: KeyRing) -> None:
    ring, standby = ring.add_standby()
    early = jwt_forge.with_key(standby, jwt_forge.claims())
    assert refused(early, KeySet.from_ring(ring, SECRET)).kind == "no_key"
    ring, _ = ring.rotate()
    assert tokens.verify(early, KeySet.from_ring(ring, SECRET))  # a leak would be valid from now on


def test_the_legacy_secret_verifies_hs256_only_while_not_revoked(ring: KeyRing) -> None:
    legacy_anon = jwt.encode({"iss": "supabase-devstack", "role": "anon", "exp": int(time.time()) + 60}, SECRET)
    assert tokens.verify(legacy_anon, KeySet.from_ring(ring, SECRET))["role"] == "anon"
    with_its_kid = jwt_forge.hs256_with_secret(jwt_forge.claims(), SECRET.encode(), ring.legacy.kid)
    assert tokens.verify(with_its_kid, KeySet.from_ring(ring, SECRET))
    other_kid = jwt_forge.hs256_with_secret(jwt_forge.claims(), SECRET.encode(), "some-other-kid")
    assert refused(other_kid, KeySet.from_ring(ring, SECRET)).kind == "no_key"
    revoked = KeySet.from_ring(ring.revoke("legacy")[0], SECRET)
    assert (refused(legacy_anon, revoked).reason, refused(legacy_anon, revoked).details) == NO_KEY
    with pytest.raises(jwt_check.RealtimeTokenError) as realtime:
        jwt_check.check(legacy_anon, revoked)
    assert realtime.value.handshake_text() == "Failed to validate JWT signature"


def test_exp_is_required_and_checked_by_every_service(ring: KeyRing) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    body = jwt_forge.claims()
    del body["exp"]
    no_exp = jwt_forge.with_key(ring.current, body)
    assert refused(no_exp, keys).reason == "The JWT 'exp' claim must be a number"
    with pytest.raises(jwt_check.RealtimeTokenError) as realtime:
        jwt_check.check(no_exp, keys)
    assert realtime.value.kind == "missing_claims"
    with pytest.raises(StorageError, match='missing required "exp" claim'):
        credentials.caller(f"Bearer {no_exp}", keys)
    expired = jwt_forge.with_key(ring.current, jwt_forge.claims(expires_in=-5))
    err = refused(expired, keys)
    assert (err.reason, err.expired, err.kind) == ("JWT expired", True, "claims")
    with pytest.raises(AuthError, match="token is expired"):
        access_tokens.read(expired, keys)
    future = jwt_forge.with_key(ring.current, jwt_forge.claims(iat=int(time.time()) + 600))
    assert refused(future, keys).reason == "JWT issued at future"


def test_realtime_names_the_kid_it_has_no_signer_for(ring: KeyRing) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    with pytest.raises(jwt_check.RealtimeTokenError) as unknown:
        jwt_check.check(jwt_forge.foreign_es256(jwt_forge.claims(), 'k"1'), keys)
    text = 'Failed to generate JWT signer for key ID (kid) "k\\"1", check your JWT secret or JWKS configuration'
    assert unknown.value.handshake_text() == text
    assert unknown.value.join_reason() == f"JwtSignerError: {text}"
    assert unknown.value.shutdown_message() == text
    with pytest.raises(jwt_check.RealtimeTokenError) as unsigned:
        jwt_check.check(jwt_forge.unsecured(jwt_forge.claims()), keys)
    assert unsigned.value.handshake_text() == jwt_check.SIGNER_TEXT
    with pytest.raises(jwt_check.RealtimeTokenError) as confused:
        jwt_check.check(jwt_forge.alg_confusion(ring.current, jwt_forge.claims()), keys)
    assert confused.value.kind == "signature"  # HS* falls back to the legacy secret and fails


def test_storage_words_refusals_as_jose_does(ring: KeyRing) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    cases = {
        jwt_forge.foreign_es256(jwt_forge.claims()): "Key for the ES256 algorithm must be one of type CryptoKey",
        jwt_forge.foreign_rs256(jwt_forge.claims()): '"alg" (Algorithm) Header Parameter value not allowed',
        jwt_forge.unsecured(jwt_forge.claims()): '"alg" (Algorithm) Header Parameter value not allowed',
        jwt_forge.alg_confusion(ring.current, jwt_forge.claims()): "signature verification failed",
        "not.a.jwt": "Invalid Compact JWS",
    }
    for token, text in cases.items():
        with pytest.raises(StorageError) as err:
            credentials.caller(f"Bearer {token}", keys)
        assert err.value.message.startswith(text)


def test_gotrue_words_refusals_as_golang_jwt_does(ring: KeyRing) -> None:
    keys = KeySet.from_ring(ring, SECRET)
    kid = "0b7c5a0e-0000-4000-8000-000000000000"
    with pytest.raises(AuthError) as unknown:
        access_tokens.read(jwt_forge.foreign_es256(jwt_forge.claims(), kid), keys)
    assert unknown.value.message.endswith(f"unrecognized JWT kid {kid} for algorithm ES256")
    with pytest.raises(AuthError) as unsigned:
        access_tokens.read(jwt_forge.unsecured(jwt_forge.claims()), keys)
    assert unsigned.value.message.endswith("signing method none is invalid")


def test_a_cached_token_is_refused_once_its_key_set_changes(ring: KeyRing) -> None:
    old = ring.current
    ring, _ = ring.add_standby()
    ring, _ = ring.rotate()
    token = jwt_forge.with_key(old, jwt_forge.claims())
    before = KeySet.from_ring(ring, SECRET)
    for _ in range(2):  # the second call is a cache hit
        assert tokens.verify(token, before)
    after = KeySet.from_ring(ring.revoke(old.kid)[0], SECRET)
    assert refused(token, after).kind == "no_key"
