"""report_and_complete: report_progress_batch and complete_jobs in one statement
(20261207000100_report_and_complete.sql)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_lifecycle import running_job
from tests.sql.test_progress_batch import events_of

pytestmark = pytest.mark.sql

CALL = "select * from report_and_complete(%s, %s::jsonb, %s::jsonb)"


def report_and_complete(api: SqlApi, reports: Any, completions: Any, worker: str = "w1") -> list[Row]:
    return api.as_service(CALL, (worker, json.dumps(reports), json.dumps(completions)))


def test_reports_then_completions_in_one_call(api: SqlApi) -> None:
    started, done, theirs = running_job(api), running_job(api), running_job(api, worker="w2")
    rows = report_and_complete(
        api,
        [
            {"job_id": str(started["id"]), "started": True, "percent": 5, "message": "designing"},
            {"job_id": str(theirs["id"]), "percent": 50},
        ],
        [{"job_id": str(done["id"]), "result": {"n": 1}, "progress": {"percent": 95, "message": "12 nodes"}}],
    )
    assert [(r["entry"], r["job_id"], r["recorded"]) for r in rows] == [
        ("reported", started["id"], True),
        ("reported", theirs["id"], False),
        ("completed", done["id"], True),
    ]
    assert rows[1]["reason"] == 'not held by worker "w1" (status running, held by "w2")'
    assert rows[0]["reason"] is None and rows[2]["reason"] is None
    assert api.job(started["id"])["progress"] == {"percent": 5, "message": "designing"}
    assert api.job(started["id"])["status"] == "running"
    finished = api.job(done["id"])
    assert (finished["status"], finished["result"], finished["progress"]) == (
        "succeeded",
        {"n": 1},
        {"percent": 100, "message": "12 nodes"},
    )
    assert api.job(theirs["id"])["progress"] != {"percent": 50, "message": None}  # untouched


def test_a_jobs_report_comes_before_its_completion(api: SqlApi) -> None:
    job = running_job(api)
    rows = report_and_complete(
        api, [{"job_id": str(job["id"]), "partial": "Variant A"}], [{"job_id": str(job["id"]), "result": {}}]
    )
    assert [(r["entry"], r["recorded"]) for r in rows] == [("reported", True), ("completed", True)]
    assert events_of(api, job["id"])[-1] == ("partial", {"text": "Variant A"})
    assert api.job(job["id"])["status"] == "succeeded"


def test_each_job_gets_one_message_per_part(api: SqlApi) -> None:
    a, b = running_job(api), running_job(api)
    before = api.count("select count(*) from realtime.messages")
    report_and_complete(api, [{"job_id": str(a["id"]), "percent": 10}], [{"job_id": str(b["id"]), "result": {}}])
    payloads = api.admin(
        "select payload from realtime.messages order by inserted_at desc, payload->>'updated_at' desc limit 2"
    )
    assert api.count("select count(*) from realtime.messages") - before == 2
    assert {(p["payload"]["id"], p["payload"]["status"]) for p in payloads} == {
        (str(a["id"]), "running"),
        (str(b["id"]), "succeeded"),
    }


@pytest.mark.parametrize(
    ("reports", "completions", "message"),
    [
        (None, [{"result": {}}], "reports: must be a JSON array of"),
        ([], [{"result": {}}], "reports: must hold 1 to 1000 items, got 0"),
        ([{"percent": 5}], [], "completions: must hold 1 to 1000 items, got 0"),
        ([{"percent": 101}], [{"result": {}}], "reports[0].percent: must be"),
        ([{"job_id": "nope", "percent": 5}], [{"result": {}}], "reports[0].job_id: must be a UUID string"),
        ([{"percent": 5}], [{"result": "text"}], "completions[0].result: must be a JSON object or array, got string"),
        ([{"percent": 5}], [{"job_id": 7, "result": {}}], "completions[0].job_id: must be a UUID string"),
    ],
)
def test_a_bad_argument_names_its_field_and_changes_nothing(
    api: SqlApi, reports: Any, completions: Any, message: str
) -> None:
    reported, done = running_job(api), running_job(api)
    for item in reports or []:
        item.setdefault("job_id", str(reported["id"]))
    for item in completions:
        item.setdefault("job_id", str(done["id"]))
    before = api.count("select count(*) from realtime.messages")
    events = events_of(api, reported["id"])
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        report_and_complete(api, reports, completions)
    assert str(err.value).splitlines()[0].startswith(message)
    assert api.job(reported["id"])["progress"] == reported["progress"]
    assert api.job(done["id"])["status"] == "running"
    assert events_of(api, reported["id"]) == events
    assert api.count("select count(*) from realtime.messages") == before


def test_a_bad_worker_id_is_named(api: SqlApi) -> None:
    job = running_job(api)
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        report_and_complete(
            api, [{"job_id": str(job["id"]), "percent": 5}], [{"job_id": str(job["id"]), "result": {}}], ""
        )
    assert str(err.value).splitlines()[0] == "worker_id: must be a non-empty string"
    assert api.job(job["id"])["status"] == "running"


def test_is_for_the_service_role_only(api: SqlApi) -> None:
    uid = api.create_user()
    item = json.dumps([{"job_id": str(uuid.uuid4()), "result": {}}])
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(uid, CALL, ("w1", json.dumps([{"job_id": str(uuid.uuid4()), "percent": 1}]), item))
