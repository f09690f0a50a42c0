"""Plumbing shared by the worker's integration suites (no tests here).

Each suite gets its own database cloned from a migrated template and, where it needs the
Supabase API, its own in-process gateway on that database, so the worker never claims jobs
that belong to anyone else's tests.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, LiteralString

import httpx
import psycopg
from psycopg import sql

from devstack import keys, migrate, paths
from devstack.gateway.app import create_app as create_gateway
from devstack.gateway.context import Settings
from devstack.models import create_app as create_models
from devstack.sqlapi import SqlApi
from devstack.testing.servers import Server
from worker.core.jobs import Job

TEMPLATE = "worker_template"
_template_ready = False


def ensure_template() -> str:
    global _template_ready
    if not _template_ready:
        migrate.recreate_database(TEMPLATE)
        migrate.migrate(TEMPLATE, seed=False)
        _template_ready = True
    return TEMPLATE


def clone_database(prefix: str = "worker") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    migrate.recreate_database(name, template=ensure_template())
    return name


def drop_database(name: str) -> None:
    # As the superuser: a gateway's Realtime feed (a superuser session) may still be leaving, and
    # only a superuser may end it.
    with psycopg.connect(paths.admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@dataclass
class Gateway:
    url: str
    service_role_key: str
    anon_key: str
    database: str
    secret_key: str  # the opaque sb_secret_ key (same role as service_role_key)


@contextlib.contextmanager
def gateway(database: str, port: int = 0) -> Iterator[Gateway]:
    settings = Settings.from_stack(database=database)
    with Server(create_gateway(settings), port) as server:
        httpx.get(f"{server.url}/health", timeout=10).raise_for_status()
        secret_key = keys.load_or_create().secret_key
        yield Gateway(server.url, settings.service_role_key, settings.anon_key, database, secret_key)


@contextlib.contextmanager
def cloned_gateway(prefix: str) -> Iterator[Gateway]:
    """A database cloned from the template with a gateway of its own; both gone on exit."""
    name = clone_database(prefix)
    try:
        with gateway(name) as gw:
            yield gw
    finally:
        drop_database(name)


@contextlib.contextmanager
def model_standins() -> Iterator[Server]:
    with Server(create_models()) as server:
        yield server


class SqlHarness:
    """The user's and the operator's side of a database: enqueue, cancel, inspect, expire."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.api = SqlApi(dbname)

    def close(self) -> None:
        self.api.conn.close()

    def new_user(self) -> uuid.UUID:
        return self.api.create_user()

    def enqueue(
        self,
        kind: str,
        payload: dict[str, Any] | None = None,
        *,
        user_id: uuid.UUID | None = None,
        **kw: Any,
    ) -> Job:
        row = self.api.enqueue(user_id or self.new_user(), kind, payload if payload is not None else {"n": 1}, **kw)
        return Job.model_validate(row)

    def cancel(self, job_id: uuid.UUID) -> None:
        job = self.get(job_id)
        self.api.as_user(job.user_id, "select * from cancel_job(%s)", (job_id,))

    def expire_lease(self, job_id: uuid.UUID) -> None:
        self.api.admin("update public.jobs set lease_expires_at = now() - interval '1 second' where id = %s", (job_id,))

    def get(self, job_id: uuid.UUID) -> Job:
        return Job.model_validate(self.api.job(job_id))

    def row(self, job_id: uuid.UUID) -> dict[str, Any]:
        return self.api.job(job_id)

    def corrupt(self, job_id: uuid.UUID, column: str, value: LiteralString, wire: Any = None) -> None:
        """Write ``value`` (an SQL expression) into the row directly, as an operator or an older
        version could; ``wire`` is how the API sends it (used by the in-memory harness only).

        The CHECK constraints on that column are dropped first (in this suite's own cloned
        database): a database migrated before they existed can hold such rows, and the worker
        must survive them."""
        query = sql.SQL("update public.jobs set {} = ").format(sql.Identifier(column)) + sql.SQL(
            value + " where id = %s"
        )
        with self.api.conn.transaction():
            checks = self.api.conn.execute(
                "select c.conname from pg_constraint c join pg_attribute a"
                " on a.attrelid = c.conrelid and a.attnum = any (c.conkey)"
                " where c.conrelid = 'public.jobs'::regclass and c.contype = 'c' and a.attname = %s",
                (column,),
            ).fetchall()
            for check in checks:
                drop = sql.SQL("alter table public.jobs drop constraint {}").format(sql.Identifier(check["conname"]))
                self.api.conn.execute(drop)
            self.api.conn.execute(query, (job_id,))

    def facts(self, job_id: uuid.UUID) -> dict[str, Any]:
        """The outcome columns only: the rest of a corrupted row may not load in Python."""
        return self.api.admin("select status, attempts, error from public.jobs where id = %s", (job_id,))[0]

    def events(self, job_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
        rows = self.api.admin("select type, data from public.job_events where job_id = %s order by id", (job_id,))
        return [(r["type"], r["data"]) for r in rows]

    def truncate(self) -> None:
        self.api.admin("delete from public.jobs")
        # And parked workers: a worker parked for hand-offs would be handed the next test's jobs.
        self.api.admin("delete from public.worker_wakeups")
        # Shared provider state too: a cooldown one test opened must not defer the next test's jobs.
        self.api.admin(
            "delete from public.model_capacity; delete from public.provider_limits; delete from public.kind_models"
        )

    def sql(self, query: str, params: Any = None) -> list[dict[str, Any]]:
        return self.api.admin(query, params)


def env_file_text(values: dict[str, str]) -> str:
    return "".join(f"{k}={json.dumps(v)}\n" for k, v in values.items())
