"""Which Supabase key the worker was given, judged from the key alone (nothing is sent).

Today's projects have opaque keys (``sb_secret_…`` acts as ``service_role``, ``sb_publishable_…``
as ``anon``); older ones have JWT keys whose payload names the role. Only the server can tell a
valid key from a forged one, so this reads a JWT's payload without verifying it: it is for
refusing an obviously wrong kind early and saying which kind is in use, never for trusting one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jwt

SECRET_VAR = "SUPABASE_SECRET_KEY"  # noqa: S105 - a variable name, not a secret
LEGACY_VAR = "SUPABASE_SERVICE_ROLE_KEY"

Kind = Literal["secret", "service_role", "publishable", "anon", "other_role", "unknown"]
# What each kind is called in messages.
LABELS: dict[Kind, str] = {
    "secret": "secret API key",
    "service_role": "legacy service_role JWT key",
    "publishable": "publishable API key",
    "anon": "legacy anon JWT key",
    "other_role": "JWT key",
    "unknown": "key of unrecognised form",
}


@dataclass(frozen=True)
class SupabaseKey:
    variable: str  # the environment variable it came from
    value: str
    kind: Kind
    role: str | None = None  # a JWT's unverified role claim

    def describe(self) -> str:
        """E.g. "secret API key from SUPABASE_SECRET_KEY" (never the key itself)."""
        label = LABELS[self.kind] if self.kind != "other_role" else f"JWT key with role {self.role!r}"
        return f"{label} from {self.variable}"

    def refusal(self) -> str | None:
        """Why the worker cannot use this key, or None. Keys of unrecognised form are left to the
        server to judge (``run --check`` then says it refused them)."""
        wrong = {
            "publishable": "a publishable key (sb_publishable_…), which acts as anon",
            "anon": "the legacy anon key (a JWT with role anon)",
            "other_role": f"a JWT with role {self.role!r}",
        }.get(self.kind)
        if wrong is None:
            return None
        return (
            f"{self.variable}: is {wrong}; the worker needs the project's secret key (sb_secret_…) "
            "or its legacy service_role key"
        )


def classify(variable: str, value: str) -> SupabaseKey:
    if value.startswith("sb_secret_"):
        return SupabaseKey(variable, value, "secret")
    if value.startswith("sb_publishable_"):
        return SupabaseKey(variable, value, "publishable")
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return SupabaseKey(variable, value, "unknown")
    role = claims.get("role")
    if role in ("service_role", "anon"):
        return SupabaseKey(variable, value, role, role)
    if isinstance(role, str) and role:
        return SupabaseKey(variable, value, "other_role", role)
    return SupabaseKey(variable, value, "unknown")


def choose(secret_key: str | None, service_role_key: str | None) -> SupabaseKey | None:
    """SUPABASE_SECRET_KEY when set, else the legacy SUPABASE_SERVICE_ROLE_KEY."""
    if secret_key:
        return classify(SECRET_VAR, secret_key)
    if service_role_key:
        return classify(LEGACY_VAR, service_role_key)
    return None
