"""The Realtime stand-in's RLS check waits for the change's transaction to end.

The walsender sends a commit once its WAL is flushed, a moment before the committing backend
leaves the proc array; a check in that moment finds the row invisible and the subscriber would
miss a change it may see (seen once in CI on a loaded machine: a filtered INSERT never arrived).
Here the moment is held open: the row's transaction stays open while the check runs."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any, cast

import psycopg
import pytest

from devstack import migrate
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

TABLE = "public.rt_visibility"
VISIBLE = "select realtime.devstack_rows_visible(%s::regclass, %s::jsonb, %s::jsonb, %s) as flags"
SLEEPING = """
select count(*) as n from pg_stat_activity
where wait_event = 'PgSleep' and query like '%%devstack_rows_visible%%' and pid <> pg_backend_pid()
"""


@pytest.fixture
def owner(api: SqlApi) -> uuid.UUID:
    api.admin(
        f"create table {TABLE} (id int primary key, owner uuid not null);"
        f" alter table {TABLE} enable row level security;"
        f" create policy own on {TABLE} for select to authenticated using (owner = auth.uid());"
        f" grant select on {TABLE} to authenticated"
    )
    return api.create_user()


def _groups(uid: uuid.UUID) -> str:
    claims = {"sub": str(uid), "role": "authenticated"}
    return json.dumps([{"role": "authenticated", "claims": json.dumps(claims), "sub": str(uid)}])


def _open_insert(api: SqlApi, uid: uuid.UUID, row_id: int) -> tuple[psycopg.Connection[Any], int]:
    """Insert a row in a transaction left open; its 32-bit id, as wal2json reports it."""
    conn = migrate.admin_connection(api.dbname)
    conn.autocommit = False
    conn.execute(f"insert into {TABLE} values (%s, %s)", (row_id, uid))
    row = conn.execute("select pg_current_xact_id()::text::bigint & 4294967295").fetchone()
    assert row is not None and isinstance(row[0], int)
    return conn, row[0]


def _check(api: SqlApi, uid: uuid.UUID, row_id: int, xid: int | None) -> list[bool]:
    # As the feed runs it: the platform's superuser (postgres may not execute it, as on hosted).
    with migrate.admin_connection(api.dbname) as conn:
        row = conn.execute(VISIBLE, (TABLE, json.dumps({"id": str(row_id)}), _groups(uid), xid)).fetchone()
    assert row is not None
    return [bool(flag) for flag in cast("list[object]", row[0])]


def test_without_the_transaction_id_an_open_transactions_row_is_not_visible(api: SqlApi, owner: uuid.UUID) -> None:
    # The race itself: the same check, not told which transaction to wait for.
    conn, _ = _open_insert(api, owner, 1)
    try:
        assert _check(api, owner, 1, None) == [False]
    finally:
        conn.rollback()
        conn.close()


def test_the_check_waits_for_the_transaction_and_then_sees_the_row(api: SqlApi, owner: uuid.UUID) -> None:
    conn, xid = _open_insert(api, owner, 2)
    result: list[list[bool]] = []
    checker = threading.Thread(target=lambda: result.append(_check(api, owner, 2, xid)))
    try:
        checker.start()
        # Commit only once the check is waiting on the transaction (polled, bounded).
        for _ in range(2000):
            if api.admin(SLEEPING)[0]["n"] > 0:
                break
            threading.Event().wait(0.005)
        else:
            pytest.fail("the check never waited for the open transaction")
        conn.commit()
    finally:
        checker.join(timeout=30)
        conn.close()
    assert result == [[True]]


def test_a_committed_transaction_is_not_waited_for_and_rls_still_applies(api: SqlApi, owner: uuid.UUID) -> None:
    conn, xid = _open_insert(api, owner, 3)
    conn.commit()
    conn.close()
    stranger = api.create_user()
    assert _check(api, owner, 3, xid) == [True]
    assert _check(api, stranger, 3, xid) == [False]
