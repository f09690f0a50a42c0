"""Turn an upload request into bytes + attributes, as Storage's fileUploadFromRequest does.

storage3 sends multipart/form-data (a ``file`` part plus ``cacheControl`` / ``metadata`` fields);
storage-js sends the raw body with ``content-type``, ``cache-control`` and ``x-metadata`` headers.
Size and MIME limits of the bucket are enforced while reading, before anything is written.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from devstack.gateway import bounded_json
from devstack.gateway.http import BodyTooLarge, read_limited
from devstack.gateway.storage import multipart
from devstack.gateway.storage.downloads import sendable
from devstack.gateway.storage.errors import entity_too_large, invalid_json, invalid_mime_type, invalid_request

MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the small form fields


@dataclass(frozen=True)
class Upload:
    data: bytes
    mimetype: str
    cache_control: str
    user_metadata: dict[str, Any] | None


async def _read_at_most(request: Request, limit: int) -> bytes:
    try:
        return await read_limited(request, limit)
    except BodyTooLarge:
        raise entity_too_large() from None


def check_mime_type(mimetype: str, allowed: list[str] | None) -> None:
    """Storage's validateMimeType: `type/subtype` or `type/*`, compared literally (parameters count)."""
    if not allowed:
        return
    requested = mimetype.split("/")
    if len(requested) >= 2:
        for entry in allowed:
            allowed_type, _, allowed_sub = entry.partition("/")
            if allowed_type == requested[0] and allowed_sub in ("*", requested[1]):
                return
    raise invalid_mime_type(mimetype)


def _json_object(text: str | bytes, source: str) -> dict[str, Any] | None:
    """User metadata: Storage ignores what it cannot parse, but what would parse and then fail in
    the database (NUL, unpaired surrogates) is refused, naming ``source`` and the key."""
    try:
        value = bounded_json.parse(text)
    except bounded_json.JsonError as exc:
        if exc.problem in ("nul", "surrogate"):
            raise invalid_json(exc, source) from None
        return None
    return value if isinstance(value, dict) else None


def _check_header_value(name: str, value: str) -> None:
    """Both fields are stored in the metadata column and sent back as download headers, so they
    must be visible ASCII (NUL would also reach PostgreSQL, CR/LF would split the header)."""
    if not sendable(value):
        raise invalid_request(f"{name} must contain only printable ASCII characters")


async def read_upload(request: Request, *, max_size: int, allowed_mime_types: list[str] | None) -> Upload:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        body = await _read_at_most(request, max_size + MULTIPART_OVERHEAD_BYTES)
        try:
            parts = {p.name: p for p in multipart.parse(body, content_type)}
        except multipart.MultipartError as exc:
            raise invalid_request("No content provided") from exc
        file_part = next((p for p in parts.values() if p.filename is not None), None)
        if file_part is None:
            raise invalid_request("No content provided")
        if len(file_part.data) > max_size:
            raise entity_too_large()
        fields = {name: p.data.decode("utf-8", "replace") for name, p in parts.items() if p.filename is None}
        mimetype = fields.get("contentType") or file_part.content_type or "application/octet-stream"
        cache_time = fields.get("cacheControl")
        for name, value in (("contentType", mimetype), ("cacheControl", cache_time or "")):
            _check_header_value(name, value)
        check_mime_type(mimetype, allowed_mime_types)
        metadata_text = fields.get("metadata") or fields.get("userMetadata")
        return Upload(
            data=file_part.data,
            mimetype=mimetype,
            cache_control=f"max-age={cache_time}" if cache_time else "no-cache",
            user_metadata=_json_object(metadata_text, "metadata") if metadata_text else None,
        )
    mimetype = content_type or "application/octet-stream"
    _check_header_value("contentType", mimetype)
    check_mime_type(mimetype, allowed_mime_types)
    raw_metadata = request.headers.get("x-metadata")
    user_metadata = None
    if raw_metadata:
        try:
            user_metadata = _json_object(base64.b64decode(raw_metadata), "x-metadata")
        except ValueError:  # binascii.Error, or non-ASCII text: not base64, so no metadata
            user_metadata = None
    cache_control = request.headers.get("cache-control", "no-cache")
    _check_header_value("cacheControl", cache_control)
    data = await _read_at_most(request, max_size)
    return Upload(
        data=data,
        mimetype=mimetype,
        cache_control=cache_control,
        user_metadata=user_metadata,
    )
