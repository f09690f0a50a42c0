"""The worker side of a job's life: leases, progress, completion, failure, deferral, release, reaping."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi

pytestmark = pytest.mark.sql


def running_job(api: SqlApi, worker: str = "w1", kind: str = "rename_layers", **kw: Any) -> Row:
    uid = api.create_user()
    job = api.enqueue(uid, kind, {"n": 1}, **kw)
    claimed = api.claim(worker, max_jobs=1)
    assert [j["id"] for j in claimed] == [job["id"]]
    return claimed[0]


def fail(api: SqlApi, job_id: uuid.UUID, worker: str = "w1", retryable: bool = True, **error: Any) -> Row:
    err = {"type": "provider_error", "message": "upstream 503", **error}
    return api.as_service("select * from fail_job(%s, %s, %s, %s)", (job_id, worker, json.dumps(err), retryable))[0]


def seconds_after_update(row: Row, column: str) -> float:
    """How far ``column`` lies past the row's own last change (same transaction): no wall clock involved."""
    return float((row[column] - row["updated_at"]).total_seconds())


def test_renew_extends_held_leases_and_reports_every_listed_job(api: SqlApi) -> None:
    job = running_job(api)
    other = api.enqueue(api.create_user(), "generate_design", {"x": 1})
    rows = api.as_service(
        "select * from renew_leases('w1', %s::uuid[], 600)", ([job["id"], other["id"], uuid.uuid4()],)
    )
    by_id = {r["id"]: r for r in rows}
    assert set(by_id) == {job["id"], other["id"]}  # unknown ids have no row
    assert 599 <= seconds_after_update(by_id[job["id"]], "lease_expires_at") <= 600
    assert by_id[other["id"]]["status"] == "queued"  # not held: shown, untouched


def test_renew_does_not_extend_someone_elses_or_an_expired_lease(api: SqlApi) -> None:
    job = running_job(api)
    before = api.job(job["id"])["lease_expires_at"]
    rows = api.as_service("select * from renew_leases('intruder', %s::uuid[], 600)", ([job["id"]],))
    assert rows[0]["lease_expires_at"] == before and rows[0]["worker_id"] == "w1"
    api.admin("update public.jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job["id"],))
    rows = api.as_service("select * from renew_leases('w1', %s::uuid[], 600)", ([job["id"]],))
    assert rows[0]["lease_expires_at"] < rows[0]["updated_at"] + timedelta(seconds=1)  # lost: not extended


def test_renew_shows_cancel_requests(api: SqlApi) -> None:
    job = running_job(api)
    api.as_user(job["user_id"], "select * from cancel_job(%s)", (job["id"],))
    rows = api.as_service("select * from renew_leases('w1', %s::uuid[])", ([job["id"]],))
    assert rows[0]["cancel_requested"] is True and rows[0]["status"] == "running"


def test_report_progress_updates_progress_and_appends_events(api: SqlApi) -> None:
    job = running_job(api)
    api.as_service("select report_progress(%s, 'w1', percent => 40, message => 'batch 2 of 5')", (job["id"],))
    api.as_service("select report_progress(%s, 'w1', partial => 'Variant A: ')", (job["id"],))
    api.as_service("select report_progress(%s, 'w1', partial => 'Bold headline')", (job["id"],))
    api.as_service("select report_progress(%s, 'w1', percent => 60)", (job["id"],))
    assert api.job(job["id"])["progress"] == {"percent": 60, "message": "batch 2 of 5"}
    events = api.admin("select type, data, user_id from public.job_events where job_id = %s order by id", (job["id"],))
    assert [(e["type"], e["data"]) for e in events] == [
        ("progress", {"percent": 40, "message": "batch 2 of 5"}),
        ("partial", {"text": "Variant A: "}),
        ("partial", {"text": "Bold headline"}),
        ("progress", {"percent": 60, "message": "batch 2 of 5"}),
    ]
    assert {e["user_id"] for e in events} == {job["user_id"]}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("percent => 101", "percent: must be between 0 and 100, got 101"),
        ("percent => -1", "percent: must be between 0 and 100, got -1"),
        ("", "percent: nothing to report: give percent, message or partial"),
        ("message => repeat('m', 1001)", "message: must be at most 1000 characters, got 1001"),
    ],
)
def test_report_progress_validates(api: SqlApi, args: str, message: str) -> None:
    job = running_job(api)
    sep = ", " if args else ""
    with pytest.raises(psycopg.Error) as err:
        api.as_service(f"select report_progress(%s, 'w1'{sep}{args})", (job["id"],))
    assert err.value.sqlstate == "22023" and err.value.diag.message_primary == message
    assert api.count("select count(*) from public.job_events") == 0


def test_complete_records_result(api: SqlApi) -> None:
    job = running_job(api)
    done = api.as_service("select * from complete_job(%s, 'w1', %s)", (job["id"], json.dumps({"names": []})))[0]
    assert done["status"] == "succeeded"
    assert done["result"] == {"names": []}
    assert done["finished_at"] is not None and done["lease_expires_at"] is None
    assert done["progress"]["percent"] == 100


@pytest.mark.parametrize("fn", ["complete", "fail", "progress", "defer"])
def test_worker_calls_require_the_lease(api: SqlApi, fn: str) -> None:
    job = running_job(api)
    calls = {
        "complete": "select * from complete_job(%s, %s, '{}')",
        "fail": 'select * from fail_job(%s, %s, \'{"message": "x"}\')',
        "progress": "select report_progress(%s, %s, 10)",
        "defer": "select * from defer_job(%s, %s, now() + interval '1 minute', 'provider 429')",
    }
    with pytest.raises(psycopg.Error) as err:
        api.as_service(calls[fn], (job["id"], "w2"))
    assert err.value.sqlstate == "PT409"
    assert 'is not held by worker "w2"' in (err.value.diag.message_primary or "")
    assert err.value.diag.message_detail == 'status running, held by "w1"'

    with pytest.raises(psycopg.Error) as err:
        api.as_service(calls[fn], (uuid.uuid4(), "w1"))
    assert err.value.sqlstate == "PT404"

    api.admin("update public.jobs set lease_expires_at = now() - interval '5 seconds' where id = %s", (job["id"],))
    with pytest.raises(psycopg.Error) as err:
        api.as_service(calls[fn], (job["id"], "w1"))
    assert err.value.sqlstate == "PT409" and "lease of job" in (err.value.diag.message_primary or "")
    after = api.job(job["id"])
    assert (after["status"], after["attempts"], after["result"], after["error"]) == ("running", 1, None, None)


def test_completing_a_cancelled_job_is_refused(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    api.as_user(uid, "select * from cancel_job(%s)", (job["id"],))
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from complete_job(%s, 'w1', '{}')", (job["id"],))
    assert err.value.sqlstate == "PT409"
    assert err.value.diag.message_detail == "status cancelled, held by no worker"
    assert api.job(job["id"])["status"] == "cancelled"


def test_complete_validates_result(api: SqlApi) -> None:
    job = running_job(api)
    for bad, got in [("null", "null"), ('"text"', "string"), ("42", "number")]:
        with pytest.raises(psycopg.Error) as err:
            api.as_service("select * from complete_job(%s, 'w1', %s::jsonb)", (job["id"], bad))
        assert err.value.diag.message_primary == f"result: must be a JSON object or array, got {got}"
    assert api.job(job["id"])["status"] == "running"


def test_retryable_failure_requeues_with_backoff_then_fails(api: SqlApi) -> None:
    job = running_job(api)  # rename_layers: 3 attempts
    first = fail(api, job["id"])
    assert first["status"] == "queued" and first["worker_id"] is None
    assert first["error"] == {"type": "provider_error", "message": "upstream 503", "retryable": True, "attempt": 1}
    assert 2.4 <= seconds_after_update(first, "run_at") <= 5.0  # attempt 1: 5 s with equal jitter
    for attempt in (2, 3):
        api.admin("update public.jobs set run_at = now() where id = %s", (job["id"],))
        assert api.claim("w1")[0]["attempts"] == attempt
        last = fail(api, job["id"])
    assert last["status"] == "failed"
    assert last["error"]["attempt"] == 3 and last["finished_at"] is not None


def test_non_retryable_failure_fails_at_once(api: SqlApi) -> None:
    job = running_job(api)
    row = fail(api, job["id"], retryable=False, type="invalid_output", message="model JSON invalid after repair")
    assert row["status"] == "failed"
    assert row["error"] == {
        "type": "invalid_output",
        "message": "model JSON invalid after repair",
        "retryable": False,
        "attempt": 1,
    }


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("null", "error: must be a JSON object, got null"),
        ("{}", 'error: must have a non-empty "message" string'),
        ('{"message": ""}', 'error: must have a non-empty "message" string'),
        ("[1]", "error: must be a JSON object, got array"),
    ],
)
def test_fail_validates_error(api: SqlApi, error: str, message: str) -> None:
    job = running_job(api)
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from fail_job(%s, 'w1', %s::jsonb)", (job["id"], error))
    assert err.value.diag.message_primary == message
    assert api.job(job["id"])["status"] == "running"


def test_backoff_schedule() -> None:
    """private.retry_delay: 5 s doubling to a 10 min cap, jitter spreads within [d/2, d]."""
    import psycopg as pg

    from devstack import paths

    with pg.connect(paths.database_url("jobs_template")) as conn:

        def delay(attempt: int, jitter: float) -> float:
            row = conn.execute("select extract(epoch from private.retry_delay(%s, %s))", (attempt, jitter)).fetchone()
            assert row is not None
            return float(row[0])

        assert [delay(n, 1.0) for n in range(1, 10)] == [5, 10, 20, 40, 80, 160, 320, 600, 600]
        assert [delay(n, 0.0) for n in (1, 2, 3)] == [2.5, 5, 10]
        assert delay(3, 0.5) == 15
        assert delay(0, 1.0) == 5 and delay(2, 7.0) == 10  # clamped inputs


def test_deferral_keeps_the_attempt(api: SqlApi) -> None:
    job = running_job(api)
    row = api.as_service(
        "select * from defer_job(%s, 'w1', now() + interval '12 seconds', 'anthropic 429: retry-after 12')",
        (job["id"],),
    )[0]
    assert (row["status"], row["attempts"], row["worker_id"]) == ("queued", 0, None)
    assert 11.9 <= seconds_after_update(row, "run_at") <= 12
    assert row["progress"]["message"] == "waiting: anthropic 429: retry-after 12"
    log = api.admin("select type, data->>'event' as ev from public.job_events where job_id = %s", (job["id"],))
    assert log == [{"type": "log", "ev": "deferred"}]
    assert api.claim("w1") == []  # not due yet
    api.admin("update public.jobs set run_at = now() where id = %s", (job["id"],))
    assert api.claim("w1")[0]["attempts"] == 1


def test_defer_validates(api: SqlApi) -> None:
    job = running_job(api)
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from defer_job(%s, 'w1', now() + interval '2 days', 'x')", (job["id"],))
    assert err.value.diag.message_primary.startswith("run_at: must be within 1 day from now")  # type: ignore[union-attr]
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from defer_job(%s, 'w1', now(), '  ')", (job["id"],))
    assert err.value.diag.message_primary == "reason: must be a non-empty string of at most 500 characters"
    assert api.job(job["id"])["status"] == "running"


def test_release_gives_jobs_back_without_using_attempts(api: SqlApi) -> None:
    uid = api.create_user()
    jobs = [api.enqueue(uid, "rename_layers", {"i": i}) for i in range(3)]
    claimed = api.claim("w1", max_jobs=3)
    assert len(claimed) == 3
    released = api.as_service("select * from release_jobs('w1', %s::uuid[])", ([jobs[0]["id"], jobs[1]["id"]],))
    assert {r["id"] for r in released} == {jobs[0]["id"], jobs[1]["id"]}
    assert all(r["status"] == "queued" and r["attempts"] == 0 and r["worker_id"] is None for r in released)
    assert api.job(jobs[2]["id"])["status"] == "running"
    assert api.as_service("select * from release_jobs('someone-else', null)") == []
    rest = api.as_service("select * from release_jobs('w1', null)")
    assert [r["id"] for r in rest] == [jobs[2]["id"]]


def test_expired_lease_is_reaped_counted_and_reclaimable(api: SqlApi) -> None:
    job = running_job(api, worker="dead-worker")
    api.admin("update public.jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job["id"],))
    assert api.as_service("select reap_expired_leases() as n")[0]["n"] == 1
    row = api.job(job["id"])
    assert (row["status"], row["attempts"], row["worker_id"]) == ("queued", 1, None)
    assert row["error"]["type"] == "lease_expired" and row["error"]["attempt"] == 1
    assert 'worker "dead-worker" lost its lease' in row["error"]["message"]
    api.admin("update public.jobs set run_at = now() where id = %s", (job["id"],))
    again = api.claim("w2")
    assert again[0]["id"] == job["id"] and again[0]["attempts"] == 2
    # The dead worker comes back and tries to finish: refused, the new holder is untouched.
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from complete_job(%s, 'dead-worker', '{}')", (job["id"],))
    assert err.value.sqlstate == "PT409"
    assert api.as_service("select reap_expired_leases() as n")[0]["n"] == 0


def test_reaping_the_last_attempt_fails_the_job(api: SqlApi) -> None:
    job = running_job(api, kind="generate_image")  # 2 attempts
    api.admin(
        "update public.jobs set attempts = 2, lease_expires_at = now() - interval '1 second' where id = %s",
        (job["id"],),
    )
    api.as_service("select reap_expired_leases()")
    row = api.job(job["id"])
    assert row["status"] == "failed" and row["error"]["retryable"] is False and row["finished_at"] is not None


def test_purge_removes_only_old_finished_jobs(api: SqlApi) -> None:
    uid = api.create_user()
    old_done, new_done, old_queued = (api.enqueue(uid, "rename_layers", {"i": i}) for i in range(3))
    for j in (old_done, new_done):
        api.admin("update public.jobs set status = 'cancelled', finished_at = now() where id = %s", (j["id"],))
    api.admin("update public.jobs set finished_at = now() - interval '8 days' where id = %s", (old_done["id"],))
    api.admin("update public.jobs set created_at = now() - interval '9 days' where id = %s", (old_queued["id"],))
    assert api.as_service("select purge_finished_jobs() as n")[0]["n"] == 1
    left = {r["id"] for r in api.admin("select id from public.jobs")}
    assert left == {new_done["id"], old_queued["id"]}
    assert api.as_service("select purge_finished_jobs(interval '0') as n")[0]["n"] == 1
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select purge_finished_jobs(interval '-1 day')")
    assert err.value.diag.message_primary == "older_than: must be a non-negative interval, got -1 days"


def complete_many(api: SqlApi, items: Any, worker: str = "w1") -> list[Row]:
    return api.as_service("select * from complete_jobs(%s, %s::jsonb)", (worker, json.dumps(items)))


def test_complete_jobs_completes_held_jobs_in_one_call_and_reports_the_others(api: SqlApi) -> None:
    a, b = running_job(api), running_job(api)
    other = running_job(api, worker="w2")
    gone = uuid.uuid4()
    rows = complete_many(
        api,
        [
            {"job_id": str(a["id"]), "result": {"n": 1}},
            {"job_id": str(other["id"]), "result": {"n": 2}},
            {"job_id": str(gone), "result": {}},
            {"job_id": str(b["id"]), "result": [1, 2]},
        ],
    )
    assert [(r["job_id"], r["completed"]) for r in rows] == [
        (a["id"], True), (other["id"], False), (gone, False), (b["id"], True),
    ]  # fmt: skip
    assert rows[1]["reason"] == 'not held by worker "w1" (status running, held by "w2")'
    assert rows[2]["reason"] == "not found"
    state = {r["id"]: r for r in api.admin("select id, status, result, progress, lease_expires_at from jobs")}
    assert state[a["id"]]["status"] == state[b["id"]]["status"] == "succeeded"
    assert state[a["id"]]["result"] == {"n": 1} and state[a["id"]]["lease_expires_at"] is None
    assert state[a["id"]]["progress"]["percent"] == 100
    assert state[other["id"]]["status"] == "running"  # w2 still holds it


def test_complete_jobs_reports_an_expired_lease(api: SqlApi) -> None:
    job = running_job(api)
    api.admin("update jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job["id"],))
    [row] = complete_many(api, [{"job_id": str(job["id"]), "result": {}}])
    assert row["completed"] is False and row["reason"].startswith("the lease expired at")


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"job_id": "x"}, 'completions: must be a JSON array of {"job_id", "result"} objects, got object'),
        ([], "completions: must hold 1 to 1000 items, got 0"),
        (["x"], "completions[0]: must be an object, got string"),
        ([{"job_id": "nope", "result": {}}], "completions[0].job_id: must be a UUID string"),
        ([{"job_id": "JOB", "result": 3}], "completions[0].result: must be a JSON object or array, got number"),
        (
            [{"job_id": "JOB", "result": {}, "extra": 1}],
            'completions[0]: unknown key "extra"; allowed: job_id, result, progress, usage',
        ),
        ([{"job_id": "JOB", "result": {}}] * 2, "completions: lists a job_id more than once"),
        # What the one-statement check of plain items lets through must be what the walk accepts.
        ([{"job_id": "JOB"}], "completions[0].result: must be a JSON object or array, got nothing"),
        ([{"job_id": 5, "result": {}}], "completions[0].job_id: must be a UUID string"),
        ([{"job_id": "JOB", "result": None}], "completions[0].result: must be a JSON object or array, got null"),
        (
            [{"job_id": "JOB", "result": {}}, {"job_id": "00000000-0000-0000-0000-000000000001", "result": "x"}],
            "completions[1].result: must be a JSON object or array, got string",
        ),
        (
            [{"job_id": "JOB", "result": {"x": "a" * 1048576}}],
            "completions[0].result: 1048585 bytes exceeds 1 MiB; store large outputs in Storage",
        ),
    ],
)
def test_complete_jobs_validates_the_whole_batch_before_changing_anything(
    api: SqlApi, items: Any, message: str
) -> None:
    held = running_job(api)
    job = running_job(api)
    text = json.dumps(items).replace("JOB", str(job["id"]))
    batch = (
        [{"job_id": str(held["id"]), "result": {}}, *json.loads(text)] if isinstance(items, list) and items else None
    )
    with pytest.raises(psycopg.errors.InvalidParameterValue) as err:
        complete_many(api, json.loads(text))
    assert str(err.value).splitlines()[0] == message
    if batch:  # a valid item before the bad one is not completed either
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            complete_many(api, batch)
        assert api.admin("select status from jobs where id = %s", (held["id"],))[0]["status"] == "running"


def test_complete_jobs_is_for_the_service_role_only(api: SqlApi) -> None:
    job = running_job(api)
    uid = api.create_user()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(
            uid,
            "select * from complete_jobs('w1', %s::jsonb)",
            (json.dumps([{"job_id": str(job["id"]), "result": {}}]),),
        )
