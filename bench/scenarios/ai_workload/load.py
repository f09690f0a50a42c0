"""The asynchronous part of a run: Realtime joins, the users' load with sampling, then the idle
rename probe and the worker's own counters."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.scenarios.ai_workload.plan import Plan
from bench.scenarios.ai_workload.sampling import Samples, cpu_s, sample
from bench.scenarios.ai_workload.users import Load, Submission, User, open_sockets, run_probe, user_loop
from devstack import paths


@dataclass
class Stack:
    """What the synchronous setup started, for the asynchronous part."""

    database: str
    gateway: str
    models: str
    anon_key: str
    users: list[User]
    pids: dict[str, int | None]
    worker_port: int


@dataclass
class Collected:
    load: Load = field(default_factory=Load)
    samples: Samples = field(default_factory=Samples)
    probe: list[Submission] = field(default_factory=list)
    probe_problem: str | None = None
    cpu_s: dict[str, float] = field(default_factory=dict)
    window_s: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)
    frames: int = 0
    broadcasts_during_load: int = 0
    broadcasts_by_job: Counter[str] = field(default_factory=Counter)
    labels_by_job: Counter[tuple[str, str]] = field(default_factory=Counter)
    phases_s: dict[str, float] = field(default_factory=dict)
    errors_seen: dict[str, dict[str, Any]] = field(default_factory=dict)


def _cpu_now(pids: dict[str, int | None]) -> dict[str, float | None]:
    return {name: cpu_s(pid) for name, pid in pids.items()}


async def drive(plan: Plan, st: Stack, tokens: dict[str, str]) -> Collected:
    """The load (users + sampling), then the idle rename probe."""
    got = Collected()
    probe_user, load_users = st.users[-1], st.users[:-1]
    limits = httpx.Limits(max_connections=plan.users + 20, max_keepalive_connections=plan.users + 20)
    async with (
        httpx.AsyncClient(base_url=st.gateway, limits=limits, timeout=30) as http,
        httpx.AsyncClient(base_url=st.models, timeout=10) as control,
    ):
        try:
            mark = time.monotonic()
            await open_sockets(st.users, st.gateway, st.anon_key, tokens)
            got.phases_s["realtime_joins"] = round(time.monotonic() - mark, 1)
            stop_sampling = asyncio.Event()
            port = int(st.gateway.rsplit(":", 1)[1])
            sampler = asyncio.create_task(sample(st.database, st.pids["worker"] or 0, port, stop_sampling, got.samples))
            cpu_before = _cpu_now(st.pids)
            began = time.monotonic()
            stop_at = began + plan.duration_s
            deadline = stop_at + plan.drain_cap_s
            await asyncio.gather(*(user_loop(http, u, plan, stop_at, deadline, got.load) for u in load_users))
            got.window_s = time.monotonic() - began
            got.broadcasts_during_load = sum(sum(u.socket.broadcasts.values()) for u in st.users if u.socket)
            got.phases_s["load_and_drain"] = round(got.window_s, 1)
            cpu_after = _cpu_now(st.pids)
            got.cpu_s = {
                name: round(after - before, 1)
                for name, before in cpu_before.items()
                if before is not None and (after := cpu_after.get(name)) is not None
            }
            stop_sampling.set()
            await sampler
            # The idle probe: a fixed latency and no 429s, so wall time vs round trip is clean.
            probe_knobs = {"latency_ms": plan.probe_latency_ms, "error_429_rate": 0}
            (await control.post("/_standin/config", json=probe_knobs)).raise_for_status()
            mark = time.monotonic()
            got.probe, got.probe_problem = await run_probe(http, probe_user, plan, Load(), cap_s=30.0)
            got.phases_s["idle_probe"] = round(time.monotonic() - mark, 1)
            got.metrics = await _worker_metrics(st.worker_port)
        finally:
            got.frames = sum(u.socket.frames for u in st.users if u.socket is not None)
            for u in st.users:
                if u.socket is not None:
                    got.broadcasts_by_job.update(u.socket.broadcasts)
                    got.labels_by_job.update(u.socket.labels)
            for u in st.users:
                if u.socket is not None:
                    got.errors_seen.update(u.socket.errors)
            await asyncio.gather(*(u.socket.close() for u in st.users if u.socket is not None))
    return got


async def _worker_metrics(port: int) -> dict[str, float]:
    """The worker's own counters (claimed/succeeded/failed/deferred by kind) from /metrics, and the
    histograms of its claims' durations, its event loop's lag and its garbage collections' pauses."""
    histograms = ("worker_claim_duration_seconds", "worker_event_loop_lag_seconds", "worker_gc_pause_seconds")
    wanted = ("worker_jobs_", "worker_wakeups_total", *histograms)
    out: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        async with httpx.AsyncClient(timeout=5) as http:
            text = (await http.get(f"http://{paths.HOST}:{port}/metrics")).text
        for line in text.splitlines():
            if line.startswith(wanted):
                name, _, value = line.rpartition(" ")
                if "_bucket{" not in name or 'le="+Inf"' in name or name.startswith(histograms):
                    out[name] = float(value)
    return out
