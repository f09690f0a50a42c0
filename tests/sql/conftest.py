"""SQL tests: migrate a template database once per session, clone it for every test.

Each test gets its own database (``create database ... template jobs_template``), so tests are
independent and fast; the roles are cluster-wide and come from the platform bootstrap.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devstack import migrate
from devstack.sqlapi import SqlApi

TEMPLATE = "jobs_template"


@pytest.fixture(scope="session")
def template_db(pg_cluster: None) -> str:
    migrate.recreate_database(TEMPLATE)
    migrate.migrate(TEMPLATE, seed=False)
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
