"""acquire_model_capacity_batch: many model calls' capacity in one call, each through
acquire_model_capacity (its buckets and cooldowns); a malformed item is a 400 naming
requests[i] and takes nothing; rows are locked in provider/model order; service role only."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_provider_limits import REPORT, limit

pytestmark = pytest.mark.sql
CALL = "select * from acquire_model_capacity_batch(%s::jsonb)"


def ask(model: str = "m1", tokens: int | None = 0, provider: str = "anthropic") -> dict[str, Any]:
    request: dict[str, Any] = {"provider": provider, "model": model}
    if tokens is not None:
        request["tokens"] = tokens
    return request


def batch(api: SqlApi, requests: Any) -> list[Row]:
    return api.as_service(CALL, (json.dumps(requests),))


def answers(rows: list[Row]) -> list[tuple[int, bool, str]]:
    return [(r["item"], r["granted"], r["reason"]) for r in rows]


def test_each_request_is_answered_in_order_as_acquire_model_capacity_would(api: SqlApi) -> None:
    limit(api, "m1", rpm=2)
    limit(api, "m2", tpm=1000)
    rows = batch(api, [ask("m1"), ask("m2", 600), ask("unlimited"), ask("m1"), ask("m2", 600), ask("m1", None)])
    assert answers(rows) == [
        (0, True, "granted"),
        (1, True, "granted"),
        (2, True, "unlimited"),
        (3, True, "granted"),
        (4, False, "tokens"),  # 400 tokens left of 1000
        (5, False, "requests"),  # tokens left out counts as 0; the two requests of m1 are spent
    ]
    assert rows[4]["wait_seconds"] > 0 and rows[5]["wait_seconds"] > 0
    assert [r["wait_seconds"] for r in rows[:4]] == [0, 0, 0, 0]
    # The same buckets as the single call's: one more m1 request is refused there too.
    single = api.as_service("select * from acquire_model_capacity(provider => 'anthropic', model => 'm1')")[0]
    assert (single["granted"], single["reason"]) == (False, "requests")


def test_an_integer_written_with_a_fraction_of_zero_counts_as_that_integer(api: SqlApi) -> None:
    # JSON has one number type: 600.0 passes the integer check, so it must not fail the cast after it.
    limit(api, "m2", tpm=1000)
    assert answers(batch(api, [{**ask("m2"), "tokens": 600.0}, ask("m2", 600)])) == [
        (0, True, "granted"),
        (1, False, "tokens"),
    ]


def test_a_cooldown_refuses_its_model_only(api: SqlApi) -> None:
    api.as_service(REPORT, ("anthropic", "m1", 529, 30))
    rows = batch(api, [ask("m1"), ask("m2"), ask("m1", provider="google")])
    assert answers(rows) == [(0, False, "cooldown"), (1, True, "unlimited"), (2, True, "unlimited")]
    assert 25 < rows[0]["wait_seconds"] <= 30


class Second:
    """A batch of a good request and a second one with these fields changed (None: removed)."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def __repr__(self) -> str:
        return f"Second({self.fields})"


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        (None, r"^requests: must be a JSON array of .*got null$"),
        ({"provider": "anthropic"}, r"^requests: must be a JSON array of .*got object$"),
        ([], r"^requests: must hold 1 to 1000 items, got 0$"),
        ([ask()] * 1001, r"^requests: must hold 1 to 1000 items, got 1001$"),
        (["m1"], r"^requests\[0\]: must be an object, got string$"),
        (Second(job_id="x"), r'^requests\[1\]: unknown key "job_id"; allowed: provider, model, tokens$'),
        (Second(provider=None), r"^requests\[1\]\.provider: must be a string, got nothing$"),
        (Second(model=7), r"^requests\[1\]\.model: must be a string, got number$"),
        (Second(tokens=1.5), r"^requests\[1\]\.tokens: must be an integer, got 1.5$"),
        (Second(tokens="9"), r'^requests\[1\]\.tokens: must be an integer, got "9"$'),
        (Second(tokens=10**12), r"^requests\[1\]\.tokens: must be an integer, got 1000000000000$"),
        (Second(tokens=-1), r"^requests\[1\]\.tokens: must be between 0 and 1000000000, got -1$"),
        (Second(provider="Anthropic!"), r"^requests\[1\]\.provider: must be a lowercase provider name"),
        (Second(model=""), r"^requests\[1\]\.model: must be a model name of 1 to 200 characters"),
    ],
)
def test_a_malformed_request_names_its_place_and_the_batch_takes_nothing(
    api: SqlApi, requests: Any, message: str
) -> None:
    limit(api, "m1", rpm=5)
    if isinstance(requests, Second):
        second = {k: v for k, v in {**ask(), **requests.fields}.items() if v is not None}
        requests = [ask(), second]
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        batch(api, requests)
    assert re.search(message, info.value.diag.message_primary or ""), info.value.diag.message_primary
    assert api.count("select count(*) from public.model_capacity") == 0


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_role_asks_for_capacity_in_batches(api: SqlApi, role: str) -> None:
    uid = api.create_user()
    args = (json.dumps([ask()]),)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_anon(CALL, args) if role == "anon" else api.as_user(uid, CALL, args)
    assert api.count("select count(*) from public.model_capacity") == 0


def test_rows_are_locked_in_provider_model_order_whatever_the_items_order(api: SqlApi) -> None:
    """A replica holding row "b" makes a batch [b, a] wait on b having taken a first: the order
    every batch takes them in, so [a, b] and [b, a] at once wait for each other, never deadlock."""
    limit(api, "a", rpm=100)
    limit(api, "b", rpm=100)  # a model without limits takes no row lock
    batch(api, [ask("a"), ask("b")])  # both rows exist
    outcome: list[Any] = []
    with SqlApi(api.dbname) as holder, SqlApi(api.dbname) as replica:
        with holder.conn.transaction():
            holder.conn.execute("select 1 from public.model_capacity where model = 'b' for update")

            def ask_b_then_a() -> None:
                try:
                    outcome.append(batch(replica, [ask("b"), ask("a")]))
                except Exception as exc:  # surfaced by the assertion below
                    outcome.append(exc)

            thread = threading.Thread(target=ask_b_then_a)
            thread.start()
            waiting = 0
            for _ in range(500):  # bounded: until the batch waits for the row lock on b
                waiting = api.count(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                    "and query like '%%acquire_model_capacity_batch%%' and pid <> pg_backend_pid()"
                )
                if waiting:
                    break
                thread.join(timeout=0.02)
            assert waiting == 1
            with pytest.raises(psycopg.errors.LockNotAvailable), holder.conn.transaction():
                holder.conn.execute("select 1 from public.model_capacity where model = 'a' for update nowait")
        thread.join(timeout=30)
    assert not thread.is_alive()
    [rows] = outcome
    assert answers(rows) == [(0, True, "granted"), (1, True, "granted")]
