"""RLS for anon, two users and the service role; realtime broadcasts; dashboard views."""

from __future__ import annotations

import json
import uuid

import psycopg
import pytest

from devstack import migrate
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


@pytest.fixture
def two_users(api: SqlApi) -> tuple[uuid.UUID, uuid.UUID, dict[str, object], dict[str, object]]:
    alice, bob = api.create_user(), api.create_user()
    ja = api.enqueue(alice, "rename_layers", {"who": "alice"})
    jb = api.enqueue(bob, "rename_layers", {"who": "bob"})
    api.claim("w1", max_jobs=2)
    api.as_service("select report_progress(%s, 'w1', 10, 'a')", (ja["id"],))
    api.as_service("select report_progress(%s, 'w1', 10, 'b')", (jb["id"],))
    return alice, bob, ja, jb


def test_users_read_only_their_own_rows(api: SqlApi, two_users: tuple) -> None:  # type: ignore[type-arg]
    alice, bob, ja, jb = two_users
    for uid, job in ((alice, ja), (bob, jb)):
        assert [r["id"] for r in api.as_user(uid, "select id from public.jobs")] == [job["id"]]
        assert {r["job_id"] for r in api.as_user(uid, "select job_id from public.job_events")} == {job["id"]}
        assert (
            api.as_user(
                uid, "select count(*) from public.jobs where id = %s", (jb["id"] if uid == alice else ja["id"],)
            )[0]["count"]
            == 0
        )
    assert len(api.as_service("select id from public.jobs")) == 2
    assert len(api.as_service("select id from public.job_events")) == 2
    assert len(api.as_user(alice, "select kind from public.job_kinds")) == 4


@pytest.mark.parametrize(
    "statement",
    [
        "insert into public.jobs (kind, max_attempts) values ('rename_layers', 3)",
        "update public.jobs set status = 'succeeded'",
        "delete from public.jobs",
        "insert into public.job_events (job_id, user_id, type) select id, user_id, 'log' from public.jobs",
        "update public.job_kinds set rate_limit_per_minute = 100000",
    ],
)
def test_users_cannot_write_tables_directly(api: SqlApi, two_users: tuple, statement: str) -> None:  # type: ignore[type-arg]
    alice = two_users[0]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_user(alice, statement)
    assert api.count("select count(*) from public.jobs where status = 'running'") == 2


@pytest.mark.parametrize(
    "relation", ["jobs", "job_events", "job_kinds", "job_stats", "active_jobs", "pending_jobs_queue"]
)
def test_anon_can_read_nothing(api: SqlApi, two_users: tuple, relation: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_anon(f"select * from public.{relation}")


def test_every_change_is_broadcast_to_the_owners_private_topic(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid, "rename_layers", {"n": 1})
    api.claim("w1")
    api.as_service("select * from renew_leases('w1', %s::uuid[])", ([job["id"]],))  # not news: no broadcast
    api.as_service("select report_progress(%s, 'w1', 50, 'half')", (job["id"],))
    api.as_service("select report_progress(%s, 'w1', partial => 'Hero')", (job["id"],))
    api.as_service(
        "select * from complete_job(%s, 'w1', %s)", (job["id"], json.dumps({"names": [{"id": "1:2", "name": "Hero"}]}))
    )
    msgs = api.admin(
        "select topic, event, private, extension, payload from realtime.messages "
        "order by inserted_at, payload->>'updated_at'"
    )
    assert {m["topic"] for m in msgs} == {f"jobs:{uid}"}
    assert all(m["private"] is True and m["extension"] == "broadcast" for m in msgs)
    jobs = [m["payload"] for m in msgs if m["event"] == "job"]
    events = [m["payload"] for m in msgs if m["event"] == "job_event"]
    assert [p["status"] for p in jobs] == ["queued", "running", "running", "succeeded"]
    assert all(p["id"] == str(job["id"]) for p in jobs)
    assert jobs[2]["progress"] == {"percent": 50, "message": "half"}
    assert jobs[3]["result"] == {"names": [{"id": "1:2", "name": "Hero"}]}
    assert "payload" not in jobs[0]  # inputs are not echoed
    assert set(jobs[0]) >= {"id", "kind", "status", "progress", "attempts", "error", "updated_at"}
    assert [(e["type"], e["data"]) for e in sorted(events, key=lambda e: e["id"])] == [
        ("progress", {"percent": 50, "message": "half"}),
        ("partial", {"text": "Hero"}),
    ]
    assert all(e["job_id"] == str(job["id"]) for e in events)


def test_many_messages_in_one_insert_are_the_rows_realtime_send_writes(api: SqlApi) -> None:
    payloads = [{"id": "job-1", "n": 1}, {"n": 2}, {"id": "job-3", "n": 3}]
    sent = api.admin(
        "select private.send_messages('job', %s::text[], %s::jsonb[]) as n",
        (["jobs:a", "jobs:b", "jobs:a"], [json.dumps(p) for p in payloads]),
    )
    assert sent == [{"n": 3}]
    api.admin("select realtime.send(%s::jsonb, 'job', 'jobs:c', true)", (json.dumps({"n": 4}),))
    rows = api.admin("select id::text, topic, event, private, extension, payload from realtime.messages order by ctid")
    # The insert's order is the arguments' (Realtime sends in WAL order), and every row is shaped
    # as realtime.send's: a payload with an "id" kept, one without given the message's id.
    expected = [("jobs:a", 1), ("jobs:b", 2), ("jobs:a", 3), ("jobs:c", 4)]
    assert [(r["topic"], r["payload"]["n"]) for r in rows] == expected
    assert {(r["event"], r["private"], r["extension"]) for r in rows} == {("job", True, "broadcast")}
    assert [r["payload"]["id"] for r in rows[:3]] == ["job-1", rows[1]["id"], "job-3"]
    assert rows[3]["payload"]["id"] == rows[3]["id"]
    assert api.admin("select private.send_messages('job', '{}', '{}') as n") == [{"n": 0}]


def test_messages_that_cannot_be_written_are_lost_with_a_warning_never_the_work(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    job = api.enqueue(uid, "rename_layers", {"n": 1})
    api.claim("w1")
    # Today's partition gone (hosted's janitor makes them; a failure there): every insert fails.
    with migrate.admin_connection(dbname) as admin:
        today = admin.execute("select to_char(current_date, 'YYYY_MM_DD')").fetchone()
        assert today is not None
        # DDL takes no bound parameters; the name is built from the server's own date.
        admin.execute(f"alter table realtime.messages detach partition realtime.messages_{today[0]}")
    warnings: list[str] = []
    api.conn.add_notice_handler(lambda d: warnings.append(d.message_primary or ""))
    done = api.as_service(
        "select * from complete_jobs('w1', %s::jsonb)",
        (json.dumps([{"job_id": str(job["id"]), "result": {"names": []}}]),),
    )
    assert [(d["job_id"], d["completed"]) for d in done] == [(job["id"], True)]
    assert api.admin("select status from public.jobs where id = %s", (job["id"],)) == [{"status": "succeeded"}]
    assert any(w.startswith("WarnSendingBroadcastMessage: no partition") for w in warnings), warnings


def test_large_results_are_not_broadcast(api: SqlApi) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    api.claim("w1")
    api.as_service("select * from complete_job(%s, 'w1', %s)", (job["id"], json.dumps({"blob": "x" * 20000})))
    last = api.admin("select payload from realtime.messages where event = 'job' and payload->>'status' = 'succeeded'")[
        0
    ]["payload"]
    assert "result" not in last and last["result_truncated"] is True


def read_topic(api: SqlApi, uid: uuid.UUID, topic: str) -> int:
    """What hosted Realtime checks at join: can this user's role see messages of this topic?"""
    rows = api.as_user(
        uid,
        "select set_config('realtime.topic', %s, true) as t, (select count(*) from realtime.messages) as n",
        (topic,),
    )
    return int(rows[0]["n"])


def test_only_the_owner_can_read_a_jobs_topic(api: SqlApi, two_users: tuple) -> None:  # type: ignore[type-arg]
    alice, bob, _, _ = two_users
    assert read_topic(api, alice, f"jobs:{alice}") > 0
    assert read_topic(api, bob, f"jobs:{bob}") > 0
    assert read_topic(api, bob, f"jobs:{alice}") == 0
    assert read_topic(api, alice, f"jobs:{bob}") == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # no insert policy: users cannot broadcast
        api.as_user(
            alice,
            "insert into realtime.messages (topic, extension, event, payload, private) "
            "values (%s, 'broadcast', 'job', '{}', true)",
            (f"jobs:{alice}",),
        )


def test_dashboard_views(api: SqlApi) -> None:
    alice, bob = api.create_user(), api.create_user()
    a1 = api.enqueue(alice, "rename_layers", {"i": 1})
    api.enqueue(alice, "rename_layers", {"i": 2})
    b1 = api.enqueue(bob, "generate_design", {"i": 1})
    api.enqueue(bob, "rename_layers", {"i": 3}, depends_on=b1["id"])
    api.claim("w1", max_jobs=1, kinds=["generate_design"])
    api.claim("w1", max_jobs=1, kinds=["rename_layers"])
    api.as_service("select * from complete_job(%s, 'w1', '{}')", (a1["id"],))

    stats = {(r["kind"], r["status"]): r for r in api.as_service("select * from public.job_stats")}
    assert {k: r["jobs"] for k, r in stats.items()} == {
        ("rename_layers", "succeeded"): 1,
        ("rename_layers", "queued"): 1,
        ("rename_layers", "waiting"): 1,
        ("generate_design", "running"): 1,
    }
    assert stats[("rename_layers", "succeeded")]["run_p50_seconds"] is not None
    active = api.as_service("select * from public.active_jobs")
    assert [(r["id"], r["worker_id"], r["lease_expired"]) for r in active] == [(b1["id"], "w1", False)]
    pending = api.as_service("select kind, status, reason, queue_position from public.pending_jobs_queue")
    assert [(r["status"], r["reason"]) for r in pending] == [
        ("queued", "due"),
        ("waiting", f"waiting for job {b1['id']}"),
    ]
    assert [r["queue_position"] for r in pending] == [1, 2]
    # security_invoker: each user sees only their own rows through the views.
    assert {r["kind"] for r in api.as_user(alice, "select kind from public.job_stats")} == {"rename_layers"}
    assert api.as_user(alice, "select count(*) from public.active_jobs")[0]["count"] == 0
    assert api.as_user(bob, "select count(*) from public.active_jobs")[0]["count"] == 1
