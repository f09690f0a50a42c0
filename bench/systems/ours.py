"""Our queue, as the worker runs it in production, behind the bench contract (base.py).

Two systems share this module: ``ours_supabase`` (supabase-py: routed Realtime wake-ups + REST RPCs
through the devstack gateway, the default deployment) and ``ours_postgres`` (the psycopg adapter:
LISTEN/NOTIFY + the same SQL functions over a pool). The worker is the product's own core loop
(`worker.core.runtime.Worker`) built with the product's adapters; only the handler table differs: one
no-op kind, ``bench_noop``, added to ``job_kinds`` with limits high enough that the per-user cap and
the per-minute rate limit never bind (the scenarios measure the queue, not the limits).

Enqueues go through ``enqueue_job`` as a user, on psycopg with the GUCs PostgREST sets (SqlApi),
so "commit" is the RPC's own transaction for both systems.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from bench import databases
from bench.systems import cli
from bench.systems.ours_product import OursProduct
from devstack import migrate, paths
from devstack.sqlapi import SqlApi
from worker import event_loop, logs, signals
from worker.core.background import in_background
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.jobs import Wake
from worker.core.runtime import Worker, WorkerConfig
from worker.core.shutdown import Shutdown

KIND = "bench_noop"
USERS = 50  # bulk fills spread over 50 users, so the claim interleaves users as in production
LEASE_SECONDS = 60
SWEEP_SECONDS = 30.0  # the production default; pushes do the work, the sweep is a safety net
ADD_KIND = """
insert into public.job_kinds
  (kind, max_attempts, timeout_seconds, rate_limit_per_minute, max_running_per_user, description)
values (%s, 3, 600, 100000, 100000, 'benchmark no-op') on conflict (kind) do nothing
"""
FILL = """
insert into public.jobs (user_id, kind, payload, max_attempts)
select (%(users)s::uuid[])[1 + g %% %(n)s], %(kind)s, jsonb_build_object('seq', g), 3
from generate_series(0, %(count)s - 1) g
"""


class OursSystem(OursProduct):
    """The no-op queue contract (base.System); the capabilities come from OursProduct."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.name = f"ours_{store}"
        self.needs_gateway = store == "supabase"
        self.label = (
            "ours (Supabase: Realtime + REST)" if store == "supabase" else "ours (direct Postgres: LISTEN + psycopg)"
        )

    def settings(self, concurrency: int) -> dict[str, Any]:
        wakeup = (
            "routed wake-up on the private Realtime topic worker:<id> when parked (supabase-py), claims "
            "(claim_jobs_or_park) over REST via the devstack gateway"
            if self.store == "supabase"
            else "routed wake-up by NOTIFY on the worker's own channel when parked, claims (claim_jobs_or_park) "
            "on a psycopg pool (max 10 connections)"
        )
        return {
            "worker": "worker.core.runtime.Worker (the product's core loop) with the product's adapters",
            "store": self.store,
            "wake_up": wakeup,
            "concurrency": concurrency,
            "claim_batch": "all free slots per claim_jobs call (up to concurrency)",
            "acknowledge": "complete_jobs: every success that finished while the previous call was in flight, "
            "in one call (no timer); rows kept as succeeded",
            "per_job": "lease + heartbeat, per-kind timeout, cancel channel, Realtime broadcast of every "
            "status change to the user's topic",
            "lease_seconds": LEASE_SECONDS,
            "sweep_seconds": SWEEP_SECONDS,
            "log_level": "WARNING",
            "job_kind_limits": "bench_noop: max_running_per_user 100000, rate_limit_per_minute 100000",
        }

    def prepare(self, database: str) -> None:
        migrate.migrate(database, seed=False)
        with SqlApi(database) as api:
            api.admin(ADD_KIND, (KIND,))
            for _ in range(USERS):
                api.create_user()
        without(database, _without())

    def fill(self, database: str, count: int) -> None:
        with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
            users = [row[0] for row in conn.execute("select id from auth.users order by id").fetchall()]
            conn.execute(FILL, {"users": users, "n": len(users), "kind": KIND, "count": count})
            conn.execute("analyze public.jobs")
            if self.needs_gateway:
                _wait_for_change_feed(conn)

    remaining_sql = "select count(*) from public.jobs where status in ('queued', 'running')"
    unfinished_sql = (  # jobs_queued_claim_order and jobs_running_lease
        "select ((select 1 from public.jobs where status = 'queued' order by priority desc, run_at, id limit 1)"
        " is not null or (select 1 from public.jobs where status = 'running' order by lease_expires_at limit 1)"
        " is not null)::int"
    )

    def reset(self, database: str) -> None:
        databases.execute(
            database, "truncate public.jobs cascade", "truncate realtime.messages", "vacuum analyze public.jobs"
        )

    def worker_argv(self, database: str, record: Path, concurrency: int, gateway: str | None) -> list[str]:
        return cli.worker_argv(f"bench.systems.{self.name}", database, record, concurrency, gateway)

    def enqueue_argv(self, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> list[str]:
        return cli.enqueue_argv(f"bench.systems.{self.name}", database, out, count, gap_ms, first_seq)

    # -- subprocesses ----------------------------------------------------------------------------
    def main(self, argv: list[str]) -> int:
        args = cli.parse(argv)
        if args.command == "worker":
            # The loop `python -m worker run` picks (uvloop where installed), so the drain measures it.
            event_loop.run(self._worker(args.database, args.record, args.concurrency, args.gateway, args.instances))
        else:
            asyncio.run(self._enqueue(args.database, args.out, args.count, args.gap_ms, args.first_seq))
        return 0

    async def _worker(
        self, database: str, record: Path, concurrency: int, gateway: str | None, instances: int = 1
    ) -> None:
        """``instances`` Workers in this process, each with its own transports (as separate
        processes would have), sharing one shutdown and one record of handler starts."""
        logs.setup("WARNING")
        recorder = cli.Recorder()

        async def noop(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
            recorder.start(int(payload["seq"]))
            return {}

        with tempfile.TemporaryDirectory(prefix="bench-artifacts-") as artifacts_dir:
            fleet: list[tuple[Worker, Any]] = []
            for _ in range(instances):
                store, wakeups, artifacts = await self._transports(database, gateway, Path(artifacts_dir))
                if "staying_parked" in _without():
                    wakeups = ClaimAfterEveryHandoff(wakeups)
                config = WorkerConfig(
                    worker_id=f"bench-{self.store}-{uuid.uuid4().hex[:6]}",
                    kinds=(KIND,),
                    concurrency=concurrency,
                    lease_seconds=LEASE_SECONDS,
                    heartbeat_interval=LEASE_SECONDS / 3,
                    sweep_interval=SWEEP_SECONDS,
                    handoffs="handoffs" not in _without(),  # A/B runs: plain wake-ups only
                )
                worker = Worker(config, store, {KIND: noop}, SystemClock(), wakeups=wakeups, artifacts=artifacts)
                if os.environ.get("BENCH_ACK_AND_CLAIM") == "0":  # A/B runs: acknowledge and claim separately
                    worker.acks.refill = None
                fleet.append((worker, store))
            shutdown = Shutdown()
            signals.install(shutdown)
            baseline: list[int] = []
            try:
                async with in_background(_announce_when_settled([w for w, _ in fleet], baseline)):
                    await asyncio.gather(*(w.run(shutdown) for w, _ in fleet))
            finally:
                for _, store in fleet:
                    await store.close()
                recorder.save(record)
                if baseline:
                    claims = sum(_claims(w) for w, _ in fleet) - baseline[0]
                    handed = sum(_handed(w) for w, _ in fleet) - baseline[1]
                    counts = {"claims": claims, "handed": handed, "instances": instances}
                    cli.claims_path(record).write_text(json.dumps(counts))

    async def _transports(self, database: str, gateway: str | None, artifacts_dir: Path) -> tuple[Any, Any, Any]:
        if self.store == "postgres":
            from worker.adapters.files import FolderArtifacts
            from worker.adapters.postgres import PostgresStore, PostgresWakeups

            dsn = paths.database_url(database)
            return PostgresStore(dsn), PostgresWakeups(dsn), FolderArtifacts(artifacts_dir)
        from devstack.gateway.context import Settings
        from worker.adapters.supabase import RealtimeWakeups, StorageArtifacts, SupabaseStore, connect

        if gateway is None:
            raise SystemExit("ours_supabase worker: --gateway is required")
        client = await connect(gateway, Settings.from_stack(database=database).service_role_key)
        return SupabaseStore(client), RealtimeWakeups(client), StorageArtifacts(client)

    async def _enqueue(self, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> None:
        with SqlApi(database) as api:
            user = api.admin("select id from auth.users order by id limit 1")[0]["id"]

            async def enqueue_one(seq: int) -> None:
                # Blocking on purpose: nothing else runs in this process, and the time is taken
                # right after the RPC's transaction committed.
                api.enqueue(user, KIND, {"seq": seq})

            await cli.enqueue_paced(enqueue_one, out, count, gap_ms, first_seq)


NO_BROADCASTS = """
create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void language sql as $$ select null::void $$;
create or replace function private.send_messages(p_event text, p_topics text[], p_payloads jsonb[])
returns integer language sql as $$ select 0 $$
"""


# The claim a queue without per-user caps makes (pgqueuer's, procrastinate's): the first due jobs
# in claim order, skip locked. Leases, attempts and the jobs' triggers stay; the arguments are not
# checked. Only to price the caps (and the claim's per-group plan) in the drain and pickup.
NO_CAPS = """
create or replace function public.claim_jobs(
  worker_id text, kinds text[] default null, max_jobs integer default 1, lease_seconds integer default 60
) returns setof public.jobs language plpgsql security definer set search_path = '' as $$
begin
  return query
  with locked as (
    select j.id from public.jobs j
    where j.status = 'queued' and j.run_at <= now() and (claim_jobs.kinds is null or j.kind = any(claim_jobs.kinds))
    order by j.priority desc, j.run_at, j.id
    limit claim_jobs.max_jobs
    for update skip locked
  ),
  claimed as (
    update public.jobs j
    set status = 'running', worker_id = claim_jobs.worker_id, attempts = j.attempts + 1,
        lease_expires_at = now() + make_interval(secs => claim_jobs.lease_seconds), started_at = now()
    from locked where j.id = locked.id
    returning j.*
  )
  select * from claimed c order by c.priority desc, c.run_at, c.id;
end
$$
"""


WORKER_SIDE = ("handoffs", "staying_parked")


class ClaimAfterEveryHandoff:
    """``BENCH_WITHOUT=staying_parked``: the worker reads every hand-off as one that asks for its
    claim, as before the database kept a worker that parked moments ago parked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def start(self, worker_id: str, on_wake: Callable[[Wake], None], on_joined: Callable[[], None]) -> None:
        await self.inner.start(worker_id, lambda wake: on_wake(dataclasses.replace(wake, parked=False)), on_joined)


def _without() -> list[str]:
    return [n.strip() for n in os.environ.get("BENCH_WITHOUT", "").split(",") if n.strip()]


def without(database: str, wanted: list[str]) -> None:
    """A/B runs that price a feature (``BENCH_WITHOUT``, comma-separated): ``broadcasts`` makes
    realtime.send and private.send_messages no-ops (no realtime.messages row), ``caps`` replaces
    claim_jobs by a claim without per-user caps (``NO_CAPS``), ``handoffs`` has the workers park
    for plain wake-ups (they claim after each), ``staying_parked`` has them claim after every
    hand-off (as if the database never kept them parked), any other name is a trigger of
    public.jobs to turn off (checked against the catalog). Scratch database only."""
    wanted = [n for n in wanted if n not in WORKER_SIDE]  # the workers' settings, not the database's
    if not wanted:
        return
    # devstack's superuser: realtime.send belongs to the platform, as on hosted.
    with psycopg.connect(paths.admin_url(database), autocommit=True) as conn:
        known = {
            str(r[0])
            for r in conn.execute(
                "select tgname from pg_trigger where tgrelid = 'public.jobs'::regclass and not tgisinternal"
            ).fetchall()
        }
        for name in wanted:
            if name == "broadcasts":
                conn.execute(sql.SQL(NO_BROADCASTS))
            elif name == "caps":
                conn.execute(sql.SQL(NO_CAPS))
            elif name in known:
                conn.execute(sql.SQL("alter table public.jobs disable trigger {}").format(sql.Identifier(name)))
            else:
                raise SystemExit(
                    f"BENCH_WITHOUT: {name!r} is neither broadcasts, caps, {', '.join(WORKER_SIDE)}"
                    f" nor one of {sorted(known)}"
                )


def _wait_for_change_feed(conn: psycopg.Connection[Any], cap_s: float = 30.0) -> None:
    """Let the gateway's Realtime change feed read past the bulk fill before the worker starts:
    the drain measures draining a queue, not the gateway digesting 20,000 INSERTs (a real burst
    of inserts would wake the worker once per insert, and that is measured by pickup)."""
    row = conn.execute("select pg_current_wal_insert_lsn()").fetchone()
    assert row is not None
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        behind = conn.execute(
            "select count(*) from pg_replication_slots where database = current_database() "
            "and confirmed_flush_lsn < %s::pg_lsn",
            (row[0],),
        ).fetchone()
        if behind is not None and behind[0] == 0:
            return
        time.sleep(0.05)


def _claims(worker: Worker) -> int:
    return sum(h.n for h in worker.metrics.histograms["worker_claim_duration_seconds"].values())


def _handed(worker: Worker) -> int:
    return int(sum(worker.metrics.counters["worker_jobs_handed_total"].values()))


async def _announce_when_settled(fleet: list[Worker], baseline: list[int]) -> None:
    """READY once every instance's push channel is up (LISTEN issued / Realtime channel joined)
    and parked by its first claim; claims from then on are the measured ones."""
    while not all(w.wakeups is not None and w.wakeups.connected and w.parked for w in fleet):  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    baseline.extend((sum(_claims(w) for w in fleet), sum(_handed(w) for w in fleet)))
    cli.ready()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.Event().wait()
