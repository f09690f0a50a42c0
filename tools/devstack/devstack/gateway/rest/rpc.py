"""/rest/v1/rpc/<fn>: call a function with named arguments (POST body, or query string for GET/HEAD)."""

from __future__ import annotations

import json
from typing import Any

from psycopg import AsyncConnection, sql
from starlette.responses import Response

from devstack.gateway.rest.catalog import Function, SchemaCache
from devstack.gateway.rest.errors import (
    ApiError,
    ambiguous_function,
    function_not_found,
    invalid_body,
    out_of_range,
    unsupported_method,
)
from devstack.gateway.rest.negotiation import Body, accept_for, prefer_for, read_json
from devstack.gateway.rest.responses import ResultRow, content_range, json_response, read_status
from devstack.gateway.rest.service import Call, RestService, fetch_result
from devstack.gateway.rest.sqlgen import Frag, Relation, join, lit, param, result_query, where_clause
from devstack.gateway.rest.tables import MAX_ROWS, page_range, profile_headers

CALL_ALIAS = "pgrst_call"


def choose(cache: SchemaCache, schema: str, name: str, keys: list[str], *, post: bool) -> Function:
    """PostgREST's overload choice: every argument named by a parameter, every required one given."""
    overloads = cache.functions.get(name, [])
    given = set(keys)
    matches = [
        f
        for f in overloads
        if given <= {p.name for p in f.params} and {p.name for p in f.params if not p.has_default} <= given
    ]
    if not matches and post:
        matches = [f for f in overloads if f.single_json_param]
    if len(matches) > 1:
        exact = [f for f in matches if {p.name for p in f.params} == given]
        if len(exact) == 1:
            return exact[0]
        raise ambiguous_function([f.signature() for f in matches])
    if not matches:
        hint: str | None
        if overloads:
            best = min(overloads, key=lambda f: len({p.name for p in f.params} ^ given))
            names = ", ".join(sorted(p.name for p in best.params))
            hint = f"Perhaps you meant to call the function {schema}.{name}({names})"
        else:
            suggestion = cache.suggest_function(name)
            hint = f"Perhaps you meant to call the function {schema}.{suggestion}" if suggestion else None
        raise function_not_found(schema, name, sorted(keys), hint)
    return matches[0]


def call_source(fn: Function, body: Body) -> Frag:
    """``from json_to_record($1) as _b(a int, ...), lateral schema.fn(a => _b.a, ...)`` (types from the catalog)."""
    qualified = Frag(sql.Identifier(fn.schema, fn.name))
    if fn.single_json_param:
        call = qualified + lit("(") + param(body.text) + lit("::") + Frag(fn.params[0].type_sql()) + lit(")")
        prefix = lit(" from ")
    else:
        given = [p for p in fn.params if p.name in body.value]
        named = join(
            ", ",
            (
                lit("variadic " if p.variadic else "")
                + Frag(sql.SQL("{} => _b.{}").format(sql.Identifier(p.name), sql.Identifier(p.name)))
                for p in given
            ),
        )
        call = qualified + lit("(") + named + lit(")")
        if given:
            definitions = join(", ", (Frag(sql.Identifier(p.name)) + lit(" ") + Frag(p.type_sql()) for p in given))
            # json_to_record ignores the body's other keys; the text keeps numbers as sent.
            prefix = (
                lit(" from json_to_record(")
                + param(body.text)
                + lit("::json) as _b(")
                + definitions
                + lit("), lateral ")
            )
        else:
            prefix = lit(" from ")
    alias = Frag(sql.Identifier(CALL_ALIAS))
    if fn.returns_composite:
        return lit("select ") + alias + lit(".*") + prefix + call + lit(" as ") + alias
    return (
        lit("select ")
        + alias
        + lit(".pgrst_scalar")
        + prefix
        + lit("(select ")
        + call
        + lit(" as pgrst_scalar) as ")
        + alias
    )


class RpcHandler:
    def __init__(self, service: RestService) -> None:
        self.service = service

    async def __call__(self, call: Call) -> Response:
        method = call.request.method
        name: str = call.request.path_params["function"]
        read = method in ("GET", "HEAD")
        if not read and method != "POST":
            raise unsupported_method(method)
        q = await call.query(rpc_read=read)
        accept, prefer = accept_for(call.request), prefer_for(call.request)
        if read:
            body = Body(json.dumps(q.plain), dict(q.plain))
        else:
            sent = await read_json(call.request, self.service.ctx.settings.max_body_bytes)
            body = sent if sent is not None else Body("{}", {})
        offset, limit = page_range(call, q)

        def build(cache: SchemaCache) -> tuple[Function, Frag]:
            # A bare array/scalar body only fits a single unnamed json parameter.
            keys = list(body.value) if isinstance(body.value, dict) else []
            fn = choose(cache, call.schema, name, keys, post=not read)
            if read and fn.volatility == "v":
                raise ApiError(405, "PGRST101", f"Cannot use the {method} method on RPC")
            if not isinstance(body.value, dict) and not fn.single_json_param:
                raise invalid_body()
            rel = Relation(CALL_ALIAS, fn.result_columns or ("pgrst_scalar",))
            source = call_source(fn, body)
            if fn.returns_composite:
                source = source + where_clause(rel, q.filters, q.logic)
            query = result_query(
                source,
                rel,
                q.select,
                q.order if fn.returns_composite else (),
                limit=limit if fn.returns_set else None,
                offset=offset if fn.returns_set else 0,
                count=prefer.count is not None and fn.returns_set,
                strip_nulls=accept.strip_nulls,
                scalar=not fn.returns_composite,
            )
            return fn, query

        fn, query = await self.service.with_catalog(call.schema, build, large=call.large_query)

        async def work(conn: AsyncConnection[Any]) -> tuple[ResultRow, str]:
            result = await fetch_result(conn, query)
            if fn.returns_void:
                return result, ""
            if fn.returns_set:
                return result, result.payload(accept)
            # A single value or composite: the bare JSON value / object, never an array.
            return result, result.first or "null"

        result, answer = await self.service.transaction(call, work, rollback=prefer.rollback)
        lower = offset if fn.returns_set else 0
        status = read_status(lower, result.rows, result.total)
        if status == 416:
            raise out_of_range(lower, result.total or 0)
        headers = {"Content-Range": content_range(lower, result.rows, result.total)}
        applied = prefer.applied()
        if applied and (prefer.count or prefer.rollback):
            headers["Preference-Applied"] = ", ".join(v for v in applied.split(", ") if not v.startswith("return="))
        if fn.returns_void:
            return Response(status_code=204, headers=headers)
        headers.update(profile_headers(call))
        if method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=accept.content_type)
        return json_response(answer, status, headers, accept)


__all__ = ["MAX_ROWS", "RpcHandler"]
