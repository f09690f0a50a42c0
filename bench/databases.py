"""Scratch databases on the devstack cluster (127.0.0.1:54322): created per run, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql

from devstack import migrate, paths


def url(database: str) -> str:
    return paths.database_url(database)


def drop(database: str) -> None:
    with psycopg.connect(paths.database_url(), autocommit=True) as conn:
        # A gateway drops its logical slot on stop; if it died, a leftover slot would block the drop.
        conn.execute(
            "select pg_drop_replication_slot(slot_name) from pg_replication_slots where database = %s and not active",
            (database,),
        )
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(database)))


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """An empty database named ``bench_<prefix>_<random>``, dropped on exit."""
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    migrate.recreate_database(name)
    try:
        yield name
    finally:
        drop(name)


def connect(database: str) -> psycopg.Connection[tuple[Any, ...]]:
    """An autocommit connection to ``database`` (close it, or use it as a context manager)."""
    return psycopg.connect(paths.database_url(database), autocommit=True)


def count(database: str, query: str) -> int:
    """The single integer ``query`` answers (a count of unfinished jobs, say)."""
    with connect(database) as conn:
        return count_on(conn, query)


def count_on(conn: psycopg.Connection[tuple[Any, ...]], query: str) -> int:
    """``count`` on an open connection (a poll loop keeps one)."""
    row = conn.execute(sql.SQL(query)).fetchone()  # fixed text, never input
    return int(row[0]) if row else 0


def execute(database: str, *statements: str) -> None:
    """Run fixed maintenance statements (truncate, vacuum, analyze) in autocommit."""
    with psycopg.connect(paths.database_url(database), autocommit=True) as conn:
        for statement in statements:
            conn.execute(sql.SQL(statement))
