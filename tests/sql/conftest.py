"""SQL tests: migrate a template database once per session, clone it for every test.

Each test gets its own database (``create database ... template jobs_template``), so tests are
independent and fast; the roles are cluster-wide and come from the platform bootstrap. The suite
runs on whichever cluster ``DEVSTACK_PG_VERSION`` selects; ``scripts/test.sh`` runs it on 15 and 17.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devstack import migrate
from devstack.sqlapi import SqlApi

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
