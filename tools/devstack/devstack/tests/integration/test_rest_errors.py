"""/rest/v1 bad input over raw HTTP: each gets the hosted status and body, writes nothing, and the
server keeps answering everyone else."""

from __future__ import annotations

import secrets

import httpx
import pytest

from devstack.testing.fixtures import Stack
from devstack.tests.integration.rest_support import Names, http, mint, new_user, rest_fixtures, service_headers

pytestmark = pytest.mark.integration
__all__ = ["http", "rest_fixtures"]  # fixtures used by name


def secret_of(stack: Stack) -> str:
    if not stack.jwt_secret:
        pytest.skip("needs the stack's JWT secret to mint tokens")
    return stack.jwt_secret


async def still_serving(http: httpx.AsyncClient, names: Names) -> None:
    response = await http.get(f"/{names.items}", params={"select": "id", "limit": "1"})
    assert response.status_code == 200


async def test_missing_and_invalid_api_key(stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1") as bare:
        missing = await bare.get(f"/{rest_fixtures.items}")
        assert missing.status_code == 401
        assert missing.json()["message"] == "No API key found in request"

        invalid = await bare.get(f"/{rest_fixtures.items}", headers={"apikey": "not-a-key"})
        assert invalid.status_code == 401
        assert invalid.json()["message"] == "Invalid API key"

        via_query = await bare.get(f"/{rest_fixtures.items}", params={"apikey": stack.anon_key, "select": "id"})
        assert via_query.status_code == 200
    await still_serving(http, rest_fixtures)


async def test_forged_expired_and_malformed_jwt(stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    secret = secret_of(stack)
    forged = mint("not-the-secret-" + secrets.token_hex(16), sub="00000000-0000-4000-8000-000000000009")
    response = await http.get(f"/{rest_fixtures.items}", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401
    assert response.json()["code"] == "PGRST301"
    assert response.headers["www-authenticate"].startswith('Bearer error="invalid_token"')

    expired = mint(secret, sub="00000000-0000-4000-8000-000000000009", expires_in=-60)
    response = await http.get(f"/{rest_fixtures.items}", headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401
    assert response.json() == {"code": "PGRST303", "message": "JWT expired", "details": None, "hint": None}
    assert response.headers["www-authenticate"] == 'Bearer error="invalid_token", error_description="JWT expired"'

    response = await http.get(f"/{rest_fixtures.items}", headers={"Authorization": "Bearer abc.def"})
    assert response.status_code == 401
    assert response.json()["message"] == "Expected 3 parts in JWT; got 2"
    await still_serving(http, rest_fixtures)


async def test_privileges_anon_401_authenticated_403(
    stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient
) -> None:
    anon = await http.get(f"/{rest_fixtures.secrets}")
    assert anon.status_code == 401
    assert anon.json()["code"] == "42501"
    assert anon.headers["www-authenticate"] == "Bearer"

    user = await new_user(stack)
    # authenticated may read but not write the table: a write is 42501 → 403.
    denied = await http.post(
        f"/{rest_fixtures.secrets}", json={"id": 99, "note": "x"}, headers={"Authorization": f"Bearer {user.token}"}
    )
    assert denied.status_code == 403 and denied.json()["code"] == "42501"
    read = await http.get(f"/{rest_fixtures.secrets}", headers={"Authorization": f"Bearer {user.token}"})
    assert read.status_code == 200 and read.json() == [{"id": 1, "note": "hidden"}]


async def test_unknown_table_and_column(rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    table = await http.get("/conformance_rest_nothing_here")
    assert table.status_code == 404
    assert table.json()["code"] == "PGRST205"
    assert (
        table.json()["message"] == "Could not find the table 'public.conformance_rest_nothing_here' in the schema cache"
    )

    for params in ({"select": "id,nope"}, {"nope": "eq.1"}, {"order": "nope.desc"}):
        column = await http.get(f"/{rest_fixtures.items}", params=params)
        assert column.status_code == 400, params
        assert column.json()["code"] == "42703"
        assert column.json()["message"] == f"column {rest_fixtures.items}.nope does not exist"

    payload = await http.post(f"/{rest_fixtures.items}", json={"title": "x", "nope": 1})
    assert payload.status_code == 400
    assert payload.json()["code"] == "PGRST204"
    assert (
        payload.json()["message"] == f"Could not find the 'nope' column of '{rest_fixtures.items}' in the schema cache"
    )
    await still_serving(http, rest_fixtures)


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("id", "noop.1", "failed to parse filter (noop.1)"),
        ("id", "in.1,2", "failed to parse filter (in.1,2)"),
        ("or", "(id.eq.1,id.zz.2)", "failed to parse logic tree"),
        ("score", "is.maybe", "failed to parse filter (is.maybe)"),
    ],
)
async def test_bad_filter_grammar(
    rest_fixtures: Names, http: httpx.AsyncClient, key: str, value: str, fragment: str
) -> None:
    response = await http.get(f"/{rest_fixtures.items}", params={key: value})
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "PGRST100"
    assert fragment in body["message"]
    assert set(body) == {"code", "message", "details", "hint"}


async def test_malformed_json_writes_nothing(stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    headers = {**service_headers(stack), "Content-Type": "application/json"}
    response = await http.post(f"/{rest_fixtures.items}", content=b'{"title": "half', headers=headers)
    assert response.status_code == 400
    assert response.json() == {"code": "PGRST102", "message": "Empty or invalid json", "details": None, "hint": None}

    uneven = await http.post(f"/{rest_fixtures.items}", json=[{"title": "a"}, {"score": 1}], headers=headers)
    assert uneven.status_code == 400 and uneven.json()["message"] == "All object keys must match"
    await still_serving(http, rest_fixtures)


async def test_oversized_body_is_413(stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    secret_of(stack)  # the limit is the local gateway's; hosted limits differ
    marker = f"big-{secrets.token_hex(4)}"
    big = b'{"title": "' + marker.encode() + b'", "meta": {"blob": "' + b"x" * (11 * 1024 * 1024) + b'"}}'
    response = await http.post(f"/{rest_fixtures.items}", content=big, headers=service_headers(stack))
    assert response.status_code == 413
    left = await http.get(f"/{rest_fixtures.items}", params={"title": f"eq.{marker}"}, headers=service_headers(stack))
    assert left.json() == []


async def test_embedding_and_aggregates_are_refused(rest_fixtures: Names, http: httpx.AsyncClient) -> None:
    embedded = await http.get(f"/{rest_fixtures.items}", params={"select": "id,owner_profile(*)"})
    assert embedded.status_code == 400 and embedded.json()["code"] == "PGRST127"
    counted = await http.get(f"/{rest_fixtures.items}", params={"select": "count()"})
    assert counted.status_code == 400 and counted.json()["code"] == "PGRST123"


async def test_single_object_mutation_with_many_rows_rolls_back(
    stack: Stack, rest_fixtures: Names, http: httpx.AsyncClient
) -> None:
    marker = f"single-{secrets.token_hex(4)}"
    owner = "00000000-0000-4000-8000-000000000003"
    headers = {
        **service_headers(stack),
        "Prefer": "return=representation",
        "Accept": "application/vnd.pgrst.object+json",
    }
    response = await http.post(
        f"/{rest_fixtures.items}",
        json=[{"owner": owner, "title": marker}, {"owner": owner, "title": marker}],
        headers=headers,
    )
    assert response.status_code == 406
    assert response.json()["details"] == "The result contains 2 rows"
    left = await http.get(f"/{rest_fixtures.items}", params={"title": f"eq.{marker}"}, headers=service_headers(stack))
    assert left.json() == []
