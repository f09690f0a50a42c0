"""postgres_changes bindings: parse what a client asked for (pure, no database).

Mirrors Extensions.PostgresCdcRls.Subscriptions.parse_subscription_params: ``event`` (``*``
unless INSERT/UPDATE/DELETE), ``schema`` (default public), ``table`` (default ``*``), ``filter``
``col=[not.]op.value`` segments joined by top-level commas (AND), optional ``select`` columns.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

FILTER_OPS = frozenset(
    {"eq", "neq", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is", "match", "imatch", "isdistinct"}
)
IS_VALUES = frozenset({"null", "true", "false", "unknown"})
ACTIONS = ("INSERT", "UPDATE", "DELETE")


class BindingError(ValueError):
    """The text Realtime sends as a ``system`` error for this binding."""


@dataclass(frozen=True)
class Filter:
    column: str
    op: str
    value: str  # for ``in``: a PostgreSQL array literal ``{a,b}``
    negate: bool = False


@dataclass(frozen=True)
class Binding:
    """One postgres_changes binding of a channel; ``id`` is what the join reply echoes."""

    id: int
    event: str  # "*", "INSERT", "UPDATE" or "DELETE"
    schema: str  # may be "*"
    table: str  # may be "*"
    filters: tuple[Filter, ...]
    select: tuple[str, ...] | None

    def names(self, schema: str, table: str) -> bool:
        return self.schema in ("*", schema) and self.table in ("*", table)

    def wants(self, action: str, schema: str, table: str) -> bool:
        return (self.event == "*" or self.event == action) and self.names(schema, table)


def binding_id(params: dict[str, Any]) -> int:
    """A stable integer per distinct binding (Realtime uses :erlang.phash2/1, range 0..2^27-1)."""
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (1 << 27)


def _action(params: dict[str, Any]) -> str:
    event = params.get("event")
    if isinstance(event, str) and event.upper() in ACTIONS:
        return event.upper()
    return "*"


def parse(params: dict[str, Any]) -> Binding:
    """Parse one binding; raise BindingError with Realtime's message when it is unusable."""
    select = _parse_select(params)
    schema, table, filter_text = params.get("schema"), params.get("table"), params.get("filter")
    has = params.keys()
    filters: tuple[Filter, ...] = ()
    if isinstance(schema, str) and isinstance(table, str) and isinstance(filter_text, str):
        filters = parse_filter(filter_text)
    elif isinstance(schema, str) and isinstance(table, str) and "filter" not in has:
        pass
    elif isinstance(schema, str) and "table" not in has and "filter" not in has:
        table = "*"
    elif isinstance(table, str) and "schema" not in has and "filter" not in has:
        schema = "public"
    else:
        shown = {k: v for k, v in params.items() if k not in ("user_token", "auth_token")}
        raise BindingError(
            "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to: "
            + json.dumps(shown)
        )
    assert isinstance(schema, str) and isinstance(table, str)
    if select is not None and "*" in (schema, table):
        raise BindingError(
            "Column selection is not supported for wildcard subscriptions. Provide an explicit schema and table name."
        )
    return Binding(binding_id(params), _action(params), schema, table, filters, select)


def _parse_select(params: dict[str, Any]) -> tuple[str, ...] | None:
    cols = params.get("select")
    if isinstance(cols, str):
        raise BindingError(
            'Error parsing `select` params: expected a list of column name strings, e.g. select: ["col1", "col2"]'
        )
    if isinstance(cols, list):
        names = tuple(c for c in cols if isinstance(c, str))
        return names or None
    return None


def parse_filter(text: str) -> tuple[Filter, ...]:
    text = text.strip()
    if not text:
        return ()
    try:
        return tuple(_parse_segment(seg) for seg in _split_top_level(text))
    except BindingError as exc:
        raise BindingError(f"Error parsing `filter` params: {exc}") from exc


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses and double quotes."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted, escaped = 0, False, False
    for ch in text:
        if quoted:
            current.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                quoted = False
            continue
        if ch == '"' and (not current or current[-1] in ".(,"):
            quoted = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _parse_segment(segment: str) -> Filter:
    seg = segment.strip()
    if not seg:
        raise BindingError("filter must not contain empty segments (check for extra commas)")
    column, eq, rest = seg.partition("=")
    if not eq:
        raise BindingError(json.dumps([seg]))
    negate = rest.startswith("not.")
    if negate:
        rest = rest[len("not.") :]
    op, dot, value = rest.partition(".")
    if not dot:
        raise BindingError(json.dumps([rest]))
    if op not in FILTER_OPS:
        raise BindingError(json.dumps([op, value]))
    if op == "in":
        if len(value) < 2 or not (value.startswith("(") and value.endswith(")")):
            raise BindingError("`in` filter value must be wrapped by parentheses")
        value = "{" + value[1:-1] + "}"
    elif op == "is":
        if value.lower() not in IS_VALUES:
            raise BindingError(json.dumps([op, value]))
        value = value.lower()
    else:
        value = _unquote(value)
    return Filter(column, op, value, negate)


def _unquote(value: str) -> str:
    if not (value.startswith('"') and value.endswith('"') and len(value) >= 2):
        return value
    out: list[str] = []
    chars = iter(value[1:-1])
    for ch in chars:
        if ch == "\\":
            out.append(next(chars, ""))
        elif ch == '"':
            return value  # an unescaped quote inside: keep the original text
        else:
            out.append(ch)
    return "".join(out)
