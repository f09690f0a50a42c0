"""PostgREST's query-string grammar: select, filters, logic trees (or/and), order and columns.

Pure parsing into small dataclasses; nothing here knows about SQL or the catalog. Errors are
PGRST100 with PostgREST's message shape (``"failed to parse filter (x)" (line 1, column n)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NoReturn

from devstack.gateway.rest.errors import ApiError, aggregates_not_allowed, not_embedded, not_implemented, parse_error

# Operators taking one value; the SQL for each lives in sqlgen.
SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
OPERATOR_EXPECTED = '"not" or operator (eq, gt, ...)'


@dataclass(frozen=True)
class JsonStep:
    arrow: Literal["->", "->>"]
    key: str


@dataclass(frozen=True)
class Field:
    name: str
    path: tuple[JsonStep, ...] = ()


@dataclass(frozen=True)
class OpExpr:
    negated: bool
    operator: str  # eq, in, is, fts, ...
    value: str | tuple[str, ...]
    quantifier: Literal["any", "all"] | None = None
    language: str | None = None


@dataclass(frozen=True)
class Filter:
    field: Field
    expr: OpExpr


@dataclass(frozen=True)
class LogicTree:
    negated: bool
    operator: Literal["and", "or"]
    children: tuple[Filter | LogicTree, ...]


@dataclass(frozen=True)
class SelectItem:
    field: Field | None  # None means '*'
    alias: str | None = None
    cast: str | None = None


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool = False
    nulls: Literal["first", "last"] | None = None


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


class Cursor:
    """A position in one parameter value, producing PostgREST-shaped parse errors."""

    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.pos = 0
        self.what = what

    def peek(self, n: int = 1) -> str:
        return self.text[self.pos : self.pos + n]

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def startswith(self, s: str) -> bool:
        return self.text.startswith(s, self.pos)

    def take(self, s: str) -> bool:
        if self.startswith(s):
            self.pos += len(s)
            return True
        return False

    def expect(self, s: str, expecting: str) -> None:
        if not self.take(s):
            raise self.error(expecting)

    def error(self, expecting: str) -> ApiError:
        found = f'"{self.text[self.pos]}"' if not self.at_end() else "end of input"
        unexpected = f"unexpected {found}" if not self.at_end() else "unexpected end of input"
        return parse_error(self.what, self.text, self.pos + 1, f"{unexpected} expecting {expecting}")


def _is_ident_char(c: str) -> bool:
    return c.isalnum() or c in "_ $"


def parse_field_name(cur: Cursor) -> str:
    """A double-quoted name (backslash escapes) or a run of identifier characters (and lone '-')."""
    if cur.take('"'):
        out: list[str] = []
        while not cur.at_end() and cur.peek() != '"':
            if cur.peek() == "\\" and cur.pos + 1 < len(cur.text):
                cur.pos += 1
            out.append(cur.peek())
            cur.pos += 1
        cur.expect('"', '"\\""')
        return "".join(out)
    start = cur.pos
    while not cur.at_end():
        c = cur.peek()
        if _is_ident_char(c) or (c == "-" and cur.peek(2) != "->"):
            cur.pos += 1
        else:
            break
    name = cur.text[start : cur.pos].strip()
    if not name:
        raise cur.error("field name (* or [a..z0..9_$])")
    return name


def parse_field(cur: Cursor) -> Field:
    name = parse_field_name(cur)
    steps: list[JsonStep] = []
    while cur.startswith("->"):
        arrow: Literal["->", "->>"] = "->>" if cur.take("->>") else "->"
        if arrow == "->":
            cur.take("->")
        steps.append(JsonStep(arrow, parse_field_name(cur)))
    return Field(name, tuple(steps))


# --- operator expressions ------------------------------------------------------------------------


def _quoted(cur: Cursor) -> str | None:
    """A double-quoted value, only if the next char ends the element (like PostgREST's try)."""
    if cur.peek() != '"':
        return None
    start = cur.pos
    cur.pos += 1
    out: list[str] = []
    while not cur.at_end() and cur.peek() != '"':
        if cur.peek() == "\\" and cur.pos + 1 < len(cur.text):
            cur.pos += 1
        out.append(cur.peek())
        cur.pos += 1
    if cur.take('"') and (cur.at_end() or cur.peek() in ",)"):
        return "".join(out)
    cur.pos = start
    return None


def _until(cur: Cursor, stops: str) -> str:
    start = cur.pos
    while not cur.at_end() and cur.peek() not in stops:
        cur.pos += 1
    return cur.text[start : cur.pos]


def _list_value(cur: Cursor) -> tuple[str, ...]:
    cur.expect("(", '"("')
    items: list[str] = []
    while True:
        quoted = _quoted(cur)
        items.append(quoted if quoted is not None else _until(cur, ",)"))
        if cur.take(","):
            continue
        cur.expect(")", '"," or ")"')
        return tuple(items)


def _logic_value(cur: Cursor) -> str:
    quoted = _quoted(cur)
    if quoted is not None:
        return quoted
    if cur.peek() == "{":
        end = cur.text.find("}", cur.pos)
        if end != -1:
            value = cur.text[cur.pos : end + 1]
            cur.pos = end + 1
            return value
    return _until(cur, ",)")


def parse_op_expr(cur: Cursor, *, in_logic: bool) -> OpExpr:
    negated = cur.take("not.")
    start = cur.pos

    def single() -> str:
        if in_logic:
            return _logic_value(cur)
        value = cur.text[cur.pos :]
        cur.pos = len(cur.text)
        return value

    if cur.take("in."):
        return OpExpr(negated, "in", _list_value(cur))
    if cur.take("is."):
        for candidate in IS_VALUES:
            if cur.text[cur.pos : cur.pos + len(candidate)].lower() == candidate:
                cur.pos += len(candidate)
                return OpExpr(negated, "is", candidate)
        raise cur.error("isVal: (null, not_null, true, false, unknown)")
    if cur.take("isdistinct."):
        return OpExpr(negated, "isdistinct", single())
    for op in FTS_OPERATORS:
        if cur.startswith(op) and cur.text[cur.pos + len(op) : cur.pos + len(op) + 1] in ("(", "."):
            cur.pos += len(op)
            language = None
            if cur.take("("):
                language = _until(cur, ")")
                cur.expect(")", '")"')
            cur.expect(".", "delimiter (.)")
            return OpExpr(negated, op, single(), language=language)
    for op in SIMPLE_OPERATORS:
        if cur.take(op + "."):
            return OpExpr(negated, op, single())
    # Longest names first so "gte" is not read as "gt".
    for op in sorted(QUANT_OPERATORS, key=len, reverse=True):
        if not cur.startswith(op):
            continue
        after = cur.pos + len(op)
        quantifier: Literal["any", "all"] | None = None
        rest = cur.text[after:]
        if rest.startswith("(any)."):
            quantifier, after = "any", after + 5
        elif rest.startswith("(all)."):
            quantifier, after = "all", after + 5
        elif not rest.startswith("."):
            continue
        cur.pos = after + 1
        return OpExpr(negated, op, single(), quantifier=quantifier)
    cur.pos = start
    raise cur.error(OPERATOR_EXPECTED)


def parse_filter_value(key: str, value: str) -> Filter:
    cur = Cursor(value, "filter")
    expr = parse_op_expr(cur, in_logic=False)
    if not cur.at_end():
        raise cur.error("end of input")
    key_cur = Cursor(key, "tree path")
    fld = parse_field(key_cur)
    if not key_cur.at_end():
        if key_cur.peek() == ".":
            # "rel.col=eq.1" filters an embedded resource, which we never have.
            raise_not_embedded(key)
        raise key_cur.error("end of input")
    return Filter(fld, expr)


def raise_not_embedded(path: str) -> NoReturn:
    raise not_embedded(path.split(".", 1)[0])


# --- logic trees ---------------------------------------------------------------------------------


def parse_logic(key: str, value: str) -> LogicTree:
    """``or=(a.eq.1,and(b.gt.2,c.is.null))`` and ``not.and=(...)``."""
    parts = key.split(".")
    negated = "not" in parts[:-1]
    if [p for p in parts[:-1] if p != "not"]:
        raise_not_embedded(key)
    cur = Cursor(parts[-1] + value, "logic tree")
    tree = _logic_tree(cur)
    if not isinstance(tree, LogicTree):
        raise cur.error('"("')
    if not cur.at_end():
        raise cur.error("end of input")
    return LogicTree(negated, tree.operator, tree.children)


def _logic_tree(cur: Cursor) -> Filter | LogicTree:
    start = cur.pos
    try:
        fld = parse_field(cur)
        if cur.take("."):
            return Filter(fld, parse_op_expr(cur, in_logic=True))
    except ApiError:
        pass
    cur.pos = start
    negated = cur.take("not.")
    operator: Literal["and", "or"]
    if cur.take("and"):
        operator = "and"
    elif cur.take("or"):
        operator = "or"
    else:
        raise cur.error("logic operator (and, or)")
    cur.expect("(", '"("')
    children: list[Filter | LogicTree] = []
    while True:
        children.append(_logic_tree(cur))
        if cur.take(","):
            continue
        cur.expect(")", '"," or ")"')
        return LogicTree(negated, operator, tuple(children))


# --- select, order, columns ----------------------------------------------------------------------


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
    for raw in _split_top_level(value):
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
        if cur.take(":") and not cur.startswith(":"):
            alias = head.name
            head = parse_field(cur)
        cast = None
        if cur.take("::"):
            cast = _until(cur, "").strip()
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
    try:
        number = int(value)
    except ValueError:
        raise parse_error(key, value, 1, f'unexpected "{value[:1]}" expecting digit') from None
    if number < 0:
        raise ApiError(
            416, "PGRST103", "Requested range not satisfiable", details="Limit should be greater than or equal to zero."
        )
    return number


RESERVED = frozenset({"select", "columns", "on_conflict", "order", "limit", "offset", "apikey"})


def parse_query(items: list[tuple[str, str]], *, rpc_read: bool = False) -> QueryParams:
    """Split the query string into its PostgREST meanings (last value wins for reserved keys)."""
    q = QueryParams()
    for key, value in items:
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
            q.logic.append(parse_logic(key, value))
        elif not value:
            continue
        elif rpc_read:
            # For GET /rpc, a value that parses as an operator expression is a filter; else an argument.
            try:
                q.filters.append(parse_filter_value(key, value))
            except ApiError:
                q.plain[key] = value
        else:
            q.filters.append(parse_filter_value(key, value))
    return q
