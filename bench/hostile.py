"""Hostile requests against a gateway process, and how long ``/health`` waits meanwhile.

    python -m bench.hostile [--rounds 5]

Needs the devstack cluster up and migrated (``python -m devstack db up`` or ``up``); starts its own
gateway process on a free loopback port. A measurement, not a test: nothing here asserts on time.
For each case it sends the request ``rounds`` times, one at a time, while another connection polls
``/health`` back to back, and reports how long the hostile request took and the /health latencies
that overlapped it (against a baseline without hostile traffic).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import jwt

from bench.report import ROOT, md_table, save_measurement
from bench.support import gateway_process
from devstack import keys, paths

Send = Callable[[], Awaitable[int]]
JOBS = "/rest/v1/jobs"
# A raw request without an answer by then counts as unanswered (TimeoutError).
NO_ANSWER_SECONDS = 10


@dataclass
class Outcome:
    name: str
    status: int | str
    durations: list[float]
    health: list[float]


def _ms(values: list[float], pick: Callable[[list[float]], float]) -> str:
    return f"{pick(values) * 1000:.0f}" if values else "-"


async def _poll_health(client: httpx.AsyncClient, stop: asyncio.Event, spans: list[tuple[float, float]]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        (await client.get("/health")).raise_for_status()
        spans.append((start, time.perf_counter()))


async def measure(name: str, send: Send, url: str, rounds: int) -> Outcome:
    durations: list[float] = []
    overlapping: list[float] = []
    status: int | str = 0
    async with httpx.AsyncClient(base_url=url, timeout=60) as health:
        for _ in range(rounds):
            spans: list[tuple[float, float]] = []
            stop = asyncio.Event()
            poller = asyncio.create_task(_poll_health(health, stop, spans))
            await asyncio.sleep(0.2)  # the poller is running and its connection open
            start = time.perf_counter()
            try:
                status = await send()
            except (httpx.HTTPError, OSError) as exc:  # a reset connection, or no answer in time
                status = type(exc).__name__
            end = time.perf_counter()
            await asyncio.sleep(0.05)
            stop.set()
            await poller
            durations.append(end - start)
            overlapping.extend(done - began for began, done in spans if began < end and done > start)
    return Outcome(name, status, durations, overlapping)


def http_case(url: str, method: str, path: str, **kwargs: object) -> Send:
    async def send() -> int:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return (await client.request(method, path, **kwargs)).status_code  # type: ignore[arg-type]

    return send


def raw_case(url: str, head: bytes) -> Send:
    """A request head written as is (httpx refuses such URLs); the status from the answer."""
    port = int(url.rsplit(":", 1)[1])

    async def send() -> int:
        reader, writer = await asyncio.open_connection(paths.HOST, port)
        try:
            writer.write(head)
            answer = await asyncio.wait_for(reader.read(), NO_ANSWER_SECONDS)
            return int(answer.split(b" ", 2)[1]) if answer else 0
        finally:
            writer.close()

    return send


def cases(url: str) -> list[tuple[str, Send]]:
    stack = keys.load_or_create()
    now = int(time.time())
    claims = {"sub": str(uuid.uuid4()), "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + 3600}
    user = jwt.encode(claims, stack.jwt_secret, "HS256")
    anon = {"apikey": stack.anon_key}
    anon_json = {**anon, "Content-Type": "application/json"}
    bearer = {"Authorization": f"Bearer {user}"}
    empties = b"[" + b",".join([b"{}"] * 200_000) + b"]"

    def ors(n: int) -> dict[str, str]:
        return {"or": "(" + ",".join(f"kind.eq.k{i}" for i in range(n)) + ")"}

    nested = "(" + "or(" * 1200 + "kind.eq.x" + ")" * 1200 + ")"
    upgrade = (
        f"GET /realtime/v1/websocket?apikey={'a' * 20_000}&vsn=1.0.0 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    ).encode()
    big_header = f"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 600_000}\r\n\r\n".encode()
    bulk = {"content": empties}
    return [
        ("POST /rest/v1/jobs, 200,000 {} (585 KB), anon", http_case(url, "POST", JOBS, **bulk, headers=anon_json)),
        ("same, signed-in user", http_case(url, "POST", JOBS, **bulk, headers={**anon_json, **bearer})),
        ("GET or= 1,000 conditions (the bound), anon", http_case(url, "GET", JOBS, params=ors(1000), headers=anon)),
        ("same, signed-in user", http_case(url, "GET", JOBS, params=ors(1000), headers={**anon, **bearer})),
        ("GET or= 1,001 conditions (refused)", http_case(url, "GET", JOBS, params=ors(1001), headers=anon)),
        ("GET or= nested 1,200 levels (refused)", http_case(url, "GET", JOBS, params={"or": nested}, headers=anon)),
        ("websocket upgrade, 20 KB URL", raw_case(url, upgrade)),
        ("GET, 600 KB header", raw_case(url, big_header)),
    ]


async def run(url: str, rounds: int) -> list[dict[str, object]]:
    async def idle() -> int:
        await asyncio.sleep(0.3)
        return 0

    outcomes = [await measure("(baseline: no hostile request)", idle, url, rounds)]
    for name, send in cases(url):
        outcomes.append(await measure(name, send, url, rounds))
    return [
        {
            "case": o.name,
            "status": o.status or "-",
            "request median ms": _ms(o.durations, statistics.median),
            "request max ms": _ms(o.durations, max),
            "/health median ms": _ms(o.health, statistics.median),
            "/health max ms": _ms(o.health, max),
            "/health n": len(o.health),
        }
        for o in outcomes
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hostile")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    load_before = os.getloadavg()
    with gateway_process() as url:
        rows = asyncio.run(run(url, args.rounds))
    print(f"{args.rounds} rounds each; times in ms")
    print(md_table(rows))
    out = save_measurement("hostile", f"python -m bench.hostile --rounds {args.rounds}", rows, load_before)
    print(f"saved {out.relative_to(ROOT)}/report.json and report.md")


if __name__ == "__main__":
    main()
