"""What a chaos run points at (``Target``): the local devstack (a scratch database with an audit
trigger, a restartable gateway with the test-only fault control on, every fault available), or
a staging stack from SUPABASE_URL and keys (the faults that need its database, gateway or
Realtime nodes are skipped)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from bench import processes
from bench.databases import drop
from bench.support import ROOT
from devstack import migrate, paths, pgcluster
from devstack.gateway.context import Settings
from devstack.paths import free_port
from devstack.sqlapi import SqlApi

TOKEN_TTL_S = 3 * 3600

# Every insert and every change of status, attempts or result of a jobs row, with the time of
# the change: the history the checker reads. Installed in the run's scratch database only.
AUDIT_SQL = """
create schema chaos_audit;
create table chaos_audit.transitions (
  id bigint generated always as identity primary key,
  job_id uuid not null,
  at timestamptz not null default clock_timestamp(),
  old_status text,
  new_status text not null,
  old_attempts integer not null,
  new_attempts integer not null,
  result_written boolean not null,
  worker_id text
);
-- Security definer: the API roles that change jobs hold no rights on the audit schema.
create function chaos_audit.record() returns trigger language plpgsql security definer set search_path = '' as $$
begin
  insert into chaos_audit.transitions
    (job_id, old_status, new_status, old_attempts, new_attempts, result_written, worker_id)
  values (new.id, case when tg_op = 'UPDATE' then old.status end, new.status,
          case when tg_op = 'UPDATE' then old.attempts else new.attempts end, new.attempts,
          new.result is not null and (tg_op = 'INSERT' or new.result is distinct from old.result), new.worker_id);
  return null;
end $$;
create trigger chaos_audit after insert or update of status, attempts, result on public.jobs
  for each row execute function chaos_audit.record();
"""


@dataclass
class Target:
    url: str
    anon_key: str
    service_key: str
    local: bool
    database: str | None = None  # local only: the scratch database (history from the audit trigger)
    gateway_proc: subprocess.Popen[bytes] | None = None
    log_dir: Path = field(default_factory=lambda: ROOT / "bench" / "results")
    restarts: int = 0

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start_gateway(self) -> None:
        assert self.database is not None
        command = [sys.executable, "-m", "devstack.gateway", "--database", self.database, "--port", str(self.port)]
        env = {**os.environ, "DEVSTACK_FAULT_CONTROL": "1"}  # the socket-drop control, loopback only
        with (self.log_dir / "gateway.log").open("ab") as out:
            self.gateway_proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        processes.wait_http(f"{self.url}/health", self.gateway_proc, "gateway", self.log_dir / "gateway.log", 60)

    def stop_gateway(self) -> None:
        if self.gateway_proc is not None:
            processes.stop(self.gateway_proc, grace_s=15)
            self.gateway_proc = None

    def restart_gateway(self) -> None:
        self.stop_gateway()
        time.sleep(1.0)  # clients see connection refused meanwhile
        self.start_gateway()

    def restart_postgres(self) -> None:
        pgcluster.stop()  # -m fast: every session is terminated, as in a database restart
        time.sleep(1.0)
        pgcluster.start()

    def drop_sockets(self, role: str) -> int:
        response = httpx.post(
            f"{self.url}/realtime/v1/_devstack/drop",
            json={"role": role},
            headers={"apikey": self.service_key, "Authorization": f"Bearer {self.service_key}"},
            timeout=10,
        )
        response.raise_for_status()
        return int(response.json()["dropped"])

    def create_users(self, count: int) -> dict[str, str]:
        """``count`` users of the project: id → access token."""
        if self.database is not None:
            secret = Settings.from_stack(database=self.database).jwt_secret
            with SqlApi(self.database) as api:
                ids = [str(api.create_user()) for _ in range(count)]
            now = int(time.time())
            return {
                uid: jwt.encode(
                    {"sub": uid, "role": "authenticated", "aud": "authenticated", "iat": now, "exp": now + TOKEN_TTL_S},
                    secret,
                    "HS256",
                )
                for uid in ids
            }
        return _staging_users(self, count)

    def worker_env(self, worker_id: str, port: int, plan_env: dict[str, str], models: str) -> dict[str, str]:
        variables = {
            "WORKER_STORE": "supabase",
            "SUPABASE_URL": self.url,
            # The worker reads a new-format secret key from its own variable.
            ("SUPABASE_SECRET_KEY" if self.service_key.startswith("sb_secret_") else "SUPABASE_SERVICE_ROLE_KEY"): (
                self.service_key
            ),
            "ANTHROPIC_API_KEY": "chaos-dummy",
            "ANTHROPIC_BASE_URL": models,
            "GEMINI_API_KEY": "chaos-dummy",
            "GEMINI_BASE_URL": models,
            "WORKER_ID": worker_id,
            "PORT": str(port),
            "HEALTH_HOST": paths.HOST,
            "LOG_LEVEL": "INFO",  # the logs stay in .devstack/chaos/<stamp> for a post-mortem
            **plan_env,
        }
        if self.database is not None:
            variables["DATABASE_URL"] = paths.database_url(self.database)
        return {**processes.clean_env(), **variables}


def _staging_users(target: Target, count: int) -> dict[str, str]:
    """Users made through the Auth admin API (service key), signed in with a password: the tokens
    are the project's own. They are left in the project, named chaos-<random>@example.com."""
    out: dict[str, str] = {}
    admin = {"apikey": target.service_key, "Authorization": f"Bearer {target.service_key}"}
    public = {"apikey": target.anon_key}
    with httpx.Client(base_url=target.url, timeout=30) as http:
        for _ in range(count):
            email, password = f"chaos-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18)
            made = http.post(
                "/auth/v1/admin/users",
                headers=admin,
                json={"email": email, "password": password, "email_confirm": True},
            )
            if made.status_code == 404:  # no admin API (the devstack gateway): a plain sign-up
                made = http.post("/auth/v1/signup", headers=public, json={"email": email, "password": password})
            made.raise_for_status()
            grant = http.post(
                "/auth/v1/token",
                params={"grant_type": "password"},
                headers=public,
                json={"email": email, "password": password},
            )
            grant.raise_for_status()
            body: dict[str, Any] = grant.json()
            out[str(body["user"]["id"])] = str(body["access_token"])
    return out


def staging_from_env() -> Target | None:
    """A Target from SUPABASE_URL, SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY (or
    SUPABASE_SECRET_KEY); None when SUPABASE_URL is unset."""
    url = os.environ.get("SUPABASE_URL", "").strip().rstrip("/")
    if not url:
        return None
    anon = os.environ.get("SUPABASE_ANON_KEY", "").strip() or os.environ.get("SUPABASE_PUBLISHABLE_KEY", "").strip()
    service = (
        os.environ.get("SUPABASE_SERVICE_ROLE_KEY", "").strip() or os.environ.get("SUPABASE_SECRET_KEY", "").strip()
    )
    missing = [n for n, v in (("SUPABASE_ANON_KEY", anon), ("SUPABASE_SERVICE_ROLE_KEY", service)) if not v]
    if missing:
        raise SystemExit(f"SUPABASE_URL is set, so {' and '.join(missing)} must be set too (the staging stack's keys)")
    return Target(url, anon, service, local=False)


@contextmanager
def local_target(log_dir: Path) -> Iterator[Target]:
    """A scratch database (migrated, audited) on the devstack cluster and a gateway for it."""
    name = f"bench_chaos_{secrets.token_hex(4)}"
    migrate.recreate_database(name)
    try:
        migrate.migrate(name, seed=False)
        with migrate.admin_connection(name) as admin:
            admin.execute(AUDIT_SQL)
        settings = Settings.from_stack(database=name)
        target = Target(
            f"http://{paths.HOST}:{free_port()}",
            settings.anon_key,
            settings.service_role_key,
            True,
            name,
            log_dir=log_dir,
        )
        target.start_gateway()
        try:
            yield target
        finally:
            target.stop_gateway()
    finally:
        if not pgcluster.status().running:
            pgcluster.start()
        drop(name)
