"""postgres_changes through the real supabase-py AsyncClient (realtime-py, vsn 1.0.0).

"Not delivered" is always shown by ordering, never by waiting: a change that must not arrive is
followed by one that must, and the first thing received has to be the latter (delivery is in
commit order).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from psycopg import sql
from realtime.types import RealtimePostgresChangesListenEvent as Ev

from devstack.testing.callbacks import Collector, SubscribeStatus
from devstack.testing.fixtures import Stack
from devstack.tests.integration.realtime_support import (
    Fixture,
    db,
    insert_row,
    new_user,
    realtime_fixture,
    supabase_client,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fx(stack: Stack) -> Iterator[Fixture]:
    with realtime_fixture(stack, writer="00000000-0000-0000-0000-000000000000") as fixture:
        yield fixture


def _table(fx: Fixture) -> sql.Identifier:
    return sql.Identifier("public", fx.table)


async def _subscribe(client: Any, fx: Fixture, event: Ev, cb: Collector, *, filter: str | None = None) -> Any:
    status = SubscribeStatus()
    channel = client.channel(f"pg-{fx.table}-{id(cb)}")
    channel.on_postgres_changes(event, schema="public", table=fx.table, filter=filter, callback=cb)
    await channel.subscribe(status)
    assert await status.wait_for("SUBSCRIBED") is None
    return channel


async def test_insert_update_delete_payloads(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    service = Collector()
    async with supabase_client(stack, stack.server_key) as client:
        await _subscribe(client, fx, Ev.All, service)
        owner = new_user(stack).id
        row_id = await insert_row(stack, fx, owner, kind="x", n=1)
        # One step at a time: like hosted, INSERT/UPDATE on an RLS table are only delivered if the
        # row is still visible when checked, so a row deleted right away may never be announced.
        inserted = (await service.next())["data"]
        assert inserted["type"] == "INSERT" and inserted["schema"] == "public" and inserted["table"] == fx.table
        assert inserted["record"] == {"id": row_id, "owner": owner, "kind": "x", "n": 1, "body": None}
        assert "old_record" not in inserted and inserted["errors"] is None
        assert [c["name"] for c in inserted["columns"]] == ["id", "owner", "kind", "n", "body"]
        assert {"name": "id", "type": "int8"} in inserted["columns"]
        assert inserted["commit_timestamp"].endswith("Z") and "T" in inserted["commit_timestamp"]

        async with await db(stack) as conn:
            await conn.execute(sql.SQL("update {} set n = 2 where id = %s").format(_table(fx)), (row_id,))
            updated = (await service.next())["data"]
            await conn.execute(sql.SQL("delete from {} where id = %s").format(_table(fx)), (row_id,))
        assert updated["type"] == "UPDATE" and updated["record"]["n"] == 2
        assert updated["old_record"] == {"id": row_id}  # primary key only without REPLICA IDENTITY FULL

        deleted = (await service.next())["data"]
        assert deleted["type"] == "DELETE" and deleted["old_record"] == {"id": row_id} and "record" not in deleted


async def test_only_committed_changes_in_commit_order(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    got = Collector()
    async with supabase_client(stack, stack.server_key) as client:
        await _subscribe(client, fx, Ev.Insert, got)
        owner = new_user(stack).id
        insert = sql.SQL("insert into {} (owner, n) values (%s, %s)").format(_table(fx))
        async with await db(stack) as rolled_back, await db(stack) as slow, await db(stack) as fast:
            async with rolled_back.transaction(force_rollback=True):
                await rolled_back.execute(insert, (owner, 100))
            await slow.set_autocommit(False)
            await slow.execute(insert, (owner, 101))  # inserted first, committed last
            await fast.execute(insert, (owner, 102))
            assert (await got.next())["data"]["record"]["n"] == 102  # neither 100 (rolled back) nor 101 (open)
            await slow.commit()
            await fast.execute(insert, (owner, 103))
        assert [(await got.next())["data"]["record"]["n"] for _ in range(2)] == [101, 103]


async def test_filters_eq_in_gt(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    eq, in_, gt = Collector(), Collector(), Collector()
    async with supabase_client(stack, stack.server_key) as client:
        owner = new_user(stack).id
        await _subscribe(client, fx, Ev.Insert, eq, filter=f"owner=eq.{owner}")
        await _subscribe(client, fx, Ev.Insert, in_, filter="kind=in.(b,c)")
        await _subscribe(client, fx, Ev.Insert, gt, filter="n=gt.10")
        other = new_user(stack).id
        await insert_row(stack, fx, other, kind="a", n=1)  # matches none
        await insert_row(stack, fx, other, kind="b", n=11)  # in, gt
        await insert_row(stack, fx, owner, kind="c", n=5)  # eq, in
        assert (await eq.next())["data"]["record"]["n"] == 5
        assert [(await in_.next())["data"]["record"]["kind"] for _ in range(2)] == ["b", "c"]
        assert (await gt.next())["data"]["record"]["n"] == 11
        await insert_row(stack, fx, owner, kind="z", n=99)  # eq, gt: proves nothing else was queued
        assert (await eq.next())["data"]["record"]["n"] == 99
        assert (await gt.next())["data"]["record"]["n"] == 99


async def test_combined_and_negated_filters(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    got = Collector()
    async with supabase_client(stack, stack.server_key) as client:
        await _subscribe(client, fx, Ev.Insert, got, filter="n=gte.5,kind=not.in.(a,b)")
        owner = new_user(stack).id
        await insert_row(stack, fx, owner, kind="c", n=4)  # n too small
        await insert_row(stack, fx, owner, kind="b", n=9)  # kind excluded
        await insert_row(stack, fx, owner, kind="c", n=5)
        record = (await got.next())["data"]["record"]
        assert (record["kind"], record["n"]) == ("c", 5)


async def test_rls_per_subscriber(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    alice, bob = new_user(stack), new_user(stack)
    got_a, got_b = Collector(), Collector()
    async with supabase_client(stack, alice.token) as client_a, supabase_client(stack, bob.token) as client_b:
        await _subscribe(client_a, fx, Ev.Insert, got_a)
        await _subscribe(client_b, fx, Ev.Insert, got_b)
        await insert_row(stack, fx, alice.id, n=1)
        await insert_row(stack, fx, bob.id, n=2)
        await insert_row(stack, fx, alice.id, n=3)
        first_b = (await got_b.next())["data"]["record"]
        assert (first_b["owner"], first_b["n"]) == (bob.id, 2)  # Alice's earlier row never reached Bob
        seen_a = [(await got_a.next())["data"]["record"] for _ in range(2)]
        assert [(r["owner"], r["n"]) for r in seen_a] == [(alice.id, 1), (alice.id, 3)]  # nor Bob's row Alice


async def test_bindings_echo_and_ids_route_callbacks(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    inserts, updates = Collector(), Collector()
    async with supabase_client(stack, stack.server_key) as client:
        status = SubscribeStatus()
        channel = client.channel(f"two-bindings-{fx.table}")
        channel.on_postgres_changes(Ev.Insert, schema="public", table=fx.table, callback=inserts)
        channel.on_postgres_changes(Ev.Update, schema="public", table=fx.table, callback=updates)
        await channel.subscribe(status)
        assert await status.wait_for("SUBSCRIBED") is None
        ids = [cb.id for cb in channel.postgres_changes_callbacks]
        assert all(isinstance(i, int) for i in ids) and ids[0] != ids[1]
        owner = new_user(stack).id
        row_id = await insert_row(stack, fx, owner)
        async with await db(stack) as conn:
            await conn.execute(sql.SQL("update {} set n = 7 where id = %s").format(_table(fx)), (row_id,))
        assert (await inserts.next())["ids"] == [ids[0]]
        assert (await updates.next())["ids"] == [ids[1]]


async def test_system_message_and_bad_filter(flavoured_stack: Stack, fx: Fixture) -> None:
    stack = flavoured_stack
    async with supabase_client(stack, stack.server_key) as client:
        system = Collector()
        ok = client.channel(f"sys-ok-{fx.table}")
        ok.on_postgres_changes(Ev.All, schema="public", table=fx.table, callback=Collector()).on_system(system)
        await ok.subscribe()
        msg = await system.next()
        assert msg.message == "Subscribed to PostgreSQL" and msg.status == "ok"
        assert msg.extension == "postgres_changes" and msg.channel == f"sys-ok-{fx.table}"

        status = SubscribeStatus()
        bad = client.channel(f"sys-bad-{fx.table}")
        bad.on_postgres_changes(Ev.All, schema="public", table=fx.table, filter="n=foo.1", callback=Collector())
        await bad.subscribe(status)
        assert await status.wait_for("SUBSCRIBED") is None  # the join itself succeeds, as hosted
        err = await status.wait_for("CHANNEL_ERROR")  # then a system error message
        assert err is not None and "Error parsing `filter` params" in str(err)


async def test_table_outside_publication_is_reported(flavoured_stack: Stack) -> None:
    stack = flavoured_stack
    async with supabase_client(stack, stack.server_key) as client:
        status = SubscribeStatus()
        channel = client.channel("not-published")
        channel.on_postgres_changes(Ev.All, schema="public", table="no_such_table_xyz", callback=Collector())
        await channel.subscribe(status)
        assert await status.wait_for("SUBSCRIBED") is None
        err = await status.wait_for("CHANNEL_ERROR")
        assert "Unable to subscribe to changes with given parameters" in str(err)
