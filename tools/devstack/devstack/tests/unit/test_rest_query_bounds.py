"""/rest/v1 query-string parsing and SQL composition without a server: the bounds (depth,
conditions, length, select/order size, bigint, NUL) each refused as a PGRST100 naming the
parameter, and seeded round trips showing the faster parser and the rope still mean the same."""

from __future__ import annotations

import random
from typing import Literal

import pytest
from psycopg import sql

from devstack.gateway.rest import grammar, query, sqlgen
from devstack.gateway.rest.errors import ApiError
from devstack.gateway.rest.grammar import Filter, LogicTree, OpExpr

REL = sqlgen.Relation("items", ("id", "title", "score", "meta"))


def refused(items: list[tuple[str, str]]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        query.parse_query(items)
    assert caught.value.status == 400 and caught.value.code == "PGRST100", caught.value.payload()
    return caught.value


def nested(depth: int) -> str:
    return "(" + "or(" * (depth - 1) + "id.eq.1" + ")" * (depth - 1) + ")"


def test_logic_nesting_is_bounded_and_deep_input_never_recurses_far() -> None:
    tree = query.parse_query([("or", nested(grammar.MAX_LOGIC_DEPTH))]).logic[0]
    depth = 1
    while isinstance(tree.children[0], LogicTree):
        tree, depth = tree.children[0], depth + 1
    assert depth == grammar.MAX_LOGIC_DEPTH
    for depth in (grammar.MAX_LOGIC_DEPTH + 1, 1200, 3000):  # 1,200 was a RecursionError → 500
        error = refused([("or", nested(depth))])
        assert error.message.startswith('"failed to parse logic tree (')
        assert error.details == f'query parameter "or": nested deeper than {grammar.MAX_LOGIC_DEPTH} levels'


def test_conditions_are_counted_across_the_whole_query_string() -> None:
    half = query.MAX_CONDITIONS // 2
    ors = "(" + ",".join(f"id.eq.{i}" for i in range(half)) + ")"
    ands = "(" + ",".join(f"score.gt.{i}" for i in range(half - 1)) + ")"
    q = query.parse_query([("or", ors), ("and", ands), ("title", "eq.x")])
    assert sum(query.conditions_in(t) for t in q.logic) + len(q.filters) == query.MAX_CONDITIONS
    error = refused([("or", ors), ("and", ands), ("title", "eq.x"), ("score", "lt.3")])
    assert error.details == f'query parameter "score": more than {query.MAX_CONDITIONS} conditions in the request'


def test_query_string_length_is_bounded_naming_the_parameter_that_crosses_it() -> None:
    query.parse_query([("title", "eq." + "x" * (query.MAX_QUERY_CHARS - 10))])
    error = refused([("select", "id"), ("title", "eq." + "x" * query.MAX_QUERY_CHARS)])
    assert (
        error.details == f'query parameter "title": the query string is longer than {query.MAX_QUERY_CHARS} characters'
    )
    assert len(error.message) < 300  # the refused text is not echoed in full


@pytest.mark.parametrize(
    ("items", "name"),
    [
        ([("title", "eq.a\x00b")], "title"),
        ([("or", "(title.eq.a\x00b)")], "or"),
        ([("select", "id,ti\x00tle")], "select"),
        ([("ti\x00tle", "eq.1")], "ti\x00tle"),
    ],
)
def test_nul_never_reaches_postgres(items: list[tuple[str, str]], name: str) -> None:
    error = refused(items)
    assert str(error.details).startswith(f'query parameter "{name}": ')
    assert "NUL" in str(error.details)


def test_rpc_arguments_with_nul_are_refused_too() -> None:
    with pytest.raises(ApiError) as caught:
        query.parse_query([("name", "a\x00")], rpc_read=True)
    assert caught.value.code == "PGRST100" and 'query parameter "name"' in str(caught.value.details)


@pytest.mark.parametrize("key", ["limit", "offset"])
def test_limit_and_offset_are_ascii_digits_within_bigint(key: str) -> None:
    assert getattr(query.parse_query([(key, str(query.BIGINT_MAX))]), key) == query.BIGINT_MAX
    for beyond in (str(query.BIGINT_MAX + 1), "9" * 30, "9" * 5000):
        assert refused([(key, beyond)]).details == f'query parameter "{key}": at most {query.BIGINT_MAX}'
    for bad in ("1_000", "١٢", " 5", "5 ", "+5", "", "0x10"):
        assert "expecting digit" in str(refused([(key, bad)]).details)
    with pytest.raises(ApiError) as negative:
        query.parse_query([(key, "-1")])
    assert negative.value.status == 416


def test_select_items_and_order_terms_are_bounded() -> None:
    assert (
        len(query.parse_query([("select", ",".join(["id"] * query.MAX_SELECT_ITEMS))]).select) == query.MAX_SELECT_ITEMS
    )
    error = refused([("select", ",".join(["id"] * (query.MAX_SELECT_ITEMS + 1)))])
    assert error.details == f'query parameter "select": more than {query.MAX_SELECT_ITEMS} items'
    assert len(query.parse_query([("order", ",".join(["id"] * query.MAX_ORDER_TERMS))]).order) == query.MAX_ORDER_TERMS
    error = refused([("order", ",".join(["id"] * (query.MAX_ORDER_TERMS + 1)))])
    assert error.details == f'query parameter "order": more than {query.MAX_ORDER_TERMS} terms'


def test_a_select_cast_is_not_taken_for_an_alias() -> None:
    # `::` after a column is a cast; one `:` is an alias. The alias check once ate the first `:`
    # of every cast, so `id::text` was a parse error.
    assert query.parse_select("id::text,n:id::int,label:id") == [
        grammar.SelectItem(grammar.Field("id"), None, "text"),
        grammar.SelectItem(grammar.Field("id"), "n", "int"),
        grammar.SelectItem(grammar.Field("id"), "label", None),
    ]


def test_stars_that_expand_past_postgres_target_list_limit_are_refused_before_sql() -> None:
    wide = sqlgen.Relation("wide", tuple(f"c{i}" for i in range(400)))
    sqlgen.select_list(wide, query.parse_select("*,*,*"))  # 1,200 columns
    with pytest.raises(ApiError) as caught:
        sqlgen.select_list(wide, query.parse_select("*,*,*,*"))  # 1,600: Postgres would answer 54011 → 500
    assert caught.value.status == 400 and caught.value.code == "PGRST100"
    assert str(caught.value.details).startswith('query parameter "select": selects 1600 columns')


# --- the parser and the SQL still mean what they meant ---------------------------------------------

QUANTIFIERS: list[Literal["any", "all"] | None] = [None, "any", "all"]
OPERATORS = ["eq", "neq", "gt", "gte", "lt", "lte", "like", "ilike", "match", "imatch", "cs", "cd", "isdistinct"]


def random_node(rng: random.Random, depth: int) -> Filter | LogicTree:
    if depth == 0 or rng.random() < 0.4:
        column = rng.choice(REL.columns)
        kind = rng.random()
        if kind < 0.15:
            values = tuple(rng.choice(["1", "a b", "", '"q,)"']) for _ in range(rng.randint(1, 3)))
            expr = OpExpr(rng.random() < 0.3, "in", tuple(v.strip('"') for v in values))
            return Filter(grammar.Field(column), expr)
        if kind < 0.25:
            return Filter(grammar.Field(column), OpExpr(rng.random() < 0.3, "is", rng.choice(grammar.IS_VALUES)))
        if kind < 0.35:
            lang = rng.choice([None, "english"])
            return Filter(grammar.Field(column), OpExpr(False, rng.choice(grammar.FTS_OPERATORS), "w", language=lang))
        op = rng.choice(OPERATORS)
        quantifier = rng.choice(QUANTIFIERS) if op in grammar.QUANT_OPERATORS else None
        value = "{1,2}" if quantifier else rng.choice(["1", "x", "2.5", "a*"])
        return Filter(grammar.Field(column), OpExpr(rng.random() < 0.3, op, value, quantifier=quantifier))
    children = tuple(random_node(rng, depth - 1) for _ in range(rng.randint(1, 4)))
    return LogicTree(rng.random() < 0.3, rng.choice(["and", "or"]), children)


def render(node: Filter | LogicTree) -> str:
    if isinstance(node, LogicTree):
        inner = ",".join(render(c) for c in node.children)
        return f"{'not.' if node.negated else ''}{node.operator}({inner})"
    expr = node.expr
    prefix = f"{node.field.name}.{'not.' if expr.negated else ''}"
    if expr.operator == "in":
        assert isinstance(expr.value, tuple)
        quoted = ",".join(f'"{v}"' if "," in v or ")" in v else v for v in expr.value)
        return f"{prefix}in.({quoted})"
    if expr.language:
        return f"{prefix}{expr.operator}({expr.language}).{expr.value}"
    quantifier = f"({expr.quantifier})" if expr.quantifier else ""
    return f"{prefix}{expr.operator}{quantifier}.{expr.value}"


def test_seeded_logic_trees_round_trip_through_the_parser() -> None:
    rng = random.Random(10)
    for _ in range(300):
        tree = random_node(rng, 4)
        if isinstance(tree, Filter):
            tree = LogicTree(False, "or", (tree,))
        text = render(tree)
        key = ("not." if tree.negated else "") + tree.operator
        parsed = grammar.parse_logic(key, text[len(tree.operator) + (4 if tree.negated else 0) :])
        assert parsed == tree, text


def random_rope(rng: random.Random, leaves: list[sqlgen.Frag]) -> sqlgen.Frag:
    """The leaves concatenated in order, under a random bracketing."""
    if len(leaves) == 1:
        return leaves[0]
    cut = rng.randint(1, len(leaves) - 1)
    return random_rope(rng, leaves[:cut]) + random_rope(rng, leaves[cut:])


def test_rope_flattening_keeps_text_and_parameters_in_step() -> None:
    rng = random.Random(11)
    for _ in range(200):
        n = rng.randint(1, 40)
        kinds = [rng.random() < 0.5 for _ in range(n)]
        leaves = [sqlgen.param(i) if is_param else sqlgen.Frag(sql.SQL(f"<{i}>")) for i, is_param in enumerate(kinds)]
        statement, params = random_rope(rng, leaves).flatten()
        expected = "".join("%s" if is_param else f"<{i}>" for i, is_param in enumerate(kinds))
        assert statement.as_string(None) == expected
        assert params == [i for i, is_param in enumerate(kinds) if is_param]
    for _ in range(100):  # and a filter's SQL has one placeholder per parameter
        statement, params = sqlgen.logic_expr(REL, random_node(rng, 4)).flatten()
        assert statement.as_string(None).count("%s") == len(params)


def test_a_long_left_deep_rope_flattens_in_order_without_recursion() -> None:
    pieces = [sqlgen.param(i) for i in range(100_000)]
    statement, params = sqlgen.join(", ", pieces).flatten()
    assert params == list(range(100_000))
    assert len(statement.as_string(None).split(", ")) == 100_000
