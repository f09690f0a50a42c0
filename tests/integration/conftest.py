"""Integration fixtures: a Supabase API to talk to.

If SUPABASE_URL, SUPABASE_ANON_KEY, SUPABASE_SERVICE_ROLE_KEY (and DATABASE_URL, for fixture
setup) are set, the suites run against that stack unchanged — a `supabase start` stack included.
Otherwise a gateway is started in-process on a free loopback port against the devstack database.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from devstack import migrate, paths
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings


@dataclass(frozen=True)
class Stack:
    url: str
    anon_key: str
    service_role_key: str
    database_url: str
    jwt_secret: str | None  # unknown for an external stack


def free_port() -> int:
    with socket.socket() as s:
        s.bind((paths.HOST, 0))
        port: int = s.getsockname()[1]
        return port


class ServerThread:
    """uvicorn in a daemon thread on loopback; stops by itself at the end of the session."""

    def __init__(self, app: object, port: int) -> None:
        config = uvicorn.Config(app, host=paths.HOST, port=port, log_level="warning", ws="websockets")  # type: ignore[arg-type]
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://{paths.HOST}:{port}"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.server.started:
                return self
            if not self.thread.is_alive():
                raise RuntimeError("server thread died during startup")
            time.sleep(0.02)
        raise RuntimeError("server did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="session")
def stack(pg_cluster: None) -> Iterator[Stack]:
    if os.environ.get("SUPABASE_URL"):
        yield Stack(
            url=os.environ["SUPABASE_URL"].rstrip("/"),
            anon_key=os.environ["SUPABASE_ANON_KEY"],
            service_role_key=os.environ["SUPABASE_SERVICE_ROLE_KEY"],
            database_url=os.environ.get("DATABASE_URL", paths.database_url()),
            jwt_secret=os.environ.get("SUPABASE_JWT_SECRET"),
        )
        return
    migrate.migrate()
    settings = Settings.from_stack()
    with ServerThread(create_app(settings), free_port()) as server:
        httpx.get(f"{server.url}/health", timeout=10).raise_for_status()
        yield Stack(
            url=server.url,
            anon_key=settings.anon_key,
            service_role_key=settings.service_role_key,
            database_url=paths.database_url(),
            jwt_secret=settings.jwt_secret,
        )
