"""The result cache (issue 13 d5): identical requests within a kind's TTL are answered from a stored
result, as a job born succeeded and cached that no worker sees and that costs nothing."""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.bounds_support import assert_refused, enqueue_call
from tests.sql.test_retention import BUCKET, outbox, put_object, store_delete
from tests.sql.test_usage_budget import on_budget, record

pytestmark = pytest.mark.sql

KIND = "generate_design"
PROMPT = {"prompt": "a login form", "options": {"dark": True, "width": 320}}


def cache_kind(api: SqlApi, kind: str = KIND, ttl: int | None = 3600, scope: str = "user") -> None:
    api.admin(
        "update public.job_kinds set cache_ttl_seconds = %s, cache_scope = %s, rate_limit_per_minute = 1000"
        " where kind = %s",
        (ttl, scope, kind),
    )


def run(api: SqlApi, uid: uuid.UUID, payload: dict[str, Any] | None = None, kind: str = KIND, **kw: Any) -> Row:
    """Submit and run a job to success through the worker calls; its result names the job."""
    job = api.enqueue(uid, kind, payload if payload is not None else PROMPT, **kw)
    assert job["status"] == "queued" and not job["cached"]
    assert [j["id"] for j in api.claim("w1", kinds=[kind])] == [job["id"]]
    result = json.dumps({"from": str(job["id"])})
    return api.as_service("select * from complete_job(%s, 'w1', %s::jsonb)", (job["id"], result))[0]


def entries(api: SqlApi) -> list[Row]:
    return api.admin("select user_id, kind, job_id from public.job_result_cache order by created_at")


def test_an_identical_request_is_answered_from_the_cache(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    first = run(api, uid)
    assert entries(api) == [{"user_id": uid, "kind": KIND, "job_id": first["id"]}]
    before = api.count("select count(*) from realtime.messages")
    # jsonb is canonical: key order and spacing make no difference.
    same = {"options": {"width": 320, "dark": True}, "prompt": "a login form"}
    hit = api.enqueue(uid, KIND, same)
    assert hit["status"] == "succeeded" and hit["cached"] and hit["cached_from"] == first["id"]
    assert hit["id"] != first["id"] and hit["result"] == first["result"]
    assert hit["attempts"] == 0 and hit["finished_at"] is not None and hit["progress"]["percent"] == 100
    # Never reaches a worker, costs nothing, and the client is told like for any job.
    assert api.claim("w1") == []
    assert api.count("select count(*) from public.usage_ledger where job_id = %s", (hit["id"],)) == 0
    assert api.as_user(uid, "select * from job_costs where job_id = %s", (hit["id"],)) == []
    assert api.count("select count(*) from realtime.messages") == before + 1
    # The cache keeps pointing at the job that ran, not at the hit.
    assert [e["job_id"] for e in entries(api)] == [first["id"]]


def test_results_completed_in_a_batch_are_stored_too(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    job = api.enqueue(uid, KIND, PROMPT)
    api.claim("w1", kinds=[KIND])
    done = json.dumps([{"job_id": str(job["id"]), "result": {"batch": True}}])
    assert api.as_service("select * from complete_jobs('w1', %s::jsonb)", (done,))[0]["completed"]
    hit = api.enqueue(uid, KIND, PROMPT)
    assert hit["cached_from"] == job["id"] and hit["result"] == {"batch": True}


def test_two_identical_jobs_completed_in_one_batch_leave_one_entry(api: SqlApi) -> None:
    # The same (key, user) twice in one acknowledgement: neither a failed call nor two entries.
    cache_kind(api)
    uid = api.create_user()
    jobs = [api.enqueue(uid, KIND, PROMPT) for _ in range(2)]  # neither has a result yet: no hit
    assert {j["id"] for j in api.claim("w1", kinds=[KIND], max_jobs=2)} == {j["id"] for j in jobs}
    done = json.dumps([{"job_id": str(j["id"]), "result": {"n": n}} for n, j in enumerate(jobs)])
    answers = api.as_service("select * from complete_jobs('w1', %s::jsonb)", (done,))
    assert [a["completed"] for a in answers] == [True, True]
    [entry] = entries(api)
    assert entry["job_id"] in {j["id"] for j in jobs}
    hit = api.enqueue(uid, KIND, PROMPT)
    assert hit["cached_from"] == entry["job_id"]


def test_failed_or_cancelled_jobs_are_not_stored(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    job = api.enqueue(uid, KIND, PROMPT)
    api.claim("w1", kinds=[KIND])
    api.as_service('select fail_job(%s, \'w1\', \'{"type": "x", "message": "no"}\', false)', (job["id"],))
    api.as_user(uid, "select cancel_job(%s)", (api.enqueue(uid, KIND, {"other": 1})["id"],))
    assert entries(api) == []
    assert api.enqueue(uid, KIND, PROMPT)["status"] == "queued"


@pytest.mark.parametrize("ttl", [None, 0])
def test_no_ttl_means_no_cache(api: SqlApi, ttl: int | None) -> None:
    cache_kind(api, ttl=ttl)
    uid = api.create_user()
    run(api, uid)
    assert entries(api) == []
    assert api.enqueue(uid, KIND, PROMPT)["status"] == "queued"


def test_an_entry_older_than_the_ttl_misses_and_is_purged(api: SqlApi) -> None:
    cache_kind(api, ttl=60)
    uid = api.create_user()
    first = run(api, uid)
    api.admin("update public.job_result_cache set created_at = now() - interval '61 seconds'")
    assert api.enqueue(uid, KIND, PROMPT)["status"] == "queued"
    assert api.as_service("select purge_finished_jobs() as n")[0]["n"] == 0
    assert entries(api) == []
    assert api.job(first["id"])["status"] == "succeeded"  # the job itself is not due yet


def test_lowering_the_ttl_takes_effect_at_once(api: SqlApi) -> None:
    cache_kind(api, ttl=3600)
    uid = api.create_user()
    run(api, uid)
    api.admin("update public.job_result_cache set created_at = now() - interval '10 minutes'")
    cache_kind(api, ttl=300)
    assert api.enqueue(uid, KIND, PROMPT)["status"] == "queued"


def test_a_caller_can_bypass_the_cache_and_the_new_result_replaces_the_entry(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    run(api, uid)
    fresh = run(api, uid, cache=False)
    assert [e["job_id"] for e in entries(api)] == [fresh["id"]]
    assert api.enqueue(uid, KIND, PROMPT)["cached_from"] == fresh["id"]


@pytest.mark.parametrize(
    "change",
    [
        "payload",
        "update public.job_kinds set prompt_version = '2' where kind = 'generate_design'",
        "insert into public.kind_models values ('generate_design', 1, 'anthropic', 'claude-sonnet-4-5')",
    ],
)
def test_another_payload_prompt_version_or_model_chain_misses(api: SqlApi, change: str) -> None:
    cache_kind(api)
    uid = api.create_user()
    run(api, uid)
    payload = {**PROMPT, "prompt": "a signup form"} if change == "payload" else PROMPT
    if change != "payload":
        api.admin(change)
    assert api.enqueue(uid, KIND, payload)["status"] == "queued"


def test_user_scope_serves_only_the_same_user(api: SqlApi) -> None:
    cache_kind(api, scope="user")
    run(api, api.create_user())
    assert api.enqueue(api.create_user(), KIND, PROMPT)["status"] == "queued"


def test_shared_scope_serves_any_user_a_text_result(api: SqlApi) -> None:
    cache_kind(api, scope="shared")
    first = run(api, api.create_user())
    other = api.create_user()
    hit = api.enqueue(other, KIND, PROMPT)
    assert hit["cached"] and hit["user_id"] == other and hit["result"] == first["result"]
    # The other user reads their own job, never the cache nor the first user's job.
    assert [j["id"] for j in api.as_user(other, "select id from public.jobs")] == [hit["id"]]


def image_result(api: SqlApi, uid: uuid.UUID, days_ago: int = 0) -> Row:
    """A generate_image job run to success, its image in Storage under the job's folder."""
    job = api.enqueue(uid, "generate_image", {"prompt": "a cat"})
    api.claim("w1", kinds=["generate_image"])
    path = f"{uid}/{job['id']}/image.png"
    put_object(api, path)
    api.as_service("select complete_job(%s, 'w1', jsonb_build_object('path', %s::text))", (job["id"], path))
    api.admin(
        "update public.jobs set finished_at = now() - make_interval(days => %s) where id = %s", (days_ago, job["id"])
    )
    return {**api.job(job["id"]), "path": path}


def readable(api: SqlApi, uid: uuid.UUID, path: str) -> bool:
    rows = api.as_user(uid, "select 1 from storage.objects where bucket_id = %s and name = %s", (BUCKET, path))
    return bool(rows)


def test_a_cached_image_is_served_to_its_owner_only_even_in_shared_scope(api: SqlApi) -> None:
    cache_kind(api, "generate_image", scope="shared")
    owner, other = api.create_user(), api.create_user()
    first = image_result(api, owner)
    hit = api.enqueue(owner, "generate_image", {"prompt": "a cat"})
    assert hit["cached"] and hit["result"] == {"path": first["path"]}
    assert readable(api, owner, first["path"])
    # Serving it to another user would hand them a path their Storage policy does not let them read.
    assert not readable(api, other, first["path"])
    assert api.enqueue(other, "generate_image", {"prompt": "a cat"})["status"] == "queued"


def test_a_hit_is_not_refused_by_a_spent_budget(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    on_budget(api, uid, "0.01")
    job = api.enqueue(uid, KIND, PROMPT)
    api.claim("w1", kinds=[KIND])
    record(api, job, input_tokens=2000, cached_tokens=0, output_tokens=2000)  # $0.012: spent
    api.as_service("select complete_job(%s, 'w1', '{}')", (job["id"],))
    assert api.enqueue(uid, KIND, PROMPT)["cached"]
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, KIND, {"prompt": "something new"})
    assert err.value.sqlstate == "PT402"
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, KIND, PROMPT, cache=False)
    assert err.value.sqlstate == "PT402"


def test_hits_count_for_the_rate_limit(api: SqlApi) -> None:
    cache_kind(api)
    api.admin("update public.job_kinds set rate_limit_per_minute = 2 where kind = %s", (KIND,))
    uid = api.create_user()
    run(api, uid)
    assert api.enqueue(uid, KIND, PROMPT)["cached"]
    before = api.count("select count(*) from public.jobs")
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, KIND, PROMPT)
    assert err.value.sqlstate == "PT429"
    assert api.count("select count(*) from public.jobs") == before


def test_an_idempotent_retry_of_a_hit_returns_the_same_job(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    run(api, uid)
    hit = api.enqueue(uid, KIND, PROMPT, idempotency_key="k1")
    assert hit["cached"] and api.enqueue(uid, KIND, PROMPT, idempotency_key="k1") == hit


def test_a_pipeline_step_always_runs(api: SqlApi) -> None:
    cache_kind(api)
    uid = api.create_user()
    parent = run(api, uid, {"step": 1})
    run(api, uid)
    step = api.enqueue(uid, KIND, PROMPT, depends_on=parent["id"])
    assert step["status"] == "queued" and not step["cached"]


def test_cache_null_is_refused_and_changes_nothing(api: SqlApi) -> None:
    cache_kind(api, "rename_layers")
    uid = api.create_user()
    message = assert_refused(api, enqueue_call(api, uid, cache=None), "cache")
    assert message == "cache: must be true (use a stored result when there is one) or false (always run), got null"


@pytest.mark.parametrize(
    ("column", "value"),
    [("cache_ttl_seconds", -1), ("cache_ttl_seconds", 2592001), ("cache_scope", "everyone"), ("prompt_version", "")],
)
def test_kind_settings_are_checked(api: SqlApi, column: str, value: Any) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.as_service(f"update public.job_kinds set {column} = %s where kind = 'rename_layers'", (value,))  # a literal
    assert err.value.sqlstate == "23514" and column in (err.value.diag.constraint_name or "")


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_role_reads_the_cache(api: SqlApi, role: str) -> None:
    cache_kind(api, scope="shared")
    uid = api.create_user()
    run(api, uid)
    call = api.as_anon if role == "anon" else (lambda q: api.as_user(uid, q))
    with pytest.raises(psycopg.Error) as err:
        call("select * from public.job_result_cache")
    assert err.value.sqlstate == "42501"
    assert len(api.as_service("select * from public.job_result_cache")) == 1
    with pytest.raises(psycopg.Error) as err:
        api.as_service("delete from public.job_result_cache")
    assert err.value.sqlstate == "42501"


def test_purging_the_source_of_a_cached_image_leaves_nothing_behind(api: SqlApi) -> None:
    cache_kind(api, "generate_image", ttl=30 * 86400)
    uid = api.create_user()
    first = image_result(api, uid, days_ago=8)
    hit = api.enqueue(uid, "generate_image", {"prompt": "a cat"})
    assert hit["cached_from"] == first["id"]
    assert api.as_service("select purge_finished_jobs() as n")[0]["n"] == 1
    # The cached job goes with its source (it points into the source's folder); so does the entry.
    assert api.count("select count(*) from public.jobs") == 0
    assert entries(api) == []
    assert [(r["name"], r["job_id"]) for r in outbox(api)] == [(first["path"], first["id"])]
    # The worker drains the outbox through the Storage API: then nothing is left.
    claimed = api.as_service("select * from claim_artifact_deletions()")
    store_delete(api, first["path"])
    api.as_service("select * from ack_artifact_deletions(%s)", ([r["id"] for r in claimed],))
    assert outbox(api) == [] and api.count("select count(*) from storage.objects where bucket_id = %s", (BUCKET,)) == 0
    assert api.enqueue(uid, "generate_image", {"prompt": "a cat"})["status"] == "queued"


def test_a_cached_text_result_outlives_its_source_but_the_entry_does_not(api: SqlApi) -> None:
    cache_kind(api, scope="shared", ttl=30 * 86400)
    first = run(api, api.create_user())
    other = api.create_user()
    hit = api.enqueue(other, KIND, PROMPT)
    api.admin("update public.jobs set finished_at = now() - interval '8 days' where id = %s", (first["id"],))
    assert api.as_service("select purge_finished_jobs() as n")[0]["n"] == 1
    assert api.job(hit["id"])["result"] == first["result"]
    assert entries(api) == [] and outbox(api) == []
    assert api.enqueue(other, KIND, PROMPT)["status"] == "queued"
