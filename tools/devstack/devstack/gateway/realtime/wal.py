"""The change feed: a logical slot (wal2json) read in commit order.

One slot per gateway instance, named after its process, so several gateways on one database
never consume each other's changes. The slot is persistent, as hosted Realtime's is: when the
feed's connection drops (a database restart, a terminated backend) the changes committed in
between wait in the slot and are delivered, in order, after the reconnect; a temporary slot
would die with the connection and lose them. The gateway drops its slot when it stops, and
drops slots left by gateways that died (their pid is gone) when it starts.

Streaming: `pg_recvlogical` holds a replication connection on the slot and writes one wal2json
line per change as the walsender decodes it, so each WAL record is decoded once. (The first
version polled `pg_logical_slot_get_changes`, which re-decodes from the slot's restart_lsn on
every call; PostgreSQL 15 moves that only at a running-transactions record, about every 15 s, so
each 2 ms poll re-read up to 15 s of the whole cluster's WAL: 10–160 ms per read on a busy
cluster, measured by `python -m bench notify`, bench/FIXES.md.)

Latency: the walsender sends only flushed WAL, and the cluster commits with
``synchronous_commit = on`` (as hosted), so each commit flushes its WAL and wakes the walsender:
the feed needs no flushing of its own. README.md has the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.conninfo import conninfo_to_dict

from devstack.gateway.realtime import background
from devstack.paths import PG_BIN

log = logging.getLogger(__name__)

PUBLICATION = "supabase_realtime"
BROADCAST_TABLE = ("realtime", "messages")

RECONNECT_DELAY = 1.0
READY_TIMEOUT = 30.0  # seconds start() waits for the slot
RECVLOGICAL = shutil.which("pg_recvlogical") or str(PG_BIN / "pg_recvlogical")
MAX_CHANGES = 5000  # per batch handed to the sink

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
# Tables to deliver: the publication's tables plus realtime.messages (Broadcast from Database),
# as hosted's list_changes reads them: at decode time. The stream decodes every table and the
# feed filters, re-reading the list when a change names a table it does not know and the list
# is older than TABLES_STALE (a table added to the publication just before its first insert is
# not missed; wal2json's add-tables would fix the list for the stream's whole life).
TABLES = """
select schemaname::text, tablename::text from pg_publication_tables where pubname = %(publication)s
union select 'realtime', 'messages'
"""
TABLES_STALE = 0.05  # seconds: re-read for an unknown table if the list is older than this
TABLES_MAX_AGE = 1.0  # and in any case this often while changes flow (tables leave, too)
WAL2JSON_OPTIONS = {
    "format-version": "2",
    # B/C lines carry the commit LSN: after a restart the walsender resends from the slot's last
    # confirmed position, and transactions already delivered are recognised and skipped.
    "include-transaction": "true",
    "include-lsn": "true",
    "include-timestamp": "true",
    "include-pk": "true",
    "include-type-oids": "true",
    "include-xids": "true",
    "actions": "insert,update,delete",
}
READ_CHUNK = 1 << 16


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


# wal2json names the partition a row went to; realtime.messages is partitioned by day.
_MESSAGES_PARTITION = re.compile(r"messages_\d{4}_\d{2}_\d{2}")
# A row change's line names its table in its first ~200 bytes (B/C lines name none). Read there,
# a change nobody can receive is dropped without decoding the row: most of the stream under load
# (every update of a job, with its payload, when no client listens to public.jobs).
_ROW_CHANGE = (b'{"action":"I"', b'{"action":"U"', b'{"action":"D"')
_NAMES = re.compile(rb'"schema":"([^"\\]*)","table":"([^"\\]*)"')
NAMES_WITHIN = 512

# Whether any subscriber may want a change of (schema, table) now; realtime.messages is always read.
Interest = Callable[[str, str], bool]


def change_of(doc: dict[str, Any], data: str, seen_at: float) -> WalChange | None:
    action = _ACTIONS.get(doc.get("action", ""))
    if action is None:
        return None
    schema, table = doc["schema"], _table_name(doc["schema"], doc["table"])
    return WalChange(
        action=action,
        schema=schema,
        table=table,
        xid=int(doc.get("xid", 0)),
        commit_timestamp=doc.get("timestamp", ""),
        columns=doc.get("columns", []),
        identity=doc.get("identity", []),
        pk=[p["name"] for p in doc.get("pk", [])],
        raw=data,
        seen_at=seen_at,
    )


def table_of(line: bytes) -> tuple[str, str] | None:
    """The (schema, table) a row change's raw line names, read without decoding it; None for a
    line that is not a row change or names them in a way this does not read (then decode it)."""
    if not line.startswith(_ROW_CHANGE):
        return None
    found = _NAMES.search(line, 0, NAMES_WITHIN)
    if found is None:
        return None
    try:
        return found.group(1).decode(), found.group(2).decode()
    except UnicodeDecodeError:
        return None


def _table_name(schema: str, table: str) -> str:
    """The table a change is of: a day's partition of realtime.messages counts as messages."""
    return "messages" if schema == "realtime" and _MESSAGES_PARTITION.fullmatch(table) else table


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

    def __init__(self, dsn: str, sink: Sink, interest: Interest | None = None) -> None:
        self._dsn = dsn
        self._sink = sink
        self._interest = interest
        self._slot = f"{SLOT_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._delivered_lsn = 0  # commit LSN of the last transaction handed to the sink
        self._skipping = False
        self._tables: set[tuple[str, str]] = set()
        self._tables_at = float("-inf")

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
        await background.cancel(self._task)
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
                    if not self._ready.is_set():
                        await self._drop_orphans(conn)
                    await conn.execute(CREATE_SLOT, {"slot": self._slot})
                    await self._refresh_tables(conn)
                    await self._stream(conn)
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError, FeedEnded) as exc:
                log.warning("realtime: change feed interrupted (%s); reconnecting", str(exc).strip()[:300])
                await asyncio.sleep(RECONNECT_DELAY)

    async def _refresh_tables(self, conn: AsyncConnection[Any]) -> None:
        cur = await conn.execute(TABLES, {"publication": PUBLICATION})
        self._tables = {(str(schema), str(table)) for schema, table in await cur.fetchall()}
        self._tables_at = time.monotonic()

    async def _stream(self, conn: AsyncConnection[Any]) -> None:
        """Run pg_recvlogical on the slot until it ends (or a connection fails)."""
        dbname = str(conninfo_to_dict(self._dsn).get("dbname") or "postgres")
        argv = [RECVLOGICAL, "-d", dbname, "-S", self._slot, "--start", "-f", "-", "-F", "0", "-s", "1", "--no-loop"]
        for key, value in WAL2JSON_OPTIONS.items():
            argv += ["-o", f"{key}={value}"]
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=_libpq_env(self._dsn),  # not on the command line, where ps would show the password
        )
        assert proc.stdout is not None and proc.stderr is not None
        try:
            self._ready.set()
            await self._read(conn, proc.stdout)
        finally:
            if proc.returncode is None:
                proc.terminate()
            with contextlib.suppress(asyncio.CancelledError, ProcessLookupError):
                await asyncio.shield(_reap(proc))
        stderr = (await proc.stderr.read()).decode(errors="replace").strip()
        raise FeedEnded(f"pg_recvlogical exited with {proc.returncode}: {stderr[-300:]}")

    async def _read(self, conn: AsyncConnection[Any], stdout: asyncio.StreamReader) -> None:
        """Hand every complete line to the sink, in order; lines that arrived together form a batch."""
        carry = b""
        while True:
            chunk = await stdout.read(READ_CHUNK)
            if not chunk:
                return  # the process ended
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            batch = await self._changes(conn, lines, time.monotonic())
            for i in range(0, len(batch), MAX_CHANGES):
                try:
                    await self._sink(conn, batch[i : i + MAX_CHANGES])
                except (psycopg.OperationalError, asyncio.CancelledError):
                    raise
                except Exception:  # a delivery bug must not stop the feed
                    log.exception("realtime: delivering %d changes failed", len(batch[i : i + MAX_CHANGES]))

    async def _changes(self, conn: AsyncConnection[Any], lines: list[bytes], now: float) -> list[WalChange]:
        """The published tables' row changes in these lines, without transactions delivered
        before a restart."""
        out: list[WalChange] = []
        for line in lines:
            if not line:
                continue
            if self._unwanted(line):
                continue
            data = line.decode()
            doc = json.loads(data, parse_float=Decimal)
            action = doc.get("action")
            if action == "B":
                self._skipping = _lsn(doc["lsn"]) <= self._delivered_lsn
            elif action == "C":
                self._delivered_lsn = max(self._delivered_lsn, _lsn(doc["lsn"]))
                self._skipping = False
            elif (
                not self._skipping
                and (change := change_of(doc, data, now)) is not None
                and await self._published(conn, change.schema, change.table)
            ):
                out.append(change)
        return out

    def _unwanted(self, line: bytes) -> bool:
        """A row change of a table no subscriber listens to: hosted would not decode it either."""
        if self._interest is None or (names := table_of(line)) is None:
            return False
        schema, table = names[0], _table_name(*names)
        return (schema, table) != BROADCAST_TABLE and not self._interest(schema, table)

    async def _published(self, conn: AsyncConnection[Any], schema: str, table: str) -> bool:
        age = time.monotonic() - self._tables_at
        if age > TABLES_MAX_AGE or ((schema, table) not in self._tables and age > TABLES_STALE):
            await self._refresh_tables(conn)
        return (schema, table) in self._tables


class FeedEnded(Exception):
    """pg_recvlogical stopped (its connection dropped, or the slot went away)."""


def _libpq_env(dsn: str) -> dict[str, str]:
    names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}
    parts = conninfo_to_dict(dsn)
    return {**os.environ, **{env: str(parts[key]) for key, env in names.items() if parts.get(key) is not None}}


async def _reap(proc: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(proc.wait(), 5)
    except TimeoutError:
        proc.kill()
        await proc.wait()
