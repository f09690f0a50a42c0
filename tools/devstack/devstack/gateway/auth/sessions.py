"""Sessions and refresh tokens (GoTrue's v1 scheme: opaque tokens in auth.refresh_tokens).

Rotation follows GoTrue: each refresh revokes the presented token and issues a child. A revoked
token is still honoured when it is the parent of the session's active token (the client lost the
answer: the active token is returned again) or within the reuse interval; past that it is refused
with ``refresh_token_already_used`` and the whole session's tokens are revoked (and that revocation
is committed).
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from devstack.gateway.auth import users
from devstack.gateway.auth.access_tokens import AuthMethod
from devstack.gateway.auth.errors import AuthError, bad_request

REFRESH_TOKEN_REUSE_INTERVAL_SECONDS = 10  # GoTrue's default, and `supabase start`'s config.toml
_TOKEN_ALPHABET = string.ascii_letters + string.digits
_TOKEN_LENGTH = 12  # GoTrue's crypto.SecureAlphanumeric(12)

LogoutScope = Literal["global", "local", "others"]


@dataclass(frozen=True)
class Grant:
    """What a sign-in or refresh produced; the route turns it into a session response."""

    user: users.User
    session_id: uuid.UUID
    refresh_token: str
    amr: list[AuthMethod]


def _new_token() -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_LENGTH))


async def _rows(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # module constants; values are bound
        return await cur.fetchall() if cur.description else []


async def _amr(conn: AsyncConnection[Any], session_id: uuid.UUID) -> list[AuthMethod]:
    rows = await _rows(
        conn,
        """
        select authentication_method, extract(epoch from updated_at)::bigint as ts
        from auth.mfa_amr_claims where session_id = %(sid)s order by updated_at desc
        """,
        {"sid": session_id},
    )
    return [AuthMethod(r["authentication_method"], int(r["ts"])) for r in rows]


async def _insert_refresh_token(
    conn: AsyncConnection[Any], user_id: uuid.UUID, session_id: uuid.UUID, parent: str | None
) -> str:
    token = _new_token()
    await conn.execute(
        """
        insert into auth.refresh_tokens (token, user_id, session_id, parent)
        values (%(token)s, %(uid)s, %(sid)s, %(parent)s)
        """,
        {"token": token, "uid": user_id, "sid": session_id, "parent": parent},
    )
    return token


async def _touch_sign_in(conn: AsyncConnection[Any], user_id: uuid.UUID) -> users.User:
    rows = await _rows(
        conn,
        f"update auth.users set last_sign_in_at = now(), updated_at = now() where id = %(uid)s"
        f" returning {users.USER_COLUMNS}",
        {"uid": user_id},
    )
    return rows[0]


async def start(conn: AsyncConnection[Any], user: users.User, method: str) -> Grant:
    """Open a new session for ``user`` authenticated by ``method`` (call inside a transaction)."""
    session_id = uuid.uuid4()
    await conn.execute(
        "insert into auth.sessions (id, user_id, aal) values (%(sid)s, %(uid)s, 'aal1')",
        {"sid": session_id, "uid": user["id"]},
    )
    await conn.execute(
        """
        insert into auth.mfa_amr_claims (id, session_id, authentication_method)
        values (%(id)s, %(sid)s, %(method)s)
        """,
        {"id": uuid.uuid4(), "sid": session_id, "method": method},
    )
    token = await _insert_refresh_token(conn, user["id"], session_id, None)
    fresh = await _touch_sign_in(conn, user["id"])
    return Grant(fresh, session_id, token, await _amr(conn, session_id))


async def refresh(conn: AsyncConnection[Any], presented: str) -> Grant:
    """Rotate ``presented`` (``conn`` must be outside a transaction: a refusal commits its revocation)."""
    refusal: AuthError | None = None
    grant: Grant | None = None
    async with conn.transaction():
        # Lock order: the session, then its token, as a sign-out's delete (session, then its tokens
        # by cascade) takes them; the other order deadlocked a refresh racing a sign-out.
        owner = await _rows(
            conn, "select session_id from auth.refresh_tokens where token = %(token)s", {"token": presented}
        )
        if owner and owner[0]["session_id"] is not None:
            # Serialize refreshes of one session, as GoTrue does with its row locks.
            await conn.execute(
                "select 1 from auth.sessions where id = %(sid)s for update", {"sid": owner[0]["session_id"]}
            )
        found = await _rows(
            conn,
            """
            select id, token, revoked, user_id, session_id,
                   now() - updated_at > make_interval(secs => %(reuse)s) as beyond_reuse_interval
            from auth.refresh_tokens where token = %(token)s
            for update
            """,
            {"token": presented, "reuse": REFRESH_TOKEN_REUSE_INTERVAL_SECONDS},
        )
        if not found:  # never issued, or its session was signed out meanwhile
            raise bad_request("refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found")
        token = found[0]
        session_id: uuid.UUID | None = token["session_id"]
        if session_id is None:
            raise bad_request("session_not_found", "Invalid Refresh Token: No Valid Session Found")

        issued: str | None = None
        if token["revoked"]:
            active = await _rows(
                conn,
                """
                select token, parent from auth.refresh_tokens
                where session_id = %(sid)s and not revoked order by id desc limit 1
                """,
                {"sid": session_id},
            )
            if active and active[0]["parent"] == token["token"]:
                issued = active[0]["token"]  # the client missed our last answer: give it again
            elif token["beyond_reuse_interval"]:
                await conn.execute(
                    """
                    update auth.refresh_tokens set revoked = true, updated_at = now()
                    where session_id = %(sid)s and not revoked
                    """,
                    {"sid": session_id},
                )
                refusal = bad_request("refresh_token_already_used", "Invalid Refresh Token: Already Used")
        if refusal is None:
            if issued is None:
                await conn.execute(
                    "update auth.refresh_tokens set revoked = true, updated_at = now() where id = %(id)s",
                    {"id": token["id"]},
                )
                issued = await _insert_refresh_token(conn, token["user_id"], session_id, token["token"])
            await conn.execute("update auth.sessions set updated_at = now() where id = %(sid)s", {"sid": session_id})
            user = await _touch_sign_in(conn, token["user_id"])
            grant = Grant(user, session_id, issued, await _amr(conn, session_id))
    if refusal is not None:
        raise refusal
    assert grant is not None
    return grant


async def exists(conn: AsyncConnection[Any], session_id: uuid.UUID) -> bool:
    return bool(await _rows(conn, "select 1 as found from auth.sessions where id = %(sid)s", {"sid": session_id}))


async def logout(
    conn: AsyncConnection[Any], user_id: uuid.UUID, session_id: uuid.UUID | None, scope: LogoutScope
) -> None:
    """Delete sessions (their refresh tokens and amr rows cascade), as GoTrue's Logout does."""
    if session_id is not None and scope == "local":
        await conn.execute("delete from auth.sessions where id = %(sid)s", {"sid": session_id})
    elif session_id is not None and scope == "others":
        await conn.execute(
            "delete from auth.sessions where user_id = %(uid)s and id <> %(sid)s", {"uid": user_id, "sid": session_id}
        )
    else:
        # Sessions first (their tokens cascade), in the lock order a refresh takes; then any token
        # left without a session.
        await conn.execute("delete from auth.sessions where user_id = %(uid)s", {"uid": user_id})
        await conn.execute("delete from auth.refresh_tokens where user_id = %(uid)s", {"uid": user_id})
