"""devstack's pytest plugin: the fixtures the product's tests and devstack's own tests share.

Loaded by the repository's root ``conftest.py`` (``pytest_plugins``), so neither test tree imports
the other.

- ``pg_cluster``: the project-local PostgreSQL cluster, started once per session (idempotent), on
  whichever build ``DEVSTACK_PG_VERSION`` selects (``scripts/test.sh`` runs the SQL suites on 15
  and 17).
- SQL (``template_db``, ``dbname``, ``api``): the migrations are applied to a template database
  once per session and every test gets its own clone (``create database ... template``), so tests
  are independent and fast; roles are cluster-wide and come from the platform bootstrap.
- The Supabase API (``stack``, ``flavoured_stack``): if SUPABASE_URL, SUPABASE_ANON_KEY,
  SUPABASE_SERVICE_ROLE_KEY (and DATABASE_URL, for fixture setup) are set, the suites run against
  that stack unchanged — a `supabase start` stack included; SUPABASE_PUBLISHABLE_KEY and
  SUPABASE_SECRET_KEY add the opaque keys (the "new" key flavour runs only with them). Otherwise a
  gateway is started in-process on a free loopback port against the devstack database.

Key flavours: ``stack`` always carries the legacy JWT keys in ``anon_key``/``service_role_key``
(many suites test JWT behaviour itself). ``flavoured_stack`` is ``stack`` parametrized over
``legacy`` and ``new``: its ``client_key``/``server_key`` are the anon/service_role JWTs or the
publishable/secret keys, which the supabase-py conformance fixtures create their clients with.
Modules that need every test in both flavours override ``stack`` (devstack's Auth and Storage
suites do, through ``auth_helpers.stack_in_both_flavours``).
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import httpx
import pytest

from devstack import keys, migrate, paths, pgcluster
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from devstack.sqlapi import SqlApi
from devstack.testing.servers import Server


@pytest.fixture(scope="session")
def pg_cluster() -> None:
    """Ensure the project-local cluster is installed, initialized and running (idempotent)."""
    pgcluster.ensure_packages()
    pgcluster.init()
    pgcluster.start()


TEMPLATE = "jobs_template"


@pytest.fixture(scope="session")
def template_migrations(pg_cluster: None) -> list[migrate.Applied]:
    """The migrations applied to the template, with the NOTICEs each raised."""
    migrate.recreate_database(TEMPLATE)
    return migrate.migrate(TEMPLATE, seed=False)


@pytest.fixture(scope="session")
def template_db(template_migrations: list[migrate.Applied]) -> str:
    return TEMPLATE


@pytest.fixture
def dbname(template_db: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:12]}"
    migrate.recreate_database(name, template=template_db)
    try:
        yield name
    finally:
        migrate.drop_database(name)


@pytest.fixture
def api(dbname: str) -> Iterator[SqlApi]:
    with SqlApi(dbname) as a:
        yield a


KeyFlavour = Literal["legacy", "new"]
KEY_FLAVOURS: tuple[KeyFlavour, ...] = ("legacy", "new")


@dataclass(frozen=True)
class Stack:
    url: str
    anon_key: str
    service_role_key: str
    database_url: str
    jwt_secret: str | None  # unknown for an external stack
    publishable_key: str | None = None  # unknown for an external stack without SUPABASE_PUBLISHABLE_KEY
    secret_key: str | None = None
    flavour: KeyFlavour = "legacy"
    local: bool = False  # the in-process devstack gateway (keys can be made and revoked)

    @property
    def client_key(self) -> str:
        """The key a browser/plugin client is created with: publishable, or the legacy anon JWT."""
        key = self.publishable_key if self.flavour == "new" else self.anon_key
        assert key is not None
        return key

    @property
    def server_key(self) -> str:
        """The key a server (the worker) is created with: secret, or the legacy service_role JWT."""
        key = self.secret_key if self.flavour == "new" else self.service_role_key
        assert key is not None
        return key

    def with_flavour(self, flavour: KeyFlavour) -> Stack:
        if flavour == "new" and not (self.publishable_key and self.secret_key):
            pytest.skip("the new key flavour needs SUPABASE_PUBLISHABLE_KEY and SUPABASE_SECRET_KEY")
        return dataclasses.replace(self, flavour=flavour)


@pytest.fixture(scope="session")
def stack(pg_cluster: None) -> Iterator[Stack]:
    if os.environ.get("SUPABASE_URL"):
        yield Stack(
            url=os.environ["SUPABASE_URL"].rstrip("/"),
            anon_key=os.environ["SUPABASE_ANON_KEY"],
            service_role_key=os.environ["SUPABASE_SERVICE_ROLE_KEY"],
            database_url=os.environ.get("DATABASE_URL", paths.database_url()),
            jwt_secret=os.environ.get("SUPABASE_JWT_SECRET"),
            publishable_key=os.environ.get("SUPABASE_PUBLISHABLE_KEY"),
            secret_key=os.environ.get("SUPABASE_SECRET_KEY"),
        )
        return
    migrate.migrate()
    settings = Settings.from_stack()
    stack_keys = keys.load_or_create()
    with Server(create_app(settings)) as server:
        httpx.get(f"{server.url}/health", timeout=10).raise_for_status()
        yield Stack(
            url=server.url,
            anon_key=settings.anon_key,
            service_role_key=settings.service_role_key,
            database_url=paths.database_url(),
            jwt_secret=settings.jwt_secret,
            publishable_key=stack_keys.publishable_key,
            secret_key=stack_keys.secret_key,
            local=True,
        )


@pytest.fixture(params=KEY_FLAVOURS)
def flavoured_stack(stack: Stack, request: pytest.FixtureRequest) -> Stack:
    flavour: KeyFlavour = request.param
    return stack.with_flavour(flavour)
