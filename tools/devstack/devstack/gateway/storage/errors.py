"""Storage's error bodies and statuses (supabase/storage ``StorageBackendError``).

Hosted Storage renders ``{"statusCode": "<semantic status>", "code", "error", "message"}`` but sends
most errors with HTTP **400**: only 500s (and a few explicit cases such as a role check) keep
their own status. storage3 / storage-js read ``statusCode`` and ``error`` from the body.
"""

from __future__ import annotations

from psycopg import errors as pg_errors
from starlette.responses import JSONResponse

from devstack.gateway.bounded_json import JsonError


class StorageError(Exception):
    def __init__(
        self, status: int, code: str, message: str, *, error: str | None = None, http_status: int | None = None
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.error = error or code
        self.message = message
        self.http_status = http_status if http_status is not None else (500 if status == 500 else 400)

    def response(self) -> JSONResponse:
        body = {"statusCode": str(self.status), "code": self.code, "error": self.error, "message": self.message}
        return JSONResponse(body, status_code=self.http_status)


def no_such_bucket() -> StorageError:
    return StorageError(404, "NoSuchBucket", "Bucket not found", error="Bucket not found")


def no_such_key() -> StorageError:
    return StorageError(404, "NoSuchKey", "Object not found", error="not_found")


def access_denied(message: str = "Access denied", *, http_status: int | None = None) -> StorageError:
    return StorageError(403, "AccessDenied", message, error="Unauthorized", http_status=http_status)


def invalid_key(key: str) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: {key}")


def key_too_long(limit: int) -> StorageError:
    return StorageError(400, "InvalidKey", f"Invalid key: the key is longer than {limit} bytes")


def invalid_bucket_name(name: str) -> StorageError:
    return StorageError(400, "InvalidBucketName", "Bucket name invalid", error="Invalid Input")


def invalid_request(message: str) -> StorageError:
    return StorageError(400, "InvalidRequest", message)


def invalid_json(exc: JsonError, where: str = "body") -> StorageError:
    """A refused JSON document, worded like Storage's schema errors (``body/prefixes/0 ...``)."""
    if exc.problem == "syntax":
        return invalid_request("Body is not valid JSON but content-type is set to 'application/json'")
    if exc.path:
        return invalid_request(f"{where}/{exc.slashed_path()} {exc.reason}")
    return invalid_request(f"{where}: {exc.reason}")


def invalid_jwt(message: str) -> StorageError:
    return StorageError(400, "InvalidJWT", message)


def invalid_signature(message: str = "Invalid signature") -> StorageError:
    return StorageError(400, "InvalidSignature", message)


def entity_too_large() -> StorageError:
    return StorageError(
        413, "EntityTooLarge", "The object exceeded the maximum allowed size", error="Payload too large"
    )


def invalid_mime_type(mime_type: str) -> StorageError:
    return StorageError(415, "InvalidMimeType", f"mime type {mime_type} is not supported", error="invalid_mime_type")


def key_already_exists() -> StorageError:
    return StorageError(409, "KeyAlreadyExists", "The resource already exists", error="Duplicate")


def bucket_already_exists() -> StorageError:
    return StorageError(409, "BucketAlreadyExists", "The resource already exists", error="Duplicate")


def unknown_route(status: int, method: str, path: str) -> StorageError:
    """No endpoint for the path (404, Fastify's message) or the method (405), with their own statuses."""
    if status == 405:
        return StorageError(
            405,
            "MethodNotAllowed",
            f"Method {method} is not allowed on {path}",
            error="method_not_allowed",
            http_status=405,
        )
    return StorageError(404, "NotFound", f"Route {method}:{path} not found", error="not_found", http_status=404)


def from_database(exc: Exception) -> StorageError:
    """Storage's DBError.fromDBError mapping for the SQLSTATEs a request can cause."""
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        text = str(exc)
        return access_denied("new row violates row-level security policy" if "row-level security" in text else text)
    if isinstance(exc, pg_errors.UniqueViolation):
        return StorageError(409, "ResourceAlreadyExists", "The resource already exists", error="Duplicate")
    if isinstance(exc, pg_errors.QueryCanceled):
        return StorageError(544, "DatabaseTimeout", "The connection to the database timed out", http_status=544)
    sqlstate = getattr(exc, "sqlstate", None) or "unknown"
    if sqlstate.startswith("22"):
        # Storage maps 22P02 (a value that does not convert, e.g. a token's ``sub`` that is not a
        # uuid) to InvalidParameter 400; devstack does so for every data exception (class 22: a
        # value out of range, a NUL, ...), which only a request's values can cause (hosted-platform §7).
        message = getattr(getattr(exc, "diag", None), "message_primary", None) or "Invalid Parameter value"
        return StorageError(400, "InvalidParameter", message)
    return StorageError(500, "DatabaseError", f"database error, code: {sqlstate}")
