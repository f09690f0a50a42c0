"""claim_jobs' planning with deep queues: it finds every group that may run, in claim order,
without reading the whole queue (bench/FIXES.md: a walk over all due jobs took 120 ms per claim
with 20,000 jobs queued behind users at their running cap).

The planner reads the first 256 due jobs; only when those do not fill the claim does it list the
remaining groups by their first due job. These tests put the groups that must be found behind
more than 256 jobs of a capped user, where only the second pass can see them."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import pytest
from psycopg.rows import DictRow

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

DEEP = 300  # more jobs than the first pass reads
FILL = """
insert into public.jobs (user_id, kind, payload, max_attempts, run_at)
select %(user)s, 'rename_layers', jsonb_build_object('i', g), 3, now() - %(age)s::interval
from generate_series(1, %(n)s) g
"""


def fill(api: SqlApi, user: uuid.UUID, n: int, age: str) -> None:
    api.admin(FILL, {"user": user, "n": n, "age": age})


def by_user(jobs: list[DictRow]) -> Counter[Any]:
    return Counter(j["user_id"] for j in jobs)


def test_a_user_behind_a_deep_capped_queue_is_claimed_in_the_same_claim(api: SqlApi) -> None:
    capped, behind = api.create_user(), api.create_user()
    fill(api, capped, DEEP, "2 hours")  # rename_layers: at most 3 running per user
    fill(api, behind, 2, "1 hour")
    got = api.claim("w1", max_jobs=10)
    assert by_user(got) == {capped: 3, behind: 2}
    # Nothing more may run: the next claim takes nothing, and still finds no one to skip.
    assert api.claim("w2", max_jobs=10) == []


def test_groups_found_past_the_first_pass_are_taken_by_their_first_due_job(api: SqlApi) -> None:
    capped, newer, older, future = (api.create_user() for _ in range(4))
    fill(api, capped, DEEP, "3 hours")
    fill(api, newer, 3, "30 minutes")
    fill(api, older, 3, "1 hour")
    api.admin(  # a group with no due job is not a candidate, however old its other jobs
        "insert into public.jobs (user_id, kind, payload, max_attempts, run_at) "
        "values (%s, 'rename_layers', '{}', 3, now() + interval '1 hour')",
        (future,),
    )
    got = api.claim("w1", max_jobs=4)
    assert by_user(got) == {capped: 3, older: 1}
    got = api.claim("w1", max_jobs=4)
    assert by_user(got) == {older: 2, newer: 2}


def test_the_kinds_filter_applies_to_the_groups_found_past_the_first_pass(api: SqlApi) -> None:
    capped, designer = api.create_user(), api.create_user()
    fill(api, capped, DEEP, "2 hours")
    api.admin(
        "insert into public.jobs (user_id, kind, payload, max_attempts) values (%s, 'generate_design', '{}', 3)",
        (designer,),
    )
    got = api.claim("w1", max_jobs=10, kinds=["rename_layers"])
    assert by_user(got) == {capped: 3}
    assert [j["kind"] for j in api.claim("w2", max_jobs=10, kinds=["generate_design"])] == ["generate_design"]


def test_claim_report_and_acknowledge_read_no_table_sequentially_with_thousands_queued(api: SqlApi) -> None:
    # With statistics that count thousands queued, a plan that reads every due job (a sequential
    # scan and a sort) is what the planner picks for an unbounded loop: the claim must bound it.
    users = [api.create_user() for _ in range(3)]
    api.set_user_plan(users[0], "pro")  # caps of 6 and 2: the claim takes from every group
    for user in users:
        api.admin(
            "insert into public.jobs (user_id, kind, payload, max_attempts, run_at) "
            "select %s, 'generate_design', jsonb_build_object('i', g), 3, now() - make_interval(secs => g) "
            "from generate_series(1, 1500) g",
            (user,),
        )
    api.admin("analyze public.jobs")
    with api.conn.transaction():
        claimed = api.conn.execute(
            "select id from public.claim_jobs(worker_id => 'w1', max_jobs => 20, lease_seconds => 60)"
        ).fetchall()
        stranger = str(uuid.uuid4())  # refused per row: its reason is looked up, not joined
        reports = [{"job_id": str(r["id"]), "percent": 50} for r in claimed] + [{"job_id": stranger, "percent": 1}]
        reported = api.conn.execute(
            "select * from public.report_progress_batch('w1', %s::jsonb)", (json.dumps(reports),)
        ).fetchall()
        # Usage, batched and carried by a success: each item's job looked up, not joined.
        call = {"attempt": 1, "provider": "anthropic", "model": "claude-haiku-4-5", "input_tokens": 10}
        recorded = api.conn.execute(
            "select * from public.record_usage_batch('w1', %s::jsonb)",
            (json.dumps([{"job_id": str(r["id"]), **call} for r in claimed]),),
        ).fetchall()
        completions = [{"job_id": str(r["id"]), "result": {}, "usage": [call]} for r in claimed]
        acked = api.conn.execute(
            "select * from public.complete_jobs('w1', %s::jsonb)",
            (json.dumps([*completions, {"job_id": stranger, "result": {}}]),),
        ).fetchall()
        scans = api.conn.execute(
            "select seq_scan, idx_scan from pg_stat_xact_user_tables where relid = 'public.jobs'::regclass"
        ).fetchone()
    assert len(claimed) == 10
    assert [r["reason"] for r in reported] == [None] * 10 + ["not found"]
    assert [r["reason"] for r in acked] == [None] * 10 + ["not found"]
    assert [r["recorded"] for r in recorded] == [True] * 10
    assert api.count("select count(*) from public.usage_ledger") == 20
    assert scans is not None and scans["idx_scan"] > 0
    assert scans["seq_scan"] == 0


PARK_FOR_HANDOFFS = (
    "select * from claim_jobs_or_park(worker_id => 'w1', kinds => array['generate_design'], max_jobs => 5,"
    " lease_seconds => 60, park_seconds => 60, handoffs => true)"
)
ENQUEUE_DESIGN = (
    "select id from public.enqueue_job(kind => 'generate_design', payload => '{\"prompt\": \"a\"}',"
    " idempotency_key => 'k1')"
)
JOBS_READ = (
    "select seq_scan, idx_scan, seq_tup_read, idx_tup_fetch from pg_stat_xact_user_tables"
    " where relid = 'public.jobs'::regclass"
)


def enqueue_handed_off(api: SqlApi) -> DictRow:
    """A new user's generate_design job, twice (the second an idempotent retry), with a worker
    parked for hand-offs with slots to spare: the enqueue's trigger claims the job for it and
    checks whether the worker may stay parked. How the transaction read public.jobs."""
    assert api.as_service(PARK_FOR_HANDOFFS) == []
    newcomer = api.create_user()
    with api.conn.transaction():
        api.conn.execute("select set_config('request.jwt.claims', %s, true)", (json.dumps(api.user_claims(newcomer)),))
        first = api.conn.execute(ENQUEUE_DESIGN).fetchone()
        again = api.conn.execute(ENQUEUE_DESIGN).fetchone()
        reads = api.conn.execute(JOBS_READ).fetchone()
    assert first is not None and again is not None and again["id"] == first["id"]
    handed = api.admin("select status, worker_id from public.jobs where id = %s", (first["id"],))
    assert handed == [{"status": "running", "worker_id": "w1"}]  # the hand-off ran
    assert reads is not None
    return reads


def test_enqueue_and_its_hand_off_read_no_table_sequentially_with_thousands_queued(api: SqlApi) -> None:
    # The enqueue's functions plan once per session too: their generic plans must not read the
    # whole queue (here, thousands of another kind's jobs).
    for user in [api.create_user() for _ in range(3)]:
        fill(api, user, 1500, "1 hour")
    api.admin("analyze public.jobs")
    reads = enqueue_handed_off(api)
    assert reads["idx_scan"] > 0
    assert reads["seq_scan"] == 0


def test_an_enqueue_reads_none_of_the_jobs_history(api: SqlApi) -> None:
    # 6,000 finished jobs of the kind and 300 queued of another: the enqueue's path may walk the
    # queued jobs (the hand-off's claim and its "any due job of the kind left?" do, in claim
    # order), never the history. As EXISTS, that question's generic plan was a sequential scan
    # expected to stop at once, which read the whole table when no such job was left.
    for user in [api.create_user() for _ in range(3)]:
        api.admin(
            "insert into public.jobs (user_id, kind, status, payload, result, max_attempts, finished_at)"
            " select %s, 'generate_design', 'succeeded', jsonb_build_object('i', g), '{}', 3, now()"
            " from generate_series(1, 2000) g",
            (user,),
        )
    fill(api, api.create_user(), DEEP, "1 hour")
    api.admin("analyze public.jobs")
    reads = enqueue_handed_off(api)
    assert reads["seq_scan"] == 0
    # A few walks of the 300 queued (~900 rows fetched) and nothing more; the history is 6,000.
    assert reads["seq_tup_read"] + reads["idx_tup_fetch"] < 2000, reads


# Called only on error or maintenance paths, where a plan per call costs nothing that matters.
COLD_SQL_FUNCTIONS = {"private.excerpt", "private.retry_delay", "private.purge_expired_cache_entries"}


def test_no_sql_function_with_a_set_clause_is_on_a_per_job_path(api: SqlApi) -> None:
    """A `language sql` function with a SET clause (every function here has `set search_path`) is
    never inlined and, up to PostgreSQL 17, planned again on every call: ~100 µs for user_plan,
    ~400 µs for budget_use, which enqueue_job and every claimed group called. The helpers of the
    per-job paths are plpgsql, whose plans are kept for the session."""
    rows = api.admin(
        "select n.nspname || '.' || p.proname as name from pg_proc p "
        "join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang "
        "where l.lanname = 'sql' and p.proconfig is not null and n.nspname in ('public', 'private')"
    )
    assert {row["name"] for row in rows} <= COLD_SQL_FUNCTIONS


# Each runs on every claim, acknowledgement or enqueue. Left to the plan cache,
# their statements got a custom plan on almost every call (the batch's size and the limits change
# the estimates), ~0.4-0.6 ms of planning per draining call (bench/FIXES.md). Their statements are
# written so that the generic plan reads indexes only (the test above checks it with thousands queued).
GENERIC_PLAN_FUNCTIONS = {
    "public.claim_jobs",
    "private.claimable_jobs",
    "public.complete_jobs",
    "private.lock_held_jobs",
    "public.report_progress_batch",
    "public.report_and_complete",  # an acknowledgement that carries reports: the two above
    "private.budget_use",
    "private.check_kinds",
    # The enqueue's path (bench/FIXES.md: ~0.6 -> ~0.5 ms of the database's time per enqueue).
    "public.enqueue_job",
    "private.wake_parked_workers",
    "private.wake_for_queued_jobs",
    "private.send_messages",
    # What a finishing statement sets off, once per statement (bench/FIXES.md).
    "private.store_cached_results",
    "private.advance_dependents",
}


def test_the_per_call_functions_plan_once_per_session(api: SqlApi) -> None:
    rows = api.admin(
        "select n.nspname || '.' || p.proname as name from pg_proc p "
        "join pg_namespace n on n.oid = p.pronamespace "
        "where 'plan_cache_mode=force_generic_plan' = any(p.proconfig) and n.nspname in ('public', 'private')"
    )
    assert {row["name"] for row in rows} == GENERIC_PLAN_FUNCTIONS
