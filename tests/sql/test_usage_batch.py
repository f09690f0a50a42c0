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
from tests.sql.test_usage_budget import record, refused, running_job

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
        # Digits in a string read like a number through ->>: the one-statement path must not take them.
        (Second(input_tokens="2000"), r'^calls\[1\]\.input_tokens: must be an integer, got "2000"$'),
        (Second(output_tokens="9"), r'^calls\[1\]\.output_tokens: must be an integer, got "9"$'),
        (Second(images="1"), r'^calls\[1\]\.images: must be an integer, got "1"$'),
        (Second(latency_ms="5"), r'^calls\[1\]\.latency_ms: must be an integer, got "5"$'),
        (Second(attempt="1"), r'^calls\[1\]\.attempt: must be an integer, got "1"$'),
        (Second(latency_ms=10**12), r"^calls\[1\]\.latency_ms: must be an integer, got 1000000000000$"),
        (Second(provider=7), r"^calls\[1\]\.provider: must be a string, got number$"),
        (Second(model=None), r"^calls\[1\]\.model: must be a string, got null$"),
        (Second(provider="Anthropic!"), r'^calls\[1\]\.provider: must be 1 to 63 lowercase .*got "Anthropic!"$'),
        (Second(cached_tokens=1001), r"^calls\[1\]\.cached_tokens: must not exceed input_tokens \(1000\), got 1001$"),
        (Second(attempt=2), r"^calls\[1\]\.attempt: must be between 1 and the job's attempts \(1\), got 2$"),
        # Each limit's first refused value (the one-statement path sends it to the walk, which names it).
        (Second(attempt=0), r"^calls\[1\]\.attempt: must be between 1 and the job's attempts \(1\), got 0$"),
        (Second(input_tokens=10**8 + 1), r"^calls\[1\]\.input_tokens: must be between 0 and 100000000, got 100000001$"),
        (Second(output_tokens=-1), r"^calls\[1\]\.output_tokens: must be between 0 and 100000000, got -1$"),
        (Second(images=1001), r"^calls\[1\]\.images: must be between 0 and 1000, got 1001$"),
        (Second(latency_ms=86_400_001), r"^calls\[1\]\.latency_ms: must be between 0 and 86400000, got 86400001$"),
        (Second(model="m" * 201), r'^calls\[1\]\.model: must be 1 to 200 characters without spaces, got "m'),
        (Second(model="claude haiku"), r'^calls\[1\]\.model: must be 1 to 200 characters without spaces, got "claude '),
        (Second(provider="a" * 64), r'^calls\[1\]\.provider: must be 1 to 63 lowercase .*got "a'),
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


# Valid items at the edges of every check: the batch records them in one statement (or, for a
# number written 1.0 or 1e3, through the walk) and must store and answer exactly what
# record_usage, the definition, stores and answers for the same call.
EDGES: list[dict[str, Any]] = [
    {},
    {"input_tokens": 10**8, "output_tokens": 10**8, "cached_tokens": 10**8},
    {"images": 1000, "provider": "gemini", "model": "gemini-2.5-flash-image", "cached_tokens": 0},
    {"latency_ms": 86_400_000},
    {"latency_ms": None, "cached_tokens": None, "images": None},
    {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "latency_ms": 0},
    {"model": "m" * 200, "provider": "a"},
    {"provider": "a" * 63, "model": "no-price-for-this-one"},
    {"input_tokens": 1e3, "output_tokens": 1.0},
]
LEDGER = (
    "select attempt, worker_id, provider, model, input_tokens, output_tokens, cached_tokens, images, latency_ms,"
    " cost_usd, user_id, kind from usage_ledger where job_id = %s order by id"
)


def test_the_batch_records_and_answers_what_record_usage_does_at_every_edge(api: SqlApi) -> None:
    uid = api.create_user()
    batched, single = running_job(api, uid), running_job(api, uid)
    calls = [item(batched, **edge) for edge in EDGES]
    answered = batch(api, calls)
    defaults = {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0, "images": 0, "latency_ms": None}
    for call in calls:
        args = {k: (defaults[k] if v is None else v) for k, v in call.items() if k != "job_id"}
        record(api, single, **{k: int(v) if isinstance(v, float) else v for k, v in args.items()})
    assert api.as_service(LEDGER, (batched["id"],)) == api.as_service(LEDGER, (single["id"],))
    stored = [r["cost_usd"] for r in api.as_service(LEDGER, (batched["id"],))]
    assert [(r["job_id"], r["recorded"], r["cost_usd"]) for r in answered] == [(batched["id"], True, c) for c in stored]
    assert stored[0] == Decimal("0.00332000") and stored[7] is None  # priced, and a model without a price


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


def test_complete_jobs_gathers_usage_alike_with_or_without_progress(api: SqlApi) -> None:
    """Items with only a result and usage take the one-statement check; one with progress makes the
    call walk its items: both record the same usage records, in order, priced alike."""
    for progress in (None, {"percent": 90}):
        jobs = [running_job(api, api.create_user()) for _ in range(3)]  # a user's running cap is lower
        usage = [[carried(jobs[0]), carried(jobs[0], model="m-2")], [], [carried(jobs[2], images=2)]]
        completions = [
            {"job_id": str(j["id"]), "result": {"n": i}, "usage": u}
            | ({"progress": progress} if progress and i == 1 else {})
            for i, (j, u) in enumerate(zip(jobs, usage, strict=True))
        ]
        rows = api.as_service(COMPLETE, ("w1", json.dumps(completions)))
        assert [r["completed"] for r in rows] == [True, True, True]
        ledger = api.as_service(
            "select job_id, model, images, cost_usd from usage_ledger where job_id = any(%s) order by id",
            ([j["id"] for j in jobs],),
        )
        assert [(r["job_id"], r["model"], r["images"]) for r in ledger] == [
            (jobs[0]["id"], "claude-haiku-4-5", 0),
            (jobs[0]["id"], "m-2", 0),
            (jobs[2]["id"], "claude-haiku-4-5", 2),
        ]
        assert [r["cost_usd"] for r in ledger] == [Decimal("0.00332000"), None, Decimal("0.00332000")]
