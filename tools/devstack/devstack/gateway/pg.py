"""Run one request in one transaction as the JWT's role, with the GUCs PostgREST sets.

Hosted PostgREST does, per request: ``set_config('search_path', ..)``, ``set_config('role', ..)``,
``set_config('request.jwt.claims', ..)``, ``request.method``, ``request.path``, ``request.headers``
and the role's own settings (all transaction-local), so RLS, ``auth.uid()``, timeouts and friends
behave the same here.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

API_ROLES = frozenset({"anon", "authenticated", "service_role"})
BIGINT_MAX = 2**63 - 1  # integers bound for a bigint (LIMIT, OFFSET, byte counts) are checked against it

SET_REQUEST_GUCS = """
select set_config('search_path', %(search_path)s, true),
       set_config('role', %(role)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.method', %(method)s, true),
       set_config('request.path', %(path)s, true),
       set_config('request.headers', %(headers)s, true),
       -- PostgREST's "impersonated role settings" (anon's 3 s statement_timeout on hosted): SET ROLE
       -- alone would not apply them. Read once per gateway (RoleSettings), as PostgREST does.
       (select count(set_config(key, value, true)) from jsonb_each_text(%(settings)s::jsonb))
"""


ROLE_SETTINGS = """
select r.rolname, s.setconfig
from pg_db_role_setting s join pg_roles r on r.oid = s.setrole
where r.rolname = any(%(roles)s)
  and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
order by s.setdatabase  -- the database's own settings come last and win
"""


class RoleSettings:
    """The API roles' own settings (ALTER ROLE ... SET), loaded on first use and again after
    ``NOTIFY pgrst, 'reload config'``, as PostgREST keeps them in its config cache."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool
        self._by_role: dict[str, dict[str, str]] | None = None

    async def for_role(self, role: str) -> dict[str, str]:
        if self._by_role is None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(ROLE_SETTINGS, {"roles": sorted(API_ROLES)})
                by_role: dict[str, dict[str, str]] = {}
                for name, config in await cur.fetchall():
                    for item in config or []:
                        key, _, value = str(item).partition("=")
                        by_role.setdefault(str(name), {})[key] = value
                self._by_role = by_role
        return self._by_role.get(role, {})

    def invalidate(self) -> None:
        self._by_role = None


@dataclass
class TxClock:
    """When a request's transaction began (its connection in hand, BEGIN about to go) and ended
    (COMMIT or ROLLBACK answered): PostgREST's ``transaction`` Server-Timing stage."""

    began: float | None = None
    ended: float | None = None

    @property
    def ms(self) -> float | None:
        return None if self.began is None or self.ended is None else (self.ended - self.began) * 1000


@asynccontextmanager
async def request_transaction(
    pool: AsyncConnectionPool,
    *,
    role: str,
    claims: Mapping[str, Any],
    method: str,
    path: str,
    headers: Mapping[str, str],
    schema: str = "public",
    settings: Mapping[str, str] | None = None,
    clock: TxClock | None = None,
) -> AsyncIterator[AsyncConnection[Any]]:
    """Yield a connection inside a transaction running as ``role``; commits on success.
    ``clock`` is given the transaction's start and end (the pool wait before it left out)."""
    if role not in API_ROLES:
        # The role comes from a verified JWT; anything else is refused before touching the database.
        raise PermissionError(f"role {role!r} is not an API role")
    async with pool.connection() as conn:
        if clock is not None:
            clock.began = time.perf_counter()
        try:
            async with conn.transaction():
                await conn.execute(
                    SET_REQUEST_GUCS,
                    {
                        "search_path": f'"{schema}", extensions' if schema.isidentifier() else "public, extensions",
                        "role": role,
                        "claims": json.dumps(dict(claims)),
                        "method": method,
                        "path": path,
                        "headers": json.dumps({k.lower(): v for k, v in headers.items()}),
                        "settings": json.dumps(dict(settings or {})),
                    },
                )
                yield conn
        finally:
            if clock is not None:
                clock.ended = time.perf_counter()
