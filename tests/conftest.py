"""Shared test plumbing: the local PostgreSQL cluster is started once per session."""

from __future__ import annotations

import pytest

from devstack import pgcluster


@pytest.fixture(scope="session")
def pg_cluster() -> None:
    """Ensure the project-local cluster is installed, initialized and running (idempotent)."""
    pgcluster.ensure_packages()
    pgcluster.init()
    pgcluster.start()
