"""PostgREST's query-string grammar: select, filters, logic trees (or/and), order and columns.

Pure parsing into small dataclasses; nothing here knows about SQL or the catalog. Errors are
PGRST100 with PostgREST's message shape (``"failed to parse filter (x)" (line 1, column n)``).

Every step is linear in the text, and the text is bounded (``MAX_QUERY_CHARS``), as are the
nesting of logic trees, the number of conditions, select items and order terms: a refusal is a
PGRST100 naming the parameter (``errors.param_refused``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, NoReturn

from devstack.gateway.rest.errors import (
    ApiError,
    aggregates_not_allowed,
    not_embedded,
    not_implemented,
    param_refused,
    parse_error,
)

# Operators taking one value; the SQL for each lives in sqlgen.
SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
OPERATOR_EXPECTED = '"not" or operator (eq, gt, ...)'

# Bounds on one request's query string. Hosted Supabase's edge refuses URLs over about 16 KB before
# PostgREST sees them; these keep the parser and the generated SQL small whatever reaches them.
MAX_QUERY_CHARS = 16 * 1024  # all keys and values together
MAX_LOGIC_DEPTH = 32  # or(and(or(...))) levels
MAX_CONDITIONS = 1000  # filters, counting each leaf of every logic tree
MAX_SELECT_ITEMS = 1000
MAX_ORDER_TERMS = 100
BIGINT_MAX = 2**63 - 1


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


# Runs of identifier characters (str.isalnum, "_", " ", "$") and "-" not starting an arrow; the
# scanners are regexes so a long parameter costs a few calls, not several per character.
NAME_RUN = re.compile(r"(?:[\w $]|-(?!>))*")
OPERATOR_WORD = re.compile(r"[a-z]*")
_STOPS: dict[str, re.Pattern[str]] = {}


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
    run = NAME_RUN.match(cur.text, start)
    assert run is not None  # the pattern matches the empty string
    cur.pos = run.end()
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
    pattern = _STOPS.get(stops)
    if pattern is None:
        pattern = _STOPS[stops] = re.compile(f"[^{re.escape(stops)}]*")
    start = cur.pos
    run = pattern.match(cur.text, start)
    assert run is not None  # the pattern matches the empty string
    cur.pos = run.end()
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

    # One look at the operator's name, then one branch: trying each operator in turn cost a dozen
    # string comparisons per condition.
    word = OPERATOR_WORD.match(cur.text, start)
    assert word is not None  # the pattern matches the empty string
    op, after = word.group(), word.end()
    follows = cur.text[after : after + 1]
    if op == "in" and follows == ".":
        cur.pos = after + 1
        return OpExpr(negated, "in", _list_value(cur))
    if op == "is" and follows == ".":
        cur.pos = after + 1
        for candidate in IS_VALUES:
            if cur.text[cur.pos : cur.pos + len(candidate)].lower() == candidate:
                cur.pos += len(candidate)
                return OpExpr(negated, "is", candidate)
        raise cur.error("isVal: (null, not_null, true, false, unknown)")
    if (op == "isdistinct" or op in SIMPLE_OPERATORS) and follows == ".":
        cur.pos = after + 1
        return OpExpr(negated, op, single())
    if op in FTS_OPERATORS and follows in ("(", "."):
        cur.pos = after
        language = None
        if cur.take("("):
            language = _until(cur, ")")
            cur.expect(")", '")"')
        cur.expect(".", "delimiter (.)")
        return OpExpr(negated, op, single(), language=language)
    if op in QUANT_OPERATORS:
        quantifier: Literal["any", "all"] | None = None
        if cur.text.startswith("(any).", after):
            quantifier, after = "any", after + 5
        elif cur.text.startswith("(all).", after):
            quantifier, after = "all", after + 5
        if cur.text.startswith(".", after):
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
    tree = _logic_tree(cur, key, 1)
    if not isinstance(tree, LogicTree):
        raise cur.error('"("')
    if not cur.at_end():
        raise cur.error("end of input")
    return LogicTree(negated, tree.operator, tree.children)


def _logic_tree(cur: Cursor, key: str, depth: int) -> Filter | LogicTree:
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
    if depth > MAX_LOGIC_DEPTH:
        raise param_refused(
            "logic tree", key, f"nested deeper than {MAX_LOGIC_DEPTH} levels", value=cur.text, column=cur.pos
        )
    children: list[Filter | LogicTree] = []
    while True:
        children.append(_logic_tree(cur, key, depth + 1))
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
