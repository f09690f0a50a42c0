"""GoTrue's error bodies, in both API versions, plus the gateway's (Kong's) API-key refusals.

GoTrue picks the body shape from the request's ``X-Supabase-Api-Version`` header: from 2024-01-01
on it is ``{"code": "<error_code>", "message": ...}`` and the header is echoed; before (or when
absent or unparsable) it is ``{"code": <status>, "error_code": ..., "msg": ...}`` with an
``x-sb-error-code`` header. supabase_auth reads the code only when the echo is present.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

API_VERSION_HEADER = "X-Supabase-Api-Version"
API_VERSION_2024_01_01 = date(2024, 1, 1)


class AuthError(Exception):
    """An error GoTrue would answer with; ``code`` is GoTrue's ErrorCode string."""

    def __init__(self, status: int, code: str, message: str, *, weak_password_reasons: list[str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.weak_password_reasons = weak_password_reasons


class OAuthError(Exception):
    """The OAuth2-style error GoTrue returns for a few token-endpoint failures (always 400)."""

    def __init__(self, error: str, description: str):
        super().__init__(description)
        self.error = error
        self.description = description


def bad_request(code: str, message: str) -> AuthError:
    return AuthError(400, code, message)


def _requested_api_version(request: HTTPConnection) -> date | None:
    raw = request.headers.get(API_VERSION_HEADER)
    if not raw:
        return None
    try:
        parsed = date.fromisoformat(raw.strip())
    except ValueError:
        return None  # GoTrue logs a warning and falls back to the initial version
    return API_VERSION_2024_01_01 if parsed >= API_VERSION_2024_01_01 else None


def render(request: HTTPConnection, exc: AuthError | OAuthError) -> JSONResponse:
    if isinstance(exc, OAuthError):
        return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=400)
    version = _requested_api_version(request)
    headers: dict[str, str] = {"x-sb-error-code": exc.code}
    body: dict[str, Any]
    if version is not None:
        headers[API_VERSION_HEADER] = version.isoformat()
        body = {"code": exc.code, "message": exc.message}
    else:
        body = {"code": exc.status, "error_code": exc.code, "msg": exc.message}
    if exc.weak_password_reasons is not None:
        body["weak_password"] = {"reasons": exc.weak_password_reasons}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def unknown_route(status: int, method: str, path: str) -> AuthError:
    """No endpoint for the path (404) or the method (405). GoTrue's router answers these in
    plain text; the clients parse JSON, so they get GoTrue's error shape."""
    if status == 405:
        return AuthError(405, "method_not_allowed", f"Method {method} is not allowed on {path}")
    return AuthError(404, "not_found", f"No endpoint {path}")


def missing_api_key() -> JSONResponse:
    # Hosted Supabase's gateway (Kong key-auth) answers before GoTrue sees the request.
    return JSONResponse({"message": "No API key found in request"}, status_code=401)


def invalid_api_key() -> JSONResponse:
    return JSONResponse({"message": "Invalid authentication credentials"}, status_code=401)
