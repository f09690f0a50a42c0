"""The composition root: build the transports the settings ask for and run the core with them.

The only module outside ``adapters/`` and ``providers/`` that may import them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from worker import event_loop, logs, signals
from worker.config import Settings
from worker.core.background import in_background
from worker.core.clock import SystemClock
from worker.core.gate import CapacityBatcher, GatedProvider
from worker.core.llm import LimitedModel
from worker.core.loop_lag import watch_loop_lag
from worker.core.metrics import Metrics
from worker.core.ports import (
    ArtifactStore,
    Dashboard,
    ModelProvider,
    ModelRoute,
    ProviderControl,
    QueueStore,
    RetentionStore,
    Wakeups,
)
from worker.core.retention import Retention, RetentionConfig, run_periodically
from worker.core.routing import ModelRouter
from worker.core.runtime import Worker, WorkerConfig
from worker.core.shutdown import Shutdown
from worker.gc_pauses import watch_gc_pauses
from worker.handlers import HANDLERS
from worker.health_server import http_server
from worker.providers import WarmsUp

log = logging.getLogger("worker")
YOUNG_COLLECTION_AFTER = 20_000  # net new container objects between young collections (CPython's: 700)
FULL_COLLECTION_EVERY = 20  # gen-1 collections between full ones (CPython's default: 10)


@dataclass
class Transports:
    store: QueueStore
    wakeups: Wakeups | None
    artifacts: ArtifactStore
    dashboard: Dashboard  # the store again: the adapters serve the views on the same connection
    control: ProviderControl  # the store again: shared provider capacity, cooldowns, chains
    providers: dict[str, ModelProvider] = field(default_factory=dict)
    retention: RetentionStore | None = None  # the store again: both adapters serve the outbox RPCs


def default_worker_id() -> str:
    replica = os.environ.get("RAILWAY_REPLICA_ID")
    base = f"railway-{replica[:12]}" if replica else socket.gethostname()
    return f"{base}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


async def build_transports(settings: Settings) -> Transports:
    if settings.worker_store == "postgres":
        from worker.adapters.files import FolderArtifacts
        from worker.adapters.postgres import PostgresStore, PostgresWakeups

        assert settings.database_url is not None  # checked by Settings
        store = PostgresStore(settings.database_url)
        wakeups = PostgresWakeups(settings.database_url)
        return Transports(store, wakeups, FolderArtifacts(settings.artifacts_dir), store, store, retention=store)
    from worker.adapters.supabase import RealtimeWakeups, StorageArtifacts, SupabaseStore, connect

    key = settings.supabase_key
    assert settings.supabase_url is not None and key is not None  # checked by Settings
    client = await connect(settings.supabase_url, key.value)
    supabase = SupabaseStore(client)
    return Transports(
        supabase, RealtimeWakeups(client), StorageArtifacts(client), supabase, supabase, retention=supabase
    )


def build_providers(settings: Settings) -> dict[str, ModelProvider]:
    """Every provider with a key: a fallback chain (public.kind_models) may name any of them."""
    providers: dict[str, ModelProvider] = {}
    if settings.anthropic_api_key:
        from worker.providers.claude import ClaudeProvider

        providers["anthropic"] = ClaudeProvider(
            settings.anthropic_api_key, settings.anthropic_base_url, settings.provider_timeout_seconds
        )
    if settings.gemini_api_key:
        from worker.providers.gemini import GeminiProvider

        providers["gemini"] = GeminiProvider(
            settings.gemini_api_key, settings.gemini_base_url, settings.provider_timeout_seconds
        )
    return providers


async def warm_up(providers: Mapping[str, ModelProvider]) -> None:
    """Each provider's first-call work done now, before the first job and before the start-up
    objects are frozen (worker/providers/canned.py). A warm-up that fails costs only that: the
    first job does the work, as it would have anyway."""
    began = time.perf_counter()
    for name, provider in providers.items():
        if isinstance(provider, WarmsUp):
            try:
                await provider.warm_up()
            except Exception as exc:  # never a reason not to start
                log.warning("warm-up of the %s provider failed (its first job does that work): %r", name, exc)
    log.info("providers warmed up in %.0f ms", (time.perf_counter() - began) * 1000)


def build_router(settings: Settings, transports: Transports, clock: SystemClock) -> ModelRouter:
    limits = {name: asyncio.Semaphore(settings.provider_concurrency) for name in transports.providers}
    providers: dict[str, ModelProvider] = dict(transports.providers)
    if settings.shared_provider_limits:
        asks = CapacityBatcher(transports.control)
        providers = {
            name: GatedProvider(p, transports.control, clock, settings.provider_max_wait_seconds, asks)
            for name, p in providers.items()
        }
    links: dict[ModelRoute, LimitedModel] = {}

    def link(route: ModelRoute) -> LimitedModel | None:
        if route.provider not in providers:
            return None
        if route not in links:  # one per route: its retries and limit are shared by every job
            provider = providers[route.provider]
            links[route] = LimitedModel(
                provider, route.model, limits[route.provider], clock, retries=settings.provider_retries
            )
        return links[route]

    defaults = {
        kind: ModelRoute(settings.provider_for(kind), settings.model_for(kind)) for kind in settings.worker_kinds
    }
    return ModelRouter(defaults, link, clock, transports.control, settings.provider_max_wait_seconds)


def build_retention(
    settings: Settings, transports: Transports, metrics: Metrics | None = None, orphan_grace: timedelta | None = None
) -> Retention | None:
    if transports.retention is None:
        return None
    grace = orphan_grace if orphan_grace is not None else timedelta(seconds=settings.retention_orphan_grace_seconds)
    return Retention(transports.retention, transports.artifacts, RetentionConfig(orphan_grace=grace), metrics)


def build_worker(settings: Settings, transports: Transports) -> Worker:
    clock = SystemClock()
    models = build_router(settings, transports, clock)
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


def freeze_startup_objects() -> None:
    """The SDKs, pydantic's schemas and the clients built at start-up are ~230,000 objects that
    live as long as the process; every full garbage collection walked them all (~100–250 ms on
    the bench machine, in the AI workload's worker profile). Frozen, they are left out of
    collections; objects made from now on are collected as usual.

    A full collection still walks every object of the jobs in flight, and stops every job of the
    worker while it does (15–60 ms with 200 jobs in flight, the AI overhead's tail). They come
    every ~10 gen-1 collections by default, ~10 s under load, though they find little: what dies
    young in a cycle is collected young, and the per-job cycles were removed (bench/FIXES.md).

    Young collections come every YOUNG_COLLECTION_AFTER net allocations instead of 700: at 700
    the AI load's worker made ~15 a second (and a gen-1 one every ~0.7 s) that found almost
    nothing, since the jobs in flight outlive many of them: 0.3 ms of CPU per job, 5 % of the
    worker's. At 20,000, 0.1 ms; each young collection still walks the objects of every job
    started since the last one (23–33 ms with 200 jobs in flight, a few times a minute;
    ``worker_gc_pause_seconds`` times them). Full collections every FULL_COLLECTION_EVERY gen-1
    ones: about one full stop every ten minutes under that load."""
    gc.collect()
    gc.freeze()
    _young, middle, _old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, FULL_COLLECTION_EVERY)


async def run_worker(settings: Settings) -> int:
    logs.setup(settings.log_level)
    log.info("event loop: %s", event_loop.describe(asyncio.get_running_loop()))
    key = settings.supabase_key
    if settings.worker_store == "supabase" and key is not None:
        log.info("queue: Supabase at %s, with the %s", settings.supabase_url, key.describe())
    shutdown = Shutdown()
    signals.install(shutdown)
    transports = await build_transports(settings)
    transports.providers = build_providers(settings)
    worker = build_worker(settings, transports)
    await warm_up(transports.providers)
    freeze_startup_objects()
    stop_timing_collections = watch_gc_pauses(worker.metrics)
    try:
        host, port = settings.health_bind
        lag = watch_loop_lag(worker.metrics, worker.clock)
        async with http_server(worker.health, worker.metrics, host, port), in_background(lag):
            log.info("health on http://%s:%d/health", host, port, extra={"worker_id": worker.config.worker_id})
            async with _retention(settings, transports, worker, shutdown):
                await worker.run(shutdown)
    finally:
        stop_timing_collections()
        for provider in transports.providers.values():
            with contextlib.suppress(Exception):
                await provider.close()
        await transports.store.close()
    return 0


@contextlib.asynccontextmanager
async def _retention(
    settings: Settings, transports: Transports, worker: Worker, shutdown: Shutdown
) -> AsyncIterator[None]:
    """Retention maintenance beside the claim loop, on its own timer; stopped with the worker
    (a batch cut short stays leased in the outbox and is taken again after its lease)."""
    retention = build_retention(settings, transports, worker.metrics)
    if retention is None or settings.retention_seconds == 0:
        yield
        return
    async with in_background(run_periodically(retention, settings.retention_seconds, shutdown.stopping)):
        yield
