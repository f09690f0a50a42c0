"""Compose SQL for parsed requests with psycopg.sql: identifiers come from the catalog, values are parameters.

A ``Frag`` is a composable plus the parameters its placeholders consume, in order; fragments are
only ever joined left to right so the two stay aligned. Values are bound untyped (psycopg sends
``str`` as ``unknown``), so Postgres coerces them to the column's type exactly as for PostgREST.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from devstack.gateway.rest.errors import ApiError, column_not_found, parse_error
from devstack.gateway.rest.grammar import Field, Filter, LogicTree, OpExpr, OrderTerm, SelectItem

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


@dataclass
class Frag:
    query: sql.Composable
    params: list[Any] = field(default_factory=list)

    def __add__(self, other: Frag | sql.Composable) -> Frag:
        if isinstance(other, Frag):
            return Frag(self.query + other.query, self.params + other.params)
        return Frag(self.query + other, list(self.params))


def lit(text: str) -> Frag:
    """Fixed SQL text written in this module (never request text)."""
    return Frag(sql.SQL(text))


def param(value: Any) -> Frag:
    return Frag(sql.Placeholder(), [value])


def join(separator: str, frags: Iterable[Frag]) -> Frag:
    items = list(frags)
    if not items:
        return Frag(sql.SQL(""))
    out = items[0]
    for item in items[1:]:
        out = out + sql.SQL(separator) + item
    return out


@dataclass(frozen=True)
class Relation:
    """What a query reads from: its alias (also the name in 42703 messages) and its columns."""

    alias: str
    columns: tuple[str, ...]

    def column(self, name: str) -> sql.Composable:
        if name not in self.columns:
            raise column_not_found(self.alias, name)
        return sql.Identifier(self.alias, name)


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
