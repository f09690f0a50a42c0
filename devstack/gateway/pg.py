"""Run one request in one transaction as the JWT's role, with the GUCs PostgREST sets.

Hosted PostgREST does, per request: ``set_config('search_path', ..)``, ``set_config('role', ..)``,
``set_config('request.jwt.claims', ..)``, ``request.method``, ``request.path``, ``request.headers``
and the role's own settings (all transaction-local), so RLS, ``auth.uid()``, timeouts and friends
behave the same here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
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
       -- PostgREST's "impersonated role settings": the role's own settings (anon's 3 s and
       -- authenticated's 8 s statement_timeout on hosted) hold for the request, as SET ROLE alone
       -- would not apply them.
       (select count(set_config(split_part(c, '=', 1), substr(c, strpos(c, '=') + 1), true))
          from pg_db_role_setting s cross join unnest(s.setconfig) c
         where s.setrole = %(role)s::regrole
           and s.setdatabase in (0, (select oid from pg_database where datname = current_database())))
"""


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
) -> AsyncIterator[AsyncConnection[Any]]:
    """Yield a connection inside a transaction running as ``role``; commits on success."""
    if role not in API_ROLES:
        # The role comes from a verified JWT; anything else is refused before touching the database.
        raise PermissionError(f"role {role!r} is not an API role")
    async with pool.connection() as conn, conn.transaction():
        await conn.execute(
            SET_REQUEST_GUCS,
            {
                "search_path": f'"{schema}", extensions' if schema.isidentifier() else "public, extensions",
                "role": role,
                "claims": json.dumps(dict(claims)),
                "method": method,
                "path": path,
                "headers": json.dumps({k.lower(): v for k, v in headers.items()}),
            },
        )
        yield conn
