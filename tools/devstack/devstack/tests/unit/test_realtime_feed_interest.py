"""The Realtime change feed decodes only the row changes someone may receive: Broadcast from
Database (realtime.messages) always, other tables while a channel has a postgres_changes binding
on them, as hosted's poller decodes changes only for its subscriptions. A skipped line is never
decoded: a row the feed cannot parse is no concern of a table nobody listens to."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devstack.gateway.realtime.wal import WalFeed, table_of

BEGIN = b'{"action":"B","xid":7,"timestamp":"2026-12-06 13:58:14.43+00","lsn":"0/10","nextlsn":"0/20"}'
COMMIT = b'{"action":"C","xid":7,"timestamp":"2026-12-06 13:58:14.43+00","lsn":"0/10","nextlsn":"0/20"}'


def row(schema: str, table: str, value: int) -> bytes:
    """A row change as wal2json writes it (format 2, no spaces, names before the columns)."""
    doc: dict[str, Any] = {
        "action": "I",
        "xid": 7,
        "timestamp": "2026-12-06 13:58:14.43+00",
        "lsn": "0/8",
        "schema": schema,
        "table": table,
        "columns": [{"name": "id", "type": "integer", "typeoid": 23, "value": value}],
        "pk": [{"name": "id", "type": "integer", "typeoid": 23}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


async def _sink(*_: object) -> None:
    return None


def delivered(feed: WalFeed, lines: list[bytes]) -> list[tuple[str, str, Any]]:
    published = {("public", "watched"), ("public", "quiet"), ("realtime", "messages")}
    feed._tables, feed._tables_at = published, float("inf")  # never re-read here
    changes = asyncio.run(feed._changes(None, [BEGIN, *lines, COMMIT], 0.0))  # type: ignore[arg-type]
    return [(c.schema, c.table, c.values()["id"]) for c in changes]


def test_table_of_reads_the_names_of_a_row_change_only() -> None:
    assert table_of(row("public", "watched", 1)) == ("public", "watched")
    assert table_of(BEGIN) is None and table_of(COMMIT) is None
    # A name written with an escape is left to the decoder.
    assert table_of(row("public", 'we"ird', 1)) is None


def test_only_tables_with_a_binding_and_broadcasts_are_decoded() -> None:
    feed = WalFeed("postgresql://x@127.0.0.1/db", _sink, interest=lambda s, t: (s, t) == ("public", "watched"))
    broken_quiet = row("public", "quiet", 2)[:-20]  # not JSON any more: it must not be decoded at all
    lines = [row("public", "watched", 1), broken_quiet, row("realtime", "messages_2026_12_06", 3)]
    assert delivered(feed, lines) == [("public", "watched", 1), ("realtime", "messages", 3)]


def test_without_an_interest_every_published_table_is_decoded() -> None:
    feed = WalFeed("postgresql://x@127.0.0.1/db", _sink)
    assert delivered(feed, [row("public", "watched", 1), row("public", "quiet", 2)]) == [
        ("public", "watched", 1),
        ("public", "quiet", 2),
    ]


def test_a_row_whose_names_cannot_be_read_quickly_is_decoded_and_judged_as_before() -> None:
    feed = WalFeed("postgresql://x@127.0.0.1/db", _sink, interest=lambda s, t: False)
    spaced = json.dumps(json.loads(row("public", "watched", 4))).encode()  # ", " and ": " separators
    assert table_of(spaced) is None
    assert delivered(feed, [spaced]) == [("public", "watched", 4)]
