"""Folder listing (`POST /object/list/{bucket}`), shaped like Storage's ``storage.search()``.

Objects directly in the folder are listed with their columns; deeper objects collapse into one
folder entry whose id, timestamps and metadata are null (an object and a folder of the same name
show as the object). Entries sort by the chosen column (nulls last ascending, first descending),
then by name; the database does the collapsing, sorting and paging (catalog.list_folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devstack.gateway.pg import BIGINT_MAX
from devstack.gateway.storage.errors import invalid_request

SORT_COLUMNS = frozenset({"name", "updated_at", "created_at", "last_accessed_at"})
SORT_ORDERS = frozenset({"asc", "desc"})
DEFAULT_LIMIT = 100


@dataclass(frozen=True)
class ListOptions:
    limit: int
    offset: int
    column: str  # one of SORT_COLUMNS
    descending: bool
    search: str


def _int_option(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
        # LIMIT and OFFSET are bigint: a larger value would fail in the database instead.
        raise invalid_request(f"body/{key} must be integer >= 0 and <= {BIGINT_MAX}")
    return value


def _enum_option(sort_by: dict[str, Any], key: str, default: str, allowed: frozenset[str]) -> str:
    """A ``sortBy`` member, checked as Storage's schema does (any JSON value may arrive here)."""
    value = sort_by.get(key, default)
    if not isinstance(value, str):
        raise invalid_request(f"body/sortBy/{key} must be string")
    if value not in allowed:
        raise invalid_request(f"body/sortBy/{key} must be equal to one of the allowed values")
    return value


def list_options(body: dict[str, Any]) -> ListOptions:
    limit = _int_option(body, "limit", DEFAULT_LIMIT)
    offset = _int_option(body, "offset", 0)
    sort_by = body.get("sortBy")
    if sort_by is None:
        sort_by = {}
    if not isinstance(sort_by, dict):
        raise invalid_request("body/sortBy must be object")
    column = _enum_option(sort_by, "column", "name", SORT_COLUMNS)
    order = _enum_option(sort_by, "order", "asc", SORT_ORDERS)
    search = body.get("search") or ""
    if not isinstance(search, str):
        raise invalid_request("body/search must be string")
    return ListOptions(limit=limit, offset=offset, column=column, descending=order == "desc", search=search)
