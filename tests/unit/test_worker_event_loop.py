"""The worker's event loop: uvloop by default where it is installed, asyncio on request or without it."""

from __future__ import annotations

import asyncio
import os

import pytest
import uvloop

from worker import cli, compose, event_loop
from worker.config import ConfigError, Settings, load_settings


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("SUPABASE_", "WORKER_", "DATABASE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("WORKER_STORE", "postgres")
    monkeypatch.setenv("DATABASE_URL", "postgresql://127.0.0.1:1/none")
    return monkeypatch


def loop_of_run(env: pytest.MonkeyPatch) -> asyncio.AbstractEventLoop:
    """The loop `python -m worker run` gives the worker (compose.run_worker replaced by a probe)."""
    seen: list[asyncio.AbstractEventLoop] = []

    async def probe(_settings: Settings) -> int:
        seen.append(asyncio.get_running_loop())
        return 0

    env.setattr(compose, "run_worker", probe)
    assert cli._run(load_settings()) == 0
    return seen[0]


@pytest.mark.parametrize("value", [None, "auto", "uvloop", "UVLOOP"])
def test_the_worker_runs_on_uvloop_by_default_and_on_request(env: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        env.setenv("WORKER_EVENT_LOOP", value)
    loop = loop_of_run(env)
    assert isinstance(loop, uvloop.Loop)
    assert event_loop.describe(loop).startswith("uvloop 0.")


def test_asyncio_on_request(env: pytest.MonkeyPatch) -> None:
    env.setenv("WORKER_EVENT_LOOP", "asyncio")
    loop = loop_of_run(env)
    assert not isinstance(loop, uvloop.Loop)
    assert event_loop.describe(loop).startswith("asyncio (")


def test_auto_without_uvloop_installed_runs_on_asyncio(env: pytest.MonkeyPatch) -> None:
    env.setattr(event_loop, "uvloop_installed", lambda: False)
    assert not isinstance(loop_of_run(env), uvloop.Loop)


def test_insisting_on_uvloop_without_it_is_a_configuration_error(env: pytest.MonkeyPatch) -> None:
    env.setattr("worker.config.uvloop_installed", lambda: False)
    env.setenv("WORKER_EVENT_LOOP", "uvloop")
    with pytest.raises(ConfigError, match=r"WORKER_EVENT_LOOP: .*uvloop is not installed"):
        load_settings()
