"""Fixture buckets for the Storage suites, created through DATABASE_URL with hosted-style policies.

Two private buckets per module: ``main`` with the usual "own folder" policies (the first path
segment must be the caller's ``auth.uid()``) and ``limited`` with a tiny size limit and one
allowed MIME type. Everything is dropped again at the end, bytes included for an in-process stack.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devstack import paths
from devstack.testing.fixtures import Stack
from devstack.tests.integration.auth_helpers import new_client
from supabase import AsyncClient

LIMITED_MAX_BYTES = 16
LIMITED_MIME = "text/plain"
OWN_FOLDER = "bucket_id = {bucket} and (storage.foldername(name))[1] = (select auth.uid()::text)"


@dataclass(frozen=True)
class Buckets:
    main: str
    limited: str


def allow_storage_deletes(conn: psycopg.Connection[Any]) -> None:
    """Hosted Storage's delete guard lets SQL deletes through only with this setting, for the
    current transaction (as the Storage server itself does); test cleanup uses it."""
    conn.execute("select set_config('storage.allow_delete_query', 'true', true)")


def _policies(bucket: str) -> list[sql.Composed]:
    check = sql.SQL(OWN_FOLDER).format(bucket=sql.Literal(bucket))
    statements = []
    for action in ("select", "insert", "update", "delete"):
        name = sql.Identifier(f"{bucket} own folder {action}")
        if action == "insert":
            clause = sql.SQL("with check ({})").format(check)
        elif action == "update":
            clause = sql.SQL("using ({}) with check ({})").format(check, check)
        else:
            clause = sql.SQL("using ({})").format(check)
        statements.append(
            sql.SQL("create policy {} on storage.objects for {} to authenticated {}").format(
                name, sql.SQL(action), clause
            )
        )
    return statements


@contextmanager
def fixture_buckets(stack: Stack) -> Iterator[Buckets]:
    suffix = uuid.uuid4().hex[:10]
    buckets = Buckets(main=f"conformance-{suffix}", limited=f"conformance-limited-{suffix}")
    with psycopg.connect(stack.database_url, autocommit=True) as conn, conn.transaction():
        conn.execute("insert into storage.buckets (id, name, public) values (%s, %s, false)", (buckets.main,) * 2)
        conn.execute(
            "insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)"
            " values (%s, %s, false, %s, %s)",
            (buckets.limited, buckets.limited, LIMITED_MAX_BYTES, [LIMITED_MIME]),
        )
        for bucket in (buckets.main, buckets.limited):
            for statement in _policies(bucket):
                conn.execute(statement)
    try:
        yield buckets
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn, conn.transaction():
            for bucket in (buckets.main, buckets.limited):
                for action in ("select", "insert", "update", "delete"):
                    conn.execute(
                        sql.SQL("drop policy if exists {} on storage.objects").format(
                            sql.Identifier(f"{bucket} own folder {action}")
                        )
                    )
                allow_storage_deletes(conn)
                conn.execute("delete from storage.objects where bucket_id = %s", (bucket,))
                conn.execute("delete from storage.buckets where id = %s", (bucket,))
        if stack.jwt_secret is not None:  # in-process stack: its bytes live under .devstack/
            for bucket in (buckets.main, buckets.limited):
                shutil.rmtree(paths.STATE / "storage" / bucket, ignore_errors=True)


async def anonymous_user(stack: Stack) -> tuple[AsyncClient, str]:
    """A client signed in as a fresh anonymous user (role authenticated); returns it and the uid."""
    client = await new_client(stack)
    res = await client.auth.sign_in_anonymously()
    assert res.user is not None
    return client, res.user.id


@pytest.fixture(scope="module")
def buckets(stack: Stack) -> Iterator[Buckets]:
    with fixture_buckets(stack) as created:
        yield created


@pytest.fixture
def new_bucket_id(stack: Stack) -> Iterator[str]:
    """A bucket id for a test that creates it; the bucket is deleted afterwards."""
    bucket_id = f"conformance-new-{uuid.uuid4().hex[:10]}"
    yield bucket_id
    with psycopg.connect(stack.database_url, autocommit=True) as conn, conn.transaction():
        allow_storage_deletes(conn)
        conn.execute("delete from storage.buckets where id = %s", (bucket_id,))


def storage_url(stack: Stack, *parts: str) -> str:
    return "/".join([stack.url, "storage", "v1", *parts])


def object_row(stack: Stack, bucket: str, name: str) -> dict[str, object] | None:
    with psycopg.connect(stack.database_url) as conn:
        cur = conn.execute(
            "select owner::text, owner_id, metadata, version from storage.objects where bucket_id = %s and name = %s",
            (bucket, name),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return {"owner": row[0], "owner_id": row[1], "metadata": row[2], "version": row[3]}
