"""Every call that locks several jobs takes their rows in id order, whatever the order of its
arguments and of the rows on disk, so two such calls at once wait for each other and never
deadlock (a deadlock costs both a second, deadlock_timeout, with every other row they hold
locked: bench/FIXES.md, "the progress beat").

The check: another transaction holds the higher-id row; the call, given [higher, lower], must
wait there having locked the lower one already, which the holder then cannot take."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi
from tests.sql.test_lifecycle import running_job

pytestmark = pytest.mark.sql


def usage(job_id: str) -> dict[str, Any]:
    return {"job_id": job_id, "attempt": 1, "provider": "anthropic", "model": "claude-haiku-4-5"}


# (name, the call given job ids in that order): each locks every listed job it holds.
CALLS: dict[str, Callable[[SqlApi, list[str]], list[Row]]] = {
    "renew_leases": lambda api, ids: api.as_service("select * from renew_leases('w1', %s::uuid[], 60)", (ids,)),
    "release_jobs": lambda api, ids: api.as_service("select * from release_jobs('w1', %s::uuid[])", (ids,)),
    "record_usage_batch": lambda api, ids: api.as_service(
        "select * from record_usage_batch('w1', %s::jsonb)", (json.dumps([usage(i) for i in ids]),)
    ),
    "report_progress_batch": lambda api, ids: api.as_service(
        "select * from report_progress_batch('w1', %s::jsonb)",
        (json.dumps([{"job_id": i, "percent": 50} for i in ids]),),
    ),
    "complete_jobs": lambda api, ids: api.as_service(
        "select * from complete_jobs('w1', %s::jsonb)", (json.dumps([{"job_id": i, "result": {}} for i in ids]),)
    ),
    # Its reports' jobs and its completions' jobs together: [higher] reported, [lower] completed.
    "report_and_complete": lambda api, ids: api.as_service(
        "select * from report_and_complete('w1', %s::jsonb, %s::jsonb)",
        (
            json.dumps([{"job_id": i, "percent": 50} for i in ids[:1]]),
            json.dumps([{"job_id": i, "result": {}} for i in ids[1:]]),
        ),
    ),
}


def lower_and_higher_stored_higher_first(api: SqlApi) -> tuple[str, str]:
    a, b = running_job(api), running_job(api)
    low, high = sorted((str(a["id"]), str(b["id"])))
    # A new version of the lower row lands after the higher one: a scan meets the higher first.
    api.admin("update public.jobs set progress = progress where id = %s", (low,))
    return low, high


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_call_locks_several_jobs_in_id_order(api: SqlApi, name: str) -> None:
    low, high = lower_and_higher_stored_higher_first(api)
    outcome: list[Any] = []
    with SqlApi(api.dbname) as holder, SqlApi(api.dbname) as caller:
        # Sequential scans: rows in storage order, the order an unordered lock would take them in.
        caller.conn.execute("set enable_indexscan = off")
        caller.conn.execute("set enable_bitmapscan = off")
        with holder.conn.transaction():
            holder.conn.execute("select 1 from public.jobs where id = %s for update", (high,))

            def call_high_then_low() -> None:
                try:
                    outcome.append(CALLS[name](caller, [high, low]))
                except Exception as exc:  # surfaced by the assertion below
                    outcome.append(exc)

            thread = threading.Thread(target=call_high_then_low)
            thread.start()
            waiting = 0
            for _ in range(500):  # bounded: until the call waits for the row lock on the higher row
                waiting = api.count(
                    "select count(*) from pg_stat_activity where wait_event_type = 'Lock' "
                    "and query like %s and pid <> pg_backend_pid()",
                    (f"%{name}%",),
                )
                if waiting:
                    break
                thread.join(timeout=0.02)
            assert waiting == 1
            with pytest.raises(psycopg.errors.LockNotAvailable), holder.conn.transaction():
                holder.conn.execute("select 1 from public.jobs where id = %s for update nowait", (low,))
        thread.join(timeout=30)
    assert not thread.is_alive()
    [rows] = outcome
    assert not isinstance(rows, Exception), rows
    assert len(rows) == 2
