"""The request pipeline shared by tables and RPC: credentials, schema, one transaction, error mapping."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from devstack.gateway import pg
from devstack.gateway.context import GatewayContext
from devstack.gateway.offload import QUERY_INLINE_CHARS, cpu_bound
from devstack.gateway.rest import credentials, errors, query
from devstack.gateway.rest.catalog import Catalog, SchemaCache
from devstack.gateway.rest.credentials import Credentials
from devstack.gateway.rest.errors import ApiError
from devstack.gateway.rest.negotiation import schema_for
from devstack.gateway.rest.responses import ResultRow
from devstack.gateway.rest.sqlgen import Frag

T = TypeVar("T")

# Errors that may mean the cached catalog is stale (a column added a moment ago).
STALE_CACHE_CODES = frozenset({"42703", "PGRST204"})


@dataclass
class Call:
    """One API request after authentication: who, which schema, and the raw HTTP request."""

    request: Request
    creds: Credentials
    schema: str
    path: str
    extra_headers: dict[str, str] = field(default_factory=dict)
    tx: pg.TxClock = field(default_factory=pg.TxClock)  # the transaction's stage of Server-Timing

    @property
    def large_query(self) -> bool:
        """Parsing the query string, and the SQL it asks for, is worth moving off the event loop."""
        return len(self.request.url.query) > QUERY_INLINE_CHARS

    async def query(self, *, rpc_read: bool = False) -> query.QueryParams:
        items = list(self.request.query_params.multi_items())
        return await cpu_bound(self.large_query, query.parse_query, items, rpc_read=rpc_read)


class _Rollback(Exception):
    """Carries a finished result out of a transaction that must not commit (tx=rollback)."""

    def __init__(self, outcome: object) -> None:
        super().__init__("rollback requested")
        self.outcome = outcome


class RestService:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.catalog = Catalog(ctx.settings.admin_url, ctx.admin, on_reload_config=ctx.role_settings.invalidate)

    async def run(self, request: Request, path: str, handler: Callable[[Call], Awaitable[Response]]) -> Response:
        creds: Credentials | None = None
        call: Call | None = None
        began = time.perf_counter()
        try:
            creds = credentials.resolve(request, self.ctx.settings)
            jwt_ms = (time.perf_counter() - began) * 1000
            call = Call(request, creds, schema_for(request), path)
            response = await handler(call)
        except ApiError as exc:
            response = exc.response()
        except PermissionError:
            # A JWT whose role is not an API role: Postgres' "role does not exist" (22023 → 401).
            role = creds.role if creds else ""
            response = ApiError(
                401, "22023", f'role "{role}" does not exist', headers={"WWW-Authenticate": "Bearer"}
            ).response()
        except psycopg.Error as exc:
            response = errors.from_pg(exc, authenticated=bool(creds and creds.authenticated)).response()
        if self.ctx.settings.server_timing and call is not None:
            response.headers["Server-Timing"] = server_timing(jwt_ms, call.tx.ms)
        return response

    async def with_catalog(self, schema: str, build: Callable[[SchemaCache], T], *, large: bool = False) -> T:
        """Run ``build`` against the cached catalog; on a miss, reload once and try again.
        ``large``: the statement is big enough to build off the event loop (offload.cpu_bound)."""
        cache = await self.catalog.get(schema)
        try:
            return await cpu_bound(large, build, cache)
        except ApiError as exc:
            if exc.code not in STALE_CACHE_CODES | {"PGRST202", "PGRST205"}:
                raise
        return await cpu_bound(large, build, await self.catalog.get(schema, refresh=True))

    async def transaction(
        self, call: Call, work: Callable[[AsyncConnection[Any]], Awaitable[T]], *, rollback: bool = False
    ) -> T:
        try:
            async with pg.request_transaction(
                self.ctx.api,
                role=call.creds.role,
                claims=call.creds.claims,
                method=call.request.method,
                path=call.path,
                headers=dict(call.request.headers),
                schema=call.schema,
                settings=await self.ctx.role_settings.for_role(call.creds.role),
                clock=call.tx,
            ) as conn:
                outcome = await work(conn)
                if rollback:
                    raise _Rollback(outcome)
                return outcome
        except _Rollback as done:
            result: T = done.outcome  # type: ignore[assignment]
            return result


def server_timing(jwt_ms: float, transaction_ms: float | None) -> str:
    """PostgREST's ``Server-Timing`` header (``server-timing-enabled``), with the stages the gateway
    measures: ``jwt`` (the key and the JWT checked) and ``transaction`` (BEGIN to COMMIT answered)."""
    stages = [f"jwt;dur={jwt_ms:.1f}"]
    if transaction_ms is not None:
        stages.append(f"transaction;dur={transaction_ms:.1f}")
    return ", ".join(stages)


async def fetch_result(conn: AsyncConnection[Any], frag: Frag) -> ResultRow:
    statement, params = frag.flatten()
    cur = await conn.execute(statement, params)
    row = await cur.fetchone()
    assert row is not None
    total, rows, body, first = row
    return ResultRow(total, rows, body, first)


async def fetch_scalar(conn: AsyncConnection[Any], frag: Frag) -> Any:
    statement, params = frag.flatten()
    cur = await conn.execute(statement, params)
    row = await cur.fetchone()
    return row[0] if row else None
