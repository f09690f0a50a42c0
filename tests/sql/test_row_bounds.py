"""The table's own line of defence (run_at, lease_expires_at in range) and the execute grants of
the bounded functions and their helpers (granted once, in 20261123001000_jobs_grants.sql)."""

from __future__ import annotations

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


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


EXPECTED_EXECUTE = {
    "public.enqueue_job(text, jsonb, text, integer, timestamptz, uuid, boolean)": {"authenticated", "service_role"},
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
    "private.cache_key(text, jsonb)": set(),
    "private.cached_result(uuid, text, jsonb)": set(),
    "private.purge_expired_cache_entries()": set(),
}


@pytest.mark.parametrize("signature", sorted(EXPECTED_EXECUTE))
def test_bounded_functions_have_their_grants_and_helpers_have_none(api: SqlApi, signature: str) -> None:
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
