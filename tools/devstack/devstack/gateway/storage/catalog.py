"""storage.buckets / storage.objects queries.

Object reads and writes run in the caller's transaction (``request_transaction``), so RLS on
storage.objects decides exactly as on hosted Storage: insert needs an INSERT policy, upsert also
UPDATE (and SELECT, for RETURNING), download and signing need SELECT, remove needs DELETE + SELECT.
Bucket lookups that hosted Storage does "as super user" use the admin pool.
"""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import AsyncConnection, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from devstack.gateway.storage.listing import SORT_COLUMNS, ListOptions

Row = dict[str, Any]

BUCKET_COLUMNS = "id, name, owner, public, created_at, updated_at, file_size_limit, allowed_mime_types"
OBJECT_COLUMNS = (
    "id, bucket_id, name, owner, owner_id, version, metadata, user_metadata, created_at, updated_at, last_accessed_at"
)


async def _fetch(conn: AsyncConnection[Any], query: str | sql.Composed, params: dict[str, Any]) -> list[Row]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # module constants or composed identifiers; values are bound
        return await cur.fetchall() if cur.description else []


async def find_bucket(conn: AsyncConnection[Any], bucket_id: str) -> Row | None:
    rows = await _fetch(conn, f"select {BUCKET_COLUMNS} from storage.buckets where id = %(id)s", {"id": bucket_id})
    return rows[0] if rows else None


async def list_buckets(conn: AsyncConnection[Any]) -> list[Row]:
    return await _fetch(conn, f"select {BUCKET_COLUMNS} from storage.buckets order by name", {})


async def create_bucket(conn: AsyncConnection[Any], values: dict[str, Any]) -> None:
    await conn.execute(
        """
        insert into storage.buckets (id, name, owner, owner_id, public, file_size_limit, allowed_mime_types)
        values (%(id)s, %(name)s, %(owner)s, %(owner_id)s, %(public)s, %(file_size_limit)s, %(allowed_mime_types)s)
        """,
        values,
    )


async def find_object(conn: AsyncConnection[Any], bucket_id: str, name: str) -> Row | None:
    rows = await _fetch(
        conn,
        f"select {OBJECT_COLUMNS} from storage.objects where bucket_id = %(bucket)s and name = %(name)s",
        {"bucket": bucket_id, "name": name},
    )
    return rows[0] if rows else None


def owner_uuid(owner: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(owner) if owner else None
    except ValueError:
        return None


async def insert_object(
    conn: AsyncConnection[Any],
    *,
    bucket_id: str,
    name: str,
    owner: str | None,
    version: str,
    metadata: dict[str, Any],
    user_metadata: dict[str, Any] | None,
    upsert: bool,
) -> tuple[uuid.UUID, str | None]:
    """Write the object's row; returns (object id, version it replaced or None)."""
    object_id = uuid.uuid4()
    params: dict[str, Any] = {
        "id": object_id,
        "bucket": bucket_id,
        "name": name,
        "owner": owner_uuid(owner),
        "owner_id": owner,
        "version": version,
        "metadata": Jsonb(metadata),
        "user_metadata": Jsonb(user_metadata) if user_metadata is not None else None,
    }
    if not upsert:
        # Like Storage's createObject: no RETURNING, so no SELECT policy is needed to upload.
        await conn.execute(
            """
            insert into storage.objects (id, bucket_id, name, owner, owner_id, version, metadata, user_metadata)
            values (%(id)s, %(bucket)s, %(name)s, %(owner)s, %(owner_id)s, %(version)s, %(metadata)s, %(user_metadata)s)
            """,
            params,
        )
        return object_id, None
    # Lock the current row (if the caller may see it) so the replaced version is known exactly.
    previous = await _fetch(
        conn,
        "select version from storage.objects where bucket_id = %(bucket)s and name = %(name)s for update",
        params,
    )
    rows = await _fetch(
        conn,
        """
        insert into storage.objects (id, bucket_id, name, owner, owner_id, version, metadata, user_metadata)
        values (%(id)s, %(bucket)s, %(name)s, %(owner)s, %(owner_id)s, %(version)s, %(metadata)s, %(user_metadata)s)
        on conflict (name, bucket_id) do update set
          metadata = excluded.metadata, user_metadata = excluded.user_metadata, version = excluded.version,
          owner = excluded.owner, owner_id = excluded.owner_id, updated_at = now()
        returning id
        """,
        params,
    )
    return rows[0]["id"], (previous[0]["version"] if previous else None)


async def delete_objects(conn: AsyncConnection[Any], bucket_id: str, names: list[str]) -> list[Row]:
    """Delete rows as hosted Storage does: the table's protect_delete trigger lets a DELETE through
    only with storage.allow_delete_query set, for this transaction alone (``conn`` must be in one)."""
    await conn.execute("select set_config('storage.allow_delete_query', 'true', true)")
    return await _fetch(
        conn,
        f"delete from storage.objects where bucket_id = %(bucket)s and name = any(%(names)s)"
        f" returning {OBJECT_COLUMNS}",
        {"bucket": bucket_id, "names": names},
    )


def _like_prefix(prefix: str) -> str:
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


_LIST_FOLDER = """
select name, id, updated_at, created_at, last_accessed_at, metadata from (
  select distinct on (entry)
         entry as name,
         case when is_folder then null else id end as id,
         case when is_folder then null else updated_at end as updated_at,
         case when is_folder then null else created_at end as created_at,
         case when is_folder then null else last_accessed_at end as last_accessed_at,
         case when is_folder then null else metadata end as metadata
  from (
    select split_part(substr(o.name, %(skip)s), '/', 1) as entry,
           strpos(substr(o.name, %(skip)s), '/') > 0 as is_folder,
           o.id, o.updated_at, o.created_at, o.last_accessed_at, o.metadata
    from storage.objects o
    where o.bucket_id = %(bucket)s and o.name like %(pattern)s
  ) matched
  where starts_with(lower(entry), lower(%(search)s))
  order by entry, is_folder
) entries
order by {sort_key} {direction}, name collate "C" {direction}
limit %(limit)s offset %(offset)s
"""


async def list_folder(conn: AsyncConnection[Any], bucket_id: str, folder: str, options: ListOptions) -> list[Row]:
    """One page of the folder's entries (see listing.py); sort column and direction come from
    fixed allow-lists, every value is bound."""
    if options.column not in SORT_COLUMNS:
        raise ValueError(f"not a sort column: {options.column}")
    column = sql.Identifier(options.column)
    sort_key = sql.SQL('{} collate "C"').format(column) if options.column == "name" else column
    query = sql.SQL(_LIST_FOLDER).format(sort_key=sort_key, direction=sql.SQL("desc" if options.descending else "asc"))
    params = {
        "bucket": bucket_id,
        "pattern": _like_prefix(folder),
        "skip": len(folder) + 1,
        "search": options.search,
        "limit": options.limit,
        "offset": options.offset,
    }
    return await _fetch(conn, query, params)
