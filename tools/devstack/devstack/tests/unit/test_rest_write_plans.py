"""Insert plans without a server: a body of `{}` rows is one statement, uneven keys and key churn
under missing=default are refused before any SQL is built."""

from __future__ import annotations

import pytest

from devstack.gateway.rest import query, writes
from devstack.gateway.rest.catalog import Column, Table
from devstack.gateway.rest.errors import ApiError
from devstack.gateway.rest.negotiation import Prefer
from devstack.gateway.rest.sqlgen import lit, param

TABLE = Table("public", "notes", {"id": Column("id", "bigint", False), "body": Column("body", "text", False)}, ("id",))
ARRAY = param("[]") + lit("::json")


def plan(value: object, *, columns: str | None = None, missing_default: bool = False) -> writes.InsertPlan:
    q = query.parse_query([("columns", columns)] if columns else [])
    return writes.plan_insert(value, q, Prefer(missing_default=missing_default))


def test_any_number_of_empty_objects_is_one_insert_statement() -> None:
    planned = plan([{}] * 200_000)
    assert planned.columns == []
    assert len(planned.batches) == 1
    statements = writes.insert_statements(TABLE, planned.batches[0], ARRAY, Prefer(), ["id"], returning=True)
    assert len(statements) == 1
    text, params = statements[0].statement.flatten()
    assert text.as_string(None) == (
        'insert into "public"."notes" as "notes" select from json_array_elements(%s::json) returning "notes".*'
    )
    assert params == ["[]"]


def test_rows_must_be_objects_with_the_same_keys() -> None:
    for body in ([{"body": "a"}, {"id": 1}], [{"body": "a"}, 3], ["x"]):
        with pytest.raises(ApiError) as refused:
            plan(body)
        assert refused.value.code == "PGRST102" and refused.value.message == "All object keys must match"
    assert plan([{"body": "a"}, {"id": 1}], columns="id,body").columns == ["id", "body"]


def test_missing_default_groups_runs_of_same_keys_and_bounds_their_number() -> None:
    rows: list[dict[str, object]] = [{"body": "a"}, {"body": "b"}, {"id": 1}, {}, {"id": 2, "body": "c"}]
    planned = plan(rows, columns="id,body", missing_default=True)
    assert [(b.columns, b.first, b.last) for b in planned.batches] == [
        (["body"], 1, 2),
        (["id"], 3, 3),
        ([], 4, 4),
        (["id", "body"], 5, 5),
    ]
    most = writes.MAX_INSERT_BATCHES
    churn: list[dict[str, object]] = [{"body": "x"} if i % 2 else {"id": i} for i in range(most)]
    assert len(plan(churn, columns="id,body", missing_default=True).batches) == most
    with pytest.raises(ApiError) as refused:
        plan([*churn, {"body": "y"} if most % 2 else {"id": 0}], columns="id,body", missing_default=True)
    assert refused.value.code == "PGRST102"
    assert f"row {most + 1} needs statement {most + 1}, over the limit of {most}" in refused.value.message
