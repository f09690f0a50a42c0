"""pgqueuer 1.6.0 behind the bench contract (base.py), run the way its docs recommend.

Worker: a ``QueueManager`` over asyncpg (the driver pgqueuer documents first) with one async no-op
entrypoint, run by ``QueueManager.run`` (``PgQueuer.run`` would also start the cron
``SchedulerManager``, which polls its schedules table every second and has nothing to do here). Wake-ups come from
pgqueuer's statement-level NOTIFY trigger on its queue table (channel ``ch_pgqueuer``; NOTIFY is per
database, so scratch databases never hear each other). Jobs are claimed in batches
(``FOR UPDATE SKIP LOCKED``) and acknowledged in batches: a finished job goes into a buffer that
flushes at ``batch_size`` entries or every 0.1 s, deleting the rows from ``pgqueuer`` and logging
them in ``pgqueuer_log`` in one statement (``remaining_sql`` therefore counts picked jobs until that
flush).

Concurrency: ``--concurrency N`` is ``max_concurrent_tasks=N``, pgqueuer's per-worker cap on picked
jobs, enforced in the dequeue query (the entrypoint's ``concurrency_limit`` would be a limit across
all workers, wrong for scale-out). pgqueuer requires ``max_concurrent_tasks >= 2 * batch_size``,
so the batch is ``N // 2`` (two batches in flight) and concurrency 1 runs with a cap of 2 (the
smallest pgqueuer accepts), stated in ``settings()``.

Settings, tried on the shared 2-core box while other sessions loaded it (load average 2-7, so
throughput moved ±50 % between identical runs; only large differences below are real):

* ``batch_size`` at concurrency 10 (20000-job drain): 5 → 2000-3500 jobs/s, 2 → 1200-1500,
  1 → 370-670. Batches are what make pgqueuer fast, so the batch is the largest the cap allows.
  Concurrency 1 (cap 2, batch 1) drained at 200-330 jobs/s, concurrency 50 (batch 25) at
  4800-7900 jobs/s. Pickup does not depend on the batch (a lone job is claimed alone).
* driver: one asyncpg connection (``AsyncpgDriver``, queries and LISTEN share it behind a lock)
  vs ``AsyncpgPoolDriver`` (pool of 5): the single connection was as fast or faster at
  concurrency 10 and 50, so the documented default stays.
* ``dequeue_timeout`` 30 s, ``heartbeat_timeout`` 30 s, durability ``durable``: pgqueuer's
  defaults. The timeout is only the fallback poll; NOTIFY does the waking.
* Warm-up: every job gets an ``anyio.CancelScope``, and the first one imports anyio's asyncio
  backend, which delayed the first pickups by 15-165 ms (jobs 0-9 piled up behind it). The worker
  creates one scope before READY, as a long-running worker would have long ago.
* Pickup (200 jobs, 20 ms apart, concurrency 10): p50 ~2 ms, p99 6-8 ms after the warm-up.

READY: ``QueueManager.listener_healthy()`` (pgqueuer's own NOTIFY round-trip probe) succeeds only
once the worker's LISTEN is in place, so the worker probes it with a short timeout until it passes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.domain.errors import FailingListenerError

from bench import databases
from bench.databases import url
from bench.systems import cli

MODULE = "bench.systems.pgqueuer_queue"
ENTRYPOINT = "bench_noop"
FILL_CHUNK = 5000  # jobs per enqueue call: one INSERT ... SELECT FROM unnest(arrays) each
DEQUEUE_TIMEOUT = timedelta(seconds=30)  # pgqueuer's default: the safety-net poll when no NOTIFY comes
PROBE_TIMEOUT = timedelta(seconds=0.2)
READY_TIMEOUT = 30.0


def _version() -> str:
    from importlib.metadata import version

    return version("pgqueuer")


def _limits(concurrency: int) -> tuple[int, int]:
    """(max_concurrent_tasks, batch_size): pgqueuer wants the cap at least twice the batch."""
    cap = max(2, concurrency)
    return cap, cap // 2


def _payload(seq: int) -> bytes:
    return json.dumps({"seq": seq}).encode()


async def _connect(database: str) -> Any:
    return await asyncpg.connect(url(database))


class PgqueuerSystem:
    name = "pgqueuer"
    label = f"pgqueuer {_version()}"
    needs_gateway = False

    def settings(self, concurrency: int) -> dict[str, Any]:
        cap, batch = _limits(concurrency)
        return {
            "package": self.label,
            "driver": f"AsyncpgDriver (asyncpg {asyncpg.__version__}, one connection: queries + LISTEN)",
            "worker": "QueueManager.run (no SchedulerManager), one async no-op entrypoint",
            "concurrency": concurrency,
            "max_concurrent_tasks": cap,
            "batch_size": batch,
            "acknowledge": f"buffered: flush at {batch} finished jobs or every 0.1 s",
            "listen_notify": "always on (statement trigger on the queue table, channel ch_pgqueuer)",
            "dequeue_timeout_s": DEQUEUE_TIMEOUT.total_seconds(),
            "heartbeat_timeout_s": 30,
            "finished_jobs": "deleted from pgqueuer, logged in pgqueuer_log",
            "durability": "durable (pgqueuer's default: all tables logged)",
            "log_level": "WARNING",
            "shutdown": "QueueManager.shutdown set: stops dequeuing, waits for tasks, flushes buffers",
        }

    def prepare(self, database: str) -> None:
        async def install() -> None:
            conn = await _connect(database)
            try:
                await Queries(AsyncpgDriver(conn)).install()
            finally:
                await conn.close()

        cli.run_sync(install())

    def fill(self, database: str, count: int) -> None:
        async def enqueue() -> None:
            conn = await _connect(database)
            try:
                queries = Queries(AsyncpgDriver(conn))
                for start in range(0, count, FILL_CHUNK):
                    seqs = range(start, min(start + FILL_CHUNK, count))
                    await queries.enqueue([ENTRYPOINT] * len(seqs), [_payload(s) for s in seqs], [0] * len(seqs))
            finally:
                await conn.close()

        cli.run_sync(enqueue())
        databases.execute(database, "analyze pgqueuer")  # fresh statistics for the dequeue query's plan

    remaining_sql = "select count(*) from pgqueuer where status in ('queued', 'picked')"
    unfinished_sql = (  # its pgqueuer_priority_id_id1_idx and pgqueuer_picked_heartbeat_idx
        "select ((select 1 from pgqueuer where status = 'queued' order by priority, id desc limit 1)"
        " is not null or (select 1 from pgqueuer where status = 'picked' order by heartbeat limit 1)"
        " is not null)::int"
    )

    def reset(self, database: str) -> None:
        databases.execute(database, "truncate pgqueuer, pgqueuer_log, pgqueuer_statistics", "vacuum analyze pgqueuer")

    def worker_argv(self, database: str, record: Path, concurrency: int, gateway: str | None) -> list[str]:
        return cli.worker_argv(MODULE, database, record, concurrency)

    def enqueue_argv(self, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> list[str]:
        return cli.enqueue_argv(MODULE, database, out, count, gap_ms, first_seq)


async def _worker(database: str, record: Path, concurrency: int) -> None:
    recorder = cli.Recorder()

    async def noop(job: Any) -> None:
        recorder.start(int(json.loads(job.payload)["seq"]))

    cap, batch = _limits(concurrency)
    # pgqueuer gives every job an anyio.CancelScope; the first one imports anyio's asyncio backend
    # (15-165 ms on this box), which would land on the first job's pickup. A long-running worker
    # has paid it long ago, so pay it before READY.
    anyio.CancelScope()
    stop = cli.stop_event()
    conn = await _connect(database)
    try:
        qm = QueueManager(Queries(AsyncpgDriver(conn)))
        qm.entrypoint(ENTRYPOINT, accepts_context=False)(noop)
        run = asyncio.create_task(qm.run(dequeue_timeout=DEQUEUE_TIMEOUT, batch_size=batch, max_concurrent_tasks=cap))
        await _announce_when_listening(qm, run)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        # pgqueuer's graceful stop: no new dequeues, running jobs finish, buffers flush.
        qm.shutdown.set()
        await run
    finally:
        await conn.close()
        recorder.save(record)


async def _announce_when_listening(qm: Any, run: asyncio.Task[None]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_TIMEOUT
    while loop.time() < deadline:
        if run.done():
            run.result()  # the worker failed before it listened: raise its error
            raise RuntimeError("pgqueuer worker ended before it was listening")
        try:
            await qm.listener_healthy(timeout=PROBE_TIMEOUT)
        except FailingListenerError:
            continue  # LISTEN not in place yet (the probe's NOTIFY went unheard)
        cli.ready()
        return
    raise TimeoutError(f"pgqueuer worker not listening after {READY_TIMEOUT:.0f} s")


async def _enqueue(database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> None:
    conn = await _connect(database)
    try:
        queries = Queries(AsyncpgDriver(conn))

        async def enqueue_one(seq: int) -> None:
            await queries.enqueue(ENTRYPOINT, _payload(seq))  # one INSERT, autocommit

        await cli.enqueue_paced(enqueue_one, out, count, gap_ms, first_seq)
    finally:
        await conn.close()


def main(argv: list[str]) -> int:
    return cli.run(argv, "pgqueuer", _worker, _enqueue)


SYSTEM = PgqueuerSystem()

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
