"""Call the SQL API the way PostgREST does: one transaction per call, as the JWT's role (tests and the SQL demo).

The GUCs are set by the same statement the devstack gateway uses (devstack.gateway.pg), so the
tests exercise RLS, auth.uid() and grants exactly as a REST request would.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import psycopg
from psycopg.rows import dict_row

from devstack import paths
from devstack.gateway.pg import SET_REQUEST_GUCS

Row = dict[str, Any]


class SqlApi:
    """A connection to one test database with helpers to act as anon, a user or the service role."""

    def __init__(self, dbname: str) -> None:
        self.dbname = dbname
        self.conn: psycopg.Connection[Row] = psycopg.connect(paths.database_url(dbname), row_factory=dict_row)

    def __enter__(self) -> SqlApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    # -- identities -------------------------------------------------------------------------
    def create_user(self, email: str | None = None) -> uuid.UUID:
        uid = uuid.uuid4()
        self.admin(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s)",
            (uid, email or f"{uid}@example.test"),
        )
        return uid

    @staticmethod
    def user_claims(uid: uuid.UUID) -> dict[str, Any]:
        return {"sub": str(uid), "role": "authenticated", "aud": "authenticated", "is_anonymous": False}

    # -- calls ------------------------------------------------------------------------------
    def call(self, role: str, claims: dict[str, Any], query: str, params: Any = None) -> list[Row]:
        """Run ``query`` in its own transaction as ``role``; errors roll back and propagate."""
        with self.conn.transaction():
            self.conn.execute(
                SET_REQUEST_GUCS,
                {
                    "search_path": "public, extensions",
                    "role": role,
                    "claims": json.dumps(claims),
                    "method": "POST",
                    "path": "/rpc",
                    "headers": "{}",
                    "settings": "{}",  # the role's own settings (timeouts) are the gateway's concern
                },
            )
            cur = self.conn.execute(query, params)  # queries are literals
            return cur.fetchall() if cur.description else []

    def as_user(self, uid: uuid.UUID, query: str, params: Any = None) -> list[Row]:
        return self.call("authenticated", self.user_claims(uid), query, params)

    def as_service(self, query: str, params: Any = None) -> list[Row]:
        return self.call("service_role", {"role": "service_role"}, query, params)

    def as_anon(self, query: str, params: Any = None) -> list[Row]:
        return self.call("anon", {"role": "anon"}, query, params)

    def admin(self, query: str, params: Any = None) -> list[Row]:
        """As the database owner (dashboard / migrations), outside any API role."""
        with self.conn.transaction():
            cur = self.conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    # -- shorthands for the RPCs ------------------------------------------------------------
    def enqueue(
        self, uid: uuid.UUID, kind: str = "rename_layers", payload: dict[str, Any] | None = None, **kw: Any
    ) -> Row:
        args = {"kind": kind, "payload": json.dumps(payload if payload is not None else {"n": 1}), **kw}
        named = ", ".join(f"{k} => %({k})s" for k in args)
        return self.as_user(uid, f"select * from enqueue_job({named})", args)[0]

    def claim(
        self, worker: str = "w1", max_jobs: int = 10, lease_seconds: int = 60, kinds: list[str] | None = None
    ) -> list[Row]:
        return self.as_service(
            "select * from claim_jobs(worker_id => %s, kinds => %s, max_jobs => %s, lease_seconds => %s)",
            (worker, kinds, max_jobs, lease_seconds),
        )

    def set_user_plan(self, uid: uuid.UUID, plan: str) -> Row:
        return self.as_service("select * from set_user_plan(user_id => %s, plan => %s)", (uid, plan))[0]

    def job(self, job_id: uuid.UUID) -> Row:
        return self.admin("select * from public.jobs where id = %s", (job_id,))[0]

    def count(self, query: str, params: Any = None) -> int:
        return int(self.admin(query, params)[0]["count"])
