"""enqueue_job: success paths, validation, idempotency and the per-user rate limit."""

from __future__ import annotations

import json
import re
import threading
import uuid

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def test_enqueue_defaults_from_kind(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid, "rename_layers", {"layers": [{"id": "1:2", "name": "Rectangle 1"}]})
    assert job["user_id"] == uid
    assert job["status"] == "queued"
    assert job["priority"] == 10  # rename_layers' default_priority
    assert job["max_attempts"] == 3
    assert job["attempts"] == 0
    assert job["payload"] == {"layers": [{"id": "1:2", "name": "Rectangle 1"}]}
    assert job["progress"] == {"percent": 0, "message": None}
    assert job["run_at"] is not None and job["lease_expires_at"] is None


def test_enqueue_explicit_priority_and_run_at(api: SqlApi) -> None:
    uid = api.create_user()
    later = api.admin("select now() + interval '10 minutes' as t")[0]["t"]
    job = api.enqueue(uid, "generate_design", {"prompt": "x"}, priority=-5, run_at=later)
    assert job["priority"] == -5
    assert job["run_at"] == later


@pytest.mark.parametrize(
    ("kw", "sqlstate", "message"),
    [
        ({"kind": "nope"}, "22023", r'^kind: unknown job kind "nope"'),
        ({"kind": None}, "22023", r"^kind: must not be null"),
        ({"payload": "[1, 2]"}, "22023", r"^payload: must be a JSON object, got array"),
        ({"payload": '"text"'}, "22023", r"^payload: must be a JSON object, got string"),
        ({"payload": None}, "22023", r"^payload: must be a JSON object, got null"),
        ({"priority": 101}, "22023", r"^priority: must be between -100 and 100, got 101"),
        ({"priority": -500}, "22023", r"^priority: must be between -100 and 100, got -500"),
        ({"idempotency_key": ""}, "22023", r"^idempotency_key: must be 1 to 200 characters, got 0"),
        ({"idempotency_key": "k" * 201}, "22023", r"^idempotency_key: must be 1 to 200 characters, got 201"),
        ({"run_at": "2999-01-01T00:00:00Z"}, "22023", r"^run_at: must be within 30 days"),
        ({"depends_on": str(uuid.uuid4())}, "22023", r"^depends_on: job .* not found among your jobs"),
    ],
)
def test_enqueue_rejects_bad_input_and_writes_nothing(
    api: SqlApi, kw: dict[str, object], sqlstate: str, message: str
) -> None:
    uid = api.create_user()
    args: dict[str, object] = {"kind": "rename_layers", "payload": json.dumps({"n": 1}), **kw}
    named = ", ".join(f"{k} => %({k})s" for k in args)
    with pytest.raises(psycopg.Error) as err:
        api.as_user(uid, f"select * from enqueue_job({named})", args)
    assert err.value.sqlstate == sqlstate
    assert re.search(message, err.value.diag.message_primary or ""), err.value.diag.message_primary
    assert api.count("select count(*) from public.jobs") == 0
    assert api.count("select count(*) from realtime.messages") == 0


def test_unknown_kind_hint_lists_known_kinds(api: SqlApi) -> None:
    uid = api.create_user()
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, "render_video")
    assert err.value.diag.message_hint == "known kinds: generate_design, generate_edits, generate_image, rename_layers"


def test_oversized_payload_is_413(api: SqlApi) -> None:
    uid = api.create_user()
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, "generate_image", {"prompt": "x" * 20000})  # limit 16384 bytes
    assert err.value.sqlstate == "PT413"
    assert re.match(
        r'payload: \d+ bytes exceeds the limit of 16384 bytes for kind "generate_image"',
        err.value.diag.message_primary or "",
    )
    assert api.count("select count(*) from public.jobs") == 0


def test_anon_cannot_enqueue(api: SqlApi) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.as_anon("select * from enqueue_job(kind => 'rename_layers')")
    assert err.value.sqlstate == "42501"  # execute revoked: 401 for anon at the REST layer


def test_service_role_without_user_is_refused(api: SqlApi) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from enqueue_job(kind => 'rename_layers')")
    assert err.value.sqlstate == "42501"
    assert "no signed-in user" in (err.value.diag.message_primary or "")


def test_idempotency_key_returns_the_same_job(api: SqlApi) -> None:
    uid = api.create_user()
    first = api.enqueue(uid, payload={"n": 1}, idempotency_key="submit-1")
    again = api.enqueue(uid, payload={"n": 1}, idempotency_key="submit-1")
    assert again["id"] == first["id"]
    assert api.count("select count(*) from public.jobs") == 1
    # The key is per user: another user's identical key is a different job.
    other = api.create_user()
    theirs = api.enqueue(other, payload={"n": 1}, idempotency_key="submit-1")
    assert theirs["id"] != first["id"]


def test_idempotency_key_reused_for_other_payload_is_409(api: SqlApi) -> None:
    uid = api.create_user()
    api.enqueue(uid, payload={"n": 1}, idempotency_key="submit-1")
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, payload={"n": 2}, idempotency_key="submit-1")
    assert err.value.sqlstate == "PT409"
    assert "already used for a different job" in (err.value.diag.message_primary or "")
    assert api.count("select count(*) from public.jobs") == 1


def test_concurrent_submissions_with_one_key_make_one_job(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    ids: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def submit() -> None:
        try:
            with SqlApi(dbname) as mine:
                ids.append(mine.enqueue(uid, payload={"n": 1}, idempotency_key="race")["id"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(ids)) == 1
    assert api.count("select count(*) from public.jobs") == 1


def test_rate_limit_is_per_user_and_kind_with_retry_after(api: SqlApi) -> None:
    uid = api.create_user()
    for i in range(3):  # generate_edits is heavy: 3 per minute
        api.enqueue(uid, "generate_edits", {"i": i})
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, "generate_edits", {"i": 3})
    assert err.value.sqlstate == "PT429"
    assert err.value.diag.message_primary == 'rate limit: at most 3 "generate_edits" jobs per minute per user'
    hint = err.value.diag.message_hint or ""
    match = re.fullmatch(r"retry after (\d+) seconds", hint)
    assert match and 1 <= int(match.group(1)) <= 60
    assert api.count("select count(*) from public.jobs") == 3
    # Other kinds and other users are not affected.
    api.enqueue(uid, "rename_layers", {"i": 0})
    api.enqueue(api.create_user(), "generate_edits", {"i": 0})


def test_rate_limit_counts_and_dates_only_the_kinds_own_jobs(api: SqlApi) -> None:
    # The window reads the user's jobs of every kind (one index on user and time) and checks the
    # kind on each: another kind's jobs in the window neither count nor date the retry.
    uid = api.create_user()
    for i in range(5):
        api.enqueue(uid, "rename_layers", {"i": i})
    api.admin("update public.jobs set created_at = created_at - interval '50 seconds'")
    for i in range(3):
        api.enqueue(uid, "generate_edits", {"i": i})
    with pytest.raises(psycopg.Error) as err:
        api.enqueue(uid, "generate_edits", {"i": 3})
    assert err.value.sqlstate == "PT429"
    assert err.value.diag.message_detail == "3 jobs of this kind in the last minute"
    match = re.fullmatch(r"retry after (\d+) seconds", err.value.diag.message_hint or "")
    assert match and int(match.group(1)) > 15  # dated by the edits (just now), not the renames (50 s ago)
    assert api.count("select count(*) from public.jobs where user_id = %s", (uid,)) == 8


def test_rate_limit_window_slides(api: SqlApi) -> None:
    uid = api.create_user()
    for i in range(3):
        api.enqueue(uid, "generate_edits", {"i": i})
    # Age the submissions past the one-minute window.
    api.admin("update public.jobs set created_at = created_at - interval '61 seconds'")
    fourth = api.enqueue(uid, "generate_edits", {"i": 3})
    assert fourth["status"] == "queued"
    assert api.count("select count(*) from public.jobs where user_id = %s", (uid,)) == 4


def test_idempotent_retry_is_not_rate_limited(api: SqlApi) -> None:
    uid = api.create_user()
    first = api.enqueue(uid, "generate_edits", {"i": 0}, idempotency_key="k0")
    api.enqueue(uid, "generate_edits", {"i": 1})
    api.enqueue(uid, "generate_edits", {"i": 2})
    assert api.enqueue(uid, "generate_edits", {"i": 0}, idempotency_key="k0")["id"] == first["id"]
