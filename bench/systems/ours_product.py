"""Our systems' side of the capabilities in capabilities.py: plugin users with their own JWTs,
job status changes made as production makes them (notify), and the real `python -m worker run`
against model endpoints (ai). Mixed into ours.OursSystem."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
from psycopg.types.json import Jsonb

from bench import processes
from bench.stats import epoch
from bench.systems.capabilities import JobLifecycle, StatusChange
from devstack import migrate, paths
from devstack.gateway.context import Settings
from devstack.sqlapi import SqlApi
from worker.adapters.sql_queries import queries

TOKEN_TTL_S = 3600
LIFECYCLE_WORKER_ID = "bench-notify"


class SqlLifecycle:
    """JobLifecycle on psycopg: ``enqueue_job`` as the user with PostgREST's request GUCs, then
    ``claim_jobs`` and ``complete_job`` as service_role with the worker adapter's own statements."""

    def __init__(self, api: SqlApi, user_id: str) -> None:
        self.api = api
        self.user = uuid.UUID(user_id)
        self.named = queries()  # worker/adapters/queries.sql, as the psycopg adapter runs them

    def enqueue(self, kind: str, payload: dict[str, Any]) -> StatusChange:
        row = self.api.enqueue(self.user, kind, payload)
        t = time.time()
        return StatusChange(str(row["id"]), str(row["status"]), t, epoch(row["updated_at"]))

    def claim(self, job_id: str, kind: str) -> StatusChange:
        args = {"worker_id": LIFECYCLE_WORKER_ID, "kinds": [kind], "max_jobs": 1, "lease_seconds": 60}
        claimed = [json.loads(r["job"]) for r in self.api.as_service(self.named["claim_jobs"], args)]  # JSON text
        t = time.time()
        if [str(r["id"]) for r in claimed] != [job_id]:
            raise RuntimeError(f"claim_jobs returned {[r['id'] for r in claimed]}, expected [{job_id}]")
        return StatusChange(job_id, str(claimed[0]["status"]), t, epoch(claimed[0]["updated_at"]))

    def complete(self, job_id: str, result: dict[str, Any]) -> StatusChange:
        args = {"job_id": job_id, "worker_id": LIFECYCLE_WORKER_ID, "result": Jsonb(result)}
        done = [json.loads(r["job"]) for r in self.api.as_service(self.named["complete_job"], args)]
        t = time.time()
        return StatusChange(job_id, str(done[0]["status"]), t, epoch(done[0]["updated_at"]))


class OursProduct:
    """ClientAccess, Notifying and RunsAiWorker for OursSystem (which sets ``store``)."""

    store: str

    def create_users(self, database: str, count: int) -> list[str]:
        with SqlApi(database) as api:
            return [str(api.create_user()) for _ in range(count)]

    def anon_key(self, database: str) -> str:
        return Settings.from_stack(database=database).anon_key

    def user_token(self, database: str, user_id: str) -> str:
        now = int(time.time())
        claims = {"sub": user_id, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + TOKEN_TTL_S}
        return jwt.encode(claims, Settings.from_stack(database=database).jwt_secret, "HS256")

    def status_topic(self, user_id: str) -> str:
        return f"jobs:{user_id}"  # the migration's trigger: realtime.send(..., 'jobs:' || user_id, private)

    def prepare_notifications(self, database: str, kind: str) -> None:
        migrate.migrate(database, seed=False)
        # One user makes every change: lift the kind's per-user rate limit (10/min), here only.
        with SqlApi(database) as api:
            api.admin("update public.job_kinds set rate_limit_per_minute = 100000 where kind = %s", (kind,))
            # ...and its budget reservation: thousands of queued jobs would reserve past any plan's budget.
            api.admin("update public.job_kinds set estimated_cost_usd = 0 where kind = %s", (kind,))

    @contextmanager
    def lifecycle(self, database: str, user_id: str) -> Iterator[JobLifecycle]:
        with SqlApi(database) as api:
            yield SqlLifecycle(api, user_id)

    def prepare_product(self, database: str) -> None:
        migrate.migrate(database, seed=False)

    def ai_worker(
        self,
        database: str,
        gateway: str,
        models: str,
        *,
        port: int,
        concurrency: int,
        provider_concurrency: int,
        artifacts: Path,
    ) -> tuple[list[str], dict[str, str]]:
        variables = {
            "WORKER_STORE": self.store,
            "SUPABASE_URL": gateway,
            "SUPABASE_SERVICE_ROLE_KEY": Settings.from_stack(database=database).service_role_key,
            "DATABASE_URL": paths.database_url(database),
            "ARTIFACTS_DIR": str(artifacts),  # the postgres store only
            "ANTHROPIC_API_KEY": "bench-dummy",
            "ANTHROPIC_BASE_URL": models,
            "GEMINI_API_KEY": "bench-dummy",
            "GEMINI_BASE_URL": models,
            "WORKER_ID": f"bench-aiw-{uuid.uuid4().hex[:6]}",
            "WORKER_CONCURRENCY": str(concurrency),
            "PROVIDER_CONCURRENCY": str(provider_concurrency),
            "PORT": str(port),
            "HEALTH_HOST": paths.HOST,  # PORT alone would mean every interface (Railway's case)
            "LOG_LEVEL": "WARNING",
            "DRAIN_TIMEOUT_SECONDS": "10",
        }
        # A/B runs: BENCH_PROVIDER_MAX_WAIT_SECONDS=0 defers every job that meets a cooldown (as before
        # the chain waited short ones out).
        if (max_wait := os.environ.get("BENCH_PROVIDER_MAX_WAIT_SECONDS")) is not None:
            variables["PROVIDER_MAX_WAIT_SECONDS"] = max_wait
        return [sys.executable, "-m", "worker", "run"], {**processes.clean_env(), **variables}
