"""Request-body parsing and the input checks GoTrue makes, with its codes and messages."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request

from devstack.gateway import bounded_json
from devstack.gateway.auth.errors import AuthError, bad_request
from devstack.gateway.http import BodyTooLarge, read_limited

PASSWORD_MIN_LENGTH = 6  # GoTrue's default (GOTRUE_PASSWORD_MIN_LENGTH), as `supabase start` uses
PASSWORD_MAX_LENGTH = 72  # bcrypt's limit, enforced by GoTrue
EMAIL_MAX_LENGTH = 255

# The format check GoTrue uses (github.com/badoux/checkmail ValidateFormat).
_EMAIL_FORMAT = re.compile(
    r"^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$"
)


class Body:
    """A JSON object body; typed getters refuse wrong types the way Go's json.Unmarshal does."""

    def __init__(self, data: dict[str, Any]):
        self._data = data

    def text(self, key: str) -> str:
        value = self._data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _bad_json(f"json: cannot unmarshal {go_type(value)} into Go struct field .{key} of type string")
        return value

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self._data.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _bad_json(
                f"json: cannot unmarshal {go_type(value)} into Go struct field .{key} of type map[string]interface {{}}"
            )
        return value


def go_type(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "string"


def _bad_json(detail: str) -> AuthError:
    return bad_request("bad_json", f"Could not parse request body as JSON: {detail}")


def body_too_large() -> AuthError:
    return AuthError(413, "request_too_large", "Request body is too large")


async def read_body(request: Request, limit: int) -> Body:
    try:
        raw = await read_limited(request, limit)
    except BodyTooLarge:
        raise body_too_large() from None
    try:
        data = await bounded_json.parse_async(raw) if raw.strip() else None
    except bounded_json.JsonError as exc:
        if exc.problem == "nul":  # Go decodes it; the database then cannot store it
            raise bad_request("validation_failed", exc.message()) from None
        raise _bad_json(exc.message()) from None
    if data is None:
        if raw.strip():
            return Body({})  # a literal `null` decodes into an empty struct in Go
        raise _bad_json("unexpected end of JSON input")
    if not isinstance(data, dict):
        raise _bad_json(f"json: cannot unmarshal {go_type(data)} into Go value of type api.Params")
    return Body(data)


def validate_email(email: str) -> str:
    if not email:
        raise bad_request("validation_failed", "An email address is required")
    if len(email) > EMAIL_MAX_LENGTH:
        raise bad_request("validation_failed", "An email address is too long")
    if not _EMAIL_FORMAT.match(email):
        raise bad_request("validation_failed", "Unable to validate email address: invalid format")
    return email.lower()


def check_password_strength(password: str) -> None:
    if len(password) > PASSWORD_MAX_LENGTH:
        raise bad_request("validation_failed", f"Password cannot be longer than {PASSWORD_MAX_LENGTH} characters")
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AuthError(
            422,
            "weak_password",
            f"Password should be at least {PASSWORD_MIN_LENGTH} characters.",
            weak_password_reasons=["length"],
        )
