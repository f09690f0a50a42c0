"""/rest/v1/rpc through supabase-py's ``rpc()``: result shapes, GET calls, errors raised in SQL."""

from __future__ import annotations

import httpx
import pytest
from postgrest.exceptions import APIError

from devstack.testing.fixtures import Stack
from devstack.tests.integration.rest_support import (
    Names,
    anon_client,
    client_for,
    http,
    new_user,
    rest_fixtures,
    service_client,
    service_headers,
)
from devstack.tests.integration.rest_support import (
    rows as rows_of,
)
from supabase import AsyncClient

pytestmark = pytest.mark.integration
__all__ = ["anon_client", "http", "rest_fixtures", "service_client"]  # fixtures used by name

OWNER = "00000000-0000-4000-8000-000000000002"


async def test_scalar_with_default_argument(anon_client: AsyncClient, rest_fixtures: Names) -> None:
    assert (await anon_client.rpc(rest_fixtures.add, {"a": 2}).execute()).data == 3
    assert (await anon_client.rpc(rest_fixtures.add, {"a": 2, "b": 5}).execute()).data == 7


async def test_get_call_for_stable_function(
    anon_client: AsyncClient, rest_fixtures: Names, http: httpx.AsyncClient
) -> None:
    assert (await anon_client.rpc(rest_fixtures.add, {"a": 4, "b": 4}, get=True).execute()).data == 8
    # A volatile function cannot be called with GET.
    refused = await http.get(f"/rpc/{rest_fixtures.touch}")
    assert refused.status_code == 405 and refused.json()["code"] == "PGRST101"


async def test_table_returning_function_is_an_array_and_filterable(
    anon_client: AsyncClient, rest_fixtures: Names
) -> None:
    pairs = await anon_client.rpc(rest_fixtures.pairs, {"n": 3}).execute()
    assert pairs.data == [{"x": 1, "doubled": 2}, {"x": 2, "doubled": 4}, {"x": 3, "doubled": 6}]

    filtered = (
        await anon_client.rpc(rest_fixtures.pairs, {"n": 5}).gte("doubled", 6).order("x", desc=True).limit(2).execute()
    )
    assert filtered.data == [{"x": 5, "doubled": 10}, {"x": 4, "doubled": 8}]

    picked = await anon_client.rpc(rest_fixtures.pairs, {"n": 2}).select("doubled").execute()
    assert picked.data == [{"doubled": 2}, {"doubled": 4}]


async def test_single_composite_is_an_object(anon_client: AsyncClient, rest_fixtures: Names) -> None:
    result = await anon_client.rpc(rest_fixtures.one, {"x": 21}).execute()
    assert result.data == {"x2": 42, "label": "n21"}


async def test_jsonb_argument_round_trips(
    anon_client: AsyncClient, rest_fixtures: Names, http: httpx.AsyncClient
) -> None:
    payload = {"nested": {"list": [1, "two", None, True]}, "n": 1}
    assert (await anon_client.rpc(rest_fixtures.echo, {"payload": payload}).execute()).data == payload
    raw = await http.post(f"/rpc/{rest_fixtures.echo}", content=b'{"payload": {"price": 2.50}}')
    assert raw.status_code == 200 and raw.text == '{"price": 2.50}'


async def test_setof_table_rows_respect_rls(
    flavoured_stack: Stack, rest_fixtures: Names, service_client: AsyncClient
) -> None:
    user = await new_user(flavoured_stack)
    client = await client_for(flavoured_stack, user.token)
    try:
        await client.table(rest_fixtures.items).insert({"title": "rpc-mine", "score": 10}).execute()
        await (
            service_client.table(rest_fixtures.items)
            .insert({"owner": OWNER, "title": "rpc-other", "score": 10})
            .execute()
        )
        rows = await client.rpc(rest_fixtures.items_above, {"min_score": 10}).execute()
        assert [r["title"] for r in rows_of(rows.data)] == ["rpc-mine"]
        assert (await client.rpc(rest_fixtures.whoami, {}).execute()).data == user.id
    finally:
        await client.postgrest.aclose()


async def test_void_function_answers_204(http: httpx.AsyncClient, rest_fixtures: Names) -> None:
    response = await http.post(f"/rpc/{rest_fixtures.touch}", json={})
    assert response.status_code == 204 and response.content == b""


async def test_custom_sqlstate_becomes_the_status(http: httpx.AsyncClient, rest_fixtures: Names) -> None:
    limited = await http.post(f"/rpc/{rest_fixtures.limited}")
    assert limited.status_code == 429
    assert limited.json() == {
        "code": "PT429",
        "message": "slow down",
        "details": "per-user limit",
        "hint": "retry later",
    }

    failed = await http.post(f"/rpc/{rest_fixtures.fail}", json={"msg": "boom"})
    assert failed.status_code == 400
    assert failed.json() == {"code": "P0001", "message": "boom", "details": None, "hint": None}


async def test_unknown_function_or_arguments(anon_client: AsyncClient, rest_fixtures: Names, stack: Stack) -> None:
    with pytest.raises(APIError) as missing:
        await anon_client.rpc("conformance_rest_no_such_fn", {"a": 1}).execute()
    assert missing.value.code == "PGRST202"
    assert (
        missing.value.message == "Could not find the function public.conformance_rest_no_such_fn(a) in the schema cache"
    )

    with pytest.raises(APIError) as wrong_args:
        await anon_client.rpc(rest_fixtures.add, {"z": 1}).execute()
    assert wrong_args.value.code == "PGRST202"
    assert wrong_args.value.message == f"Could not find the function public.{rest_fixtures.add}(z) in the schema cache"

    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1") as raw:
        response = await raw.post("/rpc/conformance_rest_no_such_fn", json={}, headers=service_headers(stack))
    assert response.status_code == 404


async def test_bad_argument_value_is_a_400(http: httpx.AsyncClient, rest_fixtures: Names) -> None:
    response = await http.post(f"/rpc/{rest_fixtures.add}", json={"a": "not a number"})
    assert response.status_code == 400
    assert response.json()["code"] == "22P02"
