"""Turn decoded WAL changes into messages for subscribers, in commit order.

- ``realtime.messages`` inserts are Broadcast from Database: sent to the row's topic, to private
  or public subscribers according to the row's ``private`` flag, with ``meta.id``.
- Other rows are postgres_changes, evaluated like hosted ``realtime.apply_rls``: filters on the
  WAL values (cast to the column types), then, for tables with RLS and for INSERT/UPDATE, the
  row must be visible to the subscriber: ``select exists(... where pk = ...)`` run as the
  subscriber's role with its JWT claims, once per distinct (role, claims). DELETEs cannot be
  checked (the row is gone), so they go to every matching subscriber with the primary key only.
  Columns are limited to what the role may select.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection

from devstack.gateway.realtime.bindings import Binding
from devstack.gateway.realtime.hub import Channel, Hub
from devstack.gateway.realtime.protocol import UserBroadcast
from devstack.gateway.realtime.wal import WalChange

log = logging.getLogger(__name__)

# Everything one change needs, in one round trip (as postgres, on the feed's connection):
# the table's RLS flag and columns (with the roles that may select each), the new and old values
# as hosted emits them (to_jsonb of each value cast to its type), one boolean per filter check,
# and, for RLS tables, the row's visibility to each distinct (role, claims) subscriber group.
EVALUATE = """
select c.relrowsecurity,
       coalesce((select jsonb_agg(jsonb_build_object(
                   'name', a.attname, 'type', t.typname,
                   'roles', (select coalesce(jsonb_agg(r), '[]'::jsonb) from unnest(%(roles)s::text[]) r
                             where has_column_privilege(r, c.oid, a.attname, 'SELECT')))
                   order by a.attnum)
                 from pg_attribute a join pg_type t on t.oid = a.atttypid
                 where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), '[]'::jsonb),
       (select jsonb_object_agg(v->>'name', realtime.devstack_cast(v->'value' #>> '{}', (v->>'typeoid')::oid::regtype))
          from jsonb_array_elements(%(wal)s::jsonb -> 'columns') v),
       (select jsonb_object_agg(v->>'name', realtime.devstack_cast(v->'value' #>> '{}', (v->>'typeoid')::oid::regtype))
          from jsonb_array_elements(%(wal)s::jsonb -> 'identity') v),
       (select coalesce(jsonb_agg(realtime.devstack_filter_matches(
                   f->>'op', (f->>'typeoid')::oid::regtype, f->>'column_value', f->>'value', (f->>'negate')::boolean)
                 order by n), '[]'::jsonb)
          from jsonb_array_elements(%(checks)s::jsonb) with ordinality as x(f, n)),
       case when c.relrowsecurity and %(check_rows)s
            then realtime.devstack_rows_visible(c.oid, %(pk)s::jsonb, %(groups)s::jsonb, %(xid)s) end
from pg_class c join pg_namespace n on n.oid = c.relnamespace
where n.nspname = %(schema)s and c.relname = %(table)s
"""


@dataclass(frozen=True)
class TableInfo:
    rls: bool
    columns: list[dict[str, Any]]  # name, type, roles (that may select it)

    def selectable(self, role: str) -> list[dict[str, Any]]:
        return [c for c in self.columns if role in c["roles"]]


def format_commit_timestamp(wal_ts: str) -> str:
    """wal2json "2026-01-01 10:00:00.123456+00" → hosted "2026-01-01T10:00:00.123Z" (UTC, ms)."""
    text = wal_ts.strip()
    if text.endswith(("+00", "-00")):
        text += ":00"
    try:
        ts = datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return wal_ts
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


class Delivery:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def __call__(self, conn: AsyncConnection[Any], batch: list[WalChange]) -> None:
        for change in batch:
            if change.is_broadcast:
                self._broadcast_from_database(change)
                continue
            subscribers = list(self.hub.postgres_subscribers(change.action, change.schema, change.table))
            if subscribers:
                await self._postgres_change(conn, change, subscribers)

    # -- Broadcast from Database ------------------------------------------------------------
    def _broadcast_from_database(self, change: WalChange) -> None:
        row = change.values()
        topic, event, payload = row.get("topic"), row.get("event"), row.get("payload")
        if not isinstance(topic, str) or not isinstance(event, str) or payload is None:
            log.warning("realtime: skipping realtime.messages row without topic/event/payload")
            return
        data = payload if isinstance(payload, str) else json.dumps(payload, default=str)
        bc = UserBroadcast(event=event, data=data.encode(), is_json=True, meta={"id": row.get("id")})
        self.hub.broadcast(topic, bool(row.get("private")), bc)

    # -- postgres_changes -------------------------------------------------------------------
    async def _postgres_change(
        self, conn: AsyncConnection[Any], change: WalChange, subscribers: list[tuple[Channel, list[Binding]]]
    ) -> None:
        checks, plan = _filter_checks(change, subscribers)
        groups: dict[tuple[str, str], list[Channel]] = defaultdict(list)
        for channel, _ in subscribers:
            groups[(channel.role, json.dumps(channel.claims, sort_keys=True))].append(channel)
        values = change.values()
        cur = await conn.execute(
            EVALUATE,
            {
                "schema": change.schema,
                "table": change.table,
                "roles": sorted({role for role, _ in groups}),
                "wal": change.raw,
                "checks": json.dumps(checks),
                # DELETEs cannot be checked (the row is gone); hosted sends them with the key only.
                "check_rows": change.action != "DELETE" and bool(change.pk),
                "xid": change.xid,
                "pk": json.dumps({pk: None if values.get(pk) is None else str(values[pk]) for pk in change.pk}),
                "groups": json.dumps(
                    [
                        {"role": role, "claims": claims, "sub": str(members[0].claims.get("sub") or "")}
                        for (role, claims), members in groups.items()
                    ]
                ),
            },
        )
        row = await cur.fetchone()
        if row is None:
            return  # the table is gone
        rls, columns, record, old_record, results, visibility = row
        info = TableInfo(rls=bool(rls), columns=list(columns))
        visible = {ch for members in groups.values() for ch in members}
        if rls and change.action != "DELETE":
            # Without a primary key hosted answers "Error 400: Bad Request, no primary key"; dropped here.
            flags = visibility or [False] * len(groups)
            visible = {ch for flag, members in zip(flags, groups.values(), strict=True) if flag for ch in members}
        commit_ts = format_commit_timestamp(change.commit_timestamp)
        matched: dict[Channel, list[Binding]] = defaultdict(list)
        for channel, b, idx in plan:
            if channel in visible and all(results[i] for i in idx):
                matched[channel].append(b)
        for channel, hits in matched.items():
            by_select: dict[tuple[str, ...] | None, list[int]] = defaultdict(list)
            for b in hits:
                if b.id not in by_select[b.select]:
                    by_select[b.select].append(b.id)
            for select, ids in by_select.items():
                data = _payload(change, info, channel.role, select, record or {}, old_record or {}, commit_ts)
                channel.push_fastlane("postgres_changes", {"ids": ids, "data": data})


def _filter_checks(
    change: WalChange, subscribers: list[tuple[Channel, list[Binding]]]
) -> tuple[list[dict[str, Any]], list[tuple[Channel, Binding, list[int]]]]:
    """The filter comparisons to run in SQL, and for each binding the indexes of its checks.

    A filter on a column absent from the WAL (e.g. a non-key column of a DELETE without REPLICA
    IDENTITY FULL) does not apply, as in hosted is_visible_through_filters."""
    sources = {c["name"]: c for c in change.identity}
    if change.action != "DELETE":
        sources.update({c["name"]: c for c in change.columns})
    checks: list[dict[str, Any]] = []
    plan: list[tuple[Channel, Binding, list[int]]] = []
    for channel, bindings in subscribers:
        for b in bindings:
            idx: list[int] = []
            for f in b.filters:
                col = sources.get(f.column)
                if col is None:
                    continue
                idx.append(len(checks))
                value = col.get("value")
                text = None if value is None else value if isinstance(value, str) else str(value)
                checks.append(
                    {
                        "op": f.op,
                        "typeoid": col.get("typeoid"),
                        "column_value": text,
                        "value": f.value,
                        "negate": f.negate,
                    }
                )
            plan.append((channel, b, idx))
    return checks, plan


def _payload(
    change: WalChange,
    info: TableInfo,
    role: str,
    select: tuple[str, ...] | None,
    record: dict[str, Any],
    old_record: dict[str, Any],
    commit_ts: str,
) -> dict[str, Any]:
    pks = set(change.pk)

    def keep(name: str) -> bool:
        return select is None or name in select or name in pks

    selectable = [c for c in info.selectable(role) if keep(c["name"])]
    allowed = {c["name"] for c in selectable}
    data: dict[str, Any] = {
        "schema": change.schema,
        "table": change.table,
        "commit_timestamp": commit_ts,
        "type": change.action,
        "columns": [{"name": c["name"], "type": c["type"]} for c in selectable],
        "errors": None,
    }
    if change.action != "DELETE" and pks and not pks <= {c["name"] for c in info.selectable(role)}:
        data.update(columns=[], record={}, errors=["Error 401: Unauthorized"], commit_timestamp=None)
        return data
    if change.action in ("INSERT", "UPDATE"):
        # Unchanged TOAST values are missing from the new tuple; hosted fills them from the old one.
        merged = {**old_record, **record}
        data["record"] = {k: v for k, v in merged.items() if k in allowed}
    if change.action in ("UPDATE", "DELETE"):
        only_pk = change.action == "DELETE" and info.rls
        data["old_record"] = {k: v for k, v in old_record.items() if k in allowed and (not only_pk or k in pks)}
    return data
