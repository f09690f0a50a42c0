"""No thundering herd: several Worker instances on one database, each job run exactly once, and
about one claim per job (not one per worker), on both real adapters.

Claims are counted (the worker's claim histogram), never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devstack import paths
from tests.integration.worker_support import SqlHarness, clone_database, cloned_gateway, drop_database
from worker.adapters.postgres import PostgresStore, PostgresWakeups, wake_channel
from worker.adapters.supabase import RealtimeWakeups, SupabaseStore, connect
from worker.core.clock import SystemClock
from worker.core.context import JobContext
from worker.core.ports import QueueStore, Wakeups
from worker.core.runtime import Worker, WorkerConfig
from worker.core.shutdown import Shutdown

pytestmark = pytest.mark.integration
WORKERS = 4
KIND = "rename_layers"
WAIT = 30.0  # a bound on waiting for the fleet, not an assertion about speed
PARKED = "select count(*) as n from public.worker_wakeups where woken_at is null"
BROADCASTS = "select count(*) as n from realtime.messages where topic like 'worker:%%' and event = 'wake'"


class NotifyCounter:
    """The wake-up NOTIFYs the fleet's channels received (the direct adapter's workers park with
    wake_via 'notify': no broadcast is written for them)."""

    def __init__(self, dsn: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        for i in range(WORKERS):
            self.conn.execute(sql.SQL("listen {}").format(sql.Identifier(wake_channel(f"herd-{i}"))))
        self.seen = 0

    def __call__(self) -> int:
        self.seen += sum(1 for _ in self.conn.notifies(timeout=0.2))
        return self.seen


@dataclass
class Fleet:
    harness: SqlHarness
    workers: list[Worker]
    wake_messages: Callable[[], int]  # sent to the fleet so far, by its transport
    ran: list[uuid.UUID] = field(default_factory=list)

    def claims(self) -> int:
        return sum(h.n for w in self.workers for h in w.metrics.histograms["worker_claim_duration_seconds"].values())

    def diagnosis(self) -> list[dict[str, Any]]:
        """Per worker: its claims and what woke its claim loop (for a failure message)."""
        return [
            {
                "claims": sum(h.n for h in w.metrics.histograms["worker_claim_duration_seconds"].values()),
                "woken": {dict(k)["reason"]: int(v) for k, v in w.metrics.counters["worker_wakeups_total"].items()},
            }
            for w in self.workers
        ]

    def parked(self) -> int:
        return int(self.harness.sql(PARKED)[0]["n"])

    def settled(self) -> bool:
        """Every worker parked, in the database and in its own view: its subscription is live and
        it has read the answer of the claim that parked it. (The database shows the park before
        the worker has read the answer and counted the claim; and a subscription that joins late
        sends one more claim: counted before the test starts, not during it.)"""
        ready = all(w.parked and w.wakeups is not None and w.wakeups.connected for w in self.workers)
        return ready and self.parked() == len(self.workers)


Transports = Callable[[], Awaitable[tuple[QueueStore, Wakeups]]]


async def until(check: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not check():
            await asyncio.sleep(0.02)
    assert check(), what


@contextlib.asynccontextmanager
async def fleet(database: str, transports: Transports, notify: bool) -> AsyncIterator[Fleet]:
    harness = SqlHarness(database)
    counter = NotifyCounter(paths.database_url(database)) if notify else None
    ran: list[uuid.UUID] = []

    async def handler(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        ran.append(ctx.job.id)
        return {}

    workers, stores, shutdown = [], [], Shutdown()
    for i in range(WORKERS):
        store, wakeups = await transports()
        stores.append(store)
        # The sweep is an hour away: every claim in the test comes from a wake-up or a freed slot.
        config = WorkerConfig(f"herd-{i}", (KIND,), concurrency=2, sweep_interval=3600.0)
        workers.append(Worker(config, store, {KIND: handler}, SystemClock(), wakeups=wakeups))
    tasks = [asyncio.create_task(w.run(shutdown)) for w in workers]
    f = Fleet(harness, workers, counter or (lambda: int(harness.sql(BROADCASTS)[0]["n"])), ran)
    try:
        await until(f.settled, "every worker parked")
        yield f
    finally:
        shutdown.request()
        shutdown.request()  # no drain wait: the test has nothing running by then
        await asyncio.gather(*tasks, return_exceptions=True)
        for store in stores:
            await store.close()
        harness.close()
        if counter is not None:
            counter.conn.close()


@pytest.fixture(params=["postgres", "supabase"])
async def herd(request: pytest.FixtureRequest, pg_cluster: None) -> AsyncIterator[Fleet]:
    if request.param == "postgres":
        name = clone_database("worker_herd")
        dsn = paths.database_url(name)

        async def direct() -> tuple[QueueStore, Wakeups]:
            return PostgresStore(dsn), PostgresWakeups(dsn)

        try:
            async with fleet(name, direct, notify=True) as f:
                yield f
        finally:
            drop_database(name)
        return
    with cloned_gateway("worker_herd") as gw:

        async def supabase() -> tuple[QueueStore, Wakeups]:
            client = await connect(gw.url, gw.service_role_key)
            return SupabaseStore(client), RealtimeWakeups(client)

        async with fleet(gw.database, supabase, notify=False) as f:
            yield f


async def test_one_job_at_a_time_is_claimed_about_once_and_runs_once(herd: Fleet) -> None:
    before = herd.claims()
    jobs = []
    for _ in range(12):
        job = herd.harness.enqueue(KIND)  # a user each: the per-user rate limit is not under test
        jobs.append(job.id)
        await until(lambda: herd.harness.get(job.id).status == "succeeded", "job succeeded")  # noqa: B023
        await until(herd.settled, "the worker parked again")
    claims = herd.claims() - before
    assert sorted(herd.ran) == sorted(jobs)  # each exactly once
    # One wake-up per job, one claim per wake-up; the old fan-out made WORKERS claims per job.
    assert claims <= 1.5 * len(jobs), (claims, herd.diagnosis())


async def test_a_batch_wakes_as_many_workers_as_it_needs_and_runs_each_job_once(herd: Fleet) -> None:
    users = [herd.harness.new_user() for _ in range(6)]  # one job each: no user's running cap binds
    assert herd.wake_messages() == 0
    herd.harness.sql(
        "insert into public.jobs (user_id, kind, max_attempts) select u, %s, 3 from unnest(%s::uuid[]) u",
        (KIND, users),
    )
    succeeded = "select count(*) as n from public.jobs where status = 'succeeded'"
    await until(lambda: herd.harness.sql(succeeded)[0]["n"] == 6, "all six succeeded")
    await until(lambda: herd.parked() == WORKERS, "every worker parked again")
    assert len(herd.ran) == 6 and len(set(herd.ran)) == 6
    # Parked with two free slots each, three of the four workers cover six jobs.
    assert herd.wake_messages() == 3
    # Each by its worker's transport only: a direct worker's wake-ups write no Realtime row.
    if isinstance(herd.wake_messages, NotifyCounter):
        assert herd.harness.sql(BROADCASTS)[0]["n"] == 0
