"""Three baselines for `bench.dbcost`: what draining the same no-op queue on one connection costs
the database with less than the product does.

``bare_updates``: our table, indexes and fill, but the two row updates a job needs done as plain
statements with every trigger of ``public.jobs`` off: the claim (skip-locked, in claim order) and
the success (by id, checked against the worker), in one transaction per batch. No checks, caps,
events, messages or wake-ups: the least a queue that keeps its finished rows in this table could
spend.

``split_rows``: what the kept row would cost if the queue's state left it (a design not built):
a narrow ``bench_queue`` table holds each unfinished job's claim order, status and lease, with the
four status indexes moved onto it; the kept row loses those indexes and every column they name
(``finished_at``'s retention index included), so its two updates can be HOT (``fillfactor`` 80).
The claim updates the queue row and the kept row, the success deletes the queue row and updates
the kept row; triggers off as in ``bare_updates``.

``pgqueuer``: pgqueuer's own dequeue and acknowledgement statements (``Queries.dequeue`` and
``Queries.log_jobs`` over asyncpg, as its worker sends them: two round trips per batch) on its own
schema, filled as the drain scenario fills it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

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


def _drain(conn: psycopg.Connection[Any], claim: str, succeed: str, batch: int) -> tuple[int, int, float]:
    """Claim a batch, then acknowledge it and claim the next in one transaction, until none is
    left: (jobs, calls, seconds), a call being one transaction."""
    args = {"worker": WORKER, "batch": batch}
    held = [r[0] for r in conn.execute(claim, args).fetchall()]
    done, calls, started = 0, 1, time.perf_counter()
    while held:
        with conn.transaction():
            conn.execute(succeed, {"ids": held, "worker": WORKER})
            claimed = [r[0] for r in conn.execute(claim, args).fetchall()]
        done, calls, held = done + len(held), calls + 1, claimed
    return done, calls, time.perf_counter() - started


def _measured(name: str, jobs: int, batch: int, setup: str, claim: str, succeed: str) -> tuple[int, int, float]:
    """A scratch database filled as the drain scenario fills it, ``setup``'s statements run (one at
    a time: VACUUM cannot share a transaction), then ``_drain``; every job must end succeeded."""
    system = OursSystem("postgres")
    with scratch_database(f"dbfloor_{name}") as database:
        system.prepare(database)
        system.fill(database, jobs)
        with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
            for statement in filter(str.strip, setup.split(";")):
                conn.execute(statement)
            done, calls, seconds = _drain(conn, claim, succeed, batch)
            finished = conn.execute("select count(*) from public.jobs where status = 'succeeded'").fetchone()
            assert done == jobs and finished == (done,), f"{name}: {finished} of {done} drained of {jobs} finished"
            print(f"  {name}: {hot_share(conn):.0%} of the kept row's updates were HOT", flush=True)
        return done, calls, seconds


def bare_updates(jobs: int, batch: int) -> tuple[int, int, float]:
    """(jobs, calls, seconds) for ``bare_updates`` (see the module's docstring)."""
    return _measured("bare_updates", jobs, batch, "alter table public.jobs disable trigger user", CLAIM, SUCCEED)


SPLIT_SETUP = """
alter table public.jobs disable trigger user;
drop index public.jobs_queued_claim_order, public.jobs_queued_by_user_kind,
    public.jobs_running_by_user_kind, public.jobs_running_lease, public.jobs_waiting_on,
    public.jobs_finished;
alter table public.jobs drop constraint jobs_running_has_lease;  -- the lease moved to bench_queue
alter table public.jobs set (fillfactor = 80);
vacuum full public.jobs;
create table public.bench_queue (
    id uuid primary key, user_id uuid not null, kind text not null, priority int not null,
    run_at timestamptz not null, status text not null, worker_id text, lease_expires_at timestamptz);
insert into public.bench_queue (id, user_id, kind, priority, run_at, status)
    select id, user_id, kind, priority, run_at, status from public.jobs where status = 'queued';
create index on public.bench_queue (priority desc, run_at, id) where status = 'queued';
create index on public.bench_queue (user_id, kind, priority desc, run_at, id) where status = 'queued';
create index on public.bench_queue (user_id, kind) where status = 'running';
create index on public.bench_queue (lease_expires_at) where status = 'running';
vacuum analyze public.bench_queue;
vacuum analyze public.jobs;
"""

SPLIT_CLAIM = """
with claimed as (
    update public.bench_queue q
    set status = 'running', worker_id = %(worker)s, lease_expires_at = now() + interval '60 seconds'
    from (select id from public.bench_queue
          where status = 'queued' and run_at <= now()
          order by priority desc, run_at, id
          limit %(batch)s
          for update skip locked) l
    where q.id = l.id
    returning q.id
)
update public.jobs j
set status = 'running', worker_id = %(worker)s, attempts = j.attempts + 1, started_at = now()
from claimed c
where j.id = c.id
returning j.id
"""
SPLIT_SUCCEED = """
with done as (
    delete from public.bench_queue q
    where q.id = any(%(ids)s::uuid[]) and q.status = 'running' and q.worker_id = %(worker)s
    returning q.id
)
update public.jobs j
set status = 'succeeded', result = '{}', finished_at = now(), error = null,
    progress = jsonb_build_object('percent', 100, 'message', coalesce(j.progress ->> 'message', 'done'))
from done d
where j.id = d.id
"""
HOT_SHARE = """
select n_tup_hot_upd::float / nullif(n_tup_upd, 0) from pg_stat_user_tables
where relid = 'public.jobs'::regclass
"""


def split_rows(jobs: int, batch: int) -> tuple[int, int, float]:
    """(jobs, calls, seconds) for ``split_rows`` (see the module's docstring). A kept row succeeds
    only with its queue entry's deletion, so every job succeeded means ``bench_queue`` is empty."""
    return _measured("split_rows", jobs, batch, SPLIT_SETUP, SPLIT_CLAIM, SPLIT_SUCCEED)


def hot_share(conn: psycopg.Connection[Any]) -> float:
    """The share of ``public.jobs``' row updates that were HOT (no index entry written), read on
    the connection that made them: its statistics are published when it goes idle, at once after
    ``pg_stat_force_next_flush`` (PostgreSQL 15+), and an autocommit statement reads a fresh
    snapshot of them."""
    conn.execute("select pg_stat_force_next_flush()")
    row = conn.execute(HOT_SHARE).fetchone()
    return float(row[0]) if row and row[0] is not None else 0.0


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
