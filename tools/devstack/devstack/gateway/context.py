"""What every gateway module shares: settings, keys and database pools."""

from __future__ import annotations

import os
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from devstack import keys, paths, signing_keys
from devstack.gateway.key_set import LiveKeySet
from devstack.gateway.pg import RoleSettings

IDLE_CHECK_SECONDS = 2.0
SERVER_TIMING_VARIABLE = "PGRST_SERVER_TIMING_ENABLED"  # PostgREST's name for the same setting
AUTHENTICATOR_URL = f"postgresql://authenticator:authenticator@{paths.HOST}:{paths.PG_PORT}/{{db}}"


@dataclass
class Settings:
    jwt_secret: str
    anon_key: str
    service_role_key: str
    database: str = paths.DATABASE
    storage_dir: Path = paths.STATE / "storage"
    max_body_bytes: int = 10 * 1024 * 1024
    jwt_expiry_seconds: int = 3600
    # Where the opaque API keys are recorded (the gateway rereads it: see api_keys.KeyRegistry).
    secrets_file: Path = paths.SECRETS_FILE
    signing: LiveKeySet = field(kw_only=True)  # what signs and verifies JWTs (key_set.py)
    # PostgREST's server-timing-enabled (PGRST_SERVER_TIMING_ENABLED): a Server-Timing header on REST
    # answers. Off by default, as in PostgREST; the benchmarks read the enqueue's transaction from it.
    server_timing: bool = field(default=False, kw_only=True)

    @classmethod
    def from_stack(cls, database: str = paths.DATABASE) -> Settings:
        """The stack's keys; ``DEVSTACK_JWT`` (read now) picks ES256 signing keys or the legacy secret."""
        k = keys.load_or_create()
        signing = LiveKeySet(k.jwt_secret, signing_keys.mode())
        timing = os.environ.get(SERVER_TIMING_VARIABLE, "false").strip().lower()
        if timing not in ("true", "false"):
            raise ValueError(f"{SERVER_TIMING_VARIABLE} must be true or false, not {timing!r}")
        return cls(
            k.jwt_secret,
            k.anon_key,
            k.service_role_key,
            database=database,
            signing=signing,
            server_timing=timing == "true",
        )

    @property
    def authenticator_url(self) -> str:
        return AUTHENTICATOR_URL.format(db=self.database)

    @property
    def admin_url(self) -> str:
        return paths.admin_url(self.database)


class IdleCheck:
    """A pool's check/reset pair: test a connection with a round trip only if it sat idle in the
    pool for more than IDLE_CHECK_SECONDS. A check on every checkout was one of five round trips
    per REST call (bench/FIXES.md); a connection returned moments ago is almost surely alive, and
    if a restart broke it since, that one request fails and the pool drops the connection."""

    def __init__(self) -> None:
        self._returned: weakref.WeakKeyDictionary[AsyncConnection[Any], float] = weakref.WeakKeyDictionary()

    async def check(self, conn: AsyncConnection[Any]) -> None:
        if time.monotonic() - self._returned.get(conn, float("-inf")) > IDLE_CHECK_SECONDS:
            await AsyncConnectionPool.check_connection(conn)

    async def returned(self, conn: AsyncConnection[Any]) -> None:
        self._returned[conn] = time.monotonic()


@dataclass
class GatewayContext:
    """Created at startup; ``api`` runs requests as the JWT's role, ``admin`` is the platform's own access."""

    settings: Settings
    api: AsyncConnectionPool = field(init=False)
    admin: AsyncConnectionPool = field(init=False)
    role_settings: RoleSettings = field(init=False)

    def __post_init__(self) -> None:
        # check: a connection a database restart broke is replaced before a request gets it,
        # instead of failing one request per dead pooled connection.
        api_check, admin_check = IdleCheck(), IdleCheck()
        self.api = AsyncConnectionPool(
            self.settings.authenticator_url,
            min_size=2,
            max_size=20,
            open=False,
            check=api_check.check,
            reset=api_check.returned,
        )
        self.admin = AsyncConnectionPool(
            self.settings.admin_url,
            min_size=1,
            max_size=10,
            open=False,
            check=admin_check.check,
            reset=admin_check.returned,
        )
        self.role_settings = RoleSettings(self.admin)

    async def open(self) -> None:
        await self.api.open(wait=True)
        await self.admin.open(wait=True)

    async def close(self) -> None:
        await self.api.close()
        await self.admin.close()
