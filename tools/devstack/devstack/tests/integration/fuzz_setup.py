"""What the gateway fuzz test sets up before it sends anything: signed-in users, the credentials
table (fuzz_model.CREDENTIALS) and the objects the Storage templates refer to."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg

from devstack.testing.fixtures import Stack
from devstack.tests.integration import fuzz_tokens
from devstack.tests.integration.fuzz_model import Subjects
from devstack.tests.integration.fuzz_tokens import HOSTILE_CLAIMS

EXISTING_BYTES = b"hello world"
# What an operator or an older version could have stored: a value no HTTP header may carry.
UNSENDABLE_MIMETYPE = "text/plain\r\nx-injected: 1\u00fc"


def _bearer(apikey: str, token: str) -> dict[str, str]:
    return {"apikey": apikey, "Authorization": f"Bearer {token}"}


async def sign_up(http: httpx.AsyncClient, stack: Stack) -> tuple[str, str]:
    """An anonymous user's id and access token."""
    assert stack.publishable_key is not None
    answer = await http.post("/auth/v1/signup", json={}, headers={"apikey": stack.publishable_key})
    answer.raise_for_status()
    session = answer.json()
    return session["user"]["id"], session["access_token"]


async def credentials(http: httpx.AsyncClient, stack: Stack) -> tuple[str, dict[str, dict[str, str]]]:
    """The signed-in user's id and every kind of credential a request can carry, by name."""
    assert stack.publishable_key is not None and stack.secret_key is not None and stack.jwt_secret is not None
    uid, token = await sign_up(http, stack)
    _, other = await sign_up(http, stack)
    key = stack.publishable_key
    table = {
        "none": {},
        "publishable": {"apikey": key},
        "anon": _bearer(stack.anon_key, stack.anon_key),
        "user": _bearer(key, token),
        "other_user": _bearer(stack.anon_key, other),
        "secret": _bearer(stack.secret_key, stack.secret_key),
        "service_role": _bearer(stack.service_role_key, stack.service_role_key),
        "expired": _bearer(key, fuzz_tokens.expired(stack.jwt_secret, uid)),
        "garbage": _bearer("sb_publishable_" + "x" * 31, "a.b.c"),
    }
    table.update({name: _bearer(key, forged) for name, forged in fuzz_tokens.forged(uid).items()})
    for i, extra in enumerate(HOSTILE_CLAIMS):
        table[f"claims:{i}"] = _bearer(key, fuzz_tokens.signed(stack.jwt_secret, uid, extra))
    return uid, table


async def subjects(http: httpx.AsyncClient, stack: Stack, uid: str, bucket: str, user: dict[str, str]) -> Subjects:
    """Upload the objects the templates download; give one a stored content type no header can carry."""
    existing, bad = f"{uid}/fuzz-existing.txt", f"{uid}/fuzz-bad-header.txt"
    for key in (existing, bad):
        answer = await http.post(
            f"/storage/v1/object/{bucket}/{key}",
            content=EXISTING_BYTES,
            headers={**user, "content-type": "text/plain", "x-upsert": "true"},
        )
        answer.raise_for_status()
    with psycopg.connect(stack.database_url, autocommit=True) as conn:
        conn.execute(
            "update storage.objects set metadata = metadata || jsonb_build_object('mimetype', %s::text, "
            "'cacheControl', %s::text) where bucket_id = %s and name = %s",
            (UNSENDABLE_MIMETYPE, "max-age=1\n", bucket, bad),
        )
    return Subjects(uid=uid, bucket=bucket, existing_key=existing, bad_header_key=bad)


def _owner(method: str, path: str) -> str:
    if method == "OPTIONS":
        return "gateway"  # hosted's API gateway answers preflights itself
    for prefix, service in (("/rest/v1", "rest"), ("/auth/v1", "auth"), ("/storage/v1", "storage")):
        if path == prefix or path.startswith(prefix + "/"):
            return service
    return "realtime" if path.startswith("/realtime/v1/") else "gateway"


def error_shape(method: str, path: str, status: int, body: Any, headers: httpx.Headers) -> str | None:
    """What is wrong with a 4xx body, for the client that parses it (None: nothing).

    The gateway's own refusals (API keys, oversized requests: hosted's Kong and edge) are
    ``{"message"}`` on every path; past them each service answers in its client's shape.
    """
    service = _owner(method, path)
    if not isinstance(body, dict):
        return "not a JSON object"
    if status in (401, 413, 414, 431) and isinstance(body.get("message"), str) and set(body) <= {"message", "hint"}:
        return None
    if service == "rest":
        if set(body) >= {"code", "message", "details", "hint"} and isinstance(body["message"], str):
            return None
        return "not PostgREST's {code, message, details, hint}"
    if service == "auth":
        if "X-Supabase-Api-Version" in headers:
            ok = isinstance(body.get("code"), str) and isinstance(body.get("message"), str)
        else:
            ok = (
                body.get("code") == status
                and isinstance(body.get("error_code"), str)
                and isinstance(body.get("msg"), str)
            )
        oauth = isinstance(body.get("error"), str) and isinstance(body.get("error_description"), str)
        return None if ok or oauth else "not GoTrue's {code, error_code, msg} (or its 2024-01-01 / OAuth shape)"
    if service == "storage":
        if all(isinstance(body.get(k), str) for k in ("statusCode", "error", "message")):
            return None
        return "not Storage's {statusCode, error, message}"
    if service == "realtime" and isinstance(body.get("errors"), dict) and body["errors"]:
        return None  # Realtime's changeset errors: {"errors": {"messages": ["can't be blank"]}}
    return None if isinstance(body.get("message"), str) and body["message"] else "no message"
