"""The schema cache: tables, views and functions of an exposed schema, read from pg_catalog.

Loaded per schema on first use, dropped on ``NOTIFY pgrst, 'reload schema'`` (as PostgREST does)
and reloaded once when a request misses, so a table created a moment ago is found without waiting
for the notification. Privileges are not filtered here: the query runs as the request's role and
Postgres itself answers 42501 where the role lacks them.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger(__name__)

TABLES_SQL = """
select c.relname as name,
       coalesce((select json_agg(json_build_object(
                   'name', a.attname,
                   'type', format_type(a.atttypid, a.atttypmod),
                   'generated', a.attgenerated <> '' or a.attidentity = 'a')
                 order by a.attnum)
                 from pg_attribute a
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]') as columns,
       coalesce((select array_agg(a.attname::text order by k.ord)
                 from pg_index i
                 cross join unnest(i.indkey) with ordinality as k(attnum, ord)
                 join pg_attribute a on a.attrelid = c.oid and a.attnum = k.attnum
                 where i.indrelid = c.oid and i.indisprimary), '{}') as pk
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %s and c.relkind in ('r', 'v', 'm', 'f', 'p')
"""

FUNCTIONS_SQL = """
select p.proname as name,
       p.provolatile as volatility,
       p.proretset as returns_set,
       p.prorettype = 'void'::regtype as returns_void,
       rt.typtype as return_typtype,
       p.prorettype = 'record'::regtype as returns_record,
       p.pronargdefaults as n_defaults,
       coalesce((select json_agg(json_build_object(
                   'name', coalesce(a.name, ''), 'type', format_type(a.type, null), 'mode', coalesce(a.mode, 'i'),
                   'type_schema', bn.nspname, 'type_name', bt.typname, 'type_is_array', et.oid is not null)
                 order by a.ord)
                 from unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]), p.proargmodes::text[], p.proargnames)
                      with ordinality as a(type, mode, name, ord)
                 join pg_type at on at.oid = a.type
                 left join pg_type et on et.oid = at.typelem and at.typsubscript = 'array_subscript_handler'::regproc
                 join pg_type bt on bt.oid = coalesce(et.oid, at.oid)
                 join pg_namespace bn on bn.oid = bt.typnamespace), '[]') as args,
       coalesce((select json_agg(attr.attname::text order by attr.attnum)
                 from pg_attribute attr
                 where attr.attrelid = rt.typrelid and attr.attnum > 0 and not attr.attisdropped), '[]')
         as composite_columns
from pg_proc p
join pg_namespace n on n.oid = p.pronamespace
join pg_type rt on rt.oid = p.prorettype
where n.nspname = %s and p.prokind = 'f'
"""


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    generated: bool


@dataclass(frozen=True)
class Table:
    schema: str
    name: str
    columns: dict[str, Column]
    pk: tuple[str, ...]


@dataclass(frozen=True)
class Param:
    name: str
    type: str  # format_type() text, for messages and comparisons only; never put into SQL
    has_default: bool
    variadic: bool
    type_schema: str
    type_name: str  # the element type's name when type_is_array
    type_is_array: bool

    def type_sql(self) -> sql.Composable:
        """The type as quoted identifiers (``"schema"."name"`` plus ``[]``), never from raw text."""
        name = sql.Identifier(self.type_schema, self.type_name)
        return sql.SQL("{}[]").format(name) if self.type_is_array else name


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    params: tuple[Param, ...]
    volatility: str  # i, s, v
    returns_set: bool
    returns_void: bool
    # Column names of a composite / RETURNS TABLE / OUT-parameter result; empty for scalars.
    result_columns: tuple[str, ...]

    @property
    def returns_composite(self) -> bool:
        return bool(self.result_columns)

    @property
    def single_json_param(self) -> bool:
        """One unnamed json/jsonb parameter: PostgREST passes the whole body to it."""
        return len(self.params) == 1 and not self.params[0].name and self.params[0].type in ("json", "jsonb")

    def signature(self) -> str:
        args = ", ".join(f"{p.name} => {p.type}" for p in self.params)
        return f"{self.schema}.{self.name}({args})"


@dataclass
class SchemaCache:
    tables: dict[str, Table] = field(default_factory=dict)
    functions: dict[str, list[Function]] = field(default_factory=dict)

    def suggest_table(self, name: str) -> str | None:
        found = difflib.get_close_matches(name, list(self.tables), n=1, cutoff=0.6)
        return found[0] if found else None

    def suggest_function(self, name: str) -> str | None:
        found = difflib.get_close_matches(name, list(self.functions), n=1, cutoff=0.6)
        return found[0] if found else None


def _function(schema: str, row: dict[str, Any]) -> Function:
    args: list[dict[str, Any]] = row["args"]
    inputs = [a for a in args if a["mode"] in ("i", "b", "v")]
    n_defaults = int(row["n_defaults"])
    params = tuple(
        Param(
            a["name"],
            a["type"],
            has_default=i >= len(inputs) - n_defaults,
            variadic=a["mode"] == "v",
            type_schema=a["type_schema"],
            type_name=a["type_name"],
            type_is_array=a["type_is_array"],
        )
        for i, a in enumerate(inputs)
    )
    if row["return_typtype"] == "c":
        result_columns = tuple(row["composite_columns"])
    elif row["returns_record"]:
        result_columns = tuple(a["name"] for a in args if a["mode"] in ("o", "b", "t"))
    else:
        result_columns = ()
    return Function(
        schema=schema,
        name=row["name"],
        params=params,
        volatility=row["volatility"],
        returns_set=row["returns_set"],
        returns_void=row["returns_void"],
        result_columns=result_columns,
    )


async def load(conn: psycopg.AsyncConnection[Any], schema: str) -> SchemaCache:
    cache = SchemaCache()
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(TABLES_SQL, [schema])
        for row in await cur.fetchall():
            columns = {c["name"]: Column(c["name"], c["type"], c["generated"]) for c in row["columns"]}
            cache.tables[row["name"]] = Table(schema, row["name"], columns, tuple(row["pk"]))
        await cur.execute(FUNCTIONS_SQL, [schema])
        for row in await cur.fetchall():
            cache.functions.setdefault(row["name"], []).append(_function(schema, row))
    return cache


class Catalog:
    """Per-schema caches, loaded through the admin pool and dropped on ``NOTIFY pgrst``
    (``'reload config'`` calls ``on_reload_config``: the role settings are dropped too)."""

    def __init__(
        self, admin_url: str, pool: AsyncConnectionPool, *, on_reload_config: Callable[[], None] = lambda: None
    ) -> None:
        self._admin_url = admin_url
        self._on_reload_config = on_reload_config
        self._pool = pool
        self._caches: dict[str, SchemaCache] = {}
        self._lock = asyncio.Lock()
        self._listener: asyncio.Task[None] | None = None

    async def get(self, schema: str, *, refresh: bool = False) -> SchemaCache:
        if not refresh and schema in self._caches:
            return self._caches[schema]
        async with self._lock:
            async with self._pool.connection() as conn:
                cache = await load(conn, schema)
            self._caches[schema] = cache
            return cache

    def invalidate(self) -> None:
        self._caches.clear()

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen(), name="rest-schema-cache-listener")

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        """LISTEN pgrst on a dedicated connection; reconnect after failures."""
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._admin_url, autocommit=True) as conn:
                    await conn.execute("listen pgrst")
                    # Anything changed while we were not listening.
                    self.invalidate()
                    self._on_reload_config()
                    async for note in conn.notifies():
                        if note.payload in ("", "reload schema"):
                            self.invalidate()
                        if note.payload in ("", "reload config"):
                            self._on_reload_config()
            except asyncio.CancelledError:
                raise
            except Exception:  # any connection failure: wait and listen again
                log.warning("schema cache listener lost its connection; retrying", exc_info=True)
                await asyncio.sleep(1.0)
