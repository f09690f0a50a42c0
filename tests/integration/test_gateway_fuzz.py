"""Seeded fuzzing of the whole gateway: no request a user can send gets a 5xx.

Thousands of mutated client requests (tests/integration/fuzz_requests.py) over REST, RPC, Auth,
Storage, Realtime's HTTP broadcast and the edge, under every kind of credential an attacker has
(none, the publishable/anon key, a signed-in user's token, forged tokens, a list ``role``), plus
websocket sessions of mutated Phoenix frames (fuzz_frames.py). Every answer must be below 500,
every error a JSON object with a message, every socket either still answering or closed with a
close frame, and afterwards the gateway must be healthy and every jobs row one the worker can parse.

Knobs: GATEWAY_FUZZ_SEED (default 20261204), GATEWAY_FUZZ_COUNT (requests, default 2500),
GATEWAY_FUZZ_SOCKETS (sessions, default 40), GATEWAY_FUZZ_SHOW=1 prints every request.
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
import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests import jwt_forge
from tests.integration.conftest import Stack
from tests.integration.fuzz_frames import session_frames
from tests.integration.fuzz_requests import FuzzRequest, Subjects, generate
from tests.integration.realtime_support import ws_url
from tests.integration.storage_helpers import Buckets, buckets
from worker.core.jobs import Job

__all__ = ["buckets"]  # fixture used by name
pytestmark = pytest.mark.integration

SEED = int(os.environ.get("GATEWAY_FUZZ_SEED", "20261204"))
COUNT = int(os.environ.get("GATEWAY_FUZZ_COUNT", "2500"))
SOCKETS = int(os.environ.get("GATEWAY_FUZZ_SOCKETS", "40"))
SHOW = os.environ.get("GATEWAY_FUZZ_SHOW") == "1"
FINAL_REF = "fuzz-final"


@pytest.fixture(scope="module")
def fuzz_stack(stack: Stack) -> Stack:
    if not stack.local or stack.jwt_secret is None or stack.publishable_key is None or stack.secret_key is None:
        pytest.skip("fuzzes the in-process local gateway only")
    return stack


def _list_role_token(stack: Stack, sub: str) -> str:
    assert stack.jwt_secret is not None
    claims = jwt_forge.claims(sub=sub)
    claims["role"] = ["service_role", "authenticated"]
    return jwt.encode(claims, stack.jwt_secret, "HS256")


async def _credentials(http: httpx.AsyncClient, stack: Stack) -> tuple[str, dict[str, dict[str, str]]]:
    assert stack.publishable_key is not None and stack.secret_key is not None
    session = (await http.post("/auth/v1/signup", json={}, headers={"apikey": stack.publishable_key})).json()
    uid, token = session["user"]["id"], session["access_token"]
    publishable = {"apikey": stack.publishable_key}

    def bearer(apikey: str, value: str) -> dict[str, str]:
        return {"apikey": apikey, "Authorization": f"Bearer {value}"}

    return uid, {
        "none": {},
        "publishable": publishable,
        "anon": bearer(stack.anon_key, stack.anon_key),
        "user": bearer(stack.publishable_key, token),
        "secret": bearer(stack.secret_key, stack.secret_key),
        "service_role": bearer(stack.service_role_key, stack.service_role_key),
        "forged": bearer(stack.publishable_key, jwt_forge.foreign_es256(jwt_forge.claims(sub=uid))),
        "list_role": bearer(stack.publishable_key, _list_role_token(stack, uid)),
        "garbage": bearer("sb_publishable_" + "x" * 31, "a.b.c"),
    }


def _error_problem(req: FuzzRequest, answer: httpx.Response) -> str | None:
    if answer.status_code >= 500:
        return f"{answer.status_code}"
    if answer.status_code < 400 or req.method == "HEAD":
        return None
    try:
        body: Any = answer.json()
    except ValueError:
        return f"{answer.status_code} with a body that is not JSON: {answer.text[:120]!r}"
    if not isinstance(body, dict):
        return f"{answer.status_code} with a body that is not a JSON object: {answer.text[:120]!r}"
    if req.service == "realtime" and isinstance(body.get("errors"), dict) and body["errors"]:
        return None  # Realtime's changeset errors: {"errors": {"messages": ["can't be blank"]}}
    message = body.get("message") or body.get("msg") or body.get("error_description")
    if not isinstance(message, str) or not message:
        return f"{answer.status_code} without an error message: {answer.text[:200]!r}"
    return None


async def _send(
    http: httpx.AsyncClient, req: FuzzRequest, creds: dict[str, dict[str, str]], stack: Stack
) -> httpx.Response:
    headers: dict[str, Any] = dict(creds.get(req.creds, {}))
    if req.creds == "throwaway":  # sign-out ends a session: never the one the other requests use
        assert stack.publishable_key is not None
        session = (await http.post("/auth/v1/signup", json={}, headers={"apikey": stack.publishable_key})).json()
        headers = {"apikey": stack.publishable_key, "Authorization": f"Bearer {session['access_token']}"}
    body = req.encoded_body()
    if body is not None and "content-type" not in req.headers:
        headers["content-type"] = "application/json"
    merged = {
        k.encode() if isinstance(k, str) else k: v.encode() if isinstance(v, str) else v for k, v in headers.items()
    }
    merged.update({k.encode(): v for k, v in req.headers.items()})
    params = tuple(req.params)  # a tuple: covariant, as httpx's parameter type needs
    request = http.build_request(req.method, req.path, params=params, content=body, headers=merged)
    return await http.send(request)


async def test_no_request_gets_a_5xx(fuzz_stack: Stack, buckets: Buckets) -> None:
    rng = random.Random(SEED)
    statuses: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    problems: list[str] = []
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=fuzz_stack.url, timeout=60) as http:
        uid, creds = await _credentials(http, fuzz_stack)
        subjects = Subjects(uid=uid, bucket=buckets.main)
        for index in range(COUNT):
            req = generate(rng, subjects)
            try:
                answer = await _send(http, req, creds, fuzz_stack)
            except httpx.TransportError as exc:  # the gateway dropped the connection: as bad as a 5xx
                problems.append(f"#{index} {req.describe()}: connection failed: {exc!r}")
                continue
            statuses[req.service][f"{answer.status_code // 100}xx"] += 1
            problem = _error_problem(req, answer)
            if SHOW or problem:
                line = f"#{index} {answer.status_code} {req.describe()}"
                print(line if not problem else f"{line}: {problem}")
            if problem:
                problems.append(f"#{index} {req.describe()}: {problem}")
        health = await http.get("/health")
        jobs = await http.get("/rest/v1/jobs", params={"select": "*"}, headers=creds["secret"])
    print(f"\nseed {SEED}: {COUNT} requests in {time.monotonic() - started:.1f} s")
    for service, counter in sorted(statuses.items()):
        print(f"  {service:9} {sum(counter.values()):5}  {dict(sorted(counter.items()))}")
    assert not problems, f"{len(problems)} problems, first: " + "\n".join(problems[:20])
    assert health.status_code == 200
    # Whatever the fuzz managed to store, the worker can read every row of it.
    assert jobs.status_code == 200
    for row in jobs.json():
        Job.model_validate(row)


async def _session(stack: Stack, frames: list[str | bytes], apikey: str) -> list[str]:
    """Send the frames, then a heartbeat: the socket must answer it, or have closed properly."""
    problems: list[str] = []
    try:
        async with connect(ws_url(stack, apikey=apikey), max_size=None, open_timeout=30) as ws:
            for frame in frames:
                await ws.send(frame)
            await ws.send(json.dumps({"topic": "phoenix", "event": "heartbeat", "payload": {}, "ref": FINAL_REF}))
            async with asyncio.timeout(30):
                async for raw in ws:
                    message = json.loads(raw)
                    if isinstance(message, dict) and message.get("event") == "phx_reply":
                        payload = message.get("payload") or {}
                        if payload.get("status") == "error" and not isinstance(
                            (payload.get("response") or {}).get("reason"), str
                        ):
                            problems.append(f"an error reply without a reason: {raw!r:.200}")
                        if message.get("ref") == FINAL_REF:
                            break
    except InvalidStatus as refused:  # an upgrade refused outright (a bad key): a 4xx in JSON
        status = refused.response.status_code
        if status >= 500 or not json.loads(refused.response.body or b"null"):
            problems.append(f"upgrade refused with {status}: {refused.response.body!r:.200}")
    except ConnectionClosed as closed:
        if closed.rcvd is None:
            problems.append(f"closed without a close frame after {len(frames)} frames")
    except TimeoutError:
        problems.append("no answer to the final heartbeat")
    return problems


async def test_no_websocket_frame_drops_the_socket_unanswered(fuzz_stack: Stack) -> None:
    assert fuzz_stack.publishable_key is not None
    rng = random.Random(SEED + 1)
    async with httpx.AsyncClient(base_url=fuzz_stack.url, timeout=60) as http:
        uid, creds = await _credentials(http, fuzz_stack)
    token = creds["user"]["Authorization"].removeprefix("Bearer ")
    hostile = creds["list_role"]["Authorization"].removeprefix("Bearer ")
    apikeys = [fuzz_stack.publishable_key, fuzz_stack.anon_key, "sb_publishable_" + "x" * 31]
    problems: list[str] = []
    frames_sent = 0
    for index in range(SOCKETS):
        frames = session_frames(rng, uid, token, hostile)
        frames_sent += len(frames)
        for problem in await _session(fuzz_stack, frames, rng.choice(apikeys)):
            problems.append(f"session #{index}: {problem}")
    print(f"\nseed {SEED + 1}: {SOCKETS} sessions, {frames_sent} frames")
    assert not problems, "\n".join(problems[:20])
