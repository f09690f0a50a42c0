"""updated_at moves forward on every change of a job, whichever statement makes it; the hot path's
statements set it themselves, so its trigger function is not called for them (bench/FIXES.md).

Function calls are counted with ``pg_stat_xact_user_functions`` (before and after the statement,
in its transaction: the view may still hold earlier transactions' calls not yet flushed), which
needs ``track_functions``: a superuser setting, so these tests run as devstack's superuser and act
as the service role with ``set local role``."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from devstack import paths
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

TOUCH_CALLS = (
    "select coalesce(sum(f.calls), 0)::int as calls from pg_stat_xact_user_functions f"
    " where f.schemaname = 'private' and f.funcname = 'touch_updated_at'"
)


@pytest.fixture
def su(api: SqlApi) -> Iterator[psycopg.Connection[DictRow]]:
    with psycopg.connect(paths.admin_url(api.dbname), row_factory=dict_row, autocommit=True) as conn:
        yield conn


def step(
    conn: psycopg.Connection[DictRow], query: str, params: Any = None, role: str = "service_role"
) -> tuple[list[DictRow], int]:
    """Run ``query`` as ``role`` in its own transaction: (its rows, touch_updated_at calls)."""
    with conn.transaction():
        conn.execute("set local track_functions = 'all'")
        conn.execute(sql.SQL("set local role {}").format(sql.Identifier(role)))
        before = conn.execute(TOUCH_CALLS).fetchone()
        rows = conn.execute(query, params).fetchall()
        after = conn.execute(TOUCH_CALLS).fetchone()
    assert before is not None and after is not None
    return rows, int(after["calls"]) - int(before["calls"])


def updated(api: SqlApi, job_id: uuid.UUID) -> datetime:
    value = api.job(job_id)["updated_at"]
    assert isinstance(value, datetime)
    return value


def test_the_hot_path_sets_updated_at_itself_and_it_moves_forward_at_every_step(
    api: SqlApi, su: psycopg.Connection[DictRow]
) -> None:
    job = api.enqueue(api.create_user())["id"]
    seen = [updated(api, job)]
    claimed, calls = step(su, "select id from public.claim_jobs('w1', null, 5, 60)")
    assert [r["id"] for r in claimed] == [job] and calls == 0
    seen.append(updated(api, job))
    reports = json.dumps([{"job_id": str(job), "percent": 40, "message": "half"}])
    reported, calls = step(su, "select reason from public.report_progress_batch('w1', %s::jsonb)", (reports,))
    assert reported == [{"reason": None}] and calls == 0
    seen.append(updated(api, job))
    renewed, calls = step(su, "select id from public.renew_leases('w1', %s, 120)", ([job],))
    assert [r["id"] for r in renewed] == [job] and calls == 0
    seen.append(updated(api, job))
    done = json.dumps([{"job_id": str(job), "result": {"ok": True}}])
    acked, calls = step(su, "select completed from public.complete_jobs('w1', %s::jsonb)", (done,))
    assert acked == [{"completed": True}] and calls == 0
    seen.append(updated(api, job))
    assert seen == sorted(seen) and len(set(seen)) == len(seen)


def test_a_statement_that_does_not_set_updated_at_gets_it_from_the_trigger(
    api: SqlApi, su: psycopg.Connection[DictRow]
) -> None:
    job = api.enqueue(api.create_user())["id"]
    before = updated(api, job)
    # An operator's edit from the dashboard (the database owner), say: it names no updated_at.
    edit = "update public.jobs set priority = priority + 1 where id = %s returning id"
    _, calls = step(su, edit, (job,), role="postgres")
    assert calls == 1
    assert updated(api, job) > before
    # Setting it to the value it has is no setting at all: the trigger still moves it.
    same = updated(api, job)
    same_value = "update public.jobs set updated_at = updated_at, priority = 0 where id = %s returning id"
    _, calls = step(su, same_value, (job,), role="postgres")
    assert calls == 1
    assert updated(api, job) > same
