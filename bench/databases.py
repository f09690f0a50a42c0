"""Scratch databases on the devstack cluster (127.0.0.1:54322): created per run, dropped after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

from devstack import migrate, paths


def url(database: str) -> str:
    return paths.database_url(database)


def drop(database: str) -> None:
    with psycopg.connect(paths.database_url(), autocommit=True) as conn:
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
