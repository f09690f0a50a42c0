"""supabase/schema.sql is what the migrations add up to (tools/devstack/devstack/schema_snapshot.py): a change
to the SQL API without regenerating it fails here, and so does any drift of a database."""

from __future__ import annotations

import pytest

from devstack import paths, schema_snapshot
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

HINT = "after adding a migration: DEVSTACK_PG_VERSION=17 python -m devstack schema --write, then review the diff"


def _drift(dbname: str) -> str:
    version = int(paths.PG_VERSION)
    expected = schema_snapshot.comparable(schema_snapshot.SNAPSHOT_FILE.read_text(), version)
    actual = schema_snapshot.comparable(schema_snapshot.snapshot_of(dbname), version)
    return schema_snapshot.differences(expected, actual)


def test_the_snapshot_is_what_the_migrations_give(template_db: str) -> None:
    drift = _drift(template_db)
    assert drift == "", f"{drift}\n{HINT}"


def test_a_drift_in_any_part_of_the_schema_is_caught(api: SqlApi, dbname: str) -> None:
    assert _drift(dbname) == ""  # a fresh clone of the template matches
    api.admin("alter table public.jobs add column drift int")
    api.admin("grant select on public.job_events to anon")
    api.admin("create policy drift on public.jobs for select to anon using (false)")
    api.admin("comment on table public.jobs is 'comments are not part of the snapshot'")
    api.admin(
        "create or replace function private.retry_delay(attempt integer, jitter double precision) returns interval"
        " language sql immutable as $$ select interval '1 second' $$"
    )
    drift = _drift(dbname)
    added = {line for line in drift.splitlines() if line.startswith("+-- ")}
    assert added >= {
        "+-- column public.jobs.drift",
        "+-- policy public.jobs drift",
    }
    assert "+anon:SELECT, authenticated:SELECT" in drift  # the new grant, in the job_events line
    changed_body = [line for line in drift.splitlines() if line.startswith("+") and "interval '1 second'" in line]
    assert changed_body, drift  # the function's new body
