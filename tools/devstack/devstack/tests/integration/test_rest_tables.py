"""/rest/v1 tables through the real supabase-py AsyncClient: reads, filters, writes, RLS."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from psycopg import sql

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

OWNER = "00000000-0000-4000-8000-000000000001"


def tag() -> str:
    return f"t{secrets.token_hex(4)}"


async def seed(client: AsyncClient, names: Names, prefix: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"owner": OWNER, "title": f"{prefix}-alpha", "score": 1, "tags": ["red", "blue"], "meta": {"k": 1}},
        {"owner": OWNER, "title": f"{prefix}-beta", "score": 2.5, "tags": ["red"], "meta": None},
        {"owner": OWNER, "title": f"{prefix}-Gamma", "score": None, "tags": [], "meta": {"k": 3}},
    ]
    result = await client.table(names.items).insert(rows).execute()
    return rows_of(result.data)


async def test_insert_and_select_columns(service_client: AsyncClient, rest_fixtures: Names) -> None:
    prefix = tag()
    inserted = await seed(service_client, rest_fixtures, prefix)
    assert [r["title"] for r in inserted] == [f"{prefix}-alpha", f"{prefix}-beta", f"{prefix}-Gamma"]
    assert inserted[0]["meta"] == {"k": 1} and inserted[0]["tags"] == ["red", "blue"]

    result = (
        await service_client.table(rest_fixtures.items)
        .select("id,title")
        .like("title", f"{prefix}-%")
        .order("id")
        .execute()
    )
    assert result.data == [{"id": r["id"], "title": r["title"]} for r in inserted]


async def test_filters(service_client: AsyncClient, rest_fixtures: Names) -> None:
    prefix = tag()
    await seed(service_client, rest_fixtures, prefix)

    def base() -> Any:
        return service_client.table(rest_fixtures.items).select("title").like("title", f"{prefix}-*").order("title")

    async def titles(query: Any) -> list[str]:
        return [r["title"].split("-", 1)[1] for r in (await query.execute()).data]

    assert await titles(base().eq("score", 1)) == ["alpha"]
    assert await titles(base().neq("score", 1)) == ["beta"]
    assert await titles(base().gt("score", 1)) == ["beta"]
    assert await titles(base().gte("score", 1)) == ["alpha", "beta"]
    assert await titles(base().lt("score", 2)) == ["alpha"]
    assert await titles(base().lte("score", 2.5)) == ["alpha", "beta"]
    assert await titles(base().ilike("title", "%gamma")) == ["Gamma"]
    assert await titles(base().is_("score", None)) == ["Gamma"]
    assert await titles(base().not_.is_("score", None)) == ["alpha", "beta"]
    assert await titles(base().in_("title", [f"{prefix}-alpha", f"{prefix}-Gamma"])) == ["Gamma", "alpha"]
    assert await titles(base().cs("tags", ["blue"])) == ["alpha"]
    assert await titles(base().cd("tags", ["red"])) == ["Gamma", "beta"]
    assert await titles(base().contains("meta", {"k": 3})) == ["Gamma"]
    assert await titles(base().or_("score.eq.1,score.is.null")) == ["Gamma", "alpha"]
    assert await titles(base().or_("score.gt.2,and(score.lt.2,tags.cs.{blue})")) == ["alpha", "beta"]
    assert await titles(base().not_.in_("score", [1, 2.5])) == []  # NULL is neither in nor not in


async def test_order_limit_offset_and_count(
    service_client: AsyncClient, rest_fixtures: Names, http: httpx.AsyncClient, stack: Stack
) -> None:
    prefix = tag()
    await seed(service_client, rest_fixtures, prefix)
    table = service_client.table(rest_fixtures.items)

    ordered = (
        await table.select("score").like("title", f"{prefix}-*").order("score", desc=True, nullsfirst=True).execute()
    )
    assert [r["score"] for r in rows_of(ordered.data)] == [None, 2.5, 1]

    page = (
        await table.select("title", count="exact")  # type: ignore[arg-type]
        .like("title", f"{prefix}-*")
        .order("id")
        .range(1, 1)
        .execute()
    )
    assert page.count == 3
    assert [r["title"] for r in rows_of(page.data)] == [f"{prefix}-beta"]

    # Status and Content-Range as PostgREST sends them: 206 for a partial page with a known count.
    params = {"select": "id", "title": f"like.{prefix}-*", "order": "id", "limit": "2"}
    headers = {**service_headers(stack), "Prefer": "count=exact"}
    partial = await http.get(f"/{rest_fixtures.items}", params=params, headers=headers)
    assert partial.status_code == 206
    assert partial.headers["content-range"] == "0-1/3"
    assert partial.headers["content-type"].startswith("application/json")

    plain = await http.get(f"/{rest_fixtures.items}", params=params, headers=service_headers(stack))
    assert plain.status_code == 200 and plain.headers["content-range"] == "0-1/*"

    ranged = await http.get(
        f"/{rest_fixtures.items}",
        params={"select": "id", "title": f"like.{prefix}-*", "order": "id"},
        headers={**service_headers(stack), "Range": "1-5"},
    )
    assert ranged.status_code == 200 and ranged.headers["content-range"] == "1-2/*"

    empty = await http.get(
        f"/{rest_fixtures.items}", params={"title": "eq.nothing-here"}, headers={**headers, "Prefer": "count=exact"}
    )
    assert empty.status_code == 200 and empty.headers["content-range"] == "*/0" and empty.json() == []

    head = await table.select("*", count="exact", head=True).like("title", f"{prefix}-*").execute()  # type: ignore[arg-type]
    assert head.count == 3


async def test_numeric_and_json_serialization_follow_postgres(
    http: httpx.AsyncClient, stack: Stack, rest_fixtures: Names
) -> None:
    prefix = tag()
    body = f'{{"owner":"{OWNER}","title":"{prefix}-n","score":1.50,"meta":{{"x":2.50}}}}'
    created = await http.post(
        f"/{rest_fixtures.items}",
        content=body,
        headers={**service_headers(stack), "Content-Type": "application/json", "Prefer": "return=representation"},
    )
    assert created.status_code == 201, created.text
    # numeric keeps its scale, jsonb its digits; timestamps are ISO 8601 with offset.
    assert '"score":1.50' in created.text
    row = created.json(parse_float=Decimal)[0]
    assert row["score"] == Decimal("1.50") and row["meta"] == {"x": Decimal("2.50")}
    assert row["created_at"].endswith("+00:00") and "T" in row["created_at"]


async def test_single_and_maybe_single(service_client: AsyncClient, rest_fixtures: Names) -> None:
    prefix = tag()
    await seed(service_client, rest_fixtures, prefix)
    table = service_client.table(rest_fixtures.items)

    one = await table.select("title").eq("title", f"{prefix}-beta").single().execute()
    assert one.data == {"title": f"{prefix}-beta"}

    with pytest.raises(APIError) as many:
        await table.select("title").like("title", f"{prefix}-*").single().execute()
    assert many.value.code == "PGRST116"
    assert many.value.message == "Cannot coerce the result to a single JSON object"
    assert many.value.details == "The result contains 3 rows"

    with pytest.raises(APIError) as none:
        await table.select("title").eq("title", "missing").single().execute()
    assert none.value.details == "The result contains 0 rows"

    assert await table.select("title").eq("title", "missing").maybe_single().execute() is None
    found = await table.select("title").eq("title", f"{prefix}-alpha").maybe_single().execute()
    assert found is not None and found.data == {"title": f"{prefix}-alpha"}


async def test_upsert_update_delete(
    service_client: AsyncClient, rest_fixtures: Names, http: httpx.AsyncClient, stack: Stack
) -> None:
    prefix = tag()
    table = service_client.table(rest_fixtures.items)
    first = await table.insert({"owner": OWNER, "title": f"{prefix}-u", "slug": f"{prefix}-slug", "score": 1}).execute()
    row_id = rows_of(first.data)[0]["id"]

    merged = await table.upsert(
        {"owner": OWNER, "title": f"{prefix}-u2", "slug": f"{prefix}-slug", "score": 5}, on_conflict="slug"
    ).execute()
    merged_row = rows_of(merged.data)[0]
    assert merged_row["id"] == row_id and merged_row["title"] == f"{prefix}-u2"

    ignored = await table.upsert(
        {"owner": OWNER, "title": f"{prefix}-ignored", "slug": f"{prefix}-slug"},
        on_conflict="slug",
        ignore_duplicates=True,
    ).execute()
    assert ignored.data == []

    # Status: 200 when an upsert only merged, 201 when it inserted.
    merge_prefer = {**service_headers(stack), "Prefer": "resolution=merge-duplicates,return=minimal"}
    again = await http.post(
        f"/{rest_fixtures.items}",
        params={"on_conflict": "slug"},
        json={"owner": OWNER, "title": f"{prefix}-u3", "slug": f"{prefix}-slug"},
        headers=merge_prefer,
    )
    assert again.status_code == 200 and again.content == b""
    fresh = await http.post(
        f"/{rest_fixtures.items}",
        params={"on_conflict": "slug"},
        json={"owner": OWNER, "title": f"{prefix}-new", "slug": f"{prefix}-slug2"},
        headers=merge_prefer,
    )
    assert fresh.status_code == 201

    updated = await table.update({"score": 7}).eq("id", row_id).execute()
    updated_row = rows_of(updated.data)[0]
    assert updated_row["score"] == 7 and updated_row["title"] == f"{prefix}-u3"

    deleted = await table.delete().like("title", f"{prefix}-*").execute()
    assert {r["title"] for r in rows_of(deleted.data)} == {f"{prefix}-u3", f"{prefix}-new"}
    assert (await table.select("id").like("title", f"{prefix}-*").execute()).data == []


async def test_write_statuses_and_prefer(http: httpx.AsyncClient, stack: Stack, rest_fixtures: Names) -> None:
    prefix = tag()
    url = f"/{rest_fixtures.items}"
    minimal = await http.post(
        url,
        json={"owner": OWNER, "title": f"{prefix}-m"},
        headers={**service_headers(stack), "Prefer": "return=minimal"},
    )
    assert minimal.status_code == 201 and minimal.content == b""
    assert minimal.headers["content-range"] == "*/*"

    located = await http.post(
        url,
        json={"owner": OWNER, "title": f"{prefix}-h"},
        headers={**service_headers(stack), "Prefer": "return=headers-only"},
    )
    assert located.status_code == 201
    assert located.headers["location"].startswith(f"/{rest_fixtures.items}?id=eq.")

    defaults = await http.post(
        url,
        params={"columns": "owner,title,tags"},
        json=[{"owner": OWNER, "title": f"{prefix}-d1"}, {"owner": OWNER, "title": f"{prefix}-d2", "tags": ["x"]}],
        headers={**service_headers(stack), "Prefer": "return=representation,missing=default"},
    )
    assert defaults.status_code == 201, defaults.text
    assert [r["tags"] for r in defaults.json()] == [[], ["x"]]  # the default '{}', not NULL

    patched = await http.patch(
        url, params={"title": f"like.{prefix}-*"}, json={"score": 3}, headers=service_headers(stack)
    )
    assert patched.status_code == 204
    assert patched.headers["content-range"] == "0-3/*"

    rolled_back = await http.post(
        url,
        json={"owner": OWNER, "title": f"{prefix}-rb"},
        headers={**service_headers(stack), "Prefer": "return=representation,tx=rollback"},
    )
    assert rolled_back.status_code == 201 and rolled_back.json()[0]["title"] == f"{prefix}-rb"
    gone = await http.get(url, params={"title": f"eq.{prefix}-rb"}, headers=service_headers(stack))
    assert gone.json() == []

    unfiltered = await http.delete(url, headers=service_headers(stack))
    assert unfiltered.status_code == 400 and unfiltered.json()["code"] == "21000"


async def test_failing_bulk_insert_writes_nothing(service_client: AsyncClient, rest_fixtures: Names) -> None:
    prefix = tag()
    rows = [
        {"owner": OWNER, "title": f"{prefix}-ok", "slug": f"{prefix}-dup"},
        {"owner": OWNER, "title": f"{prefix}-dup", "slug": f"{prefix}-dup"},
    ]
    with pytest.raises(APIError) as exc:
        await service_client.table(rest_fixtures.items).insert(rows).execute()
    assert exc.value.code == "23505"
    left = await service_client.table(rest_fixtures.items).select("id").like("title", f"{prefix}-*").execute()
    assert left.data == []


async def test_unknown_schema_is_refused(service_client: AsyncClient, rest_fixtures: Names) -> None:
    with pytest.raises(APIError) as exc:
        await service_client.schema("other").table(rest_fixtures.items).select("*").execute()
    assert exc.value.code == "PGRST106"
    assert exc.value.message == "Invalid schema: other"
    assert (exc.value.hint or "").startswith("Only the following schemas are exposed: public")


async def test_rls_two_users_see_only_their_rows(flavoured_stack: Stack, rest_fixtures: Names) -> None:
    stack = flavoured_stack  # the users' clients are created with the publishable key in the "new" flavour
    prefix = tag()
    alice, bob = await new_user(stack), await new_user(stack)
    a_client, b_client = await client_for(stack, alice.token), await client_for(stack, bob.token)
    anon = await client_for(stack)
    try:
        items_a, items_b = a_client.table(rest_fixtures.items), b_client.table(rest_fixtures.items)
        # owner defaults to auth.uid(): each insert belongs to the caller.
        await items_a.insert({"title": f"{prefix}-a"}).execute()
        await items_b.insert({"title": f"{prefix}-b"}).execute()

        seen_a = await items_a.select("title,owner").like("title", f"{prefix}-*").execute()
        assert seen_a.data == [{"title": f"{prefix}-a", "owner": alice.id}]
        seen_b = await items_b.select("title").like("title", f"{prefix}-*").execute()
        assert seen_b.data == [{"title": f"{prefix}-b"}]

        # Bob cannot touch Alice's row: RLS filters it out of the update and delete.
        assert (await items_b.update({"score": 1}).eq("title", f"{prefix}-a").execute()).data == []
        assert (await items_b.delete().eq("title", f"{prefix}-a").execute()).data == []
        assert len((await items_a.select("id").eq("title", f"{prefix}-a").execute()).data) == 1

        # Inserting a row owned by someone else violates the policy: 42501 → 403 for a signed-in user.
        with pytest.raises(APIError) as exc:
            await items_b.insert({"title": f"{prefix}-forged", "owner": alice.id}).execute()
        assert exc.value.code == "42501"

        # anon has table grants but no policy: it sees nothing.
        assert (await anon.table(rest_fixtures.items).select("*").like("title", f"{prefix}-*").execute()).data == []
    finally:
        for client in (a_client, b_client, anon):
            await client.postgrest.aclose()


async def test_schema_cache_sees_new_tables_and_columns(
    stack: Stack, http: httpx.AsyncClient, rest_fixtures: Names
) -> None:
    name = f"conformance_rest_late_{secrets.token_hex(4)}"
    table = sql.Identifier("public", name)
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create table {} (id int primary key)").format(table))
        conn.execute(sql.SQL("insert into {} values (1)").format(table))
        conn.execute("notify pgrst, 'reload schema'")
    try:
        first = await http.get(f"/{name}", headers=service_headers(stack))
        assert first.status_code == 200 and first.json() == [{"id": 1}]
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("alter table {} add column label text default 'late'").format(table))
            conn.execute("notify pgrst, 'reload schema'")
        second = await http.get(f"/{name}", params={"select": "id,label"}, headers=service_headers(stack))
        assert second.status_code == 200 and second.json() == [{"id": 1, "label": "late"}]
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop table if exists {}").format(table))
            conn.execute("notify pgrst, 'reload schema'")
