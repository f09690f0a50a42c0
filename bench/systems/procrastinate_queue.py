"""procrastinate 3.10.0 behind the bench contract (base.py), run the way its docs recommend.

Worker: ``App.run_worker_async`` on the psycopg 3 connector (``PsycopgConnector``, an async psycopg
pool), one async no-op task, ``listen_notify=True`` (a dedicated LISTEN connection on
``procrastinate_any_queue_v1``; NOTIFY is per database, so each scratch database has its own
channel namespace). procrastinate fetches one job per query (``procrastinate_fetch_job_v2``, no
batch/prefetch knob) and acknowledges each job with its own ``procrastinate_finish_job_v1`` call,
so the knobs that matter are the concurrency, the pool size and what happens to finished jobs.

Settings, tried on the shared 2-core box while other sessions loaded it (load average 2-7, so
throughput moved ±50 % between identical runs; only large differences below are real):

* ``concurrency``: ``--concurrency N`` as is. It bounds jobs in flight, but fetching is one serial
  loop (fetch one, start it, fetch the next), so drain speed barely depends on it: 20000 no-op
  jobs drained at about 300-700 jobs/s at concurrency 1, 10 and 50 alike.
* pool: ``max_size = concurrency + 2`` so that N jobs finishing at once, the fetch loop and the
  heartbeat/abort poll never wait for a connection (the psycopg default of 4 was no slower for
  no-op jobs, within the noise). ``min_size = 1``: with ``min = max`` the first ~8 pickups took
  50-120 ms instead of 20-35 ms, because the pool rotates through all its connections and each
  fresh backend pays its first procrastinate call (plpgsql compile, catalog caches).
* ``delete_jobs="successful"``: the row (and its events, by cascade) goes at finish, as the docs
  advise against table growth. ``never`` (the default, rows kept as ``succeeded``) was not
  faster: median ~350 vs ~490 jobs/s over 6 interleaved 10000-job drains each.
* ``fetch_job_polling_interval = 1 s`` (default 5 s): NOTIFY does the waking; the poll is only a
  safety net. The worker clears its "new job" flag after each fetch, so a NOTIFY for a job that
  commits while an empty fetch is in flight is lost until the next NOTIFY or poll. Seen once in
  ~3000 paced jobs (the last job of a run, which has no later NOTIFY to rescue it); 1 s bounds it.
* Pickup (200 jobs, 20 ms apart, concurrency 10): p50 ~2 ms, p99 3-16 ms depending on load.

READY: procrastinate has no "listening" hook, so the worker tags its connections with a unique
``application_name`` and waits until that name's LISTEN statement is visible and finished
(``state = 'idle'``) in ``pg_stat_activity``; from then on every INSERT's NOTIFY reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import procrastinate
import psycopg

from bench import databases
from bench.databases import url
from bench.systems import cli

MODULE = "bench.systems.procrastinate_queue"
TASK = "bench_noop"
QUEUE = "bench"
FILL_CHUNK = 5000  # jobs per batch_defer_async call: one INSERT of a composite array each
POLL_SECONDS = 1.0  # safety-net poll; NOTIFY does the waking (see module docstring)
READY_TIMEOUT = 30.0
LISTEN_SEEN = """
select 1 from pg_stat_activity
where application_name = %s and state = 'idle' and query ilike 'LISTEN %%procrastinate_any_queue_v1%%'
"""


def _version() -> str:
    from importlib.metadata import version

    return version("procrastinate")


def _pool_size(concurrency: int) -> int:
    # One connection per concurrently finishing job, plus the fetch loop and heartbeat/abort poll.
    return concurrency + 2


def _app(database: str, pool_size: int, application_name: str) -> Any:
    connector = procrastinate.PsycopgConnector(
        conninfo=url(database),
        min_size=1,
        max_size=pool_size,
        kwargs={"application_name": application_name},
    )
    return procrastinate.App(connector=connector)


class ProcrastinateSystem:
    name = "procrastinate"
    label = f"procrastinate {_version()}"
    needs_gateway = False

    def settings(self, concurrency: int) -> dict[str, Any]:
        return {
            "package": self.label,
            "driver": f"PsycopgConnector (psycopg {psycopg.__version__}, async pool)",
            "pool": f"min 1, max {_pool_size(concurrency)} (concurrency + 2) + 1 dedicated LISTEN connection",
            "worker": "App.run_worker_async, one async no-op task",
            "concurrency": concurrency,
            "fetch": "one job per fetch_job query (procrastinate has no batch/prefetch setting)",
            "acknowledge": "finish_job per job",
            "listen_notify": True,
            "fetch_job_polling_interval_s": POLL_SECONDS,
            "delete_jobs": "successful (finished rows deleted at finish)",
            "log_level": "WARNING",
            "shutdown": "cancel run_worker_async: stops fetching, waits for running jobs",
        }

    def prepare(self, database: str) -> None:
        async def apply() -> None:
            async with _app(database, 2, "bench-procrastinate-prepare").open_async() as app:
                await app.schema_manager.apply_schema_async()

        cli.run_sync(apply())

    def fill(self, database: str, count: int) -> None:
        async def defer() -> None:
            app = _app(database, 2, "bench-procrastinate-fill")
            task = app.task(name=TASK, queue=QUEUE)(_noop_placeholder)
            async with app.open_async():
                for start in range(0, count, FILL_CHUNK):
                    await task.batch_defer_async(*({"seq": s} for s in range(start, min(start + FILL_CHUNK, count))))

        cli.run_sync(defer())
        databases.execute(database, "analyze procrastinate_jobs")  # fresh statistics for the fetch query's plan

    remaining_sql = "select count(*) from procrastinate_jobs where status in ('todo', 'doing')"
    unfinished_sql = (  # its procrastinate_jobs_id_lock_idx_v1
        "select ((select 1 from procrastinate_jobs"
        " where status = any (array['todo', 'doing']::procrastinate_job_status[])"
        " order by id, lock limit 1) is not null)::int"
    )

    def reset(self, database: str) -> None:
        databases.execute(
            database,
            "truncate procrastinate_jobs, procrastinate_events, procrastinate_periodic_defers cascade",
            "vacuum analyze procrastinate_jobs",
        )

    def worker_argv(self, database: str, record: Path, concurrency: int, gateway: str | None) -> list[str]:
        return cli.worker_argv(MODULE, database, record, concurrency)

    def enqueue_argv(self, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> list[str]:
        return cli.enqueue_argv(MODULE, database, out, count, gap_ms, first_seq)


async def _noop_placeholder(seq: int) -> None:
    """The task's signature for the enqueue side (the worker registers its own recording body)."""


async def _worker(database: str, record: Path, concurrency: int) -> None:
    recorder = cli.Recorder()

    async def noop(seq: int) -> None:
        recorder.start(seq)

    application_name = f"bench-procrastinate-{os.getpid()}"
    app = _app(database, _pool_size(concurrency), application_name)
    app.task(name=TASK, queue=QUEUE)(noop)
    stop = cli.stop_event()
    try:
        async with app.open_async():
            run = asyncio.create_task(
                app.run_worker_async(
                    concurrency=concurrency,
                    listen_notify=True,
                    fetch_job_polling_interval=POLL_SECONDS,
                    delete_jobs="successful",
                    install_signal_handlers=False,  # cli.stop_event() owns SIGTERM/SIGINT
                )
            )
            await _announce_when_listening(database, application_name, run)
            stopped = asyncio.create_task(stop.wait())
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
            stopped.cancel()
            if not run.done():
                # procrastinate's documented graceful stop: the cancelled worker stops fetching,
                # waits for its running jobs (and their finish_job), unregisters, then re-raises.
                run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
    finally:
        recorder.save(record)


async def _announce_when_listening(database: str, application_name: str, run: asyncio.Task[None]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    async with await psycopg.AsyncConnection.connect(url(database), autocommit=True) as conn:
        while time.monotonic() < deadline:
            if run.done():
                run.result()  # the worker failed before it listened: raise its error
                raise RuntimeError("procrastinate worker ended before it was listening")
            if await (await conn.execute(LISTEN_SEEN, (application_name,))).fetchone():
                cli.ready()
                return
            await asyncio.sleep(0.01)
    raise TimeoutError(f"procrastinate worker not listening after {READY_TIMEOUT:.0f} s")


async def _enqueue(database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> None:
    app = _app(database, 1, f"bench-procrastinate-enqueue-{os.getpid()}")
    task = app.task(name=TASK, queue=QUEUE)(_noop_placeholder)
    async with app.open_async():

        async def enqueue_one(seq: int) -> None:
            await task.defer_async(seq=seq)  # one INSERT; the pool commits as the connection goes back

        await cli.enqueue_paced(enqueue_one, out, count, gap_ms, first_seq)


def main(argv: list[str]) -> int:
    return cli.run(argv, "procrastinate", _worker, _enqueue)


SYSTEM = ProcrastinateSystem()

if __name__ == "__main__":
    # Run the imported module's main, so procrastinate sees its App built in a named module
    # rather than in __main__ (it warns about the latter: tasks could not be imported by name).
    from bench.systems import procrastinate_queue

    sys.exit(procrastinate_queue.main(sys.argv[1:]))
