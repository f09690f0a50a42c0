"""The driver: a user's jobs through queued → running → succeeded, one change per transaction,
through the system's JobLifecycle; between changes it samples the cluster's WAL."""

from __future__ import annotations

import contextlib
import random
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench import stats
from bench.databases import url
from bench.scenarios.notify.plan import GAP_MS, KIND, PAYLOAD, RESULT, STATUSES, WARMUP_JOBS
from bench.systems.capabilities import JobLifecycle, StatusChange
from devstack.gateway.realtime import wal


@dataclass(frozen=True)
class Change(StatusChange):
    warmup: bool  # a warm-up job's change: received, not counted

    @classmethod
    def of(cls, change: StatusChange, warmup: bool) -> Change:
        return cls(change.job_id, change.status, change.t_commit, change.updated_at, warmup)


# The gateway's slot re-decodes all cluster WAL from its restart_lsn on every read: how far that
# lags (and how fast the cluster writes WAL) explains most of the spread between runs.
WAL_SAMPLE = """
select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 as wal,
       (select max(pg_wal_lsn_diff(confirmed_flush_lsn, restart_lsn))::float8 from pg_replication_slots
        where database = current_database() and starts_with(slot_name, %s)) as restart_lag
"""


@dataclass
class WalSamples:
    conn: psycopg.Connection[Any]  # to the scratch database, autocommit
    t: list[float] = field(default_factory=list)
    wal_bytes: list[float] = field(default_factory=list)
    restart_lag: list[tuple[int, float]] = field(default_factory=list)  # (changes made so far, bytes)

    def take(self, changes_so_far: int) -> None:
        row = self.conn.execute(WAL_SAMPLE, (wal.SLOT_PREFIX,)).fetchone()
        assert row is not None
        self.t.append(time.monotonic())
        self.wal_bytes.append(float(row[0]))
        if row[1] is not None:
            self.restart_lag.append((changes_so_far, float(row[1])))

    def summary(self) -> dict[str, Any]:
        if len(self.t) < 2:
            return {}
        lag_mb = sorted(b / 2**20 for _, b in self.restart_lag)
        return {
            "cluster_wal_mb_per_s": round(
                (self.wal_bytes[-1] - self.wal_bytes[0]) / 2**20 / (self.t[-1] - self.t[0]), 2
            ),
            "slot_restart_lag_mb": {
                "samples": len(lag_mb),
                "p50": round(stats.percentile(lag_mb, 50), 2) if lag_mb else None,
                "max": round(lag_mb[-1], 2) if lag_mb else None,
            },
        }

    def against(self, changes: list[Change], receive_times: dict[str, float]) -> dict[str, Any]:
        """Each lag sample next to the mean latency of the 10 changes committed right after it."""
        pairs: list[tuple[float, float]] = []
        for n, lag in self.restart_lag:
            ms = [
                (receive_times[key] - c.t_commit) * 1000
                for c in changes[n : n + 10]
                if not c.warmup and (key := f"{c.job_id}/{c.status}") in receive_times
            ]
            if ms:
                pairs.append((round(lag / 2**20, 2), round(statistics.fmean(ms), 2)))
        r = None
        with contextlib.suppress(statistics.StatisticsError, ValueError):
            r = round(statistics.correlation([a for a, _ in pairs], [b for _, b in pairs]), 2)
        return {"pairs_lag_mb_mean_ms": pairs, "pearson_r": r}


@contextlib.contextmanager
def wal_samples(database: str) -> Iterator[WalSamples]:
    with psycopg.connect(url(database), autocommit=True) as conn:
        yield WalSamples(conn)


def drive(lifecycle: JobLifecycle, jobs: int, rng: random.Random, samples: WalSamples) -> list[Change]:
    """queued → running → succeeded for each job, one change per transaction, as production makes them."""
    changes: list[Change] = []
    samples.take(0)

    def pause() -> None:
        # Sampled in a pause, after t_commit was taken: it never sits inside a measured interval.
        if len(changes) % 10 == 0:
            samples.take(len(changes))
        time.sleep(rng.uniform(*GAP_MS) / 1000)

    for n in range(WARMUP_JOBS + jobs):
        warm = n < WARMUP_JOBS
        queued = lifecycle.enqueue(KIND, PAYLOAD)  # as the user, with PostgREST's GUCs
        changes.append(Change.of(queued, warm))
        pause()
        changes.append(Change.of(lifecycle.claim(queued.job_id, KIND), warm))
        pause()
        changes.append(Change.of(lifecycle.complete(queued.job_id, RESULT), warm))
        pause()
    unexpected = [c for i, c in enumerate(changes) if c.status != STATUSES[i % 3]]
    if unexpected:
        raise RuntimeError(f"unexpected statuses from the SQL API: {unexpected[:3]}")
    return changes
