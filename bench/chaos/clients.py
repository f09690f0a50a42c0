"""The load of a chaos run: plugin users enqueueing AI jobs over REST with their own JWTs (the AI
workload's payloads and ``submit``), a subset of them subscribed to ``jobs:<uid>`` recording
every status they receive. A subscriber whose socket drops reconnects, rejoins and reads its
unfinished jobs over REST, as the plugin does; the others poll REST for their job's end."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.chaos.history import TERMINAL, Seen
from bench.chaos.plan import ChaosPlan
from bench.scenarios.ai_workload.plan import Plan, payload_for
from bench.scenarios.ai_workload.users import Load, User, submit

HEARTBEAT_S = 20.0
POLL_S = 2.0


@dataclass
class Shared:
    """What every user adds to, read by the checker afterwards."""

    enqueued: dict[str, str] = field(default_factory=dict)  # job id → user id
    seen: dict[str, list[Seen]] = field(default_factory=dict)  # subscribers' records, by job
    load: Load = field(default_factory=Load)
    reconnects: int = 0
    stop_enqueue: bool = False


class Subscriber:
    """One user's private topic, kept joined across drops; every broadcast job status recorded."""

    def __init__(
        self, url: str, anon_key: str, user: User, token: str, shared: Shared, http: httpx.AsyncClient
    ) -> None:
        self.url = url.replace("http://", "ws://").replace("https://", "wss://")
        self.url += f"/realtime/v1/websocket?apikey={anon_key}&vsn=1.0.0"
        self.user, self.token, self.shared, self.http = user, token, shared, http
        self.mine: set[str] = set()  # this user's jobs not yet seen final
        self.changed = asyncio.Event()
        self.joined = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error = ""

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def record(self, job_id: str, status: str, via: str) -> None:
        self.shared.seen.setdefault(job_id, []).append(Seen(time.time(), status, via))
        if status in TERMINAL:
            self.mine.discard(job_id)
            self.changed.set()

    async def _run(self) -> None:
        first = True
        while True:
            try:
                async with connect(self.url, open_timeout=15, max_size=2**22) as ws:
                    await self._join(ws)
                    if not first:
                        self.shared.reconnects += 1
                        await self.catch_up()
                    first = False
                    self.joined.set()
                    beat = asyncio.create_task(self._heartbeat(ws))
                    try:
                        async for raw in ws:
                            self._frame(raw)
                    finally:
                        beat.cancel()
            except Exception as exc:  # any drop or refused join: reconnect
                self.last_error = f"{type(exc).__name__}: {exc}"[:200]
            self.joined.clear()
            await asyncio.sleep(0.5 + random.random())

    async def _join(self, ws: ClientConnection) -> None:
        topic = f"realtime:{self.user.topic}"
        config = {
            "broadcast": {"ack": False, "self": False},
            "presence": {"key": "", "enabled": False},
            "private": True,
        }
        join = {"topic": topic, "event": "phx_join", "payload": {"config": config, "access_token": self.token}}
        await ws.send(json.dumps({**join, "ref": "1", "join_ref": "1"}))
        while True:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 15))
            if frame.get("event") == "phx_reply" and frame.get("ref") == "1":
                if frame["payload"].get("status") != "ok":
                    raise RuntimeError(f"join refused: {frame['payload']}")
                return

    def _frame(self, raw: str | bytes) -> None:
        frame = json.loads(raw)
        inner = frame.get("payload") or {}
        body = inner.get("payload") or {}
        if frame.get("event") == "broadcast" and inner.get("event") == "job" and body.get("status"):
            self.record(str(body.get("id")), str(body["status"]), "realtime")

    async def _heartbeat(self, ws: ClientConnection) -> None:
        ref = 100
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            ref += 1
            await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": str(ref)}))

    async def catch_up(self) -> None:
        """After a reconnect: what happened while the socket was down, read over REST (only final
        statuses are recorded: an older read must not look like a newer state)."""
        pending = sorted(self.mine)
        for i in range(0, len(pending), 50):
            ids = ",".join(pending[i : i + 50])
            with contextlib.suppress(httpx.HTTPError, ValueError):
                response = await self.http.get(
                    "/rest/v1/jobs", params={"id": f"in.({ids})", "select": "id,status"}, headers=self.user.headers
                )
                for row in response.json() if response.status_code == 200 else []:
                    if row["status"] in TERMINAL:
                        self.record(str(row["id"]), str(row["status"]), "rest_after_reconnect")


async def _wait_polling(http: httpx.AsyncClient, user: User, job_id: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
        with contextlib.suppress(httpx.HTTPError, ValueError):
            response = await http.get(
                "/rest/v1/jobs", params={"id": f"eq.{job_id}", "select": "status"}, headers=user.headers
            )
            rows = response.json() if response.status_code == 200 else []
            if rows and rows[0]["status"] in TERMINAL:
                return


async def _wait_subscribed(sub: Subscriber, job_id: str, deadline: float) -> None:
    # A missed broadcast is the checker's business; the user moves on after a bounded wait.
    while job_id in sub.mine and time.monotonic() < deadline:
        sub.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sub.changed.wait(), 5)


async def user_loop(
    http: httpx.AsyncClient, user: User, sub: Subscriber | None, plan: ChaosPlan, stop_at: float, shared: Shared
) -> None:
    rng = random.Random(plan.seed * 1000 + user.index)
    shape = Plan(users=plan.users, duration_s=plan.duration_s, probe_jobs=0, drain_cap_s=0, ramp_s=0, rename_layers=20)
    kinds = [k for k, _ in shape.mix]
    weights = [w for _, w in shape.mix]
    await asyncio.sleep(rng.uniform(0, 3))
    while time.monotonic() < stop_at and not shared.stop_enqueue:
        if sub is not None and not sub.joined.is_set():
            await asyncio.sleep(0.5)  # subscribe first, so no broadcast of the next job is missed
            continue
        kind = rng.choices(kinds, weights)[0]
        job = await submit(http, user, kind, payload_for(kind, secrets.token_hex(8), rng, shape), stop_at, shared.load)
        if job is not None:
            job_id = str(job["id"])
            shared.enqueued[job_id] = user.id
            if len(shared.enqueued) >= plan.max_jobs:
                shared.stop_enqueue = True
            deadline = time.monotonic() + 120
            if sub is not None:
                sub.mine.add(job_id)
                await _wait_subscribed(sub, job_id, deadline)
            else:
                await _wait_polling(http, user, job_id, deadline)
        await asyncio.sleep(rng.uniform(*plan.think_s))
