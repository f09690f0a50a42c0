"""The stack under attack, from the environment, and the two test users.

SUPABASE_URL (+ SUPABASE_PUBLISHABLE_KEY or SUPABASE_ANON_KEY; SUPABASE_SECRET_KEY or
SUPABASE_SERVICE_ROLE_KEY to plant canaries; DATABASE_URL for table checksums and the catalog
check) points the suite at any stack. Users: ATTACK_USER_A_EMAIL/_PASSWORD and
ATTACK_USER_B_EMAIL/_PASSWORD sign in two existing users; without them two anonymous users are
signed up (hosted: "Allow anonymous sign-ins" must be on, as the product's plugin needs anyway).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class User:
    id: str
    token: str


@dataclass
class Target:
    url: str
    client_key: str  # publishable (or legacy anon) key: what an attacker has
    secret_key: str | None = None  # secret (or legacy service_role) key: setup and checks only
    database_url: str | None = None
    local: bool = False  # a devstack started by the suite (its process can be watched)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls) -> Target | None:
        url = os.environ.get("SUPABASE_URL")
        if not url:
            return None
        key = os.environ.get("SUPABASE_PUBLISHABLE_KEY") or os.environ.get("SUPABASE_ANON_KEY")
        if not key:
            raise SystemExit("SUPABASE_URL is set: set SUPABASE_PUBLISHABLE_KEY (or SUPABASE_ANON_KEY) too")
        return cls(
            url=url.rstrip("/"),
            client_key=key,
            secret_key=os.environ.get("SUPABASE_SECRET_KEY") or os.environ.get("SUPABASE_SERVICE_ROLE_KEY"),
            database_url=os.environ.get("DATABASE_URL"),
        )

    def headers(self, token: str | None = None, **more: str) -> dict[str, str]:
        """The client key as ``apikey``, and a bearer token when given."""
        base = {"apikey": self.client_key}
        if token is not None:
            base["Authorization"] = f"Bearer {token}"
        return {**base, **more}

    def service_headers(self, **more: str) -> dict[str, str]:
        if not self.secret_key:
            raise RuntimeError("this step needs SUPABASE_SECRET_KEY")
        headers = {"apikey": self.secret_key, **more}
        if not self.secret_key.startswith("sb_"):  # a legacy service_role JWT goes in both headers
            headers["Authorization"] = f"Bearer {self.secret_key}"
        return headers

    @property
    def ws_url(self) -> str:
        return self.url.replace("http", "ws", 1) + f"/realtime/v1/websocket?apikey={self.client_key}&vsn=1.0.0"


def sign_in(target: Target, client: httpx.Client, which: str) -> User:
    email = os.environ.get(f"ATTACK_USER_{which}_EMAIL")
    password = os.environ.get(f"ATTACK_USER_{which}_PASSWORD")
    if email and password:
        answer = client.post(
            f"{target.url}/auth/v1/token",
            params={"grant_type": "password"},
            json={"email": email, "password": password},
            headers=target.headers(),
        )
    else:
        answer = client.post(f"{target.url}/auth/v1/signup", json={}, headers=target.headers())
    if answer.status_code != 200:
        raise SystemExit(f"signing in test user {which} failed: {answer.status_code} {answer.text[:300]}")
    body = answer.json()
    return User(id=body["user"]["id"], token=body["access_token"])
