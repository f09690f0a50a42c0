"""Sending an object's bytes: a private hard link, Range handling as Storage answers it.

The link is taken when the download is asked for, so a delete that commits while the bytes are on
their way cannot pull the file away (the object existed when it was asked for, as on S3); the link
goes when the response is over, whatever happened to it.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

from devstack.gateway.storage.errors import StorageError, no_such_key


class StoredFile(FileResponse):
    def __init__(self, link: Path, *, mimetype: str, headers: dict[str, str]) -> None:
        super().__init__(link, media_type=mimetype, headers=headers, stat_result=os.stat(link))
        self.headers["content-type"] = mimetype  # exactly as stored: starlette adds a charset to text/*

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            refusal = self._check_range(scope)
            if refusal is not None:
                await refusal.response()(scope, receive, send)
                return
            await super().__call__(scope, receive, send)
        finally:
            await anyio.Path(self.path).unlink(missing_ok=True)

    def _check_range(self, scope: Scope) -> StorageError | None:
        """An unsatisfiable range is Storage's 416 InvalidRange; a malformed Range header is
        ignored (the whole object, 200), as S3 behind hosted Storage does."""
        http_range = Headers(scope=scope).get("range")
        if http_range is None or self.stat_result is None:
            return None
        try:
            self._parse_range_header(http_range, self.stat_result.st_size)
        except MalformedRangeHeader:
            headers = MutableHeaders(scope=scope)
            del headers["range"]
        except RangeNotSatisfiable:
            return StorageError(416, "InvalidRange", "The requested range is not satisfiable", http_status=416)
        return None


def sendable(value: str) -> bool:
    """Whether a stored value can go out as an HTTP header value: visible ASCII, spaces and tabs
    (RFC 9110 §5.5 also allows obs-text, which no client should rely on, so it is refused)."""
    return all(" " <= ch <= "~" or ch == "\t" for ch in value)


def stored_header(value: object, default: str) -> str:
    """A header value from an object's stored metadata, or ``default`` when there is none or it
    cannot be sent (a row an operator or an older version wrote): the download still works."""
    text = str(value) if value else ""
    return text if text and sendable(text) else default


def link_for_download(path: Path, link: Path) -> Path:
    """Hard-link the version file to ``link``; NoSuchKey when it is already gone."""
    try:
        os.link(path, link)
    except FileNotFoundError:
        raise no_such_key() from None
    return link
