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


# Each runs on every claim or acknowledgement (or enqueue, for budget_use). Left to the plan cache,
# their statements got a custom plan on almost every call (the batch's size and the limits change
# the estimates), ~0.4-0.6 ms of planning per draining call (bench/FIXES.md). Their statements are
# written so that the generic plan reads indexes only (the test above checks it with thousands queued).
GENERIC_PLAN_FUNCTIONS = {
    "public.claim_jobs",
    "private.claimable_jobs",
    "public.complete_jobs",
    "private.lock_held_jobs",
    "public.report_progress_batch",
    "private.budget_use",
    "private.check_kinds",
}


def test_the_per_call_functions_plan_once_per_session(api: SqlApi) -> None:
    rows = api.admin(
        "select n.nspname || '.' || p.proname as name from pg_proc p "
        "join pg_namespace n on n.oid = p.pronamespace "
        "where 'plan_cache_mode=force_generic_plan' = any(p.proconfig) and n.nspname in ('public', 'private')"
    )
    assert {row["name"] for row in rows} == GENERIC_PLAN_FUNCTIONS
