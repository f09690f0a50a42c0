"""One hostile request per API surface, each recorded: REST, RPC, Storage and Realtime."""

from __future__ import annotations

import json
import socket
import ssl
import time
from typing import Any

import httpx
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.sync.client import connect

from bench.attack.plant import BUCKET
from bench.attack.recorder import Recorder
from bench.attack.target import Target, User

JOIN_WAIT_S = 3.0
LISTEN_S = 0.3  # after a join: anything pushed meanwhile is scanned for canaries


def send(
    client: httpx.Client,
    rec: Recorder,
    category: str,
    name: str,
    method: str,
    url: str,
    *,
    must_refuse: bool = False,
    **kwargs: Any,
) -> httpx.Response | None:
    if "headers" in kwargs:  # UTF-8 as is: hostile header values need not be ASCII
        kwargs["headers"] = {k: v.encode() for k, v in kwargs["headers"].items()}
    try:
        answer = client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        rec.failed(category, name, exc)
        return None
    rec.response(category, name, answer, must_refuse=must_refuse)
    return answer


def probe_surfaces(
    target: Target,
    client: httpx.Client,
    rec: Recorder,
    category: str,
    name: str,
    headers: dict[str, str],
    a: User,
    planted_object: str | None,
    *,
    as_anon: bool = False,
) -> None:
    """The credential in ``headers`` against REST, RPC and Storage. A forged one must be refused
    everywhere; one that acts as anon (``as_anon``) may read (nothing of A's), but the worker's
    RPC, enqueueing and A's object must still be refused."""
    rest, storage = f"{target.url}/rest/v1", f"{target.url}/storage/v1"
    # (what, method, url, json body, must be refused even as anon)
    probes: list[tuple[str, str, str, Any, bool]] = [
        ("GET jobs", "GET", f"{rest}/jobs?select=*", None, False),
        ("rpc enqueue_job", "POST", f"{rest}/rpc/enqueue_job", {"kind": "rename_layers", "payload": {}}, True),
        ("rpc claim_jobs", "POST", f"{rest}/rpc/claim_jobs", {"worker_id": "x"}, True),
        ("storage list A", "POST", f"{storage}/object/list/{BUCKET}", {"prefix": f"{a.id}/"}, False),
    ]
    if planted_object:
        probes.append(
            ("storage download A", "GET", f"{storage}/object/authenticated/{BUCKET}/{planted_object}", None, True)
        )
    for what, method, url, body, refused_as_anon in probes:
        send(
            client,
            rec,
            category,
            f"{name}: {what}",
            method,
            url,
            json=body,
            headers=headers,
            must_refuse=refused_as_anon or not as_anon,
        )


def realtime_join(
    target: Target,
    rec: Recorder,
    category: str,
    name: str,
    topic_user: str,
    token: str | None,
    *,
    must_refuse: bool,
    postgres_changes: bool = False,
    apikey: str | None = None,
    then_send: dict[str, Any] | None = None,
) -> bool:
    """Join the private topic ``jobs:<topic_user>`` (then send ``then_send`` on it, if given);
    True if the join was accepted. Everything the socket says is scanned for canaries."""
    config: dict[str, Any] = {
        "broadcast": {"self": False},
        "presence": {"enabled": False},
        "private": True,
        "postgres_changes": [],
    }
    if postgres_changes:
        config["postgres_changes"] = [{"event": "*", "schema": "public", "table": "jobs"}]
        config["private"] = False
    payload: dict[str, Any] = {"config": config}
    if token is not None:
        payload["access_token"] = token
    join = {"topic": f"realtime:jobs:{topic_user}", "event": "phx_join", "payload": payload, "ref": "1"}
    url = target.ws_url if apikey is None else target.ws_url.replace(f"apikey={target.client_key}", f"apikey={apikey}")
    heard: list[str] = []
    accepted = False
    try:
        with connect(url, open_timeout=10, close_timeout=2, max_size=2**22) as ws:
            ws.send(json.dumps(join))
            if then_send is not None:  # sent at once, whatever the join's answer
                ws.send(json.dumps({"topic": join["topic"], "ref": "2", **then_send}))
            deadline = time.monotonic() + JOIN_WAIT_S
            while time.monotonic() < deadline:
                try:
                    frame = ws.recv(timeout=max(0.0, deadline - time.monotonic()))
                except TimeoutError:
                    break
                text = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
                heard.append(text)
                message = json.loads(text)
                if message.get("event") == "phx_reply" and message.get("ref") == "1":
                    accepted = message.get("payload", {}).get("status") == "ok"
                    deadline = min(deadline, time.monotonic() + LISTEN_S)
    except InvalidStatus as exc:  # refused at the handshake
        rec.see(
            category,
            name,
            exc.response.status_code,
            exc.response.body or b"",
            must_refuse=must_refuse,
            sent=json.dumps(join),
        )
        return False
    except (WebSocketException, OSError, json.JSONDecodeError) as exc:
        rec.failed(category, name, exc)
        return False
    # A join is an exchange, not an HTTP status: 200 stands for accepted, 403 for refused.
    rec.see(category, name, 200 if accepted else 403, "\n".join(heard), must_refuse=must_refuse, sent=json.dumps(join))
    return accepted


def raw_request(
    target: Target, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    """A request whose path is written as is: httpx removes ``../`` segments before sending."""
    parts = httpx.URL(target.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {parts.host}", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    with socket.create_connection((parts.host, port), timeout=10) as plain:
        sock = (
            ssl.create_default_context().wrap_socket(plain, server_hostname=parts.host)
            if parts.scheme == "https"
            else plain
        )
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    answer = b"".join(chunks)
    status = int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0
    return status, answer


def send_raw(
    target: Target,
    rec: Recorder,
    category: str,
    name: str,
    method: str,
    path: str,
    headers: dict[str, str],
    *,
    must_refuse: bool = False,
) -> None:
    try:
        status, answer = raw_request(target, method, path, headers)
    except OSError as exc:
        rec.failed(category, name, exc)
        return
    rec.see(category, name, status, answer, must_refuse=must_refuse, sent=path)
