"""Compose SQL for parsed requests with psycopg.sql: identifiers come from the catalog, values are parameters.

A ``Frag`` is a composable plus the parameters its placeholders consume, in order; fragments are
only ever joined left to right so the two stay aligned. Values are bound untyped (psycopg sends
``str`` as ``unknown``), so Postgres coerces them to the column's type exactly as for PostgREST.

Composition is linear in the size of the statement: ``+`` links two fragments without copying
either (a rope), and the rope is flattened once, without recursion, when the statement is sent.
Concatenating psycopg ``Composed`` objects copies both sides, which made a filter of n conditions
cost O(n²) (4,000 ``or`` conditions took 11 s).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from devstack.gateway.rest.errors import ApiError, column_not_found, param_refused, parse_error
from devstack.gateway.rest.grammar import Field, Filter, LogicTree, OpExpr, OrderTerm, SelectItem
from devstack.gateway.rest.query import MAX_ORDER_TERMS

COMPARISON_SQL = {
    "eq": "=",
    "neq": "<>",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "like": "like",
    "ilike": "ilike",
    "match": "~",
    "imatch": "~*",
    "cs": "@>",
    "cd": "<@",
    "ov": "&&",
    "sl": "<<",
    "sr": ">>",
    "nxr": "&<",
    "nxl": "&>",
    "adj": "-|-",
}
FTS_SQL = {
    "fts": "to_tsquery",
    "plfts": "plainto_tsquery",
    "phfts": "phraseto_tsquery",
    "wfts": "websearch_to_tsquery",
}
IS_SQL = {
    "null": "is null",
    "not_null": "is not null",
    "true": "is true",
    "false": "is false",
    "unknown": "is unknown",
}
# select=col::type — only these type names are accepted, each mapped to fixed SQL.
CASTS = {
    name: sql.SQL(name)
    for name in (
        "text",
        "integer",
        "int",
        "int4",
        "bigint",
        "int8",
        "smallint",
        "int2",
        "numeric",
        "real",
        "float4",
        "float8",
        "boolean",
        "bool",
        "json",
        "jsonb",
        "uuid",
        "date",
        "timestamptz",
        "timestamp",
        "time",
        "varchar",
    )
}
CASTS["double precision"] = sql.SQL("double precision")
# Postgres' MaxTupleAttributeNumber bounds a select list together with the ORDER BY terms it adds;
# past it the query fails with 54011, which PostgREST answers 500. Refused here as a 400 instead.
MAX_SELECT_COLUMNS = 1664 - MAX_ORDER_TERMS


class Frag:
    """A leaf (one composable and its parameters) or the concatenation of two fragments."""

    __slots__ = ("_leaf", "_left", "_params", "_right")

    def __init__(self, query: sql.Composable, params: Sequence[Any] = ()) -> None:
        self._leaf: sql.Composable | None = query
        self._params = tuple(params)
        self._left: Frag | None = None
        self._right: Frag | None = None

    @classmethod
    def _pair(cls, left: Frag, right: Frag) -> Frag:
        node = cls.__new__(cls)
        node._leaf, node._params, node._left, node._right = None, (), left, right
        return node

    def __add__(self, other: Frag | sql.Composable) -> Frag:
        return Frag._pair(self, other if isinstance(other, Frag) else Frag(other))

    def flatten(self) -> tuple[sql.Composed, list[Any]]:
        """The statement and its parameters, in order (depth-first, left to right, no recursion)."""
        parts: list[sql.Composable] = []
        params: list[Any] = []
        stack: list[Frag] = [self]
        while stack:
            node = stack.pop()
            if node._leaf is not None:
                parts.append(node._leaf)
                params.extend(node._params)
            else:
                assert node._left is not None and node._right is not None
                stack.append(node._right)
                stack.append(node._left)
        return sql.Composed(parts), params


@functools.cache
def lit(text: str) -> Frag:
    """Fixed SQL text written in this module (never request text), so a small set: cached, as
    fragments are immutable and may be shared."""
    return Frag(sql.SQL(text))


PLACEHOLDER = sql.Placeholder()


def param(value: Any) -> Frag:
    return Frag(PLACEHOLDER, (value,))


def join(separator: str, frags: Iterable[Frag]) -> Frag:
    out: Frag | None = None
    sep = sql.SQL(separator)
    for item in frags:
        out = item if out is None else out + sep + item
    return out if out is not None else Frag(sql.SQL(""))


@dataclass(frozen=True)
class Relation:
    """What a query reads from: its alias (also the name in 42703 messages) and its columns."""

    alias: str
    columns: tuple[str, ...]
    # Identifiers built so far: a filter may name the same column a thousand times.
    _known: dict[str, sql.Identifier] = field(default_factory=dict, init=False, repr=False, compare=False)

    def column(self, name: str) -> sql.Composable:
        known = self._known.get(name)
        if known is None:
            if name not in self.columns:
                raise column_not_found(self.alias, name)
            known = self._known[name] = sql.Identifier(self.alias, name)
        return known


def field_expr(rel: Relation, fld: Field) -> Frag:
    out = Frag(rel.column(fld.name))
    for step in fld.path:
        key: Any = int(step.key) if step.key.lstrip("-").isdigit() else step.key
        out = out + lit(step.arrow) + param(key)
    return out


def _array_literal(items: Sequence[str]) -> str:
    quoted = ('"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"' for item in items)
    return "{" + ",".join(quoted) + "}"


def _like_pattern(op: str, value: str) -> str:
    return value.replace("*", "%") if op in ("like", "ilike") else value


def op_expr(rel: Relation, fld: Field, expr: OpExpr) -> Frag:
    column = field_expr(rel, fld)
    op = expr.operator
    if op == "in":
        assert isinstance(expr.value, tuple)
        cond = column + lit(" = any(") + param(_array_literal(expr.value)) + lit(")")
    elif op == "is":
        assert isinstance(expr.value, str)
        cond = column + lit(" " + IS_SQL[expr.value])
    elif op == "isdistinct":
        cond = column + lit(" is distinct from ") + param(expr.value)
    elif op in FTS_SQL:
        args = [param(expr.language)] if expr.language else []
        args.append(param(expr.value))
        cond = column + lit(f" @@ {FTS_SQL[op]}(") + join(", ", args) + lit(")")
    elif op in COMPARISON_SQL:
        assert isinstance(expr.value, str)
        if expr.quantifier:
            # PostgREST takes the value as an array literal: eq(any).{a,b}
            value = expr.value
            if op in ("like", "ilike"):
                value = value.replace("*", "%")
            cond = column + lit(f" {COMPARISON_SQL[op]} {expr.quantifier}(") + param(value) + lit(")")
        else:
            cond = column + lit(f" {COMPARISON_SQL[op]} ") + param(_like_pattern(op, expr.value))
    else:  # the grammar only produces the operators above
        raise parse_error("filter", op, 1, 'expecting "not" or operator (eq, gt, ...)')
    return lit("not (") + cond + lit(")") if expr.negated else cond


def logic_expr(rel: Relation, node: Filter | LogicTree) -> Frag:
    if isinstance(node, Filter):
        return op_expr(rel, node.field, node.expr)
    inner = join(f" {node.operator} ", (logic_expr(rel, child) for child in node.children))
    return lit("not (" if node.negated else "(") + inner + lit(")")


def where_clause(rel: Relation, filters: Sequence[Filter], logic: Sequence[LogicTree]) -> Frag:
    conds = [op_expr(rel, f.field, f.expr) for f in filters] + [logic_expr(rel, t) for t in logic]
    if not conds:
        return lit("")
    return lit(" where ") + join(" and ", conds)


def select_list(rel: Relation, items: Sequence[SelectItem]) -> Frag:
    width = sum(len(rel.columns) if item.field is None else 1 for item in items)
    if width > MAX_SELECT_COLUMNS:
        problem = f"selects {width} columns (each * counts all of the table's); at most {MAX_SELECT_COLUMNS}"
        raise param_refused("select parameter", "select", problem)
    parts: list[Frag] = []
    for item in items:
        if item.field is None:
            parts.extend(Frag(rel.column(c)) for c in rel.columns)
            continue
        expr = field_expr(rel, item.field)
        if item.cast is not None:
            cast = CASTS.get(item.cast.lower())
            if cast is None:
                raise ApiError(400, "42704", f'type "{item.cast}" does not exist')
            expr = lit("(") + expr + lit(")::") + Frag(cast)
        alias = item.alias or (item.field.path[-1].key if item.field.path else item.field.name)
        parts.append(expr + lit(" as ") + Frag(sql.Identifier(alias)))
    return join(", ", parts)


def order_clause(rel: Relation, terms: Sequence[OrderTerm]) -> Frag:
    if not terms:
        return lit("")
    parts = []
    for term in terms:
        part = field_expr(rel, term.field) + lit(" desc" if term.descending else " asc")
        if term.nulls:
            part = part + lit(f" nulls {term.nulls}")
        parts.append(part)
    return lit(" order by ") + join(", ", parts)


def page_clause(limit: int | None, offset: int) -> Frag:
    out = lit("")
    if limit is not None:
        out = out + lit(" limit ") + param(limit)
    if offset:
        out = out + lit(" offset ") + param(offset)
    return out


def result_query(
    source: Frag,
    rel: Relation,
    items: Sequence[SelectItem],
    order: Sequence[OrderTerm],
    *,
    limit: int | None = None,
    offset: int = 0,
    count: bool = False,
    strip_nulls: bool = False,
    scalar: bool = False,
) -> Frag:
    """One row: (total or null, page rows, body as a JSON array, body of the first row).

    ``source`` is a statement (select or DML with RETURNING *) whose rows have ``rel``'s columns.
    JSON is produced by Postgres (json_agg) so every type serializes as PostgREST's does.
    """
    shaped = lit("json_strip_nulls(to_json(_r))") if strip_nulls else lit("_r")
    if scalar:
        shaped = lit("_r.pgrst_scalar")
        projection = Frag(sql.Identifier(rel.alias, "pgrst_scalar")) + lit(" as pgrst_scalar")
    else:
        projection = select_list(rel, items)
    total = lit("(select count(*) from pgrst_source)") if count else lit("null::bigint")
    return (
        lit("with pgrst_source as (")
        + source
        + lit(") select ")
        + total
        + lit(", count(*), coalesce(json_agg(")
        + shaped
        + lit("), '[]')::text, (json_agg(")
        + shaped
        + lit(") -> 0)::text from (select ")
        + projection
        + lit(" from pgrst_source as ")
        + Frag(sql.Identifier(rel.alias))
        + order_clause(rel, order)
        + page_clause(limit, offset)
        + lit(") _r")
    )
