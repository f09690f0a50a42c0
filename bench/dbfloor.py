"""Two baselines for `bench.dbcost`: what draining the same no-op queue on one connection costs
the database with less than the product does.

``bare_updates``: our table, indexes and fill, but the two row updates a job needs done as plain
statements with every trigger of ``public.jobs`` off: the claim (skip-locked, in claim order) and
the success (by id, checked against the worker), in one transaction per batch. No checks, caps,
events, messages or wake-ups: the least a queue that keeps its finished rows in this table could
spend.

``pgqueuer``: pgqueuer's own dequeue and acknowledgement statements (``Queries.dequeue`` and
``Queries.log_jobs`` over asyncpg, as its worker sends them: two round trips per batch) on its own
schema, filled as the drain scenario fills it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import asyncpg
import psycopg
from pgqueuer import AsyncpgDriver, Queries
from pgqueuer.ports.repository import EntrypointExecutionParameter

from bench.databases import scratch_database, url
from bench.systems.ours import OursSystem
from bench.systems.pgqueuer_queue import ENTRYPOINT, PgqueuerSystem
from devstack import paths

WORKER = "bench-dbfloor"
CLAIM = """
update public.jobs j
set status = 'running', worker_id = %(worker)s, attempts = j.attempts + 1,
    lease_expires_at = now() + interval '60 seconds', started_at = now()
from (select q.id from public.jobs q
      where q.status = 'queued' and q.run_at <= now()
      order by q.priority desc, q.run_at, q.id
      limit %(batch)s
      for update skip locked) l
where j.id = l.id
returning j.id
"""
SUCCEED = """
update public.jobs j
set status = 'succeeded', result = '{}', finished_at = now(), lease_expires_at = null, error = null,
    progress = jsonb_build_object('percent', 100, 'message', coalesce(j.progress ->> 'message', 'done'))
where j.id = any(%(ids)s::uuid[]) and j.status = 'running' and j.worker_id = %(worker)s
"""


def bare_updates(jobs: int, batch: int) -> tuple[int, int, float]:
    """(jobs, calls, seconds) for ``bare_updates`` (see the module's docstring)."""
    system = OursSystem("postgres")
    with scratch_database("dbfloor_bare") as database:
        system.prepare(database)
        system.fill(database, jobs)
        with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
            conn.execute("alter table public.jobs disable trigger user")
            args = {"worker": WORKER, "batch": batch}
            held = [r[0] for r in conn.execute(CLAIM, args).fetchall()]
            done, calls, started = 0, 1, time.perf_counter()
            while held:
                with conn.transaction():
                    conn.execute(SUCCEED, {"ids": held, "worker": WORKER})
                    claimed = [r[0] for r in conn.execute(CLAIM, args).fetchall()]
                done, calls, held = done + len(held), calls + 1, claimed
            return done, calls, time.perf_counter() - started


def pgqueuer(jobs: int, batch: int) -> tuple[int, int, float]:
    """(jobs, calls, seconds) for ``pgqueuer`` (see the module's docstring); a call is a batch."""
    system = PgqueuerSystem()
    with scratch_database("dbfloor_pgqueuer") as database:
        system.prepare(database)
        system.fill(database, jobs)
        return asyncio.run(_pgqueuer_drain(database, batch))


async def _pgqueuer_drain(database: str, batch: int) -> tuple[int, int, float]:
    conn = await asyncpg.connect(url(database))
    try:
        queries = Queries(AsyncpgDriver(conn))
        entrypoints = {ENTRYPOINT: EntrypointExecutionParameter(concurrency_limit=0)}
        manager, heartbeat = uuid.uuid4(), timedelta(seconds=30)
        held = await queries.dequeue(batch, entrypoints, manager, None, heartbeat)
        done, calls, started = 0, 1, time.perf_counter()
        while held:
            await queries.log_jobs([(job, "successful", None) for job in held])
            done, calls = done + len(held), calls + 1
            held = await queries.dequeue(batch, entrypoints, manager, None, heartbeat)
        return done, calls, time.perf_counter() - started
    finally:
        await conn.close()
