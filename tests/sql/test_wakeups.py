"""Routed wake-ups (claim_jobs_or_park, worker_wakeups): a queued job wakes as many parked
workers as it needs, not every worker."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack import paths
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def park(
    api: SqlApi, worker: str, max_jobs: int = 1, kinds: list[str] | None = None, park_seconds: int | None = 60
) -> list[Any]:
    return api.as_service(
        "select * from claim_jobs_or_park(worker_id => %s, kinds => %s, max_jobs => %s, lease_seconds => 60,"
        " park_seconds => %s)",
        (worker, kinds, max_jobs, park_seconds),
    )


def parked(api: SqlApi) -> set[str]:
    """Parked and not yet woken."""
    rows = api.admin("select worker_id from public.worker_wakeups where woken_at is null")
    return {r["worker_id"] for r in rows}


def woken(api: SqlApi) -> list[str]:
    """Workers sent a wake-up, one entry per message (Realtime topic worker:<id>)."""
    rows = api.admin(
        "select topic from realtime.messages where topic like 'worker:%%' and event = 'wake' order by inserted_at"
    )
    return [r["topic"].removeprefix("worker:") for r in rows]


def insert_jobs(api: SqlApi, uid: uuid.UUID, count: int, kind: str = "rename_layers", run_at: str = "now()") -> None:
    query = (
        "insert into public.jobs (user_id, kind, max_attempts, run_at) select %s, %s, 3, {} from generate_series(1, %s)"
    )
    api.admin(query.format(run_at), (uid, kind, count))


def test_a_short_claim_parks_the_worker_and_a_full_one_unparks_it(api: SqlApi) -> None:
    uid = api.create_user()
    assert park(api, "w1", max_jobs=2) == []
    row = api.admin("select free_slots, kinds, parked_until - parked_at as span from public.worker_wakeups")[0]
    assert (row["free_slots"], row["kinds"], row["span"].total_seconds()) == (2, None, 60)
    api.enqueue(uid)
    api.enqueue(uid)
    assert len(park(api, "w1", max_jobs=2)) == 2  # busy: no wake-up needed
    assert parked(api) == set()


def test_one_insert_with_several_parked_workers_wakes_exactly_one(api: SqlApi) -> None:
    uid = api.create_user()
    for w in ("w1", "w2", "w3", "w4"):
        park(api, w)
    api.enqueue(uid)
    assert woken(api) == ["w4"]  # the one parked last: the likeliest alive
    assert parked(api) == {"w1", "w2", "w3"}
    assert len(park(api, "w4")) == 1  # the woken worker claims it


@pytest.mark.parametrize(("jobs", "workers", "expected"), [(2, 4, 2), (6, 3, 3)])
def test_a_batch_of_m_jobs_wakes_min_m_k_workers(api: SqlApi, jobs: int, workers: int, expected: int) -> None:
    uid = api.create_user()
    for i in range(workers):
        park(api, f"w{i}")
    insert_jobs(api, uid, jobs)
    assert len(woken(api)) == expected
    assert len(set(woken(api))) == expected
    assert len(parked(api)) == workers - expected


def test_free_slots_count_a_worker_with_room_for_the_batch_is_enough(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "other", max_jobs=4)
    park(api, "big", max_jobs=4)
    insert_jobs(api, uid, 3)
    assert woken(api) == ["big"]


def test_expired_entries_are_skipped(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "dead")
    park(api, "alive")
    api.admin("update public.worker_wakeups set parked_until = now() - interval '1 second' where worker_id = 'dead'")
    api.enqueue(uid)
    assert woken(api) == ["alive"]


def test_only_workers_of_the_kind_are_woken(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "designs", kinds=["generate_design"])
    park(api, "renames", kinds=["rename_layers"])
    api.enqueue(uid, "rename_layers")
    assert woken(api) == ["renames"]


def test_jobs_back_to_queued_wake_and_claims_do_not(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    assert park(api, "w1", max_jobs=2) != []  # claims it, parked with one free slot
    park(api, "w2")
    assert woken(api) == []  # the claim's own update (queued -> running) wakes nobody
    api.as_service("select * from release_jobs(worker_id => 'w1', job_ids => %s)", ([job["id"]],))
    assert woken(api) == ["w2"]


def test_progress_and_lease_renewals_wake_nobody(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    assert park(api, "w1", max_jobs=2) != []
    park(api, "w2")
    reports = json.dumps([{"job_id": str(job["id"]), "percent": 50}])
    api.as_service("select * from report_progress_batch('w1', %s::jsonb)", (reports,))
    api.as_service("select * from renew_leases('w1', %s::uuid[], 60)", ([job["id"]],))
    assert woken(api) == []


def test_one_statement_that_keeps_a_job_running_and_requeues_another_still_wakes(api: SqlApi) -> None:
    # The trigger returns early only when every row a statement touched is still running.
    uid = api.create_user()
    kept, requeued = api.enqueue(uid, "rename_layers", {"i": 1}), api.enqueue(uid, "rename_layers", {"i": 2})
    assert len(park(api, "w1", max_jobs=3)) == 2
    park(api, "w2")
    api.admin(
        "update public.jobs set status = case when id = %(back)s then 'queued' else status end,"
        " lease_expires_at = case when id = %(back)s then null else lease_expires_at end,"
        " worker_id = case when id = %(back)s then null else worker_id end where id = any(%(ids)s::uuid[])",
        {"back": requeued["id"], "ids": [kept["id"], requeued["id"]]},
    )
    assert woken(api) == ["w2"]


def test_a_future_job_hints_its_run_at(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1")
    insert_jobs(api, uid, 1, run_at="now() + interval '1 hour'")
    payload = api.admin("select payload from realtime.messages where topic = 'worker:w1'")[0]["payload"]
    assert payload["kind"] == "rename_layers" and payload["status"] == "queued"
    assert payload["run_at"] is not None and "next_at" not in payload


def test_the_direct_path_gets_a_notify_on_the_workers_channel(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    park(api, "w1")
    channel = api.admin("select private.wake_channel('w1') as c")[0]["c"]
    with psycopg.connect(paths.database_url(dbname), autocommit=True) as listener:
        listener.execute(f'listen "{channel}"')
        api.enqueue(uid)
        notes = list(listener.notifies(timeout=5, stop_after=1))
    assert len(notes) == 1 and '"kind": "rename_layers"' in notes[0].payload


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"park_seconds": 0}, "park_seconds"),
        ({"park_seconds": None}, "park_seconds"),
        ({"park_seconds": 86401}, "park_seconds"),
        ({"worker": ""}, "worker_id"),
        ({"max_jobs": 0}, "max_jobs"),
    ],
)
def test_bad_input_names_the_field_and_parks_nobody(api: SqlApi, args: dict[str, Any], field: str) -> None:
    call: dict[str, Any] = {"worker": "w1", "max_jobs": 1, "park_seconds": 60} | args
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"^{field}:"):
        park(api, call["worker"], max_jobs=call["max_jobs"], park_seconds=call["park_seconds"])
    assert parked(api) == set()


def test_unpark_and_privileges(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1")
    api.as_service("select unpark_worker(worker_id => 'w1')")
    assert parked(api) == set()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(uid, "select * from claim_jobs_or_park(worker_id => 'w9')")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(uid, "select * from public.worker_wakeups")


def test_a_job_leaving_running_wakes_for_a_job_its_user_cap_held_back(api: SqlApi) -> None:
    uid = api.create_user()
    for i in range(4):  # rename_layers: max 3 running per user
        api.enqueue(uid, "rename_layers", {"i": i})
    running = park(api, "w1", max_jobs=10)
    assert len(running) == 3  # the fourth waits for the cap; w1 parked
    park(api, "w2")
    api.as_service("select complete_job(%s, 'w1', '{}'::jsonb)", (running[0]["id"],))
    assert woken(api) == ["w2"]  # the one parked last, once
    assert len(park(api, "w2", max_jobs=10)) == 1  # the fourth is claimable now


def test_a_finishing_job_without_waiting_work_wakes_nobody(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    park(api, "w1", max_jobs=2)
    park(api, "w2")
    api.as_service("select complete_job(%s, 'w1', '{}'::jsonb)", (job["id"],))
    assert woken(api) == []


def test_jobs_queued_before_a_woken_worker_claims_go_to_it_without_another_message(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w2", max_jobs=2)
    park(api, "w1", max_jobs=2)
    api.enqueue(uid)
    api.enqueue(uid)  # w1 was woken and has one more free slot: it will claim this one as well
    assert woken(api) == ["w1"]
    api.enqueue(uid)  # w1's slots are all promised: w2 is woken
    assert woken(api) == ["w1", "w2"]
    assert len(park(api, "w1", max_jobs=2)) == 2  # one claim for two jobs


def test_a_woken_worker_that_does_not_claim_soon_gets_no_more_jobs(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w2", max_jobs=4)
    park(api, "w1", max_jobs=4)
    api.enqueue(uid)
    api.admin("update public.worker_wakeups set woken_at = now() - interval '3 seconds' where worker_id = 'w1'")
    api.enqueue(uid)
    assert woken(api) == ["w1", "w2"]


def test_a_worker_parked_since_gets_the_next_job_not_one_woken_earlier(api: SqlApi) -> None:
    # The race the process tests met: a job queued while only a dead worker was parked woke it;
    # the live worker then claimed that job and parked. The next job must wake the live one, not be
    # promised to the dead one's remaining slots (it waited for the sweep).
    uid = api.create_user()
    park(api, "dead", max_jobs=4)
    api.enqueue(uid)
    assert woken(api) == ["dead"]
    assert len(park(api, "alive", max_jobs=4)) == 1  # the live worker's claim takes that job
    api.enqueue(uid)
    assert woken(api) == ["dead", "alive"]
