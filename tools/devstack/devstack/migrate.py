"""Apply the platform bootstrap, the migrations (in filename order) and the seed to one database.

Migrations are recorded in ``supabase_migrations.schema_migrations`` as the Supabase CLI does,
each applied in its own transaction, so a failing file leaves nothing half-written. The NOTICEs a
migration raises are kept with it, so a step it skipped (e.g. pg_cron scheduling on a cluster
without pg_cron) is reported, not lost.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from devstack import paths


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    path: Path

    @classmethod
    def from_path(cls, path: Path) -> Migration:
        version, _, name = path.stem.partition("_")
        if not version.isdigit() or not name:
            raise ValueError(f"{path.name}: migrations are named <timestamp>_<name>.sql")
        return cls(version, name, path)


@dataclass(frozen=True)
class Applied:
    migration: Migration
    notices: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.migration.version}_{self.migration.name}"


def migrations(directory: Path = paths.MIGRATIONS_DIR) -> list[Migration]:
    return sorted((Migration.from_path(p) for p in directory.glob("*.sql")), key=lambda m: m.version)


def _has_platform(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("select to_regclass('supabase_migrations.schema_migrations') is not null").fetchone()
    return bool(row and row[0])


def apply_platform(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    with conn.transaction():
        conn.execute(paths.PLATFORM_SQL.read_text())  # trusted file, no params


def apply_migrations(conn: psycopg.Connection[tuple[object, ...]], *, until: str | None = None) -> list[Applied]:
    """Apply pending migrations (those up to version ``until``, if given); returns those applied
    now, each with the NOTICEs it raised."""
    applied = {r[0] for r in conn.execute("select version from supabase_migrations.schema_migrations")}
    done: list[Applied] = []
    notices: list[str] = []

    def keep(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(f"{diag.severity_nonlocalized or diag.severity}: {diag.message_primary}")

    conn.add_notice_handler(keep)
    try:
        for m in migrations():
            if m.version in applied or (until is not None and m.version > until):
                continue
            notices.clear()
            text = m.path.read_text()
            with conn.transaction():
                conn.execute(text)  # trusted file from the repository
                conn.execute(
                    "insert into supabase_migrations.schema_migrations (version, name, statements) values (%s, %s, %s)",
                    (m.version, m.name, [text]),
                )
            done.append(Applied(m, tuple(notices)))
    finally:
        conn.remove_notice_handler(keep)
    return done


def apply_seed(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    if paths.SEED_SQL.exists() and paths.SEED_SQL.read_text().strip():
        with conn.transaction():
            conn.execute(paths.SEED_SQL.read_text())


class UnknownMigrations(Exception):
    """The database's migration history is not this checkout's: it records migrations the
    checkout does not have (folded or renamed), or applied one whose file has changed since."""


def _check_history(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> None:
    rows = conn.execute("select version, statements from supabase_migrations.schema_migrations")
    recorded = {str(version): statements if isinstance(statements, list) else None for version, statements in rows}
    files = {m.version: m for m in migrations()}
    unknown = sorted(set(recorded) - set(files))
    if unknown:
        raise UnknownMigrations(
            f"database {dbname} records migrations this checkout does not have ({', '.join(unknown)}): it was "
            "migrated by another version of supabase/migrations; `python -m devstack db reset` recreates it"
        )
    # Applied text against the file's: a migration edited after it ran (an unreleased one being
    # reworked) would otherwise leave the old functions in place and fail later, far from here.
    changed = sorted(
        f"{v}_{files[v].name}"
        for v, statements in recorded.items()
        if statements is not None and statements != [files[v].path.read_text()]
    )
    if changed:
        raise UnknownMigrations(
            f"database {dbname} applied migrations whose files have changed since ({', '.join(changed)}); "
            "`python -m devstack db reset` recreates it from the files"
        )


def admin_connection(dbname: str = paths.DATABASE) -> psycopg.Connection[tuple[object, ...]]:
    """A superuser connection: supabase_admin, or on a cluster the bootstrap has not reached yet,
    initdb's superuser (postgres, still a superuser then)."""
    try:
        return psycopg.connect(paths.admin_url(dbname), autocommit=True)
    except psycopg.OperationalError:
        return psycopg.connect(paths.database_url(dbname), autocommit=True)


def migrate(dbname: str = paths.DATABASE, *, seed: bool = True) -> list[Applied]:
    """Bring ``dbname`` up to date: platform once (as the superuser), then pending migrations, then
    the seed once, as ``postgres``, which is not a superuser, as on hosted: a migration that needs
    more than hosted's postgres has fails here first."""
    with admin_connection(dbname) as admin:
        fresh = not _has_platform(admin)
        # The bootstrap is idempotent: re-applying it lets an existing cluster pick up changes.
        apply_platform(admin)
    with psycopg.connect(paths.database_url(dbname), autocommit=True) as conn:
        _check_history(conn, dbname)
        done = apply_migrations(conn)
        if fresh and seed:
            apply_seed(conn)
        return done


def _drop(conn: psycopg.Connection[tuple[object, ...]], dbname: str) -> None:
    conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def drop_database(dbname: str) -> None:
    with admin_connection() as conn:
        _drop(conn, dbname)


def recreate_database(dbname: str, *, template: str | None = None) -> None:
    """Drop and create ``dbname`` (optionally as a clone of ``template``), owned by postgres as the
    project's database is on hosted. On a new cluster the platform (which makes the postgres role)
    is bootstrapped into the maintenance database first."""
    with admin_connection() as conn:
        if conn.execute("select 1 from pg_roles where rolname = %s", (paths.SUPERUSER,)).fetchone() is None:
            apply_platform(conn)
        _drop(conn, dbname)
        create = sql.SQL("create database {} owner {}").format(sql.Identifier(dbname), sql.Identifier(paths.SUPERUSER))
        if template:
            create = sql.SQL("{} template {}").format(create, sql.Identifier(template))
        conn.execute(create)
