"""realtime.messages as hosted lays it out: partitioned by day, yesterday .. today+3 kept ready,
partitions older than 72 h dropped (docs/hosted-platform.md §3)."""

from __future__ import annotations

import datetime as dt

import psycopg
import pytest

from devstack import migrate
from devstack.sqlapi import SqlApi

pytestmark = pytest.mark.sql

PARTITIONS = """
select c.relname from pg_inherits i join pg_class c on c.oid = i.inhrelid
where i.inhparent = 'realtime.messages'::regclass order by 1
"""


def _name(day: dt.date) -> str:
    return "messages_" + day.strftime("%Y_%m_%d")


def _today(api: SqlApi) -> dt.date:
    day: dt.date = api.admin("select current_date as d")[0]["d"]
    return day


def test_partitions_from_yesterday_to_today_plus_three(api: SqlApi) -> None:
    today = _today(api)
    names = [r["relname"] for r in api.admin(PARTITIONS)]
    assert names == [_name(today + dt.timedelta(days=n)) for n in range(-1, 4)]


def test_a_broadcast_lands_in_todays_partition(api: SqlApi) -> None:
    api.admin("select realtime.send('{\"n\": 1}'::jsonb, 'e', 'partition-test', false)")
    rows = api.admin("select tableoid::regclass::text as part from realtime.messages where topic = 'partition-test'")
    assert rows == [{"part": f"realtime.{_name(_today(api))}"}]


def test_a_day_without_a_partition_is_refused(api: SqlApi) -> None:
    with pytest.raises(psycopg.Error) as err:
        api.admin(
            "insert into realtime.messages (topic, extension, inserted_at)"
            " values ('t', 'broadcast', now() + interval '30 days')"
        )
    assert err.value.sqlstate == "23514"  # no partition of relation "messages" found for row


def test_old_partitions_are_dropped_and_missing_ones_made(api: SqlApi) -> None:
    today = _today(api)
    old, kept = today - dt.timedelta(days=5), today - dt.timedelta(days=1)
    # DDL takes no bound parameters; the values are dates we made. Partitions are the platform's
    # (postgres has no CREATE on schema realtime, as on hosted): made as supabase_admin.
    with migrate.admin_connection(api.dbname) as admin:
        admin.execute(
            f"create table realtime.{_name(old)} partition of realtime.messages"
            f" for values from ('{old.isoformat()}') to ('{(old + dt.timedelta(days=1)).isoformat()}')"
        )
        admin.execute(f"drop table realtime.{_name(today + dt.timedelta(days=3))}")
        admin.execute("select realtime.devstack_maintain_partitions()")  # what the gateway's janitor runs
    names = [r["relname"] for r in api.admin(PARTITIONS)]
    assert _name(old) not in names
    assert names[0] == _name(kept)
    assert names[-1] == _name(today + dt.timedelta(days=3))
