"""/rest/v1/rpc argument types come from the catalog as identifiers (schema + name, ``[]`` for
arrays), so domains, enums, arrays and odd type names in other schemas all bind."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg import sql

from devstack.testing.fixtures import Stack
from devstack.tests.integration.rest_support import service_headers

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def typed_function(stack: Stack) -> Iterator[str]:
    suffix = uuid.uuid4().hex[:8]
    schema_name = f"rpc types {suffix}"
    schema = sql.Identifier(schema_name)
    mood = sql.Identifier(schema_name, 'Mood "Kind"')
    small = sql.Identifier(schema_name, "small int")
    name = f"rpc_typed_{suffix}"
    fn = sql.Identifier("public", name)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL(
                """
                create schema {schema};
                create type {mood} as enum ('happy', 'sad');
                create domain {small} as integer check (value < 100);
                create function {fn}(moods {mood}[], n {small}, label varchar, tags text[] default '{{}}')
                returns jsonb language sql stable
                as $$ select jsonb_build_object('moods', moods, 'n', n, 'label', label, 'tags', tags) $$;
                grant usage on schema {schema} to anon, authenticated, service_role;
                grant execute on function {fn} to anon, authenticated, service_role;
                notify pgrst, 'reload schema';
                """
            ).format(schema=schema, mood=mood, small=small, fn=fn)
        )
    try:
        yield name
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop function if exists {}").format(fn))
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(schema))
            conn.execute("notify pgrst, 'reload schema'")


async def test_arguments_of_domain_enum_and_array_types_bind(stack: Stack, typed_function: str) -> None:
    async with httpx.AsyncClient(base_url=f"{stack.url}/rest/v1", headers=service_headers(stack)) as http:
        ok = await http.post(
            f"/rpc/{typed_function}", json={"moods": ["happy", "sad"], "n": 7, "label": "x", "tags": ["a", "b"]}
        )
        assert ok.status_code == 200, ok.text
        assert ok.json() == {"moods": ["happy", "sad"], "n": 7, "label": "x", "tags": ["a", "b"]}
        defaulted = await http.post(f"/rpc/{typed_function}", json={"moods": [], "n": 1, "label": "y"})
        assert defaulted.status_code == 200 and defaulted.json()["tags"] == []
        out_of_domain = await http.post(f"/rpc/{typed_function}", json={"moods": ["happy"], "n": 500, "label": "z"})
        assert out_of_domain.status_code == 400 and out_of_domain.json()["code"] == "23514"
        bad_enum = await http.post(f"/rpc/{typed_function}", json={"moods": ["angry"], "n": 1, "label": "z"})
        assert bad_enum.status_code == 400 and bad_enum.json()["code"] == "22P02"
