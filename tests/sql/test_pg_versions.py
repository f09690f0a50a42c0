"""What differs between the PostgreSQL builds the suite runs on (DEVSTACK_PG_VERSION=15|17).

Debian's 15 has pg_cron; the npm 17 build (hosted's 17.6) has none, and nothing in the reachable
registries can add it (it must be compiled against 17's server headers, which no package ships).
There the cron migration must still apply, and say that it skipped the schedules.
"""

from __future__ import annotations

import psycopg
import pytest

from devstack import migrate, paths

pytestmark = pytest.mark.sql

# The server each build must be: 17 is pinned to the minor hosted runs for new projects.
SERVER_VERSION_PREFIX = {"15": "15.", "17": "17.6"}
SHIPS_PG_CRON = {"15": True, "17": False}
SCHEDULED_ELSEWHERE = (
    "NOTICE: pg_cron is not available; schedule reap_expired_leases() and purge_finished_jobs() elsewhere"
)
NOT_THE_CRON_DATABASE = "NOTICE: pg_cron runs in database postgres, not jobs_template; jobs not scheduled here"


def _one(conn: psycopg.Connection[tuple[object, ...]], query: str) -> object:
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_the_cluster_is_the_selected_build(pg_cluster: None) -> None:
    with psycopg.connect(paths.admin_url()) as conn:
        version = str(_one(conn, "show server_version"))
        preload = str(_one(conn, "show shared_preload_libraries"))
        cron_available = _one(conn, "select exists (select from pg_available_extensions where name = 'pg_cron')")
    assert version.startswith(SERVER_VERSION_PREFIX[paths.PG_VERSION])
    assert cron_available is SHIPS_PG_CRON[paths.PG_VERSION]
    assert ("pg_cron" in preload) is SHIPS_PG_CRON[paths.PG_VERSION]


def test_commits_are_synchronous_as_on_hosted(pg_cluster: None) -> None:
    # Realtime's change feed reads only flushed WAL: an asynchronous commit would reach the
    # plugin up to ~3 × wal_writer_delay late. Set at start, over what an older init wrote.
    with psycopg.connect(paths.admin_url()) as conn:
        row = conn.execute("select setting, source from pg_settings where name = 'synchronous_commit'").fetchone()
    assert row == ("on", "command line")


def test_cron_migration_schedules_where_pg_cron_exists_and_says_it_skipped_elsewhere(
    template_migrations: list[migrate.Applied],
) -> None:
    migrate.migrate()  # the cron database is "postgres"; the template is another database
    cron_migration = next(a for a in template_migrations if a.migration.name == "jobs_cron")
    with psycopg.connect(paths.admin_url()) as conn:
        recorded = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
        has_cron_schema = _one(conn, "select to_regnamespace('cron') is not null")
        jobs: dict[str, str] = (
            dict(conn.execute("select jobname, command from cron.job").fetchall()) if has_cron_schema else {}
        )
    # Every migration applies, with or without pg_cron.
    assert {m.version for m in migrate.migrations()} <= recorded
    if SHIPS_PG_CRON[paths.PG_VERSION]:
        assert NOT_THE_CRON_DATABASE in cron_migration.notices
        assert jobs["reap-expired-job-leases"] == "select public.reap_expired_leases()"
        assert jobs["purge-finished-jobs"] == "select public.purge_finished_jobs()"
    else:
        assert SCHEDULED_ELSEWHERE in cron_migration.notices
        assert has_cron_schema is False


def test_a_database_migrated_by_other_migrations_is_named_not_half_migrated(pg_cluster: None) -> None:
    name = "test_unknown_history"
    migrate.recreate_database(name)
    try:
        migrate.migrate(name, seed=False)
        with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
            conn.execute(
                "insert into supabase_migrations.schema_migrations (version, name) values ('19990101000000', 'gone')"
            )
        with pytest.raises(migrate.UnknownMigrations, match=r"19990101000000.*devstack db reset"):
            migrate.migrate(name, seed=False)
    finally:
        migrate.drop_database(name)


def test_a_database_whose_applied_migration_file_changed_is_named_not_left_stale(pg_cluster: None) -> None:
    name = "test_changed_history"
    migrate.recreate_database(name)
    try:
        migrate.migrate(name, seed=False)
        first = migrate.migrations()[0]
        with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
            # As if the file had been edited after it ran here.
            conn.execute(
                "update supabase_migrations.schema_migrations set statements = %s where version = %s",
                (["-- an older text"], first.version),
            )
        with pytest.raises(migrate.UnknownMigrations, match=rf"{first.version}_{first.name}\).*devstack db reset"):
            migrate.migrate(name, seed=False)
        with psycopg.connect(paths.database_url(name), autocommit=True) as conn:
            # Rows without the text (recorded by other tools) are not judged.
            conn.execute(
                "update supabase_migrations.schema_migrations set statements = null where version = %s",
                (first.version,),
            )
        assert migrate.migrate(name, seed=False) == []
    finally:
        migrate.drop_database(name)
