"""Hand-offs (claim_jobs_or_park with handoffs => true): a new due job is claimed for a parked
worker by the statement that queued it, and its wake-up message carries the claimed rows."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack import paths
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def park(api: SqlApi, worker: str, max_jobs: int = 1, seen: list[Any] | None = None, **args: Any) -> list[Any]:
    call = {"worker_id": worker, "max_jobs": max_jobs, "lease_seconds": 60, "park_seconds": 60, "handoffs": True}
    call |= args | {"handed_seen": seen}
    casts = {"handed_seen": "::uuid[]", "kinds": "::text[]"}
    named = ", ".join(f"{k} => %({k})s{casts.get(k, '')}" for k in call)
    return api.as_service(f"select * from claim_jobs_or_park({named})", call)


def decoded(message: dict[str, Any]) -> dict[str, Any]:
    """A wake-up with its rows decoded: they travel as one JSON text of an array (a string is one
    node for the Realtime client's validation, nested rows are thousands)."""
    if "jobs" not in message:
        return message
    assert isinstance(message["jobs"], str)
    return {**message, "jobs": json.loads(message["jobs"])}


def messages(api: SqlApi, worker: str) -> list[dict[str, Any]]:
    rows = api.admin(
        "select payload from realtime.messages where topic = %s and event = 'wake' order by inserted_at",
        (f"worker:{worker}",),
    )
    # realtime.send adds the message's id to its payload; the database sent the rest.
    return [decoded({k: v for k, v in r["payload"].items() if k != "id"}) for r in rows]


def entry(api: SqlApi, worker: str) -> dict[str, Any]:
    rows = api.admin("select free_slots, handed, woken_at from public.worker_wakeups where worker_id = %s", (worker,))
    return rows[0]


def insert_jobs(api: SqlApi, uid: uuid.UUID, count: int) -> None:
    api.admin(
        "insert into public.jobs (user_id, kind, max_attempts)"
        " select %s, 'rename_layers', 3 from generate_series(1, %s)",
        (uid, count),
    )


def user_statuses(api: SqlApi, uid: uuid.UUID) -> list[tuple[str, str]]:
    """(job id, status) of each message on the user's topic, oldest first."""
    rows = api.admin(
        "select payload from realtime.messages where topic = %s and event = 'job' order by inserted_at, id",
        (f"jobs:{uid}",),
    )
    return [(r["payload"]["id"], r["payload"]["status"]) for r in rows]


def status(api: SqlApi, job_id: uuid.UUID) -> tuple[str, str | None, int]:
    row = api.admin("select status, worker_id, attempts from public.jobs where id = %s", (job_id,))[0]
    return row["status"], row["worker_id"], row["attempts"]


def test_a_new_job_is_claimed_for_the_parked_worker_and_sent_in_its_wake_up(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    assert park(api, "w1", max_jobs=2) == []
    channel = api.admin("select private.wake_channel('w1') as c")[0]["c"]
    with psycopg.connect(paths.database_url(dbname), autocommit=True) as listener:
        listener.execute(f'listen "{channel}"')
        job = api.enqueue(uid)
        [note] = listener.notifies(timeout=5, stop_after=1)
    assert status(api, job["id"]) == ("running", "w1", 1)
    [message] = messages(api, "w1")
    assert decoded(json.loads(note.payload)) == message  # the same message on both paths
    assert [row["id"] for row in message["jobs"]] == [str(job["id"])]
    assert message["jobs"][0]["status"] == "running" and message["jobs"][0]["lease_expires_at"] is not None
    # It parked just now and keeps a free slot: it stays parked and owes no claim.
    assert set(message) == {"kind", "status", "run_at", "jobs", "parked"} and message["parked"] is True
    assert entry(api, "w1") == {"free_slots": 1, "handed": [job["id"]], "woken_at": None}
    # The claim is quiet and the job never was queued outside this transaction: the user's topic
    # has nothing yet (the worker's first report announces it running).
    assert user_statuses(api, uid) == []
    # The next job is handed too; it takes the last free slot, so now the worker's claim is
    # awaited, as after a plain wake-up (it parks again, and shows it is alive).
    second = api.enqueue(uid)
    assert status(api, second["id"]) == ("running", "w1", 1)
    assert set(messages(api, "w1")[1]) == {"kind", "status", "run_at", "jobs"}
    assert entry(api, "w1")["handed"] == [job["id"], second["id"]] and entry(api, "w1")["woken_at"] is not None


def test_a_worker_parked_without_handoffs_is_only_woken(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", handoffs=False)
    job = api.enqueue(uid)
    assert status(api, job["id"]) == ("queued", None, 0)
    [message] = messages(api, "w1")
    assert set(message) == {"kind", "status", "run_at"}  # the message an older worker reads


def test_the_next_claim_returns_handed_jobs_the_worker_has_not_seen(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=3)
    insert_jobs(api, uid, 2)  # one statement: both handed in one message, one slot left
    first, second = entry(api, "w1")["handed"]
    third = api.enqueue(uid, "generate_design")  # handed too, into the last slot: its claim is awaited
    # Jobs queued before that claim are left to it, not handed.
    fourth = api.enqueue(uid, "generate_design")
    assert len(messages(api, "w1")) == 2 and status(api, fourth["id"]) == ("queued", None, 0)
    # Its messages said "first" only (say the rest were lost): the claim answers with the
    # others first and counts them against max_jobs (no job is claimed).
    claimed = park(api, "w1", max_jobs=2, seen=[first])
    assert {row["id"] for row in claimed} == {second, third["id"]}  # in claim order
    assert status(api, fourth["id"]) == ("queued", None, 0)
    claimed = park(api, "w1", max_jobs=2, seen=[])
    assert [row["id"] for row in claimed] == [fourth["id"]]  # the others are not answered twice
    assert entry(api, "w1")["handed"] == [] and entry(api, "w1")["woken_at"] is None


def test_a_worker_that_does_not_claim_after_a_hand_off_gets_nothing_more(api: SqlApi) -> None:
    # The bound on a worker that died while parked: what it was handed while its last claim was
    # less than two seconds old (its free slots at most), then one hand-off that awaits its
    # claim, and for two seconds the slots promised to that claim; then jobs go to the others.
    uid = api.create_user()
    park(api, "alive", max_jobs=4)
    park(api, "dead", max_jobs=4)
    fresh = api.enqueue(uid)
    assert status(api, fresh["id"]) == ("running", "dead", 1) and entry(api, "dead")["woken_at"] is None
    # Both parked a while ago, "dead" last (latest parked first, as before).
    api.admin("update public.worker_wakeups set parked_at = now() - interval '4 seconds' where worker_id = 'alive'")
    api.admin("update public.worker_wakeups set parked_at = now() - interval '3 seconds' where worker_id = 'dead'")
    stale = api.enqueue(uid)
    assert status(api, stale["id"]) == ("running", "dead", 1)
    assert "parked" not in messages(api, "dead")[1] and entry(api, "dead")["woken_at"] is not None
    api.admin("update public.worker_wakeups set woken_at = now() - interval '3 seconds' where worker_id = 'dead'")
    later = api.enqueue(uid)
    assert status(api, later["id"]) == ("running", "alive", 1)


def test_a_due_job_left_queued_means_the_worker_claims_after_the_hand_off(api: SqlApi) -> None:
    # A job its user's cap holds back stays queued: the hand-off of another user's job cannot
    # tell whether it became claimable, so the worker's claim looks.
    capped, other = api.create_user(), api.create_user()
    for i in range(4):  # rename_layers: max 3 running per user
        api.enqueue(capped, "rename_layers", {"i": i})
    assert len(park(api, "w0", max_jobs=4, handoffs=False)) == 3
    park(api, "w1", max_jobs=4)
    job = api.enqueue(other, "rename_layers")
    assert status(api, job["id"]) == ("running", "w1", 1)
    [message] = messages(api, "w1")
    assert "parked" not in message and len(message["jobs"]) == 1
    assert entry(api, "w1")["woken_at"] is not None


def test_a_handed_job_that_left_the_worker_is_not_returned(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=2)
    job = api.enqueue(uid)
    api.as_service("select complete_job(%s, 'w1', '{}'::jsonb)", (job["id"],))
    assert park(api, "w1", max_jobs=2, seen=[]) == []


def test_handed_jobs_fill_the_claim_and_the_arguments_are_still_checked(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=1)
    job = api.enqueue(uid)
    api.enqueue(uid)  # w1's slot is taken: stays queued
    # The handed job fills the claim (claim_jobs is not called): its arguments are checked anyway.
    for bad, field in (({"kinds": ["no_such_kind"]}, "kinds"), ({"lease_seconds": 0}, "lease_seconds")):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match=rf"^{field}:"):
            park(api, "w1", max_jobs=1, seen=[], **bad)
    assert entry(api, "w1")["handed"] == [job["id"]]  # nothing changed
    assert [row["id"] for row in park(api, "w1", max_jobs=1, seen=[])] == [job["id"]]


def test_a_message_too_long_for_notify_goes_without_rows_and_the_claim_returns_them(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=2)
    job = api.enqueue(uid, payload={"text": "x" * 9000})
    [message] = messages(api, "w1")
    assert set(message) == {"kind", "status", "run_at"}  # a plain wake-up
    assert status(api, job["id"]) == ("running", "w1", 1)
    assert [row["id"] for row in park(api, "w1", max_jobs=2, seen=[])] == [job["id"]]


def test_a_job_held_back_by_its_users_cap_is_not_handed_only_woken_for(api: SqlApi) -> None:
    uid = api.create_user()
    for i in range(3):  # rename_layers: max 3 running per user
        api.enqueue(uid, "rename_layers", {"i": i})
    assert len(park(api, "w0", max_jobs=3, handoffs=False)) == 3
    park(api, "w1", max_jobs=2)
    job = api.enqueue(uid)
    assert status(api, job["id"]) == ("queued", None, 0)
    [message] = messages(api, "w1")
    assert set(message) == {"kind", "status", "run_at"}
    assert entry(api, "w1")["woken_at"] is not None  # its claim is awaited
    # Not handed, so announced queued (the three before it were, too: nobody was parked then).
    sent = user_statuses(api, uid)
    assert sent[-1] == (str(job["id"]), "queued")
    assert len(sent) == 4


def test_a_batch_is_handed_over_several_workers_latest_parked_first(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w2", max_jobs=2)
    park(api, "w1", max_jobs=2)
    insert_jobs(api, uid, 3)
    # w1's two slots are filled (its claim is awaited); w2, handed the last job, stays parked.
    assert [(len(m["jobs"]), "parked" in m) for m in messages(api, "w1")] == [(2, False)]
    assert [(len(m["jobs"]), "parked" in m) for m in messages(api, "w2")] == [(1, True)]
    assert (entry(api, "w1")["free_slots"], entry(api, "w2")["free_slots"]) == (0, 1)
    assert api.admin("select count(*) as n from public.jobs where status = 'running'")[0]["n"] == 3
    assert user_statuses(api, uid) == []  # every job was handed: none was announced queued


def test_the_jobs_of_a_batch_no_hand_off_took_are_announced_queued(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=1)
    insert_jobs(api, uid, 3)
    rows = api.admin("select id::text, status from public.jobs order by status, id")
    [handed] = [r["id"] for r in rows if r["status"] == "running"]
    queued = sorted(r["id"] for r in rows if r["status"] == "queued")
    assert len(queued) == 2
    sent = user_statuses(api, uid)
    assert sorted(sent) == [(job_id, "queued") for job_id in queued]
    assert handed not in {job_id for job_id, _ in sent}
    # Once running, each change is the row trigger's again: the handed job's release is announced.
    api.as_service("select unpark_worker(worker_id => 'w1', handed_seen => '{}'::uuid[])")
    assert user_statuses(api, uid)[-1] == (handed, "queued")


def test_a_future_job_is_not_handed_only_hinted(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1")
    api.admin(
        "insert into public.jobs (user_id, kind, max_attempts, run_at)"
        " values (%s, 'rename_layers', 3, now() + interval '1 hour')",
        (uid,),
    )
    [message] = messages(api, "w1")
    assert set(message) == {"kind", "status", "run_at"} and message["run_at"] is not None
    assert api.admin("select status from public.jobs")[0]["status"] == "queued"


def test_a_stopping_worker_gives_back_the_handed_jobs_it_did_not_take(api: SqlApi) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=3)
    insert_jobs(api, uid, 2)
    taken, missed = entry(api, "w1")["handed"]
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=r"^handed_seen:"):
        api.as_service("select unpark_worker(worker_id => 'w1', handed_seen => array[null]::uuid[])")
    api.as_service("select unpark_worker(worker_id => 'w1', handed_seen => %s::uuid[])", ([taken],))
    assert status(api, taken) == ("running", "w1", 1)  # it runs that one to the end
    assert status(api, missed) == ("queued", None, 0)  # the attempt given back
    assert api.admin("select count(*) as n from public.worker_wakeups")[0]["n"] == 0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"handoffs": None}, "handoffs"),
        ({"seen": [None]}, "handed_seen"),
        ({"seen": [str(uuid.uuid4()) for _ in range(1001)]}, "handed_seen"),
        ({"wake_via": "email"}, "wake_via"),
        ({"wake_via": ""}, "wake_via"),
    ],
)
def test_bad_handoff_arguments_name_the_field_and_park_nobody(api: SqlApi, args: dict[str, Any], field: str) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match=f"^{field}:"):
        park(api, "w1", **args)
    assert api.admin("select count(*) as n from public.worker_wakeups")[0]["n"] == 0


def test_a_job_queued_while_another_statement_wakes_the_worker_wakes_it_to_claim(api: SqlApi, dbname: str) -> None:
    # Two enqueues at once: the first hands its job to w1 and, not seeing the second job (not
    # committed), keeps w1 parked; the second cannot lock w1's entry (skip locked). It must still
    # tell w1, or its job waits for the next event: a plain wake-up, so w1 claims.
    uid = api.create_user()
    park(api, "w1", max_jobs=4)
    insert = "insert into public.jobs (user_id, kind, max_attempts) values (%s, 'rename_layers', 3) returning id"
    with psycopg.connect(paths.database_url(dbname)) as first, psycopg.connect(paths.database_url(dbname)) as second:
        row = first.execute(insert, (uid,)).fetchone()
        other = second.execute(insert, (uid,)).fetchone()
        assert row is not None and other is not None
        second.commit()
        first.commit()
    assert status(api, row[0]) == ("running", "w1", 1)
    assert status(api, other[0]) == ("queued", None, 0)
    handed, plain = sorted(messages(api, "w1"), key=lambda m: "jobs" not in m)
    assert handed["parked"] is True and [j["id"] for j in handed["jobs"]] == [str(row[0])]
    assert set(plain) == {"kind", "status", "run_at"}
    # Its claim (after both commits) takes the job.
    assert [r["id"] for r in park(api, "w1", max_jobs=3, seen=[row[0]])] == [other[0]]
