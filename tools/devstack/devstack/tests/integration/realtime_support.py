"""Helpers for the Realtime conformance suites: fixture tables and topic policies (created through
DATABASE_URL as postgres, unique per run), minted user tokens, a collector for callbacks, and a
small raw-websocket Phoenix client for protocol edge cases."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import jwt
import psycopg
import pytest
from psycopg import sql
from websockets.asyncio.client import ClientConnection, connect

from devstack.testing.callbacks import WAIT
from devstack.testing.fixtures import Stack
from supabase import AsyncClient, acreate_client


def ws_url(stack: Stack, *, apikey: str | None = None, vsn: str | None = "1.0.0") -> str:
    base = stack.url.replace("http://", "ws://").replace("https://", "wss://") + "/realtime/v1/websocket"
    params = []
    if apikey is not None:
        params.append(f"apikey={apikey}")
    if vsn is not None:
        params.append(f"vsn={vsn}")
    return base + ("?" + "&".join(params) if params else "")


# -- tokens ----------------------------------------------------------------------------------------
def mint(stack: Stack, sub: str | None = None, *, role: str = "authenticated", ttl: int = 3600, **extra: Any) -> str:
    if stack.jwt_secret is None:
        pytest.skip("needs the stack's JWT secret to mint user tokens")
    now = int(time.time())
    claims: dict[str, Any] = {"role": role, "iat": now, "exp": now + ttl, "aud": "authenticated", **extra}
    if sub is not None:
        claims["sub"] = sub
    return jwt.encode(claims, stack.jwt_secret, "HS256")


@dataclass(frozen=True)
class User:
    id: str
    token: str


def new_user(stack: Stack) -> User:
    uid = str(uuid.uuid4())
    return User(uid, mint(stack, uid))


# -- database fixtures ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fixture:
    """A table in supabase_realtime with owner-only RLS, and private topics ``<prefix>:<uid>``."""

    table: str
    prefix: str  # private topic prefix: readable by the user whose id follows the colon
    room: str  # a private topic every authenticated user may read; only `writer` may send
    writer: str  # user id allowed to broadcast on `room`


def _ddl(fx: Fixture, suffix: str) -> list[sql.SQL | sql.Composed]:
    t = sql.Identifier("public", fx.table)
    read_policy = sql.Identifier(f"conformance_rt_read_{suffix}")
    write_policy = sql.Identifier(f"conformance_rt_write_{suffix}")
    trigger_fn = sql.Identifier("public", f"{fx.table}_notify")
    return [
        sql.SQL(
            "create table {} (id bigint generated always as identity primary key, owner uuid not null, "
            "kind text not null default 'a', n int not null default 0, body text)"
        ).format(t),
        sql.SQL("alter table {} enable row level security").format(t),
        sql.SQL("create policy owner_read on {} for select to authenticated using (owner = auth.uid())").format(t),
        sql.SQL("grant all on {} to anon, authenticated, service_role").format(t),
        sql.SQL("alter publication supabase_realtime add table {}").format(t),
        # Product-like flow: every change of a row is broadcast to its owner's private topic.
        sql.SQL(
            "create function {fn}() returns trigger language plpgsql security definer as $$ begin "
            "perform realtime.send(jsonb_build_object('id', new.id, 'n', new.n), 'row_changed', "
            "{prefix} || ':' || new.owner::text, true); return new; end $$"
        ).format(fn=trigger_fn, prefix=sql.Literal(fx.prefix)),
        sql.SQL("create trigger notify_owner after insert or update on {} for each row execute function {}()").format(
            t, trigger_fn
        ),
        sql.SQL(
            "create policy {} on realtime.messages for select to authenticated using ("
            "(select realtime.topic()) = {prefix} || ':' || auth.uid()::text or (select realtime.topic()) = {room})"
        ).format(read_policy, prefix=sql.Literal(fx.prefix), room=sql.Literal(fx.room)),
        sql.SQL(
            "create policy {} on realtime.messages for insert to authenticated with check ("
            "(select realtime.topic()) = {room} and auth.uid() = {writer}::uuid)"
        ).format(write_policy, room=sql.Literal(fx.room), writer=sql.Literal(fx.writer)),
        sql.SQL("notify pgrst, 'reload schema'"),
    ]


def _teardown(fx: Fixture, suffix: str) -> list[sql.SQL | sql.Composed]:
    return [
        sql.SQL("drop policy if exists {} on realtime.messages").format(
            sql.Identifier(f"conformance_rt_read_{suffix}")
        ),
        sql.SQL("drop policy if exists {} on realtime.messages").format(
            sql.Identifier(f"conformance_rt_write_{suffix}")
        ),
        sql.SQL("delete from realtime.messages where topic like {} or topic = {}").format(
            sql.Literal(fx.prefix + ":%"), sql.Literal(fx.room)
        ),
        sql.SQL("drop table if exists {}").format(sql.Identifier("public", fx.table)),
        sql.SQL("drop function if exists {}()").format(sql.Identifier("public", f"{fx.table}_notify")),
        sql.SQL("notify pgrst, 'reload schema'"),
    ]


@contextmanager
def realtime_fixture(stack: Stack, writer: str) -> Iterator[Fixture]:
    suffix = secrets.token_hex(4)
    fx = Fixture(
        table=f"conformance_rt_{suffix}",
        prefix=f"conformance-jobs-{suffix}",
        room=f"conformance-room-{suffix}",
        writer=writer,
    )
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        for stmt in _ddl(fx, suffix):
            conn.execute(stmt)
    try:
        yield fx
    finally:
        with psycopg.connect(stack.database_url, autocommit=True) as conn:
            for stmt in _teardown(fx, suffix):
                conn.execute(stmt)


async def db(stack: Stack) -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True)


async def insert_row(stack: Stack, fx: Fixture, owner: str, *, kind: str = "a", n: int = 0) -> int:
    async with await db(stack) as conn:
        cur = await conn.execute(
            sql.SQL("insert into {} (owner, kind, n) values (%s, %s, %s) returning id").format(
                sql.Identifier("public", fx.table)
            ),
            (owner, kind, n),
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row[0])


# -- clients ---------------------------------------------------------------------------------------
@asynccontextmanager
async def supabase_client(stack: Stack, token: str | None = None) -> AsyncIterator[AsyncClient]:
    """The real supabase-py AsyncClient, created with the stack flavour's client key; ``token`` (a
    JWT) becomes the Realtime access token. An opaque key (``sb_secret_…``) is what the client is
    created with instead: Realtime ignores an ``sb_`` access token (docs/hosted-platform.md §1.5)."""
    opaque = token is not None and token.startswith("sb_")
    client = await acreate_client(stack.url, token if opaque and token else stack.client_key)
    if token is not None and not opaque:
        await client.realtime.set_auth(token)
    try:
        yield client
    finally:
        await client.realtime.remove_all_channels()


# -- raw Phoenix client ----------------------------------------------------------------------------
class RawSocket:
    """A bare websocket speaking vsn 1.0.0 objects or 2.0.0 arrays."""

    def __init__(self, ws: ClientConnection, vsn: str) -> None:
        self.ws = ws
        self.vsn = vsn
        self._ref = 0

    def ref(self) -> str:
        self._ref += 1
        return str(self._ref)

    async def push(
        self, topic: str, event: str, payload: dict[str, Any], *, ref: str | None = None, join_ref: str | None = None
    ) -> str:
        ref = ref or self.ref()
        if self.vsn == "2.0.0":
            await self.ws.send(json.dumps([join_ref, ref, topic, event, payload]))
        else:
            await self.ws.send(
                json.dumps({"topic": topic, "event": event, "payload": payload, "ref": ref, "join_ref": join_ref})
            )
        return ref

    async def recv(self, timeout: float = WAIT) -> dict[str, Any] | bytes:
        """The next frame: a dict with topic/event/payload/ref(/join_ref), or raw bytes."""
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        if isinstance(raw, bytes):
            return raw
        doc = json.loads(raw)
        if isinstance(doc, list):
            join_ref, ref, topic, event, payload = doc
            return {"join_ref": join_ref, "ref": ref, "topic": topic, "event": event, "payload": payload}
        assert isinstance(doc, dict)
        return doc

    async def recv_json(self, timeout: float = WAIT) -> dict[str, Any]:
        frame = await self.recv(timeout)
        assert isinstance(frame, dict), f"expected a JSON frame, got {frame!r}"
        return frame

    async def join(self, topic: str, config: dict[str, Any] | None = None, token: str | None = None) -> dict[str, Any]:
        """Join and return the phx_reply (skipping nothing: the reply is the first frame on a join)."""
        payload: dict[str, Any] = {"config": config or {}}
        if token is not None:
            payload["access_token"] = token
        ref = self.ref()
        await self.push(topic, "phx_join", payload, ref=ref, join_ref=ref)
        reply = await self.recv_json()
        assert reply["event"] == "phx_reply" and reply["ref"] == ref, reply
        return reply

    async def heartbeat(self) -> str:
        return await self.push("phoenix", "heartbeat", {})


@asynccontextmanager
async def raw_socket(stack: Stack, *, vsn: str = "1.0.0", apikey: str | None = None) -> AsyncIterator[RawSocket]:
    async with connect(ws_url(stack, apikey=apikey or stack.anon_key, vsn=vsn)) as ws:
        yield RawSocket(ws, vsn)
