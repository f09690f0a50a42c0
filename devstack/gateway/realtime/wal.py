"""The change feed: a logical slot (wal2json) read in commit order.

One slot per gateway instance, named after its process, so several gateways on one database
never consume each other's changes. The slot is persistent, as hosted Realtime's is: when the
feed's connection drops (a database restart, a terminated backend) the changes committed in
between wait in the slot and are delivered, in order, after the reconnect; a temporary slot
would die with the connection and lose them. The gateway drops its slot when it stops, and
drops slots left by gateways that died (their pid is gone) when it starts.

Latency: the poller checks the cheap ``pg_current_wal_insert_lsn()`` every few milliseconds and
reads the slot only when WAL grew. The cluster runs ``synchronous_commit = off`` and logical
decoding only reads flushed WAL, so before reading it forces a flush when needed (see FLUSH_WAL)
and bounds the read by the insert position seen before that flush. README.md has the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import AsyncConnection

log = logging.getLogger(__name__)

PUBLICATION = "supabase_realtime"
BROADCAST_TABLE = ("realtime", "messages")

BUSY_INTERVAL = 0.002  # seconds between WAL checks while changes are flowing
IDLE_INTERVAL = 0.02
BUSY_WINDOW = 1.0  # stay "busy" this long after the last change
RECONNECT_DELAY = 1.0
READY_TIMEOUT = 30.0  # seconds start() waits for the slot
MAX_CHANGES = 5000  # per slot read; the rest comes on the next read

FLUSH_MESSAGE_PREFIX = "devstack-realtime-flush"
SLOT_PREFIX = "devstack_rt_"
CREATE_SLOT = """
select pg_create_logical_replication_slot(%(slot)s, 'wal2json', false)
where not exists (select 1 from pg_replication_slots where slot_name = %(slot)s)
"""
INACTIVE_SLOTS = """
select slot_name from pg_replication_slots
where starts_with(slot_name, %(prefix)s) and not active and database = current_database()
"""
DROP_SLOT = "select pg_drop_replication_slot(%s)"
WAL_POSITION = "select pg_current_wal_insert_lsn()::text, pg_current_wal_flush_lsn()::text"
# A transactional logical message writes WAL, so its (synchronous, see connect) commit flushes
# all WAL before it; the prefix keeps it out of the slot's output.
FLUSH_WAL = "select pg_logical_emit_message(true, %(prefix)s, '')"
# Tables to decode: the publication's tables (looked up on every read, as hosted's list_changes
# does) plus realtime.messages for Broadcast from Database; names escaped for wal2json.
GET_CHANGES = r"""
select data from pg_logical_slot_get_changes(
  %(slot)s, %(upto)s::pg_lsn, %(max)s,
  'format-version', '2', 'include-transaction', 'false', 'include-timestamp', 'true',
  'include-pk', 'true', 'include-type-oids', 'true', 'include-xids', 'true',
  'actions', 'insert,update,delete', 'filter-msg-prefixes', %(prefix)s,
  'add-tables', (
    select string_agg(regexp_replace(schemaname, '([\\,.[:space:]*])', '\\\1', 'g') || '.'
                      || regexp_replace(tablename, '([\\,.[:space:]*])', '\\\1', 'g'), ',')
    from (select schemaname::text, tablename::text from pg_publication_tables where pubname = %(publication)s
          union select 'realtime', 'messages') t))
"""


@dataclass(frozen=True)
class WalChange:
    """One decoded row change. ``raw`` is the wal2json text, passed back to SQL untouched so
    numeric values keep their exact text."""

    action: str  # "INSERT" | "UPDATE" | "DELETE"
    schema: str
    table: str
    xid: int
    commit_timestamp: str  # wal2json text, e.g. "2026-01-01 10:00:00.123456+00"
    columns: list[dict[str, Any]]
    identity: list[dict[str, Any]]
    pk: list[str]
    raw: str
    seen_at: float  # monotonic time the gateway read it (for latency measurements)

    @property
    def is_broadcast(self) -> bool:
        return (self.schema, self.table) == BROADCAST_TABLE and self.action == "INSERT"

    def values(self) -> dict[str, Any]:
        return {c["name"]: c.get("value") for c in self.columns}


_ACTIONS = {"I": "INSERT", "U": "UPDATE", "D": "DELETE"}


def parse_change(data: str, seen_at: float) -> WalChange | None:
    doc = json.loads(data, parse_float=Decimal)
    action = _ACTIONS.get(doc.get("action", ""))
    if action is None:
        return None
    return WalChange(
        action=action,
        schema=doc["schema"],
        table=doc["table"],
        xid=int(doc.get("xid", 0)),
        commit_timestamp=doc.get("timestamp", ""),
        columns=doc.get("columns", []),
        identity=doc.get("identity", []),
        pk=[p["name"] for p in doc.get("pk", [])],
        raw=data,
        seen_at=seen_at,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lsn(text: str) -> int:
    hi, _, lo = text.partition("/")
    return (int(hi, 16) << 32) | int(lo, 16)


Sink = Callable[[AsyncConnection[Any], list[WalChange]], Awaitable[None]]


class WalFeed:
    """Reads the slot in a background task and hands each batch, in commit order, to ``sink``
    together with the feed's connection (idle between reads, so the sink may query on it)."""

    def __init__(self, dsn: str, sink: Sink) -> None:
        self._dsn = dsn
        self._sink = sink
        self._slot = f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    @property
    def slot(self) -> str:
        return self._slot

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="realtime-wal-feed")
        try:
            await asyncio.wait_for(self._ready.wait(), READY_TIMEOUT)
        except TimeoutError:
            # Slot creation waits for running transactions; keep trying in the background.
            log.warning("realtime: replication slot not ready after %.0fs; continuing", READY_TIMEOUT)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        # The slot is persistent: drop it, or it would hold WAL back for ever.
        with contextlib.suppress(psycopg.Error, OSError):
            async with await AsyncConnection.connect(self._dsn, autocommit=True) as conn:
                await conn.execute(DROP_SLOT, (self._slot,))

    async def _drop_orphans(self, conn: AsyncConnection[Any]) -> None:
        """Drop inactive slots of gateways whose process is gone (killed without a clean stop)."""
        cur = await conn.execute(INACTIVE_SLOTS, {"prefix": SLOT_PREFIX})
        for (name,) in await cur.fetchall():
            pid_text = str(name).removeprefix(SLOT_PREFIX).partition("_")[0]
            if name == self._slot or not pid_text.isdigit() or _alive(int(pid_text)):
                continue
            with contextlib.suppress(psycopg.Error):
                await conn.execute(DROP_SLOT, (name,))
                log.info("realtime: dropped orphaned slot %s", name)

    async def _run(self) -> None:
        while True:
            try:
                async with await AsyncConnection.connect(
                    self._dsn, autocommit=True, application_name="devstack_realtime"
                ) as conn:
                    await conn.execute("set synchronous_commit = on")  # this session only
                    if not self._ready.is_set():
                        await self._drop_orphans(conn)
                    await conn.execute(CREATE_SLOT, {"slot": self._slot})
                    self._ready.set()
                    await self._poll(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError):
                log.exception("realtime: change feed connection failed; reconnecting")
                await asyncio.sleep(RECONNECT_DELAY)

    async def _poll(self, conn: AsyncConnection[Any]) -> None:
        last_seen = 0
        last_change = 0.0
        while True:
            cur = await conn.execute(WAL_POSITION)
            row = await cur.fetchone()
            assert row is not None
            insert_lsn, flush_lsn = _lsn(row[0]), _lsn(row[1])
            if insert_lsn > last_seen:
                if flush_lsn < insert_lsn:
                    await conn.execute(FLUSH_WAL, {"prefix": FLUSH_MESSAGE_PREFIX})
                got = await self._read(conn, row[0])
                if got:
                    last_change = time.monotonic()
                last_seen = insert_lsn
            busy = time.monotonic() - last_change < BUSY_WINDOW
            await asyncio.sleep(BUSY_INTERVAL if busy else IDLE_INTERVAL)

    async def _read(self, conn: AsyncConnection[Any], upto: str) -> int:
        """Decode transactions committed before ``upto`` (an insert position read before the
        flush, so everything before it is flushed). Without the bound, decoding may hit a record
        the WAL writer flushed only partly and wait for the rest (up to wal_writer_delay)."""
        total = 0
        while True:
            cur = await conn.execute(
                GET_CHANGES,
                {
                    "slot": self._slot,
                    "upto": upto,
                    "max": MAX_CHANGES,
                    "prefix": FLUSH_MESSAGE_PREFIX,
                    "publication": PUBLICATION,
                },
            )
            rows = await cur.fetchall()
            now = time.monotonic()
            batch = [c for (data,) in rows if (c := parse_change(data, now)) is not None]
            if batch:
                try:
                    await self._sink(conn, batch)
                except (psycopg.OperationalError, asyncio.CancelledError):
                    raise
                except Exception:  # a delivery bug must not stop the feed
                    log.exception("realtime: delivering %d changes failed", len(batch))
            total += len(batch)
            if len(rows) < MAX_CHANGES:
                return total
