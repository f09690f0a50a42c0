"""PostgREST's filter grammar: fields with JSON paths, operator expressions and logic trees (or/and).

Pure parsing into small dataclasses; nothing here knows about SQL or the catalog. Errors are
PGRST100 with PostgREST's message shape (``"failed to parse filter (x)" (line 1, column n)``).
Every step is linear in the text; logic trees nest at most MAX_LOGIC_DEPTH deep. ``query.py``
reads the whole query string with these pieces.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, NoReturn

from devstack.gateway.rest.errors import (
    ApiError,
    not_embedded,
    param_refused,
    parse_error,
)

# Operators taking one value; the SQL for each lives in sqlgen.
SIMPLE_OPERATORS = ("neq", "cs", "cd", "ov", "sl", "sr", "nxr", "nxl", "adj")
QUANT_OPERATORS = ("eq", "gte", "gt", "lte", "lt", "like", "ilike", "match", "imatch")
FTS_OPERATORS = ("fts", "plfts", "phfts", "wfts")
IS_VALUES = ("null", "not_null", "true", "false", "unknown")
OPERATOR_EXPECTED = '"not" or operator (eq, gt, ...)'

# or(and(or(...))) levels; the query string as a whole is bounded in query.py.
MAX_LOGIC_DEPTH = 32


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


def scan_until(cur: Cursor, stops: str) -> str:
    """The text up to the first of ``stops`` (or to the end; with no stops, all of it)."""
    pattern = _STOPS.get(stops)
    if pattern is None:
        # `[^]` is not a character class: with no stops the run is everything.
        pattern = _STOPS[stops] = re.compile(f"[^{re.escape(stops)}]*" if stops else ".*", re.DOTALL)
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
        items.append(quoted if quoted is not None else scan_until(cur, ",)"))
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
    return scan_until(cur, ",)")


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
            language = scan_until(cur, ")")
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
