"""devstack's roles are as strict as hosted's (docs/hosted-platform.md §4.2): the API roles
inherit, the login role carries the timeouts, and no API role reads the auth tables."""

from __future__ import annotations

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql


def test_the_api_roles_inherit(api: SqlApi) -> None:
    rows = api.admin(
        "select rolname, rolinherit from pg_roles where rolname in ('anon', 'authenticated', 'service_role')"
    )
    assert {r["rolname"]: r["rolinherit"] for r in rows} == {"anon": True, "authenticated": True, "service_role": True}


def test_role_settings_are_the_hosted_ones(api: SqlApi) -> None:
    rows = api.admin(
        "select r.rolname, s.setconfig from pg_db_role_setting s join pg_roles r on r.oid = s.setrole"
        " where s.setdatabase = 0 and r.rolname in ('anon', 'authenticated', 'authenticator')"
    )
    settings = {r["rolname"]: sorted(r["setconfig"]) for r in rows}
    assert settings["authenticator"] == ["lock_timeout=8s", "statement_timeout=8s"]
    assert "statement_timeout=3s" in settings["anon"]
    assert "statement_timeout=8s" in settings["authenticated"]


@pytest.mark.parametrize("table", ["auth.users", "auth.sessions", "auth.refresh_tokens"])
def test_no_api_role_reads_the_auth_tables(api: SqlApi, table: str) -> None:
    uid = api.create_user()
    for call in (api.as_service, api.as_anon, lambda q: api.as_user(uid, q)):
        with pytest.raises(psycopg.Error) as err:
            call(f"select * from {table}")  # table: a constant above
        assert err.value.sqlstate == "42501", table
    rls = api.admin("select relrowsecurity from pg_class where oid = %s::regclass", (table,))
    assert rls == [{"relrowsecurity": True}]


def test_postgres_is_not_a_superuser_and_owns_what_the_migrations_made(api: SqlApi) -> None:
    role = api.admin(
        "select rolsuper, rolbypassrls, rolcreatedb, rolcreaterole, rolreplication from pg_roles"
        " where rolname = 'postgres'"
    )
    assert role == [
        {"rolsuper": False, "rolbypassrls": True, "rolcreatedb": True, "rolcreaterole": True, "rolreplication": True}
    ]
    # The migrations ran as postgres: what they created is postgres's.
    owners = api.admin(
        "select distinct pg_get_userbyid(relowner) as owner from pg_class"
        " where relnamespace in ('public'::regnamespace, 'private'::regnamespace) and relkind in ('r', 'v')"
    )
    assert owners == [{"owner": "postgres"}]


@pytest.mark.parametrize("schema", ["auth", "storage", "realtime"])
def test_postgres_cannot_create_in_the_platform_schemas(api: SqlApi, schema: str) -> None:
    rows = api.admin("select has_schema_privilege('postgres', %s, 'CREATE') as can", (schema,))
    assert rows == [{"can": False}]
    with pytest.raises(psycopg.Error) as err:
        api.admin(f"create table {schema}.intruder (id int)")  # schema: a constant above
    assert err.value.sqlstate == "42501"
