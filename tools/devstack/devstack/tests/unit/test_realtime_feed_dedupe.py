"""The Realtime change feed skips transactions it already delivered when pg_recvlogical restarts
(the walsender resends from the slot's last confirmed position, which may be behind)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devstack.gateway.realtime.wal import WalFeed


def tx(commit_lsn: str, *rows: int) -> list[bytes]:
    lines: list[dict[str, Any]] = [{"action": "B", "lsn": commit_lsn}]
    lines += [
        {"action": "I", "lsn": "0/1", "schema": "public", "table": "t", "columns": [{"name": "id", "value": r}]}
        for r in rows
    ]
    lines.append({"action": "C", "lsn": commit_lsn})
    return [json.dumps(x).encode() for x in lines]


async def _sink(*_: object) -> None:
    return None


def ids(feed: WalFeed, lines: list[bytes]) -> list[int]:
    feed._tables, feed._tables_at = {("public", "t")}, float("inf")  # published; never re-read here
    changes = asyncio.run(feed._changes(None, lines, 0.0))  # type: ignore[arg-type]  # no query needed
    return [c.values()["id"] for c in changes]


def test_a_resent_transaction_is_skipped_and_later_ones_are_delivered() -> None:
    feed = WalFeed("postgresql://x@127.0.0.1/db", _sink)
    assert ids(feed, tx("0/100", 1, 2) + tx("0/200", 3)) == [1, 2, 3]
    # pg_recvlogical restarted and the server resends from before 0/200:
    assert ids(feed, tx("0/100", 1, 2) + tx("0/200", 3) + tx("0/300", 4)) == [4]


def test_a_transaction_split_across_reads_is_delivered_once() -> None:
    feed = WalFeed("postgresql://x@127.0.0.1/db", _sink)
    lines = tx("0/100", 1, 2)
    assert ids(feed, lines[:2]) == [1]
    assert ids(feed, lines[2:]) == [2]
    assert ids(feed, tx("0/100", 1, 2)) == []
