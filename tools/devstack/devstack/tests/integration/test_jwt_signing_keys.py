"""Asymmetric JWT signing keys end to end: Auth signs ES256 with a kid, the JWKS follows each
rotation step, REST, RPC, Storage and Realtime (websocket join and HTTP broadcast) accept tokens of
the current and previously used keys and refuse forgeries and revoked keys at once, and the
clients verify devstack's tokens through the JWKS.

A gateway of its own follows a key file of its own, so rotating here never touches the session's
stack (whose tokens other suites hold).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from supabase_auth.errors import AuthInvalidJwtError

from devstack import signing_keys
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from devstack.gateway.key_set import LiveKeySet
from devstack.signing_keys import KeyRing, Mode
from devstack.testing import jwt_forge
from devstack.testing.fixtures import Stack
from devstack.testing.servers import Server
from devstack.tests.integration.auth_helpers import new_client
from devstack.tests.integration.realtime_support import raw_socket
from devstack.tests.integration.rest_support import Names, rest_fixtures

__all__ = ["rest_fixtures"]  # a fixture used by name
pytestmark = pytest.mark.integration

HOSTED_CLAIMS = {
    "iss", "sub", "aud", "exp", "iat", "role", "aal", "amr", "session_id", "is_anonymous", "email", "phone",
    "app_metadata", "user_metadata",
}  # fmt: skip
NO_KEY_BODY = {
    "code": "PGRST301",
    "details": "No suitable key was found to decode the JWT",
    "hint": None,
    "message": "No suitable key or wrong key type",
}


@dataclasses.dataclass(frozen=True)
class Rotating:
    stack: Stack  # this gateway, as the realtime helpers want it
    path: Path

    def ring(self) -> KeyRing:
        ring = signing_keys.read(self.path)
        assert ring is not None
        return ring

    def change(self, action: str, kid: str | None = None) -> signing_keys.SigningKey:
        return signing_keys.change(action, kid, path=self.path)

    def socket_key(self) -> str:
        """A websocket ``apikey`` that stays valid whatever is revoked, so joins test the token."""
        ring = signing_keys.read(self.path)
        return self.stack.anon_key if ring is None else jwt_forge.with_key(ring.current, jwt_forge.claims("anon"))


@contextlib.contextmanager
def _gateway(stack: Stack, path: Path, mode: Mode) -> Iterator[Rotating]:
    if os.environ.get("SUPABASE_URL"):
        pytest.skip("rotates the keys of an in-process gateway")
    base = Settings.from_stack()
    settings = dataclasses.replace(base, signing=LiveKeySet(base.jwt_secret, mode, path))
    with Server(create_app(settings)) as server:
        yield Rotating(dataclasses.replace(stack, url=server.url), path)


@pytest.fixture(scope="module")
def rotating(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotating]:
    with _gateway(stack, tmp_path_factory.mktemp("signing") / "signing_keys.json", "asymmetric") as gateway:
        yield gateway


@pytest.fixture
async def http(rotating: Rotating) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=rotating.stack.url, timeout=10) as client:
        yield client


async def sign_up(http: httpx.AsyncClient, anon_key: str) -> dict[str, Any]:
    response = await http.post("/auth/v1/signup", json={}, headers={"apikey": anon_key})
    assert response.status_code == 200, response.text
    session: dict[str, Any] = response.json()
    return session


async def jwks(http: httpx.AsyncClient) -> list[dict[str, Any]]:
    response = await http.get("/auth/v1/.well-known/jwks.json")  # no apikey: an open route
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=600"
    keys: list[dict[str, Any]] = response.json()["keys"]
    return keys


async def outcomes(r: Rotating, http: httpx.AsyncClient, names: Names, token: str) -> dict[str, Any]:
    """What each surface answers for ``token``: status codes, and Realtime's join status."""
    user = {"apikey": r.stack.anon_key, "Authorization": f"Bearer {token}"}
    rest = await http.get(f"/rest/v1/{names.items}", params={"select": "id"}, headers=user)
    rpc = await http.post(f"/rest/v1/rpc/{names.whoami}", json={}, headers=user)
    storage = await http.get("/storage/v1/bucket", headers=user)
    message = {"topic": "jwks-room", "event": "e", "payload": {}}
    broadcast = await http.post("/realtime/v1/api/broadcast", json={"messages": [message]}, headers=user)
    async with raw_socket(r.stack, apikey=r.socket_key()) as sock:
        join = await sock.join("realtime:jwks-room", {}, token=token)
    return {
        "rest": (rest.status_code, rest.json() if rest.status_code == 401 else None),
        "rpc": rpc.status_code,
        "storage": (storage.status_code, storage.json().get("message") if storage.status_code != 200 else None),
        "broadcast": broadcast.status_code,
        "join": (join["payload"]["status"], join["payload"]["response"].get("reason")),
    }


def accepted(result: dict[str, Any]) -> bool:
    return result == {
        "rest": (200, None),
        "rpc": 200,
        "storage": (200, None),
        "broadcast": 202,
        "join": ("ok", None),
    }


def refused(result: dict[str, Any]) -> bool:
    return bool(
        result["rest"][0] == result["rpc"] == result["broadcast"] == 401
        and result["rest"][1]["code"] == "PGRST301"
        and result["storage"][0] == 400
        and result["join"][0] == "error"
    )


async def test_auth_signs_es256_with_the_current_kid_and_the_hosted_claims(
    rotating: Rotating, http: httpx.AsyncClient
) -> None:
    session = await sign_up(http, rotating.stack.anon_key)
    token = session["access_token"]
    header = jwt.get_unverified_header(token)
    assert (header["alg"], header["kid"], header["typ"]) == ("ES256", rotating.ring().current.kid, "JWT")
    published = {k["kid"]: k for k in await jwks(http)}
    key = jwt.PyJWK.from_dict(published[header["kid"]])
    issuer = f"{rotating.stack.url}/auth/v1"
    claims = jwt.decode(token, key, algorithms=["ES256"], audience="authenticated", issuer=issuer)
    assert set(claims) >= HOSTED_CLAIMS
    assert (claims["role"], claims["aal"], claims["is_anonymous"], claims["phone"]) == (
        "authenticated",
        "aal1",
        True,
        "",
    )
    user = await http.get(
        "/auth/v1/user", headers={"apikey": rotating.stack.anon_key, "Authorization": f"Bearer {token}"}
    )
    assert user.status_code == 200 and user.json()["id"] == claims["sub"]


async def test_the_jwks_follows_each_rotation_step(rotating: Rotating, http: httpx.AsyncClient) -> None:
    def expected() -> set[str]:
        return {k.kid for k in rotating.ring().in_state("standby", "current", "previously_used")}

    first = rotating.ring().current
    assert {k["kid"] for k in await jwks(http)} == expected() >= {first.kid}
    standby = rotating.change("standby")
    assert {k["kid"] for k in await jwks(http)} == expected() >= {first.kid, standby.kid}
    rotating.change("rotate")
    assert rotating.ring().current.kid == standby.kid
    assert {k["kid"] for k in await jwks(http)} == expected() >= {first.kid, standby.kid}
    rotating.change("revoke", first.kid)
    published = await jwks(http)
    assert {k["kid"] for k in published} == expected() and first.kid not in expected()
    assert rotating.ring().legacy.kid not in str(published)
    for jwk in published:
        assert set(jwk) == {"kty", "crv", "x", "y", "kid", "alg", "use", "key_ops"}
        assert (jwk["alg"], jwk["use"], jwk["key_ops"]) == ("ES256", "sig", ["verify"])


async def test_a_rotated_out_key_works_until_revoked_then_is_refused_at_once(
    rotating: Rotating, http: httpx.AsyncClient, rest_fixtures: Names
) -> None:
    old_token = (await sign_up(http, rotating.stack.anon_key))["access_token"]
    old_kid = jwt.get_unverified_header(old_token)["kid"]
    assert accepted(await outcomes(rotating, http, rest_fixtures, old_token))
    rotating.change("standby")
    rotating.change("rotate")
    new_token = (await sign_up(http, rotating.stack.anon_key))["access_token"]
    assert jwt.get_unverified_header(new_token)["kid"] == rotating.ring().current.kid != old_kid
    assert accepted(await outcomes(rotating, http, rest_fixtures, old_token))  # previously used: still good

    rotating.change("revoke", old_kid)
    result = await outcomes(rotating, http, rest_fixtures, old_token)  # the very next request
    assert refused(result) and result["rest"][1] == NO_KEY_BODY
    assert result["storage"][1].startswith("Key for the ES256 algorithm must be one of type CryptoKey")
    assert result["join"][1] == (
        f'JwtSignerError: Failed to generate JWT signer for key ID (kid) "{old_kid}",'
        " check your JWT secret or JWKS configuration"
    )
    assert accepted(await outcomes(rotating, http, rest_fixtures, new_token))

    rotating.change("unrevoke", old_kid)  # back to standby: its old tokens stay refused
    assert refused(await outcomes(rotating, http, rest_fixtures, old_token))


FORGERIES: dict[str, Callable[[KeyRing], str]] = {
    "foreign key": lambda r: jwt_forge.foreign_es256(jwt_forge.claims()),
    "foreign key claiming the current kid": lambda r: jwt_forge.foreign_es256(jwt_forge.claims(), r.current.kid),
    "alg confusion (HS256 with the public key)": lambda r: jwt_forge.alg_confusion(r.current, jwt_forge.claims()),
    "alg none": lambda r: jwt_forge.unsecured(jwt_forge.claims(role="service_role")),
    "RS256 key not in the set": lambda r: jwt_forge.foreign_rs256(jwt_forge.claims(), r.current.kid),
    "standby key before it is current": lambda r: jwt_forge.with_key(
        next(k for k in r.keys if k.state == "standby"), jwt_forge.claims()
    ),
}


@pytest.mark.parametrize("name", list(FORGERIES))
async def test_forged_tokens_are_refused_on_every_surface(
    rotating: Rotating, http: httpx.AsyncClient, rest_fixtures: Names, name: str
) -> None:
    if not rotating.ring().in_state("standby"):
        rotating.change("standby")
    result = await outcomes(rotating, http, rest_fixtures, FORGERIES[name](rotating.ring()))
    assert refused(result), result
    if name in ("foreign key", "alg confusion (HS256 with the public key)", "standby key before it is current"):
        assert result["rest"][1] == NO_KEY_BODY


async def test_legacy_keys_work_until_the_legacy_secret_is_revoked(
    rotating: Rotating, http: httpx.AsyncClient, rest_fixtures: Names
) -> None:
    anon_only = {"apikey": rotating.stack.anon_key}
    minted = jwt_forge.hs256_with_secret(jwt_forge.claims(), (rotating.stack.jwt_secret or "").encode())
    assert (await http.get(f"/rest/v1/{rest_fixtures.items}", headers=anon_only)).status_code == 200
    assert accepted(await outcomes(rotating, http, rest_fixtures, minted))

    rotating.change("revoke", "legacy")
    try:
        response = await http.get(f"/rest/v1/{rest_fixtures.items}", headers=anon_only)
        assert (response.status_code, response.json()) == (401, NO_KEY_BODY)
        result = await outcomes(rotating, http, rest_fixtures, minted)
        assert refused(result) and result["join"][1] == "JwtSignatureError: Failed to validate JWT signature"
    finally:
        rotating.change("unrevoke", "legacy")
    assert (await http.get(f"/rest/v1/{rest_fixtures.items}", headers=anon_only)).status_code == 200


async def test_supabase_py_get_claims_verifies_through_the_jwks(rotating: Rotating, http: httpx.AsyncClient) -> None:
    token = (await sign_up(http, rotating.stack.anon_key))["access_token"]
    client = await new_client(rotating.stack)

    async def no_round_trip(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("get_claims fell back to get_user: the token was not verified locally")

    client.auth.get_user = no_round_trip  # type: ignore[method-assign]
    response = await client.auth.get_claims(token)
    assert response is not None
    assert response["claims"]["sub"] == jwt.decode(token, options={"verify_signature": False})["sub"]
    assert rotating.ring().current.kid in {k["kid"] for k in client.auth._jwks["keys"]}  # fetched the JWKS

    with pytest.raises(AuthInvalidJwtError, match="No matching signing key found in JWKS"):
        await client.auth.get_claims(jwt_forge.foreign_es256(jwt_forge.claims()))
    with pytest.raises(AuthInvalidJwtError, match="Invalid JWT signature"):
        await client.auth.get_claims(jwt_forge.foreign_es256(jwt_forge.claims(), rotating.ring().current.kid))


async def test_devstack_jwt_legacy_is_a_project_that_never_migrated(
    stack: Stack, tmp_path: Path, rest_fixtures: Names
) -> None:
    with _gateway(stack, tmp_path / "signing_keys.json", "legacy") as legacy:
        async with httpx.AsyncClient(base_url=legacy.stack.url, timeout=10) as http:
            assert await jwks(http) == []
            token = (await sign_up(http, stack.anon_key))["access_token"]
            assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
            assert accepted(await outcomes(legacy, http, rest_fixtures, token))
            es256 = jwt_forge.with_key(KeyRing.fresh().current, jwt_forge.claims())
            assert refused(await outcomes(legacy, http, rest_fixtures, es256))


async def test_the_new_api_keys_outlive_the_legacy_secret_and_follow_rotation(
    rotating: Rotating, http: httpx.AsyncClient, rest_fixtures: Names
) -> None:
    """Hosted's migration path: switch to signing keys, revoke the legacy secret, keep serving the
    publishable and secret keys (they never depended on it)."""
    publishable, secret = rotating.stack.publishable_key, rotating.stack.secret_key
    if not (publishable and secret):
        pytest.skip("the stack has no new API keys")

    async def statuses() -> tuple[int, int, int, int, int]:
        anon = await http.get(f"/rest/v1/{rest_fixtures.items}", headers={"apikey": publishable})
        # jobs: readable by service_role only, so a 200 proves the secret key's role.
        service = await http.get("/rest/v1/jobs", params={"select": "id", "limit": "1"}, headers={"apikey": secret})
        auth = await http.get("/auth/v1/settings", headers={"apikey": publishable})
        storage = await http.get("/storage/v1/bucket", headers={"apikey": secret})
        legacy = await http.get(f"/rest/v1/{rest_fixtures.items}", headers={"apikey": rotating.stack.anon_key})
        return anon.status_code, service.status_code, auth.status_code, storage.status_code, legacy.status_code

    rotating.change("revoke", "legacy")
    try:
        assert await statuses() == (200, 200, 200, 200, 401)
        if not rotating.ring().in_state("standby"):
            rotating.change("standby")
        rotating.change("rotate")
        assert await statuses() == (200, 200, 200, 200, 401)
        async with raw_socket(rotating.stack, apikey=publishable) as sock:
            joined = await sock.join("realtime:jwks-room", {})
        assert joined["payload"]["status"] == "ok", joined
    finally:
        rotating.change("unrevoke", "legacy")
