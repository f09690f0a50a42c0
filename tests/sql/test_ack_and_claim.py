"""complete_and_claim: complete_jobs and claim_jobs in one statement (20261204000700_ack_and_claim.sql)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_lifecycle import running_job

pytestmark = pytest.mark.sql

CALL = "select * from complete_and_claim(%s, %s::jsonb, %s, %s, %s)"


def ack_and_claim(
    api: SqlApi, items: Any, *, worker: str = "w1", kinds: list[str] | None = None, max_jobs: Any = 5, lease: Any = 60
) -> list[Row]:
    return api.as_service(CALL, (worker, json.dumps(items), kinds, max_jobs, lease))


def test_completes_then_claims_in_one_call(api: SqlApi) -> None:
    a = running_job(api)
    other = running_job(api, worker="w2")
    uid = api.create_user()
    queued = [api.enqueue(uid, "generate_design", {"i": i}) for i in range(2)]
    rows = ack_and_claim(
        api, [{"job_id": str(a["id"]), "result": {"n": 1}}, {"job_id": str(other["id"]), "result": {}}], max_jobs=5
    )
    acks = [r for r in rows if r["entry"] == "completed"]
    claimed = [r for r in rows if r["entry"] == "claimed"]
    assert [r["entry"] for r in rows] == ["completed", "completed", "claimed", "claimed"]  # acks first, in order
    assert [(r["job_id"], r["completed"]) for r in acks] == [(a["id"], True), (other["id"], False)]
    assert acks[1]["reason"] == 'not held by worker "w1" (status running, held by "w2")'
    assert {r["job_id"] for r in claimed} == {q["id"] for q in queued}
    for r in claimed:
        job = json.loads(r["job"])
        assert job["id"] == str(r["job_id"]) and job["status"] == "running" and job["worker_id"] == "w1"
        assert r["completed"] is None and r["reason"] is None
    state = {r["id"]: r["status"] for r in api.admin("select id, status from jobs")}
    assert state[a["id"]] == "succeeded" and state[other["id"]] == "running"
    assert all(state[q["id"]] == "running" for q in queued)


def test_the_claim_sees_the_slots_the_acks_freed(api: SqlApi) -> None:
    uid = api.create_user()
    for i in range(4):  # rename_layers: at most 3 running per user
        api.enqueue(uid, "rename_layers", {"i": i})
    held = api.claim("w1", max_jobs=10)
    assert len(held) == 3
    rows = ack_and_claim(api, [{"job_id": str(held[0]["id"]), "result": {}}], max_jobs=10)
    assert [r["entry"] for r in rows] == ["completed", "claimed"]  # the fourth fits under the cap now


def test_claims_only_the_kinds_asked_for_and_at_most_max_jobs(api: SqlApi) -> None:
    a = running_job(api)
    uid = api.create_user()
    api.enqueue(uid, "generate_design", {"i": 0})
    renames = [api.enqueue(api.create_user(), "rename_layers", {"i": i}) for i in range(3)]
    rows = ack_and_claim(api, [{"job_id": str(a["id"]), "result": {}}], kinds=["rename_layers"], max_jobs=2)
    claimed = [r["job_id"] for r in rows if r["entry"] == "claimed"]
    assert len(claimed) == 2 and set(claimed) <= {r["id"] for r in renames}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"max_jobs": 0}, "max_jobs: must be between 1 and 1000, got 0"),
        ({"max_jobs": None}, "max_jobs: must be between 1 and 1000, got null"),
        ({"lease": 1}, "lease_seconds: must be between 5 and 3600, got 1"),
        ({"worker": ""}, "worker_id: must be a non-empty string"),
        ({"kinds": ["no_such_kind"]}, 'kinds: unknown job kind(s): "no_such_kind"'),
        ({"items": []}, "completions: must hold 1 to 1000 items, got 0"),
        ({"items": [{"job_id": "nope", "result": {}}]}, "completions[0].job_id: must be a UUID string"),
    ],
)
def test_a_bad_argument_names_its_field_and_changes_nothing(api: SqlApi, args: dict[str, Any], message: str) -> None:
    held = running_job(api)
    queued = api.enqueue(api.create_user(), "generate_design", {"i": 0})
    items = args.pop("items", [{"job_id": str(held["id"]), "result": {}}])
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        ack_and_claim(api, items, **args)
    assert str(err.value).splitlines()[0] == message
    state = {r["id"]: r["status"] for r in api.admin("select id, status from jobs")}
    assert state[held["id"]] == "running" and state[queued["id"]] == "queued"


def test_is_for_the_service_role_only(api: SqlApi) -> None:
    uid = api.create_user()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(uid, CALL, ("w1", json.dumps([{"job_id": str(uuid.uuid4()), "result": {}}]), None, 1, 60))
