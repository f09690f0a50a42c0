"""HTTP-level request facts: schema profile, media type, Prefer, Range and the JSON body."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request

from devstack.gateway import bounded_json
from devstack.gateway.http import BodyTooLarge, read_limited
from devstack.gateway.rest.errors import ApiError, bad_range, body_too_large, invalid_body, invalid_schema, media_type

# Supabase's default `[api] schemas` (hosted and `supabase start`).
EXPOSED_SCHEMAS: tuple[str, ...] = ("public", "graphql_public")
WRITE_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})

OBJECT_MEDIA = "application/vnd.pgrst.object+json"
ARRAY_MEDIA = "application/vnd.pgrst.array+json"


def schema_for(request: Request) -> str:
    """Content-Profile for writes, Accept-Profile for reads; unknown schemas are refused (PGRST106)."""
    header = "content-profile" if request.method in WRITE_METHODS else "accept-profile"
    profile = request.headers.get(header)
    if profile is None:
        return EXPOSED_SCHEMAS[0]
    if profile not in EXPOSED_SCHEMAS:
        raise invalid_schema(profile, EXPOSED_SCHEMAS)
    return profile


@dataclass(frozen=True)
class Accept:
    singular: bool  # vnd.pgrst.object+json: exactly one row, answered as an object
    strip_nulls: bool

    @property
    def content_type(self) -> str:
        return f"{OBJECT_MEDIA if self.singular else 'application/json'}; charset=utf-8"


def accept_for(request: Request) -> Accept:
    raw = request.headers.get("accept", "")
    if not raw.strip():
        return Accept(False, False)
    for candidate in raw.split(","):
        mime, _, params = candidate.strip().partition(";")
        mime = mime.strip().lower()
        strip = "nulls=stripped" in params.replace(" ", "")
        if mime == OBJECT_MEDIA:
            return Accept(True, strip)
        if mime == ARRAY_MEDIA:
            return Accept(False, strip)
        if mime in ("application/json", "*/*", "application/*", "application/geo+json"):
            return Accept(False, False)
    raise media_type(raw)


@dataclass(frozen=True)
class Prefer:
    representation: Literal["full", "minimal", "headers-only"] | None = None
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
    missing_default: bool = False
    rollback: bool = False

    def applied(self, *, with_resolution: bool = False, with_missing: bool = False) -> str | None:
        """The Preference-Applied value, in PostgREST's order."""
        values = []
        if with_resolution and self.resolution:
            values.append(f"resolution={self.resolution}")
        if with_missing and self.missing_default:
            values.append("missing=default")
        if self.representation:
            values.append("return=representation" if self.representation == "full" else f"return={self.representation}")
        if self.count:
            values.append(f"count={self.count}")
        if self.rollback:
            values.append("tx=rollback")
        return ", ".join(values) or None


def prefer_for(request: Request) -> Prefer:
    representation: Literal["full", "minimal", "headers-only"] | None = None
    count: Literal["exact", "planned", "estimated"] | None = None
    resolution: Literal["merge-duplicates", "ignore-duplicates"] | None = None
    missing_default = rollback = False
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            token = item.strip()
            if token == "return=representation":
                representation = "full"
            elif token == "return=minimal":
                representation = "minimal"
            elif token == "return=headers-only":
                representation = "headers-only"
            elif token in ("count=exact", "count=planned", "count=estimated"):
                # planned/estimated come from the planner on hosted; exact is what we can give.
                count = "exact" if token == "count=exact" else ("planned" if token == "count=planned" else "estimated")
            elif token == "resolution=merge-duplicates":
                resolution = "merge-duplicates"
            elif token == "resolution=ignore-duplicates":
                resolution = "ignore-duplicates"
            elif token == "missing=default":
                missing_default = True
            elif token == "tx=rollback":
                rollback = True
    return Prefer(representation, count, resolution, missing_default, rollback)


RANGE_RE = re.compile(r"^\s*(?:items=)?(\d+)-(\d*)\s*$")


def header_range(request: Request) -> tuple[int, int | None] | None:
    """``Range: 0-9`` (GET only, per RFC 9110) → (offset, limit)."""
    if request.method != "GET":
        return None
    raw = request.headers.get("range")
    if not raw:
        return None
    match = RANGE_RE.match(raw)
    if not match:
        return None
    lower = int(match.group(1))
    if not match.group(2):
        return lower, None
    upper = int(match.group(2))
    if upper < lower:
        raise bad_range("The lower boundary must be lower than or equal to the upper boundary in the Range header.")
    return lower, upper - lower + 1


async def read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_limited(request, limit)
    except BodyTooLarge:
        raise body_too_large() from None


@dataclass(frozen=True)
class Body:
    """The request JSON: ``text`` goes to Postgres untouched (numbers keep their digits), ``value``
    is only inspected (keys, shape)."""

    text: str
    value: Any


def parse_json(raw: bytes) -> Body:
    """The body as Body, or PGRST102 naming what was wrong (bounded_json's limits apply)."""
    try:
        return Body(raw.decode(), bounded_json.parse(raw))
    except (bounded_json.JsonError, UnicodeDecodeError) as exc:
        raise _invalid(exc) from None


async def read_json(request: Request, limit: int) -> Body | None:
    """The JSON body (parsed off the event loop when large), or None when there is none."""
    raw = await read_body(request, limit)
    if not raw.strip():
        return None
    try:
        value = await bounded_json.parse_async(raw)
    except bounded_json.JsonError as exc:
        raise _invalid(exc) from None
    return Body(raw.decode(), value)


def _invalid(exc: bounded_json.JsonError | UnicodeDecodeError) -> ApiError:
    """Malformed JSON keeps PostgREST's text; the limits hosted does not have say what they are."""
    if isinstance(exc, UnicodeDecodeError) or exc.problem == "syntax":
        return invalid_body()
    return invalid_body(exc.message())


__all__ = ["ApiError"]
