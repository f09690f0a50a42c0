"""Plans and entitlements: plan priority as default and ceiling, the plan's rate limit and
running cap, the operator calls (set_plan, set_plan_kind_limits, set_user_plan), and who may
read or write what."""

from __future__ import annotations

import re
import uuid

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi

pytestmark = pytest.mark.sql


def refused(call: object) -> psycopg.Error:
    assert callable(call)
    with pytest.raises(psycopg.Error) as err:
        call()
    return err.value


def plans_state(api: SqlApi) -> list[Row]:
    return api.admin(
        "select 'plan' as t, to_jsonb(p) as r from public.plans p union all "
        "select 'limits', to_jsonb(l) from public.plan_kind_limits l union all "
        "select 'user', to_jsonb(u) from public.user_plans u order by 1, 2"
    )


def test_default_plan_is_job_kinds_limits(api: SqlApi) -> None:
    uid = api.create_user()
    assert api.admin("select plan from public.plans where is_default") == [{"plan": "free"}]
    assert api.count("select count(*) from public.plan_kind_limits where plan = 'free'") == 0
    job = api.enqueue(uid, "rename_layers")
    assert job["priority"] == 10  # rename_layers' default_priority
    assert api.as_user(uid, "select plan from my_spend") == [{"plan": "free"}]


def test_priority_above_plan_is_400_naming_priority_and_plan(api: SqlApi) -> None:
    uid = api.create_user()
    err = refused(lambda: api.enqueue(uid, "generate_design", priority=1))
    assert err.sqlstate == "22023"
    assert err.diag.message_primary == 'priority: must be at most 0 for kind "generate_design" on plan "free", got 1'
    assert api.count("select count(*) from public.jobs") == 0
    # A caller may lower it.
    assert api.enqueue(uid, "generate_design", priority=-20)["priority"] == -20


def test_paid_plan_gets_its_priority_and_may_lower_it(api: SqlApi) -> None:
    free, pro = api.create_user(), api.create_user()
    api.set_user_plan(pro, "pro")
    assert api.enqueue(pro, "generate_design")["priority"] == 50
    assert api.enqueue(pro, "generate_design", {"n": 2}, priority=5)["priority"] == 5
    err = refused(lambda: api.enqueue(pro, "generate_design", {"n": 3}, priority=51))
    assert err.diag.message_primary == 'priority: must be at most 50 for kind "generate_design" on plan "pro", got 51'
    api.enqueue(free, "generate_design")
    claimed = api.claim("w1", max_jobs=1)
    assert claimed[0]["user_id"] == pro  # the paid job goes first


def test_plan_rate_limit_applies(api: SqlApi) -> None:
    free, pro = api.create_user(), api.create_user()
    api.set_user_plan(pro, "pro")  # generate_edits: 3/min on free, 15/min on pro
    for i in range(3):
        api.enqueue(free, "generate_edits", {"i": i})
        api.enqueue(pro, "generate_edits", {"i": i})
    assert refused(lambda: api.enqueue(free, "generate_edits", {"i": 3})).sqlstate == "PT429"
    api.enqueue(pro, "generate_edits", {"i": 3})
    api.as_service("select set_plan_kind_limits('pro', 'generate_edits', rate_limit_per_minute => 4)")
    err = refused(lambda: api.enqueue(pro, "generate_edits", {"i": 4}))
    assert err.sqlstate == "PT429"
    assert err.diag.message_primary == 'rate limit: at most 4 "generate_edits" jobs per minute per user'


def test_claim_honours_the_plans_running_cap(api: SqlApi) -> None:
    free, pro = api.create_user(), api.create_user()
    api.set_user_plan(pro, "pro")  # generate_edits running cap: 1 on free, 3 on pro
    for i in range(3):
        api.enqueue(free, "generate_edits", {"i": i})
        api.enqueue(pro, "generate_edits", {"i": i})
    claimed = api.claim("w1", max_jobs=10)
    per_user = {u: sum(1 for j in claimed if j["user_id"] == u) for u in (free, pro)}
    assert per_user == {free: 1, pro: 3}
    assert api.claim("w2", max_jobs=10) == []
    # A plan change applies to the next claim.
    api.set_user_plan(free, "pro")
    assert [j["user_id"] for j in api.claim("w3", max_jobs=10)] == [free, free]


def test_set_user_plan_moves_a_user_and_users_read_only_their_row(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    row = api.set_user_plan(alice, "pro")
    assert (row["user_id"], row["plan"]) == (alice, "pro")
    assert api.set_user_plan(alice, "free")["plan"] == "free"
    assert api.as_user(alice, "select user_id, plan from user_plans") == [{"user_id": alice, "plan": "free"}]
    assert api.as_user(bob, "select * from user_plans") == []
    assert {r["plan"] for r in api.as_user(bob, "select plan from plans")} == {"free", "pro"}
    assert api.as_user(bob, "select count(*) as n from plan_kind_limits")[0]["n"] == 4


@pytest.mark.parametrize(
    "query",
    [
        "insert into public.user_plans (user_id, plan) values (%(uid)s, 'pro')",
        "update public.plans set monthly_budget_usd = 1000",
        "insert into public.plan_kind_limits (plan, kind, priority) values ('free', 'generate_design', 100)",
        "select * from public.set_user_plan(%(uid)s, 'pro')",
        "select * from public.set_plan('gold', 1)",
        "select * from public.set_plan_kind_limits('free', 'generate_design', 100)",
    ],
)
def test_users_and_anon_cannot_change_plans(api: SqlApi, query: str) -> None:
    uid = api.create_user()
    before = plans_state(api)
    for who in (lambda: api.as_user(uid, query, {"uid": uid}), lambda: api.as_anon(query, {"uid": uid})):
        assert refused(who).sqlstate == "42501"
    assert plans_state(api) == before


def test_anon_reads_no_plans(api: SqlApi) -> None:
    assert refused(lambda: api.as_anon("select * from public.plans")).sqlstate == "42501"
    assert refused(lambda: api.as_anon("select * from public.user_plans")).sqlstate == "42501"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("select * from set_user_plan(%(uid)s, 'gold')", r'^plan: unknown plan "gold"$'),
        ("select * from set_user_plan(%(uid)s, null)", r"^plan: must not be null$"),
        ("select * from set_user_plan(null, 'pro')", r"^user_id: must not be null$"),
        ("select * from set_user_plan(%(other)s, 'pro')", r"^user_id: no user [0-9a-f-]{36}$"),
        ("select * from set_plan('gold', -1)", r"^monthly_budget_usd: must be between 0 and 1000000 USD .*got -1$"),
        ("select * from set_plan('gold', 'NaN')", r"^monthly_budget_usd: must be between 0 and 1000000 USD .*got NaN$"),
        ("select * from set_plan('Gold Plan', 1)", r'^plan: must be 1 to 63 lowercase letters.*got "Gold Plan"$'),
        ("select * from set_plan('free', 1, is_default => false)", r'^is_default: plan "free" is the default'),
        ("select * from set_plan_kind_limits('gold', 'generate_design', 1)", r'^plan: unknown plan "gold"$'),
        ("select * from set_plan_kind_limits('pro', 'render', 1)", r'^kind: unknown job kind\(s\): "render"$'),
        ("select * from set_plan_kind_limits('pro', null, 1)", r"^kind: must not be null$"),
        (
            "select * from set_plan_kind_limits('pro', 'generate_design', 101)",
            r"^priority: must be between -100 and 100, got 101$",
        ),
        (
            "select * from set_plan_kind_limits('pro', 'generate_design', rate_limit_per_minute => 0)",
            r"^rate_limit_per_minute: must be between 1 and 100000, got 0$",
        ),
        (
            "select * from set_plan_kind_limits('pro', 'generate_design', max_running_per_user => -3)",
            r"^max_running_per_user: must be between 1 and 100000, got -3$",
        ),
    ],
)
def test_operator_calls_refuse_bad_input_and_change_nothing(api: SqlApi, query: str, message: str) -> None:
    uid = api.create_user()
    before = plans_state(api)
    err = refused(lambda: api.as_service(query, {"uid": uid, "other": uuid.uuid4()}))
    assert err.sqlstate == "22023"
    assert re.search(message, err.diag.message_primary or ""), err.diag.message_primary
    assert plans_state(api) == before


def test_unknown_plan_hint_lists_plans(api: SqlApi) -> None:
    uid = api.create_user()
    err = refused(lambda: api.set_user_plan(uid, "gold"))
    assert err.diag.message_hint == "known plans: free, pro"


def test_set_plan_creates_updates_and_moves_the_default(api: SqlApi) -> None:
    uid = api.create_user()
    made = api.as_service("select * from set_plan('team', 250.005, 'Team plan')")[0]
    assert (made["plan"], str(made["monthly_budget_usd"]), made["is_default"]) == ("team", "250.01", False)
    api.as_service("select * from set_plan('team', null, is_default => true)")
    assert api.admin("select plan, monthly_budget_usd from public.plans where is_default") == [
        {"plan": "team", "monthly_budget_usd": None}
    ]
    assert api.as_user(uid, "select plan, budget_usd, remaining_usd from my_spend") == [
        {"plan": "team", "budget_usd": None, "remaining_usd": None}
    ]


def test_direct_writes_by_the_service_role_are_checked(api: SqlApi) -> None:
    err = refused(lambda: api.as_service("insert into public.plans (plan, monthly_budget_usd) values ('neg', -5)"))
    assert err.sqlstate == "23514"
    assert err.diag.constraint_name == "plans_budget_range"
    err = refused(lambda: api.as_service("insert into public.plans (plan, is_default) values ('second', true)"))
    assert err.sqlstate == "23505"  # one default plan
