"""Hostile values for the gateway fuzz test (tests/integration/test_gateway_fuzz.py).

What a mutation puts in place of a real client's value: JSON values ``json.dumps`` will not write
(NaN, 1e400, thousands of levels), NUL, integers beyond bigint, long and non-ASCII strings, wrong
types, PostgREST query text, and header values a client can send (non-ASCII bytes included).
"""

from __future__ import annotations

import base64
import json
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
    "\x7f",
    "text/plain\r\nx-injected: 1",
    "9" * 2000,
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
        b"params=single-object",
        b"missing=default, return=representation",
        b"handling=strict, foo=bar",
        b"max-affected=-1",
        b"count=exact, count=planned",
        b"return=headers-only",
        b"timezone=Mars/Olympus",
        b"\xff",
        b"x=" * 500,
    ],
    "range": [
        b"bytes=x-y",
        b"bytes=999999999999999999999-",
        b"0-",
        b"items=0-9",
        b"bytes=-0",
        b"bytes=5-1",
        b"bytes=0-1",
        b"bytes=2-",
        b"bytes=-3",
        b"bytes=0-0,2-3",
        b"bytes=100-200",
        b"0-9",
        b"5-2",
        b"-1",
    ],
    "accept": [
        b"application/vnd.pgrst.object+json",
        b"text/csv",
        b"application/octet-stream",
        b"*/*;q=\x7f",
        b"x/y",
        b"application/geo+json",
        b"application/vnd.pgrst.plan+json",
        b"application/vnd.pgrst.array+json;nulls=stripped",
        b"application/json; q=0, text/plain",
    ],
    "content-type": [
        b"text/plain",
        b"multipart/form-data; boundary=",
        b"application/json; charset=latin1",
        b"\x01",
        "text/ü".encode(),
        b"image/png; x=\x7f",
        b"text/csv",
        b"application/x-www-form-urlencoded",
        b"application/octet-stream",
    ],
    "x-upsert": [b"maybe", b"true", b""],
    "cache-control": [b"max-age=\x7f", b"no-store", b"9" * 300, "max-age=ü".encode()],
    "x-metadata": [
        b"\xff\xfe",
        b"e30=",
        b"W10=",
        b"!!",
        "ü".encode(),
        base64.b64encode(b'{"a":"\\u0000"}'),
        base64.b64encode(b"[" * 5000),
    ],
    "content-profile": [b"auth", b"private", b"pg_catalog", b"public, auth"],
    "accept-profile": [b"auth", b"storage", b"x" * 200],
    "x-supabase-api-version": [b"2024-01-01", b"1999-99-99", b"\xff"],
    "origin": [b"https://evil.example", b"null", b"\xff"],
    "authorization": [b"Bearer", b"Bearer \xff", b"Basic eDp5", b"Bearer a.b", b"bearer  x.y.z"],
    "apikey": [b"", b"\xfc", b"sb_secret_x", b"eyJ.eyJ.x"],
    "x-client-info": ["supabase-js/2 ü".encode(), b"\x7f"],
}
