"""The gateway's JWT check caches verified tokens; expiry and tampering must still be refused."""

from __future__ import annotations

import time

import jwt
import pytest

from devstack.gateway import tokens

SECRET = "a-test-secret-that-is-long-enough-for-hs256"


def token(**claims: object) -> str:
    return jwt.encode({"role": "authenticated", "sub": "u1", "exp": int(time.time()) + 60, **claims}, SECRET, "HS256")


def test_a_cached_token_gives_each_caller_its_own_copy() -> None:
    t = token()
    first = tokens.verify(t, SECRET)
    first["role"] = "service_role"  # a caller scribbling on its claims
    assert tokens.verify(t, SECRET)["role"] == "authenticated"


def test_a_token_that_expires_after_it_was_cached_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    t = token(exp=int(time.time()) + 30)
    assert tokens.verify(t, SECRET)["sub"] == "u1"
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(tokens.TokenError) as err:
        tokens.verify(t, SECRET)
    assert err.value.expired


def test_the_cache_is_per_secret_and_bad_signatures_are_never_cached() -> None:
    t = token()
    tokens.verify(t, SECRET)
    with pytest.raises(tokens.TokenError, match="cryptographic"):
        tokens.verify(t, "another-secret-that-is-long-enough-for-hs256")
    forged = t[:-2] + ("AA" if not t.endswith("AA") else "BB")
    with pytest.raises(tokens.TokenError):
        tokens.verify(forged, SECRET)
