"""QueueStore over psycopg 3 straight to Postgres, and wake-ups by LISTEN jobs_queued.

For self-hosted Postgres, and to measure what the REST hop costs. Connects as a role allowed
to execute the worker functions (the database owner, or service_role on Supabase).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection, sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import ValidationError

from worker.adapters.sql_queries import queries
from worker.errors import StoreError, StoreUnavailable, store_error
from worker.jobs import Job, JobHint, JobKind
from worker.retry import RetryPolicy

log = logging.getLogger("worker.postgres")
VIEWS = frozenset({"job_stats", "active_jobs", "pending_jobs_queue"})


class PostgresStore:
    def __init__(self, dsn: str, *, max_size: int = 10, connect_timeout: float = 5.0) -> None:
        self.pool: AsyncConnectionPool[AsyncConnection[DictRow]] = AsyncConnectionPool(
            dsn,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=connect_timeout,
            kwargs={"autocommit": True, "row_factory": dict_row, "connect_timeout": max(1, int(connect_timeout))},
            check=AsyncConnectionPool.check_connection,  # drop connections a database restart broke
            reconnect_timeout=0,  # keep trying forever: the worker waits out an outage
        )
        self._opened = False

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
        except psycopg.Error as exc:
            raise _translate(exc) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable(f"no database connection: {exc}") from exc

    async def _rows(self, name: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        async with self._conn() as conn:
            cur = await conn.execute(queries()[name], params)
            return list(await cur.fetchall()) if cur.description else []

    async def _jobs(self, name: str, params: dict[str, Any]) -> list[Job]:
        return [Job.model_validate(row) for row in await self._rows(name, params)]

    async def _job(self, name: str, params: dict[str, Any]) -> Job:
        rows = await self._jobs(name, params)
        if not rows:
            raise StoreError(f"{name}: returned no row")
        return rows[0]

    async def claim_jobs(
        self, worker_id: str, kinds: Sequence[str] | None, max_jobs: int, lease_seconds: int
    ) -> list[Job]:
        params = {
            "worker_id": worker_id,
            "kinds": list(kinds) if kinds else None,
            "max_jobs": max_jobs,
            "lease_seconds": lease_seconds,
        }
        return await self._jobs("claim_jobs", params)

    async def renew_leases(self, worker_id: str, job_ids: Sequence[uuid.UUID], lease_seconds: int) -> list[Job]:
        params = {"worker_id": worker_id, "job_ids": list(job_ids), "lease_seconds": lease_seconds}
        return await self._jobs("renew_leases", params)

    async def report_progress(
        self,
        job_id: uuid.UUID,
        worker_id: str,
        *,
        percent: float | None = None,
        message: str | None = None,
        partial: str | None = None,
    ) -> None:
        params = {"job_id": job_id, "worker_id": worker_id, "percent": percent, "message": message, "partial": partial}
        await self._rows("report_progress", params)

    async def complete_job(self, job_id: uuid.UUID, worker_id: str, result: dict[str, Any]) -> Job:
        return await self._job("complete_job", {"job_id": job_id, "worker_id": worker_id, "result": Jsonb(result)})

    async def fail_job(self, job_id: uuid.UUID, worker_id: str, error: dict[str, Any], retryable: bool) -> Job:
        params = {"job_id": job_id, "worker_id": worker_id, "error": Jsonb(error), "retryable": retryable}
        return await self._job("fail_job", params)

    async def defer_job(self, job_id: uuid.UUID, worker_id: str, run_at: datetime, reason: str) -> Job:
        params = {"job_id": job_id, "worker_id": worker_id, "run_at": run_at, "reason": reason}
        return await self._job("defer_job", params)

    async def release_jobs(self, worker_id: str, job_ids: Sequence[uuid.UUID] | None) -> list[Job]:
        ids = list(job_ids) if job_ids is not None else None
        return await self._jobs("release_jobs", {"worker_id": worker_id, "job_ids": ids})

    async def reap_expired_leases(self) -> int:
        rows = await self._rows("reap_expired_leases")
        return int(rows[0]["reaped"])

    async def next_run_at(self, kinds: Sequence[str] | None) -> datetime | None:
        rows = await self._rows("next_job_run_at", {"kinds": list(kinds) if kinds else None})
        value: datetime | None = rows[0]["run_at"]
        return value

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


class PostgresWakeups:
    """LISTEN jobs_queued on a dedicated connection; reconnects with backoff on its own."""

    def __init__(self, dsn: str, *, retry: RetryPolicy | None = None) -> None:
        self.dsn = dsn
        self.retry = retry or RetryPolicy(base=0.5, cap=10.0)
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self, on_job: Callable[[JobHint], None], on_joined: Callable[[], None]) -> None:
        self._task = asyncio.create_task(self._listen(on_job, on_joined), name="listen-jobs_queued")

    async def _listen(self, on_job: Callable[[JobHint], None], on_joined: Callable[[], None]) -> None:
        failures = 0
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                    await conn.execute(sql.SQL(queries()["listen"]))
                    self._connected, failures = True, 0
                    on_joined()
                    async for note in conn.notifies():
                        try:
                            on_job(JobHint.model_validate(json.loads(note.payload)))
                        except (ValueError, ValidationError):
                            log.warning("ignoring malformed jobs_queued payload %r", note.payload[:200])
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
