"""Seeded generator of hostile requests for the gateway fuzz test (tests/integration/test_gateway_fuzz.py).

Each request starts from a template of a real client request (what supabase-js/py, the plugin and
the worker send) and gets one to three mutations: a body value, a query parameter, a header, a
path segment or the credentials replaced by a hostile value. Everything comes from one
``random.Random(seed)``, so a failing request is reproduced by its seed and index.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any

Json = Any


class Raw(str):
    """JSON text inserted as is: what ``json.dumps`` cannot or will not write (NaN, 1e400, depth)."""


def dumps(value: Json) -> str:
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    return json.dumps(value)


def _nested(depth: int, open_: str, close: str) -> Raw:
    return Raw(open_ * depth + close * depth)


HOSTILE_VALUES: list[Json] = [
    None,
    True,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    10**40,
    1.5,
    Raw("1e400"),
    Raw("NaN"),
    Raw("-Infinity"),
    "",
    "\u0000",
    "a\u0000b",
    "x" * 5000,
    "ü𝄞 \u202e",
    "'; drop table public.jobs; --",
    "../../etc/passwd",
    "-infinity",
    "4713-01-01 BC",
    "294277-01-01",
    "00000000-0000-0000-0000-000000000000",
    [],
    [None],
    ["\u0000"],
    [1] * 2000,
    {},
    {"role": ["service_role"]},
    _nested(3000, "[", "]"),
    Raw('{"a":' * 2000 + "1" + "}" * 2000),
]

HOSTILE_TEXT: list[str] = [
    "",
    "\x00",
    "%00",
    "eq.\x00",
    "eq." + "9" * 60,
    "in.(" + "," * 500 + ")",
    "(" * 200,
    ")",
    "not.not.not.eq.1",
    "cs.{",
    "is.maybe",
    "eq.1::text",
    "id::badtype",
    "ü𝄞",
    "x" * 3000,
    "-1",
    str(10**30),
    "NaN",
    "*",
    "a,b,,c",
    "id.desc.nullsfirst.extra",
]

OR_FILTERS: list[str] = [
    "(" + ",".join(f"kind.eq.k{i}" for i in range(400)) + ")",
    "(" + "or(" * 300 + "kind.eq.x" + ")" * 300 + ")",
    "(kind.eq.x,status.in.(a,b),not.and(id.is.null))",
    "((((",
]

HOSTILE_HEADERS: dict[str, list[bytes]] = {
    "prefer": [
        b"return=representation,count=exact",
        b"resolution=merge-duplicates",
        b"tx=rollback",
        b"\xff",
        b"x=" * 500,
    ],
    "range": [b"bytes=x-y", b"bytes=999999999999999999999-", b"0-", b"items=0-9", b"bytes=-0", b"bytes=5-1"],
    "accept": [b"application/vnd.pgrst.object+json", b"text/csv", b"application/octet-stream", b"*/*;q=\x7f", b"x/y"],
    "content-type": [b"text/plain", b"multipart/form-data; boundary=", b"application/json; charset=latin1", b"\x01"],
    "x-upsert": [b"maybe", b"true", b""],
    "cache-control": [b"max-age=\x7f", b"no-store", b"9" * 300],
    "x-metadata": [b"\xff\xfe", b"e30=", b"W10=", b"!!"],
    "content-profile": [b"auth", b"private", b"pg_catalog", b"public, auth"],
    "accept-profile": [b"auth", b"storage", b"x" * 200],
    "x-supabase-api-version": [b"2024-01-01", b"1999-99-99", b"\xff"],
    "origin": [b"https://evil.example", b"null", b"\xff"],
}


@dataclass
class FuzzRequest:
    service: str
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Json = None  # JSON (serialized with dumps) unless content is set
    content: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)
    creds: str = "user"  # a key of the credentials table the test builds
    mutations: list[str] = field(default_factory=list)

    def encoded_body(self) -> bytes | None:
        if self.content is not None:
            return self.content
        return None if self.body is None else dumps(self.body).encode()

    def describe(self) -> str:
        return f"{self.method} {self.path} params={self.params!r} creds={self.creds} mutations={self.mutations}"


@dataclass(frozen=True)
class Subjects:
    """Names the templates refer to: the signed-in user's id and the fuzz bucket."""

    uid: str
    bucket: str


def templates(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    """One of each request a real client sends, with fresh ids."""
    job = str(uuid.uuid4())
    key = f"{s.uid}/fuzz-{rng.randrange(10**6)}.txt"
    obj = f"/storage/v1/object/{s.bucket}/{key}"
    return [
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("select", "id,kind,status"), ("order", "created_at.desc")]),
        FuzzRequest("rest", "GET", "/rest/v1/job_events", [("job_id", f"eq.{job}"), ("limit", "5")]),
        FuzzRequest("rest", "GET", "/rest/v1/job_kinds", [("select", "*")]),
        FuzzRequest("rest", "GET", "/rest/v1/pending_jobs_queue", [("limit", "3")]),
        FuzzRequest("rest", "HEAD", "/rest/v1/jobs", [("status", "eq.queued")]),
        FuzzRequest("rest", "POST", "/rest/v1/jobs", body={"kind": "rename_layers", "payload": {"layers": []}}),
        FuzzRequest("rest", "PATCH", "/rest/v1/jobs", [("id", f"eq.{job}")], body={"status": "succeeded"}),
        FuzzRequest("rest", "DELETE", "/rest/v1/job_stats", [("kind", "eq.x")]),
        FuzzRequest("rest", "GET", "/rest/v1/no_such_table"),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/enqueue_job",
            body={"kind": "rename_layers", "payload": {"layers": [{"id": "1:2", "name": "a"}]}, "priority": 0},
        ),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/cancel_job", body={"job_id": job}),
        FuzzRequest("rpc", "GET", "/rest/v1/rpc/enqueue_job", [("kind", "rename_layers")]),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/claim_jobs",
            body={"worker_id": "fuzz", "kinds": ["rename_layers"], "max_jobs": 0, "lease_seconds": 30},
            creds="secret",
        ),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/report_progress", body={"job_id": job, "percent": 50}),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/renew_leases", body={"worker_id": "fuzz", "job_ids": [job]}),
        FuzzRequest("auth", "POST", "/auth/v1/signup", body={"data": {"plan": "free"}}, creds="publishable"),
        FuzzRequest(
            "auth",
            "POST",
            "/auth/v1/signup",
            body={"email": f"fuzz-{rng.randrange(10**9)}@example.com", "password": "correct horse battery"},
            creds="publishable",
        ),
        FuzzRequest(
            "auth",
            "POST",
            "/auth/v1/token",
            [("grant_type", "password")],
            body={"email": "nobody@example.com", "password": "x" * 8},
            creds="publishable",
        ),
        FuzzRequest("auth", "POST", "/auth/v1/token", [("grant_type", "refresh_token")], body={"refresh_token": "abc"}),
        FuzzRequest("auth", "GET", "/auth/v1/user"),
        FuzzRequest("auth", "PUT", "/auth/v1/user", body={"data": {"theme": "dark"}}),
        FuzzRequest("auth", "GET", "/auth/v1/settings", creds="publishable"),
        FuzzRequest("auth", "GET", "/auth/v1/.well-known/jwks.json", creds="none"),
        FuzzRequest("auth", "POST", "/auth/v1/logout", [("scope", "local")], creds="throwaway"),
        FuzzRequest(
            "storage", "POST", obj, content=b"hello", headers={"content-type": b"text/plain", "x-upsert": b"true"}
        ),
        FuzzRequest("storage", "GET", obj),
        FuzzRequest("storage", "GET", f"/storage/v1/object/authenticated/{s.bucket}/{key}"),
        FuzzRequest("storage", "GET", f"/storage/v1/object/public/{s.bucket}/{key}", creds="none"),
        FuzzRequest(
            "storage",
            "POST",
            f"/storage/v1/object/list/{s.bucket}",
            body={"prefix": s.uid, "limit": 10, "offset": 0, "sortBy": {"column": "name", "order": "asc"}},
        ),
        FuzzRequest("storage", "POST", f"/storage/v1/object/sign/{s.bucket}/{key}", body={"expiresIn": 60}),
        FuzzRequest("storage", "GET", f"/storage/v1/object/sign/{s.bucket}/{key}", [("token", "a.b.c")]),
        FuzzRequest("storage", "DELETE", f"/storage/v1/object/{s.bucket}", body={"prefixes": [key]}),
        FuzzRequest("storage", "GET", "/storage/v1/bucket"),
        FuzzRequest("storage", "GET", f"/storage/v1/bucket/{s.bucket}"),
        FuzzRequest(
            "storage",
            "POST",
            "/storage/v1/bucket",
            body={"id": f"fz{rng.randrange(10**6)}", "name": "x", "public": False, "file_size_limit": 1024},
            creds="secret",
        ),
        FuzzRequest(
            "realtime",
            "POST",
            "/realtime/v1/api/broadcast",
            body={"messages": [{"topic": f"jobs:{s.uid}", "event": "ping", "payload": {"n": 1}, "private": True}]},
        ),
        FuzzRequest(
            "realtime", "POST", f"/realtime/v1/api/broadcast/jobs:{s.uid}/events/ping", body={"payload": {"n": 1}}
        ),
        FuzzRequest("edge", "GET", "/nope"),
        FuzzRequest(
            "edge", "OPTIONS", "/rest/v1/jobs", headers={"origin": b"null", "access-control-request-method": b"POST"}
        ),
        FuzzRequest("edge", "BREW", "/rest/v1/jobs"),
        FuzzRequest("edge", "GET", "/health", creds="none"),
    ]


CREDENTIALS = ("none", "publishable", "anon", "user", "secret", "service_role", "forged", "list_role", "garbage")


def _mutate_body(rng: random.Random, req: FuzzRequest) -> str:
    if isinstance(req.body, dict) and req.body and rng.random() < 0.75:
        name = rng.choice(sorted(req.body))
        choice = rng.random()
        if choice < 0.7:
            req.body[name] = rng.choice(HOSTILE_VALUES)
            return f"body[{name}]"
        if choice < 0.85:
            del req.body[name]
            return f"drop body[{name}]"
        req.body[rng.choice(["id", "user_id", "role", "status", "x" * 70, "\u0000"])] = rng.choice(HOSTILE_VALUES)
        return "extra body key"
    kind = rng.randrange(4)
    if kind == 0:
        req.body = rng.choice(HOSTILE_VALUES)
        return "whole body"
    req.body = None
    req.content = [b"{", b"\xff\xfe{}", b"[" * 100_000, b'{"a":1,"a":2}'][kind]
    return "raw body"


def _mutate(rng: random.Random, req: FuzzRequest) -> str:
    what = rng.randrange(6)
    if what == 0:
        return _mutate_body(rng, req)
    if what == 1:
        if req.params and rng.random() < 0.6:
            i = rng.randrange(len(req.params))
            req.params[i] = (req.params[i][0], rng.choice(HOSTILE_TEXT))
            return f"param {req.params[i][0]}"
        name = rng.choice(["select", "order", "limit", "offset", "or", "and", "on_conflict", "columns", "id", "kind"])
        value = rng.choice(OR_FILTERS) if name in ("or", "and") else rng.choice(HOSTILE_TEXT)
        req.params.append((name, value))
        return f"extra param {name}"
    if what == 2:
        name = rng.choice(sorted(HOSTILE_HEADERS))
        req.headers[name] = rng.choice(HOSTILE_HEADERS[name])
        return f"header {name}"
    if what == 3:
        segments = req.path.split("/")
        i = rng.randrange(3, len(segments)) if len(segments) > 3 else len(segments) - 1
        segments[i] = rng.choice(["%00", "..", "%2e%2e", "x" * 1200, "%FF", "a%2Fb", "~tmp", "ü", ""])
        req.path = "/".join(segments)
        return f"path segment {i}"
    if what == 4:
        req.creds = rng.choice(CREDENTIALS)
        return f"creds {req.creds}"
    req.method = rng.choice(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"])
    return "method"


def generate(rng: random.Random, s: Subjects) -> FuzzRequest:
    req = rng.choice(templates(rng, s))
    for _ in range(rng.randint(1, 3)):
        req.mutations.append(_mutate(rng, req))
    return req
