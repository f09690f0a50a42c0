"""Client notification: job status change commit → subscriber callback, supabase-py and supabase-js.

The harness (``run``) drives status changes through the SQL API in a scratch database and two
subscriber subprocesses, joined at the same time to the user's private topic ``jobs:<uid>``,
record when each ``job`` broadcast reached their callback:

* supabase-py: this module, ``python -m bench.scenarios.notify subscribe ...`` (below);
* supabase-js: ``bench/js/notify.mjs`` under the Node 22 of ``tests/js/node_modules``.

Both print ``SUBSCRIBED`` once joined, stop after the expected number of distinct
(job id, status) broadcasts (or on SIGTERM, or after ``--max-seconds``) and write JSON lines
``{"id", "status", "updated_at", "t"}`` (t = wall clock, epoch seconds) plus ``<out>.meta.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import queue
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import jwt
import psycopg
from psycopg.types.json import Jsonb
from realtime.types import BroadcastPayload, RealtimeChannelOptions

from bench import plots, stats
from bench.databases import drop
from bench.scenario import Context, Goal, ScenarioResult
from bench.support import gateway_process
from devstack import migrate, paths
from devstack.gateway.context import Settings
from devstack.gateway.realtime import wal
from devstack.sqlapi import SqlApi
from supabase import acreate_client
from worker.adapters.sql_queries import queries

ROOT = Path(__file__).resolve().parents[2]
NODE = ROOT / "tests" / "js" / "node_modules" / ".bin" / "node"  # the Node 22 `npm test` runs with
JS_SUBSCRIBER = ROOT / "bench" / "js" / "notify.mjs"

KIND = "rename_layers"
PAYLOAD = {"layers": [{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}], "context": "bench notify"}
RESULT = {"names": [{"id": "1:2", "name": "Hero Background"}]}
STATUSES = ("queued", "running", "succeeded")  # enqueue_job, claim_jobs, complete_job
WORKER_ID = "bench-notify"
GOAL_P99_MS = 50.0
JOBS_FULL, JOBS_QUICK = 100, 17  # × 3 status changes: 300 / 51 measured
WARMUP_JOBS = 2  # first connections, plans and caches on every path; received, not counted
GAP_MS = (20.0, 50.0)  # uniform random pause after each commit
SEED = 20261123  # the pauses are reproducible
READY_TIMEOUT_S = 30.0  # subscriber start + join
DRAIN_S = 10.0  # after the last commit, for the last broadcasts to arrive
TOKEN_TTL_S = 3600


@dataclass(frozen=True)
class Change:
    job_id: str
    status: str
    t_commit: float  # time.time() right after the committing call returned
    updated_at: float  # the row's updated_at (database clock), epoch seconds
    warmup: bool


@dataclass
class Subscriber:
    """One subscriber subprocess; its stdout lines are read by a thread, so waiting never blocks on it."""

    label: str
    protocol: str
    proc: subprocess.Popen[str]
    out: Path
    log: IO[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_subscribed(self, deadline: float) -> None:
        while True:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.label} subscriber exited ({self.proc.returncode}) before joining"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.label} subscriber did not join within {READY_TIMEOUT_S:.0f} s") from None
                continue
            if line == "SUBSCRIBED":
                return

    def stop(self, deadline: float) -> str:
        """Wait until it stopped by itself (all broadcasts in), else SIGTERM (it saves what it has)."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return f"done (exit {self.proc.returncode})"
        except subprocess.TimeoutExpired:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
            return f"terminated after {DRAIN_S:.0f} s (exit {self.proc.returncode})"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return "killed"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.log.close()


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    try:
        migrate.recreate_database(name)
        migrate.migrate(name, seed=False)
        with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
            # One user makes every change: lift the kind's per-user rate limit (10/min), here only.
            conn.execute("update public.job_kinds set rate_limit_per_minute = 100000 where kind = %s", (KIND,))
        yield name
    finally:
        drop(name)


def epoch(value: Any) -> float:
    """A timestamptz from a row (datetime) or a broadcast payload (ISO text) as epoch seconds."""
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


# The gateway's slot re-decodes all cluster WAL from its restart_lsn on every read: how far that
# lags (and how fast the cluster writes WAL) explains most of the spread between runs.
WAL_SAMPLE = """
select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::float8 as wal,
       (select max(pg_wal_lsn_diff(confirmed_flush_lsn, restart_lsn))::float8 from pg_replication_slots
        where database = current_database() and starts_with(slot_name, %s)) as restart_lag
"""


@dataclass
class WalSamples:
    t: list[float] = field(default_factory=list)
    wal_bytes: list[float] = field(default_factory=list)
    restart_lag: list[tuple[int, float]] = field(default_factory=list)  # (changes made so far, bytes)

    def take(self, api: SqlApi, changes_so_far: int) -> None:
        row = api.admin(WAL_SAMPLE, (wal.SLOT_PREFIX,))[0]
        self.t.append(time.monotonic())
        self.wal_bytes.append(float(row["wal"]))
        if row["restart_lag"] is not None:
            self.restart_lag.append((changes_so_far, float(row["restart_lag"])))

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


def drive(api: SqlApi, uid: uuid.UUID, jobs: int, rng: random.Random, samples: WalSamples) -> list[Change]:
    """queued → running → succeeded for each job, one change per transaction, as production makes them."""
    named = queries()  # the psycopg worker adapter's own statements
    changes: list[Change] = []
    samples.take(api, 0)

    def pause() -> None:
        # Sampled in a pause, after t_commit was taken: it never sits inside a measured interval.
        if len(changes) % 10 == 0:
            samples.take(api, len(changes))
        time.sleep(rng.uniform(*GAP_MS) / 1000)

    for n in range(WARMUP_JOBS + jobs):
        warm = n < WARMUP_JOBS
        row = api.enqueue(uid, KIND, PAYLOAD)  # as the user, with PostgREST's GUCs
        t = time.time()
        job_id = str(row["id"])
        changes.append(Change(job_id, str(row["status"]), t, epoch(row["updated_at"]), warm))
        pause()
        args = {"worker_id": WORKER_ID, "kinds": [KIND], "max_jobs": 1, "lease_seconds": 60}
        claimed = [json.loads(r["job"]) for r in api.as_service(named["claim_jobs"], args)]  # rows as JSON text
        t = time.time()
        if [str(r["id"]) for r in claimed] != [job_id]:
            raise RuntimeError(f"claim_jobs returned {[r['id'] for r in claimed]}, expected [{job_id}]")
        changes.append(Change(job_id, str(claimed[0]["status"]), t, epoch(claimed[0]["updated_at"]), warm))
        pause()
        args = {"job_id": job_id, "worker_id": WORKER_ID, "result": Jsonb(RESULT)}
        done = [json.loads(r["job"]) for r in api.as_service(named["complete_job"], args)]
        t = time.time()
        changes.append(Change(job_id, str(done[0]["status"]), t, epoch(done[0]["updated_at"]), warm))
        pause()
    unexpected = [c for i, c in enumerate(changes) if c.status != STATUSES[i % 3]]
    if unexpected:
        raise RuntimeError(f"unexpected statuses from the SQL API: {unexpected[:3]}")
    return changes


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def read_meta(path: Path) -> dict[str, Any]:
    meta = path.with_name(path.name + ".meta.json")
    return dict(json.loads(meta.read_text())) if meta.exists() else {}


def analyse(changes: list[Change], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Join one client's receipts to the commits on (job id, status)."""
    first: dict[tuple[str, str], dict[str, Any]] = {}
    duplicates = 0
    for r in records:
        key = (str(r["id"]), str(r["status"]))
        if key in first:
            duplicates += 1
        else:
            first[key] = r
    expected = {(c.job_id, c.status) for c in changes}
    missing = sorted(expected - first.keys())
    measured = [c for c in changes if not c.warmup and (c.job_id, c.status) in first]
    commit_ms = [(float(first[(c.job_id, c.status)]["t"]) - c.t_commit) * 1000 for c in measured]
    # Second origin: the row's updated_at as the broadcast carried it (database clock, same host).
    db_ms = [
        (float(first[(c.job_id, c.status)]["t"]) - epoch(first[(c.job_id, c.status)]["updated_at"])) * 1000
        for c in measured
        if first[(c.job_id, c.status)].get("updated_at")
    ]
    by_status = {
        s: stats.summary(
            [(float(first[(c.job_id, c.status)]["t"]) - c.t_commit) * 1000 for c in measured if c.status == s]
        )
        for s in STATUSES
    }
    return {
        "received": len(records),
        "expected": len(expected),
        "missing": len(missing),
        "missing_keys": [list(k) for k in missing[:20]],
        "duplicates": duplicates,
        "unexpected": len(first.keys() - expected),
        "commit_to_callback_ms": commit_ms,
        "commit_to_callback": stats.summary(commit_ms),
        "commit_to_callback_by_status": by_status,
        "updated_at_to_callback": stats.summary(db_ms),
        "receive_times": {f"{k[0]}/{k[1]}": float(v["t"]) for k, v in first.items()},
    }


def start_subscriber(
    label: str, protocol: str, argv: list[str], env: dict[str, str], out: Path, log_dir: Path
) -> Subscriber:
    log = (log_dir / f"notify_{label}.log").open("w")
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    except OSError:
        log.close()
        raise
    return Subscriber(label, protocol, proc, out, log)


def run(ctx: Context) -> ScenarioResult:
    jobs = JOBS_QUICK if ctx.quick else JOBS_FULL
    total = 3 * (WARMUP_JOBS + jobs)
    work = ctx.log_dir / "notify"
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    started = time.monotonic()
    # Upper bound of a subscriber's life, whatever happens to the harness.
    max_seconds = 60 + total * (GAP_MS[1] / 1000 + 0.05)
    with scratch_database() as database, SqlApi(database) as api, gateway_process(database) as url:
        settings = Settings.from_stack(database=database)
        uid = api.create_user()
        token = jwt.encode(
            {"sub": str(uid), "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + TOKEN_TTL_S},
            settings.jwt_secret,
            "HS256",
        )
        topic = f"jobs:{uid}"
        env = {**os.environ, "NOTIFY_ANON_KEY": settings.anon_key, "NOTIFY_ACCESS_TOKEN": token}
        common = ["--url", url, "--topic", topic, "--expect", str(total), "--max-seconds", f"{max_seconds:.0f}"]
        specs: list[tuple[str, str, list[str]]] = [
            ("supabase-py", "realtime-py, vsn 1.0.0 (JSON text frames)", [sys.executable, "-m", __name__, "subscribe"]),
        ]
        skipped: dict[str, str] = {}
        if NODE.exists():
            specs.append(("supabase-js", "realtime-js, vsn 2.0.0", [str(NODE), str(JS_SUBSCRIBER)]))
        else:
            skipped["supabase-js"] = f"not measured: {NODE.relative_to(ROOT)} missing (npm ci in tests/js)"
        subscribers: list[Subscriber] = []
        try:
            for label, protocol, argv in specs:
                out = work / f"{label}.jsonl"
                out.unlink(missing_ok=True)
                subscribers.append(
                    start_subscriber(label, protocol, [*argv, *common, "--out", str(out)], env, out, ctx.log_dir)
                )
            ready_by = time.monotonic() + READY_TIMEOUT_S
            for sub in subscribers:
                sub.wait_subscribed(ready_by)
            drive_started = time.monotonic()
            samples = WalSamples()
            changes = drive(api, uid, jobs, rng, samples)
            samples.take(api, len(changes))
            drive_s = time.monotonic() - drive_started
            drain_by = time.monotonic() + DRAIN_S
            exits = {sub.label: sub.stop(drain_by) for sub in subscribers}
        finally:
            for sub in subscribers:
                sub.kill()
        job_events = api.count("select count(*) from public.job_events")

    results = {sub.label: analyse(changes, read_records(sub.out)) for sub in subscribers}
    metas = {sub.label: read_meta(sub.out) for sub in subscribers}
    protocols = {sub.label: sub.protocol for sub in subscribers}
    elapsed = time.monotonic() - started
    return build_result(
        ctx, jobs, changes, results, metas, protocols, exits, skipped, job_events, samples, drive_s, elapsed
    )


def build_result(
    ctx: Context,
    jobs: int,
    changes: list[Change],
    results: dict[str, dict[str, Any]],
    metas: dict[str, dict[str, Any]],
    protocols: dict[str, str],
    exits: dict[str, str],
    skipped: dict[str, str],
    job_events: int,
    samples: WalSamples,
    drive_s: float,
    elapsed: float,
) -> ScenarioResult:
    measured = [c for c in changes if not c.warmup]
    table: list[dict[str, Any]] = []
    goals: list[Goal] = []
    for label, r in results.items():
        s, db = r["commit_to_callback"], r["updated_at_to_callback"]
        table.append(
            {
                "client": label,
                "n": s.get("count", 0),
                "missing": r["missing"],
                "duplicates": r["duplicates"],
                "p50_ms": s.get("p50_ms"),
                "p90_ms": s.get("p90_ms"),
                "p99_ms": s.get("p99_ms"),
                "max_ms": s.get("max_ms"),
                "mean_ms": s.get("mean_ms"),
                "updated_at_p50_ms": db.get("p50_ms"),
                "updated_at_p99_ms": db.get("p99_ms"),
            }
        )
        p99 = s.get("p99_ms")
        goals.append(
            Goal(
                name=f"client notification p99 ≤ 50 ms ({label})",
                target=f"commit → {label} callback p99 ≤ {GOAL_P99_MS:.0f} ms, no notification missing",
                measured=(
                    f"p99 {p99} ms (p50 {s.get('p50_ms')} ms, max {s.get('max_ms')} ms), n = {s.get('count', 0)}, "
                    f"missing {r['missing']} of {r['expected']}"
                ),
                met=p99 is not None and p99 <= GOAL_P99_MS and r["missing"] == 0,
            )
        )
    for label, why in skipped.items():
        goals.append(
            Goal(f"client notification p99 ≤ 50 ms ({label})", f"commit → {label} callback p99 ≤ 50 ms", why, None)
        )

    plot_series = {label: r["commit_to_callback_ms"] for label, r in results.items()}
    plot = plots.latency_cdf(
        ctx.out_dir / "notify_cdf.png",
        plot_series,
        f"Job status change commit → subscriber callback ({len(measured)} changes, private jobs:<uid>)",
        "commit → callback (ms)",
        "fraction of status changes",
    )

    # Both subscribers get the same broadcast from the same gateway: how far apart they hear it.
    spread: dict[str, Any] = {}
    if {"supabase-py", "supabase-js"} <= results.keys():
        py_t, js_t = results["supabase-py"]["receive_times"], results["supabase-js"]["receive_times"]
        keys = [f"{c.job_id}/{c.status}" for c in measured]
        spread = stats.summary([(js_t[k] - py_t[k]) * 1000 for k in keys if k in py_t and k in js_t])

    wal_load = samples.summary()
    if results:
        first_client = next(iter(results))
        wal_load["latency_vs_restart_lag"] = {
            "client": first_client,
            **samples.against(changes, results[first_client]["receive_times"]),
        }
    commit_after_row = stats.summary([(c.t_commit - c.updated_at) * 1000 for c in measured])
    notes = [
        "Main number: commit → callback on one clock (the harness's time.time() after the committing call "
        "returned vs. the subscriber's wall clock at the top of its callback; same machine).",
        f"Cross-check: the row's updated_at (database clock, same host) → commit returned to the driver: "
        f"p50 {commit_after_row.get('p50_ms')} ms, p99 {commit_after_row.get('p99_ms')} ms; so updated_at → "
        "callback is commit → callback plus that.",
    ]
    if spread:
        notes.append(
            f"supabase-js receive − supabase-py receive for the same broadcast: p50 {spread.get('p50_ms')} ms, "
            f"p99 {spread.get('p99_ms')} ms (negative: js heard it first)."
        )
    js_meta = metas.get("supabase-js", {})
    if js_meta.get("clock_offset_ms"):
        off = js_meta["clock_offset_ms"]
        notes.append(
            "Node clock check, system clock − (performance.timeOrigin + performance.now()): "
            f"{off['start']:.2f} ms at start, {off['end']:.2f} ms at end "
            "(sampled over 2 ms to undo Date.now()'s 1 ms steps)."
        )
    for label, how in exits.items():
        if how != "done (exit 0)":
            notes.append(f"{label} subscriber: {how}; see logs/notify_{label}.log")
    if wal_load.get("latency_vs_restart_lag"):
        lag = wal_load["slot_restart_lag_mb"]
        notes.append(
            f"Cluster WAL written during the drive: {wal_load['cluster_wal_mb_per_s']} MB/s (all databases: other "
            f"work on the shared cluster counts). The gateway's slot restart_lsn lagged p50 {lag['p50']} MB, "
            f"max {lag['max']} MB behind its confirmed position. The gateway streams the slot, so this "
            "lag no longer costs a re-decode per read (it did when the feed polled "
            "pg_logical_slot_get_changes, see bench/FIXES.md); "
            f"Pearson r = {wal_load['latency_vs_restart_lag']['pearson_r']} between a lag sample and the mean "
            "latency of the next 10 changes."
        )
    if job_events:
        notes.append(f"{job_events} job_event rows were also broadcast on the topic (both clients listen, not timed).")

    py_version = metadata.version("supabase")
    return ScenarioResult(
        name="notify",
        title="3. Client notification: job status change commit → subscriber callback",
        method=METHOD.format(
            jobs=jobs,
            changes=len(measured),
            warmup=WARMUP_JOBS,
            lo=GAP_MS[0],
            hi=GAP_MS[1],
            busy=wal.BUSY_INTERVAL * 1000,
            idle=wal.IDLE_INTERVAL * 1000,
        ),
        settings={
            "jobs": jobs,
            "changes_measured": len(measured),
            "warmup_jobs": WARMUP_JOBS,
            "gap_ms": list(GAP_MS),
            "seed": SEED,
            "kind": KIND,
            "kind_rate_limit_per_minute": 100000,
            "topic": "jobs:<uid> (private, broadcast events job + job_event)",
            "gateway": "python -m devstack.gateway in its own process, loopback",
            "realtime_wal_poll_ms": {"busy": wal.BUSY_INTERVAL * 1000, "idle": wal.IDLE_INTERVAL * 1000},
            "clients": {
                "supabase-py": {"version": py_version, "protocol": protocols.get("supabase-py")},
                "supabase-js": {
                    "version": js_meta.get("version"),
                    "node": js_meta.get("node"),
                    "protocol": protocols.get("supabase-js"),
                }
                if "supabase-js" in results
                else skipped.get("supabase-js"),
            },
            "goal_p99_ms": GOAL_P99_MS,
        },
        table=table,
        data={
            "per_client": {
                label: {k: v for k, v in r.items() if k not in ("commit_to_callback_ms", "receive_times")}
                for label, r in results.items()
            },
            "latencies_ms": {label: [round(x, 3) for x in r["commit_to_callback_ms"]] for label, r in results.items()},
            "client_meta": metas,
            "js_minus_py_receive": spread,
            "updated_at_to_commit_returned": commit_after_row,
            "job_events_broadcast": job_events,
            "wal_during_drive": wal_load,
            "subscriber_exits": exits,
            "drive_seconds": round(drive_s, 2),
            "elapsed_seconds": round(elapsed, 2),
        },
        plots=[plot],
        goals=goals,
        notes=notes,
    )


METHOD = """\
A scratch database (migrated, `rename_layers` rate limit lifted) with one user, and a devstack
gateway in its own process on a loopback port. Two subscribers, each its own process, join the
user's private topic `jobs:<uid>` at the same time, with the plugin's channel options
(`private: true`, handlers for broadcast events `job` and `job_event`) and a user JWT minted with
the stack's secret: **supabase-py** (async client, realtime-py) and **supabase-js** (Node 22,
realtime-js, `accessToken` option). Each takes its receive time (wall clock, epoch seconds,
sub-ms: `time.time()` / `performance.timeOrigin + performance.now()`) first thing in its `job`
callback and writes its receipts to a file at the end.

Once both print `SUBSCRIBED`, the driver (psycopg, synchronous) takes {jobs} jobs (after
{warmup} warm-up jobs, received but not counted) through queued → running → succeeded exactly as
production does: `enqueue_job` as the user with PostgREST's request GUCs, then `claim_jobs` and
`complete_job` as `service_role` with the worker's own statements (`worker/adapters/queries.sql`).
One change per transaction; after each commit returns the driver records `t_commit = time.time()`
and pauses {lo:.0f}–{hi:.0f} ms (uniform, fixed seed). Each change fires the migration's trigger
(`realtime.send` to `jobs:<uid>`, event `job`), which the gateway streams from its logical slot
(`pg_recvlogical`; unflushed WAL is flushed within {busy:.0f} ms while changes flow, {idle:.0f} ms
when idle) and pushes to both sockets.

**Latency = receive time − t_commit**, joined on (job id, status), per client: {changes} changes
each. Missing = committed changes whose broadcast never reached that client (warm-up included).
Cross-check on a second origin: the payload's `updated_at` (database clock, same host) → receive.
Every 10 changes, in a pause, the driver samples the cluster's WAL position and how far the
gateway slot's `restart_lsn` lags its confirmed position (with the old polling feed that lag was
re-decoded on every read and set the latency; kept as a regression check).
"""


# -- the supabase-py subscriber (its own process) ---------------------------------------------


async def subscribe(args: argparse.Namespace) -> int:
    records: list[tuple[str, str, str | None, float]] = []
    seen: set[tuple[str, str]] = set()
    job_events = 0
    done = asyncio.Event()
    joined = asyncio.Event()
    statuses: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    def on_job(message: BroadcastPayload) -> None:
        t = time.time()  # first, before any other work in the callback
        p = message.get("payload") or {}
        key = (str(p.get("id")), str(p.get("status")))
        records.append((*key, p.get("updated_at"), t))
        if key[1] in STATUSES:
            seen.add(key)
        if len(seen) >= args.expect:
            done.set()

    def on_job_event(_message: BroadcastPayload) -> None:
        nonlocal job_events
        job_events += 1

    def on_status(state: Any, err: Exception | None) -> None:
        name = str(getattr(state, "value", state))
        statuses.append(name)
        if name == "SUBSCRIBED":
            joined.set()
        elif err is not None:
            print(f"notify subscriber: {name}: {err}", file=sys.stderr)

    client = await acreate_client(args.url, os.environ["NOTIFY_ANON_KEY"])
    await client.realtime.set_auth(os.environ["NOTIFY_ACCESS_TOKEN"])
    # The plugin's channel: private, `job` and `job_event` handlers (job_event is only counted).
    options: RealtimeChannelOptions = {"config": {"broadcast": None, "presence": None, "private": True}}
    channel = client.channel(args.topic, options)
    channel.on_broadcast("job", on_job)
    channel.on_broadcast("job_event", on_job_event)
    await channel.subscribe(on_status)
    try:
        await asyncio.wait_for(joined.wait(), READY_TIMEOUT_S)
    except TimeoutError:
        print(f"notify subscriber: not joined ({statuses})", file=sys.stderr)
        return 1
    sys.stdout.write("SUBSCRIBED\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), args.max_seconds)
    with args.out.open("w") as f:
        for job_id, status, updated_at, t in records:
            f.write(json.dumps({"id": job_id, "status": status, "updated_at": updated_at, "t": t}) + "\n")
    meta = {
        "client": "supabase-py",
        "version": metadata.version("supabase"),
        "received": len(records),
        "job_events": job_events,
        "statuses": statuses,
    }
    args.out.with_name(args.out.name + ".meta.json").write_text(json.dumps(meta) + "\n")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.realtime.remove_all_channels(), 2)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.notify")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subscribe", help="the supabase-py subscriber (env NOTIFY_ANON_KEY, NOTIFY_ACCESS_TOKEN)")
    s.add_argument("--url", required=True)
    s.add_argument("--topic", required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--expect", type=int, required=True, help="stop after this many distinct (job id, status)")
    s.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    return asyncio.run(subscribe(args))


if __name__ == "__main__":
    raise SystemExit(main())
