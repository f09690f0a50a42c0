"""(d) A seeded fuzzer: malformed HTTP requests to every service, and malformed websocket frames to
Realtime, all as user B (or anonymous). Nothing may answer 5xx, leak a canary of A's, or write
to A's rows; a Realtime join of A's private topic must never be accepted.

Generated from ``random.Random(seed)`` (the same seed replays the same requests), by mutating the
shapes the API takes: PostgREST's filter grammar, JSON bodies (deep, huge numbers, lone
surrogates, truncated), Prefer/Range/Accept/Content-Type headers, Storage keys.
"""

from __future__ import annotations

import json
import random
import urllib.parse
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect
from websockets.sync.connection import Connection

from bench.attack.fuzz_values import COLUMNS, METHODS, OPS, PATHS, PREFERS, STRANGE
from bench.attack.plant import BUCKET, Planted
from bench.attack.recorder import Recorder
from bench.attack.surfaces import send
from bench.attack.target import Target, User


class Fuzzer:
    def __init__(self, seed: int, a: User, planted: Planted) -> None:
        self.rng = random.Random(seed)
        self.a = a
        self.planted = planted

    def pick(self, values: list[str]) -> str:
        return self.rng.choice(values)

    def value(self) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.pick(STRANGE)
        if r < 0.5:
            return self.rng.choice([*self.planted.job_ids, self.a.id])
        if r < 0.6:
            return "(" + ",".join(self.value() for _ in range(self.rng.randint(0, 4))) + ")"
        return "".join(chr(self.rng.randint(32, 0x2FF)) for _ in range(self.rng.randint(0, 30)))

    def json_value(self, depth: int = 0) -> Any:
        r = self.rng.random()
        if depth > 40 or r < 0.35:
            return self.rng.choice([None, True, 0, -1, 10**30, 1.5e308, "", self.value(), self.a.id])
        if r < 0.65:
            return [self.json_value(depth + 1) for _ in range(self.rng.randint(0, 3))]
        keys = [
            "kind",
            "payload",
            "job_id",
            "job_ids",
            "worker_id",
            "prefix",
            "expiresIn",
            "user_id",
            "status",
            "idempotency_key",
            "depends_on",
            "run_at",
            "priority",
            "paths",
            "messages",
            self.value(),
        ]
        return {self.pick(keys): self.json_value(depth + 1) for _ in range(self.rng.randint(0, 4))}

    def body(self) -> bytes:
        r = self.rng.random()
        if r < 0.15:
            return b""
        if r < 0.3:
            return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 200)))
        text = json.dumps(self.json_value())
        if r < 0.4:
            return text[: self.rng.randint(0, len(text))].encode()  # truncated
        if r < 0.45:
            depth = self.rng.randint(50, 5000)
            return ("[" * depth + "]" * depth).encode()
        return text.encode("utf-8", "surrogatepass")

    def params(self) -> list[tuple[str, str]]:
        out = []
        for _ in range(self.rng.randint(0, 5)):
            r = self.rng.random()
            if r < 0.5:
                out.append((self.pick(COLUMNS), f"{self.pick(OPS)}.{self.value()}"))
            elif r < 0.65:
                out.append(("or", f"({self.pick(COLUMNS)}.{self.pick(OPS)}.{self.value()},{self.value()})"))
            elif r < 0.8:
                out.append(("select", ",".join(self.pick(COLUMNS) for _ in range(self.rng.randint(1, 4)))))
            else:
                out.append((self.pick(["order", "limit", "offset", "on_conflict", "columns", "apikey"]), self.value()))
        return out

    def near_valid(self, target: Target, b: User) -> tuple[str, str, dict[str, Any]]:
        """A well-formed request with one hostile part: gets past the parsers into the queries."""
        headers = target.headers(b.token, **{"Content-Type": "application/json"})
        if self.rng.random() < 0.6:
            table = self.pick(["jobs", "job_events", "usage_ledger", "my_spend", "job_stats", "active_jobs"])
            column = self.pick(["id", "user_id", "status", "kind", "payload->>note", "result->renamed", "created_at"])
            query = f"{_quote(column)}={_quote(self.pick(OPS[:10]))}.{_quote(self.value())}"
            if self.rng.random() < 0.5:
                query += "&select=" + _quote(self.pick(["*", "id,payload", "*,job_events(*)", "x:payload->note"]))
            return (
                f"GET {table} {column}",
                f"{target.url}/rest/v1/{table}?{query}",
                {"method": "GET", "headers": headers},
            )
        fn = self.pick(["enqueue_job", "cancel_job"])
        body: dict[str, Any] = (
            {"kind": "rename_layers", "payload": {"layers": []}, "depends_on": self.rng.choice(self.planted.job_ids)}
            if fn == "enqueue_job"
            else {"job_id": self.rng.choice(self.planted.job_ids)}
        )
        field = self.rng.choice(list(body))
        body[field] = self.json_value(1) if self.rng.random() < 0.5 else self.value()
        return (
            f"POST rpc {fn} {field}",
            f"{target.url}/rest/v1/rpc/{fn}",
            {"method": "POST", "headers": headers, "content": json.dumps(body).encode("utf-8", "surrogatepass")},
        )

    def request(self, target: Target, b: User) -> tuple[str, str, dict[str, Any]]:
        if self.rng.random() < 0.5:
            return self.near_valid(target, b)
        method, path = self.pick(METHODS), self.pick(PATHS)
        if self.rng.random() < 0.2:
            key = _quote(self.value(), safe="/")
            path = f"/storage/v1/object/{self.pick(['', 'authenticated/', 'info/', 'public/'])}{BUCKET}/{key}"
        token = b.token if self.rng.random() < 0.8 else None
        headers = target.headers(token)
        if self.rng.random() < 0.4:
            headers["Prefer"] = self.pick(PREFERS)
        if self.rng.random() < 0.3:
            headers["Content-Type"] = self.pick(
                [
                    "application/json",
                    "text/csv",
                    "application/octet-stream",
                    "application/x-www-form-urlencoded",
                    "multipart/form-data",
                    "x/y",
                ]
            )
        if self.rng.random() < 0.2:
            headers["Accept"] = self.pick(
                [
                    "text/csv",
                    "application/vnd.pgrst.object+json",
                    "application/openapi+json",
                    "application/geo+json",
                    "*/*",
                    "x/y",
                ]
            )
        if self.rng.random() < 0.15:
            headers["Range"] = self.pick(["0-0", "5-1", "-1", "0-999999999", "x", "items=0-1"])
        name = f"{method} {path[:60]}"
        query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in self.params())
        url = f"{target.url}{path}" + (f"?{query}" if query else "")
        return name, url, {"method": method, "headers": headers, "content": self.body()}

    def frame(self, b: User) -> str | bytes:
        r = self.rng.random()
        if r < 0.1:
            return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(1, 100)))
        if r < 0.2:
            return json.dumps(self.json_value())
        if r < 0.25:
            return "[" * 600 + "]" * 600
        topic = self.pick(
            [f"realtime:jobs:{self.a.id}", f"realtime:jobs:{b.id}", "realtime:" + self.value(), "phoenix", self.value()]
        )
        config = {
            "private": self.rng.random() < 0.7,
            "broadcast": self.json_value(2),
            "postgres_changes": [
                {
                    "event": "*",
                    "schema": "public",
                    "table": self.pick(["jobs", "job_events", self.value()]),
                    "filter": f"{self.pick(COLUMNS)}={self.pick(OPS)}.{self.value()}",
                }
            ],
        }
        payload = {"config": config, "access_token": self.rng.choice([b.token, None, self.value()])}
        message: Any = {
            "topic": topic,
            "event": self.pick(
                ["phx_join", "broadcast", "access_token", "heartbeat", "presence", "phx_leave", self.value()]
            ),
            "payload": payload if self.rng.random() < 0.8 else self.json_value(),
            "ref": self.value(),
        }
        if self.rng.random() < 0.3:
            message = [self.value(), message["ref"], topic, message["event"], message["payload"]]  # v2 array form
        return json.dumps(message)


def _quote(value: str, safe: str = "(),.*:->!") -> str:
    """Percent-encoded UTF-8, lone surrogates included (as invalid UTF-8: hostile on purpose)."""
    return urllib.parse.quote(value.encode("utf-8", "surrogatepass"), safe=safe)


def run_http(target: Target, client: httpx.Client, rec: Recorder, fuzz: Fuzzer, b: User, count: int) -> None:
    for _ in range(count):
        name, url, kwargs = fuzz.request(target, b)
        send(client, rec, "fuzz-http", name, kwargs.pop("method"), url, **kwargs)


def run_ws(target: Target, rec: Recorder, fuzz: Fuzzer, b: User, count: int) -> None:
    """``count`` frames over as many connections as the server's closes make necessary."""
    sent = 0
    while sent < count:
        try:
            with connect(target.ws_url, open_timeout=10, close_timeout=2, max_size=2**22) as ws:
                while sent < count:
                    frame = fuzz.frame(b)
                    sent += 1
                    ws.send(frame)
                    _judge(rec, fuzz, ws, frame)
        except ConnectionClosed as closed:
            # A close is the server's answer to a bad frame: counted as a refused one, then reconnect.
            rec.see("fuzz-ws", "frame (socket closed)", 400, str(closed))
        except (WebSocketException, OSError) as exc:
            rec.failed("fuzz-ws", "connect", exc)
            sent += 1


def _judge(rec: Recorder, fuzz: Fuzzer, ws: Connection, frame: str | bytes) -> None:
    heard: list[str] = []
    try:
        while True:
            got = ws.recv(timeout=0.05)
            heard.append(got if isinstance(got, str) else got.decode("utf-8", "replace"))
    except TimeoutError:
        pass
    text = "\n".join(heard)
    breach = (
        isinstance(frame, str)
        and f"jobs:{fuzz.a.id}" in frame
        and '"private": true' in frame
        and ('"status":"ok"' in text.replace(" ", "") and f"jobs:{fuzz.a.id}" in text and "phx_join" in frame)
    )
    sent = frame if isinstance(frame, str) else frame.decode("utf-8", "replace")
    rec.see("fuzz-ws", "frame", 403 if not breach else 200, text, must_refuse=breach, sent=sent)
