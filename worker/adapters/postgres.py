"""QueueStore over psycopg 3 straight to Postgres, and wake-ups by LISTEN on the worker's own channel.

For self-hosted Postgres, and to measure what the REST hop costs. Connects as a role allowed
to execute the worker functions (the database owner, or service_role on Supabase).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from worker.adapters.rpc_store import RpcStore
from worker.adapters.sql_queries import queries
from worker.core.errors import StoreError, StoreUnavailable, store_error
from worker.core.job_rows import read_job_text, read_time, read_wake
from worker.core.jobs import JobKind, JobRow, Wake
from worker.core.ports import VIEWS
from worker.core.retry import RetryPolicy

log = logging.getLogger("worker.postgres")
CHECK_IDLE_SECONDS = 10.0  # check a pooled connection before use only if idle longer than this


def _encode(args: dict[str, Any]) -> dict[str, Any]:
    # psycopg adapts uuids, datetimes and lists itself; JSON objects (and lists of them) must be
    # marked as jsonb, or a list would become a Postgres array.
    return {k: Jsonb(v) if _is_json_document(v) else v for k, v in args.items()}


def _is_json_document(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, list) and any(isinstance(v, dict) for v in value))


class PostgresStore(RpcStore):
    wake_via = "notify"  # PostgresWakeups LISTENs: a Realtime broadcast to it would be a wasted row

    def __init__(self, dsn: str, *, max_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=connect_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(connect_timeout))},
            check=self._check_if_idle,  # drop connections a database restart broke
            reconnect_timeout=0,  # keep trying forever: the worker waits out an outage
        )
        self._opened = False
        self._last_used: weakref.WeakKeyDictionary[AsyncConnection[DictRow], float] = weakref.WeakKeyDictionary()
        self.clock = time.monotonic

    async def _check_if_idle(self, conn: AsyncConnection[DictRow]) -> None:
        # A check is a round trip: on every checkout it halved the drain rate (bench/FIXES.md).
        # A connection used moments ago is trusted; if it broke since, the call fails, the pool
        # drops it and the worker retries, as for any other database hiccup.
        if conn.broken or self.clock() - self._last_used.get(conn, float("-inf")) > CHECK_IDLE_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

    async def _open(self) -> None:
        if not self._opened:
            await self.pool.open(wait=False)
            self._opened = True

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[AsyncConnection[DictRow]]:
        await self._open()
        try:
            async with self.pool.connection() as conn:
                yield conn
                self._last_used[conn] = self.clock()
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(f"no database connection: {exc}") from exc

    async def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            cur = await conn.execute(queries()[name], params)
            return list(await cur.fetchall()) if cur.description else []

    async def _jobs(self, name: str, args: dict[str, Any]) -> list[JobRow]:
        read = (read_job_text(row["job"]) for row in await self._rows(name, _encode(args)))
        return [job for job in read if job is not None]

    async def _void(self, name: str, args: dict[str, Any]) -> None:
        await self._rows(name, _encode(args))

    async def _records(self, name: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        return await self._rows(name, _encode(args))

    async def _scalar(self, name: str, args: dict[str, Any]) -> Any:
        rows = await self._rows(name, _encode(args))
        return rows[0]["value"] if rows else None

    async def _kind_model_rows(self) -> list[dict[str, Any]]:
        return await self._rows("kind_models")

    async def reap_expired_leases(self) -> int:
        rows = await self._rows("reap_expired_leases")
        return int(rows[0]["reaped"])

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None:
        rows = await self._rows("next_job_run_at", {"kinds": list(kinds) if kinds else None})
        return read_time(rows[0]["run_at"])

    async def job_kinds(self) -> list[JobKind]:
        return [JobKind.model_validate(row) for row in await self._rows("job_kinds")]

    async def read_view(self, view: str) -> list[dict[str, Any]]:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; known: {', '.join(sorted(VIEWS))}")
        return await self._rows(view)

    async def close(self) -> None:
        if self._opened:
            await self.pool.close()


def _translate(exc: psycopg.Error) -> StoreError:
    code = exc.sqlstate
    if code is None or isinstance(exc, psycopg.OperationalError) or code.startswith(("08", "57P")):
        # Connection failures, admin shutdown, server restarting: the database is away, not wrong.
        return StoreUnavailable(str(exc).strip() or type(exc).__name__, code=code or "unavailable")
    return store_error(code, str(exc).strip())


def wake_channel(worker_id: str) -> str:
    """The worker's NOTIFY channel, as private.wake_channel names it (an identifier whatever the id)."""
    return "worker_wake_" + hashlib.md5(worker_id.encode(), usedforsecurity=False).hexdigest()


class PostgresWakeups:
    """LISTEN on this worker's wake channel (the database NOTIFYs it when it wakes this parked
    worker) on a dedicated connection; reconnects with backoff on its own."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None) -> None:
        self.dsn = dsn
        self.retry = retry or RetryPolicy(base=0.5, cap=10.0)
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self, worker_id: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        channel = wake_channel(worker_id)
        self._task = asyncio.create_task(self._listen(channel, on_wake, on_joined), name=f"listen-{channel}")

    async def _listen(self, channel: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    await conn.execute(sql.SQL("listen {}").format(sql.Identifier(channel)))
                    self._connected, failures = True, 0
                    on_joined()
                    async for note in conn.notifies():
                        if (wake := read_wake(note.payload)) is not None:
                            on_wake(wake)
            except psycopg.Error as exc:
                failures += 1
                log.warning("LISTEN connection lost (%s); reconnecting", str(exc).strip()[:200])
            finally:
                self._connected = False
            await asyncio.sleep(self.retry.delay(max(1, failures), 0.5))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
