"""The request pipeline shared by tables and RPC: credentials, schema, one transaction, error mapping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg
from psycopg import AsyncConnection, sql
from starlette.requests import Request
from starlette.responses import Response

from devstack.gateway import pg
from devstack.gateway.context import GatewayContext
from devstack.gateway.rest import credentials, errors
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


class _Rollback(Exception):
    """Carries a finished result out of a transaction that must not commit (tx=rollback)."""

    def __init__(self, outcome: object) -> None:
        super().__init__("rollback requested")
        self.outcome = outcome


class RestService:
    def __init__(self, ctx: GatewayContext) -> None:
        self.ctx = ctx
        self.catalog = Catalog(ctx.settings.admin_url, ctx.admin)

    async def run(self, request: Request, path: str, handler: Callable[[Call], Awaitable[Response]]) -> Response:
        creds: Credentials | None = None
        try:
            creds = credentials.resolve(request, self.ctx.settings)
            _refuse_nul_in_query(request)
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
        return response

    async def with_catalog(self, schema: str, build: Callable[[SchemaCache], T]) -> T:
        """Run ``build`` against the cached catalog; on a miss, reload once and try again."""
        cache = await self.catalog.get(schema)
        try:
            return build(cache)
        except ApiError as exc:
            if exc.code not in STALE_CACHE_CODES | {"PGRST202", "PGRST205"}:
                raise
        return build(await self.catalog.get(schema, refresh=True))

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
            ) as conn:
                outcome = await work(conn)
                if rollback:
                    raise _Rollback(outcome)
                return outcome
        except _Rollback as done:
            result: T = done.outcome  # type: ignore[assignment]
            return result


def _refuse_nul_in_query(request: Request) -> None:
    """Filters and RPC arguments become bound text parameters, which cannot hold NUL."""
    for name, value in request.query_params.multi_items():
        if "\x00" in name or "\x00" in value:
            raise errors.nul_in_query(name.replace("\x00", "\\0"))


async def fetch_result(conn: AsyncConnection[Any], query: Frag) -> ResultRow:
    cur = await conn.execute(sql.Composed([query.query]), query.params)
    row = await cur.fetchone()
    assert row is not None
    total, rows, body, first = row
    return ResultRow(total, rows, body, first)


async def fetch_scalar(conn: AsyncConnection[Any], query: Frag) -> Any:
    cur = await conn.execute(sql.Composed([query.query]), query.params)
    row = await cur.fetchone()
    return row[0] if row else None
