"""The SQL of writes: plans and statements for inserts (batches for missing=default, the upsert
counter), the target relation and RETURNING clauses, shared by POST, PATCH and DELETE."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from devstack.gateway.rest import query
from devstack.gateway.rest.catalog import Table
from devstack.gateway.rest.errors import invalid_body
from devstack.gateway.rest.negotiation import Prefer
from devstack.gateway.rest.sqlgen import Frag, join, lit, param

# PostgREST's trick to count inserted (vs. merged) rows of an upsert in a transaction-local GUC.
INSERTED_GUC = "pgrst.inserted"
# Statements one insert may take with missing=default (one per run of rows with the same keys).
MAX_INSERT_BATCHES = 100


def qualified(table: Table) -> Frag:
    return Frag(sql.Identifier(table.schema, table.name)) + lit(" as ") + Frag(sql.Identifier(table.name))


@dataclass(frozen=True)
class Mutation:
    """A built DML statement; ``returning`` tells whether it returns the table's rows."""

    statement: Frag
    returning: bool


@dataclass(frozen=True)
class Batch:
    """Rows ``first..last`` (1-based, inclusive) of the body, inserted with one column list."""

    columns: list[str]
    first: int
    last: int
    whole: bool  # the batch is the whole body


def insert_batches(rows: list[dict[str, Any]], columns: list[str], missing_default: bool) -> list[Batch]:
    """With missing=default a row's absent keys take column defaults, so consecutive rows with the
    same keys go together and each batch names only its own keys.

    Each batch is a statement that reads the whole body again, so their number is bounded
    (MAX_INSERT_BATCHES); the work here is linear in the body's keys."""
    if not rows:
        return []
    if not missing_default:
        return [Batch(columns, 1, len(rows), True)]
    wanted = set(columns)
    runs: list[tuple[frozenset[str], int, int]] = []
    for index, row in enumerate(rows, start=1):
        own = wanted.intersection(row)
        if runs and runs[-1][0] == own:
            runs[-1] = (runs[-1][0], runs[-1][1], index)
            continue
        if len(runs) == MAX_INSERT_BATCHES:
            raise invalid_body(
                f'With "Prefer: missing=default" each change of keys between rows takes a statement: row {index}'
                f" needs statement {MAX_INSERT_BATCHES + 1}, over the limit of {MAX_INSERT_BATCHES}."
                " Send rows with the same keys together."
            )
        runs.append((frozenset(own), index, index))
    return [Batch([c for c in columns if c in own], first, last, len(runs) == 1) for own, first, last in runs]


def returning_clause(table: Table, rows: bool) -> Frag:
    """The table's own columns (never the joined body's), or just a count."""
    if rows:
        return lit(" returning ") + Frag(sql.Identifier(table.name)) + lit(".*")
    return lit(" returning 1")


def _counter(delta: str, sentinel: str) -> Frag:
    """set_config(inserted, inserted ± 1) compared to a value it can never take: always true."""
    return (
        lit("set_config(")
        + param(INSERTED_GUC)
        + lit(", (coalesce(nullif(current_setting(")
        + param(INSERTED_GUC)
        + lit(f", true), '')::int, 0) {delta} 1)::text, true) <> ")
        + param(sentinel)
    )


def insert_statements(
    table: Table,
    batch: Batch,
    array: Frag,
    prefer: Prefer,
    conflict: list[str],
    *,
    returning: bool,
) -> list[Mutation]:
    target = qualified(table)
    tail = returning_clause(table, returning)
    columns = batch.columns
    if not batch.whole:
        array = (
            lit("(select json_agg(_e order by _i) from json_array_elements(")
            + array
            + lit(") with ordinality as _x(_e, _i) where _i between ")
            + param(batch.first)
            + lit(" and ")
            + param(batch.last)
            + lit(")")
        )
    if not columns:
        # `{}` rows: every column takes its default. One statement for all of them (a zero-column
        # select per element): one per row made 200,000 `{}` cost 200,000 statements.
        source = lit(" select from json_array_elements(") + array + lit(")")
        return [Mutation(lit("insert into ") + target + source + tail, returning)]
    idents = join(", ", (Frag(sql.Identifier(c)) for c in columns))
    source_cols = join(", ", (Frag(sql.Identifier("_b", c)) for c in columns))
    merge = prefer.resolution == "merge-duplicates" and bool(conflict)
    statement = (
        lit("insert into ")
        + target
        + lit(" (")
        + idents
        + lit(") select ")
        + source_cols
        + lit(" from json_populate_recordset(null::")
        + Frag(sql.Identifier(table.schema, table.name))
        + lit(", ")
        + array
        + lit(") as _b")
    )
    if merge:
        statement = statement + lit(" where ") + _counter("+", "0")
    if prefer.resolution and conflict:
        statement = (
            statement + lit(" on conflict (") + join(", ", (Frag(sql.Identifier(c)) for c in conflict)) + lit(")")
        )
        if prefer.resolution == "ignore-duplicates":
            statement = statement + lit(" do nothing")
        else:
            updates = join(
                ", ",
                (Frag(sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))) for c in columns),
            )
            statement = statement + lit(" do update set ") + updates + lit(" where ") + _counter("-", "-1")
    return [Mutation(statement + tail, returning)]


@dataclass(frozen=True)
class InsertPlan:
    """What an insert body asks for, known before the catalog is consulted."""

    columns: list[str]
    batches: list[Batch]


def plan_insert(value: Any, q: query.QueryParams, prefer: Prefer) -> InsertPlan:
    """Check the body's shape and group its rows: linear in the body, and pure Python (no long C
    call holding the GIL), so a large body can be planned in a worker thread."""
    rows = value if isinstance(value, list) else [value]
    if not all(isinstance(r, dict) for r in rows):
        raise invalid_body("All object keys must match")
    if q.columns is None and rows:
        first = rows[0].keys()
        if any(r.keys() != first for r in rows):
            raise invalid_body("All object keys must match")
    columns = q.columns if q.columns is not None else (list(rows[0]) if rows else [])
    return InsertPlan(columns, insert_batches(rows, columns, prefer.missing_default))
