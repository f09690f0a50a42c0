"""What hosted's `postgres` may and may not do, on devstack (docs/hosted-platform.md §4.2, §4.3).

`postgres` is not a superuser; the migrations run as it, so a statement only a superuser or a
platform table's owner may run fails here as on hosted. What supautils lets it do on hosted
(policies on realtime.messages and storage.*, scheduling through pg_cron's functions) works.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from devstack import migrate, paths, pgcluster
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

GRANTED_TABLES = ("realtime.messages", "storage.buckets", "storage.objects")


def test_supabase_admin_is_the_superuser_and_postgres_is_not(api: SqlApi) -> None:
    rows = api.admin("select rolname, rolsuper from pg_roles where rolname in ('postgres', 'supabase_admin')")
    assert {r["rolname"]: r["rolsuper"] for r in rows} == {"postgres": False, "supabase_admin": True}
    assert api.admin("select current_user as who") == [{"who": "postgres"}]
    with pytest.raises(psycopg.Error) as err:
        api.admin("create event trigger intruder on ddl_command_end execute function pg_catalog.now()")
    assert err.value.sqlstate == "42501"


def test_postgres_has_the_memberships_hosted_grants_it(api: SqlApi) -> None:
    rows = api.admin(
        "select r.rolname from pg_auth_members m join pg_roles r on r.oid = m.roleid"
        " where m.member = 'postgres'::regrole order by 1"
    )
    assert [r["rolname"] for r in rows] == [
        "anon",
        "authenticated",
        "pg_monitor",
        "pg_read_all_data",
        "pg_signal_backend",
        "service_role",
    ]
    reload = api.admin("select has_function_privilege('postgres', 'pg_reload_conf()', 'execute') as can")
    assert reload == [{"can": True}]


@pytest.mark.parametrize("table", GRANTED_TABLES)
def test_postgres_manages_policies_and_triggers_on_the_granted_platform_tables(api: SqlApi, table: str) -> None:
    # table: a constant above. What supautils' policy_grants (and TRIGGER) allow on hosted.
    api.admin(f"create policy intruder_read on {table} for select to authenticated using (true)")
    api.admin(f"alter policy intruder_read on {table} to anon, authenticated")
    api.admin("create function public.noop() returns trigger language plpgsql as 'begin return null; end'")
    api.admin(f"create trigger noop after insert on {table} for each statement execute function public.noop()")
    api.admin(f"drop trigger noop on {table}")
    api.admin(f"drop policy intruder_read on {table}")
    left = api.admin("select count(*) as n from pg_policy where polname = 'intruder_read'")
    assert left == [{"n": 0}]


@pytest.mark.parametrize(
    ("statement", "table"),
    [
        ("alter table storage.objects enable row level security", "objects"),  # hosted's classic
        ("alter table realtime.messages disable row level security", "messages"),
        ("alter table storage.buckets add column intruder text", "buckets"),
        ("alter table storage.objects rename column version to intruder", "objects"),
        ("comment on table realtime.messages is 'intruder'", "messages"),
    ],
)
def test_postgres_cannot_run_owner_statements_on_them(api: SqlApi, statement: str, table: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.admin(statement)  # statement: a constant above
    assert err.value.sqlstate == "42501"
    assert err.value.diag.message_primary == f"must be owner of table {table}"


@pytest.mark.parametrize(
    "statement",
    [
        "drop table storage.objects",
        "drop table realtime.messages cascade",
        "alter table storage.objects drop column version",
        "create index intruder on storage.objects (name)",  # refused already: no CREATE on storage
    ],
)
def test_postgres_cannot_drop_them_or_add_parts(api: SqlApi, statement: str) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.admin(statement)  # statement: a constant above
    assert err.value.sqlstate == "42501"
    assert api.admin("select to_regclass('storage.objects') is not null as there") == [{"there": True}]


def test_dropping_one_says_what_postgres_would(api: SqlApi) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.admin("drop table storage.buckets cascade")
    assert err.value.diag.message_primary == "must be owner of table buckets"


def test_the_platform_may_still_alter_them(api: SqlApi) -> None:
    """The guard stops only non-superusers: devstack's own bootstrap (supabase_admin) goes on."""
    with migrate.admin_connection(api.dbname) as admin:
        admin.execute("comment on table storage.objects is 'the platform''s'")
    rows = api.admin("select obj_description('storage.objects'::regclass) as c")
    assert rows == [{"c": "the platform's"}]


def test_migrations_apply_as_postgres_so_a_superuser_statement_fails_here_first(
    dbname: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "29990101000000_secure_storage.sql"
    bad.write_text("alter table storage.objects enable row level security;\n")  # fails on hosted too
    real = migrate.migrations()
    monkeypatch.setattr(migrate, "migrations", lambda: [*real, migrate.Migration.from_path(bad)])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table objects"):
        migrate.migrate(dbname)
    with psycopg.connect(paths.database_url(dbname)) as conn:
        recorded = conn.execute("select 1 from supabase_migrations.schema_migrations where version = '29990101000000'")
        assert recorded.fetchone() is None


@pytest.mark.skipif(
    not pgcluster.has_pg_cron(), reason="this PostgreSQL build has no pg_cron (tests/sql/test_pg_versions.py)"
)
def test_pg_cron_only_through_its_functions(pg_cluster: None) -> None:
    migrate.migrate()  # pg_cron lives in the cron database, "postgres"
    with psycopg.connect(paths.database_url()) as conn:
        with conn.transaction():
            job = conn.execute("select cron.schedule('privileges-probe', '0 0 1 1 *', 'select 1')").fetchone()
            assert job is not None
            assert conn.execute("select count(*) from cron.job_run_details").fetchone() is not None
            conn.execute("select cron.unschedule('privileges-probe')")
        for statement in (
            "insert into cron.job (schedule, command) values ('* * * * *', 'select 1')",
            "update cron.job set command = 'select 2'",
            "create table cron.intruder (id int)",
            "create trigger t after insert on cron.job_run_details execute function pg_catalog.now()",
        ):
            with pytest.raises(psycopg.Error) as err, conn.transaction():
                conn.execute(statement)  # statement: a constant above
            assert err.value.sqlstate == "42501", statement
