"""Every RPC argument the worker or a client could not handle is refused: 22023 naming the field, nothing written.

Each refused case has an accepted neighbour on the right side of the limit, so the limit is where
the migrations document it (20261123000200_jobs_validation.sql and the functions using it, README "The SQL API").
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from devstack.sqlapi import SqlApi
from tests.sql.bounds_support import assert_refused, enqueue_call, make_queue, nested, service_call, state

pytestmark = pytest.mark.sql


def db_time(api: SqlApi, offset: str) -> Any:
    return api.admin("select now() + %s::interval as t", (offset,))[0]["t"]


def resolve(api: SqlApi, value: str) -> Any:
    """``"now + <interval>"`` is a time relative to the database clock; anything else is literal."""
    return db_time(api, value.removeprefix("now + ")) if value.startswith("now + ") else value


# -- enqueue_job ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("run_at", "problem"),
    [
        ("-infinity", "must be a finite timestamp, got -infinity"),
        ("infinity", "must be a finite timestamp, got infinity"),
        ("4713-01-01 00:00:00+00 BC", "must not be more than 1 day in the past"),
        ("0001-01-01T00:00:00Z", "must not be more than 1 day in the past"),
        ("294276-12-31T23:59:59Z", "must be within 30 days from now"),
        ("now + -25 hours", "must not be more than 1 day in the past"),
        ("now + 31 days", "must be within 30 days from now"),
    ],
)
def test_enqueue_refuses_run_at_outside_the_window(api: SqlApi, run_at: str, problem: str) -> None:
    user = api.create_user()
    message = assert_refused(api, enqueue_call(api, user, run_at=resolve(api, run_at)), "run_at")
    assert problem in message
    assert api.count("select count(*) from public.jobs") == 0


@pytest.mark.parametrize("offset", ["-23 hours", "29 days"])
def test_enqueue_accepts_run_at_inside_the_window_as_given(api: SqlApi, offset: str) -> None:
    when = db_time(api, offset)
    job = api.enqueue(api.create_user(), run_at=when)
    assert job["run_at"] == when


@pytest.mark.parametrize(
    ("kw", "field", "problem"),
    [
        ({"kind": "k" * 64}, "kind", "must be at most 63 characters, got 64"),
        ({"kind": "k" * 1_000_000}, "kind", "must be at most 63 characters, got 1000000"),
        ({"payload": nested(33)}, "payload", "must not nest objects and arrays deeper than 32 levels"),
        ({"payload": nested(2000)}, "payload", "must not nest objects and arrays deeper than 32 levels"),
        ({"payload": '{"n": 1e400}'}, "payload", "number 1000000000"),
        ({"payload": '{"xs": [1, {"n": -1e309}]}'}, "payload", "number -1000000000"),
        ({"payload": '{"n": ' + "9" * 5000 + "}"}, "payload", "outside the range of a double"),
    ],
)
def test_enqueue_refuses_what_a_client_cannot_parse(api: SqlApi, kw: dict[str, Any], field: str, problem: str) -> None:
    message = assert_refused(api, enqueue_call(api, api.create_user(), **kw), field)
    assert problem in message


def test_enqueue_accepts_the_limits_themselves(api: SqlApi) -> None:
    user = api.create_user()
    deep = api.as_user(user, "select * from enqueue_job('rename_layers', %s::jsonb)", (nested(32),))[0]
    assert deep["payload"] == json.loads(nested(32))
    extreme = '{"max": 1.7976931348623157e308, "min": -1.7976931348623157e308, "tiny": 1e-400}'
    assert api.as_user(user, "select * from enqueue_job('rename_layers', %s::jsonb)", (extreme,))[0]["id"]
    # 63 characters passes the length check and is then an unknown kind.
    message = assert_refused(api, enqueue_call(api, user, kind="k" * 63), "kind")
    assert message.startswith('kind: unknown job kind "kkk')
    assert api.count("select count(*) from public.jobs") == 2


def test_nul_in_jsonb_is_refused_before_the_call(api: SqlApi) -> None:
    # PostgreSQL refuses \u0000 while converting the argument, so the function never runs and
    # cannot name the field; the REST layer answers 400 for it. Nothing is written either way.
    user = api.create_user()
    assert_refused(api, enqueue_call(api, user, payload=json.dumps({"prompt": "a\x00b"})), "payload", "22P05")


# -- claim_jobs / next_job_run_at: kinds ----------------------------------------------------------
HOSTILE_KINDS: list[tuple[Any, str]] = [
    (["rename_layers"] * 101, "must hold at most 100 items, got 101"),
    (["rename_layers"] * 100_000, "must hold at most 100 items, got 100000"),
    (["rename_layers", None], "must not contain null, got one at index 1"),
    ([["rename_layers"], ["generate_design"]], "must be a one-dimensional array, got 2 dimensions"),
    (["x" * 100_000, "nope"], 'unknown job kind(s): "xxx'),
]


@pytest.mark.parametrize(("kinds", "problem"), HOSTILE_KINDS)
def test_claim_refuses_unbounded_kinds(api: SqlApi, kinds: Any, problem: str) -> None:
    queue = make_queue(api)
    query = "select * from claim_jobs(worker_id => 'w3', kinds => %s::text[])"
    message = assert_refused(api, service_call(api, query, (kinds,)), "kinds")
    assert problem in message
    assert api.job(queue.queued["id"])["status"] == "queued"


@pytest.mark.parametrize(("kinds", "problem"), HOSTILE_KINDS)
def test_next_job_run_at_refuses_unbounded_kinds(api: SqlApi, kinds: Any, problem: str) -> None:
    make_queue(api)
    message = assert_refused(api, service_call(api, "select next_job_run_at(%s::text[])", (kinds,)), "kinds")
    assert problem in message


def test_kinds_at_the_limit_are_accepted(api: SqlApi) -> None:
    queue = make_queue(api)
    later = db_time(api, "10 minutes")
    api.admin("update public.jobs set run_at = %s where id = %s", (later, queue.queued["id"]))
    kinds = ["rename_layers"] * 100
    assert api.as_service("select next_job_run_at(%s::text[]) as t", (kinds,))[0]["t"] == later
    api.admin("update public.jobs set run_at = now() where id = %s", (queue.queued["id"],))
    assert [j["id"] for j in api.claim("w3", kinds=kinds)] == [queue.queued["id"]]


# -- renew_leases / release_jobs: job_ids ---------------------------------------------------------
@pytest.mark.parametrize("fn", ["renew_leases", "release_jobs"])
@pytest.mark.parametrize(
    ("ids", "problem"),
    [
        ("1001", "must hold at most 1000 items, got 1001"),
        ("100000", "must hold at most 1000 items, got 100000"),
        ("null", "must not contain null, got one at index 1"),
        ("2d", "must be a one-dimensional array, got 2 dimensions"),
    ],
)
def test_job_ids_are_bounded(api: SqlApi, fn: str, ids: str, problem: str) -> None:
    queue = make_queue(api)
    held = str(queue.running["id"])
    values: dict[str, Any] = {
        "1001": [held] * 1001,
        "100000": [held] * 100_000,
        "null": [held, None],
        "2d": [[held], [held]],
    }
    query = f"select * from {fn}(worker_id => 'w1', job_ids => %s::uuid[])"
    message = assert_refused(api, service_call(api, query, (values[ids],)), "job_ids")
    assert problem in message


@pytest.mark.parametrize("fn", ["renew_leases", "release_jobs"])
def test_job_ids_at_the_limit_are_accepted(api: SqlApi, fn: str) -> None:
    queue = make_queue(api)
    query = f"select * from {fn}(worker_id => 'w1', job_ids => %s::uuid[])"
    rows = api.as_service(query, ([queue.running["id"]] * 1000,))
    assert [r["id"] for r in rows] == [queue.running["id"]]


# -- report_progress: percent -----------------------------------------------------------------------
@pytest.mark.parametrize("percent", ["NaN", "Infinity", "-Infinity", "1e1000", "100.01", "-0.01"])
def test_progress_percent_must_be_a_finite_number_from_0_to_100(api: SqlApi, percent: str) -> None:
    queue = make_queue(api)
    query = "select report_progress(%s, 'w1', percent => %s::numeric)"
    message = assert_refused(api, service_call(api, query, (queue.running["id"], percent)), "percent")
    assert message.startswith("percent: must be between 0 and 100, got ")


@pytest.mark.parametrize("percent", ["0", "100"])
def test_progress_percent_limits_are_accepted(api: SqlApi, percent: str) -> None:
    queue = make_queue(api)
    api.as_service("select report_progress(%s, 'w1', percent => %s::numeric)", (queue.running["id"], percent))
    assert api.job(queue.running["id"])["progress"]["percent"] == int(percent)


# -- defer_job: run_at ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("run_at", "problem"),
    [
        ("-infinity", "must be a finite timestamp, got -infinity"),
        ("infinity", "must be a finite timestamp, got infinity"),
        ("4713-01-01 00:00:00+00 BC", "must not be more than 1 day in the past"),
        ("now + -25 hours", "must not be more than 1 day in the past"),
        ("now + 25 hours", "must be within 1 day from now"),
    ],
)
def test_defer_refuses_run_at_outside_the_window(api: SqlApi, run_at: str, problem: str) -> None:
    queue = make_queue(api)
    query = "select * from defer_job(%s, 'w1', %s::timestamptz, 'provider 429')"
    message = assert_refused(api, service_call(api, query, (queue.running["id"], resolve(api, run_at))), "run_at")
    assert problem in message
    assert api.job(queue.running["id"])["status"] == "running"


def test_defer_accepts_a_recent_past_run_at_as_now(api: SqlApi) -> None:
    queue = make_queue(api)
    query = "select * from defer_job(%s, 'w1', %s, 'provider 429')"
    asked = db_time(api, "-23 hours")
    row = api.as_service(query, (queue.running["id"], asked))[0]
    assert row["status"] == "queued"
    assert row["run_at"] > asked + timedelta(hours=22)  # greatest(run_at, now()): due at once


# -- purge_finished_jobs: older_than ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("older_than", "problem"),
    [
        ("11 years", "must be at most 10 years, got 11 years"),
        ("1000000 years", "must be at most 10 years"),  # was a raw 22008 from now() - older_than
        ("-1 second", "must be a non-negative interval"),
    ],
)
def test_purge_refuses_unbounded_intervals(api: SqlApi, older_than: str, problem: str) -> None:
    queue = make_queue(api)
    query = "select purge_finished_jobs(%s::interval)"
    message = assert_refused(api, service_call(api, query, (older_than,)), "older_than")
    assert problem in message
    assert api.job(queue.finished["id"])["status"] == "succeeded"


def test_purge_refuses_an_infinite_interval_where_one_exists(api: SqlApi) -> None:
    if api.count("select current_setting('server_version_num')::integer as count") < 170000:
        pytest.skip("infinite intervals exist from PostgreSQL 17")
    make_queue(api)
    query = "select purge_finished_jobs('infinity'::interval)"
    assert "must be at most 10 years" in assert_refused(api, service_call(api, query), "older_than")


def test_purge_accepts_ten_years(api: SqlApi) -> None:
    queue = make_queue(api)
    before = state(api)
    assert api.as_service("select purge_finished_jobs('10 years') as n")[0]["n"] == 0
    assert state(api) == before
    assert api.job(queue.finished["id"])["status"] == "succeeded"
