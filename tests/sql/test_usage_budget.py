"""The usage ledger and budgets: record_usage and its pricing, the budget check of enqueue_job
(PT402, reservations, the race between concurrent enqueues), spend views and who reads what."""

from __future__ import annotations

import re
import threading
import uuid
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi

pytestmark = pytest.mark.sql


def refused(call: Any) -> psycopg.Error:
    with pytest.raises(psycopg.Error) as err:
        call()
    return err.value


def running_job(api: SqlApi, uid: uuid.UUID, kind: str = "generate_design", worker: str = "w1") -> Row:
    job = api.enqueue(uid, kind, {"job": str(uuid.uuid4())})
    claimed = [j for j in api.claim(worker, max_jobs=10) if j["id"] == job["id"]]
    assert claimed, "the job was not claimed"
    return claimed[0]


def record(api: SqlApi, job: Row, **kw: Any) -> Row:
    args: dict[str, Any] = {
        "job_id": job["id"],
        "worker_id": "w1",
        "attempt": 1,
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "input_tokens": 1000,
        "output_tokens": 500,
        "cached_tokens": 200,
        "images": 0,
        "latency_ms": 1234,
        **kw,
    }
    named = ", ".join(f"{k} => %({k})s" for k in args)
    return api.as_service(f"select * from record_usage({named})", args)[0]


def on_budget(api: SqlApi, uid: uuid.UUID, budget: str) -> None:
    """Put the user on a plan of their own with this budget and no rate limit in the way."""
    plan = f"p_{uid.hex[:12]}"
    api.as_service("select set_plan(%s, %s::numeric)", (plan, budget))
    api.as_service("select set_plan_kind_limits(%s, 'generate_design', rate_limit_per_minute => 1000)", (plan,))
    api.set_user_plan(uid, plan)


def test_record_usage_prices_at_list_price(api: SqlApi) -> None:
    uid = api.create_user()
    job = running_job(api, uid)
    row = record(api, job)
    # Haiku 4.5: 800 fresh input at $1/MTok + 200 cached at $0.10 + 500 output at $5 = $0.00332.
    assert row["cost_usd"] == Decimal("0.00332000")
    assert (row["user_id"], row["kind"], row["attempt"], row["latency_ms"]) == (uid, "generate_design", 1, 1234)
    image = record(
        api,
        job,
        provider="gemini",
        model="gemini-2.5-flash-image",
        input_tokens=10,
        cached_tokens=0,
        output_tokens=1290,
        images=1,
    )
    assert image["cost_usd"] == Decimal("0.03870300")  # 1290 image tokens at $30/MTok + 10 at $0.30
    costs = api.as_user(uid, "select calls, cost_usd, models from job_costs")
    assert costs == [
        {
            "calls": 2,
            "cost_usd": Decimal("0.042023"),
            "models": "anthropic/claude-haiku-4-5, gemini/gemini-2.5-flash-image",
        }
    ]


def test_unpriced_model_is_recorded_without_cost(api: SqlApi) -> None:
    uid = api.create_user()
    row = record(api, running_job(api, uid), model="claude-unknown-9")
    assert row["cost_usd"] is None
    assert api.as_service("select unpriced_calls from spend_by_user_month")[0]["unpriced_calls"] == 1


@pytest.mark.parametrize(
    ("kw", "sqlstate", "message"),
    [
        ({"input_tokens": -1}, "22023", r"^input_tokens: must be between 0 and 100000000, got -1$"),
        ({"output_tokens": None}, "22023", r"^output_tokens: must be between 0 and 100000000, got null$"),
        ({"cached_tokens": 1001}, "22023", r"^cached_tokens: must not exceed input_tokens \(1000\), got 1001$"),
        ({"images": 5000}, "22023", r"^images: must be between 0 and 1000, got 5000$"),
        ({"latency_ms": -5}, "22023", r"^latency_ms: must be between 0 and 86400000, got -5$"),
        ({"attempt": 0}, "22023", r"^attempt: must be between 1 and the job's attempts \(1\), got 0$"),
        ({"attempt": 2}, "22023", r"^attempt: must be between 1 and the job's attempts \(1\), got 2$"),
        ({"provider": "Anthropic!"}, "22023", r'^provider: must be 1 to 63 lowercase .*got "Anthropic!"$'),
        ({"provider": None}, "22023", r"^provider: must be .*got null$"),
        (
            {"model": "claude haiku"},
            "22023",
            r'^model: must be 1 to 200 characters without spaces, got "claude haiku"$',
        ),
        ({"model": ""}, "22023", r'^model: must be 1 to 200 characters without spaces, got ""$'),
        ({"worker_id": ""}, "22023", r"^worker_id: must be a non-empty string$"),
        ({"job_id": None}, "22023", r"^job_id: must not be null$"),
        ({"job_id": uuid.UUID(int=7)}, "PT404", r"^record_usage: job 00000000-0000-0000-0000-000000000007 not found$"),
    ],
)
def test_malformed_usage_is_refused_and_records_nothing(
    api: SqlApi, kw: dict[str, Any], sqlstate: str, message: str
) -> None:
    job = running_job(api, api.create_user())
    err = refused(lambda: record(api, job, **kw))
    assert err.sqlstate == sqlstate
    assert re.search(message, err.diag.message_primary or ""), err.diag.message_primary
    assert api.count("select count(*) from public.usage_ledger") == 0


def test_only_the_service_role_records_usage(api: SqlApi) -> None:
    uid = api.create_user()
    job = running_job(api, uid)
    query = "select * from record_usage(%s, 'w1', 1, 'anthropic', 'claude-haiku-4-5', 1, 1)"
    assert refused(lambda: api.as_user(uid, query, (job["id"],))).sqlstate == "42501"
    assert refused(lambda: api.as_anon(query, (job["id"],))).sqlstate == "42501"
    assert (
        refused(
            lambda: api.as_user(
                uid,
                "insert into public.usage_ledger (user_id, kind, attempt, worker_id, "
                "provider, model, input_tokens, output_tokens) values (%s, 'generate_design',"
                " 1, 'w', 'p', 'm', 0, 0)",
                (uid,),
            )
        ).sqlstate
        == "42501"
    )
    assert api.count("select count(*) from public.usage_ledger") == 0


def test_spent_budget_is_402_with_spent_budget_and_reset(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    job = running_job(api, uid)
    record(api, job, input_tokens=2000, cached_tokens=0, output_tokens=2000)  # $0.012
    api.as_service("select complete_job(%s, 'w1', '{}')", (job["id"],))
    before = api.count("select count(*) from public.jobs")
    err = refused(lambda: api.enqueue(uid, "generate_design", {"n": 2}))
    assert err.sqlstate == "PT402"
    message = err.diag.message_primary or ""
    assert re.fullmatch(
        r'budget: plan "p_[0-9a-f]{12}" allows 0\.01 USD a month and 0\.0120 USD is spent; it resets at '
        r"\d{4}-\d\d-01 00:00:00\+00",
        message,
    ), message
    reset = api.admin("select date_trunc('month', now(), 'UTC') + interval '1 month' as t")[0]["t"]
    assert reset.strftime("%Y-%m-%d") in message
    assert err.diag.message_detail == "spent 0.0120 USD of 0.01 USD"
    assert api.count("select count(*) from public.jobs") == before
    # Another user on the same default plan is not affected.
    api.enqueue(api.create_user(), "generate_design")


def test_a_running_job_finishes_when_the_budget_is_spent(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    job = running_job(api, uid)
    record(api, job, input_tokens=0, cached_tokens=0, output_tokens=4000)  # $0.02: over budget
    second = record(api, job, input_tokens=0, cached_tokens=0, output_tokens=1000)  # still recorded
    assert second["cost_usd"] == Decimal("0.00500000")
    done = api.as_service("select * from complete_job(%s, 'w1', '{\"ok\": true}')", (job["id"],))[0]
    assert done["status"] == "succeeded"
    assert api.as_user(uid, "select spent_usd, remaining_usd from my_spend") == [
        {"spent_usd": Decimal("0.025000"), "remaining_usd": Decimal("0.000000")}
    ]


def test_idempotent_retry_returns_the_job_after_the_budget_is_spent(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    first = api.enqueue(uid, "generate_design", {"n": 1}, idempotency_key="k1")
    claimed = api.claim("w1")
    record(api, claimed[0], output_tokens=4000, input_tokens=0, cached_tokens=0)
    assert refused(lambda: api.enqueue(uid, "generate_design", {"n": 2})).sqlstate == "PT402"
    again = api.enqueue(uid, "generate_design", {"n": 1}, idempotency_key="k1")
    assert again["id"] == first["id"]


def test_unfinished_jobs_reserve_their_estimate(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.05")  # generate_design is estimated at $0.02
    for i in range(3):  # reserved before each: 0, 0.02, 0.04, all under 0.05
        api.enqueue(uid, "generate_design", {"i": i})
    err = refused(lambda: api.enqueue(uid, "generate_design", {"i": 3}))
    assert err.sqlstate == "PT402"
    assert "0.0000 USD is spent and your 3 unfinished jobs reserve 0.0600 USD" in (err.diag.message_primary or "")
    assert api.as_user(uid, "select reserved_usd from my_spend") == [{"reserved_usd": Decimal("0.060000")}]
    # A cancelled job releases its reservation.
    victim = api.admin("select id from public.jobs where user_id = %s limit 1", (uid,))[0]["id"]
    api.as_user(uid, "select cancel_job(%s)", (victim,))
    api.enqueue(uid, "generate_design", {"i": 4})


def test_concurrent_enqueues_cannot_overspend_by_more_than_one_job(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.05")
    done = record(api, running_job(api, uid), input_tokens=0, cached_tokens=0, output_tokens=2000)  # $0.01 spent
    api.as_service("select complete_job(%s, 'w1', '{}')", (done["job_id"],))
    start = threading.Barrier(12)
    outcomes: list[str] = []
    lock = threading.Lock()

    def submit(i: int) -> None:
        with SqlApi(dbname) as mine:
            start.wait()
            try:
                mine.enqueue(uid, "generate_design", {"i": i})
                result = "ok"
            except psycopg.Error as exc:
                result = exc.sqlstate or "?"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # $0.01 spent; each admitted job reserves $0.02: admitted at 0.01, 0.03 (0.05 is not < 0.05).
    assert sorted(outcomes) == ["PT402"] * 10 + ["ok"] * 2
    committed = api.as_user(uid, "select spent_usd + reserved_usd as c, budget_usd as b from my_spend")[0]
    assert committed["c"] - committed["b"] <= Decimal("0.02")  # at most one job's estimate over


def test_usage_of_last_month_does_not_count(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    row = record(api, running_job(api, uid), output_tokens=4000, input_tokens=0, cached_tokens=0)
    api.as_service("select complete_job(%s, 'w1', '{}')", (row["job_id"],))
    api.admin("update public.usage_ledger set created_at = date_trunc('month', now(), 'UTC') - interval '1 day'")
    api.enqueue(uid, "generate_design", {"n": 2})
    months = api.as_service("select month, spent_usd from spend_by_user_month where user_id = %s", (uid,))
    assert [m["spent_usd"] for m in months] == [Decimal("0.020000")]


def test_users_read_only_their_own_spend(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    record(api, running_job(api, alice))
    mine = api.as_user(
        alice, "select user_id, plan, budget_usd, spent_usd, remaining_usd, calls, resets_at from my_spend"
    )
    assert len(mine) == 1
    assert (mine[0]["user_id"], mine[0]["plan"], mine[0]["calls"]) == (alice, "free", 1)
    assert (mine[0]["budget_usd"], mine[0]["spent_usd"], mine[0]["remaining_usd"]) == (
        Decimal("5.00"),
        Decimal("0.003320"),
        Decimal("4.996680"),
    )
    assert api.as_user(bob, "select spent_usd, calls from my_spend") == [{"spent_usd": Decimal("0"), "calls": 0}]
    for view in ("usage_ledger", "job_costs", "spend_by_user_month", "cost_per_kind", "tokens_per_kind"):
        assert api.as_user(bob, f"select * from {view}") == [], view
        assert len(api.as_user(alice, f"select * from {view}")) == 1, view
        assert refused(lambda v=view: api.as_anon(f"select * from {v}")).sqlstate == "42501"
    assert api.as_service("select * from my_spend") == []  # no signed-in user


def test_dashboard_views(api: SqlApi) -> None:
    users = [api.create_user() for _ in range(2)]
    for uid in users:
        job = running_job(api, uid)
        record(api, job)
        record(api, job, output_tokens=1000, cached_tokens=0)
    per_kind = api.as_service("select * from cost_per_kind")
    # Per job: 0.00332 + (1000 * 1 + 1000 * 5) / 1e6 = 0.00932; per 1,000 jobs: 9.32.
    assert per_kind == [
        {
            "kind": "generate_design",
            "jobs": 2,
            "calls": 4,
            "cost_usd": Decimal("0.018640"),
            "cost_per_1k_jobs_usd": Decimal("9.3200"),
        }
    ]
    tokens = api.as_service("select * from tokens_per_kind")
    assert [
        (t["kind"], t["model"], t["calls"], t["input_tokens"], t["cached_tokens"], t["output_tokens"]) for t in tokens
    ] == [("generate_design", "claude-haiku-4-5", 4, 4000, 400, 3000)]
    assert len(api.as_service("select * from spend_by_user_month")) == 2
    assert refused(lambda: api.as_service("delete from public.cost_per_kind")).sqlstate == "PT405"
    assert refused(lambda: api.as_user(users[0], "delete from public.my_spend")).sqlstate == "42501"
