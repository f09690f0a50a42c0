"""One chaos run end to end: the target, the model stand-ins, the workers, the users and the
fault schedule; then the drain, the history check and the report. See bench/chaos/__init__.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from bench.chaos import collect
from bench.chaos.clients import Shared, Subscriber, user_loop
from bench.chaos.faults import Injector
from bench.chaos.history import TERMINAL, check
from bench.chaos.plan import LOCAL_ONLY, ChaosPlan, schedule
from bench.chaos.report import faults_section, print_summary, write
from bench.chaos.stack import Target, local_target, staging_from_env
from bench.chaos.workers import Workers
from bench.report import machine_info
from bench.scenarios.ai_workload.users import User
from bench.support import ROOT, standin_process
from devstack import paths


def parse(argv: list[str]) -> tuple[ChaosPlan, argparse.Namespace]:
    p = argparse.ArgumentParser(
        prog="python -m bench chaos", description="Seeded fault schedule under AI load; checks every job's history."
    )
    p.add_argument("--seed", type=int, default=ChaosPlan.seed)
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of load and faults (default 540; --quick 75); up to 1.5x while faults remain",
    )
    p.add_argument("--jobs", type=int, default=None, help="stop enqueuing after this many jobs")
    p.add_argument("--kills", type=int, default=None, help="worker kill -9s over the run (default 60; --quick 12)")
    p.add_argument("--quick", action="store_true", help="a ~2 minute check of the whole pipeline")
    p.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<timestamp>-chaos)")
    args = p.parse_args(argv)
    plan = ChaosPlan.quick(args.seed) if args.quick else ChaosPlan(seed=args.seed)
    changes: dict[str, Any] = {}
    for name, value in (("duration_s", args.duration), ("max_jobs", args.jobs), ("kills", args.kills)):
        if value is not None:
            if value <= 0:
                p.error(f"--{name.split('_')[0].replace('max', 'jobs')} must be positive, got {value}")
            changes[name] = value
    if changes:
        plan = ChaosPlan(**{**plan.settings(), **changes})
    return plan, args


def main(argv: list[str]) -> int:
    plan, args = parse(argv)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir: Path = args.out or ROOT / "bench" / "results" / f"{stamp}-chaos"
    log_dir = paths.STATE / "chaos" / stamp  # worker, gateway and stand-in logs (not committed)
    log_dir.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()
    began = time.monotonic()
    staging = staging_from_env()
    if staging is None:
        from devstack.cli import db_up

        db_up()
    with contextlib.ExitStack() as stack:
        target = staging if staging is not None else stack.enter_context(local_target(log_dir))
        skipped = sorted(LOCAL_ONLY) if not target.local else []
        data = _run(plan, target, log_dir, frozenset(skipped))
    data.update(
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        command="python -m bench chaos " + " ".join(argv),
        target="the local devstack (scratch database)" if staging is None else f"staging {target.url}",
        skipped=skipped,
        duration_s=round(time.monotonic() - began, 1),
        logs=str(log_dir),
    )
    try:
        data["machine"] = machine_info(load_before)
    except Exception as exc:  # no local cluster (staging): the rest still describes the box
        data["machine"] = {"nproc": os.cpu_count(), "note": f"no local PostgreSQL: {type(exc).__name__}"}
    # Key order for readers: the verdict first.
    ordered = {k: data[k] for k in ("ok", "measured_at", "command", "target", "duration_s", "verdict", "faults")}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    write(out_dir, ordered)
    print_summary(ordered, out_dir)
    return 0 if data["ok"] else 1


def _run(plan: ChaosPlan, target: Target, log_dir: Path, skip: frozenset[str]) -> dict[str, Any]:
    with standin_process(log_dir / "standins.log") as (models, _pid):
        knobs = {
            "latency_min_ms": plan.latency_ms[0],
            "latency_max_ms": plan.latency_ms[1],
            "stream_delay_ms": plan.stream_delay_ms,
            "error_429_rate": plan.error_429_rate,
            "error_429_retry_after": 1.0,
            "random_seed": plan.seed,
        }
        httpx.post(f"{models}/_standin/config", json=knobs, timeout=10).raise_for_status()
        tokens = target.create_users(plan.users)
        users = [
            User(i, uid, {"apikey": target.anon_key, "Authorization": f"Bearer {tok}"}, f"jobs:{uid}")
            for i, (uid, tok) in enumerate(tokens.items())
        ]
        workers = Workers(target, plan, models, log_dir)
        with _stopping(workers):
            workers.start_all()
            injector = Injector(target, workers, models, plan, schedule(plan, skip))
            shared, windows = asyncio.run(_drive(plan, target, users, tokens, injector))
        jobs = collect.read_jobs(target, list(shared.enqueued))
        trail = collect.read_transitions(target)
    subscribed = {u.id for u in users[: plan.subscribers]}
    verdict = check(
        shared.enqueued,
        jobs,
        trail,
        shared.seen,
        subscribed,
        now=time.time(),
        lease_s=plan.lease_s,
        sweep_s=plan.sweep_s,
    )
    recoveries = [collect.recovery_s(f, trail) if trail is not None else None for f in injector.done]
    started = min((f.at for f in injector.done), default=time.time())
    load = shared.load
    if trail is not None:  # for a post-mortem (not committed): every audited transition
        with (log_dir / "transitions.jsonl").open("w") as out:
            for job_id, ts in trail.items():
                out.writelines(json.dumps({"job": job_id, **dataclasses.asdict(t)}) + "\n" for t in ts)
    fault_log = [
        {
            "t_s": round(f.at - started, 2),
            "fault": f.fault,
            "detail": f.detail,
            "worker": f.worker_id,
            "jobs_held": len(f.jobs_running),
            "took_s": round((f.ended or f.at) - f.at, 2),
            "recovery_s": None if r is None else round(r, 2),
            **({"error": f.error} if f.error else {}),
        }
        for f, r in zip(injector.done, recoveries, strict=True)
    ]
    return {
        "ok": verdict.ok and verdict.jobs > 0 and len(injector.done) > 0,  # an idle run proves nothing
        "verdict": verdict.summary(),
        "faults": faults_section(injector.done, recoveries),
        "settings": {**plan.settings(), "heartbeat_s": "worker default (lease / 3)"},
        "load": {
            "enqueued": len(shared.enqueued),
            "enqueue_attempts": load.enqueue_attempts,
            "rate_limited": sum(load.rate_limited.values()),
            "api_errors": dict(load.api_errors),
            "transport_errors": dict(load.transport_errors),
            "subscriber_reconnects": shared.reconnects,
            "phases_s": windows,
            "error_types": _error_types(jobs.values()),
            "succeeded_per_30s": collect.timeline(trail, started) if trail is not None else None,
        },
        "fault_log": fault_log,
    }


def _error_types(jobs: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for j in jobs:
        if j.status == "failed":
            key = f"{j.kind}: {j.error_type}"
            out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items()))


@contextlib.contextmanager
def _stopping(workers: Workers) -> Iterator[None]:
    try:
        yield
    finally:
        workers.stop_all()


async def _drive(
    plan: ChaosPlan, target: Target, users: list[User], tokens: dict[str, str], injector: Injector
) -> tuple[Shared, dict[str, float]]:
    shared = Shared()
    windows: dict[str, float] = {}
    limits = httpx.Limits(max_connections=plan.users + 20, max_keepalive_connections=plan.users + 20)
    async with httpx.AsyncClient(base_url=target.url, limits=limits, timeout=30) as http:
        subs = {
            u.id: Subscriber(target.url, target.anon_key, u, tokens[u.id], shared, http)
            for u in users[: plan.subscribers]
        }
        for sub in subs.values():
            sub.start()
        try:
            await asyncio.wait_for(asyncio.gather(*(s.joined.wait() for s in subs.values())), 60)
            mark = time.monotonic()
            injector.start()
            # The load runs for the planned duration, and on (up to half as long again) while the
            # injector still has faults to play: on a slow box kills wait for workers to hold jobs.
            last = mark + plan.duration_s * 1.5
            loops = asyncio.gather(*(user_loop(http, u, subs.get(u.id), plan, last, shared) for u in users))
            while not shared.stop_enqueue and time.monotonic() < last:
                if time.monotonic() >= mark + plan.duration_s and not injector.is_alive():
                    break
                await asyncio.sleep(0.5)
            shared.stop_enqueue = True
            await loops
            windows["load"] = round(time.monotonic() - mark, 1)
            injector.stop_event.set()
            await asyncio.to_thread(injector.join, 180)
            mark = time.monotonic()
            await _settle(target, shared, plan.drain_cap_s)
            await asyncio.sleep(3)  # the last broadcasts reach the subscribers
            windows["drain"] = round(time.monotonic() - mark, 1)
        finally:
            await asyncio.gather(*(s.stop() for s in subs.values()))
    return shared, windows


async def _settle(target: Target, shared: Shared, cap_s: float) -> None:
    """Until every enqueued job is in a terminal state, or ``cap_s`` (the checker says which not)."""
    deadline = time.monotonic() + cap_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            jobs = await asyncio.to_thread(collect.read_jobs, target, list(shared.enqueued))
            if all(j.status in TERMINAL for j in jobs.values()) and len(jobs) >= len(shared.enqueued):
                return
        await asyncio.sleep(2)
