"""Turning query results into PostgREST responses: status, Content-Range, singular objects."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.responses import Response

from devstack.gateway.rest.errors import singular
from devstack.gateway.rest.negotiation import Accept


@dataclass(frozen=True)
class ResultRow:
    """The row ``sqlgen.result_query`` returns."""

    total: int | None
    rows: int
    body: str
    first: str | None

    def payload(self, accept: Accept) -> str:
        """The array, or for vnd.pgrst.object+json exactly one object (else PGRST116)."""
        if not accept.singular:
            return self.body
        if self.rows != 1 or self.first is None:
            raise singular(self.rows)
        return self.first


def content_range(lower: int, rows: int, total: int | None) -> str:
    """PostgREST's ``contentRangeH``: ``0-9/*``, ``0-9/42``, ``*/0``."""
    upper = lower + rows - 1
    total_text = "*" if total is None else str(total)
    if total != 0 and lower <= upper:
        return f"{lower}-{upper}/{total_text}"
    return f"*/{total_text}"


def read_status(lower: int, rows: int, total: int | None) -> int:
    """PostgREST's ``rangeStatus``: 206 when a known total is larger than the page."""
    if total is None:
        return 200
    if lower > total:
        return 416
    if rows < total:
        return 206
    return 200


def json_response(body: str | None, status: int, headers: dict[str, str], accept: Accept | None = None) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    media = accept.content_type if accept else "application/json; charset=utf-8"
    return Response(body.encode(), status_code=status, headers=headers, media_type=media)
