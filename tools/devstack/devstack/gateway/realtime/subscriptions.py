"""Check a join's postgres_changes bindings against the database, as hosted does when it inserts
``realtime.subscription`` rows: the table must be in the publication, filter columns must exist
and filter values must cast to the column type, the JWT role must exist. All-or-nothing: one bad
binding disables the channel's postgres_changes and is reported as a ``system`` error.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from devstack.gateway.realtime import bindings as parsing
from devstack.gateway.realtime.bindings import Binding, BindingError
from devstack.gateway.realtime.wal import PUBLICATION

ROLE_EXISTS = "select 1 from pg_roles where rolname = %s"
# '*' means any, as hosted's `like (case $2 when '*' then '%' else $2 end)` (no escapes).
IN_PUBLICATION = """
select 1 from pg_publication_tables
where pubname = %(pub)s
  and (%(schema)s = '*' or schemaname = %(schema)s)
  and (%(table)s = '*' or tablename = %(table)s)
limit 1
"""
CHECK_FILTER = """
select realtime.devstack_filter_matches(%(op)s, a.atttypid::regtype, null, %(value)s, %(negate)s, true)
from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %(schema)s and c.relname = %(table)s and a.attname = %(column)s and a.attnum > 0
  and not a.attisdropped
"""


def _describe(b: Binding) -> str:
    filters = ", ".join(json.dumps([f.column, f.op, f.value, f.negate])[1:-1] for f in b.filters)
    select = json.dumps(list(b.select)) if b.select else "nil"
    return f"[event: {b.event}, schema: {b.schema}, table: {b.table}, filters: [{{{filters}}}], select: {select}]"


class Subscriptions:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    @staticmethod
    def ids(requested: list[dict[str, Any]]) -> list[int]:
        return [parsing.binding_id(p) for p in requested]

    async def resolve(self, requested: list[dict[str, Any]], role: str) -> tuple[list[Binding], str | None]:
        """The active bindings, or [] and the error text Realtime would push."""
        if not requested:
            return [], None
        try:
            parsed = [parsing.parse(p) for p in requested]
        except BindingError as exc:
            return [], str(exc)
        async with self.pool.connection() as conn:
            for b in parsed:
                try:
                    async with conn.transaction():
                        error = await self._check(conn, b, role)
                except psycopg.Error as exc:
                    error = _exception_text(b, exc.sqlstate or "XX000", exc.diag.message_primary or str(exc))
                if error is not None:
                    return [], error
        return parsed, None

    async def _check(self, conn: psycopg.AsyncConnection[Any], b: Binding, role: str) -> str | None:
        cur = await conn.execute(ROLE_EXISTS, (role,))
        if await cur.fetchone() is None:
            return _exception_text(b, "22023", f'role "{role}" does not exist')
        cur = await conn.execute(IN_PUBLICATION, {"pub": PUBLICATION, "schema": b.schema, "table": b.table})
        if await cur.fetchone() is None:
            return (
                "Unable to subscribe to changes with given parameters. Please check Realtime is enabled for the "
                f"given connect parameters: {_describe(b)}"
            )
        for f in b.filters:
            if "*" in (b.schema, b.table):
                break
            cur = await conn.execute(
                CHECK_FILTER,
                {
                    "op": f.op,
                    "value": f.value,
                    "negate": f.negate,
                    "schema": b.schema,
                    "table": b.table,
                    "column": f.column,
                },
            )
            if await cur.fetchone() is None:
                # Hosted's subscription_check_filters trigger raises this.
                return _exception_text(b, "P0001", f"invalid column for filter {f.column}")
        return None


def _exception_text(b: Binding, sqlstate: str, message: str) -> str:
    return (
        "Unable to subscribe to changes with given parameters. An exception happened so please check your "
        f"connect parameters: {_describe(b)}. Exception: ERROR {sqlstate} {message}"
    )
