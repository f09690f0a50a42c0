"""The contract every queue under test implements, so pickup/drain/scale-out treat them alike.

A system is a module ``bench/systems/<name>.py`` with a module-level ``SYSTEM`` object (the
harness side, run in the harness process) and a ``main(argv)`` that runs its two subprocesses:

    python -m bench.systems.<name> worker  --database DB --record FILE --concurrency N [--gateway URL]
    python -m bench.systems.<name> enqueue --database DB --out FILE --count N --gap-ms MS [--first-seq S]

The worker runs the system's own worker, idiomatically, with one no-op task whose handler first
appends ``(payload seq, time.time())`` to an in-memory list. It prints one line ``READY`` to
stdout (flushed) once it can pick up jobs (listening / subscribed), and on SIGTERM stops the way
the system stops gracefully, writes its records to FILE as JSON lines ``{"seq": int, "t": float}``
and exits 0.

The enqueuer enqueues ``count`` no-op jobs with payload seq ``first-seq .. first-seq+count-1``, one
per transaction through the system's own enqueue API, sleeping ``gap-ms`` between them, and
writes JSON lines ``{"seq": int, "t": float}`` where t = time.time() right after the enqueue call
returned (its transaction committed). It exits 0 when done.

Pickup latency = handler-start t − enqueue t, joined on seq (both wall clock of the same machine).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol


class System(Protocol):
    name: str  # module name and report key: "ours_supabase", "ours_postgres", "procrastinate", "pgqueuer"
    label: str  # for tables and plots: "ours (Supabase: Realtime + REST)"
    needs_gateway: bool  # the harness starts a devstack gateway and passes its URL to the workers

    def settings(self, concurrency: int) -> dict[str, Any]:
        """The knobs this system runs with (stated in the report): versions, driver, batch sizes..."""
        ...

    def prepare(self, database: str) -> None:
        """Install the system's schema into ``database`` (created empty by the harness)."""
        ...

    def fill(self, database: str, count: int) -> None:
        """Queue ``count`` no-op jobs (seq 0..count-1) in bulk, before any worker starts (drain)."""
        ...

    # One fixed statement answering how many jobs are not finished yet (queued, or picked and not
    # acknowledged). A count reads every unfinished row (a sequential scan at 20,000 queued, 3–8 ms
    # a call), so the drain reads it only every half second, for the worker's CPU per job.
    remaining_sql: str
    # One fixed statement answering 1 while any job is unfinished, else 0, from the first entry of
    # partial indexes (an ORDER BY … LIMIT 1 the planner answers from the index). The drain polls
    # it every 20 ms on one connection while the worker runs: its cost lands on the system under
    # test (a count there took 27 % of a core in our drain, 13 % in pgqueuer's: bench/FIXES.md).
    unfinished_sql: str

    def reset(self, database: str) -> None:
        """Remove every job (and job log) so the next run starts from an empty queue."""
        ...

    def worker_argv(self, database: str, record: Path, concurrency: int, gateway: str | None) -> list[str]:
        """The command line of one worker process (``gateway`` only for systems that need it)."""
        ...

    def enqueue_argv(self, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> list[str]:
        """The command line of the enqueuer process."""
        ...


def write_records(path: Path, records: list[tuple[int, float]], starts: dict[int, float] | None = None) -> None:
    """(seq, t) as JSON lines; with ``starts``, each seq's call start too (``t0``)."""
    with path.open("w") as f:
        for seq, t in records:
            item = {"seq": seq, "t": t} | ({"t0": starts[seq]} if starts and seq in starts else {})
            f.write(json.dumps(item) + "\n")


def read_records(path: Path, key: str = "t") -> dict[int, float]:
    """seq → t (or the ``key`` field, e.g. ``t0``, for the records that have it); a seq seen twice
    keeps its first time (a redelivered job starts twice)."""
    out: dict[int, float] = {}
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        if line.strip() and key in (item := json.loads(line)):
            out.setdefault(int(item["seq"]), float(item[key]))
    return out
