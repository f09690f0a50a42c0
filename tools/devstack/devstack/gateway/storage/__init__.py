"""/storage/v1: buckets and objects (upload, download, signed URLs, remove, list) with metadata in
storage.objects written as the caller's role, so RLS decides as on hosted Storage."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from devstack.gateway.context import GatewayContext
from devstack.gateway.storage.endpoints import StorageEndpoints

OBJECT = "/storage/v1/object"
BUCKET = "/storage/v1/bucket"
KEY = "{bucket}/{key:path}"


def routes(ctx: GatewayContext) -> list[BaseRoute]:
    api = StorageEndpoints(ctx)
    g = api.guarded
    # Specific prefixes (sign, list, authenticated, public) come before the catch-all object routes.
    return [
        Route(f"{OBJECT}/sign/{KEY}", g(api.sign), methods=["POST"]),
        Route(f"{OBJECT}/sign/{KEY}", g(api.download_signed), methods=["GET"]),
        Route(f"{OBJECT}/list/{{bucket}}", g(api.list_objects), methods=["POST"]),
        Route(f"{OBJECT}/authenticated/{KEY}", g(api.download_authenticated), methods=["GET"]),
        Route(f"{OBJECT}/public/{KEY}", g(api.download_public), methods=["GET"]),
        Route(f"{OBJECT}/{KEY}", g(api.upload), methods=["POST", "PUT"]),
        Route(f"{OBJECT}/{KEY}", g(api.download), methods=["GET"]),
        Route(f"{OBJECT}/{{bucket}}", g(api.remove), methods=["DELETE"]),
        Route(BUCKET, g(api.list_buckets), methods=["GET"]),
        Route(f"{BUCKET}/", g(api.list_buckets), methods=["GET"]),
        Route(BUCKET, g(api.create_bucket), methods=["POST"]),
        Route(f"{BUCKET}/", g(api.create_bucket), methods=["POST"]),
        Route(f"{BUCKET}/{{bucket}}", g(api.get_bucket), methods=["GET"]),
    ]
