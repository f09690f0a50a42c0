"""Shared plumbing of the argument-bounds tests: a queue in every state, and "refused, nothing changed"."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import Row, SqlApi

# Every table an API call may write, as one comparable value.
STATE_SQL = """
select (select md5(coalesce(string_agg(j::text, '|' order by j.id), '')) from public.jobs j) as jobs,
       (select count(*) from public.job_events) as events,
       (select count(*) from realtime.messages) as messages,
       (select md5(coalesce(string_agg(d::text, '|' order by d.id), '')) from public.artifact_deletions d) as outbox,
       (select md5(coalesce(string_agg(c::text, '|' order by c.job_id), '')) from public.job_result_cache c) as cache
"""


@dataclass(frozen=True)
class Queue:
    """One user's jobs in the states the worker-side calls act on; w1 holds ``running``."""

    user: Any
    queued: Row
    running: Row
    finished: Row


def make_queue(api: SqlApi) -> Queue:
    user = api.create_user()
    running = api.enqueue(user, "generate_design", {"prompt": "run"})
    claimed = api.claim("w1", max_jobs=1, kinds=["generate_design"])
    assert [j["id"] for j in claimed] == [running["id"]]
    finished = api.enqueue(user, "generate_image", {"prompt": "done"})
    api.claim("w2", max_jobs=1, kinds=["generate_image"])
    api.as_service("select complete_job(%s, 'w2', '{}'::jsonb)", (finished["id"],))
    queued = api.enqueue(user, "rename_layers", {"layers": []})
    return Queue(user, api.job(queued["id"]), api.job(running["id"]), api.job(finished["id"]))


def state(api: SqlApi) -> Row:
    return api.admin(STATE_SQL)[0]


def assert_refused(api: SqlApi, call: Callable[[], object], field: str, sqlstate: str = "22023") -> str:
    """``call`` fails with ``sqlstate``, its message starts with ``field:``, and nothing was written."""
    before = state(api)
    with pytest.raises(psycopg.Error) as err:
        call()
    message = err.value.diag.message_primary or ""
    assert err.value.sqlstate == sqlstate, message
    if sqlstate == "22023":
        assert re.match(rf"{re.escape(field)}: ", message), message
        assert len(message) < 300, "the message must not echo a huge argument"
    assert state(api) == before
    return message


def enqueue_call(api: SqlApi, user: Any, **kw: Any) -> Callable[[], object]:
    args: dict[str, Any] = {"kind": "rename_layers", "payload": json.dumps({"n": 1}), **kw}
    named = ", ".join(f"{k} => %({k})s" for k in args)
    return lambda: api.as_user(user, f"select * from enqueue_job({named})", args)


def service_call(api: SqlApi, query: str, params: Any = None) -> Callable[[], object]:
    return lambda: api.as_service(query, params)


def nested(depth: int) -> str:
    """A JSON object whose objects/arrays nest ``depth`` levels (the object itself is level 1)."""
    if depth == 1:
        return "{}"
    return '{"a": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
