"""The plugin users: each a closed loop over REST (enqueue_job with its own JWT) that waits for
its job's final status on its private Realtime topic, as the plugin does."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.scenarios.ai_workload.plan import TERMINAL, Plan, payload_for, rename_payload

_RETRY_HINT = re.compile(r"retry after (\d+(?:\.\d+)?) seconds")
_TRANSACTION_STAGE = re.compile(r"(?:^|,)\s*transaction;dur=(\d+(?:\.\d+)?)")
HEARTBEAT_S = 25.0  # Phoenix heartbeat, as realtime-js sends it
FALLBACK_POLL_AFTER_S = 30.0  # no final broadcast by then: read the job over REST (safety net)
FALLBACK_POLL_EVERY_S = 3.0


@dataclass
class Submission:
    job_id: str
    tag: str
    kind: str
    user: int
    enqueue_ms: float  # REST round trip of enqueue_job, client side
    enqueue_tx_ms: float | None = None  # its transaction in the gateway (Server-Timing), server side
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
        self.broadcasts: Counter[str] = Counter()  # messages received, by job id
        self.labels: Counter[tuple[str, str]] = Counter()  # (job id, "job:<status>" or "job_event:<type>")
        self.closed = False
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(cls, gateway: str, anon_key: str, topic: str, token: str) -> UserSocket:
        url = gateway.replace("http://", "ws://") + f"/realtime/v1/websocket?apikey={anon_key}&vsn=1.0.0"
        ws = await connect(url, open_timeout=20, max_size=2**22)
        me = cls(ws, f"realtime:{topic}")
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
                is_job = inner.get("event") == "job"
                job_id = str(body.get("id") if is_job else body.get("job_id"))
                self.broadcasts[job_id] += 1
                self.labels[(job_id, f"job:{body.get('status')}" if is_job else f"job_event:{body.get('type')}")] += 1
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
    topic: str  # the private topic of the user's job status changes (the system's status_topic)
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


def transaction_ms(server_timing: str) -> float | None:
    """The ``transaction`` stage of a PostgREST ``Server-Timing`` header (BEGIN → COMMIT answered), ms."""
    match = _TRANSACTION_STAGE.search(server_timing)
    return float(match.group(1)) if match else None


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
        job["_enqueue_tx_ms"] = transaction_ms(response.headers.get("server-timing", ""))
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
            record = Submission(str(job["id"]), tag, kind, user.index, float(job["_enqueue_ms"]), job["_enqueue_tx_ms"])
            load.submissions.append(record)
            returned = time.monotonic()
            status, via = await wait_final(http, user, record.job_id, deadline, load)
            if status:
                record.final, record.via, record.seen_done_s = status, via, time.monotonic() - returned
            else:
                load.gave_up_waiting += 1
                return
        await asyncio.sleep(rng.uniform(*plan.think_s))


async def open_sockets(users: list[User], gateway: str, anon_key: str, tokens: dict[str, str]) -> None:
    gate = asyncio.Semaphore(20)  # joins run an RLS probe each: do not stampede the gateway

    async def one(user: User) -> None:
        async with gate:
            user.socket = await UserSocket.open(gateway, anon_key, user.topic, tokens[user.id])

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
