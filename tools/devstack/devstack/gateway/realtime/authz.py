"""Private channel authorization: RLS policies on realtime.messages, evaluated as hosted does.

Read: in one transaction, insert a probe row per extension (as the platform, so RLS does not
apply), switch to the user's role with ``realtime.topic`` and the JWT claims set, and select the
probe ids back; visible means readable. Write: insert a probe as the user's role under a
savepoint; ``insufficient_privilege`` means not writable. Both transactions roll back.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from devstack.gateway.pg import API_ROLES

log = logging.getLogger(__name__)

SET_CONTEXT = """
select set_config('role', %(role)s, true),
       set_config('realtime.topic', %(topic)s, true),
       set_config('request.jwt.claims', %(claims)s, true),
       set_config('request.jwt.claim.sub', %(sub)s, true),
       set_config('request.jwt.claim.role', %(role)s, true),
       set_config('request.headers', %(headers)s, true)
"""
INSERT_PROBE = "insert into realtime.messages (id, topic, extension) values (%s, %s, %s)"
SELECT_PROBES = "select id from realtime.messages where id = any(%s)"


@dataclass(frozen=True)
class AuthContext:
    topic: str  # the channel name, without "realtime:"
    claims: dict[str, Any]
    headers: dict[str, str]

    def params(self) -> dict[str, str]:
        role = self.claims.get("role")
        if role not in API_ROLES:
            # The admin pool's session switches into this role: never let a token name another one.
            raise PolicyError(f"role {role!r} is not an API role")
        return {
            "role": str(role),
            "topic": self.topic,
            "claims": json.dumps(self.claims),
            "sub": str(self.claims.get("sub") or ""),
            "headers": json.dumps(self.headers),
        }


class PolicyError(Exception):
    """A policy could not be evaluated (bad role, failing policy SQL): treated as no permission."""


def _extensions(presence_enabled: bool) -> list[str]:
    return ["broadcast", "presence"] if presence_enabled else ["broadcast"]


@asynccontextmanager
async def _rolled_back(pool: AsyncConnectionPool) -> AsyncIterator[AsyncConnection[Any]]:
    """A connection inside a transaction that always rolls back (probes and settings vanish);
    a database error while checking becomes PolicyError."""
    try:
        async with pool.connection() as conn, conn.transaction(force_rollback=True):
            yield conn
    except psycopg.Error as exc:
        raise PolicyError(str(exc)) from exc


async def can_read(pool: AsyncConnectionPool, ctx: AuthContext, *, presence_enabled: bool) -> dict[str, bool]:
    """Extension → readable, for the extensions checked."""
    probes = {ext: uuid.uuid4() for ext in _extensions(presence_enabled)}
    params = ctx.params()
    async with _rolled_back(pool) as conn:
        for ext, probe_id in probes.items():
            await conn.execute(INSERT_PROBE, (probe_id, ctx.topic, ext))
        await conn.execute(SET_CONTEXT, params)
        cur = await conn.execute(SELECT_PROBES, (list(probes.values()),))
        seen = {row[0] for row in await cur.fetchall()}
    return {ext: probe_id in seen for ext, probe_id in probes.items()}


async def can_write(pool: AsyncConnectionPool, ctx: AuthContext, *, presence_enabled: bool) -> dict[str, bool]:
    params = ctx.params()
    result: dict[str, bool] = {}
    async with _rolled_back(pool) as conn:
        await conn.execute(SET_CONTEXT, params)
        for ext in _extensions(presence_enabled):
            result[ext] = await _insert_allowed(conn, ctx.topic, ext)
    return result


async def _insert_allowed(conn: AsyncConnection[Any], topic: str, ext: str) -> bool:
    try:
        async with conn.transaction():  # a savepoint inside the outer transaction
            await conn.execute(INSERT_PROBE, (uuid.uuid4(), topic, ext))
    except errors.InsufficientPrivilege:
        return False
    return True
