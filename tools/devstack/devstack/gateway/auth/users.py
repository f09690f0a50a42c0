"""auth.users: creating, finding and updating users, and the user JSON GoTrue returns.

Passwords are hashed in the database with pgcrypto's bcrypt (``crypt(pw, gen_salt('bf', 10))``),
the same ``$2a$10$`` format GoTrue writes, so users survive a switch to a real stack's dump.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.errors import UniqueViolation
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from devstack.gateway.auth.errors import AuthError

AUDIENCE = "authenticated"
DEFAULT_ROLE = "authenticated"
NIL_INSTANCE = "00000000-0000-0000-0000-000000000000"
# identity ids are not stored (no auth.identities here); derive stable ones per user and provider
_IDENTITY_NAMESPACE = uuid.UUID("6f1d2a3c-8b0e-4c55-9a57-1f0c2f1e7d10")

User = dict[str, Any]

USER_COLUMNS = """
  id, aud, role, email, phone, email_confirmed_at, phone_confirmed_at, confirmed_at, last_sign_in_at,
  raw_app_meta_data, raw_user_meta_data, created_at, updated_at, is_anonymous, banned_until, deleted_at
"""

INSERT_USER = f"""
insert into auth.users (
  instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
  raw_app_meta_data, raw_user_meta_data, is_anonymous
) values (
  %(instance)s, %(id)s, %(aud)s, %(role)s, %(email)s,
  case when %(password)s::text is null then '' else extensions.crypt(%(password)s, extensions.gen_salt('bf', 10)) end,
  case when %(confirmed)s then now() end,
  %(app_metadata)s, %(user_metadata)s, %(is_anonymous)s
)
returning {USER_COLUMNS}
"""

# The hash comparison runs in SQL too; an empty hash (anonymous users) never matches.
FIND_BY_EMAIL_WITH_PASSWORD_CHECK = f"""
select {USER_COLUMNS},
       coalesce(encrypted_password, '') <> ''
         and encrypted_password = extensions.crypt(%(password)s, encrypted_password) as password_ok
from auth.users
where email = %(email)s and aud = %(aud)s and not is_anonymous
"""


async def _one(conn: AsyncConnection[Any], query: str, params: dict[str, Any]) -> User | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # module constants; values are bound
        return await cur.fetchone()


async def create(
    conn: AsyncConnection[Any],
    *,
    email: str | None,
    password: str | None,
    user_metadata: dict[str, Any],
    app_metadata: dict[str, Any],
    is_anonymous: bool,
) -> User:
    """Insert a user (email users are auto-confirmed, as with mailer_autoconfirm)."""
    user_id = uuid.uuid4()
    if email is not None:
        # GoTrue fills user_metadata from the email identity and marks it verified on confirmation.
        user_metadata = {
            **user_metadata,
            "sub": str(user_id),
            "email": email,
            "email_verified": True,
            "phone_verified": False,
        }
    try:
        row = await _one(
            conn,
            INSERT_USER,
            {
                "instance": NIL_INSTANCE,
                "id": user_id,
                "aud": AUDIENCE,
                "role": DEFAULT_ROLE,
                "email": email,
                "password": password,
                "confirmed": email is not None,
                "app_metadata": Jsonb(app_metadata),
                "user_metadata": Jsonb(user_metadata),
                "is_anonymous": is_anonymous,
            },
        )
    except UniqueViolation as exc:
        # Two sign-ups with one email raced past the lookup; the index decided.
        raise user_already_exists() from exc
    assert row is not None
    return row


def user_already_exists() -> AuthError:
    return AuthError(422, "user_already_exists", "User already registered")


async def email_taken(conn: AsyncConnection[Any], email: str) -> bool:
    row = await _one(
        conn,
        "select 1 as found from auth.users where email = %(email)s and aud = %(aud)s and not is_anonymous",
        {"email": email, "aud": AUDIENCE},
    )
    return row is not None


async def find_by_credentials(conn: AsyncConnection[Any], email: str, password: str) -> User | None:
    """The user whose email and password match, or None (GoTrue never says which one was wrong)."""
    row = await _one(
        conn, FIND_BY_EMAIL_WITH_PASSWORD_CHECK, {"email": email.lower(), "password": password, "aud": AUDIENCE}
    )
    if row is None or not row.pop("password_ok"):
        return None
    return row


async def find_by_id(conn: AsyncConnection[Any], user_id: uuid.UUID) -> User | None:
    return await _one(conn, f"select {USER_COLUMNS} from auth.users where id = %(id)s", {"id": user_id})


async def update(
    conn: AsyncConnection[Any],
    user_id: uuid.UUID,
    *,
    password: str | None,
    user_metadata_patch: dict[str, Any] | None,
) -> tuple[User, bool]:
    """Apply a password change and/or merge into user_metadata; returns (user, same_password)."""
    row = await _one(
        conn,
        """
        select coalesce(encrypted_password, '') <> ''
               and encrypted_password = extensions.crypt(%(password)s, encrypted_password) as same
        from auth.users where id = %(id)s
        """,
        {"id": user_id, "password": password or ""},
    )
    if password is not None and row is not None and row["same"]:
        current = await find_by_id(conn, user_id)
        assert current is not None
        return current, True
    updated = await _one(
        conn,
        f"""
        update auth.users set
          encrypted_password = case when %(password)s::text is null then encrypted_password
                                    else extensions.crypt(%(password)s, extensions.gen_salt('bf', 10)) end,
          raw_user_meta_data = raw_user_meta_data || %(patch)s,
          updated_at = now()
        where id = %(id)s
        returning {USER_COLUMNS}
        """,
        {"id": user_id, "password": password, "patch": Jsonb(user_metadata_patch or {})},
    )
    assert updated is not None
    return updated, False


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _put_timestamp(out: dict[str, Any], user: User, key: str) -> None:
    if user[key] is not None:
        out[key] = _timestamp(user[key])


def _identities(user: User) -> list[dict[str, Any]]:
    if user["is_anonymous"] or not user["email"]:
        return []
    user_id = str(user["id"])
    return [
        {
            "identity_id": str(uuid.uuid5(_IDENTITY_NAMESPACE, f"{user_id}:email")),
            "id": user_id,
            "user_id": user_id,
            "identity_data": {
                "email": user["email"],
                "email_verified": user["email_confirmed_at"] is not None,
                "phone_verified": False,
                "sub": user_id,
            },
            "provider": "email",
            "last_sign_in_at": _timestamp(user["last_sign_in_at"]),
            "created_at": _timestamp(user["created_at"]),
            "updated_at": _timestamp(user["updated_at"]),
            "email": user["email"],
        }
    ]


def to_json(user: User) -> dict[str, Any]:
    """GoTrue's models.User JSON: nullable strings render as "", unset timestamps are omitted."""
    out: dict[str, Any] = {
        "id": str(user["id"]),
        "aud": user["aud"] or "",
        "role": user["role"] or "",
        "email": user["email"] or "",
    }
    _put_timestamp(out, user, "email_confirmed_at")
    out["phone"] = user["phone"] or ""
    for key in ("phone_confirmed_at", "confirmed_at", "last_sign_in_at"):
        _put_timestamp(out, user, key)
    out.update(
        {
            "app_metadata": user["raw_app_meta_data"] or {},
            "user_metadata": user["raw_user_meta_data"] or {},
            "identities": _identities(user),
            "created_at": _timestamp(user["created_at"]),
            "updated_at": _timestamp(user["updated_at"]),
            "is_anonymous": bool(user["is_anonymous"]),
        }
    )
    return out
