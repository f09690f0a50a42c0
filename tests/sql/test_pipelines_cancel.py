"""Pipelines (depends_on) and cancellation of queued, waiting and running jobs."""

from __future__ import annotations

import json

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def test_dependent_waits_then_runs_after_success(api: SqlApi) -> None:
    uid = api.create_user()
    design = api.enqueue(uid, "generate_design", {"prompt": "pricing page"})
    rename = api.enqueue(uid, "rename_layers", {"from": "design"}, depends_on=design["id"])
    assert rename["status"] == "waiting"
    claimed = api.claim("w1", max_jobs=10)
    assert [j["id"] for j in claimed] == [design["id"]]  # the waiting job is not claimable
    api.as_service("select * from complete_job(%s, 'w1', '{}')", (design["id"],))
    assert api.job(rename["id"])["status"] == "queued"
    assert [j["id"] for j in api.claim("w1")] == [rename["id"]]


def test_dependent_of_succeeded_job_is_queued_at_once(api: SqlApi) -> None:
    uid = api.create_user()
    design = api.enqueue(uid, "generate_design", {"prompt": "x"})
    api.claim("w1")
    api.as_service("select * from complete_job(%s, 'w1', '{}')", (design["id"],))
    assert api.enqueue(uid, "rename_layers", {"n": 1}, depends_on=design["id"])["status"] == "queued"


def test_failure_cancels_the_rest_of_the_pipeline(api: SqlApi) -> None:
    uid = api.create_user()
    a = api.enqueue(uid, "generate_design", {"step": "a"})
    b = api.enqueue(uid, "rename_layers", {"step": "b"}, depends_on=a["id"])
    c = api.enqueue(uid, "generate_edits", {"step": "c"}, depends_on=b["id"])
    api.claim("w1")
    api.as_service("select * from fail_job(%s, 'w1', %s, false)", (a["id"], json.dumps({"message": "bad request"})))
    for dep, parent in ((b, a), (c, b)):
        row = api.job(dep["id"])
        assert row["status"] == "cancelled"
        assert row["error"]["type"] == "dependency_failed"
        assert row["error"]["message"] == f"dependency {parent['id']} " + ("failed" if parent is a else "cancelled")


def test_one_batch_of_outcomes_moves_every_parents_dependents(api: SqlApi) -> None:
    # A batch acknowledging several parents, one of them with two dependents, queues all of
    # them; a failed parent cancels its chain.
    uids = [api.create_user() for _ in range(3)]  # one parent each: no running cap in the way
    parents = [api.enqueue(uid, "generate_design", {"p": n}) for n, uid in enumerate(uids)]
    owner = [0, 1, 1]  # parent 1 has two dependents
    deps = [api.enqueue(uids[p], "rename_layers", {"d": n}, depends_on=parents[p]["id"]) for n, p in enumerate(owner)]
    doomed = api.enqueue(uids[2], "generate_edits", {"d": "x"}, depends_on=parents[2]["id"])
    later = api.enqueue(uids[2], "generate_edits", {"d": "y"}, depends_on=doomed["id"])
    assert {j["id"] for j in api.claim("w1", max_jobs=10)} == {p["id"] for p in parents}
    done = json.dumps([{"job_id": str(p["id"]), "result": {}} for p in parents[:2]])
    assert [a["completed"] for a in api.as_service("select * from complete_jobs('w1', %s::jsonb)", (done,))] == [
        True,
        True,
    ]
    assert [api.job(d["id"])["status"] for d in deps] == ["queued"] * 3
    api.as_service("select * from fail_job(%s, 'w1', %s, false)", (parents[2]["id"], json.dumps({"message": "no"})))
    assert [api.job(j["id"])["status"] for j in (doomed, later)] == ["cancelled", "cancelled"]
    assert api.job(later["id"])["error"]["message"] == f"dependency {doomed['id']} cancelled"


def test_dependency_on_a_failed_job_is_born_cancelled(api: SqlApi) -> None:
    uid = api.create_user()
    a = api.enqueue(uid, "generate_design", {"step": "a"})
    api.as_user(uid, "select * from cancel_job(%s)", (a["id"],))
    b = api.enqueue(uid, "rename_layers", {"step": "b"}, depends_on=a["id"])
    assert b["status"] == "cancelled" and b["error"]["type"] == "dependency_failed"


def test_depends_on_must_be_the_callers_job(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    theirs = api.enqueue(bob, "generate_design", {"x": 1})
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(alice, "rename_layers", {"n": 1}, depends_on=theirs["id"])
    assert err.value.sqlstate == "22023"
    assert err.value.diag.message_primary == f"depends_on: job {theirs['id']} not found among your jobs"
    assert api.count("select count(*) from public.jobs where user_id = %s", (alice,)) == 0


def test_cancel_queued_job(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    row = api.as_user(uid, "select * from cancel_job(%s)", (job["id"],))[0]
    assert row["status"] == "cancelled" and row["finished_at"] is not None and row["cancel_requested"] is True
    assert row["error"]["type"] == "cancelled"
    assert api.claim("w1") == []
    # Cancelling again is a no-op.
    assert api.as_user(uid, "select * from cancel_job(%s)", (job["id"],))[0]["status"] == "cancelled"


def test_cancel_running_job_is_cooperative(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    api.claim("w1")
    row = api.as_user(uid, "select * from cancel_job(%s)", (job["id"],))[0]
    assert (row["status"], row["cancel_requested"]) == ("running", True)
    # The worker sees it on its heartbeat and records the cancellation via fail_job.
    rows = api.as_service("select * from renew_leases('w1', %s::uuid[])", ([job["id"]],))
    assert rows[0]["cancel_requested"] is True
    done = api.as_service(
        "select * from fail_job(%s, 'w1', %s, true)",
        (job["id"], json.dumps({"type": "cancelled", "message": "cancelled by the user"})),
    )[0]
    assert done["status"] == "cancelled"  # a requested cancel is never retried


def test_cancel_running_job_then_release_cancels(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    api.claim("w1")
    api.as_user(uid, "select * from cancel_job(%s)", (job["id"],))
    assert api.as_service("select * from release_jobs('w1', null)")[0]["status"] == "cancelled"


def test_cannot_cancel_someone_elses_or_finished_job(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    job = api.enqueue(alice)
    with pytest.raises(psycopg.Error) as err:
        api.as_user(bob, "select * from cancel_job(%s)", (job["id"],))
    assert err.value.sqlstate == "PT404"  # existence is not leaked
    assert api.job(job["id"])["status"] == "queued"
    api.claim("w1")
    api.as_service("select * from complete_job(%s, 'w1', '{}')", (job["id"],))
    with pytest.raises(psycopg.Error) as err:
        api.as_user(alice, "select * from cancel_job(%s)", (job["id"],))
    assert err.value.sqlstate == "PT409"
    assert err.value.diag.message_primary == f"job_id: job {job['id']} already succeeded; nothing to cancel"
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_anon("select * from cancel_job(%s)", (job["id"],))


def test_cancelling_a_waiting_parent_cascades(api: SqlApi) -> None:
    uid = api.create_user()
    a = api.enqueue(uid, "generate_design", {"step": "a"})
    b = api.enqueue(uid, "rename_layers", {"step": "b"}, depends_on=a["id"])
    api.as_user(uid, "select * from cancel_job(%s)", (a["id"],))
    assert api.job(b["id"])["status"] == "cancelled"
