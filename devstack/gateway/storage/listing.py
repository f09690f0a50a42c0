"""Folder listing (`POST /object/list/{bucket}`), shaped like Storage's ``storage.search()``.

Objects directly in the folder are listed with their columns; deeper objects collapse into one
folder entry whose id, timestamps and metadata are null.
"""

from __future__ import annotations

from typing import Any

from devstack.gateway.storage.errors import invalid_request

SORT_COLUMNS = frozenset({"name", "updated_at", "created_at", "last_accessed_at"})
DEFAULT_LIMIT = 100


def _int_option(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid_request(f"body/{key} must be integer >= 0")
    return value


def list_folder(rows: list[dict[str, Any]], folder: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    limit = _int_option(body, "limit", DEFAULT_LIMIT)
    offset = _int_option(body, "offset", 0)
    sort_by = body.get("sortBy") or {}
    column = sort_by.get("column", "name") if isinstance(sort_by, dict) else "name"
    order = sort_by.get("order", "asc") if isinstance(sort_by, dict) else "asc"
    if column not in SORT_COLUMNS or order not in ("asc", "desc"):
        raise invalid_request("body/sortBy is invalid")
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise invalid_request("body/search must be string")

    entries: dict[str, dict[str, Any]] = {}
    for row in rows:
        name, slash, _ = row["name"][len(folder) :].partition("/")
        if not name.lower().startswith(search.lower()):
            continue
        if slash:
            entries.setdefault(
                name,
                {
                    "name": name,
                    "id": None,
                    "updated_at": None,
                    "created_at": None,
                    "last_accessed_at": None,
                    "metadata": None,
                },
            )
        else:
            entries[name] = {**row, "name": name}

    def sort_key(entry: dict[str, Any]) -> tuple[bool, Any, str]:
        value = entry[column]
        return (value is None, value if value is not None else "", entry["name"])

    ordered = sorted(entries.values(), key=sort_key, reverse=order == "desc")
    return ordered[offset : offset + limit]
