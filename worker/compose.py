"""The composition root: build the transports the settings ask for and run the core with them.

The only module outside ``adapters/`` and ``providers/`` that may import them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from rich.console import Console
from rich.table import Table

from worker import logs
from worker.clock import SystemClock
from worker.config import Settings
from worker.errors import StoreError
from worker.handlers import HANDLERS
from worker.health import create_app
from worker.llm import LimitedModel, ModelProvider
from worker.ports import ArtifactStore, QueueStore, Wakeups
from worker.runtime import Worker, WorkerConfig
from worker.shutdown import Shutdown

log = logging.getLogger("worker")
VIEWS = ("job_stats", "active_jobs", "pending_jobs_queue")


@dataclass
class Transports:
    store: QueueStore
    wakeups: Wakeups | None
    artifacts: ArtifactStore
    providers: dict[str, ModelProvider] = field(default_factory=dict)


def default_worker_id() -> str:
    replica = os.environ.get("RAILWAY_REPLICA_ID")
    base = f"railway-{replica[:12]}" if replica else socket.gethostname()
    return f"{base}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def build_transports(settings: Settings) -> Transports:
    if settings.worker_store == "postgres":
        from worker.adapters.files import FolderArtifacts
        from worker.adapters.postgres import PostgresStore, PostgresWakeups

        assert settings.database_url is not None  # checked by Settings
        return Transports(
            PostgresStore(settings.database_url),
            PostgresWakeups(settings.database_url),
            FolderArtifacts(settings.artifacts_dir),
        )
    from worker.adapters.supabase import RealtimeWakeups, StorageArtifacts, SupabaseStore, connect

    key = settings.supabase_key
    assert settings.supabase_url is not None and key is not None  # checked by Settings
    client = await connect(settings.supabase_url, key.value)
    return Transports(SupabaseStore(client), RealtimeWakeups(client), StorageArtifacts(client))


def build_providers(settings: Settings) -> dict[str, ModelProvider]:
    wanted = {settings.provider_for(kind) for kind in settings.worker_kinds}
    providers: dict[str, ModelProvider] = {}
    if "anthropic" in wanted and settings.anthropic_api_key:
        from worker.providers.claude import ClaudeProvider

        providers["anthropic"] = ClaudeProvider(
            settings.anthropic_api_key, settings.anthropic_base_url, settings.provider_timeout_seconds
        )
    if "gemini" in wanted and settings.gemini_api_key:
        from worker.providers.gemini import GeminiProvider

        providers["gemini"] = GeminiProvider(
            settings.gemini_api_key, settings.gemini_base_url, settings.provider_timeout_seconds
        )
    return providers


def build_worker(settings: Settings, transports: Transports) -> Worker:
    clock = SystemClock()
    limits = {name: asyncio.Semaphore(settings.provider_concurrency) for name in transports.providers}
    models = {
        kind: LimitedModel(
            transports.providers[settings.provider_for(kind)],
            settings.model_for(kind),
            limits[settings.provider_for(kind)],
            clock,
            retries=settings.provider_retries,
        )
        for kind in settings.worker_kinds
        if settings.provider_for(kind) in transports.providers
    }
    config = WorkerConfig(
        worker_id=settings.worker_id or default_worker_id(),
        kinds=settings.worker_kinds,
        concurrency=settings.worker_concurrency,
        lease_seconds=settings.lease_seconds,
        heartbeat_interval=settings.heartbeat_interval,
        sweep_interval=settings.sweep_seconds,
        drain_timeout=settings.drain_timeout_seconds,
    )
    handlers = {kind: HANDLERS[kind] for kind in settings.worker_kinds}
    return Worker(
        config,
        transports.store,
        handlers,
        clock,
        wakeups=transports.wakeups,
        models=models,
        artifacts=transports.artifacts,
    )


@contextlib.asynccontextmanager
async def http_server(worker: Worker, host: str, port: int) -> AsyncIterator[None]:
    config = uvicorn.Config(
        create_app(worker.health, worker.metrics), host=host, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    # _serve, not serve: serve() captures SIGTERM/SIGINT, which belong to the worker's two-phase shutdown.
    task = asyncio.create_task(server._serve(), name="health-http")
    try:
        yield
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 5)


async def run_worker(settings: Settings) -> int:
    logs.setup(settings.log_level)
    key = settings.supabase_key
    if settings.worker_store == "supabase" and key is not None:
        log.info("queue: Supabase at %s, with the %s", settings.supabase_url, key.describe())
    shutdown = Shutdown()
    shutdown.install()
    transports = await build_transports(settings)
    transports.providers = build_providers(settings)
    worker = build_worker(settings, transports)
    try:
        host, port = settings.health_bind
        async with http_server(worker, host, port):
            log.info("health on http://%s:%d/health", host, port, extra={"worker_id": worker.config.worker_id})
            await worker.run(shutdown)
    finally:
        for provider in transports.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        await transports.store.close()
    return 0


async def print_stats(settings: Settings) -> int:
    transports = await build_transports(settings)
    console = Console()
    try:
        for view in VIEWS:
            rows = await transports.store.read_view(view)
            console.print(_table(view, rows) if rows else f"public.{view}: no rows\n")
    except StoreError as exc:
        where = settings.supabase_url if settings.worker_store == "supabase" else "DATABASE_URL"
        console.print(f"[red]cannot read the dashboard views from {where}: {exc}[/red]")
        return 1
    finally:
        await transports.store.close()
    return 0


def _table(title: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"public.{title}", title_justify="left")
    columns = list(rows[0])
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    return table
