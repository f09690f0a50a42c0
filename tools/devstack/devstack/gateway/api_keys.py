"""What hosted Supabase's API gateway does with the opaque API keys, before any service sees a request
(docs/hosted-platform.md §1.2–§1.4).

An ``sb_publishable_…`` / ``sb_secret_…`` key in the ``apikey`` header (or, failing that, the
``apikey`` URL parameter) is looked up and swapped for a JWT of its role (publishable → ``anon``,
secret → ``service_role``, see ``RoleTokens``): the services behind this middleware (REST, RPC,
Auth, Storage, Realtime's websocket and HTTP broadcast) only ever see JWTs, as behind hosted's
gateway. The same JWT becomes ``Authorization: Bearer`` unless the request carries a user's
access token there, which passes through and wins. ``Authorization: Bearer sb_…`` (supabase-js
and supabase-py send the key there when there is no session) is no user token: it is replaced.

Refused before any service: a malformed ``sb_`` key, one this stack never issued or has revoked,
and a secret key sent by a browser (by ``User-Agent``), each with hosted's status, body and
``sb-error-code`` header, on every surface (a websocket upgrade gets the same HTTP answer).
Anything that is not an ``sb_`` key (the legacy JWT keys, or no key) passes unchanged: each
service answers it as before.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from devstack import keys
from devstack.gateway.context import Settings
from devstack.gateway.key_set import KeySet
from devstack.gateway.tokens import bearer

OPAQUE_PREFIX = "sb_"
# Used with fullmatch: "$" would also accept a trailing newline (a URL parameter can carry one).
KEY_SHAPE = re.compile(
    rf"sb_(publishable|secret)_[A-Za-z0-9_-]{{{keys.RANDOM_CHARS}}}_[A-Za-z0-9_-]{{{keys.CHECKSUM_CHARS}}}"
)
# ⚠ Hosted's exact browser match is undocumented; a User-Agent starting "Mozilla/" is refused
# there, and a custom one is not (docs/hosted-platform.md §1.4).
BROWSER_UA_PREFIX = "Mozilla/"
ERROR_CODE_HEADER = "sb-error-code"
# Set in the ASGI scope's state (never from anything the client sends) once an opaque key passed.
TRANSLATED = "devstack.api_key_translated"


@dataclass(frozen=True)
class Refusal:
    status: int
    body: dict[str, str]
    error_code: str | None = None

    def response(self) -> JSONResponse:
        headers = {ERROR_CODE_HEADER: self.error_code} if self.error_code else None
        return JSONResponse(self.body, status_code=self.status, headers=headers)


# Hosted's answers (docs/hosted-platform.md §1.3). ⚠ No capture shows an sb-error-code header on
# "Unregistered API key", so none is invented; revoked (deleted) keys get the same answer there.
INVALID = Refusal(401, {"message": "Invalid API key"}, "UNAUTHORIZED_INVALID_API_KEY")
UNREGISTERED = Refusal(
    401,
    {
        "message": "Unregistered API key",
        "hint": "Double check the provided API key as it is not registered for this project.",
    },
)
SECRET_IN_BROWSER = Refusal(
    401,
    {
        "message": "Forbidden use of secret API key in browser",
        "hint": "Secret API keys can only be used in a protected environment and should never be used in a "
        "browser. Delete this secret API key immediately!",
    },
    "UNAUTHORIZED_INVALID_API_KEY_TYPE",
)


ROLE_TOKEN_LIFETIME_SECONDS = 3600
ROLE_TOKEN_RENEW_SECONDS = 600  # re-mint this long before expiry: a token in flight stays valid
API_KEY_ROLES = ("anon", "service_role")


class RoleTokens:
    """The JWT that stands in for an opaque key of a role downstream (publishable → ``anon``,
    secret → ``service_role``).

    Minted with the project's *current* signing key, ``{role, iss, iat, exp}`` as self-hosted's
    pre-signed ES256 keys carry (§1.2), so the new keys keep working after the legacy JWT secret is
    revoked and follow each rotation, as on hosted (whose own minted token is undocumented). One
    token per role and key set, re-minted before it expires. A project on the legacy secret
    (``DEVSTACK_JWT=legacy``) gets the stack's legacy anon / service_role JWTs, as the Supabase
    CLI maps them.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._minted: dict[str, tuple[KeySet, str, int]] = {}  # role -> (key set, token, exp)

    def token(self, role: str) -> str:
        if role not in API_KEY_ROLES:
            raise ValueError(f"no API-key role {role!r}")
        key_set = self.settings.signing.snapshot()
        if key_set.signer.kid is None:
            return self.settings.anon_key if role == "anon" else self.settings.service_role_key
        now = int(time.time())
        cached = self._minted.get(role)
        if cached is not None and cached[0] is key_set and cached[2] - now > ROLE_TOKEN_RENEW_SECONDS:
            return cached[1]
        expires = now + ROLE_TOKEN_LIFETIME_SECONDS
        claims = {"iss": keys.ISSUER, "role": role, "iat": now, "exp": expires}
        signer = key_set.signer
        token = jwt.encode(claims, signer.key, algorithm=signer.alg, headers=signer.headers())
        self._minted[role] = (key_set, token, expires)
        return token


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class KeyRegistry:
    """The stack's opaque keys, revoked ones included, reread whenever ``secrets.json`` is replaced,
    so ``python -m devstack keys new|revoke`` takes effect on a running gateway at its next request.

    Keys are indexed by their SHA-256, so a lookup's timing says nothing about a stored key's text.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_digest: dict[bytes, keys.ApiKey] = {}

    def lookup(self, key: str) -> keys.ApiKey | None:
        self._refresh()
        return self._by_digest.get(_digest(key))

    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._by_digest = None, {}
            return
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)  # keys._write replaces the file: a new inode
        if stamp == self._stamp:
            return
        stored = keys.read(self.path)
        self._by_digest = {_digest(k.key): k for k in stored.api_keys} if stored else {}
        self._stamp = stamp


@dataclass(frozen=True)
class Incoming:
    """The parts of a request head the translation reads."""

    apikey: str | None
    authorization: str | None
    user_agent: str
    websocket: bool


@dataclass(frozen=True)
class Translation:
    """Headers to set (replacing any of the same name) and the role JWT for the URL parameter."""

    headers: dict[str, str]
    role_jwt: str | None = None


def translate(incoming: Incoming, role_tokens: RoleTokens, registry: KeyRegistry) -> Translation | Refusal:
    apikey, authorization = incoming.apikey, incoming.authorization
    user_token = bearer(authorization)
    key_as_bearer = user_token is not None and user_token.startswith(OPAQUE_PREFIX)
    if apikey is None or not apikey.startswith(OPAQUE_PREFIX):
        if key_as_bearer:
            # A legacy key with an opaque Bearer: the gateways put the apikey in its place.
            return Translation({"authorization": f"Bearer {apikey}"} if apikey else {"authorization": ""})
        return Translation({})
    if not KEY_SHAPE.fullmatch(apikey):
        return INVALID
    record = registry.lookup(apikey)
    if record is None or record.revoked:
        return UNREGISTERED
    if record.kind == "secret" and incoming.user_agent.startswith(BROWSER_UA_PREFIX):
        return SECRET_IN_BROWSER
    role_jwt = role_tokens.token(record.role)
    headers = {"apikey": role_jwt}
    if authorization is None or key_as_bearer:
        headers["authorization"] = f"Bearer {role_jwt}"
    if incoming.websocket:
        headers["x-api-key"] = role_jwt  # what Realtime reads first (the gateway sets it)
    return Translation(headers, role_jwt)


def _incoming(scope: Scope) -> Incoming:
    found: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in (b"apikey", b"authorization", b"user-agent") and name not in found:
            found[name] = value.decode("latin-1")
    apikey = found.get(b"apikey")
    if not apikey:
        params = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        apikey = next((v for k, v in params if k == "apikey"), None)
    return Incoming(
        apikey or None, found.get(b"authorization"), found.get(b"user-agent", ""), scope["type"] == "websocket"
    )


def _rewrite_query(query: bytes, role_jwt: str) -> bytes:
    """Replace every ``apikey`` parameter by the role JWT, leaving the others byte for byte (a
    PostgREST filter must not be re-encoded)."""
    parts = [b"apikey=" + role_jwt.encode() if p.split(b"=", 1)[0] == b"apikey" else p for p in query.split(b"&")]
    return b"&".join(parts)


def _apply(scope: Scope, translation: Translation) -> Scope:
    if not translation.headers:
        return scope
    names = {n.encode() for n in translation.headers}
    headers = [(n, v) for n, v in scope["headers"] if n not in names]
    headers += [(n.encode(), v.encode()) for n, v in translation.headers.items() if v]  # "" only removes
    new = {**scope, "headers": headers}
    if translation.role_jwt is not None:
        new["state"] = {**scope.get("state", {}), TRANSLATED: True}
        if scope.get("query_string"):
            new["query_string"] = _rewrite_query(scope["query_string"], translation.role_jwt)
    return new


def key_passes(request: Request, settings: Settings) -> bool:
    """The gateway's key check (Kong's key-auth) for a request that carries a key: one of the
    stack's legacy JWT keys, or an opaque key this middleware registered and translated."""
    key = request.headers.get("apikey") or request.query_params.get("apikey")
    return key in (settings.anon_key, settings.service_role_key) or bool(request.scope.get("state", {}).get(TRANSLATED))


class ApiKeyGateway:
    """ASGI middleware: the translation above, on every HTTP request and websocket upgrade."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.role_tokens = RoleTokens(settings)
        self.registry = KeyRegistry(settings.secrets_file)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        outcome = translate(_incoming(scope), self.role_tokens, self.registry)
        if isinstance(outcome, Refusal):
            # On a websocket scope Starlette sends this as the upgrade's denial (an HTTP answer).
            await outcome.response()(scope, receive, send)
            return
        await self.app(_apply(scope, outcome), receive, send)
