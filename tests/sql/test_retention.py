"""Retention end to end, the SQL side: deleting jobs records their Storage objects in the outbox
(same transaction), the worker leases batches, acknowledges what is gone, and orphans are found."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from devstack import paths
from devstack.sqlapi import Row, SqlApi

pytestmark = pytest.mark.sql

BUCKET = "job-artifacts"
FUNCTIONS = [
    "select * from claim_artifact_deletions()",
    "select * from ack_artifact_deletions(array[1]::bigint[])",
    "select enqueue_orphaned_artifacts()",
]


def put_object(api: SqlApi, name: str, age: str = "0 seconds") -> None:
    api.admin(
        "insert into storage.objects (bucket_id, name, created_at) values (%s, %s, now() - %s::interval)",
        (BUCKET, name, age),
    )


def finished_image_job(api: SqlApi, uid: uuid.UUID | None = None, days_ago: int = 8) -> Row:
    """A generate_image job finished days_ago, its image in Storage and named in its result."""
    uid = uid or api.create_user()
    job = api.enqueue(uid, "generate_image", {"prompt": "a cat"})
    path = f"{uid}/{job['id']}/image.png"
    put_object(api, path)
    api.admin(
        "update public.jobs set status = 'succeeded', result = jsonb_build_object('path', %s::text),"
        " finished_at = now() - make_interval(days => %s) where id = %s",
        (path, days_ago, job["id"]),
    )
    return {**job, "path": path}


def store_delete(api: SqlApi, name: str) -> None:
    """What the Storage API does for a removal: the row goes, with its own transaction setting."""
    with api.conn.transaction():
        api.conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
        api.conn.execute("delete from storage.objects where bucket_id = %s and name = %s", (BUCKET, name))


def outbox(api: SqlApi) -> list[Row]:
    return api.admin("select * from public.artifact_deletions order by id")


def test_purge_records_the_jobs_objects_in_the_outbox_in_the_same_transaction(api: SqlApi) -> None:
    old = finished_image_job(api)
    extra = f"{old['user_id']}/{old['id']}/thumb.webp"  # in the job's folder, not named in its result
    put_object(api, extra)
    recent = finished_image_job(api, days_ago=1)
    assert api.as_service("select purge_finished_jobs() as n")[0]["n"] == 1
    rows = outbox(api)
    assert sorted((r["name"], r["job_id"], r["reason"]) for r in rows) == sorted(
        [(old["path"], old["id"], "job_deleted"), (extra, old["id"], "job_deleted")]
    )
    assert all(r["bucket_id"] == BUCKET and r["claimed_until"] is None and r["attempts"] == 0 for r in rows)
    assert api.count("select count(*) from public.job_events where job_id = %s", (old["id"],)) == 0
    assert api.count("select count(*) from public.jobs where id = %s", (recent["id"],)) == 1


def test_a_refused_purge_records_nothing(api: SqlApi) -> None:
    finished_image_job(api)
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select purge_finished_jobs(interval '11 years')")
    assert err.value.sqlstate == "22023"
    assert outbox(api) == [] and api.count("select count(*) from public.jobs") == 1


def test_every_way_a_job_row_goes_is_recorded_and_only_paths_inside_its_folder(api: SqlApi) -> None:
    uid = api.create_user()
    job = finished_image_job(api, uid)
    # A result naming a path outside the job's folder must not make its deletion delete that object.
    other = finished_image_job(api)
    api.admin("update public.jobs set result = %s where id = %s", (f'{{"path": "{other["path"]}"}}', job["id"]))
    folderless = api.enqueue(uid, "rename_layers")  # no artifacts: nothing to record
    api.admin("delete from auth.users where id = %s", (uid,))  # the account goes: its jobs cascade
    assert [(r["name"], r["job_id"]) for r in outbox(api)] == [(job["path"], job["id"])]
    assert api.count("select count(*) from public.jobs where id = %s", (folderless["id"],)) == 0


def test_with_folder_artifacts_the_result_path_is_recorded(api: SqlApi) -> None:
    job = finished_image_job(api)
    store_delete(api, job["path"])  # WORKER_STORE=postgres: the file lives outside Storage
    api.as_service("select purge_finished_jobs()")
    assert [r["name"] for r in outbox(api)] == [job["path"]]


def test_claim_leases_a_batch_and_gives_it_again_only_after_the_lease(api: SqlApi) -> None:
    jobs = [finished_image_job(api) for _ in range(3)]
    api.as_service("select purge_finished_jobs()")
    first = api.as_service("select * from claim_artifact_deletions(max_items => 2, lease_seconds => 60)")
    assert len(first) == 2 and all(r["attempts"] == 1 and r["claimed_until"] is not None for r in first)
    second = api.as_service("select * from claim_artifact_deletions(max_items => 10)")
    assert len(second) == 1 and {r["name"] for r in first + second} == {j["path"] for j in jobs}
    assert api.as_service("select * from claim_artifact_deletions()") == []
    api.admin("update public.artifact_deletions set claimed_until = now() - interval '1 second' where id = %s",
              (first[0]["id"],))  # fmt: skip
    again = api.as_service("select * from claim_artifact_deletions()")
    assert [(r["id"], r["attempts"]) for r in again] == [(first[0]["id"], 2)]


def test_concurrent_claimers_never_share_a_row(api: SqlApi, dbname: str) -> None:
    for _ in range(4):
        finished_image_job(api)
    api.as_service("select purge_finished_jobs()")
    with psycopg.connect(paths.database_url(dbname), row_factory=dict_row) as other, other.transaction():
        other.execute("set local role service_role")
        held = other.execute("select * from public.claim_artifact_deletions(max_items => 3)").fetchall()
        # The other replica's claim is still open: this one skips its locked rows.
        mine = api.as_service("select * from claim_artifact_deletions(max_items => 10)")
    assert len(held) == 3 and len(mine) == 1
    assert {r["id"] for r in held}.isdisjoint({r["id"] for r in mine})


def test_ack_drops_only_rows_whose_object_is_gone_and_is_idempotent(api: SqlApi) -> None:
    gone, kept = finished_image_job(api), finished_image_job(api)
    api.as_service("select purge_finished_jobs()")
    ids = {r["name"]: r["id"] for r in api.as_service("select * from claim_artifact_deletions()")}
    store_delete(api, gone["path"])
    rows = api.as_service("select * from ack_artifact_deletions(%s)", ([ids[gone["path"]], ids[kept["path"]], 999999],))
    assert sorted((r["id"], r["acknowledged"], r["reason"]) for r in rows) == sorted(
        [
            (ids[gone["path"]], True, None),
            (ids[kept["path"]], False, "object still in storage"),
            (999999, False, "not in the outbox"),
        ]
    )
    assert [r["name"] for r in outbox(api)] == [kept["path"]]
    again = api.as_service("select * from ack_artifact_deletions(%s)", ([ids[gone["path"]]],))
    assert [(r["acknowledged"], r["reason"]) for r in again] == [(False, "not in the outbox")]


def test_orphans_are_queued_once_after_the_grace_period(api: SqlApi) -> None:
    live = finished_image_job(api, days_ago=0)  # its job exists: never an orphan
    uid, other_uid = api.create_user(), api.create_user()
    late = f"{uid}/{uuid.uuid4()}/image.png"  # uploaded after its job was deleted
    put_object(api, late, "2 days")
    wrong_owner = f"{other_uid}/{live['id']}/image.png"  # a live job's id under another user's folder
    put_object(api, wrong_owner, "2 days")
    stray = "not-a-job/readme.txt"
    put_object(api, stray, "2 days")
    fresh = f"{uid}/{uuid.uuid4()}/image.png"  # within the grace period
    put_object(api, fresh, "1 hour")
    assert api.as_service("select enqueue_orphaned_artifacts() as n")[0]["n"] == 3
    rows = outbox(api)
    assert sorted(r["name"] for r in rows) == sorted([late, wrong_owner, stray])
    assert all(r["reason"] == "orphaned" and r["job_id"] is None for r in rows)
    assert api.as_service("select enqueue_orphaned_artifacts() as n")[0]["n"] == 0
    assert api.as_service("select enqueue_orphaned_artifacts(interval '0', 1) as n")[0]["n"] == 1
    assert fresh in {r["name"] for r in outbox(api)}


@pytest.mark.parametrize("query", FUNCTIONS)
def test_anon_and_users_may_call_none_of_it(api: SqlApi, query: str) -> None:
    finished_image_job(api)
    api.as_service("select purge_finished_jobs()")
    before = outbox(api)
    uid = api.create_user()
    for call in (api.as_anon, lambda q: api.as_user(uid, q)):
        with pytest.raises(psycopg.Error) as err:
            call(query)
        assert err.value.sqlstate == "42501"
    assert outbox(api) == before


def test_the_outbox_is_the_service_roles_alone(api: SqlApi) -> None:
    finished_image_job(api)
    api.as_service("select purge_finished_jobs()")
    uid = api.create_user()
    for call in (api.as_anon, lambda q: api.as_user(uid, q)):
        for query in ("select * from public.artifact_deletions", "delete from public.artifact_deletions where id > 0"):
            with pytest.raises(psycopg.Error) as err:
                call(query)
            assert err.value.sqlstate == "42501"
    assert len(api.as_service("select * from public.artifact_deletions")) == 1
    with pytest.raises(psycopg.Error) as err:
        api.as_service("delete from public.artifact_deletions where id > 0")
    assert err.value.sqlstate == "42501"
    assert api.admin("select relrowsecurity from pg_class where oid = 'public.artifact_deletions'::regclass")[0][
        "relrowsecurity"
    ]


CLAIM_N = "select * from claim_artifact_deletions(max_items => %s)"
CLAIM_LEASE = "select * from claim_artifact_deletions(lease_seconds => %s)"
ACK = "select * from ack_artifact_deletions(%s::bigint[])"
GRACE = "select enqueue_orphaned_artifacts(grace => %s::interval)"
ORPHANS_N = "select enqueue_orphaned_artifacts(max_items => %s)"
BAD: list[tuple[str, Any, str]] = [
    (CLAIM_N, 0, "max_items: must be between 1 and 1000, got 0"),
    (CLAIM_N, 1001, "max_items: must be between 1 and 1000, got 1001"),
    (CLAIM_N, None, "max_items: must be between 1 and 1000, got null"),
    (CLAIM_LEASE, 4, "lease_seconds: must be between 5 and 3600, got 4"),
    (ACK, None, "ids: must be a non-empty array of outbox ids"),
    (ACK, [], "ids: must be a non-empty array of outbox ids"),
    (ACK, [1, None], "ids: must not contain null, got one at index 1 (from 0)"),
    (ACK, list(range(1001)), "ids: must hold at most 1000 items, got 1001"),
    (ACK, [[1], [2]], "ids: must be a one-dimensional array, got 2 dimensions"),
    (GRACE, "-1 second", "grace: must be a non-negative interval, got -00:00:01"),
    (GRACE, None, "grace: must be a non-negative interval, got null"),
    (GRACE, "11 years", "grace: must be at most 10 years, got 11 years"),
    (ORPHANS_N, 0, "max_items: must be between 1 and 10000, got 0"),
    (ORPHANS_N, 10001, "max_items: must be between 1 and 10000, got 10001"),
]  # fmt: skip


@pytest.mark.parametrize(("query", "value", "message"), BAD)
def test_bad_input_is_refused_precisely_and_changes_nothing(api: SqlApi, query: str, value: Any, message: str) -> None:
    finished_image_job(api)
    api.as_service("select purge_finished_jobs()")
    put_object(api, f"{uuid.uuid4()}/{uuid.uuid4()}/image.png", "2 days")  # an orphan a bad call must not queue
    before = outbox(api)
    with pytest.raises(psycopg.Error) as err:
        api.as_service(query, (value,))
    assert err.value.sqlstate == "22023"
    assert err.value.diag.message_primary == message
    assert outbox(api) == before


def test_an_infinite_grace_is_refused_on_postgresql_17(api: SqlApi) -> None:
    if int(api.admin("select current_setting('server_version_num') as v")[0]["v"]) < 170000:
        pytest.skip("infinite intervals exist from PostgreSQL 17")
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select enqueue_orphaned_artifacts(grace => 'infinity')")
    assert err.value.diag.message_primary == "grace: must be at most 10 years, got infinity"
