"""private.budget_spend: each user's spend per budget period, kept by usage_ledger's statement
triggers so the budget check reads one row, not the month's ledger. The ledger is the record:
after every kind of change to it the running totals must equal its sums."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from devstack.sqlapi import SqlApi
from tests.sql.test_usage_budget import on_budget, record, refused, running_job

pytestmark = pytest.mark.sql

KEPT = "select user_id, period_start, spent_usd from private.budget_spend order by 1, 2"
SUMS = (
    "select user_id, private.budget_period_start(created_at) as period_start, sum(cost_usd) as spent_usd"
    " from public.usage_ledger where cost_usd is not null group by 1, 2 having sum(cost_usd) <> 0 order by 1, 2"
)


def assert_kept(api: SqlApi) -> list[tuple[uuid.UUID, object, Decimal]]:
    kept = [(r["user_id"], r["period_start"], r["spent_usd"]) for r in api.admin(KEPT)]
    assert kept == [(r["user_id"], r["period_start"], r["spent_usd"]) for r in api.admin(SUMS)]
    return kept


def test_the_running_spend_equals_the_ledger_after_every_kind_of_change(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    first, second, third = running_job(api, alice), running_job(api, alice), running_job(api, bob)
    record(api, first)
    record(api, first, model="no-price")  # a null cost counts nothing
    record(api, second, output_tokens=2000)
    record(api, third, images=1, provider="gemini", model="gemini-2.5-flash-image", cached_tokens=0)
    kept = assert_kept(api)
    assert [k[0] for k in kept] == sorted([alice, bob]) and all(k[2] > 0 for k in kept)

    # Updates: a corrected price, and a call moved to last month (a period of its own).
    api.admin("update public.usage_ledger set cost_usd = cost_usd * 2 where job_id = %s", (second["id"],))
    api.admin(
        "update public.usage_ledger set created_at = date_trunc('month', now(), 'UTC') - interval '1 day'"
        " where job_id = %s and model = 'claude-haiku-4-5'",
        (first["id"],),
    )
    assert len(assert_kept(api)) == 3
    # The job purged (the ledger keeps the call, job_id set null), rows deleted, a user deleted.
    api.admin("delete from public.jobs where id = %s", (third["id"],))
    assert_kept(api)
    api.admin("delete from public.usage_ledger where job_id = %s", (second["id"],))
    assert_kept(api)
    api.admin("delete from auth.users where id = %s", (bob,))
    assert bob not in {k[0] for k in assert_kept(api)}  # no row left for a user who is gone
    api.admin("truncate public.usage_ledger")
    assert assert_kept(api) == []


def test_the_budget_check_reads_the_running_spend(api: SqlApi) -> None:
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    job = running_job(api, uid)
    record(api, job, output_tokens=4000, input_tokens=0, cached_tokens=0)  # 0.02 USD
    api.as_service("select complete_job(%s, 'w1', '{}')", (job["id"],))
    err = refused(lambda: api.enqueue(uid, "generate_design", {"n": 2}))
    assert err.sqlstate == "PT402" and "0.0200 USD is spent" in (err.diag.message_primary or "")
    # Corrected in the ledger (an operator's refund), the check follows at once.
    api.admin("update public.usage_ledger set cost_usd = 0.001 where job_id = %s", (job["id"],))
    assert api.enqueue(uid, "generate_design", {"n": 3})["status"] in ("queued", "running")
