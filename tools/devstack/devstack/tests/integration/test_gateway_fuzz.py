"""Seeded fuzzing of the whole gateway: no request a user can send gets a 5xx.

Thousands of mutated client requests (templates in fuzz_rest.py and fuzz_services.py, mutations
in fuzz_model.py) over REST tables and views, RPC, Auth, Storage, Realtime's HTTP broadcast and
the edge, under every kind of credential (none, the publishable/anon key, two signed-in users,
forged tokens, correctly signed tokens with hostile claims), a few in concurrent bursts (a
download racing a delete, a sign-out racing a refresh), plus websocket sessions of mutated Phoenix
frames (fuzz_frames.py). Every answer must be below 500, every 4xx body in the error shape its
client parses (fuzz_setup.error_shape), every socket either still answering or closed with a close
frame; afterwards the gateway must be healthy and every jobs row one the worker can parse.

Knobs: GATEWAY_FUZZ_SEED (default 20261204), GATEWAY_FUZZ_COUNT (requests, default 4000),
GATEWAY_FUZZ_SOCKETS (sessions, default 60), GATEWAY_FUZZ_ONLY (one service: rest, rpc, auth,
storage, realtime, edge, or websocket; no sessions unless websocket, no HTTP requests if it is),
GATEWAY_FUZZ_SHOW=1 prints every request.
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import random
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from devstack.testing.fixtures import Stack
from devstack.tests.integration import fuzz_rest, fuzz_services
from devstack.tests.integration.fuzz_frames import decode, encode, session_frames
from devstack.tests.integration.fuzz_model import FuzzRequest, Subjects, generate
from devstack.tests.integration.fuzz_setup import credentials, error_shape, sign_up, subjects
from devstack.tests.integration.realtime_support import ws_url
from devstack.tests.integration.storage_helpers import Buckets, buckets
from worker.core.jobs import Job

__all__ = ["buckets"]  # fixture used by name
pytestmark = pytest.mark.integration

SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "20261204"))
ONLY = os.environ.get("GATEWAY_FUZZ_ONLY") or None
SERVICES = ("rest", "rpc", "auth", "storage", "realtime", "edge", "websocket")
COUNT = int(os.environ.get("GATEWAY_FUZZ_COUNT", "4000" if ONLY != "websocket" else "0"))
SOCKETS = int(os.environ.get("GATEWAY_FUZZ_SOCKETS", "60" if ONLY in (None, "websocket") else "0"))
SHOW = os.environ.get("GATEWAY_FUZZ_SHOW") == "1"
BURST_CHANCE = 0.05  # requests sent together, so races between them happen
FINAL_REF = "fuzz-final"


def _templates(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    every = fuzz_rest.templates(rng, s) + [
        req
        for make in (fuzz_services.auth, fuzz_services.storage, fuzz_services.realtime, fuzz_services.edge)
        for req in make(rng, s)
    ]
    return [req for req in every if ONLY in (None, req.service)]


@pytest.fixture(scope="module")
def fuzz_stack(stack: Stack) -> Stack:
    if not stack.local or stack.jwt_secret is None or stack.publishable_key is None or stack.secret_key is None:
        pytest.skip("fuzzes the in-process local gateway only")
    return stack


def _problem(req: FuzzRequest, answer: httpx.Response) -> str | None:
    if answer.status_code >= 500:
        return f"{answer.status_code}: {answer.text[:200]!r}"
    if answer.status_code < 400 or req.method == "HEAD":
        return None
    try:
        body: Any = answer.json()
    except ValueError:
        return f"{answer.status_code} with a body that is not JSON: {answer.text[:120]!r}"
    shape = error_shape(req.method, answer.request.url.path, answer.status_code, body, answer.headers)
    return None if shape is None else f"{answer.status_code} {shape}: {answer.text[:200]!r}"


async def _send(
    http: httpx.AsyncClient, req: FuzzRequest, creds: dict[str, dict[str, str]], stack: Stack
) -> httpx.Response:
    headers: dict[str, str] = dict(creds.get(req.creds, {}))
    if req.creds == "throwaway":  # sign-out and password changes: never the session the others use
        assert stack.publishable_key is not None
        _, token = await sign_up(http, stack)
        headers = {"apikey": stack.publishable_key, "Authorization": f"Bearer {token}"}
    body = req.encoded_body()
    merged: dict[bytes, bytes] = {k.encode(): v.encode() for k, v in headers.items()}
    if body is not None:
        merged[b"content-type"] = b"application/json"
    merged.update({k.encode(): v for k, v in req.headers.items()})
    request = http.build_request(req.method, req.path, params=tuple(req.params), content=body, headers=merged)
    return await http.send(request)


async def test_no_request_gets_a_5xx(fuzz_stack: Stack, buckets: Buckets) -> None:
    assert ONLY in (None, *SERVICES), f"GATEWAY_FUZZ_ONLY must be one of {', '.join(SERVICES)}"
    if COUNT == 0:
        pytest.skip("GATEWAY_FUZZ_COUNT=0 (or GATEWAY_FUZZ_ONLY=websocket): no HTTP requests")
    rng = random.Random(SEED)
    statuses: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    problems: list[str] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=fuzz_stack.url, timeout=60) as http:
        uid, creds = await credentials(http, fuzz_stack)
        s = await subjects(http, fuzz_stack, uid, buckets.main, creds["user"])
        index = 0
        while index < COUNT:
            size = rng.randint(2, 4) if rng.random() < BURST_CHANCE else 1
            batch = list(enumerate(generate(rng, s, _templates, min(size, COUNT - index)), start=index))
            index += len(batch)
            answers = await asyncio.gather(
                *(_send(http, req, creds, fuzz_stack) for _, req in batch), return_exceptions=True
            )
            for (number, req), answer in zip(batch, answers, strict=True):
                if isinstance(answer, httpx.TransportError):  # a dropped connection: as bad as a 5xx
                    problems.append(f"#{number} {req.describe()}: connection failed: {answer!r}")
                    continue
                if isinstance(answer, BaseException):
                    raise answer
                statuses[req.service][f"{answer.status_code // 100}xx"] += 1
                problem = _problem(req, answer)
                if SHOW or problem:
                    print(f"#{number} {answer.status_code} {req.describe()}" + (f": {problem}" if problem else ""))
                if problem:
                    problems.append(f"#{number} {req.describe()}: {problem}")
        health = await http.get("/health")
        jobs = await http.get("/rest/v1/jobs", params={"select": "*"}, headers=creds["secret"])
    print(f"\nseed {SEED}: {COUNT} requests in {time.monotonic() - started:.1f} s")
    for service, counter in sorted(statuses.items()):
        print(f"  {service:9} {sum(counter.values()):5}  {dict(sorted(counter.items()))}")
    assert not problems, f"{len(problems)} problems, first:\n" + "\n".join(problems[:20])
    assert health.status_code == 200
    # Whatever the fuzz managed to store, the worker can read every row of it.
    assert jobs.status_code == 200
    for row in jobs.json():
        Job.model_validate(row)


@pytest.mark.parametrize(
    ("method", "path", "status", "body", "headers", "ok"),
    [
        ("GET", "/rest/v1/jobs", 400, {"code": "PGRST100", "message": "m", "details": None, "hint": None}, {}, True),
        ("GET", "/rest/v1/jobs", 400, {"message": "m"}, {}, False),
        ("GET", "/rest/v1/jobs", 401, {"message": "Invalid API key", "hint": "h"}, {}, True),
        ("POST", "/auth/v1/signup", 422, {"code": 422, "error_code": "x", "msg": "m"}, {}, True),
        ("POST", "/auth/v1/signup", 422, {"code": "x", "message": "m"}, {}, False),
        ("POST", "/auth/v1/signup", 422, {"code": "x", "message": "m"}, {"X-Supabase-Api-Version": "2024-01-01"}, True),
        ("POST", "/auth/v1/token", 400, {"error": "invalid_grant", "error_description": "d"}, {}, True),
        ("GET", "/storage/v1/bucket", 400, {"statusCode": "400", "error": "e", "message": "m"}, {}, True),
        ("GET", "/storage/v1/bucket", 400, {"statusCode": 400, "message": "m"}, {}, False),
        ("OPTIONS", "/rest/v1/jobs", 400, {"message": "Disallowed CORS method"}, {}, True),
        ("GET", "/nope", 404, ["no"], {}, False),
    ],
)
def test_the_shape_check_refuses_what_a_client_cannot_parse(
    method: str, path: str, status: int, body: Any, headers: dict[str, str], ok: bool
) -> None:
    problem = error_shape(method, path, status, body, httpx.Headers(headers))
    assert (problem is None) == ok, problem


async def _session(
    stack: Stack, frames: list[str | bytes], apikey: str, vsn2: bool, seen: collections.Counter[str]
) -> list[str]:
    """Send the frames, then a heartbeat: the socket must answer it, or have closed properly.
    ``seen`` counts how sessions ended and the replies they got."""
    problems: list[str] = []
    heartbeat = {"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": FINAL_REF}
    url = ws_url(stack, apikey=apikey, vsn="2.0.0" if vsn2 else "1.0.0")
    try:
        async with connect(url, max_size=None, open_timeout=30) as ws:
            for frame in frames:
                await ws.send(frame)
            await ws.send(encode(heartbeat, vsn2))
            async with asyncio.timeout(30):
                async for raw in ws:
                    message = decode(raw)
                    if message is None or message.get("event") != "phx_reply":
                        continue
                    payload = message.get("payload") or {}
                    seen[f"reply {payload.get('status')}"] += 1
                    if payload.get("status") == "error" and not isinstance(
                        (payload.get("response") or {}).get("reason"), str
                    ):
                        problems.append(f"an error reply without a reason: {raw!r:.200}")
                    if message.get("ref") == FINAL_REF:
                        seen["session answered the final heartbeat"] += 1
                        break
    except InvalidStatus as refused:  # an upgrade refused outright (a bad key): a 4xx in JSON
        status = refused.response.status_code
        seen[f"upgrade refused {status}"] += 1
        if status >= 500 or not json.loads(refused.response.body or b"null"):
            problems.append(f"upgrade refused with {status}: {refused.response.body!r:.200}")
    except ConnectionClosed as closed:
        seen[f"closed {closed.rcvd.code if closed.rcvd else 'without a close frame'}"] += 1
        if closed.rcvd is None:
            problems.append(f"closed without a close frame after {len(frames)} frames")
    except TimeoutError:
        problems.append("no answer to the final heartbeat")
    return problems


async def test_no_websocket_frame_drops_the_socket_unanswered(fuzz_stack: Stack) -> None:
    if SOCKETS == 0:
        pytest.skip(f"GATEWAY_FUZZ_ONLY={ONLY}: no websocket sessions")
    assert fuzz_stack.publishable_key is not None
    rng = random.Random(SEED + 1)
    async with httpx.AsyncClient(base_url=fuzz_stack.url, timeout=60) as http:
        uid, creds = await credentials(http, fuzz_stack)
    token = creds["user"]["Authorization"].removeprefix("Bearer ")
    hostile = [
        c["Authorization"].removeprefix("Bearer ")
        for name, c in creds.items()
        if ":" in name or name in ("forged", "alg_none", "wrong_secret", "expired")
    ]
    apikeys = [fuzz_stack.publishable_key, fuzz_stack.anon_key, "sb_publishable_" + "x" * 31, "", "ü"]
    problems: list[str] = []
    seen: collections.Counter[str] = collections.Counter()
    frames_sent = 0
    for index in range(SOCKETS):
        vsn2 = rng.random() < 0.5
        frames = session_frames(rng, uid, token, rng.choice(hostile), vsn2=vsn2)
        frames_sent += len(frames)
        apikey = rng.choices(apikeys, weights=[4, 4, 1, 1, 1])[0]  # most sessions get past the upgrade
        for problem in await _session(fuzz_stack, frames, apikey, vsn2, seen):
            problems.append(f"session #{index}: {problem}")
    print(f"\nseed {SEED + 1}: {SOCKETS} sessions, {frames_sent} frames: {dict(sorted(seen.items()))}")
    assert not problems, "\n".join(problems[:20])
