"""/rest/v1/<table>: GET/HEAD reads, POST inserts and upserts, PATCH updates, DELETE deletes."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from psycopg import AsyncConnection, sql
from starlette.responses import Response

from devstack.gateway.offload import BODY_INLINE_BYTES, cpu_bound
from devstack.gateway.rest import query
from devstack.gateway.rest.catalog import SchemaCache, Table
from devstack.gateway.rest.errors import (
    ApiError,
    bad_range,
    invalid_body,
    out_of_range,
    payload_column_not_found,
    table_not_found,
    unsupported_method,
)
from devstack.gateway.rest.negotiation import (
    Accept,
    Body,
    accept_for,
    header_range,
    parse_json,
    prefer_for,
    read_body,
)
from devstack.gateway.rest.responses import ResultRow, content_range, json_response, read_status
from devstack.gateway.rest.service import Call, RestService, fetch_result, fetch_scalar
from devstack.gateway.rest.sqlgen import Frag, Relation, join, lit, param, result_query, where_clause
from devstack.gateway.rest.writes import (
    INSERTED_GUC,
    Mutation,
    insert_statements,
    plan_insert,
    qualified,
    returning_clause,
)

# Hosted Supabase's default "Max rows" (PostgREST db-max-rows).
MAX_ROWS = 1000
# pg-safeupdate, loaded for the API roles on hosted Supabase, refuses unfiltered UPDATE/DELETE.
SAFEUPDATE_MESSAGE = "{verb} requires a WHERE clause"


def relation(table: Table) -> Relation:
    return Relation(table.name, tuple(table.columns))


def find_table(cache: SchemaCache, schema: str, name: str) -> Table:
    table = cache.tables.get(name)
    if table is None:
        raise table_not_found(schema, name, cache.suggest_table(name))
    return table


def page_range(call: Call, q: query.QueryParams) -> tuple[int, int | None]:
    """Intersect ?limit/?offset with the Range header, capped by MAX_ROWS → (offset, limit)."""
    lower, upper = q.offset, (q.offset + q.limit - 1 if q.limit is not None else None)
    header = header_range(call.request)
    if header is not None:
        h_lower, h_limit = header
        h_upper = h_lower + h_limit - 1 if h_limit is not None else None
        lower = max(lower, h_lower)
        if h_upper is not None:
            upper = h_upper if upper is None else min(upper, h_upper)
    if lower > query.BIGINT_MAX:
        raise bad_range(f"The Range header's lower boundary is over {query.BIGINT_MAX}.")
    limit = None if upper is None else max(upper - lower + 1, 0)
    limit = MAX_ROWS if limit is None else min(limit, MAX_ROWS)
    return lower, limit


def profile_headers(call: Call) -> dict[str, str]:
    return {"Content-Profile": call.schema}


class TableHandler:
    def __init__(self, service: RestService) -> None:
        self.service = service

    async def __call__(self, call: Call) -> Response:
        name: str = call.request.path_params["table"]
        method = call.request.method
        if method in ("GET", "HEAD"):
            return await self.read(call, name)
        if method == "POST":
            return await self.insert(call, name)
        if method == "PATCH":
            return await self.update(call, name)
        if method == "DELETE":
            return await self.delete(call, name)
        raise unsupported_method(method)

    # --- reads -----------------------------------------------------------------------------------

    async def read(self, call: Call, name: str) -> Response:
        q = await call.query()
        accept, prefer = accept_for(call.request), prefer_for(call.request)
        offset, limit = page_range(call, q)

        def build(cache: SchemaCache) -> Frag:
            table = find_table(cache, call.schema, name)
            rel = relation(table)
            source = lit("select * from ") + qualified(table) + where_clause(rel, q.filters, q.logic)
            return result_query(
                source,
                rel,
                q.select,
                q.order,
                limit=limit,
                offset=offset,
                count=prefer.count is not None,
                strip_nulls=accept.strip_nulls,
            )

        statement = await self.service.with_catalog(call.schema, build, large=call.large_query)

        async def work(conn: AsyncConnection[Any]) -> tuple[ResultRow, str]:
            result = await fetch_result(conn, statement)
            return result, result.payload(accept)

        result, body = await self.service.transaction(call, work)
        status = read_status(offset, result.rows, result.total)
        if status == 416:
            raise out_of_range(offset, result.total or 0)
        headers = {"Content-Range": content_range(offset, result.rows, result.total), **profile_headers(call)}
        if prefer.count:
            headers["Preference-Applied"] = f"count={prefer.count}"
        if call.request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=accept.content_type)
        return json_response(body, status, headers, accept)

    # --- writes ----------------------------------------------------------------------------------

    async def _body(self, call: Call) -> Body:
        raw = await read_body(call.request, self.service.ctx.settings.max_body_bytes)
        return await cpu_bound(len(raw) > BODY_INLINE_BYTES, parse_json, raw)

    async def insert(self, call: Call, name: str) -> Response:
        q = await call.query()
        accept, prefer = accept_for(call.request), prefer_for(call.request)
        body = await self._body(call)
        plan = await cpu_bound(len(body.text) > BODY_INLINE_BYTES, plan_insert, body.value, q, prefer)
        # The rows as one JSON array for json_populate_recordset, built from the text as sent.
        array = param(body.text) + lit("::json")
        if not isinstance(body.value, list):
            array = lit("json_build_array(") + array + lit(")")
        want_rows = prefer.representation in ("full", "headers-only")

        def build(cache: SchemaCache) -> tuple[Table, list[str], list[Frag]]:
            table = find_table(cache, call.schema, name)
            for column in plan.columns:
                if column not in table.columns:
                    raise payload_column_not_found(table.name, column)
            conflict = q.on_conflict if q.on_conflict is not None else list(table.pk)
            rel = relation(table)
            for column in conflict:
                rel.column(column)
            statements = [
                self._wrap(mutation, rel, q, accept)
                for batch in plan.batches
                for mutation in insert_statements(table, batch, array, prefer, conflict, returning=want_rows)
            ]
            return table, conflict, statements

        table, conflict, statements = await self.service.with_catalog(call.schema, build, large=call.large_query)
        # Only a merge with a conflict target distinguishes inserted from updated rows (201 vs 200).
        merge = prefer.resolution == "merge-duplicates" and bool(conflict)

        async def work(conn: AsyncConnection[Any]) -> tuple[list[ResultRow], int | None]:
            if merge:
                await conn.execute("select set_config(%s, '0', true)", [INSERTED_GUC])
            results = [await fetch_result(conn, statement) for statement in statements]
            inserted = None
            if merge:
                inserted = int(
                    await fetch_scalar(conn, Frag(sql.SQL("select current_setting(%s, true)"), [INSERTED_GUC]))
                )
            combined = combine(results)
            if accept.singular and prefer.representation == "full":
                combined.payload(accept)
            return results, inserted

        results, inserted = await self.service.transaction(call, work, rollback=prefer.rollback)
        combined = combine(results)
        status = 200 if merge and inserted is not None and inserted <= 0 else 201
        headers = {"Content-Range": content_range(1, 0, combined.rows if prefer.count else None)}
        applied = prefer.applied(with_resolution=bool(table.pk or q.on_conflict), with_missing=True)
        if applied:
            headers["Preference-Applied"] = applied
        if prefer.representation == "headers-only" and table.pk and combined.first:
            headers["Location"] = location(table, json.loads(combined.first))
        if prefer.representation == "full":
            headers.update(profile_headers(call))
            return json_response(combined.payload(accept), status, headers, accept)
        return Response(status_code=status, headers=headers)

    def _wrap(self, mutation: Mutation, rel: Relation, q: query.QueryParams, accept: Accept) -> Frag:
        if mutation.returning:
            return result_query(mutation.statement, rel, q.select, (), strip_nulls=accept.strip_nulls)
        return (
            lit("with pgrst_source as (")
            + mutation.statement
            + lit(") select null::bigint, count(*), '[]', null::text from pgrst_source")
        )

    async def update(self, call: Call, name: str) -> Response:
        return await self._modify(call, name, "UPDATE")

    async def delete(self, call: Call, name: str) -> Response:
        return await self._modify(call, name, "DELETE")

    async def _modify(self, call: Call, name: str, verb: str) -> Response:
        q = await call.query()
        accept, prefer = accept_for(call.request), prefer_for(call.request)
        values: dict[str, Any] = {}
        record = lit("null")
        if verb == "UPDATE":
            body = await self._body(call)
            # PostgREST takes the first object of an array body.
            record = param(body.text) + lit("::json")
            if isinstance(body.value, list) and body.value and isinstance(body.value[0], dict):
                values, record = body.value[0], lit("(") + record + lit(" -> 0)")
            elif isinstance(body.value, dict):
                values = body.value
            else:
                raise invalid_body()
        if not q.filters and not q.logic:
            raise ApiError(400, "21000", SAFEUPDATE_MESSAGE.format(verb=verb))
        full = prefer.representation == "full"

        def build(cache: SchemaCache) -> Frag:
            table = find_table(cache, call.schema, name)
            rel = relation(table)
            columns = q.columns if q.columns is not None else list(values)
            for column in columns:
                if column not in table.columns:
                    raise payload_column_not_found(table.name, column)
            where = where_clause(rel, q.filters, q.logic)
            returning = returning_clause(table, full)
            if verb == "DELETE":
                statement = lit("delete from ") + qualified(table) + where + returning
            elif not columns:
                # Nothing to set: PostgREST answers an empty result without touching the table.
                statement = lit("select * from ") + qualified(table) + lit(" where false")
            else:
                assignments = join(
                    ", ",
                    (Frag(sql.SQL("{} = _b.{}").format(sql.Identifier(c), sql.Identifier(c))) for c in columns),
                )
                statement = (
                    lit("update ")
                    + qualified(table)
                    + lit(" set ")
                    + assignments
                    + lit(" from json_populate_record(null::")
                    + Frag(sql.Identifier(table.schema, table.name))
                    + lit(", ")
                    + record
                    + lit(") as _b")
                    + where
                    + returning
                )
            return self._wrap(Mutation(statement, full), rel, q, accept)

        wrapped = await self.service.with_catalog(call.schema, build, large=call.large_query)

        async def work(conn: AsyncConnection[Any]) -> ResultRow:
            result = await fetch_result(conn, wrapped)
            if accept.singular and full:
                result.payload(accept)
            return result

        result = await self.service.transaction(call, work, rollback=prefer.rollback)
        total = result.rows if prefer.count else None
        lower = 0 if verb == "UPDATE" else 1
        rows = result.rows if verb == "UPDATE" else 0
        headers = {"Content-Range": content_range(lower, rows, total)}
        applied = prefer.applied()
        if applied:
            headers["Preference-Applied"] = applied
        if full:
            headers.update(profile_headers(call))
            return json_response(result.payload(accept), 200, headers, accept)
        return Response(status_code=204, headers=headers)


def combine(results: list[ResultRow]) -> ResultRow:
    """Several batches of one insert, presented as one result."""
    if len(results) == 1:
        return results[0]
    bodies = [r.body.strip()[1:-1] for r in results if r.rows]
    firsts = [r.first for r in results if r.first is not None]
    return ResultRow(
        None,
        sum(r.rows for r in results),
        "[" + ", ".join(bodies) + "]",
        firsts[0] if firsts else None,
    )


def location(table: Table, row: dict[str, Any]) -> str:
    """``/table?pk=eq.value`` for return=headers-only, as PostgREST builds it."""
    params = [(c, f"eq.{row.get(c)}") for c in table.pk]
    return f"/{table.name}?{urlencode(params)}"
