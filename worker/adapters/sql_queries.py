"""Named SQL queries from ``queries.sql`` (``-- name: <name>`` headers), parsed once."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

QUERIES_FILE = Path(__file__).with_name("queries.sql")
_HEADER = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    parts = _HEADER.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        lines = [line for line in body.strip().splitlines() if not line.lstrip().startswith("--")]
        sql = "\n".join(lines).strip()
        if not sql:
            raise ValueError(f"{QUERIES_FILE.name}: query {name!r} is empty")
        if name in queries:
            raise ValueError(f"{QUERIES_FILE.name}: query {name!r} is defined twice")
        queries[name] = sql
    return queries


@cache
def queries() -> dict[str, str]:
    return parse(QUERIES_FILE.read_text())
