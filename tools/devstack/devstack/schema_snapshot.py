"""The schema the migrations add up to, as one normalized text (like procrastinate's schema.sql).

``supabase/schema.sql`` is that text, checked in: a change to the SQL API shows up in review as a
diff of the resulting schema, and tests/sql/test_schema_snapshot.py fails when the migrations and
the file disagree. Regenerate it with ``python -m devstack schema --write``.

It is read from the catalog (not pg_dump, whose output changes between versions and carries
random ``\\restrict`` keys since 17.6): the project's schemas (tables and their columns,
constraints, indexes, triggers and row-level security; views; sequences; functions with their
full definitions), the policies the migrations put on platform tables, every grant on those
objects, the Realtime publication's tables, and the rows the migrations insert (job kinds and the
artifact bucket). Sorted, so the text only changes when the schema does.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import psycopg

from devstack import paths

SNAPSHOT_FILE = paths.ROOT / "supabase" / "schema.sql"
SCHEMAS = ("public", "private")
PLATFORM_TABLES = ("realtime.messages", "storage.objects", "storage.buckets")
HEADER = (
    "-- The schema supabase/migrations adds up to, read from the catalog by devstack/schema_snapshot.py.\n"
    "-- Generated: never edit it; change the SQL API with a new migration, then run\n"
    "--   python -m devstack schema --write\n"
    "-- tests/sql/test_schema_snapshot.py fails when this file and the migrations disagree.\n"
)

# Each query returns (section, name, text) rows; the sections come out in this order.
QUERIES: tuple[str, ...] = (
    # schemas and their grants
    """
    select 'schema', n.nspname, coalesce(array_to_string(array(
             select a.grantee::regrole::text || ':' || a.privilege_type
             from aclexplode(n.nspacl) a where a.grantee <> 0 order by 1), ', '), '')
    from pg_namespace n where n.nspname = any(%(schemas)s)
    """,
    # columns
    """
    select 'column', c.oid::regclass::text || '.' || a.attname,
           format_type(a.atttypid, a.atttypmod)
           || case when a.attnotnull then ' not null' else '' end
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '')
           || case when a.attidentity <> '' then ' identity ' || a.attidentity::text else '' end
           || case when a.attgenerated <> '' then ' generated' else '' end
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
    left join pg_attrdef d on d.adrelid = c.oid and d.adnum = a.attnum
    where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v')
    """,
    # constraints
    """
    select 'constraint', con.conrelid::regclass::text || ' ' || con.conname, pg_get_constraintdef(con.oid, true)
    from pg_constraint con join pg_namespace n on n.oid = con.connamespace
    where n.nspname = any(%(schemas)s) and con.conrelid <> 0
    """,
    # indexes
    """
    select 'index', i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
    from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(%(schemas)s)
    """,
    # row-level security
    """
    select 'rls', c.oid::regclass::text,
           case when c.relrowsecurity then 'enabled' else 'disabled' end
           || case when c.relforcerowsecurity then ', forced' else '' end
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p')
    """,
    # views (with their options)
    """
    select 'view', c.oid::regclass::text,
           coalesce(array_to_string(c.reloptions, ', '), '') || E'\n' || pg_get_viewdef(c.oid, true)
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(%(schemas)s) and c.relkind = 'v'
    """,
    # sequences
    """
    select 'sequence', c.oid::regclass::text, format_type(s.seqtypid, null)
    from pg_sequence s join pg_class c on c.oid = s.seqrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(%(schemas)s)
    """,
    # triggers, on project tables and on the platform tables the migrations touch
    """
    select 'trigger', t.tgrelid::regclass::text || ' ' || t.tgname, pg_get_triggerdef(t.oid, true)
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
    where not t.tgisinternal and n.nspname = any(%(schemas)s)
    """,
    # functions, whole
    """
    select 'function', p.oid::regprocedure::text, pg_get_functiondef(p.oid)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = any(%(schemas)s) and p.prokind in ('f', 'p')
    """,
    # policies, on project tables and on the platform's
    """
    select 'policy', schemaname || '.' || tablename || ' ' || policyname,
           permissive || ' for ' || cmd || ' to ' || array_to_string(roles, ', ')
           || coalesce(E'\n  using ' || qual, '') || coalesce(E'\n  with check ' || with_check, '')
    from pg_policies where schemaname = any(%(schemas)s) or schemaname || '.' || tablename = any(%(platform)s)
    """,
    # grants on relations and functions (owner's implicit rights left out)
    """
    select 'grant', c.oid::regclass::text, array_to_string(array(
             select a.grantee::regrole::text || ':' || a.privilege_type
             from aclexplode(c.relacl) a where a.grantee <> 0 and a.grantee <> c.relowner order by 1), ', ')
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any(%(schemas)s) and c.relkind in ('r', 'p', 'v', 'S')
    union all
    select 'grant', p.oid::regprocedure::text, coalesce(array_to_string(array(
             select case when a.grantee = 0 then 'public' else a.grantee::regrole::text end || ':' || a.privilege_type
             from aclexplode(p.proacl) a where a.grantee <> p.proowner order by 1), ', '), 'default (public: EXECUTE)')
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = any(%(schemas)s)
    """,
    # the Realtime publication
    """
    select 'publication', pubname || ' ' || schemaname || '.' || tablename, ''
    from pg_publication_tables where pubname = 'supabase_realtime'
    """,
    # rows the migrations insert
    """
    select 'row', 'public.job_kinds ' || kind, (to_jsonb(k) - 'created_at' - 'updated_at')::text
    from public.job_kinds k
    """,
    """
    select 'row', 'storage.buckets ' || id, (to_jsonb(b) - 'created_at' - 'updated_at' - 'owner')::text
    from storage.buckets b
    """,
)


# The file is written on PostgreSQL 17, hosted's version for new projects. On 15 two things read
# differently with the same schema: 17's MAINTAIN privilege does not exist, and a single-table
# view's definition is deparsed with its alias on every column. There the comparison leaves both
# out (view definitions are compared on 17, which make test runs too).
SNAPSHOT_VERSION = 17
_SECTION = re.compile(r"^-- (\w+) (.*)$", re.MULTILINE)


def comparable(text: str, server_version: int) -> str:
    """``text`` as it can be compared on ``server_version`` (unchanged on SNAPSHOT_VERSION)."""
    if server_version == SNAPSHOT_VERSION:
        return text
    text = re.sub(r", [^,\n]+:MAINTAIN|[^,\n]+:MAINTAIN, ", "", text)
    pieces = _SECTION.split(text)
    out = [pieces[0]]
    for section, name, body in zip(pieces[1::3], pieces[2::3], pieces[3::3], strict=True):
        if section == "view":
            options = body.strip().split("\n", 1)[0]
            body = f"\n{options}\n(definition compared on PostgreSQL {SNAPSHOT_VERSION})\n\n"
        out.append(f"-- {section} {name}{body}")
    return "".join(out)


def snapshot(conn: psycopg.Connection[Any]) -> str:
    params = {"schemas": list(SCHEMAS), "platform": list(PLATFORM_TABLES)}
    conn.execute("set search_path = ''")  # every name schema-qualified, whatever the database's default
    parts = [HEADER]
    for query in QUERIES:
        rows = sorted((str(section), str(name), str(text)) for section, name, text in conn.execute(query, params))
        for section, name, text in rows:
            parts.append(f"\n-- {section} {name}\n{text.strip()}\n")
    return "".join(parts)


def snapshot_of(dbname: str) -> str:
    with psycopg.connect(paths.admin_url(dbname)) as conn:
        return snapshot(conn)


def differences(expected: str, actual: str, *, expected_name: str = str(SNAPSHOT_FILE)) -> str:
    """A unified diff (empty when equal): what the migrations give that the file does not say."""
    return "".join(
        difflib.unified_diff(
            expected.splitlines(keepends=True),
            actual.splitlines(keepends=True),
            fromfile=expected_name,
            tofile="the migrations",
        )
    )


def check_or_write(dbname: str, *, write: bool, path: Path = SNAPSHOT_FILE) -> str:
    """Compare (or, with ``write``, replace) the file with the snapshot of ``dbname``."""
    actual = snapshot_of(dbname)
    version = int(paths.PG_VERSION)
    if write:
        if version != SNAPSHOT_VERSION:
            raise ValueError(
                f"write the snapshot on PostgreSQL {SNAPSHOT_VERSION}: DEVSTACK_PG_VERSION={SNAPSHOT_VERSION}"
            )
        path.write_text(actual)
        return ""
    expected = path.read_text() if path.exists() else ""
    return differences(comparable(expected, version), comparable(actual, version), expected_name=str(path))
