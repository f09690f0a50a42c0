"""report_progress_batch, complete_jobs with the last progress, and the Realtime messages per job."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_lifecycle import complete_many, running_job

pytestmark = pytest.mark.sql


def report(api: SqlApi, items: Any, worker: str = "w1") -> list[Row]:
    return api.as_service("select * from report_progress_batch(%s, %s::jsonb)", (worker, json.dumps(items)))


def events_of(api: SqlApi, job_id: uuid.UUID) -> list[tuple[str, Any]]:
    rows = api.admin("select type, data from public.job_events where job_id = %s order by id", (job_id,))
    return [(r["type"], r["data"]) for r in rows]


def messages(api: SqlApi) -> list[Row]:
    # One transaction's messages share inserted_at; the rows' own update times order them.
    return api.admin("select event, payload from realtime.messages order by inserted_at, payload->>'updated_at'")


def test_batch_applies_every_item_in_order_for_many_jobs(api: SqlApi) -> None:
    a, b = running_job(api), running_job(api)
    rows = report(
        api,
        [
            {"job_id": str(a["id"]), "percent": 33.33, "message": "batch 1 of 3"},
            {"job_id": str(b["id"]), "partial": "Variant A: "},
            {"job_id": str(a["id"]), "percent": 66.67, "message": "batch 2 of 3"},
            {"job_id": str(b["id"]), "partial": "Bold", "message": "writing"},
            {"job_id": str(a["id"]), "partial": "x"},
        ],
    )
    assert [(r["job_id"], r["accepted"], r["reason"]) for r in rows] == [(a["id"], True, None), (b["id"], True, None)]
    assert events_of(api, a["id"]) == [
        ("progress", {"percent": 33.3, "message": "batch 1 of 3"}),
        ("progress", {"percent": 66.7, "message": "batch 2 of 3"}),
        ("partial", {"text": "x"}),
    ]
    assert events_of(api, b["id"]) == [
        ("partial", {"text": "Variant A: "}),
        ("progress", {"percent": 0, "message": "writing"}),
        ("partial", {"text": "Bold"}),
    ]  # within an item, as report_progress: the progress first, then the text
    assert api.job(a["id"])["progress"] == {"percent": 66.7, "message": "batch 2 of 3"}


def test_a_job_no_longer_held_is_refused_in_its_row_and_the_others_go_through(api: SqlApi) -> None:
    mine, theirs, expired = running_job(api), running_job(api, worker="w2"), running_job(api)
    api.admin("update jobs set lease_expires_at = now() - interval '1 second' where id = %s", (expired["id"],))
    gone = uuid.uuid4()
    rows = report(api, [{"job_id": str(j), "percent": 50} for j in (theirs["id"], gone, mine["id"], expired["id"])])
    assert [(r["job_id"], r["accepted"]) for r in rows] == [
        (theirs["id"], False), (gone, False), (mine["id"], True), (expired["id"], False),
    ]  # fmt: skip
    assert rows[0]["reason"] == 'not held by worker "w1" (status running, held by "w2")'
    assert rows[1]["reason"] == "not found"
    assert rows[3]["reason"].startswith("the lease expired at")
    assert events_of(api, theirs["id"]) == events_of(api, expired["id"]) == []
    assert api.job(mine["id"])["progress"]["percent"] == 50


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (
            {"job_id": "x"},
            'reports: must be a JSON array of {"job_id", "percent", "message", "partial", "started"} objects,'
            " got object",
        ),
        ([], "reports: must hold 1 to 1000 items, got 0"),
        ([{"job_id": "JOB", "percent": 1}] * 1001, "reports: must hold 1 to 1000 items, got 1002"),
        ([3], "reports[1]: must be an object, got number"),
        ([{"job_id": "nope", "percent": 1}], "reports[1].job_id: must be a UUID string"),
        ([{"job_id": "JOB", "percent": 101}], "reports[1].percent: must be between 0 and 100, got 101"),
        ([{"job_id": "JOB", "percent": "5"}], "reports[1].percent: must be a number, got string"),
        ([{"job_id": "JOB", "message": "m" * 1001}], "reports[1].message: must be at most 1000 characters, got 1001"),
        ([{"job_id": "JOB", "partial": 7}], "reports[1].partial: must be a string, got number"),
        (
            [{"job_id": "JOB", "partial": "p" * 65537}],
            "reports[1].partial: must be at most 65536 bytes per item, got 65537",
        ),
        ([{"job_id": "JOB"}], "reports[1]: nothing to report: give percent, message, partial or started"),
        (
            [{"job_id": "JOB", "started": None}],
            "reports[1]: nothing to report: give percent, message, partial or started",
        ),
        ([{"job_id": "JOB", "started": False}], "reports[1].started: must be true, got false"),
        ([{"job_id": "JOB", "started": "yes"}], 'reports[1].started: must be true, got "yes"'),
        (
            [{"job_id": "JOB", "note": 1}],
            'reports[1]: unknown key "note"; allowed: job_id, percent, message, partial, started',
        ),
        ([{"job_id": "JOB", "partial": "p" * 60000}] * 70, "reports: 42"),
    ],
)
def test_batch_is_validated_as_a_whole_before_anything_changes(api: SqlApi, items: Any, message: str) -> None:
    held, job = running_job(api), running_job(api)
    text = json.dumps(items).replace("JOB", str(job["id"]))
    bad = json.loads(text)
    batch = [{"job_id": str(held["id"]), "percent": 10}, *bad] if isinstance(bad, list) and bad else bad
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        report(api, batch)
    assert str(err.value).splitlines()[0].startswith(message)
    assert api.count("select count(*) from public.job_events") == 0  # the valid first item did not go through
    assert (
        api.count("select count(*) from realtime.messages where payload->>'status' = 'running' and payload ? 'events'")
        == 0
    )


def test_batch_is_for_the_service_role_only(api: SqlApi) -> None:
    job = running_job(api)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(
            api.create_user(),
            "select * from report_progress_batch('w1', %s::jsonb)",
            (json.dumps([{"job_id": str(job["id"]), "percent": 1}]),),
        )


def test_complete_jobs_records_the_carried_last_progress(api: SqlApi) -> None:
    a, b = running_job(api), running_job(api)
    rows = complete_many(
        api,
        [
            {"job_id": str(a["id"]), "result": {"n": 1}, "progress": {"percent": 95, "message": "12 nodes"}},
            {"job_id": str(b["id"]), "result": {}, "progress": None},
        ],
    )
    assert [r["completed"] for r in rows] == [True, True]
    assert events_of(api, a["id"]) == [("progress", {"percent": 95, "message": "12 nodes"})]
    assert events_of(api, b["id"]) == []
    assert api.job(a["id"])["progress"] == {"percent": 100, "message": "12 nodes"}
    assert api.job(b["id"])["progress"]["percent"] == 100


@pytest.mark.parametrize(
    ("progress", "message"),
    [
        (3, "completions[0].progress: must be an object with percent and/or message, got number"),
        ({"percent": 200}, "completions[0].progress.percent: must be between 0 and 100, got 200"),
        ({"message": 1}, "completions[0].progress.message: must be a string, got number"),
        ({"partial": "x"}, 'completions[0].progress: unknown key "partial"; allowed: percent, message'),
    ],
)
def test_complete_jobs_validates_the_carried_progress(api: SqlApi, progress: Any, message: str) -> None:
    job = running_job(api)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        complete_many(api, [{"job_id": str(job["id"]), "result": {}, "progress": progress}])
    assert str(err.value).splitlines()[0] == message
    assert api.job(job["id"])["status"] == "running"


def test_a_design_job_costs_three_messages_and_a_rename_job_keeps_every_batch(api: SqlApi) -> None:
    """queued, running (claim), succeeded with the carried last progress: the Realtime budget.
    A rename job's coalesced batches ride together in one message, none dropped."""
    design = running_job(api, kind="generate_design")
    complete_many(api, [{"job_id": str(design["id"]), "result": {}, "progress": {"percent": 95, "message": "9 nodes"}}])
    sent = [m for m in messages(api) if m["payload"].get("id") == str(design["id"])]
    assert [(m["event"], m["payload"]["status"]) for m in sent] == [
        ("job", "queued"), ("job", "running"), ("job", "succeeded"),
    ]  # fmt: skip
    assert [e["data"] for e in sent[2]["payload"]["events"]] == [{"percent": 95, "message": "9 nodes"}]

    rename = running_job(api)
    before = len(messages(api))
    steps = [{"job_id": str(rename["id"]), "percent": p, "message": f"batch {i} of 3"} for i, p in ((1, 33), (2, 67))]
    report(api, steps)
    [msg] = messages(api)[before:]
    assert msg["event"] == "job" and msg["payload"]["progress"] == {"percent": 67, "message": "batch 2 of 3"}
    assert [e["data"]["message"] for e in msg["payload"]["events"]] == ["batch 1 of 3", "batch 2 of 3"]


def test_other_jobs_changed_in_the_same_call_still_broadcast_themselves(api: SqlApi) -> None:
    """Quieting the row triggers names the completed jobs only: a dependent job released by the
    completion is broadcast as before."""
    uid = api.create_user()
    first = api.enqueue(uid, "rename_layers", {"n": 1})
    second = api.enqueue(uid, "rename_layers", {"n": 2}, depends_on=first["id"])
    api.claim("w1", max_jobs=1)
    before = len(messages(api))
    complete_many(api, [{"job_id": str(first["id"]), "result": {}}])
    sent = [(m["payload"]["id"], m["payload"]["status"]) for m in messages(api)[before:]]
    assert (str(first["id"]), "succeeded") in sent and (str(second["id"]), "queued") in sent


def claim_quietly(api: SqlApi, worker: str = "w1", kind: str = "generate_design") -> Row:
    """A job claimed as the worker claims: claim_jobs_or_park."""
    uid = api.create_user()
    job = api.enqueue(uid, kind, {"n": 1})
    [claimed] = api.as_service("select * from claim_jobs_or_park(%s, null, 1, 60, 60)", (worker,))
    assert claimed["id"] == job["id"]
    return claimed


def test_a_worker_claimed_job_costs_three_messages_and_its_announcement_carries_the_first_step(api: SqlApi) -> None:
    """queued (insert); running with the first progress step (the claim is quiet, the worker's
    "started" marker and step ride in one message); succeeded with the carried last step."""
    job = claim_quietly(api)
    assert [m["payload"]["status"] for m in messages(api) if m["payload"].get("id") == str(job["id"])] == ["queued"]
    rows = report(api, [{"job_id": str(job["id"]), "started": True}, {"job_id": str(job["id"]), "percent": 5}])
    assert [(r["accepted"], r["reason"]) for r in rows] == [(True, None)]
    complete_many(api, [{"job_id": str(job["id"]), "result": {}, "progress": {"percent": 95, "message": "9 nodes"}}])
    sent = [m for m in messages(api) if m["payload"].get("id") == str(job["id"])]
    assert [(m["event"], m["payload"]["status"]) for m in sent] == [
        ("job", "queued"), ("job", "running"), ("job", "succeeded"),
    ]  # fmt: skip
    assert [e["data"]["percent"] for e in sent[1]["payload"]["events"]] == [5]
    assert api.job(job["id"])["progress"]["percent"] == 100


def test_a_started_marker_alone_sends_the_running_row_without_an_event(api: SqlApi) -> None:
    job = claim_quietly(api)
    before = len(messages(api))
    report(api, [{"job_id": str(job["id"]), "started": True}])
    [msg] = messages(api)[before:]
    assert msg["event"] == "job" and msg["payload"]["status"] == "running" and "events" not in msg["payload"]
    assert events_of(api, job["id"]) == []
    # A job no longer held is refused and announced by nobody.
    other = claim_quietly(api, worker="w2")
    [row] = report(api, [{"job_id": str(other["id"]), "started": True}])
    assert row["accepted"] is False and len(messages(api)) == before + 2  # other's queued only


def test_only_the_workers_claims_are_quiet(api: SqlApi) -> None:
    """claim_jobs (other callers, the notify scenario) still broadcasts running; complete_and_claim's
    claim is quiet like claim_jobs_or_park's, and only the claim is: the completion in the same call
    and a later failure still broadcast."""
    loud = running_job(api)
    assert [m["payload"]["status"] for m in messages(api) if m["payload"].get("id") == str(loud["id"])] == [
        "queued", "running",
    ]  # fmt: skip
    uid = api.create_user()
    nxt = api.enqueue(uid, "rename_layers", {"n": 2})
    rows = api.as_service(
        "select * from complete_and_claim('w1', %s::jsonb, null, 1, 60)",
        (json.dumps([{"job_id": str(loud["id"]), "result": {}}]),),
    )
    assert [r["entry"] for r in rows] == ["completed", "claimed"]
    assert [m["payload"]["status"] for m in messages(api) if m["payload"].get("id") == str(nxt["id"])] == ["queued"]
    assert api.count("select count(*) from realtime.messages where payload->>'status' = 'succeeded'") == 1
    api.as_service(
        "select * from fail_job(%s, 'w1', %s::jsonb, false)",
        (nxt["id"], json.dumps({"type": "provider_error", "message": "x"})),
    )
    assert [m["payload"]["status"] for m in messages(api) if m["payload"].get("id") == str(nxt["id"])] == [
        "queued", "failed",
    ]  # fmt: skip
