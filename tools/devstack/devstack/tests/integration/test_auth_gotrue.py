"""/auth/v1 conformance with the real supabase-py client (and raw httpx for the error shapes).

Expectations are GoTrue's (supabase/auth): codes, statuses, messages and the refresh-token
rotation rules, so the suite also runs unchanged against a `supabase start` stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import jwt
import psycopg
import pytest
from supabase_auth.errors import AuthApiError, AuthWeakPasswordError

from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import (
    PASSWORD,
    new_client,
    stack_in_both_flavours,
    unique_email,
    unverified_claims,
)
from supabase import AsyncClient

__all__ = ["stack_in_both_flavours"]  # the whole module runs under both key flavours
pytestmark = pytest.mark.integration

API_VERSION = "X-Supabase-Api-Version"


@pytest.fixture
async def client(stack: Stack) -> AsyncClient:
    return await new_client(stack)


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{stack.url}/auth/v1", headers={"apikey": stack.client_key}) as c:
        yield c


async def count_users_with_email(stack: Stack, email: str) -> int:
    async with await psycopg.AsyncConnection.connect(stack.database_url) as conn:
        cur = await conn.execute("select count(*) from auth.users where email = %s", (email.lower(),))
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


# -- sign-up and sign-in ------------------------------------------------------------------------


async def test_anonymous_sign_in_gives_an_authenticated_anonymous_session(stack: Stack, client: AsyncClient) -> None:
    res = await client.auth.sign_in_anonymously()

    assert res.user is not None
    assert res.session is not None
    assert res.user.is_anonymous is True
    assert res.user.role == "authenticated"
    assert res.user.app_metadata == {}
    assert res.session.expires_in == 3600
    claims = unverified_claims(res.session.access_token)
    assert claims["sub"] == res.user.id
    assert claims["role"] == "authenticated"
    assert claims["aud"] == "authenticated"
    assert claims["is_anonymous"] is True
    assert [entry["method"] for entry in claims["amr"]] == ["anonymous"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["session_id"]
    token = res.session.access_token
    header = jwt.get_unverified_header(token)
    if header["alg"] != "HS256":  # a signing key: verifiable by anyone through the JWKS
        async with httpx.AsyncClient() as http:
            jwks = (await http.get(f"{stack.url}/auth/v1/.well-known/jwks.json")).json()
        key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
        jwt.decode(token, key, algorithms=[header["alg"]], audience="authenticated", issuer=f"{stack.url}/auth/v1")
    elif stack.jwt_secret is not None:  # DEVSTACK_JWT=legacy
        jwt.decode(token, stack.jwt_secret, algorithms=["HS256"], audience="authenticated")
    fetched = await client.auth.get_user()
    assert fetched is not None
    assert fetched.user.id == res.user.id


async def test_email_sign_up_autoconfirms_and_password_sign_in_opens_a_new_session(client: AsyncClient) -> None:
    email = unique_email()
    signed_up = await client.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"plan": "x"}}})

    assert signed_up.session is not None
    assert signed_up.user is not None
    assert signed_up.user.email == email
    assert signed_up.user.email_confirmed_at is not None
    assert signed_up.user.is_anonymous is False
    assert signed_up.user.app_metadata == {"provider": "email", "providers": ["email"]}
    assert signed_up.user.user_metadata["plan"] == "x"

    signed_in = await client.auth.sign_in_with_password({"email": email.upper(), "password": PASSWORD})
    assert signed_in.session is not None
    assert signed_in.user is not None
    assert signed_in.user.id == signed_up.user.id
    first, second = (unverified_claims(s.access_token) for s in (signed_up.session, signed_in.session))
    assert first["session_id"] != second["session_id"]
    assert second["email"] == email
    assert [entry["method"] for entry in second["amr"]] == ["password"]
    assert second["is_anonymous"] is False


async def test_duplicate_sign_up_is_refused(stack: Stack, client: AsyncClient) -> None:
    email = unique_email()
    await client.auth.sign_up({"email": email, "password": PASSWORD})

    other = await new_client(stack)
    with pytest.raises(AuthApiError) as err:
        await other.auth.sign_up({"email": email, "password": PASSWORD + "2"})
    assert err.value.status == 422
    assert err.value.code == "user_already_exists"
    assert await count_users_with_email(stack, email) == 1


async def test_weak_password_is_refused_and_nothing_is_written(stack: Stack, client: AsyncClient) -> None:
    email = unique_email()
    with pytest.raises(AuthWeakPasswordError) as err:
        await client.auth.sign_up({"email": email, "password": "12345"})
    assert err.value.status == 422
    assert err.value.code == "weak_password"
    assert list(err.value.reasons) == ["length"]
    assert await count_users_with_email(stack, email) == 0


async def test_invalid_email_is_refused(client: AsyncClient) -> None:
    with pytest.raises(AuthApiError) as err:
        await client.auth.sign_up({"email": "not-an-email", "password": PASSWORD})
    assert err.value.status == 400
    assert err.value.code == "validation_failed"


async def test_wrong_password_and_unknown_email_get_the_same_answer(client: AsyncClient) -> None:
    email = unique_email()
    await client.auth.sign_up({"email": email, "password": PASSWORD})
    for credentials in (
        {"email": email, "password": "wrong-password"},
        {"email": unique_email(), "password": PASSWORD},
    ):
        with pytest.raises(AuthApiError) as err:
            await client.auth.sign_in_with_password(credentials)  # type: ignore[arg-type]
        assert err.value.status == 400
        assert err.value.code == "invalid_credentials"
        assert err.value.message == "Invalid login credentials"


# -- refresh-token rotation -----------------------------------------------------------------------


async def test_refresh_rotates_the_token_and_the_new_access_token_works(client: AsyncClient) -> None:
    first = await client.auth.sign_up({"email": unique_email(), "password": PASSWORD})
    assert first.session is not None

    refreshed = await client.auth.refresh_session(first.session.refresh_token)
    assert refreshed.session is not None
    assert refreshed.session.refresh_token != first.session.refresh_token
    old, new = unverified_claims(first.session.access_token), unverified_claims(refreshed.session.access_token)
    assert new["session_id"] == old["session_id"]
    assert new["amr"] == old["amr"]
    user = await client.auth.get_user(refreshed.session.access_token)
    assert user is not None
    assert first.user is not None
    assert user.user.id == first.user.id


async def test_replaying_the_previous_token_returns_the_active_one(client: AsyncClient) -> None:
    # GoTrue: a revoked token whose child is the session's active token means the client lost
    # the answer; it gets the active token again instead of a new branch.
    first = await client.auth.sign_up({"email": unique_email(), "password": PASSWORD})
    assert first.session is not None
    second = await client.auth.refresh_session(first.session.refresh_token)
    assert second.session is not None

    replay = await client.auth.refresh_session(first.session.refresh_token)
    assert replay.session is not None
    assert replay.session.refresh_token == second.session.refresh_token


async def test_reusing_a_revoked_token_after_the_reuse_interval_is_refused(stack: Stack, client: AsyncClient) -> None:
    first = await client.auth.sign_up({"email": unique_email(), "password": PASSWORD})
    assert first.session is not None
    second = await client.auth.refresh_session(first.session.refresh_token)
    assert second.session is not None
    third = await client.auth.refresh_session(second.session.refresh_token)
    assert third.session is not None
    session_id = unverified_claims(third.session.access_token)["session_id"]
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        # Age the revocation past the 10 s reuse interval instead of sleeping.
        await conn.execute(
            "update auth.refresh_tokens set updated_at = now() - interval '1 minute' where token = %s",
            (first.session.refresh_token,),
        )

    with pytest.raises(AuthApiError) as err:
        await client.auth.refresh_session(first.session.refresh_token)
    assert err.value.status == 400
    assert str(err.value.code) == "refresh_token_already_used"

    async with await psycopg.AsyncConnection.connect(stack.database_url) as conn:
        cur = await conn.execute(
            "select count(*) filter (where not revoked) from auth.refresh_tokens where session_id = %s", (session_id,)
        )
        row = await cur.fetchone()
    assert row == (0,), "the whole session's tokens are revoked after a reuse attempt"


async def test_unknown_refresh_token_is_refused(client: AsyncClient) -> None:
    with pytest.raises(AuthApiError) as err:
        await client.auth.refresh_session("not-a-token")
    assert err.value.status == 400
    assert str(err.value.code) == "refresh_token_not_found"


# -- user and logout --------------------------------------------------------------------------------


async def test_update_user_merges_metadata_and_changes_the_password(client: AsyncClient) -> None:
    email = unique_email()
    await client.auth.sign_up({"email": email, "password": PASSWORD, "options": {"data": {"a": 1}}})

    updated = await client.auth.update_user({"data": {"b": 2}, "password": PASSWORD + "-new"})
    assert updated.user.user_metadata["a"] == 1
    assert updated.user.user_metadata["b"] == 2
    with pytest.raises(AuthApiError):
        await client.auth.sign_in_with_password({"email": email, "password": PASSWORD})
    again = await client.auth.sign_in_with_password({"email": email, "password": PASSWORD + "-new"})
    assert again.user is not None


async def test_global_sign_out_revokes_refresh_tokens_and_the_session(client: AsyncClient) -> None:
    res = await client.auth.sign_up({"email": unique_email(), "password": PASSWORD})
    assert res.session is not None

    await client.auth.sign_out()
    assert await client.auth.get_session() is None

    with pytest.raises(AuthApiError) as refresh_err:
        await client.auth.refresh_session(res.session.refresh_token)
    assert str(refresh_err.value.code) == "refresh_token_not_found"
    with pytest.raises(AuthApiError) as user_err:
        await client.auth.get_user(res.session.access_token)
    assert user_err.value.status == 403
    assert user_err.value.code == "session_not_found"


async def test_local_sign_out_keeps_the_users_other_sessions(stack: Stack) -> None:
    email = unique_email()
    device_a, device_b = await new_client(stack), await new_client(stack)
    await device_a.auth.sign_up({"email": email, "password": PASSWORD})
    b_session = (await device_b.auth.sign_in_with_password({"email": email, "password": PASSWORD})).session
    assert b_session is not None

    await device_a.auth.sign_out({"scope": "local"})

    refreshed = await device_b.auth.refresh_session(b_session.refresh_token)
    assert refreshed.session is not None


# -- wire-level errors ---------------------------------------------------------------------------------


async def test_requests_without_a_valid_api_key_are_refused(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/auth/v1") as raw:
        missing = await raw.post("/signup", json={})
        wrong = await raw.post("/signup", json={}, headers={"apikey": "not-a-key"})
    assert missing.status_code == 401
    assert wrong.status_code == 401
    assert "message" in missing.json()


async def test_error_shape_follows_the_api_version_header(http: httpx.AsyncClient) -> None:
    bad = {"email": unique_email(), "password": "wrong"}
    versioned = await http.post(
        "/token", params={"grant_type": "password"}, json=bad, headers={API_VERSION: "2024-01-01"}
    )
    legacy = await http.post("/token", params={"grant_type": "password"}, json=bad)

    assert versioned.status_code == 400
    assert versioned.headers[API_VERSION] == "2024-01-01"
    assert versioned.json() == {"code": "invalid_credentials", "message": "Invalid login credentials"}
    assert legacy.status_code == 400
    assert API_VERSION not in legacy.headers
    assert legacy.json() == {"code": 400, "error_code": "invalid_credentials", "msg": "Invalid login credentials"}


async def test_malformed_json_is_bad_json_and_the_server_keeps_serving(http: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json", API_VERSION: "2024-01-01"}
    for body in (b"{not json", b"[1, 2]", b'{"email": 5, "password": "x"}'):
        res = await http.post("/signup", content=body, headers=headers)
        assert res.status_code == 400, body
        assert res.json()["code"] == "bad_json"
    ok = await http.post("/signup", json={"data": {}})
    assert ok.status_code == 200
    assert ok.json()["user"]["is_anonymous"] is True


async def test_user_endpoint_needs_a_valid_bearer_token(stack: Stack, http: httpx.AsyncClient) -> None:
    headers = {API_VERSION: "2024-01-01"}
    missing = await http.get("/user", headers=headers)
    if stack.flavour == "legacy":
        assert (missing.status_code, missing.json()["code"]) == (401, "no_authorization")
    else:  # the gateway sends the publishable key's anon JWT as the Bearer: a token with no user
        assert (missing.status_code, missing.json()["code"]) == (403, "bad_jwt")

    session = (await http.post("/signup", json={})).json()
    tampered = session["access_token"][:-4] + ("AAAA" if not session["access_token"].endswith("AAAA") else "BBBB")
    forged = await http.get("/user", headers={**headers, "Authorization": f"Bearer {tampered}"})
    assert forged.status_code == 403
    assert forged.json()["code"] == "bad_jwt"

    # The anon key is a valid JWT but names no user.
    anon = await http.get("/user", headers={**headers, "Authorization": f"Bearer {http.headers['apikey']}"})
    assert anon.status_code == 403
    assert anon.json()["code"] == "bad_jwt"


async def test_unsupported_logout_scope_is_refused(http: httpx.AsyncClient) -> None:
    session = (await http.post("/signup", json={})).json()
    res = await http.post(
        "/logout",
        params={"scope": "everywhere"},
        headers={"Authorization": f"Bearer {session['access_token']}", API_VERSION: "2024-01-01"},
    )
    assert res.status_code == 400
    assert res.json()["code"] == "validation_failed"
