"""Runs every scenario's systems (``each_system``: a scratch database and, where needed, a
gateway per system) and drives any System (systems/base.py) through the two measurements the
queue scenarios share: pickup latency with idle workers, and drain throughput of a full queue.

Every process it starts is stopped in ``finally`` (SIGTERM, then SIGKILL after a grace period);
every wait is bounded and a run that hits its cap says so instead of hanging.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from bench import databases, stats
from bench.databases import scratch_database
from bench.support import gateway_process
from bench.systems import cli
from bench.systems.base import System, read_records

ROOT = Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60.0
STOP_GRACE_S = 20.0
POLL_S = 0.02  # drain: how often "unfinished" is read; the end time is at most this late
COUNT_S = 0.5  # drain: how often the count of unfinished jobs is read for the CPU meter
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerProc:
    proc: subprocess.Popen[str]
    record: Path
    log: Path


def _wait_ready(stdout: IO[str], proc: subprocess.Popen[str], deadline: float) -> None:
    sel = selectors.DefaultSelector()
    sel.register(stdout, selectors.EVENT_READ)
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode} before READY")
            if sel.select(timeout=0.1):
                line = stdout.readline()
                if line.strip() == "READY":
                    return
                if line == "":
                    raise RuntimeError("worker closed stdout before READY")
        raise RuntimeError(f"worker not READY within {READY_TIMEOUT_S:.0f} s")
    finally:
        sel.close()


@contextlib.contextmanager
def workers(
    system: System,
    database: str,
    gateway: str | None,
    count: int,
    concurrency: int,
    log_dir: Path,
    tag: str,
    wait_ready: bool = True,
    instances: int = 1,
) -> Iterator[list[WorkerProc]]:
    """``count`` worker processes of ``system``; yields once each printed READY (if asked)."""
    started: list[WorkerProc] = []
    try:
        for i in range(count):
            record = log_dir / f"{tag}-worker{i}.records.jsonl"
            record.unlink(missing_ok=True)
            log = log_dir / f"{tag}-worker{i}.log"
            argv = system.worker_argv(database, record, concurrency, gateway)
            argv += ["--instances", str(instances)] if instances > 1 else []
            with log.open("w") as err:
                proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True)
            started.append(WorkerProc(proc, record, log))
        if wait_ready:
            deadline = time.monotonic() + READY_TIMEOUT_S
            for w in started:
                assert w.proc.stdout is not None
                _wait_ready(w.proc.stdout, w.proc, deadline)
        yield started
    finally:
        stop(started)


def stop(started: list[WorkerProc]) -> None:
    for w in started:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for w in started:
        try:
            w.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            w.proc.kill()
            w.proc.wait(timeout=10)
        if w.proc.stdout is not None:
            w.proc.stdout.close()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far (/proc/<pid>/stat), or None if it is gone."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime (fields 14, 15)
    return None


def total_cpu(procs: list[WorkerProc]) -> float:
    return sum(c for w in procs if (c := cpu_seconds(w.proc.pid)) is not None)


def rss_mb(pid: int) -> float | None:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return None


@contextlib.contextmanager
def maybe_gateway(system: System, database: str, always: bool = False) -> Iterator[str | None]:
    if always or system.needs_gateway:
        with gateway_process(database) as url:
            yield url
    else:
        yield None


def merge_records(procs: list[WorkerProc]) -> tuple[dict[int, float], int]:
    """seq → first handler start over all workers, and how many starts were duplicates."""
    merged: dict[int, float] = {}
    starts = 0
    for w in procs:
        lines = [line for line in w.record.read_text().splitlines() if line.strip()] if w.record.exists() else []
        starts += len(lines)
        for seq, t in read_records(w.record).items():
            merged[seq] = min(t, merged.get(seq, t))
    return merged, starts - len(merged)


def claims_per_job(procs: list[WorkerProc], jobs: int, count: str = "claims") -> float | None:
    """Claim calls after READY over all processes, per job (None if a process did not say);
    ``count="handed"``: jobs claimed for the workers inside the enqueue (hand-offs), per job."""
    paths = [cli.claims_path(w.record) for w in procs]
    if jobs <= 0 or not all(p.exists() for p in paths):
        return None
    return round(sum(int(json.loads(p.read_text()).get(count, 0)) for p in paths) / jobs, 3)


def wait_empty(system: System, database: str, cap_s: float, cpu: CpuMeter | None = None) -> tuple[float, bool]:
    """Poll until nothing is left; (time.time() when seen empty, whether the cap was hit)."""
    deadline = time.monotonic() + cap_s
    counted = 0.0  # when the count was last read (for the CPU meter only: it reads every row)
    # One connection for the whole poll: a connection per poll (a backend forked every 20 ms) cost
    # the machine the drain measures more than the count itself.
    with databases.connect(database) as conn:
        while time.monotonic() < deadline:
            if databases.count_on(conn, system.unfinished_sql) == 0:
                if cpu is not None:
                    cpu.sample(0)
                return time.time(), False
            if cpu is not None and time.monotonic() - counted >= COUNT_S:
                counted = time.monotonic()
                cpu.sample(databases.count_on(conn, system.remaining_sql))
            time.sleep(POLL_S)
    return time.time(), True


@dataclass
class CpuMeter:
    """Worker CPU per finished job: CPU time of the worker processes between the first count that
    sees a job finished (so start-up and imports are left out) and the last sample, divided by the
    jobs finished in between."""

    procs: list[WorkerProc]
    first: tuple[int, float] | None = None
    last: tuple[int, float] | None = None
    _initial: int | None = None

    def sample(self, left: int) -> None:
        if self._initial is None:
            self._initial = left
        if self.first is None and left < self._initial:
            self.first = (left, total_cpu(self.procs))
        elif self.first is not None:
            self.last = (left, total_cpu(self.procs))

    def ms_per_job(self) -> float | None:
        if self.first is None or self.last is None or self.last[0] >= self.first[0]:
            return None
        return round((self.last[1] - self.first[1]) * 1000 / (self.first[0] - self.last[0]), 3)


def run_pickup(
    system: System,
    database: str,
    gateway: str | None,
    *,
    jobs: int,
    gap_ms: float,
    processes: int,
    concurrency: int,
    log_dir: Path,
    warmup: int = 10,
    instances: int = 1,
) -> dict[str, Any]:
    """Idle workers; ``jobs`` enqueued ``gap_ms`` apart by another process; commit → handler start.
    ``instances`` worker instances share each process (ours only)."""
    system.reset(database)
    tag = f"pickup-{system.name}-p{processes}" + (f"x{instances}" if instances > 1 else "")
    out = log_dir / f"{tag}.enqueued.jsonl"
    cap_s = 60.0 + jobs * gap_ms / 1000 * 2
    with workers(system, database, gateway, processes, concurrency, log_dir, tag, instances=instances) as procs:
        for w in procs:
            cli.claims_path(w.record).unlink(missing_ok=True)
        # Warm-up jobs (connections, prepared plans, caches) with negative seqs: not counted.
        if warmup:
            _enqueue(system, database, log_dir / f"{tag}.warmup.jsonl", warmup, gap_ms, -warmup)
            wait_empty(system, database, 30)
        t0 = time.monotonic()
        _enqueue(system, database, out, jobs, gap_ms, 0)
        _, capped = wait_empty(system, database, cap_s)
        elapsed = time.monotonic() - t0
        rss = [r for w in procs if (r := rss_mb(w.proc.pid)) is not None]
    enqueued = read_records(out)
    started, duplicates = merge_records(procs)
    latencies = [(started[s] - t) * 1000 for s, t in enqueued.items() if s in started]
    # The enqueue call itself, and call start -> handler start: a queue that does work for the
    # worker inside the enqueue (ours hands the job to a parked worker) shows it here.
    call_starts = read_records(out, "t0")
    calls = [(t - call_starts[s]) * 1000 for s, t in enqueued.items() if s in call_starts]
    from_call = [(started[s] - call_starts[s]) * 1000 for s in enqueued if s in started and s in call_starts]
    return {
        "jobs": jobs,
        "gap_ms": gap_ms,
        "processes": processes,
        "instances_per_process": instances,
        "concurrency": concurrency,
        "claims_per_job": claims_per_job(procs, warmup + jobs),  # warm-up jobs ran after READY too
        "handed_per_job": claims_per_job(procs, warmup + jobs, "handed"),
        "latency": stats.summary(latencies),
        "latencies_ms": [round(x, 3) for x in latencies],
        "enqueue_call": stats.summary(calls),
        "from_call_start": stats.summary(from_call),
        "missing": sum(1 for s in enqueued if s not in started),
        "duplicate_starts": duplicates,
        "elapsed_s": round(elapsed, 2),
        "capped": capped,
        "worker_rss_mb": [round(r, 1) for r in rss],
    }


def _enqueue(system: System, database: str, out: Path, count: int, gap_ms: float, first_seq: int) -> None:
    argv = system.enqueue_argv(database, out, count, gap_ms, first_seq)
    timeout = 60 + count * gap_ms / 1000 * 2
    subprocess.run(argv, cwd=ROOT, check=True, timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def run_drain(
    system: System,
    database: str,
    gateway: str | None,
    *,
    jobs: int,
    processes: int,
    concurrency: int,
    log_dir: Path,
    cap_s: float,
) -> dict[str, Any]:
    """A queue of ``jobs`` no-op jobs, then the workers start: jobs/s from the first handler
    start to the moment nothing is left (every job acknowledged)."""
    system.reset(database)
    system.fill(database, jobs)
    tag = f"drain-{system.name}-p{processes}"
    with workers(system, database, gateway, processes, concurrency, log_dir, tag, wait_ready=False) as procs:
        cpu = CpuMeter(procs)
        empty_at, capped = wait_empty(system, database, cap_s, cpu)
        rss = [r for w in procs if (r := rss_mb(w.proc.pid)) is not None]
    left = databases.count(database, system.remaining_sql)
    started, duplicates = merge_records(procs)
    first = min(started.values()) if started else empty_at
    done = jobs - left
    seconds = max(1e-6, empty_at - first)
    return {
        "jobs": jobs,
        "processes": processes,
        "concurrency": concurrency,
        "done": done,
        "seconds": round(seconds, 3),
        "jobs_per_s": round(done / seconds, 1),
        "handler_starts": len(started),
        "duplicate_starts": duplicates,
        "capped": capped,
        "left": left,
        "worker_cpu_ms_per_job": cpu.ms_per_job(),
        "worker_rss_mb": [round(r, 1) for r in rss],
    }


S = TypeVar("S", bound=System)


def each_system(
    systems: Sequence[S],
    prefix: str,
    measure: Callable[[S, str, str | None], Any],
    *,
    prepare: Callable[[S, str], None] | None = None,
    gateway: bool = False,
) -> tuple[dict[str, Any], list[str]]:
    """``measure(system, database, gateway)`` for each system in a scratch database of its own,
    set up by ``prepare(system, database)`` (default ``system.prepare``), with a gateway where the
    system needs one (or always, with ``gateway=True``: clients of its own talk to it). One system
    failing does not lose the others' numbers: its failure becomes a note."""
    results: dict[str, Any] = {}
    notes: list[str] = []
    for system in systems:
        try:
            with scratch_database(f"{prefix}_{system.name}") as db:
                if prepare is None:
                    system.prepare(db)
                else:
                    prepare(system, db)
                with maybe_gateway(system, db, always=gateway) as url:
                    results[system.name] = measure(system, db, url)
        except Exception as exc:
            notes.append(f"{system.name}: failed: {type(exc).__name__}: {exc}")
    return results, notes
