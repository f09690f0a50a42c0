"""claim_jobs_or_park's wake_via: a parked worker's wake-up travels only by the transport it
receives (a Realtime broadcast for a worker on the REST API, a NOTIFY for one on Postgres), so an
enqueue neither writes a realtime.messages row nobody reads nor takes the cluster-wide notify
lock at its commit for a worker that is not listening."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from devstack import paths
from devstack.sqlapi import SqlApi
from tests.sql.test_handoffs import decoded, messages, park, status

pytestmark = pytest.mark.sql


def wake_notes(dbname: str, api: SqlApi, worker: str, enqueue: Any) -> list[dict[str, Any]]:
    """The NOTIFY messages ``worker``'s channel receives while ``enqueue()`` runs."""
    channel = api.admin("select private.wake_channel(%s) as c", (worker,))[0]["c"]
    with psycopg.connect(paths.database_url(dbname), autocommit=True) as listener:
        listener.execute(f'listen "{channel}"')
        enqueue()
        # A NOTIFY is delivered at its transaction's commit, before enqueue() returned.
        notes = list(listener.notifies(timeout=0.5))
    return [decoded(json.loads(n.payload)) for n in notes]


@pytest.mark.parametrize("handoffs", [True, False])
@pytest.mark.parametrize("via", ["realtime", "notify", None])
def test_the_wake_up_travels_only_by_the_workers_transport(
    api: SqlApi, dbname: str, via: str | None, handoffs: bool
) -> None:
    uid = api.create_user()
    park(api, "w1", max_jobs=2, handoffs=handoffs, wake_via=via)
    assert api.admin("select wake_via from public.worker_wakeups where worker_id = 'w1'") == [{"wake_via": via}]
    jobs: list[Any] = []
    notes = wake_notes(dbname, api, "w1", lambda: jobs.append(api.enqueue(uid)))
    broadcasts = messages(api, "w1")
    assert status(api, jobs[0]["id"])[0] == ("running" if handoffs else "queued")
    sent = broadcasts or notes
    assert len(sent) == 1 and set(sent[0]) >= {"kind", "status", "run_at"}
    if handoffs:
        assert [row["id"] for row in sent[0]["jobs"]] == [str(jobs[0]["id"])]
    assert len(broadcasts) == (0 if via == "notify" else 1)
    assert len(notes) == (0 if via == "realtime" else 1)
    if via is None:
        assert notes == broadcasts  # the same message on both paths


def test_parking_again_takes_the_new_transport(api: SqlApi, dbname: str) -> None:
    uid = api.create_user()
    park(api, "w1", handoffs=False, wake_via="notify")
    park(api, "w1", handoffs=False, wake_via="realtime")
    notes = wake_notes(dbname, api, "w1", lambda: api.enqueue(uid))
    assert notes == [] and len(messages(api, "w1")) == 1


def test_a_wake_up_for_a_worker_another_statement_holds_uses_its_transport(api: SqlApi, dbname: str) -> None:
    # The second of two concurrent enqueues cannot lock w1's entry and wakes it without it (the
    # loop after the candidates): that message follows wake_via too.
    uid = api.create_user()
    park(api, "w1", max_jobs=4, wake_via="notify")
    insert = "insert into public.jobs (user_id, kind, max_attempts) values (%s, 'rename_layers', 3) returning id"

    def both() -> None:
        with psycopg.connect(paths.database_url(dbname)) as a, psycopg.connect(paths.database_url(dbname)) as b:
            a.execute(insert, (uid,))
            b.execute(insert, (uid,))
            b.commit()
            a.commit()

    notes = wake_notes(dbname, api, "w1", both)
    assert messages(api, "w1") == []
    assert sorted("jobs" in n for n in notes) == [False, True]  # the plain wake-up and the hand-off
