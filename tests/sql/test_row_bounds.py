"""The table's own line of defence (run_at, lease_expires_at in range), the repair of existing rows
when the argument-bounds migration runs, and the grants that create or replace must keep."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from devstack import migrate, paths
from devstack.sqlapi import SqlApi
from worker.core.jobs import Job

pytestmark = pytest.mark.sql

BOUNDS_VERSION = "20261203000100"


@pytest.mark.parametrize(
    ("column", "value"),
    [("run_at", "-infinity"), ("run_at", "infinity"), ("run_at", "4713-01-01 BC"), ("lease_expires_at", "infinity")],
)
def test_rows_written_around_the_api_are_checked_too(api: SqlApi, column: str, value: str) -> None:
    job = api.enqueue(api.create_user())
    with pytest.raises(psycopg.Error) as err:
        api.admin(f"update public.jobs set {column} = %s where id = %s", (value, job["id"]))  # column: a literal
    assert err.value.sqlstate == "23514"
    assert err.value.diag.constraint_name == f"jobs_{column}_in_range"
    assert api.job(job["id"]) == job


@pytest.fixture
def bare_db(pg_cluster: None) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    migrate.recreate_database(name)
    try:
        yield name
    finally:
        migrate.drop_database(name)


def test_migration_moves_bad_rows_into_range_and_the_queue_keeps_moving(bare_db: str) -> None:
    previous = max(m.version for m in migrate.migrations() if m.version < BOUNDS_VERSION)
    with migrate.admin_connection(bare_db) as admin:
        migrate.apply_platform(admin)
    with psycopg.connect(paths.database_url(bare_db), autocommit=True) as conn:
        migrate.apply_migrations(conn, until=previous)
        # Rows an older version (or an operator) could write: the worker cannot parse any of them.
        uid = uuid.uuid4()
        conn.execute("insert into auth.users (id, aud, role) values (%s, 'authenticated', 'authenticated')", (uid,))
        conn.execute(
            "insert into public.jobs (user_id, kind, max_attempts, run_at) values"
            " (%(u)s, 'rename_layers', 3, '-infinity'), (%(u)s, 'rename_layers', 3, '4713-01-01 BC'),"
            " (%(u)s, 'generate_design', 3, now())",
            {"u": uid},
        )
        conn.execute(
            "insert into public.jobs (user_id, kind, max_attempts, status, attempts, worker_id, lease_expires_at)"
            " values (%s, 'generate_edits', 3, 'running', 1, 'old-worker', '-infinity')",
            (uid,),
        )
        assert [a.migration.version for a in migrate.apply_migrations(conn, until=BOUNDS_VERSION)] == [BOUNDS_VERSION]

    with SqlApi(bare_db) as api:
        assert api.admin(
            "select conname, convalidated from pg_constraint where conrelid = 'public.jobs'::regclass"
            " and conname like '%%in_range' order by conname"
        ) == [
            {"conname": "jobs_lease_expires_at_in_range", "convalidated": True},
            {"conname": "jobs_run_at_in_range", "convalidated": True},
        ]
        moved = api.admin("select run_at::text as t from public.jobs where kind = 'rename_layers'")
        assert [r["t"] for r in moved] == ["1970-01-01 00:00:00+00"] * 2
        # The expired lease is reaped as any other; then every job is claimed and parses.
        assert api.as_service("select reap_expired_leases() as n")[0]["n"] == 1
        api.admin("update public.jobs set run_at = now() where kind = 'generate_edits'")
        claimed = api.claim("w1", max_jobs=10)
        kinds = sorted(j["kind"] for j in claimed)
        assert kinds == ["generate_design", "generate_edits", "rename_layers", "rename_layers"]
        assert all(Job.model_validate(j).status == "running" for j in claimed)


EXPECTED_EXECUTE = {
    "public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid)": {"authenticated", "service_role"},
    "public.claim_jobs(text, text[], integer, integer)": {"service_role"},
    "public.renew_leases(text, uuid[], integer)": {"service_role"},
    "public.report_progress(uuid, text, numeric, text, text)": {"service_role"},
    "public.defer_job(uuid, text, timestamptz, text)": {"service_role"},
    "public.release_jobs(text, uuid[])": {"service_role"},
    "public.purge_finished_jobs(interval)": {"service_role"},
    "public.next_job_run_at(text[])": {"service_role"},
    "private.excerpt(text, integer)": set(),
    "private.check_timestamp(text, timestamptz, interval, interval)": set(),
    "private.check_array(text, anyarray, integer)": set(),
    "private.check_kinds(text, text[])": set(),
    "private.check_json(text, jsonb, integer)": set(),
}


@pytest.mark.parametrize("signature", sorted(EXPECTED_EXECUTE))
def test_replaced_functions_keep_their_grants_and_helpers_have_none(api: SqlApi, signature: str) -> None:
    rows = api.admin(
        "select r.rolname from unnest(array['anon', 'authenticated', 'service_role']) r(rolname)"
        " where has_function_privilege(r.rolname, %s::regprocedure, 'execute')",
        (signature,),
    )
    assert {r["rolname"] for r in rows} == EXPECTED_EXECUTE[signature]


def test_next_job_run_at_is_still_stable_and_security_definer(api: SqlApi) -> None:
    row = api.admin(
        "select provolatile, prosecdef, proconfig from pg_proc where oid = %s::regprocedure",
        ("public.next_job_run_at(text[])",),
    )[0]
    assert row == {"provolatile": "s", "prosecdef": True, "proconfig": ['search_path=""']}
