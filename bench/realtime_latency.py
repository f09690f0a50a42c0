"""Realtime latency: commit → subscriber callback, for the two flows the product depends on.

1. postgres_changes: a service-role subscriber (the worker) on INSERTs of a jobs-like table
   with RLS;
2. Broadcast from Database: a user on its private topic ``<prefix>:<uid>`` (authorized by RLS on
   realtime.messages) receiving what an AFTER INSERT trigger sends with realtime.send().

Each change is committed, then awaited before the next one (no queueing in the numbers).
Latency = callback time − time the commit returned to the writer. Uses SUPABASE_URL,
SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_JWT_SECRET and DATABASE_URL when set;
otherwise starts a gateway process on a free loopback port against the devstack database.

    .venv/bin/python bench/realtime_latency.py [--count 500]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jwt
import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from realtime.types import RealtimeChannelOptions  # noqa: E402
from realtime.types import RealtimePostgresChangesListenEvent as Ev  # noqa: E402

from bench.support import gateway_process, summary  # noqa: E402
from supabase import acreate_client  # noqa: E402
from tests.integration.conftest import Stack  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "realtime_latency.json"
GOAL_P99_MS = 50.0
WAIT_S = 5.0  # per change
DEADLINE_S = 180.0  # whole run


@contextmanager
def stack_under_test() -> Iterator[Stack]:
    if os.environ.get("SUPABASE_URL"):
        yield Stack(
            url=os.environ["SUPABASE_URL"].rstrip("/"),
            anon_key=os.environ["SUPABASE_ANON_KEY"],
            service_role_key=os.environ["SUPABASE_SERVICE_ROLE_KEY"],
            database_url=os.environ["DATABASE_URL"],
            jwt_secret=os.environ.get("SUPABASE_JWT_SECRET"),
        )
        return
    from devstack import migrate, paths
    from devstack.gateway.context import Settings

    migrate.migrate()
    settings = Settings.from_stack()
    with gateway_process() as url:
        yield Stack(url, settings.anon_key, settings.service_role_key, paths.database_url(), settings.jwt_secret)


@contextmanager
def bench_tables(database_url: str) -> Iterator[tuple[str, str]]:
    suffix = secrets.token_hex(4)
    table, prefix = f"bench_rt_{suffix}", f"bench-jobs-{suffix}"
    t = sql.Identifier("public", table)
    fn = sql.Identifier("public", f"{table}_notify")
    policy = sql.Identifier(f"bench_rt_read_{suffix}")
    setup = [
        sql.SQL(
            "create table {} (id bigint generated always as identity primary key, owner uuid not null, seq int)"
        ).format(t),
        sql.SQL("alter table {} enable row level security").format(t),
        sql.SQL("create policy owner_read on {} for select to authenticated using (owner = auth.uid())").format(t),
        sql.SQL("alter publication supabase_realtime add table {}").format(t),
        sql.SQL(
            "create function {}() returns trigger language plpgsql security definer as $$ begin "
            "perform realtime.send(jsonb_build_object('seq', new.seq), 'job', {} || ':' || new.owner::text, true); "
            "return new; end $$"
        ).format(fn, sql.Literal(prefix)),
        sql.SQL("create trigger notify_owner after insert on {} for each row execute function {}()").format(t, fn),
        sql.SQL(
            "create policy {} on realtime.messages for select to authenticated "
            "using ((select realtime.topic()) = {} || ':' || auth.uid()::text)"
        ).format(policy, sql.Literal(prefix)),
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        for stmt in setup:
            conn.execute(stmt)
    try:
        yield table, prefix
    finally:
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop policy if exists {} on realtime.messages").format(policy))
            conn.execute("delete from realtime.messages where topic like %s", (prefix + ":%",))
            conn.execute(sql.SQL("drop table if exists {}").format(t))
            conn.execute(sql.SQL("drop function if exists {}()").format(fn))


async def measure(
    stack: Stack, table: str, count: int, arrivals: asyncio.Queue[tuple[int, float]], owner: str
) -> list[float]:
    """Insert ``count`` rows one at a time; each must arrive (by seq) before the next."""
    latencies: list[float] = []
    insert = sql.SQL("insert into {} (owner, seq) values (%s, %s)").format(sql.Identifier("public", table))
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        for seq in range(count):
            await conn.execute(insert, (owner, seq))
            committed = time.perf_counter()
            while True:
                got_seq, arrived = await asyncio.wait_for(arrivals.get(), WAIT_S)
                if got_seq == seq:
                    break
            latencies.append((arrived - committed) * 1000)
    return latencies


async def run(count: int) -> dict[str, Any]:
    with stack_under_test() as stack, bench_tables(stack.database_url) as (table, prefix):
        if stack.jwt_secret is None:
            raise SystemExit("set SUPABASE_JWT_SECRET to mint a user token for the private topic")
        user = str(uuid.uuid4())
        token = jwt.encode(
            {"sub": user, "role": "authenticated", "aud": "authenticated", "exp": int(time.time()) + 3600},
            stack.jwt_secret,
            "HS256",
        )
        results: dict[str, Any] = {}

        worker = await acreate_client(stack.url, stack.service_role_key)
        pg_arrivals: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
        channel = worker.channel(f"bench-worker-{table}")
        channel.on_postgres_changes(
            Ev.Insert,
            schema="public",
            table=table,
            callback=lambda p: pg_arrivals.put_nowait(((p["data"].get("record") or {})["seq"], time.perf_counter())),
        )
        await channel.subscribe()

        plugin = await acreate_client(stack.url, stack.anon_key)
        await plugin.realtime.set_auth(token)
        bc_arrivals: asyncio.Queue[tuple[int, float]] = asyncio.Queue()
        options: RealtimeChannelOptions = {"config": {"private": True, "broadcast": None, "presence": None}}
        private = plugin.channel(f"{prefix}:{user}", options)
        private.on_broadcast("job", lambda m: bc_arrivals.put_nowait((m["payload"]["seq"], time.perf_counter())))
        await private.subscribe()

        # Both subscribers see every insert; measure one flow at a time, draining the other.
        async def drain(queue: asyncio.Queue[tuple[int, float]]) -> None:
            while True:
                await queue.get()

        for name, arrivals, other in (
            ("postgres_changes_service_role_insert", pg_arrivals, bc_arrivals),
            ("broadcast_from_database_private_rls", bc_arrivals, pg_arrivals),
        ):
            drainer = asyncio.create_task(drain(other))
            while not arrivals.empty():
                arrivals.get_nowait()
            results[name] = summary(await measure(stack, table, count, arrivals, user))
            drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drainer
        await worker.realtime.remove_all_channels()
        await plugin.realtime.remove_all_channels()
        return {
            "stack": "external" if os.environ.get("SUPABASE_URL") else "devstack (gateway in its own process)",
            "changes_per_flow": count,
            "goal_p99_ms": GOAL_P99_MS,
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "flows": results,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=500, help="changes per flow (max 5000)")
    args = parser.parse_args()
    count = max(1, min(args.count, 5000))
    report = asyncio.run(asyncio.wait_for(run(count), DEADLINE_S))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, s in report["flows"].items():
        verdict = "ok" if s["p99_ms"] <= GOAL_P99_MS else "ABOVE GOAL"
        print(
            f"{name:40s} n={s['count']} p50={s['p50_ms']}ms p95={s['p95_ms']}ms "
            f"p99={s['p99_ms']}ms max={s['max_ms']}ms  [{verdict}, goal p99 ≤ {GOAL_P99_MS:.0f} ms]"
        )
    print(f"saved {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
