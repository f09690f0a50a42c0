"""The dashboard views refuse writes with a 4xx-mapped error, never PostgreSQL's 55000 (HTTP 500)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

VIEWS = ("job_stats", "active_jobs", "pending_jobs_queue")
WRITES: dict[str, Callable[[str], str]] = {
    "insert": lambda view: f"insert into public.{view} default values",
    "update": lambda view: f"update public.{view} set kind = 'x'",
    "delete": lambda view: f"delete from public.{view}",
}


def _running_and_queued(api: SqlApi) -> tuple[uuid.UUID, list[dict[str, Any]]]:
    """A user with one running and one queued job, so every view has rows to write to."""
    uid = api.create_user()
    api.enqueue(uid)
    api.claim(max_jobs=1)
    api.enqueue(uid)
    return uid, api.admin("select * from public.jobs order by id")


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_api_roles_get_a_4xx_error_and_nothing_changes(api: SqlApi, view: str, write: str) -> None:
    uid, before = _running_and_queued(api)
    # Users hold only SELECT (42501: 401/403); the service role's default privileges reach the
    # trigger (PT405: 405). Neither is 55000, which PostgREST answers with a 500.
    for call, sqlstate in ((lambda q: api.as_user(uid, q), "42501"), (api.as_anon, "42501"), (api.as_service, "PT405")):
        with pytest.raises(psycopg.Error) as err:
            call(WRITES[write](view))  # view, write: constants above
        assert err.value.sqlstate == sqlstate, (view, write, err.value)
    assert api.admin("select * from public.jobs order by id") == before


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("write", sorted(WRITES))
def test_the_owner_gets_a_read_only_error_and_nothing_changes(api: SqlApi, view: str, write: str) -> None:
    _, before = _running_and_queued(api)
    with pytest.raises(psycopg.Error) as err:
        api.admin(WRITES[write](view))
    assert err.value.sqlstate == "PT405"
    assert err.value.diag.message_primary == f"{view} is a read-only view"
    assert api.admin("select * from public.jobs order by id") == before
