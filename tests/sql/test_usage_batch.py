"""record_usage_batch: many model calls' usage in one call, each through record_usage (its
checks and pricing); a malformed item is a 400 naming calls[i] and records nothing of the
batch; a job that is gone is answered in its row; only the service role may call it."""

from __future__ import annotations

import json
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_usage_budget import refused, running_job

pytestmark = pytest.mark.sql
CALL = "select * from record_usage_batch(%s, %s::jsonb)"


def item(job: Row, **kw: Any) -> dict[str, Any]:
    return {
        "job_id": str(job["id"]),
        "attempt": 1,
        "provider": "anthropic",
        "model": "claude-haiku-4-5",
        "input_tokens": 1000,
        "output_tokens": 500,
        "cached_tokens": 200,
        "latency_ms": 1234,
        **kw,
    }


class Second:
    """A batch of a good item and a second one with these fields changed."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def __repr__(self) -> str:
        return f"Second({self.fields})"


def batch(api: SqlApi, calls: Any, worker: str = "w1") -> list[Row]:
    return api.as_service(CALL, (worker, json.dumps(calls)))


def test_each_call_is_priced_and_recorded_in_order_and_a_gone_job_is_answered(api: SqlApi) -> None:
    uid = api.create_user()
    first, second = running_job(api, uid), running_job(api, uid)
    gone = str(uuid.uuid4())
    image = item(second, provider="gemini", model="gemini-2.5-flash-image", input_tokens=10, cached_tokens=0)
    rows = batch(api, [item(first), {**item(first), "job_id": gone}, {**image, "output_tokens": 1290, "images": 1}])
    assert [(str(r["job_id"]), r["recorded"], r["cost_usd"], r["reason"]) for r in rows] == [
        (str(first["id"]), True, Decimal("0.00332000"), None),
        (gone, False, None, "job not found"),
        (str(second["id"]), True, Decimal("0.03870300"), None),
    ]
    ledger = api.as_service("select job_id, user_id, attempt, latency_ms from usage_ledger order by id")
    assert [(r["job_id"], r["user_id"], r["attempt"]) for r in ledger] == [
        (first["id"], uid, 1),
        (second["id"], uid, 1),
    ]
    # Defaults as record_usage's: no images, no cached tokens, latency unknown.
    [row] = batch(api, [{"job_id": str(first["id"]), "attempt": 1, "provider": "anthropic", "model": "m-1"}])
    assert row["recorded"] and row["cost_usd"] is None


@pytest.mark.parametrize(
    ("calls", "message"),
    [
        (None, r"^calls: must be a JSON array of .*got null$"),
        ({"job_id": "x"}, r"^calls: must be a JSON array of .*got object$"),
        ([], r"^calls: must hold 1 to 1000 items, got 0$"),
        ([1], r"^calls\[0\]: must be an object, got number$"),
        ([{"tokens": 1}], r'^calls\[0\]: unknown key "tokens"; allowed: job_id, attempt, provider, model, '),
        ([{"job_id": "not-a-uuid"}], r"^calls\[0\]\.job_id: must be a UUID string$"),
        (Second(attempt=None), r"^calls\[1\]\.attempt: is required$"),
        (Second(attempt=1.5), r"^calls\[1\]\.attempt: must be an integer, got 1.5$"),
        (Second(input_tokens="9"), r'^calls\[1\]\.input_tokens: must be an integer, got "9"$'),
        (Second(latency_ms=10**12), r"^calls\[1\]\.latency_ms: must be an integer, got 1000000000000$"),
        (Second(provider=7), r"^calls\[1\]\.provider: must be a string, got number$"),
        (Second(model=None), r"^calls\[1\]\.model: must be a string, got null$"),
        (Second(provider="Anthropic!"), r'^calls\[1\]\.provider: must be 1 to 63 lowercase .*got "Anthropic!"$'),
        (Second(cached_tokens=1001), r"^calls\[1\]\.cached_tokens: must not exceed input_tokens \(1000\), got 1001$"),
        (Second(attempt=2), r"^calls\[1\]\.attempt: must be between 1 and the job's attempts \(1\), got 2$"),
    ],
)
def test_a_malformed_item_names_its_place_and_the_batch_records_nothing(api: SqlApi, calls: Any, message: str) -> None:
    job = running_job(api, api.create_user())
    if isinstance(calls, Second):
        calls = [item(job), item(job, **calls.fields)]
    err = refused(lambda: batch(api, calls))
    assert err.sqlstate == "22023"
    assert re.search(message, err.diag.message_primary or ""), err.diag.message_primary
    assert api.count("select count(*) from public.usage_ledger") == 0


def test_only_the_service_role_records_usage_in_batches(api: SqlApi) -> None:
    uid = api.create_user()
    calls = json.dumps([item(running_job(api, uid))])
    assert refused(lambda: api.as_user(uid, CALL, ("w1", calls))).sqlstate == "42501"
    assert refused(lambda: api.as_anon(CALL, ("w1", calls))).sqlstate == "42501"
    assert refused(lambda: batch(api, json.loads(calls), worker="")).sqlstate == "22023"
    assert api.count("select count(*) from public.usage_ledger") == 0


# -- complete_jobs carries a success's usage: recorded in the same transaction ------------------
COMPLETE = "select * from complete_jobs(%s, %s::jsonb)"


def carried(job: Row, **kw: Any) -> dict[str, Any]:
    """A usage item as complete_jobs carries it: record_usage_batch's, without the job id."""
    return {k: v for k, v in item(job, **kw).items() if k != "job_id"}


def test_a_success_carries_its_usage_recorded_whether_or_not_the_job_is_still_held(api: SqlApi) -> None:
    uid = api.create_user()
    mine, lost = running_job(api, uid), running_job(api, uid, worker="w2")
    rows = api.as_service(
        COMPLETE,
        (
            "w1",
            json.dumps(
                [
                    {"job_id": str(mine["id"]), "result": {}, "usage": [carried(mine), carried(mine, model="m-2")]},
                    {"job_id": str(lost["id"]), "result": {}, "usage": [carried(lost)]},
                    {"job_id": str(uuid.uuid4()), "result": {}, "usage": [carried(mine)]},  # gone: nothing to record
                ]
            ),
        ),
    )
    assert [r["completed"] for r in rows] == [True, False, False]
    ledger = api.as_service("select job_id, model, cost_usd from usage_ledger order by id")
    assert [(r["job_id"], r["model"]) for r in ledger] == [
        (mine["id"], "claude-haiku-4-5"),
        (mine["id"], "m-2"),
        (lost["id"], "claude-haiku-4-5"),  # the call was made and paid for; w2 still holds the job
    ]
    assert ledger[0]["cost_usd"] == Decimal("0.00332000")
    # No usage, or an empty list: nothing to record, as before.
    other = running_job(api, uid)
    [row] = api.as_service(COMPLETE, ("w1", json.dumps([{"job_id": str(other["id"]), "result": {}, "usage": []}])))
    assert row["completed"] and api.count("select count(*) from usage_ledger") == 3


@pytest.mark.parametrize(
    ("usage", "message"),
    [
        ({"attempt": 1}, r"^completions\[1\]\.usage: must be a JSON array of model calls, got object$"),
        (["x"], r"^completions\[1\]\.usage\[0\]: must be an object, got string$"),
        ([{"job_id": "JOB"}], r"^completions\[1\]\.usage\[0\]: must not name a job_id: it is the completion's$"),
        ([{"provider": "anthropic", "model": "m"}], r"^completions\[1\]\.usage\[0\]\.attempt: is required$"),
        ([{"tokens": 1}], r'^completions\[1\]\.usage\[0\]: unknown key "tokens"; allowed: job_id, attempt, '),
        ("CACHED", r"^completions\[1\]\.usage\[1\]\.cached_tokens: must not exceed input_tokens \(1000\), got 1001$"),
        ("MANY", r"^completions: carry 1002 usage records; at most 1000 in one call$"),
    ],
)
def test_a_malformed_usage_item_refuses_the_completions_by_name_and_changes_nothing(
    api: SqlApi, usage: Any, message: str
) -> None:
    uid = api.create_user()
    first, second = running_job(api, uid), running_job(api, uid)
    if usage == "CACHED":
        usage = [carried(second), carried(second, cached_tokens=1001)]
    elif usage == "MANY":
        usage = [carried(second)] * 1001
    else:
        usage = json.loads(json.dumps(usage).replace("JOB", str(second["id"])))
    completions = [
        {"job_id": str(first["id"]), "result": {}, "usage": [carried(first)]},
        {"job_id": str(second["id"]), "result": {}, "usage": usage},
    ]
    err = refused(lambda: api.as_service(COMPLETE, ("w1", json.dumps(completions))))
    assert err.sqlstate == "22023"
    assert re.search(message, err.diag.message_primary or ""), err.diag.message_primary
    assert api.count("select count(*) from public.usage_ledger") == 0
    assert {r["status"] for r in api.admin("select status from jobs")} == {"running"}


def test_complete_and_claim_carries_usage_too(api: SqlApi) -> None:
    uid = api.create_user()
    job = running_job(api, uid)
    waiting = api.enqueue(uid, "rename_layers", {"layers": []})
    rows = api.as_service(
        "select * from complete_and_claim(%s, %s::jsonb, null, 1, 60)",
        ("w1", json.dumps([{"job_id": str(job["id"]), "result": {}, "usage": [carried(job)]}])),
    )
    assert api.count("select count(*) from usage_ledger where job_id = %s", (job["id"],)) == 1
    assert api.job(job["id"])["status"] == "succeeded"
    assert rows and api.job(waiting["id"])["status"] == "running"
