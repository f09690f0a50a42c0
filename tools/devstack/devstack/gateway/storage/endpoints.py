"""The /storage/v1 endpoints storage3 and storage-js call (a supabase/storage subset)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from devstack.gateway import bounded_json
from devstack.gateway.context import GatewayContext
from devstack.gateway.http import BodyTooLarge, read_limited
from devstack.gateway.pg import BIGINT_MAX, request_transaction
from devstack.gateway.storage import catalog, credentials
from devstack.gateway.storage.credentials import Caller
from devstack.gateway.storage.downloads import StoredFile, link_for_download, stored_header
from devstack.gateway.storage.errors import (
    StorageError,
    bucket_already_exists,
    entity_too_large,
    from_database,
    invalid_json,
    invalid_request,
    no_such_bucket,
    no_such_key,
)
from devstack.gateway.storage.layout import Layout, check_bucket_name, check_key
from devstack.gateway.storage.listing import list_options
from devstack.gateway.storage.uploads import read_upload

Handler = Callable[[Request], Awaitable[Response]]
MAX_PREFIXES_PER_DELETE = 1000

log = logging.getLogger(__name__)


def jsonable(row: dict[str, Any]) -> dict[str, Any]:
    """Render a row the way node-postgres + JSON.stringify would (ISO timestamps with ms and Z)."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        elif isinstance(value, uuid.UUID):
            out[key] = str(value)
        else:
            out[key] = value
    return out


async def read_json(request: Request, limit: int) -> dict[str, Any]:
    try:
        raw = await read_limited(request, limit)
    except BodyTooLarge:
        raise entity_too_large() from None
    try:
        data = await bounded_json.parse_async(raw) if raw.strip() else {}
    except bounded_json.JsonError as exc:
        raise invalid_json(exc) from None
    if not isinstance(data, dict):
        raise invalid_request("body must be object")
    return data


def _write_file(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _remove_file(path: Path, stop_at: Path) -> None:
    """Delete an object's version file and the folders it leaves empty (up to the bucket folder)."""
    path.unlink(missing_ok=True)
    folder = path.parent
    while folder != stop_at and folder.is_relative_to(stop_at):
        try:
            folder.rmdir()
        except OSError:
            break  # not empty (another object or version lives here)
        folder = folder.parent


def _discard_file(path: Path, stop_at: Path) -> None:
    """Remove a version file no row points at any more, after the change committed.

    The change already happened, so a filesystem problem here must not turn it into an error
    answer: the leftover file is only wasted space.
    """
    try:
        _remove_file(path, stop_at)
    except OSError as exc:
        log.warning("storage: could not remove the unreferenced file %s: %s", path, exc)


class StorageEndpoints:
    def __init__(self, ctx: GatewayContext):
        self.ctx = ctx
        self.layout = Layout(ctx.settings.storage_dir)

    # -- plumbing ------------------------------------------------------------------------------

    def guarded(self, handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except StorageError as exc:
                return exc.response()
            except psycopg.Error as exc:
                return from_database(exc).response()

        return endpoint

    def _caller(self, request: Request, *, optional: bool = False) -> Caller | None:
        return credentials.caller(
            request.headers.get("authorization"), self.ctx.settings.signing.snapshot(), optional=optional
        )

    def _required_caller(self, request: Request) -> Caller:
        who = self._caller(request)
        assert who is not None  # not optional: an invalid token raised
        return who

    @asynccontextmanager
    async def _as(self, request: Request, who: Caller) -> AsyncIterator[AsyncConnection[Any]]:
        async with request_transaction(
            self.ctx.api,
            role=who.role,
            claims=who.claims,
            method=request.method,
            path=request.url.path,
            headers=request.headers,
            schema="storage",
            settings=await self.ctx.role_settings.for_role(who.role),
        ) as conn:
            yield conn

    async def _bucket_as_platform(self, bucket_id: str) -> catalog.Row:
        async with self.ctx.admin.connection() as conn:
            bucket = await catalog.find_bucket(conn, bucket_id)
        if bucket is None:
            raise no_such_bucket()
        return bucket

    async def _find_object(self, request: Request, who: Caller | None, bucket_id: str, key: str) -> catalog.Row:
        """The object's row as ``who`` sees it (RLS applies), or as the platform when ``who`` is
        None (public buckets, signed URLs); NoSuchKey when there is none."""
        if who is None:
            async with self.ctx.admin.connection() as conn:
                row = await catalog.find_object(conn, bucket_id, key)
        else:
            async with self._as(request, who) as conn:
                row = await catalog.find_object(conn, bucket_id, key)
        if row is None:
            raise no_such_key()
        return row

    def _names(self, request: Request) -> tuple[str, str]:
        return check_bucket_name(request.path_params["bucket"]), check_key(request.path_params["key"])

    def _serve(self, request: Request, bucket: str, key: str, row: catalog.Row) -> Response:
        if not row.get("version"):
            raise no_such_key()  # a row written straight into the table has no bytes here
        path = self.layout.object_file(bucket, key, row["version"])
        link = link_for_download(path, self.layout.temp_file())
        meta = row.get("metadata") or {}
        headers = {"Cache-Control": stored_header(meta.get("cacheControl"), "no-cache")}
        etag = stored_header(meta.get("eTag"), "")
        if etag:
            headers["ETag"] = etag
        download = request.query_params.get("download")
        if download is not None:
            filename = download or key.rsplit("/", 1)[-1]
            headers["Content-Disposition"] = f"attachment; filename*=UTF-8''{quote(filename)}"
        mimetype = stored_header(meta.get("mimetype"), "application/octet-stream")
        return StoredFile(link, mimetype=mimetype, headers=headers)

    # -- objects -------------------------------------------------------------------------------

    async def upload(self, request: Request) -> Response:
        """POST (x-upsert decides) and PUT (always upsert) /object/{bucket}/{key}."""
        bucket_id, key = self._names(request)
        who = self._required_caller(request)
        bucket = await self._bucket_as_platform(bucket_id)
        limit = self.ctx.settings.max_body_bytes
        if bucket["file_size_limit"]:
            limit = min(limit, int(bucket["file_size_limit"]))
        upload = await read_upload(request, max_size=limit, allowed_mime_types=bucket["allowed_mime_types"])
        upsert = request.method == "PUT" or request.headers.get("x-upsert") == "true"
        version = str(uuid.uuid4())
        metadata = {
            "eTag": f'"{hashlib.md5(upload.data, usedforsecurity=False).hexdigest()}"',
            "size": len(upload.data),
            "mimetype": upload.mimetype,
            "cacheControl": upload.cache_control,
            "lastModified": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "contentLength": len(upload.data),
            "httpStatusCode": 200,
        }
        temp = self.layout.temp_file()
        final = self.layout.object_file(bucket_id, key, version)
        bucket_root = self.layout.root / bucket_id
        await asyncio.to_thread(_write_file, temp, upload.data)
        try:
            async with self._as(request, who) as conn:
                object_id, replaced = await catalog.insert_object(
                    conn,
                    bucket_id=bucket_id,
                    name=key,
                    owner=who.owner,
                    version=version,
                    metadata=metadata,
                    user_metadata=upload.user_metadata,
                    upsert=upsert,
                )
                # The version file is new, so placing it before the commit hides nothing; if the
                # commit fails no row points at it and it is removed below.
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, final)
        except BaseException:
            temp.unlink(missing_ok=True)
            _discard_file(final, bucket_root)
            raise
        if replaced and replaced != version:
            _discard_file(self.layout.object_file(bucket_id, key, replaced), bucket_root)
        return JSONResponse({"Id": str(object_id), "Key": f"{bucket_id}/{key}"})

    async def download(self, request: Request) -> Response:
        """GET /object/{bucket}/{key}: a missing or invalid token makes the caller anonymous."""
        return await self._download(request, token_optional=True)

    async def download_authenticated(self, request: Request) -> Response:
        """GET /object/authenticated/{bucket}/{key}: a valid token is required."""
        return await self._download(request, token_optional=False)

    async def _download(self, request: Request, *, token_optional: bool) -> Response:
        bucket_id, key = self._names(request)
        who = self._caller(request, optional=token_optional)
        bucket = await self._bucket_as_platform(bucket_id)
        if who is None and not bucket["public"]:
            raise no_such_bucket()  # anonymous callers only see public buckets
        row = await self._find_object(request, None if bucket["public"] else who, bucket_id, key)
        return self._serve(request, bucket_id, key, row)

    async def download_public(self, request: Request) -> Response:
        bucket_id, key = self._names(request)
        bucket = await self._bucket_as_platform(bucket_id)
        if not bucket["public"]:
            raise no_such_bucket()
        row = await self._find_object(request, None, bucket_id, key)
        return self._serve(request, bucket_id, key, row)

    async def sign(self, request: Request) -> Response:
        bucket_id, key = self._names(request)
        who = self._required_caller(request)
        body = await read_json(request, self.ctx.settings.max_body_bytes)
        expires_in = body.get("expiresIn")
        if isinstance(expires_in, str) and expires_in.strip().isdigit() and len(expires_in.strip()) <= 19:
            expires_in = int(expires_in)  # storage3 sends a string; Storage's schema coerces it
        if expires_in is None:
            raise invalid_request("body must have required property 'expiresIn'")
        if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 1 <= expires_in <= BIGINT_MAX:
            raise invalid_request(f"body/expiresIn must be integer >= 1 and <= {BIGINT_MAX}")
        await self._find_object(request, who, bucket_id, key)  # the caller must be able to see it
        token = credentials.sign_download(bucket_id, key, expires_in, self.ctx.settings.jwt_secret)
        return JSONResponse({"signedURL": f"/object/sign/{bucket_id}/{key}?token={token}"})

    async def download_signed(self, request: Request) -> Response:
        bucket_id, key = self._names(request)
        token = request.query_params.get("token")
        if not token:
            raise invalid_request("querystring must have required property 'token'")
        credentials.verify_download(token, bucket_id, key, self.ctx.settings.jwt_secret)
        row = await self._find_object(request, None, bucket_id, key)
        return self._serve(request, bucket_id, key, row)

    async def remove(self, request: Request) -> Response:
        bucket_id = check_bucket_name(request.path_params["bucket"])
        who = self._required_caller(request)
        prefixes = (await read_json(request, self.ctx.settings.max_body_bytes)).get("prefixes")
        if not isinstance(prefixes, list) or not prefixes or not all(isinstance(p, str) for p in prefixes):
            raise invalid_request("body/prefixes must be a non-empty array of strings")
        if len(prefixes) > MAX_PREFIXES_PER_DELETE:
            raise invalid_request(f"At most {MAX_PREFIXES_PER_DELETE} objects can be deleted per request.")
        async with self._as(request, who) as conn:
            removed = await catalog.delete_objects(conn, bucket_id, prefixes)
        bucket_root = self.layout.root / bucket_id
        for row in removed:
            if row.get("version"):
                _discard_file(self.layout.object_file(bucket_id, row["name"], row["version"]), bucket_root)
        return JSONResponse([jsonable(row) for row in removed])

    async def list_objects(self, request: Request) -> Response:
        bucket_id = check_bucket_name(request.path_params["bucket"])
        who = self._required_caller(request)
        body = await read_json(request, self.ctx.settings.max_body_bytes)
        prefix = body.get("prefix") or ""
        if not isinstance(prefix, str):
            raise invalid_request("body/prefix must be string")
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        options = list_options(body)
        async with self._as(request, who) as conn:
            entries = await catalog.list_folder(conn, bucket_id, folder, options)
        return JSONResponse([jsonable(entry) for entry in entries])

    # -- buckets -------------------------------------------------------------------------------

    @staticmethod
    def _bucket_json(row: catalog.Row) -> dict[str, Any]:
        return {**jsonable(row), "type": "STANDARD"}

    async def list_buckets(self, request: Request) -> Response:
        who = self._required_caller(request)
        async with self._as(request, who) as conn:
            rows = await catalog.list_buckets(conn)
        return JSONResponse([self._bucket_json(r) for r in rows])

    async def get_bucket(self, request: Request) -> Response:
        bucket_id = check_bucket_name(request.path_params["bucket"])
        who = self._required_caller(request)
        async with self._as(request, who) as conn:
            row = await catalog.find_bucket(conn, bucket_id)
        if row is None:
            raise no_such_bucket()
        return JSONResponse(self._bucket_json(row))

    async def create_bucket(self, request: Request) -> Response:
        who = self._required_caller(request)
        body = await read_json(request, self.ctx.settings.max_body_bytes)
        name = body.get("name")
        if not isinstance(name, str):
            raise invalid_request("body must have required property 'name'")
        bucket_id = body.get("id") or name
        if not isinstance(bucket_id, str):
            raise invalid_request("body/id must be string")
        check_bucket_name(name)
        check_bucket_name(bucket_id)
        public = body.get("public", False)
        if not isinstance(public, bool):
            raise invalid_request("body/public must be boolean")
        size_limit = body.get("file_size_limit")
        valid_limit = isinstance(size_limit, int) and not isinstance(size_limit, bool) and 0 <= size_limit <= BIGINT_MAX
        if size_limit is not None and not valid_limit:
            raise invalid_request(
                f"body/file_size_limit must be null or an integer >= 0 and <= {BIGINT_MAX} (bytes; 0 means no limit)"
            )
        mime_types = body.get("allowed_mime_types")
        if mime_types is not None and not (
            isinstance(mime_types, list) and all(isinstance(m, str) for m in mime_types)
        ):
            raise invalid_request("body/allowed_mime_types must be null or an array of strings")
        owner = who.owner
        values = {
            "id": bucket_id,
            "name": name,
            "owner": catalog.owner_uuid(owner),
            "owner_id": owner,
            "public": public,
            # Like Storage, a limit of 0 means "no bucket limit" (uploads only check a truthy one);
            # store it as null so the row says so too.
            "file_size_limit": size_limit or None,
            "allowed_mime_types": [m for m in mime_types if m] if mime_types is not None else None,
        }
        try:
            async with self._as(request, who) as conn:
                await catalog.create_bucket(conn, values)
        except psycopg.errors.UniqueViolation as exc:
            raise bucket_already_exists() from exc
        return JSONResponse({"name": name})
