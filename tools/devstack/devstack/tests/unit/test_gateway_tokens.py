"""The gateway's JWT check caches verified tokens; expiry and tampering must still be refused, and a
`role` claim that is not a non-empty string makes the token invalid in every service."""

from __future__ import annotations

import time

import jwt
import pytest

from devstack.gateway import tokens
from devstack.gateway.key_set import KeySet
from devstack.gateway.realtime import jwt_check
from devstack.gateway.storage import credentials
from devstack.gateway.storage.errors import StorageError

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
KEYS = KeySet.legacy_only(SECRET)


def token(**claims: object) -> str:
    return jwt.encode({"role": "authenticated", "sub": "u1", "exp": int(time.time()) + 60, **claims}, SECRET, "HS256")


def test_a_cached_token_gives_each_caller_its_own_copy() -> None:
    t = token()
    first = tokens.verify(t, KEYS)
    first["role"] = "service_role"  # a caller scribbling on its claims
    assert tokens.verify(t, KEYS)["role"] == "authenticated"


def test_a_token_that_expires_after_it_was_cached_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    t = token(exp=int(time.time()) + 30)
    assert tokens.verify(t, KEYS)["sub"] == "u1"
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify(t, KEYS)
    assert err.value.expired


def test_the_cache_is_per_secret_and_bad_signatures_are_never_cached() -> None:
    t = token()
    tokens.verify(t, KEYS)
    with pytest.raises(tokens.TokenError, match="cryptographic"):
        tokens.verify(t, KeySet.legacy_only("another-secret-that-is-long-enough-for-hs256"))
    forged = t[:-2] + ("AA" if not t.endswith("AA") else "BB")
    with pytest.raises(tokens.TokenError):
        tokens.verify(forged, KEYS)


@pytest.mark.parametrize(
    ("role", "reason"),
    [
        (["authenticated"], "JWT claim role must be a string, not an array"),
        ({"name": "anon"}, "JWT claim role must be a string, not an object"),
        (7, "JWT claim role must be a string, not a number"),
        (True, "JWT claim role must be a string, not a boolean"),
        ("", "JWT claims lack a role"),
    ],
)
def test_a_role_that_is_not_a_non_empty_string_is_an_invalid_token(role: object, reason: str) -> None:
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify(token(role=role), KEYS)
    assert err.value.reason == reason


@pytest.mark.parametrize("role", [["service_role"], {"a": 1}, 7])
def test_realtime_and_storage_refuse_such_a_role_as_an_invalid_token(role: object) -> None:
    with pytest.raises(jwt_check.RealtimeTokenError) as realtime:
        jwt_check.check(token(role=role), KEYS)
    assert realtime.value.kind == "role"
    with pytest.raises(StorageError) as storage:
        credentials.caller(f"Bearer {token(role=role)}", KEYS)
    assert (storage.value.code, storage.value.http_status) == ("AccessDenied", 400)
    assert storage.value.message.startswith("JWT claim role must be a string")
    assert credentials.caller(f"Bearer {token(role=role)}", KEYS, optional=True) is None
