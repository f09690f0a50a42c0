"""The gateway fuzz test's request model and its seeded mutations.

A request starts from a template of a real client request (fuzz_rest.py, fuzz_services.py: what
supabase-js/py, the plugin and the worker send) and gets one to three mutations: a body value, a
query parameter, a header, a path segment, the method or the credentials replaced by a hostile
value (fuzz_values.py). Everything comes from one ``random.Random(seed)``, so a failing request is
reproduced by its seed and index.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from devstack.tests.integration.fuzz_tokens import HOSTILE_CLAIMS
from devstack.tests.integration.fuzz_values import (
    HOSTILE_HEADERS,
    HOSTILE_TEXT,
    HOSTILE_VALUES,
    OR_FILTERS,
    Json,
    dumps,
)


@dataclass
class FuzzRequest:
    service: str
    method: str
    path: str
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Json = None  # JSON (serialized with dumps) unless content is set
    content: bytes | None = None
    headers: dict[str, bytes] = field(default_factory=dict)
    creds: str = "user"  # a key of the credentials table (fuzz_setup.credentials)
    mutations: list[str] = field(default_factory=list)

    def encoded_body(self) -> bytes | None:
        if self.content is not None:
            return self.content
        return None if self.body is None else dumps(self.body).encode()

    def describe(self) -> str:
        path = self.path if len(self.path) < 200 else self.path[:200] + "…"
        return f"{self.method} {path} params={self.params!r:.300} creds={self.creds} mutations={self.mutations}"


@dataclass(frozen=True)
class Subjects:
    """What the templates refer to: the signed-in user's id, the fuzz bucket, an object that
    exists in it (``hello world``) and one whose stored metadata holds an unsendable header value."""

    uid: str
    bucket: str
    existing_key: str
    bad_header_key: str


Templates = Callable[[random.Random, Subjects], list[FuzzRequest]]

CREDENTIALS = (
    "none",
    "publishable",
    "anon",
    "user",
    "other_user",
    "secret",
    "service_role",
    "forged",
    "expired",
    "alg_none",
    "wrong_secret",
    "garbage",
    *(f"claims:{i}" for i in range(len(HOSTILE_CLAIMS))),
)


RAW_BODIES: list[bytes] = [
    b"{",
    b"\xff\xfe{}",
    b"[" * 100_000,
    b'{"a":1,"a":2}',
    b"",
    b"\xef\xbb\xbf{}",  # a UTF-8 byte order mark
    "{}".encode("utf-16"),
    b'{"a":"\\ud800"}',  # a lone surrogate
    b"1e999999",
    b"-0",
    b'{"a":1} trailing',
    b"\x00",
]


def _containers(value: Json, path: str) -> list[tuple[dict[str, Json] | list[Json], str]]:
    """Every non-empty object and array in a JSON value, with its path, outermost first."""
    if isinstance(value, dict) and value:
        inner = [c for k, v in value.items() for c in _containers(v, f"{path}.{k}")]
        return [(value, path), *inner]
    if isinstance(value, list) and value:
        return [(value, path), *(c for i, v in enumerate(value) for c in _containers(v, f"{path}[{i}]"))]
    return []


def _mutate_nested(rng: random.Random, req: FuzzRequest) -> str | None:
    """Replace one value below the top level (a sortBy column, a layer's name, a message's topic)."""
    inner = _containers(req.body, "body")[1:]
    if not inner:
        return None
    container, path = rng.choice(inner)
    if isinstance(container, dict):
        name = rng.choice(sorted(container))
        container[name] = rng.choice(HOSTILE_VALUES)
        return f"{path}.{name}"
    i = rng.randrange(len(container))
    container[i] = rng.choice(HOSTILE_VALUES)
    return f"{path}[{i}]"


def _mutate_body(rng: random.Random, req: FuzzRequest) -> str:
    if rng.random() < 0.35:
        nested = _mutate_nested(rng, req)
        if nested is not None:
            return nested
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
    if rng.random() < 0.25:
        req.body = rng.choice(HOSTILE_VALUES)
        return "whole body"
    req.body = None
    req.content = rng.choice(RAW_BODIES)
    return "raw body"


def _mutate_path(rng: random.Random, req: FuzzRequest) -> str:
    segments = req.path.split("/")
    i = rng.randrange(3, len(segments)) if len(segments) > 3 else len(segments) - 1
    segments[i] = rng.choice(["%00", "..", "%2e%2e", "x" * 1200, "%FF", "a%2Fb", "~tmp", "ü", "", "a" * 300])
    req.path = "/".join(segments)
    return f"path segment {i}"


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
        return _mutate_path(rng, req)
    if what == 4:
        req.creds = rng.choice(CREDENTIALS)
        return f"creds {req.creds}"
    req.method = rng.choice(["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"])
    return "method"


def generate(rng: random.Random, s: Subjects, templates: Templates, count: int = 1) -> list[FuzzRequest]:
    """``count`` requests from one set of templates, so they share ids and object keys (sent
    together they race: an upload, a download and a delete of one object). Each is a template as
    is (one in ten: real requests must pass too) or with 1-3 mutations."""
    made = templates(rng, s)
    out: list[FuzzRequest] = []
    for _ in range(count):
        template = rng.choice(made)
        req = dataclasses.replace(template, params=list(template.params), body=copy.deepcopy(template.body))
        req.headers, req.mutations = dict(template.headers), []
        if rng.random() >= 0.1:
            for _ in range(rng.randint(1, 3)):
                req.mutations.append(_mutate(rng, req))
        out.append(req)
    return out
