"""PostgREST's error responses: ``{"code","message","details","hint"}`` with the hosted status codes.

The SQLSTATE → HTTP table follows PostgREST 13 (``pgErrorStatus``); the gateway-level errors
(missing/invalid API key, body too large) follow hosted Kong.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from starlette.responses import Response

from devstack.gateway import bounded_json

JSON_CONTENT_TYPE = "application/json; charset=utf-8"


class ApiError(Exception):
    """An error answered to the client; ``body`` overrides the PostgREST shape (Kong's errors)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Any = None,
        hint: Any = None,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = dict(headers or {})
        self.body = body

    def payload(self) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        return {"code": self.code, "message": self.message, "details": self.details, "hint": self.hint}

    def response(self) -> Response:
        headers = dict(self.headers)
        if self.body is None and self.code:
            headers.setdefault("Proxy-Status", f"PostgREST; error={self.code}")
        return Response(
            json.dumps(self.payload()).encode(),
            status_code=self.status,
            headers=headers,
            media_type=JSON_CONTENT_TYPE,
        )


# --- request errors (PGRST1xx) -------------------------------------------------------------------


def parse_error(what: str, text: str, column: int, details: str) -> ApiError:
    """PGRST100 with the message shape of PostgREST's parsec errors."""
    return ApiError(400, "PGRST100", f'"failed to parse {what} ({text})" (line 1, column {column})', details=details)


# Longest parameter text echoed in a refusal (PostgREST echoes all of it; ours may be 16 KB).
SHOWN_CHARS = 200


def param_refused(what: str, key: str, problem: str, *, value: str | None = None, column: int = 1) -> ApiError:
    """PGRST100 for a query parameter over one of the gateway's bounds (or holding a NUL), in the
    shape of a parse error, with the parameter named in ``details``."""

    def shown(text: str) -> str:
        return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."

    subject = f"{what} ({shown(value)})" if value is not None else what
    return ApiError(
        400,
        "PGRST100",
        f'"failed to parse {subject}" (line 1, column {column})',
        details=f'query parameter "{shown(key)}": {problem}',
    )


def invalid_body(message: str = "Empty or invalid json") -> ApiError:
    return ApiError(400, "PGRST102", message)


def invalid_schema(schema: str, exposed: tuple[str, ...]) -> ApiError:
    return ApiError(
        406,
        "PGRST106",
        f"Invalid schema: {schema}",
        hint=f"Only the following schemas are exposed: {', '.join(exposed)}",
    )


def media_type(accept: str) -> ApiError:
    return ApiError(406, "PGRST107", f"None of these media types are available: {accept}")


def not_embedded(resource: str) -> ApiError:
    return ApiError(
        400,
        "PGRST108",
        f"'{resource}' is not an embedded resource in this request",
        hint=f"Verify that '{resource}' is included in the 'select' query parameter.",
    )


def singular(rows: int) -> ApiError:
    return ApiError(
        406, "PGRST116", "Cannot coerce the result to a single JSON object", details=f"The result contains {rows} rows"
    )


def invalid_path() -> ApiError:
    return ApiError(404, "PGRST125", "Invalid path specified in request URL")


def root_disabled() -> ApiError:
    """The OpenAPI root (``GET /rest/v1/``) is not served, as with PostgREST's openapi-mode=disabled."""
    return ApiError(404, "PGRST126", "Root endpoint metadata is disabled")


def unsupported_method(method: str) -> ApiError:
    return ApiError(405, "PGRST117", f"Unsupported HTTP method: {method}")


def not_implemented(details: str) -> ApiError:
    return ApiError(400, "PGRST127", "Feature not implemented", details=details)


def aggregates_not_allowed() -> ApiError:
    return ApiError(400, "PGRST123", "Use of aggregate functions is not allowed")


def out_of_range(offset: int, total: int) -> ApiError:
    return ApiError(
        416,
        "PGRST103",
        "Requested range not satisfiable",
        details=f"An offset of {offset} was requested, but there are only {total} rows.",
    )


def bad_range(details: str) -> ApiError:
    return ApiError(416, "PGRST103", "Requested range not satisfiable", details=details)


# --- schema cache errors (PGRST2xx) --------------------------------------------------------------


def function_not_found(schema: str, name: str, keys: list[str], hint: str | None) -> ApiError:
    func = f"{schema}.{name}"
    if keys:
        args = ", ".join(keys)
        message = f"Could not find the function {func}({args}) in the schema cache"
        plural = "s" if len(keys) > 1 else ""
        searched = f" with parameter{plural} {args}"
    else:
        message = f"Could not find the function {func} without parameters in the schema cache"
        searched = " without parameters"
    details = (
        f"Searched for the function {func}{searched} or with a single unnamed json/jsonb parameter,"
        " but no matches were found in the schema cache."
    )
    return ApiError(404, "PGRST202", message, details=details, hint=hint)


def ambiguous_function(candidates: list[str]) -> ApiError:
    return ApiError(
        300,
        "PGRST203",
        "Could not choose the best candidate function between: " + ", ".join(candidates),
        hint="Try renaming the parameters or the function itself in the database"
        " so function overloading can be resolved",
    )


def payload_column_not_found(table: str, column: str) -> ApiError:
    return ApiError(400, "PGRST204", f"Could not find the '{column}' column of '{table}' in the schema cache")


def table_not_found(schema: str, name: str, suggestion: str | None) -> ApiError:
    hint = f"Perhaps you meant the table '{schema}.{suggestion}'" if suggestion else None
    return ApiError(404, "PGRST205", f"Could not find the table '{schema}.{name}' in the schema cache", hint=hint)


def column_not_found(relation: str, column: str) -> ApiError:
    """What Postgres answers for the column PostgREST would have qualified with the relation name."""
    return ApiError(400, "42703", f"column {relation}.{column} does not exist")


# --- JWT errors (PGRST3xx) and the Kong layer ----------------------------------------------------


def _invalid_token(code: str, message: str, details: str | None = None) -> ApiError:
    return ApiError(
        401,
        code,
        message,
        details=details,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description={json.dumps(message)}'},
    )


def jwt_decode_error(message: str, details: str | None = None) -> ApiError:
    return _invalid_token("PGRST301", message, details)


def jwt_claims_error(message: str) -> ApiError:
    return _invalid_token("PGRST303", message)


def no_api_key() -> ApiError:
    return ApiError(
        401,
        "",
        "No API key found in request",
        body={"message": "No API key found in request", "hint": "No `apikey` request header or url param was found."},
    )


def invalid_api_key() -> ApiError:
    return ApiError(
        401,
        "",
        "Invalid API key",
        body={"message": "Invalid API key", "hint": "Double check your Supabase `anon` or `service_role` API key."},
    )


def body_too_large() -> ApiError:
    return ApiError(413, "", "Request size limit exceeded", body={"message": "Request size limit exceeded"})


# --- database errors -----------------------------------------------------------------------------


def pg_status(sqlstate: str, message: str, *, authenticated: bool) -> int:
    """PostgREST 13's ``pgErrorStatus``."""
    exact = {
        "23503": 409,
        "23505": 409,
        "25006": 405,
        "53400": 500,
        "57P01": 503,
        "P0001": 400,
        "42P01": 404,
        "42P17": 500,
    }
    if sqlstate in exact:
        return exact[sqlstate]
    if sqlstate == "42501":
        return 403 if authenticated else 401
    if sqlstate == "42883":
        return 406 if message.startswith("function xmlagg(") else 404
    if sqlstate == "21000":
        return 400 if message.endswith("requires a WHERE clause") else 500
    if sqlstate == "22023":
        return 401 if message.startswith("role") and message.endswith("does not exist") else 400
    if sqlstate.startswith("PT"):
        try:
            status = int(sqlstate[2:])
        except ValueError:
            return 500
        return status if 100 <= status <= 599 else 500
    prefixes = {
        "08": 503,
        "09": 500,
        "0L": 403,
        "0P": 403,
        "25": 500,
        "28": 403,
        "2D": 500,
        "38": 500,
        "39": 500,
        "3B": 500,
        "40": 500,
        "53": 503,
        "54": 500,
        "55": 500,
        "57": 500,
        "58": 500,
        "F0": 500,
        "HV": 500,
        "P0": 500,
        "XX": 500,
    }
    return prefixes.get(sqlstate[:2], 400)


def from_pg(exc: psycopg.Error, *, authenticated: bool) -> ApiError:
    diag = exc.diag
    sqlstate = diag.sqlstate or exc.sqlstate or ""
    message = diag.message_primary or str(exc)
    if isinstance(exc, psycopg.OperationalError) and not sqlstate:
        # Lost connection and friends: PostgREST retries and answers 503.
        return ApiError(503, "PGRST000", "Database connection error. Retrying the connection.")
    if sqlstate == "PGRST":
        return _raise_pgrst(message, diag.message_detail)
    status = pg_status(sqlstate, message, authenticated=authenticated)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return ApiError(status, sqlstate, message, details=diag.message_detail, hint=diag.message_hint, headers=headers)


def _raise_pgrst(message: str, detail: str | None) -> ApiError:
    """``RAISE SQLSTATE 'PGRST' USING message = '{json}', detail = '{json}'``: full response control."""
    try:
        # The texts may carry values a caller sent: read them with the same bounds as a body.
        body = bounded_json.parse(message)
        meta = bounded_json.parse(detail or "")
        status = int(meta["status"])
        headers = {str(k): str(v) for k, v in dict(meta.get("headers") or {}).items()}
        return ApiError(
            status,
            str(body["code"]),
            str(body["message"]),
            details=body.get("details"),
            hint=body.get("hint"),
            headers=headers,
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return ApiError(
            500,
            "PGRST121",
            "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            details=f"Invalid JSON value for MESSAGE: '{message}'",
            hint="MESSAGE must be a JSON object with obligatory keys: 'code', 'message'"
            " and optional keys: 'details', 'hint'.",
        )
