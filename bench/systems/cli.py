"""The command line every system's subprocesses share (see base.py), and their common plumbing."""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import logging
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from bench.systems.base import write_records


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.systems.<name>")
    sub = parser.add_subparsers(dest="command", required=True)
    worker = sub.add_parser("worker", help="run one worker process until SIGTERM")
    worker.add_argument("--database", required=True)
    worker.add_argument("--record", type=Path, required=True)
    worker.add_argument("--concurrency", type=int, required=True)
    worker.add_argument("--gateway", default=None, help="devstack gateway URL (Supabase systems)")
    worker.add_argument("--instances", type=int, default=1, help="worker instances in this process (ours only)")
    enqueue = sub.add_parser("enqueue", help="enqueue jobs one per transaction, gap-ms apart")
    enqueue.add_argument("--database", required=True)
    enqueue.add_argument("--out", type=Path, required=True)
    enqueue.add_argument("--count", type=int, required=True)
    enqueue.add_argument("--gap-ms", type=float, required=True)
    enqueue.add_argument("--first-seq", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "worker" and not 1 <= args.concurrency <= 1000:
        parser.error("--concurrency: must be between 1 and 1000")
    if args.command == "worker" and not 1 <= args.instances <= 64:
        parser.error("--instances: must be between 1 and 64")
    if args.command == "enqueue" and (not 1 <= args.count <= 100_000 or not 0 <= args.gap_ms <= 10_000):
        parser.error("--count must be 1..100000 and --gap-ms 0..10000")
    return args


@dataclass
class Recorder:
    """Handler starts, appended in the handler before anything else it does."""

    records: list[tuple[int, float]] = field(default_factory=list)

    def start(self, seq: int) -> None:
        self.records.append((seq, time.time()))

    def save(self, path: Path) -> None:
        write_records(path, self.records)


def ready() -> None:
    sys.stdout.write("READY\n")
    sys.stdout.flush()


def stop_event() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (call inside the running loop)."""
    event = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, event.set)
    return event


async def enqueue_paced(
    enqueue_one: Callable[[int], Awaitable[None]], out: Path, count: int, gap_ms: float, first_seq: int
) -> None:
    """Call ``enqueue_one(seq)`` ``count`` times, ``gap_ms`` apart (start to start, not drifting),
    and save (seq, time right after the call returned, time the call began) as JSON lines."""
    records: list[tuple[int, float]] = []
    starts: dict[int, float] = {}
    next_at = time.monotonic()
    for seq in range(first_seq, first_seq + count):
        starts[seq] = time.time()
        await enqueue_one(seq)
        records.append((seq, time.time()))
        next_at += gap_ms / 1000
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    write_records(out, records, starts)


def worker_argv(module: str, database: str, record: Path, concurrency: int, gateway: str | None = None) -> list[str]:
    """The worker subprocess's command line for ``python -m <module>`` (base.System.worker_argv)."""
    argv = [sys.executable, "-m", module, "worker", "--database", database]
    argv += ["--record", str(record), "--concurrency", str(concurrency)]
    return argv + (["--gateway", gateway] if gateway else [])


def claims_path(record: Path) -> Path:
    """Where a worker process of ours writes how many claim calls its instances made after READY."""
    return record.with_suffix(".claims.json")


def enqueue_argv(module: str, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> list[str]:
    """The enqueuer subprocess's command line (base.System.enqueue_argv)."""
    argv = [sys.executable, "-m", module, "enqueue", "--database", database, "--out", str(out)]
    return [*argv, "--count", str(count), "--gap-ms", str(gap_ms), "--first-seq", str(first_seq)]


WorkerMain = Callable[[str, Path, int], Coroutine[Any, Any, None]]
EnqueueMain = Callable[[str, Path, int, float, int], Coroutine[Any, Any, None]]


def run(argv: list[str], library_logger: str, worker: WorkerMain, enqueue: EnqueueMain) -> int:
    """``main`` of a competitor's subprocess: parse, log the library at WARNING on stderr (stdout
    carries READY only), then run the worker (database, record, concurrency) or the enqueuer."""
    args = parse(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    logging.getLogger(library_logger).setLevel(logging.WARNING)
    if args.command == "worker":
        asyncio.run(worker(args.database, args.record, args.concurrency))
    else:
        asyncio.run(enqueue(args.database, args.out, args.count, args.gap_ms, args.first_seq))
    return 0


T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run async library code from the sync harness API, even if the caller has a loop running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
