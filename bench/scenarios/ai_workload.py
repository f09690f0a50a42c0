"""AI workload: simulated Figma plugin users submit a mix of AI jobs through the REST API, one real
``python -m worker run`` runs them against the model stand-ins, and the jobs table, the
stand-ins' timing log and /proc say what the queue and the worker cost on top of the models.

Everything runs on loopback in processes of its own: the devstack gateway (REST, Realtime,
Storage), the model stand-ins (``python -m devstack.models``) and the worker; the users run as
asyncio tasks in this process. A scratch database is migrated for the run and dropped after it.
``Plan`` holds every knob; ``method()`` says how each number is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from bench import plots
from bench.databases import drop
from bench.scenario import Context, Goal, ScenarioResult
from bench.stats import percentile, summary
from bench.support import ROOT, gateway_process
from devstack import migrate, paths
from devstack.gateway.context import Settings
from devstack.paths import free_port
from devstack.sqlapi import SqlApi

NAME = "ai_workload"
KINDS = ("rename_layers", "generate_design", "generate_edits", "generate_image")
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
# Every payload carries a unique tag in text the worker forwards to the model; the stand-ins
# extract it (tag_pattern), so each model request can be matched to its job.
TAG_PATTERN = r"\[\[aiw:([0-9a-f]{16})\]\]"
_RETRY_HINT = re.compile(r"retry after (\d+(?:\.\d+)?) seconds")
HEARTBEAT_S = 25.0  # Phoenix heartbeat, as realtime-js sends it
FALLBACK_POLL_AFTER_S = 30.0  # no final broadcast by then: read the job over REST (safety net)
FALLBACK_POLL_EVERY_S = 3.0


@dataclass(frozen=True)
class Plan:
    users: int
    duration_s: float
    probe_jobs: int  # rename-50 jobs on the idle system, one at a time
    drain_cap_s: float  # after the load: how long in-flight jobs may take to finish
    ramp_s: float  # users start at a random moment within this window
    think_s: tuple[float, float] = (1.0, 5.0)
    latency_ms: tuple[int, int] = (2000, 5000)
    stream_delay_ms: int = 15  # between streamed deltas, after the latency (~60 deltas per edit job)
    error_429_rate: float = 0.02
    error_429_retry_after_s: float = 1.0
    probe_latency_ms: int = 3000
    worker_concurrency: int = 200
    provider_concurrency: int = 256
    rename_layers: int = 50
    # "supabase" is the product's default (REST + Realtime through the gateway); "postgres"
    # (psycopg, LISTEN/NOTIFY) exists for comparison runs that take the REST path out.
    store: str = "supabase"
    mix: tuple[tuple[str, float], ...] = (
        ("rename_layers", 0.40),
        ("generate_design", 0.25),
        ("generate_edits", 0.20),
        ("generate_image", 0.15),
    )
    seed: int = 20261123

    @classmethod
    def for_context(cls, ctx: Context) -> Plan:
        if ctx.quick:
            return cls(users=20, duration_s=12.0, probe_jobs=2, drain_cap_s=20.0, ramp_s=3.0)
        return cls(users=200, duration_s=60.0, probe_jobs=5, drain_cap_s=45.0, ramp_s=5.0)


# -- payloads ---------------------------------------------------------------------------------------
_SCREENS = ("Checkout", "Pricing", "Onboarding step 2", "Settings", "Dashboard", "Sign-up", "Order history")
_COPY = (
    "Start your free trial today",
    "Your order is on its way",
    "Invite your team to collaborate",
    "We could not process your payment",
    "Save 20% with annual billing",
)
_IMAGES = (
    "A calm isometric illustration of a home office",
    "Abstract gradient background in brand teal",
    "A friendly robot waving, flat vector style",
    "Product shot of a ceramic mug on a wooden table",
)
_ASPECTS = ("1:1", "16:9", "4:3", "3:2")
_LAYER_TYPES = ("TEXT", "RECTANGLE", "FRAME", "INSTANCE", "TEXT", "VECTOR", "GROUP")
_TEXTS = ("Total", "Pay now", "Email address", "Remember me", "$24.00", "Shipping", "Apply code", "Back")


def tag_text(tag: str) -> str:
    return f"[[aiw:{tag}]]"


def rename_payload(tag: str, rng: random.Random, layers: int) -> dict[str, Any]:
    """A screen as the plugin sends it: a root frame and ``layers - 1`` children with Figma's
    default names (what users ask to have renamed)."""
    page = rng.randint(1, 400)
    root = f"{page}:1"
    items: list[dict[str, Any]] = [{"id": root, "type": "FRAME", "name": "Frame 1"}]
    frames = [root]
    for i in range(2, layers + 1):
        kind = _LAYER_TYPES[rng.randrange(len(_LAYER_TYPES))]
        layer: dict[str, Any] = {
            "id": f"{page}:{i}",
            "type": kind,
            "name": f"{kind.title()} {i}",
            "parent_id": rng.choice(frames),
        }
        if kind == "TEXT":
            layer["text"] = rng.choice(_TEXTS)
        if kind == "FRAME":
            frames.append(layer["id"])
        items.append(layer)
    return {"layers": items, "context": f"{rng.choice(_SCREENS)} screen, mobile {tag_text(tag)}"}


def payload_for(kind: str, tag: str, rng: random.Random, plan: Plan) -> dict[str, Any]:
    if kind == "rename_layers":
        return rename_payload(tag, rng, plan.rename_layers)
    if kind == "generate_design":
        return {
            "prompt": f"A {rng.choice(_SCREENS).lower()} screen for a coffee subscription app {tag_text(tag)}",
            "design_system": {
                "summary": "Colors: ink #1B1B1E, accent #E4572E. Type: Inter 14/20, headings 24/32. 8 pt grid.",
                "components": [
                    {"name": "Button/Primary", "key": secrets.token_hex(20)},
                    {"name": "Input/Text", "key": secrets.token_hex(20)},
                ],
            },
            "platform": rng.choice(("desktop", "mobile")),
        }
    if kind == "generate_edits":
        return {"text": rng.choice(_COPY), "instruction": f"Friendlier, shorter. {tag_text(tag)}", "variants": 3}
    return {"prompt": f"{rng.choice(_IMAGES)} {tag_text(tag)}", "aspect_ratio": rng.choice(_ASPECTS)}


# -- processes --------------------------------------------------------------------------------------
def _clean_env() -> dict[str, str]:
    # Nothing from the caller's shell may point a child at real models or another stack.
    prefixes = ("SUPABASE_", "DATABASE_", "WORKER_", "ANTHROPIC_", "GEMINI_", "PROVIDER_", "MODEL_", "STANDIN_")
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def _stop(proc: subprocess.Popen[bytes]) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not become ready (exit {proc.poll()}):\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def standin_process(log: Path) -> Iterator[tuple[str, int]]:
    """``python -m devstack.models`` on a free loopback port: (url, pid). Its own process, so the
    users' tasks here share no GIL with it."""
    port = free_port()
    url = f"http://{paths.HOST}:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.models", "--port", str(port)],
            cwd=ROOT,
            env=_clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_http(f"{url}/_standin/health", proc, "model stand-ins", log)
        yield url, proc.pid
    finally:
        _stop(proc)


@contextlib.contextmanager
def worker_process(
    plan: Plan, gateway: str, models: str, service_key: str, database: str, log: Path
) -> Iterator[tuple[int, int]]:
    """One real ``python -m worker run`` (by default the supabase store, through the gateway):
    (pid, health port)."""
    port = free_port()
    artifacts = log.parent / f"{NAME}-artifacts-{uuid.uuid4().hex[:6]}"  # postgres store only
    variables = {
        "WORKER_STORE": plan.store,
        "SUPABASE_URL": gateway,
        "SUPABASE_SERVICE_ROLE_KEY": service_key,
        "DATABASE_URL": paths.database_url(database),
        "ARTIFACTS_DIR": str(artifacts),
        "ANTHROPIC_API_KEY": "bench-dummy",
        "ANTHROPIC_BASE_URL": models,
        "GEMINI_API_KEY": "bench-dummy",
        "GEMINI_BASE_URL": models,
        "WORKER_ID": f"bench-aiw-{uuid.uuid4().hex[:6]}",
        "WORKER_CONCURRENCY": str(plan.worker_concurrency),
        "PROVIDER_CONCURRENCY": str(plan.provider_concurrency),
        "PORT": str(port),
        "HEALTH_HOST": paths.HOST,  # PORT alone would mean every interface (Railway's case)
        "LOG_LEVEL": "WARNING",
        "DRAIN_TIMEOUT_SECONDS": "10",
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            cwd=ROOT,
            env={**_clean_env(), **variables},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # /health answers 200 once the queue is reachable and Realtime is joined.
        _wait_http(f"http://{paths.HOST}:{port}/health", proc, "worker", log)
        yield proc.pid, port
    finally:
        _stop(proc)
        shutil.rmtree(artifacts, ignore_errors=True)


@contextlib.contextmanager
def migrated_database() -> Iterator[str]:
    """A migrated scratch database (the product's job_kinds and limits as shipped), dropped after."""
    name = f"bench_aiw_{uuid.uuid4().hex[:8]}"
    migrate.recreate_database(name)
    try:
        migrate.migrate(name, seed=False)
        yield name
    finally:
        # The gateway drops its logical slot on stop; if it died, a leftover slot would block the drop.
        with psycopg.connect(paths.database_url(), autocommit=True) as conn:
            conn.execute(
                "select pg_drop_replication_slot(slot_name) from pg_replication_slots "
                "where database = %s and not active",
                (name,),
            )
        drop(name)


def _pid_of_gateway(port: int) -> int | None:
    """The gateway process bench.support started (found by its unique --port), for CPU samples."""
    wanted = ["-m", "devstack.gateway"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in argv for w in wanted) and "--port" in argv and str(port) in argv:
            return int(entry.name)
    return None


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB from /proc/<pid>/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def _cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


# -- users ------------------------------------------------------------------------------------------
@dataclass
class Submission:
    job_id: str
    tag: str
    kind: str
    user: int
    enqueue_ms: float  # REST round trip of enqueue_job, client side
    final: str | None = None  # as the user saw it
    via: str | None = None  # "realtime" or "poll"
    seen_done_s: float | None = None  # enqueue returned → final status seen (client side)


@dataclass
class Load:
    submissions: list[Submission] = field(default_factory=list)
    rate_limited: Counter[str] = field(default_factory=Counter)
    rate_limited_wait_s: float = 0.0
    rate_limited_too_late: int = 0  # the hint pointed past the end of the run: the user stopped
    api_errors: Counter[str] = field(default_factory=Counter)  # "kind status code", 429 excluded
    transport_errors: Counter[str] = field(default_factory=Counter)
    polls: int = 0
    gave_up_waiting: int = 0
    enqueue_attempts: int = 0


class UserSocket:
    """One plugin user's Realtime connection: its private topic ``jobs:<uid>``, joined with its
    own JWT (Phoenix vsn 1.0.0, as realtime-js speaks it). Final statuses are remembered by job."""

    def __init__(self, ws: ClientConnection, topic: str) -> None:
        self.ws = ws
        self.topic = topic
        self.final: dict[str, str] = {}
        self.errors: dict[str, dict[str, Any]] = {}  # the last error a job's broadcasts carried
        self.changed = asyncio.Event()
        self.frames = 0
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, gateway: str, anon_key: str, user_id: str, token: str) -> UserSocket:
        url = gateway.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={anon_key}&vsn=1.0.0"
        ws = await connect(url, open_timeout=20, max_size=2**22)
        me = cls(ws, f"realtime:jobs:{user_id}")
        config = {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": True,
            "postgres_changes": [],
        }
        join = {"topic": me.topic, "event": "phx_join", "payload": {"config": config, "access_token": token}}
        await ws.send(json.dumps({**join, "ref": "1", "join_ref": "1"}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if frame.get("event") == "phx_reply" and frame.get("ref") == "1":
                if frame["payload"].get("status") != "ok":
                    await ws.close()
                    raise RuntimeError(f"join {me.topic} refused: {frame['payload']}")
                break
        me._tasks = [asyncio.create_task(me._read()), asyncio.create_task(me._heartbeat())]
        return me

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self.ws:
                self.frames += 1
                frame = json.loads(raw)
                if frame.get("event") != "broadcast":
                    continue
                inner = frame.get("payload") or {}
                body = inner.get("payload") or {}
                if inner.get("event") == "job" and isinstance(body.get("error"), dict):
                    self.errors[str(body.get("id"))] = body["error"]
                if inner.get("event") == "job" and body.get("status") in TERMINAL:
                    self.final[str(body.get("id"))] = str(body["status"])
                    self.changed.set()
        self.closed = True
        self.changed.set()

    async def _heartbeat(self) -> None:
        ref = 100
        with contextlib.suppress(Exception):
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                ref += 1
                await self.ws.send(
                    json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": str(ref)})
                )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), 5)


@dataclass
class User:
    index: int
    id: str
    headers: dict[str, str]
    socket: UserSocket | None = None


async def _job_status(http: httpx.AsyncClient, user: User, job_id: str) -> str | None:
    response = await http.get("/rest/v1/jobs", params={"id": f"eq.{job_id}", "select": "status"}, headers=user.headers)
    rows = response.json() if response.status_code == 200 else []
    return str(rows[0]["status"]) if rows else None


async def wait_final(http: httpx.AsyncClient, user: User, job_id: str, deadline: float, load: Load) -> tuple[str, str]:
    """Wait for the job's final status on the user's Realtime topic; REST reads only as a late
    safety net (no broadcast after FALLBACK_POLL_AFTER_S). Returns (status, via) or ("", "")."""
    sock = user.socket
    started = time.monotonic()
    next_poll = started + FALLBACK_POLL_AFTER_S
    while True:
        if sock is not None and job_id in sock.final:
            return sock.final[job_id], "realtime"
        now = time.monotonic()
        if now >= deadline:
            return "", ""
        if now >= next_poll or sock is None or sock.closed:
            load.polls += 1
            with contextlib.suppress(httpx.HTTPError):
                status = await _job_status(http, user, job_id)
                if status in TERMINAL:
                    return str(status), "poll"
            next_poll = time.monotonic() + FALLBACK_POLL_EVERY_S
        wait = max(0.05, min(deadline, next_poll) - time.monotonic())
        if sock is not None and not sock.closed:
            sock.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(sock.changed.wait(), wait)
        else:
            await asyncio.sleep(wait)


async def submit(
    http: httpx.AsyncClient, user: User, kind: str, payload: dict[str, Any], stop_at: float, load: Load
) -> dict[str, Any] | None:
    """enqueue_job as the user; a 429 is obeyed (its hint says when) unless that is past stop_at."""
    while True:
        load.enqueue_attempts += 1
        sent = time.monotonic()
        try:
            response = await http.post(
                "/rest/v1/rpc/enqueue_job", json={"kind": kind, "payload": payload}, headers=user.headers
            )
        except httpx.HTTPError as exc:
            load.transport_errors[f"{kind} {type(exc).__name__}"] += 1
            return None
        elapsed_ms = (time.monotonic() - sent) * 1000
        if response.status_code == 429:
            load.rate_limited[kind] += 1
            hint = _RETRY_HINT.search(str(response.json().get("hint", "")))
            wait = float(hint.group(1)) if hint else 5.0
            if time.monotonic() + wait >= stop_at:
                load.rate_limited_too_late += 1
                return None
            load.rate_limited_wait_s += wait
            await asyncio.sleep(wait)
            continue
        if response.status_code != 200:
            code = response.json().get("code", "") if response.content else ""
            load.api_errors[f"{kind} {response.status_code} {code}"] += 1
            return None
        body = response.json()
        job: dict[str, Any] = body[0] if isinstance(body, list) else body
        job["_enqueue_ms"] = elapsed_ms
        return job


async def user_loop(
    http: httpx.AsyncClient, user: User, plan: Plan, stop_at: float, deadline: float, load: Load
) -> None:
    """Closed loop: submit, wait for the result, think, again, until stop_at."""
    rng = random.Random(plan.seed * 1000 + user.index)
    kinds = [k for k, _ in plan.mix]
    weights = [w for _, w in plan.mix]
    await asyncio.sleep(rng.uniform(0, plan.ramp_s))
    while time.monotonic() < stop_at:
        kind = rng.choices(kinds, weights)[0]
        tag = secrets.token_hex(8)
        job = await submit(http, user, kind, payload_for(kind, tag, rng, plan), stop_at, load)
        if job is not None:
            record = Submission(str(job["id"]), tag, kind, user.index, float(job["_enqueue_ms"]))
            load.submissions.append(record)
            returned = time.monotonic()
            status, via = await wait_final(http, user, record.job_id, deadline, load)
            if status:
                record.final, record.via, record.seen_done_s = status, via, time.monotonic() - returned
            else:
                load.gave_up_waiting += 1
                return
        await asyncio.sleep(rng.uniform(*plan.think_s))


# -- sampling ---------------------------------------------------------------------------------------
@dataclass
class Samples:
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    hwm_mb: float = 0.0
    connections: list[int] = field(default_factory=list)
    by_client_max: Counter[str] = field(default_factory=Counter)
    loadavg: list[float] = field(default_factory=list)
    cpu_pressure: list[float] = field(default_factory=list)  # PSI "some avg10", % of time
    active: list[int] = field(default_factory=list)  # connections running a statement
    waits: Counter[str] = field(default_factory=Counter)  # samples × connections, by wait event
    longest_active_ms: list[float] = field(default_factory=list)
    loop_lag_ms: list[float] = field(default_factory=list)  # this process: oversleep of 100 ms naps
    slot_lag_mb: list[float] = field(default_factory=list)  # the gateway's logical slot behind the WAL
    wal_mb_per_s: list[float] = field(default_factory=list)  # the whole cluster's WAL, all databases
    gateway_tcp: dict[str, list[int]] = field(
        default_factory=lambda: {"established": [], "time_wait_closed_by_client": [], "time_wait_closed_by_gateway": []}
    )


def _tcp_states(port: int) -> tuple[int, int, int]:
    """Connections to the gateway's port: (established, TIME_WAIT on the client side, TIME_WAIT
    on the gateway's side). TIME_WAIT stays 60 s on the side that closed first, so the counts show
    who keeps closing connections instead of reusing them (clients whose pool keeps too few idle
    connections, or the server's keep-alive timeout)."""
    established = by_client = by_gateway = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                state = parts[3]
                if remote_port == port:  # the client's end (both ends live on this machine)
                    established += state == "01"
                    by_client += state == "06"
                elif local_port == port:
                    by_gateway += state == "06"
    return established, by_client, by_gateway


def _cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI)."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(first.split("avg10=")[1].split()[0])


async def sample(database: str, worker_pid: int, gateway_port: int, stop: asyncio.Event, out: Samples) -> None:
    """Every second: the worker's RSS, the scratch database's connections by client and what the
    active ones wait on, and how busy the machine is (load, CPU pressure, this loop's lag)."""
    query = (
        "select usename, coalesce(nullif(application_name, ''), '-'), backend_type, state, "
        "coalesce(wait_event_type || ':' || wait_event, 'cpu'), "
        "extract(epoch from clock_timestamp() - query_start)::float8 * 1000 "
        "from pg_stat_activity where datname = %s and pid <> pg_backend_pid()"
    )
    # Realtime (the worker's wake-ups, the users' broadcasts) is decoded from the gateway's logical
    # slot, which reads the whole cluster's WAL: other databases' writes delay it too.
    wal_query = (
        "select pg_current_wal_lsn() - '0/0'::pg_lsn, "
        "(select max(pg_current_wal_lsn() - confirmed_flush_lsn) from pg_replication_slots where database = %s)"
    )
    last_wal: tuple[float, float] | None = None
    async with await psycopg.AsyncConnection.connect(paths.database_url(database), autocommit=True) as conn:
        started = time.monotonic()
        while not stop.is_set():
            rss = _rss_mb(worker_pid)
            wal_row = await (await conn.execute(wal_query, (database,))).fetchone()
            if wal_row is not None:
                now_wal = (time.monotonic(), float(wal_row[0]))
                if last_wal is not None:
                    out.wal_mb_per_s.append(round((now_wal[1] - last_wal[1]) / 2**20 / (now_wal[0] - last_wal[0]), 2))
                last_wal = now_wal
                out.slot_lag_mb.append(round(float(wal_row[1] or 0) / 2**20, 2))
            rows = await (await conn.execute(query, (database,))).fetchall()
            out.t.append(round(time.monotonic() - started, 2))
            if rss is not None:
                out.rss_mb.append(round(rss[0], 1))
                out.hwm_mb = max(out.hwm_mb, rss[1])
            out.connections.append(len(rows))
            groups = Counter(f"{r[0]} / {r[1]} / {r[2]}" for r in rows)
            for key, n in groups.items():
                out.by_client_max[key] = max(out.by_client_max[key], n)
            # The Realtime feed's connections wait for WAL by design: not work the queue waits on.
            active = [
                r for r in rows if r[3] == "active" and r[2] != "walsender" and not str(r[1]).startswith("devstack_")
            ]
            out.active.append(len(active))
            for r in active:
                out.waits[str(r[4])] += 1
            out.longest_active_ms.append(round(max((float(r[5] or 0) for r in active), default=0.0), 1))
            out.loadavg.append(os.getloadavg()[0])
            pressure = _cpu_pressure()
            if pressure is not None:
                out.cpu_pressure.append(pressure)
            for key, value in zip(out.gateway_tcp, _tcp_states(gateway_port), strict=True):
                out.gateway_tcp[key].append(value)
            for _ in range(5):  # the rest of the second: naps whose oversleep is the scheduling lag
                if stop.is_set():
                    break
                nap = time.monotonic()
                await asyncio.sleep(0.1)
                out.loop_lag_ms.append((time.monotonic() - nap - 0.1) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.45)


# -- analysis ---------------------------------------------------------------------------------------
def union_s(intervals: Sequence[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals (rename batches overlap)."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


@dataclass
class JobFacts:
    id: str
    kind: str
    status: str
    attempts: int
    created: float
    started: float | None
    finished: float | None
    error_type: str | None
    tag: str | None
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def got_429(self) -> bool:
        return any(r["status"] == 429 for r in self.requests)

    @property
    def clean(self) -> bool:
        """Succeeded in one attempt, never deferred, every model request answered."""
        return (
            self.status == "succeeded"
            and self.attempts == 1
            and not self.got_429
            and bool(self.requests)
            and all(r["finished"] is not None for r in self.requests)
            and self.started is not None
            and self.finished is not None
        )

    @property
    def model_s(self) -> float:
        return union_s([(r["started"], r["finished"]) for r in self.requests if r["finished"] is not None])

    @property
    def total_s(self) -> float:
        assert self.finished is not None
        return self.finished - self.created

    @property
    def round_trip_s(self) -> float:
        """The longest single model request of the job: one round trip as the model served it."""
        return max(float(r["finished"]) - float(r["started"]) for r in self.requests)


def read_jobs(database: str) -> dict[str, JobFacts]:
    query = sql.SQL(
        "select id::text, kind, status, attempts, extract(epoch from created_at)::float8 as created, "
        "extract(epoch from started_at)::float8 as started, extract(epoch from finished_at)::float8 as finished, "
        "error->>'type' as error_type, substring(payload::text from {}) as tag from public.jobs"
    ).format(sql.Literal(TAG_PATTERN))
    with psycopg.connect(paths.database_url(database)) as conn:
        rows = conn.execute(query).fetchall()
    return {r[0]: JobFacts(*r) for r in rows}


def fetch_timings(models: str) -> tuple[list[dict[str, Any]], int]:
    out: list[dict[str, Any]] = []
    after, dropped = 0, 0
    with httpx.Client(base_url=models, timeout=30) as http:
        while True:
            page = http.get("/_standin/timings", params={"after": after, "limit": 10_000}).json()
            out.extend(page["timings"])
            after, dropped = page["next_after"], page["dropped"]
            if not page["more"]:
                return out, dropped


def ms(values_s: Sequence[float]) -> list[float]:
    return [v * 1000 for v in values_s]


def pct_ms(values_s: Sequence[float], p: float) -> float | None:
    return round(percentile(sorted(values_s), p) * 1000, 1) if values_s else None


def kind_row(label: str, subs: list[Submission], jobs: dict[str, JobFacts], load: Load) -> dict[str, Any]:
    facts = [jobs[s.job_id] for s in subs if s.job_id in jobs]
    done = [f for f in facts if f.status in TERMINAL and f.finished is not None]
    succeeded = [f for f in done if f.status == "succeeded"]
    clean = [f for f in succeeded if f.clean]
    overhead = [f.total_s - f.model_s for f in clean]
    rate_limited = sum(load.rate_limited.values()) if label == "all" else load.rate_limited[label]
    return {
        "kind": label,
        "submitted": len(subs),
        "completed": len(succeeded),
        "failed": sum(1 for f in done if f.status == "failed"),
        "lost": len(subs) - len(done),
        "rate_limited_at_enqueue": rate_limited,
        "deferred_by_model_429": sum(1 for f in facts if f.got_429),
        "enqueue_to_done_p50_ms": pct_ms([f.total_s for f in succeeded], 50),
        "enqueue_to_done_p99_ms": pct_ms([f.total_s for f in succeeded], 99),
        "model_p50_ms": pct_ms([f.model_s for f in clean], 50),
        "overhead_n": len(overhead),
        "overhead_p50_ms": pct_ms(overhead, 50),
        "overhead_p99_ms": pct_ms(overhead, 99),
        "overhead_max_ms": round(max(overhead) * 1000, 1) if overhead else None,
    }


def overhead_parts(clean: list[JobFacts]) -> dict[str, dict[str, float]]:
    """Where the overhead goes: queue wait, claim → first model request, model gaps, last answer → done."""
    wait, before, gaps, after = [], [], [], []
    for f in clean:
        assert f.started is not None and f.finished is not None
        first = min(r["started"] for r in f.requests)
        last = max(r["finished"] for r in f.requests)
        wait.append(f.started - f.created)
        before.append(first - f.started)
        gaps.append((last - first) - f.model_s)
        after.append(f.finished - last)
    return {
        "enqueue_to_claim": summary(ms(wait)),
        "claim_to_first_model_request": summary(ms(before)),
        "gaps_between_model_requests": summary(ms(gaps)),
        "last_model_answer_to_done": summary(ms(after)),
    }


# -- the run ----------------------------------------------------------------------------------------
def make_token(secret: str, user_id: str) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, secret, "HS256")


async def open_sockets(users: list[User], gateway: str, anon_key: str, tokens: dict[str, str]) -> None:
    gate = asyncio.Semaphore(20)  # joins run an RLS probe each: do not stampede the gateway

    async def one(user: User) -> None:
        async with gate:
            user.socket = await UserSocket.open(gateway, anon_key, user.id, tokens[user.id])

    await asyncio.gather(*(one(u) for u in users))


async def run_probe(
    http: httpx.AsyncClient, user: User, plan: Plan, load: Load, cap_s: float
) -> tuple[list[Submission], str | None]:
    """rename_layers with ``plan.rename_layers`` layers, one at a time, on the idle system."""
    rng = random.Random(plan.seed)
    out: list[Submission] = []
    deadline = time.monotonic() + cap_s
    for _ in range(plan.probe_jobs):
        tag = secrets.token_hex(8)
        job = await submit(http, user, "rename_layers", rename_payload(tag, rng, plan.rename_layers), deadline, load)
        if job is None:
            return out, "a probe job could not be submitted (see api_errors)"
        record = Submission(str(job["id"]), tag, "rename_layers", user.index, float(job["_enqueue_ms"]))
        out.append(record)
        status, via = await wait_final(http, user, record.job_id, deadline, load)
        if not status:
            return out, f"probe job {record.job_id} did not finish within the {cap_s:.0f} s cap"
        record.final, record.via = status, via
        await asyncio.sleep(0.3)
    return out, None


@dataclass
class Stack:
    """What the synchronous setup started, for the asynchronous part."""

    database: str
    gateway: str
    models: str
    anon_key: str
    users: list[User]
    pids: dict[str, int | None]
    worker_port: int


@dataclass
class Collected:
    load: Load = field(default_factory=Load)
    samples: Samples = field(default_factory=Samples)
    probe: list[Submission] = field(default_factory=list)
    probe_problem: str | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    phases_s: dict[str, float] = field(default_factory=dict)
    errors_seen: dict[str, dict[str, Any]] = field(default_factory=dict)


def _cpu_now(pids: dict[str, int | None]) -> dict[str, float | None]:
    return {name: _cpu_s(pid) for name, pid in pids.items()}


async def drive(plan: Plan, st: Stack, tokens: dict[str, str]) -> Collected:
    """The load (users + sampling), then the idle rename probe."""
    got = Collected()
    probe_user, load_users = st.users[-1], st.users[:-1]
    limits = httpx.Limits(max_connections=plan.users + 20, max_keepalive_connections=plan.users + 20)
    async with (
        httpx.AsyncClient(base_url=st.gateway, limits=limits, timeout=30) as http,
        httpx.AsyncClient(base_url=st.models, timeout=10) as control,
    ):
        try:
            mark = time.monotonic()
            await open_sockets(st.users, st.gateway, st.anon_key, tokens)
            got.phases_s["realtime_joins"] = round(time.monotonic() - mark, 1)
            stop_sampling = asyncio.Event()
            port = int(st.gateway.rsplit(":", 1)[1])
            sampler = asyncio.create_task(sample(st.database, st.pids["worker"] or 0, port, stop_sampling, got.samples))
            cpu_before = _cpu_now(st.pids)
            began = time.monotonic()
            stop_at = began + plan.duration_s
            deadline = stop_at + plan.drain_cap_s
            await asyncio.gather(*(user_loop(http, u, plan, stop_at, deadline, got.load) for u in load_users))
            got.window_s = time.monotonic() - began
            got.phases_s["load_and_drain"] = round(got.window_s, 1)
            cpu_after = _cpu_now(st.pids)
            got.cpu_s = {
                name: round(after - before, 1)
                for name, before in cpu_before.items()
                if before is not None and (after := cpu_after.get(name)) is not None
            }
            stop_sampling.set()
            await sampler
            # The idle probe: a fixed latency and no 429s, so wall time vs round trip is clean.
            probe_knobs = {"latency_ms": plan.probe_latency_ms, "error_429_rate": 0}
            (await control.post("/_standin/config", json=probe_knobs)).raise_for_status()
            mark = time.monotonic()
            got.probe, got.probe_problem = await run_probe(http, probe_user, plan, Load(), cap_s=30.0)
            got.phases_s["idle_probe"] = round(time.monotonic() - mark, 1)
            got.metrics = await _worker_metrics(st.worker_port)
        finally:
            got.frames = sum(u.socket.frames for u in st.users if u.socket is not None)
            for u in st.users:
                if u.socket is not None:
                    got.errors_seen.update(u.socket.errors)
            await asyncio.gather(*(u.socket.close() for u in st.users if u.socket is not None))
    return got


def run(ctx: Context) -> ScenarioResult:
    return run_plan(ctx, Plan.for_context(ctx))


def run_plan(ctx: Context, plan: Plan) -> ScenarioResult:
    load_before = os.getloadavg()
    code = code_state()  # before anything starts: the processes import what is on disk now
    logs = ctx.log_dir
    begun = time.monotonic()
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(migrated_database())
        settings = Settings.from_stack(database=database)
        with SqlApi(database) as api:
            ids = [str(api.create_user()) for _ in range(plan.users + 1)]  # the last one runs the probe
        tokens = {uid: make_token(settings.jwt_secret, uid) for uid in ids}
        stack.callback(_remove_artifacts, ids)
        models, models_pid = stack.enter_context(standin_process(logs / f"{NAME}-standins.log"))
        knobs = {
            "latency_min_ms": plan.latency_ms[0],
            "latency_max_ms": plan.latency_ms[1],
            "stream_delay_ms": plan.stream_delay_ms,
            "error_429_rate": plan.error_429_rate,
            "error_429_retry_after": plan.error_429_retry_after_s,
            "random_seed": plan.seed,
            "tag_pattern": TAG_PATTERN,
        }
        httpx.post(f"{models}/_standin/config", json=knobs, timeout=10).raise_for_status()
        gateway = stack.enter_context(gateway_process(database))
        worker_pid, worker_port = stack.enter_context(
            worker_process(plan, gateway, models, settings.service_role_key, database, logs / f"{NAME}-worker.log")
        )
        users = [
            User(i, uid, {"apikey": settings.anon_key, "Authorization": f"Bearer {tokens[uid]}"})
            for i, uid in enumerate(ids)
        ]
        pids = {
            "worker": worker_pid,
            "gateway": _pid_of_gateway(int(gateway.rsplit(":", 1)[1])),
            "model_standins": models_pid,
            "load_generator": os.getpid(),
        }
        st = Stack(database, gateway, models, settings.anon_key, users, pids, worker_port)
        setup_s = time.monotonic() - begun
        got = asyncio.run(drive(plan, st, tokens))
        jobs = read_jobs(database)
        timings, dropped = fetch_timings(models)
        events = _count_events(database)
        stopping = time.monotonic()
    got.phases_s = {"setup": round(setup_s, 1), **got.phases_s, "teardown": round(time.monotonic() - stopping, 1)}
    # Everything is stopped and dropped here; the rest is arithmetic on what was collected.
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for t in timings:
        if t["tag"]:
            by_tag.setdefault(t["tag"], []).append(t)
    for facts in jobs.values():
        facts.requests = by_tag.get(facts.tag or "", [])
    window = max(got.window_s, 1e-9)
    return build_result(
        ctx,
        plan,
        got.load,
        jobs,
        got.samples,
        got.probe,
        got.probe_problem,
        extra={
            "timings_total": len(timings),
            "timings_dropped": dropped,
            "untagged_model_requests": sum(1 for t in timings if not t["tag"]),
            "worker_metrics": got.metrics,
            "job_events": events,
            "cpu_seconds_during_load": got.cpu_s,
            "cpu_share_during_load": {k: round(v / window, 2) for k, v in got.cpu_s.items()},
            "load_window_s": round(got.window_s, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "nproc": os.cpu_count(),
            "realtime_frames_received": got.frames,
            "code_measured": code,
            "db_active_statements_max": max(got.samples.active, default=0),
            "phases_s": got.phases_s,
            "errors_seen_by_users": _error_digest(got.errors_seen, jobs),
        },
    )


async def _worker_metrics(port: int) -> dict[str, float]:
    """The worker's own counters (claimed/succeeded/failed/deferred by kind) from /metrics."""
    wanted = ("worker_jobs_", "worker_wakeups_total", "worker_claim_duration_seconds")
    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://{paths.HOST}:{port}/metrics")).text
        for line in text.splitlines():
            if line.startswith(wanted):
                name, _, value = line.rpartition(" ")
                if "_bucket{" not in name or 'le="+Inf"' in name or name.startswith("worker_claim"):
                    out[name] = float(value)
    return out


def _error_digest(errors: dict[str, dict[str, Any]], jobs: dict[str, JobFacts]) -> dict[str, Any]:
    """Errors the users saw in their jobs' broadcasts (a retry shows one before the job succeeds)."""
    by_type: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for job_id, error in errors.items():
        kind = jobs[job_id].kind if job_id in jobs else "?"
        key = f"{kind}: {error.get('type')}"
        by_type[key] += 1
        examples.setdefault(key, str(error.get("message", ""))[:300])
    return {"jobs_by_kind_and_type": dict(by_type), "example_messages": examples}


def _count_events(database: str) -> dict[str, int]:
    with psycopg.connect(paths.database_url(database)) as conn:
        rows = conn.execute("select type, count(*) from public.job_events group by 1").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}


def _remove_artifacts(user_ids: list[str]) -> None:
    """Generated images land in the stack's Storage folder under <bucket>/<user_id>/: remove ours."""
    root = Settings.from_stack().storage_dir / "job-artifacts"
    for uid in user_ids:
        shutil.rmtree(root / uid, ignore_errors=True)


# -- the result -------------------------------------------------------------------------------------
def build_result(
    ctx: Context,
    plan: Plan,
    load: Load,
    jobs: dict[str, JobFacts],
    samples: Samples,
    probe: list[Submission],
    probe_problem: str | None,
    extra: dict[str, Any],
) -> ScenarioResult:
    subs = load.submissions
    table = [kind_row(k, [s for s in subs if s.kind == k], jobs, load) for k in KINDS]
    table.append(kind_row("all", subs, jobs, load))
    everything = table[-1]

    facts = [jobs[s.job_id] for s in subs if s.job_id in jobs]
    finished = [f for f in facts if f.status in TERMINAL]
    failed = [f for f in finished if f.status == "failed"]
    clean = [f for f in facts if f.clean]
    overhead_s = [f.total_s - f.model_s for f in clean]
    missing = [s.job_id for s in subs if s.job_id not in jobs]
    unfinished = [f.id for f in facts if f.status not in TERMINAL]
    lost = len(missing) + len(unfinished)
    failed_share = len(failed) / len(finished) if finished else 0.0
    api_error_count = sum(load.api_errors.values()) + sum(load.transport_errors.values())
    api_error_share = api_error_count / load.enqueue_attempts if load.enqueue_attempts else 0.0
    error_rate = (len(failed) + api_error_count) / max(1, len(finished) + api_error_count)

    # rename 50 layers: claimed → done against the longest single model request of the job.
    renames = [f for f in clean if f.kind == "rename_layers"]
    load_ratio = [(f.finished - f.started) / f.round_trip_s for f in renames if f.finished and f.started]
    load_excess = [(f.finished - f.started) - f.round_trip_s for f in renames if f.finished and f.started]
    probe_facts = [jobs[p.job_id] for p in probe if p.job_id in jobs]
    probe_clean = [f for f in probe_facts if f.clean]
    probe_rows = [
        {
            "job": f.id,
            "model_requests": len(f.requests),
            "round_trip_ms": round(f.round_trip_s * 1000, 1),
            "batch_start_spread_ms": round(
                (max(r["started"] for r in f.requests) - min(r["started"] for r in f.requests)) * 1000, 1
            ),
            "claimed_to_done_ms": round((f.finished - f.started) * 1000, 1) if f.finished and f.started else None,
            "enqueue_to_done_ms": round(f.total_s * 1000, 1),
            "ratio": round((f.finished - f.started) / f.round_trip_s, 3) if f.finished and f.started else None,
            "overhead_ms": round((f.total_s - f.model_s) * 1000, 1),  # the same definition as under load
        }
        for f in probe_clean
    ]
    idle_ratio = sorted(r["ratio"] for r in probe_rows if r["ratio"] is not None)
    idle_wall = sorted(r["claimed_to_done_ms"] for r in probe_rows if r["claimed_to_done_ms"] is not None)
    idle_trip = sorted(r["round_trip_ms"] for r in probe_rows)

    rss_max = max(samples.rss_mb) if samples.rss_mb else None
    overhead_p99 = pct_ms(overhead_s, 99)
    idle_median_ratio = percentile(idle_ratio, 50) if idle_ratio else None
    goals = [
        Goal(
            "users, lost jobs",
            "200 users with 0 lost jobs",
            f"{plan.users} users, {len(subs)} jobs submitted, {lost} lost ({len(missing)} missing, "
            f"{len(unfinished)} not finished {plan.drain_cap_s:.0f} s after the load stopped)",
            None if plan.users < 200 else lost == 0,
        ),
        Goal(
            "error rate",
            "< 1 % errors",
            f"{error_rate:.2%}: {len(failed)} failed of {len(finished)} finished jobs, "
            f"{api_error_count} REST errors other than 429 of {load.enqueue_attempts} enqueue calls",
            error_rate < 0.01 if finished else None,
        ),
        Goal(
            "worker overhead",
            "p99 ≤ 100 ms (enqueue → done minus model time)",
            f"p99 {overhead_p99} ms, p50 {pct_ms(overhead_s, 50)} ms over {len(overhead_s)} jobs "
            "that succeeded in one attempt without a model 429",
            overhead_p99 <= 100 if overhead_p99 is not None else None,
        ),
        Goal(
            "worker RSS",
            "≤ 200 MB",
            f"max {rss_max} MB (sampled every second), peak VmHWM {samples.hwm_mb:.1f} MB",
            (max(rss_max, samples.hwm_mb) <= 200) if rss_max is not None else None,
        ),
        Goal(
            "rename 50 layers",
            "≈ one model round trip (claimed → done ≤ 1.1 × the longest model request)",
            (
                f"idle: claimed → done {_fmt(percentile(idle_wall, 50) if idle_wall else None)} ms vs round trip "
                f"{_fmt(percentile(idle_trip, 50) if idle_trip else None)} ms, median ratio "
                f"{_fmt(idle_median_ratio, 3)} (n={len(probe_rows)}); under load: ratio p50 "
                f"{_fmt(percentile(sorted(load_ratio), 50) if load_ratio else None, 3)}, p99 "
                f"{_fmt(percentile(sorted(load_ratio), 99) if load_ratio else None, 3)} (n={len(load_ratio)})"
            ),
            idle_median_ratio <= 1.1 if idle_median_ratio is not None else None,
        ),
    ]

    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    names = [
        plots.latency_cdf(
            out / f"{NAME}_enqueue_to_done.png",
            {k: ms([f.total_s for f in facts if f.kind == k and f.status == "succeeded"]) for k in KINDS},
            f"AI workload: enqueue → done, succeeded jobs ({plan.users} users, {plan.duration_s:.0f} s)",
        ),
        plots.latency_cdf(
            out / f"{NAME}_worker_overhead.png",
            {k: ms([f.total_s - f.model_s for f in clean if f.kind == k]) for k in KINDS},
            "AI workload: worker overhead (enqueue → done − model time)",
            xlabel="overhead (ms)",
        ),
        plots.bars(
            out / f"{NAME}_rename50.png",
            {
                "idle: model round trip": percentile(idle_trip, 50) if idle_trip else 0.0,
                "idle: claimed → done": percentile(idle_wall, 50) if idle_wall else 0.0,
                "load: round trip p50": (pct_ms([f.round_trip_s for f in renames], 50) or 0.0),
                "load: claimed → done p50": (
                    pct_ms([f.finished - f.started for f in renames if f.finished and f.started], 50) or 0.0
                ),
            },
            f"rename {plan.rename_layers} layers ({-(-plan.rename_layers // 25)} batches at once) vs one round trip",
            "ms (median)",
        ),
        plots.bars(
            out / f"{NAME}_db_connections.png",
            {client_label(k): v for k, v in samples.by_client_max.most_common()},
            "AI workload: most connections to the scratch database at once, by client",
            "connections",
        ),
    ]

    notes = _notes(plan, load, jobs, facts, clean, samples, extra, probe_problem, error_rate, failed)
    data = {
        "counts": {
            "submitted": len(subs),
            "completed": everything["completed"],
            "failed": len(failed),
            "lost": lost,
            "missing_ids": missing,
            "unfinished_ids": unfinished,
            "throughput_completed_per_s": round(everything["completed"] / plan.duration_s, 2),
            "jobs_in_db_not_acknowledged": sum(
                1 for f in jobs.values() if f.id not in {s.job_id for s in subs} | {p.job_id for p in probe}
            ),
        },
        "error_rate": round(error_rate, 5),
        "failed_share_of_finished": round(failed_share, 5),
        "api_error_share_of_enqueue_calls": round(api_error_share, 5),
        "failed_error_types": dict(Counter(f.error_type or "?" for f in failed)),
        "api_errors": dict(load.api_errors),
        "transport_errors": dict(load.transport_errors),
        "rate_limited_at_enqueue": dict(load.rate_limited),
        "rate_limited_wait_s": round(load.rate_limited_wait_s, 1),
        "rate_limited_too_late_to_retry": load.rate_limited_too_late,
        "enqueue_call_ms": summary([s.enqueue_ms for s in subs]),
        "client_enqueue_return_to_final_seen_ms": summary(ms([s.seen_done_s for s in subs if s.seen_done_s])),
        "final_seen_via": dict(Counter(s.via or "never" for s in subs)),
        "fallback_polls": load.polls,
        "users_gave_up_waiting": load.gave_up_waiting,
        "enqueue_to_done_ms": {
            k: summary(ms([f.total_s for f in facts if f.kind == k and f.status == "succeeded"])) for k in (*KINDS,)
        },
        "enqueue_to_claim_ms": summary(ms([f.started - f.created for f in facts if f.started is not None])),
        "model_time_ms": {k: summary(ms([f.model_s for f in clean if f.kind == k])) for k in KINDS},
        "worker_overhead_ms": {
            "all": summary(ms(overhead_s)),
            **{k: summary(ms([f.total_s - f.model_s for f in clean if f.kind == k])) for k in KINDS},
        },
        "worker_overhead_parts_ms": {
            "all": overhead_parts(clean),
            **{k: overhead_parts([f for f in clean if f.kind == k]) for k in KINDS},
        },
        "excluded_from_overhead": {
            "deferred_by_model_429": sum(1 for f in facts if f.got_429),
            "retried": sum(1 for f in facts if f.attempts > 1 and not f.got_429),
            "not_succeeded": sum(1 for f in facts if f.status != "succeeded"),
        },
        "model_requests": {
            "total": sum(len(f.requests) for f in facts),
            "answered_429": sum(1 for f in facts for r in f.requests if r["status"] == 429),
        },
        "rename50_under_load": {
            "ratio_claimed_to_done_over_round_trip": summary([r * 1000 for r in load_ratio]) | {"unit": "ratio × 1000"},
            "claimed_to_done_minus_round_trip_ms": summary(ms(load_excess)),
        },
        "rename50_idle_probe": {"jobs": probe_rows, "problem": probe_problem},
        "worker_rss_mb": {
            "max": rss_max,
            "final": samples.rss_mb[-1] if samples.rss_mb else None,
            "vmhwm": round(samples.hwm_mb, 1),
            "series": samples.rss_mb,
        },
        "db_connections": {
            "max_total": max(samples.connections) if samples.connections else None,
            "max_by_client": dict(samples.by_client_max),
            "series": samples.connections,
        },
        "loadavg_1m_series": [round(x, 2) for x in samples.loadavg],
        "cpu_pressure_some_avg10_pct": summary(samples.cpu_pressure) | {"unit": "% (not ms)"},
        "load_generator_loop_lag_ms": summary(samples.loop_lag_ms),
        "realtime_slot_lag_mb": {
            "max": max(samples.slot_lag_mb, default=0.0),
            "median": percentile(sorted(samples.slot_lag_mb), 50) if samples.slot_lag_mb else None,
            "series": samples.slot_lag_mb,
        },
        "cluster_wal_mb_per_s": {
            "median": percentile(sorted(samples.wal_mb_per_s), 50) if samples.wal_mb_per_s else None,
            "max": max(samples.wal_mb_per_s, default=0.0),
            "series": samples.wal_mb_per_s,
        },
        "gateway_tcp_connections": {
            **{f"max_{k}": max(v, default=0) for k, v in samples.gateway_tcp.items()},
            "series": samples.gateway_tcp,
        },
        "db_active_statements": {
            "max": max(samples.active, default=0),
            "mean": round(sum(samples.active) / len(samples.active), 1) if samples.active else None,
            "wait_events_by_samples": dict(samples.waits.most_common(12)),
            "longest_running_statement_ms": summary(samples.longest_active_ms),
        },
        "model_429_jobs": dict(
            Counter(f"{f.kind}: attempts {f.attempts}, {f.status}" for f in facts if f.got_429).most_common()
        ),
        **extra,
    }
    return ScenarioResult(
        name=NAME,
        title=f"4. AI workload: {plan.users} plugin users, {plan.duration_s:.0f} s, model stand-ins with "
        f"{plan.latency_ms[0] / 1000:g}–{plan.latency_ms[1] / 1000:g} s latency and "
        f"{plan.error_429_rate:.0%} 429s",
        method=method(plan),
        settings=settings_of(plan, str(extra.get("code_measured", "unknown"))),
        table=table,
        data=data,
        plots=names,
        goals=goals,
        notes=notes,
    )


def client_label(key: str) -> str:
    """A readable name for a ``usename / application_name / backend_type`` group."""
    user, app, backend = key.split(" / ")
    if app == "devstack_realtime":
        return "gateway: Realtime WAL feed"
    if user == "authenticator":
        return "gateway: API pool (REST as JWT role)"
    if user == "postgres" and app == "-" and backend == "client backend":
        return "gateway: admin pool (postgres role)"
    return key


def _fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _notes(
    plan: Plan,
    load: Load,
    jobs: dict[str, JobFacts],
    facts: list[JobFacts],
    clean: list[JobFacts],
    samples: Samples,
    extra: dict[str, Any],
    probe_problem: str | None,
    error_rate: float,
    failed: list[JobFacts],
) -> list[str]:
    notes: list[str] = []
    if plan.users < 200:
        notes.append(f"Quick run ({plan.users} users, {plan.duration_s:.0f} s): a smoke test, not numbers to quote.")
    if failed:
        kinds = Counter(f"{f.kind}: {f.error_type}" for f in failed)
        notes.append(f"{len(failed)} jobs failed: {dict(kinds)}.")
    if load.api_errors or load.transport_errors:
        notes.append(f"REST errors other than 429: {dict(load.api_errors)} {dict(load.transport_errors)}.")
    if load.rate_limited:
        notes.append(
            f"{sum(load.rate_limited.values())} enqueue calls were refused by the per-user rate limits "
            f"({dict(load.rate_limited)}); the users waited the hinted {load.rate_limited_wait_s:.0f} s in total, "
            f"and {load.rate_limited_too_late} hints pointed past the end of the run (those users stopped)."
        )
    if load.polls:
        notes.append(
            f"{load.polls} fallback REST reads: some final statuses did not arrive over Realtime within "
            f"{FALLBACK_POLL_AFTER_S:.0f} s."
        )
    if extra["timings_dropped"]:
        notes.append(f"The stand-ins' timing log dropped {extra['timings_dropped']} entries: model time is incomplete.")
    if clean:
        parts = overhead_parts(clean)
        worst = max(parts, key=lambda k: parts[k].get("p99_ms", 0.0))
        notes.append(
            f"Largest overhead component at p99: {worst.replace('_', ' ')} "
            f"({parts[worst].get('p99_ms')} ms; p50 {parts[worst].get('p50_ms')} ms)."
        )
    share = extra["cpu_share_during_load"]
    if share:
        busy = ", ".join(f"{k} {v:.0%}" for k, v in sorted(share.items(), key=lambda kv: -kv[1]))
        notes.append(
            f"CPU during the load (share of one core): {busy}, on {extra['nproc']} cores; "
            f"load average 1 min peaked at {max(samples.loadavg, default=0):.1f}."
        )
    if samples.cpu_pressure and percentile(sorted(samples.cpu_pressure), 50) >= 50:
        notes.append(
            f"The machine was short of CPU during the load: some runnable task waited for a CPU "
            f"{percentile(sorted(samples.cpu_pressure), 50):.0f} % of the time (median of /proc/pressure/cpu "
            "'some avg10'). Processes outside this scenario count too; latencies are inflated accordingly."
        )
    wait_p50 = pct_ms([f.started - f.created for f in facts if f.started is not None], 50)
    if wait_p50 is not None and wait_p50 > 1000:
        notes.append(
            f"Wake-ups were late: enqueue → claim p50 {wait_p50 / 1000:.1f} s. The worker wakes on Realtime, which the "
            f"gateway decodes from its logical slot; the slot was up to {max(samples.slot_lag_mb, default=0):.0f} MB "
            f"behind the WAL, and the cluster wrote {max(samples.wal_mb_per_s, default=0):.1f} MB/s of WAL at most "
            "(all databases of the shared cluster, not only this one)."
        )
    waits = extra.get("db_active_statements_max")
    if waits is not None and waits <= 2:
        notes.append(
            f"The database was not the bottleneck: at most {waits} statement(s) of the scratch database were "
            "running at any sample."
        )
    digest = extra.get("errors_seen_by_users", {}).get("jobs_by_kind_and_type", {})
    grouped = {k: v for k, v in digest.items() if "internal_error" in k}
    retried_429 = [f for f in facts if f.got_429 and f.attempts > 1]
    if grouped and retried_429:
        notes.append(
            f"{len(retried_429)} jobs that got a model 429 used up an attempt instead of being deferred "
            f"({dict(Counter(f.kind for f in retried_429))}); their users saw {grouped}. rename_layers runs its "
            "batches in an asyncio.TaskGroup, whose ExceptionGroup the runner does not classify as RateLimited."
        )
    if probe_problem:
        notes.append(f"Idle rename probe: {probe_problem}.")
    return notes


def code_state() -> str:
    """The commit measured, and which product files differed from it (the checkout may be shared)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "worker", "devstack", "supabase"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head or 'unknown'}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")


def settings_of(plan: Plan, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "users": plan.users,
        "duration_s": plan.duration_s,
        "user_start_ramp_s": plan.ramp_s,
        "think_time_s": f"uniform {plan.think_s[0]:g}–{plan.think_s[1]:g}",
        "mix": dict(plan.mix),
        "rename_layers_per_job": plan.rename_layers,
        "model_latency_ms": f"uniform {plan.latency_ms[0]}–{plan.latency_ms[1]} per request (time to first byte)",
        "stream_delay_ms": f"{plan.stream_delay_ms} between streamed deltas (generate_edits), after the latency",
        "model_429_rate": plan.error_429_rate,
        "model_429_retry_after_s": plan.error_429_retry_after_s,
        "standin_random_seed": plan.seed,
        "worker": "1 process, python -m worker run",
        "WORKER_STORE": plan.store
        + (" (REST + Realtime via the gateway)" if plan.store == "supabase" else " (psycopg, LISTEN/NOTIFY)"),
        "WORKER_CONCURRENCY": plan.worker_concurrency,
        "PROVIDER_CONCURRENCY": plan.provider_concurrency,
        "worker_other_settings": "LEASE_SECONDS 60, SWEEP_SECONDS 30, PROVIDER_RETRIES 2, "
        "PROVIDER_TIMEOUT_SECONDS 120 (defaults), LOG_LEVEL WARNING",
        "job_kinds": "as migrated: rate_limit_per_minute per user rename_layers 10, generate_design 10, "
        "generate_edits 3, generate_image 3; max_running_per_user 3 / 2 / 1 / 1; max_attempts 3 / 3 / 3 / 2",
        "rename_batch_size": "25 layers per model request (worker/handlers/rename_layers.py)",
        "drain_cap_s": plan.drain_cap_s,
        "idle_probe": f"{plan.probe_jobs} rename jobs of {plan.rename_layers} layers, one at a time, "
        f"fixed latency {plan.probe_latency_ms} ms, no 429s",
        "processes": "gateway, model stand-ins and worker in processes of their own; the users are asyncio "
        "tasks of the scenario process (httpx for REST, one websocket each for Realtime)",
        "database": "scratch database on the shared devstack cluster (127.0.0.1:54322), migrated, dropped after",
    }


def method(plan: Plan) -> str:
    return f"""\
**Setup.** A scratch database is migrated (the product's `job_kinds` and their limits unchanged) and
gets {plan.users} users (+1 for the probe), each with its own JWT (HS256 with the stack's secret, role and
aud `authenticated`). The devstack gateway, the model stand-ins (`python -m devstack.models`) and one
`python -m worker run` (WORKER_STORE={plan.store}; `supabase` claims and reports over REST and wakes on
Realtime) run in processes of their own on free loopback ports. The stand-ins answer every request after a latency
drawn uniformly from {plan.latency_ms[0]}–{plan.latency_ms[1]} ms (streams then send their deltas
{plan.stream_delay_ms} ms apart) and answer {plan.error_429_rate:.0%} of requests 429 at once with
`retry-after: {plan.error_429_retry_after_s:g}`.

**Users.** Each user is a closed loop: pick a kind (mix {", ".join(f"{k} {w:.0%}" for k, w in plan.mix)}),
`POST /rest/v1/rpc/enqueue_job` with the anon key and its own JWT, wait for the job's final status,
think {plan.think_s[0]:g}–{plan.think_s[1]:g} s, repeat. Users start at a random moment in the first
{plan.ramp_s:g} s and stop submitting after {plan.duration_s:g} s. An enqueue refused with 429 (the
per-user rate limit) is retried after the `retry after N seconds` of its hint, and counted as rate
limited, not as an error. The user waits for the result as the plugin does: on its private Realtime
topic `jobs:<uid>` (one websocket per user, joined with its JWT); only if no final broadcast arrives
within {FALLBACK_POLL_AFTER_S:g} s does it read the job over REST. No timing comes from the clients.

**Timings** come from the `jobs` table at the end (database clock): enqueue → done =
`finished_at − created_at` of succeeded jobs. **Model time** of a job: every payload carries a unique
tag in text the worker forwards to the model (the rename context, the design prompt, the edit
instruction, the image prompt); the stand-ins log each request's start (request received) and end
(answer rendered, or the last streamed chunk sent) with the tag, and a job's model time is the length
of the union of its requests' intervals (the two rename batches overlap). **Worker overhead** =
enqueue → done − model time: wake-up and claim, handler start, progress and partial-output writes,
Storage upload (images), `complete_job`. It is reported over jobs that succeeded in one attempt with
no 429 from the model: a deferred job waits its `retry-after` by design. The overhead is also split
into enqueue → claim, claim → first model request, gaps between model requests, and last model answer
→ done (`finished_at`); these mix the database's and the stand-ins' clocks, which are the same machine
clock.

**Errors and losses.** Error rate = (failed jobs + REST errors other than 429) / (finished jobs + those
REST errors). Lost = jobs a user got an id for that are missing from the table or not finished
{plan.drain_cap_s:g} s after submissions stopped.

**Resources.** Every second: the worker's RSS (`VmRSS` in `/proc/<pid>/status`; `VmHWM` is the
kernel's peak) and the scratch database's connections in `pg_stat_activity` by user / application /
backend type, with the wait event of each running statement. CPU seconds per process over the load
window come from `/proc/<pid>/stat`. To tell the product's cost from the machine's state, the run also
records the CPU pressure (`/proc/pressure/cpu`, share of time some runnable task waited for a CPU;
other processes on the machine count), this process's event-loop lag, and the TCP connections to the
gateway's port (TIME_WAIT on the client side = connections a client closed instead of reusing).

**rename {plan.rename_layers} layers vs one round trip.** The worker sends 25 layers per model request,
all batches at once. After the load, on the idle system, {plan.probe_jobs} rename jobs of
{plan.rename_layers} layers run one at a time with a fixed model latency of {plan.probe_latency_ms} ms and
no 429s: claimed → done (`finished_at − started_at`) against the longest single model request of the
job. The same ratio is reported for the rename jobs of the main run. "≈ one round trip" is judged as
a median ratio ≤ 1.1 (two batches in a row would give ≈ 2).
"""
