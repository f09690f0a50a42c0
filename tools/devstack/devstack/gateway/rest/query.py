"""The query string as a whole: select, order, columns, on_conflict, limit/offset, filters and
logic trees, and the bounds on what one request may ask for.

Every bound crossed is a PGRST100 naming the parameter (``errors.param_refused``); with the text
bounded (``MAX_QUERY_CHARS``), parsing and the SQL it leads to stay small and linear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from devstack.gateway.rest.errors import (
    ApiError,
    aggregates_not_allowed,
    not_implemented,
    param_refused,
    parse_error,
)
from devstack.gateway.rest.grammar import (
    Cursor,
    Filter,
    LogicTree,
    OrderTerm,
    SelectItem,
    parse_field,
    parse_field_name,
    parse_filter_value,
    parse_logic,
    raise_not_embedded,
    scan_until,
)

# Hosted Supabase's edge refuses URLs over about 16 KB before PostgREST sees them; these keep the
# parser and the generated SQL small whatever reaches them.
MAX_QUERY_CHARS = 16 * 1024  # all keys and values together
MAX_CONDITIONS = 1000  # filters, counting each leaf of every logic tree
MAX_SELECT_ITEMS = 1000
MAX_ORDER_TERMS = 100
BIGINT_MAX = 2**63 - 1


@dataclass
class QueryParams:
    select: list[SelectItem] = field(default_factory=lambda: [SelectItem(None)])
    filters: list[Filter] = field(default_factory=list)
    logic: list[LogicTree] = field(default_factory=list)
    order: list[OrderTerm] = field(default_factory=list)
    limit: int | None = None
    offset: int = 0
    columns: list[str] | None = None
    on_conflict: list[str] | None = None
    # Query parameters without an operator: RPC arguments for GET calls.
    plain: dict[str, str] = field(default_factory=dict)


def _split_top_level(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for c in text:
        if c == '"':
            quoted = not quoted
        elif not quoted and c == "(":
            depth += 1
        elif not quoted and c == ")":
            depth -= 1
        elif not quoted and depth == 0 and c == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(c)
    parts.append("".join(current))
    return parts


def parse_select(value: str) -> list[SelectItem]:
    items: list[SelectItem] = []
    raws = _split_top_level(value)
    if len(raws) > MAX_SELECT_ITEMS:
        raise param_refused("select parameter", "select", f"more than {MAX_SELECT_ITEMS} items", value=value)
    for raw in raws:
        text = raw.strip()
        if text == "*":
            items.append(SelectItem(None))
            continue
        if "(" in text:
            name = text.split("(", 1)[0]
            if name.endswith(".count") or name.split(":")[-1] in ("count", "") or "." in name:
                raise aggregates_not_allowed()
            raise not_implemented("resource embedding is not supported by the devstack REST gateway")
        cur = Cursor(text, "select parameter")
        alias = None
        head = parse_field(cur)
        if cur.startswith(":") and not cur.startswith("::"):  # an alias, not a cast
            cur.take(":")
            alias = head.name
            head = parse_field(cur)
        cast = None
        if cur.take("::"):
            cast = scan_until(cur, "").strip()
        if not cur.at_end():
            raise cur.error('delimiter (.), "," or end of input')
        items.append(SelectItem(head, alias, cast))
    return items


def parse_order(value: str) -> list[OrderTerm]:
    terms: list[OrderTerm] = []
    cur = Cursor(value, "order")
    while True:
        fld = parse_field(cur)
        if cur.peek() == "(":
            raise not_implemented("ordering by embedded resources is not supported by the devstack REST gateway")
        descending = False
        nulls: Literal["first", "last"] | None = None
        if cur.take(".asc"):
            descending = False
        elif cur.take(".desc"):
            descending = True
        if cur.take(".nullsfirst"):
            nulls = "first"
        elif cur.take(".nullslast"):
            nulls = "last"
        terms.append(OrderTerm(fld, descending, nulls))
        if cur.at_end():
            return terms
        if len(terms) == MAX_ORDER_TERMS:
            raise param_refused("order", "order", f"more than {MAX_ORDER_TERMS} terms", value=value, column=cur.pos + 1)
        if not cur.take(","):
            raise cur.error('"asc", "desc", "nullsfirst" or "nullslast"')


def parse_columns(value: str, what: str) -> list[str]:
    cur = Cursor(value, what)
    names: list[str] = []
    while True:
        while cur.take(" "):
            pass
        names.append(parse_field_name(cur))
        while cur.take(" "):
            pass
        if cur.at_end():
            return names
        cur.expect(",", '"," or end of input')


def _nonneg_int(key: str, value: str) -> int:
    """ASCII digits (a leading "-" is a range error, as in PostgREST); at most a bigint."""
    digits = value[1:] if value.startswith("-") else value
    bad = next((i for i, c in enumerate(digits) if not ("0" <= c <= "9")), None)
    if bad is not None or not digits:
        column = len(value) - len(digits) + (bad if bad is not None else 0)
        found = f'"{value[column]}"' if column < len(value) else "end of input"
        raise parse_error(key, value, column + 1, f"unexpected {found} expecting digit")
    if len(digits) > len(str(BIGINT_MAX)) or int(digits) > BIGINT_MAX:
        raise param_refused(key, key, f"at most {BIGINT_MAX}", value=value)
    if value.startswith("-") and int(digits) > 0:
        raise ApiError(
            416, "PGRST103", "Requested range not satisfiable", details="Limit should be greater than or equal to zero."
        )
    return int(digits)


RESERVED = frozenset({"select", "columns", "on_conflict", "order", "limit", "offset", "apikey"})


def conditions_in(node: Filter | LogicTree) -> int:
    if isinstance(node, Filter):
        return 1
    return sum(conditions_in(child) for child in node.children)


class QueryBudget:
    """What the query string may still spend: characters (checked before a parameter is parsed)
    and conditions (after, at most MAX_QUERY_CHARS of parsing later)."""

    def __init__(self) -> None:
        self.chars = MAX_QUERY_CHARS
        self.conditions = MAX_CONDITIONS

    def admit(self, key: str, value: str) -> None:
        """NUL never reaches Postgres (text cannot hold it); the text stays within MAX_QUERY_CHARS."""
        if "\x00" in key:
            raise param_refused(_meaning(key), key, "the name contains a NUL character (0x00)")
        nul = value.find("\x00")
        if nul != -1:
            raise param_refused(_meaning(key), key, "contains a NUL character (0x00)", value=value, column=nul + 1)
        self.chars -= len(key) + len(value)
        if self.chars < 0:
            raise param_refused(_meaning(key), key, f"the query string is longer than {MAX_QUERY_CHARS} characters")

    def spend(self, key: str, value: str, conditions: int) -> None:
        self.conditions -= conditions
        if self.conditions < 0:
            raise param_refused(
                _meaning(key), key, f"more than {MAX_CONDITIONS} conditions in the request", value=value
            )


def _meaning(key: str) -> str:
    """What PostgREST's parse errors call a parameter's text."""
    named = {"select": "select parameter", "columns": "columns parameter", "on_conflict": "on_conflict parameter"}
    if key in named:
        return named[key]
    if key in ("order", "limit", "offset"):
        return key
    return "logic tree" if key.rsplit(".", 1)[-1] in ("and", "or") else "filter"


def parse_query(items: list[tuple[str, str]], *, rpc_read: bool = False) -> QueryParams:
    """Split the query string into its PostgREST meanings (last value wins for reserved keys)."""
    q = QueryParams()
    budget = QueryBudget()
    for key, value in items:
        budget.admit(key, value)
        last = key.rsplit(".", 1)[-1]
        if key == "select":
            q.select = parse_select(value) if value.strip() else [SelectItem(None)]
        elif key == "columns":
            q.columns = parse_columns(value, "columns parameter")
        elif key == "on_conflict":
            q.on_conflict = parse_columns(value, "on_conflict parameter")
        elif key == "apikey":
            continue  # consumed by the API gateway, as Kong hides it
        elif last in ("order", "limit", "offset") and key != last:
            raise_not_embedded(key)
        elif key == "order":
            if value:
                q.order = parse_order(value)
        elif key == "limit":
            q.limit = _nonneg_int("limit", value)
        elif key == "offset":
            q.offset = _nonneg_int("offset", value)
        elif last in ("and", "or"):
            tree = parse_logic(key, value)
            budget.spend(key, value, conditions_in(tree))
            q.logic.append(tree)
        elif not value:
            continue
        elif rpc_read:
            # For GET /rpc, a value that parses as an operator expression is a filter; else an argument.
            try:
                found = parse_filter_value(key, value)
            except ApiError:
                q.plain[key] = value
                continue
            budget.spend(key, value, 1)
            q.filters.append(found)
        else:
            budget.spend(key, value, 1)
            q.filters.append(parse_filter_value(key, value))
    return q
