"""claim_jobs: order, filters, leases, per-user caps, privileges and concurrency."""

from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def test_claim_takes_due_jobs_by_priority_then_age(api: SqlApi) -> None:
    users = [api.create_user() for _ in range(3)]
    for uid in users[:2]:
        api.set_user_plan(uid, "pro")  # the plan allows priority up to 50
    low = api.enqueue(users[0], "generate_design", {"p": "low"}, priority=-10)
    high = api.enqueue(users[1], "generate_design", {"p": "high"}, priority=50)
    mid_old = api.enqueue(users[2], "generate_design", {"p": "mid-old"}, priority=0)
    later = api.admin("select now() + interval '1 hour' as t")[0]["t"]
    api.enqueue(users[0], "rename_layers", {"p": "future"}, priority=50, run_at=later)

    claimed = api.claim("w1", max_jobs=10, lease_seconds=30)
    assert [j["id"] for j in claimed] == [high["id"], mid_old["id"], low["id"]]
    for j in claimed:
        assert j["status"] == "running"
        assert j["worker_id"] == "w1"
        assert j["attempts"] == 1
        assert j["started_at"] is not None
        assert 29.9 <= (j["lease_expires_at"] - j["updated_at"]).total_seconds() <= 30
    assert api.claim("w2") == []  # the future job is not due


def test_claim_filters_by_kind_and_respects_max_jobs(api: SqlApi) -> None:
    uid = api.create_user()
    api.enqueue(uid, "generate_design", {"i": 1})
    renames = [api.enqueue(uid, "rename_layers", {"i": i}) for i in range(3)]
    got = api.claim("w1", max_jobs=2, kinds=["rename_layers"])
    assert len(got) == 2 and {j["kind"] for j in got} == {"rename_layers"}
    assert {j["id"] for j in got} <= {r["id"] for r in renames}


def test_claim_never_exceeds_per_user_cap(api: SqlApi) -> None:
    a, b = api.create_user(), api.create_user()
    for i in range(6):  # rename_layers: max 3 running per user
        api.enqueue(a, "rename_layers", {"i": i})
    api.enqueue(b, "rename_layers", {"i": 0})
    got = api.claim("w1", max_jobs=10)
    by_user = {u: sum(1 for j in got if j["user_id"] == u) for u in (a, b)}
    assert by_user == {a: 3, b: 1}
    assert api.claim("w2", max_jobs=10) == []  # a is at its cap, b has nothing left
    api.as_service("select complete_job(%s, 'w1', '{}'::jsonb)", (next(j["id"] for j in got if j["user_id"] == a),))
    assert len(api.claim("w2", max_jobs=10)) == 1  # one slot freed for a


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", None, 1, 60), "worker_id: must be a non-empty string"),
        (("w", None, 0, 60), "max_jobs: must be between 1 and 1000, got 0"),
        (("w", None, 1, 1), "lease_seconds: must be between 5 and 3600, got 1"),
        (("w", ["rename_layers", "bogus"], 1, 60), 'kinds: unknown job kind(s): "bogus"'),
    ],
)
def test_claim_validates_arguments(api: SqlApi, args: tuple[object, ...], message: str) -> None:
    api.enqueue(api.create_user())
    with pytest.raises(psycopg.Error) as err:
        api.as_service("select * from claim_jobs(%s, %s, %s, %s)", args)
    assert err.value.sqlstate == "22023"
    assert err.value.diag.message_primary == message
    assert api.count("select count(*) from public.jobs where status = 'running'") == 0


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_service_role_runs_worker_functions(api: SqlApi, role: str) -> None:
    uid = api.create_user()
    job = api.enqueue(uid)
    claims = api.user_claims(uid) if role == "authenticated" else {"role": "anon"}
    for query, params in [
        ("select * from claim_jobs('w')", None),
        ("select * from renew_leases('w', array[%s]::uuid[])", (job["id"],)),
        ("select report_progress(%s, 'w', 50)", (job["id"],)),
        ("select * from complete_job(%s, 'w', '{}')", (job["id"],)),
        ("select * from fail_job(%s, 'w', '{\"message\": \"x\"}')", (job["id"],)),
        ("select * from defer_job(%s, 'w', now(), 'x')", (job["id"],)),
        ("select * from release_jobs('w', null)", None),
        ("select reap_expired_leases()", None),
        ("select purge_finished_jobs()", None),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            api.call(role, claims, query, params)
    assert api.job(job["id"])["status"] == "queued"


def test_concurrent_claimers_claim_each_job_exactly_once(api: SqlApi, dbname: str) -> None:
    """8 connections drain 5,000 jobs of 40 users; no job is claimed twice, caps always hold."""
    api.admin(
        "insert into public.job_kinds (kind, max_running_per_user, rate_limit_per_minute) "
        "values ('bulk_test', 4, 100000)"
    )
    users = [api.create_user() for _ in range(40)]
    api.admin(
        """
        insert into public.jobs (user_id, kind, payload, max_attempts, priority)
        select (%s::uuid[])[1 + (g %% 40)], 'bulk_test', jsonb_build_object('n', g), 3, (g %% 7) - 3
        from generate_series(0, 4999) g
        """,
        (users,),
    )
    claimed: dict[str, list[uuid.UUID]] = {}
    errors: list[BaseException] = []
    over_cap: list[int] = []
    done = threading.Event()

    def claimer(worker: str) -> None:
        mine: list[uuid.UUID] = []
        claimed[worker] = mine
        try:
            with SqlApi(dbname) as conn:
                idle = 0
                deadline = time.monotonic() + 300  # a regression fails the test instead of hanging it
                while idle < 3:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"{worker}: queue not drained within 300 s")
                    jobs = conn.claim(worker, max_jobs=25, lease_seconds=300)
                    if not jobs:
                        remaining = conn.count("select count(*) from public.jobs where status in ('queued', 'running')")
                        idle = idle + 1 if remaining == 0 else 0
                        continue
                    for j in jobs:
                        mine.append(j["id"])
                        conn.as_service("select 1 from complete_job(%s, %s, '{\"ok\": true}')", (j["id"], worker))
        except BaseException as exc:
            errors.append(exc)

    def monitor() -> None:
        with SqlApi(dbname) as conn:
            while not done.is_set():
                worst = conn.admin(
                    "select coalesce(max(n), 0) as n from (select count(*) n from public.jobs "
                    "where status = 'running' group by user_id, kind) r"
                )[0]["n"]
                if worst > 4:
                    over_cap.append(worst)
                time.sleep(0.005)

    watcher = threading.Thread(target=monitor, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=claimer, args=(f"w{i}",), daemon=True) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    done.set()
    watcher.join()

    assert errors == []
    all_ids = [i for ids in claimed.values() for i in ids]
    assert len(all_ids) == 5000
    assert len(set(all_ids)) == 5000, "a job was claimed twice"
    assert over_cap == [], f"per-user cap exceeded: {over_cap[:5]}"
    stats = api.admin("select status, min(attempts) lo, max(attempts) hi, count(*) n from public.jobs group by status")
    assert stats == [{"status": "succeeded", "lo": 1, "hi": 1, "n": 5000}]
