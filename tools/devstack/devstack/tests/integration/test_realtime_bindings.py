"""postgres_changes binding parsing, checked against the examples of hosted Realtime's
Subscriptions.parse_subscription_params (pure: no stack needed)."""

from __future__ import annotations

import pytest

from devstack.gateway.realtime.bindings import BindingError, Filter, binding_id, parse

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("params", "event", "schema", "table", "filters"),
    [
        (
            {"schema": "public", "table": "messages", "filter": "subject=eq.hey"},
            "*",
            "public",
            "messages",
            (Filter("subject", "eq", "hey"),),
        ),
        (
            {"event": "INSERT", "schema": "public", "table": "m", "filter": "subject=in.(hidee,ho)"},
            "INSERT",
            "public",
            "m",
            (Filter("subject", "in", "{hidee,ho}"),),
        ),
        (
            {"schema": "public", "table": "m", "filter": "subject=not.like.hey%"},
            "*",
            "public",
            "m",
            (Filter("subject", "like", "hey%", negate=True),),
        ),
        (
            {"schema": "public", "table": "m", "filter": "id=gt.0,id=lt.100"},
            "*",
            "public",
            "m",
            (Filter("id", "gt", "0"), Filter("id", "lt", "100")),
        ),
        (
            {"schema": "public", "table": "m", "filter": 'name=in.("a,b",c)'},
            "*",
            "public",
            "m",
            (Filter("name", "in", '{"a,b",c}'),),
        ),
        ({"schema": "public", "table": "m", "filter": "   "}, "*", "public", "m", ()),
        ({"event": "update", "schema": "public"}, "UPDATE", "public", "*", ()),
        ({"event": "bogus", "table": "messages"}, "*", "public", "messages", ()),
    ],
)
def test_parse(params: dict[str, str], event: str, schema: str, table: str, filters: tuple[Filter, ...]) -> None:
    b = parse(params)
    assert (b.event, b.schema, b.table, b.filters) == (event, schema, table, filters)
    assert b.id == binding_id(params) and 0 <= b.id < 2**27


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"schema": "public", "table": "m", "filter": "subject=foo.hey"},
            'Error parsing `filter` params: ["foo", "hey"]',
        ),
        ({"schema": "public", "table": "m", "filter": "undefined"}, 'Error parsing `filter` params: ["undefined"]'),
        ({"schema": "public", "table": "m", "filter": "id=in.1,2"}, "`in` filter value must be wrapped by parentheses"),
        ({"schema": "public", "table": "m", "filter": "id=eq.1,,n=eq.2"}, "filter must not contain empty segments"),
        ({}, "No subscription params provided. Please provide at least a `schema` or `table` to subscribe to"),
        ({"schema": "*", "select": ["a"]}, "Column selection is not supported for wildcard subscriptions"),
    ],
)
def test_parse_errors(params: dict[str, object], message: str) -> None:
    with pytest.raises(BindingError) as info:
        parse(params)
    assert message in str(info.value)
