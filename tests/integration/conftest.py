"""Integration fixtures: a Supabase API to talk to.

If SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY (and DATABASE_URL, for fixture
setup) are set, the suites run against that stack unchanged — a `supabase start` stack included.
Otherwise a gateway is started in-process on a free loopback port against the devstack database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from devstack import migrate, paths
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from tests.integration.servers import Server


@dataclass(frozen=True)
class Stack:
    url: str
    anon_key: str
    service_role_key: str
    database_url: str
    jwt_secret: str | None  # unknown for an external stack


@pytest.fixture(scope="session")
def stack(pg_cluster: None) -> Iterator[Stack]:
    if os.environ.get("SUPABASE_URL"):
        yield Stack(
            url=os.environ["SUPABASE_URL"].rstrip("/"),
            anon_key=os.environ["SUPABASE_ANON_KEY"],
            service_role_key=os.environ["SUPABASE_SERVICE_ROLE_KEY"],
            database_url=os.environ.get("DATABASE_URL", paths.database_url()),
            jwt_secret=os.environ.get("SUPABASE_JWT_SECRET"),
        )
        return
    migrate.migrate()
    settings = Settings.from_stack()
    with Server(create_app(settings)) as server:
        httpx.get(f"{server.url}/health", timeout=10).raise_for_status()
        yield Stack(
            url=server.url,
            anon_key=settings.anon_key,
            service_role_key=settings.service_role_key,
            database_url=paths.database_url(),
            jwt_secret=settings.jwt_secret,
        )
