"""The AI workload on the harness: the system with the RunsAiWorker capability for the plan's
store gets a scratch database (``prepare_product``: the job kinds as shipped) and a gateway from
``harness.each_system``; this module adds the users, the model stand-ins and the worker process,
runs the load (load.py), collects what the jobs table and the stand-ins recorded, and hands it
to result.py."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx

from bench import harness, processes
from bench.scenario import Context, ScenarioResult
from bench.scenarios.ai_workload.budget import calls_per_job, count_calls, realtime_budget, track_calls
from bench.scenarios.ai_workload.facts import JobFacts, count_events, fetch_timings, read_jobs
from bench.scenarios.ai_workload.load import Collected, Stack, drive
from bench.scenarios.ai_workload.plan import NAME, TAG_PATTERN, Plan
from bench.scenarios.ai_workload.result import build_result
from bench.scenarios.ai_workload.sampling import pid_of_gateway
from bench.scenarios.ai_workload.users import User
from bench.support import ROOT, standin_process
from bench.systems import registry
from bench.systems.capabilities import RunsAiWorker
from devstack import paths
from devstack.gateway.context import Settings
from devstack.paths import free_port


@dataclass
class Measured:
    got: Collected
    jobs: dict[str, JobFacts]
    timings: list[dict[str, Any]]
    dropped: int
    events: dict[str, int]
    calls: dict[str, int]
    setup_s: float
    stopping: float  # time.monotonic() when collecting was done and teardown began


def run(ctx: Context) -> ScenarioResult:
    return run_plan(ctx, Plan.for_context(ctx))


def run_direct(ctx: Context) -> ScenarioResult:
    """The same load with the worker on the direct Postgres adapter (LISTEN + psycopg): the users
    still go through the gateway, so the difference to ``run`` is the worker's REST/Realtime share."""
    return run_plan(ctx, replace(Plan.for_context(ctx), store="postgres"))


def run_plan(ctx: Context, plan: Plan) -> ScenarioResult:
    load_before = os.getloadavg()
    code = code_state()  # before anything starts: the processes import what is on disk now
    begun = time.monotonic()
    loaded, problems = registry.available([f"ours_{plan.store}"])
    systems = [s for s in loaded if isinstance(s, RunsAiWorker)]

    def measure(system: RunsAiWorker, database: str, gateway: str | None) -> Measured:
        assert gateway is not None  # each_system(gateway=True): the users talk to it
        return _measure(ctx, plan, system, database, gateway, begun)

    measured, failures = harness.each_system(
        systems, "aiw", measure, prepare=lambda s, db: s.prepare_product(db), gateway=True
    )
    m: Measured | None = next(iter(measured.values()), None)
    if m is None:
        why = [f"{name}: {problem}" for name, problem in problems.items()] + failures
        raise RuntimeError("; ".join(why) or f"no system runs the AI worker for store {plan.store}")
    got, jobs, timings = m.got, m.jobs, m.timings
    got.phases_s = {"setup": round(m.setup_s, 1), **got.phases_s, "teardown": round(time.monotonic() - m.stopping, 1)}
    # Everything is stopped and dropped here; the rest is arithmetic on what was collected.
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for t in timings:
        if t["tag"]:
            by_tag.setdefault(t["tag"], []).append(t)
    tx_ms = {s.job_id: s.enqueue_tx_ms for s in got.load.submissions}
    for facts in jobs.values():
        facts.requests = by_tag.get(facts.tag or "", [])
        if (tx := tx_ms.get(facts.id)) is not None:
            facts.enqueue_tx_s = tx / 1000
    write_job_facts(ctx.log_dir / f"{plan.name}-jobs.jsonl", jobs)
    window = max(got.window_s, 1e-9)
    return build_result(
        ctx,
        plan,
        got.load,
        jobs,
        got.samples,
        got.probe,
        got.probe_problem,
        extra={
            "timings_total": len(timings),
            "timings_dropped": m.dropped,
            "untagged_model_requests": sum(1 for t in timings if not t["tag"]),
            "worker_metrics": got.metrics,
            "job_events": m.events,
            "cpu_seconds_during_load": got.cpu_s,
            "cpu_share_during_load": {k: round(v / window, 2) for k, v in got.cpu_s.items()},
            "load_window_s": round(got.window_s, 1),
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in os.getloadavg()],
            "nproc": os.cpu_count(),
            "realtime_frames_received": got.frames,
            "realtime_budget": realtime_budget(
                got.broadcasts_by_job, got.labels_by_job, got.broadcasts_during_load, window, jobs
            ),
            "rpc_calls": calls_per_job(m.calls, jobs),
            "code_measured": code,
            "db_active_statements_max": max(got.samples.active, default=0),
            "phases_s": got.phases_s,
            "errors_seen_by_users": _error_digest(got.errors_seen, jobs),
        },
    )


def _measure(ctx: Context, plan: Plan, system: RunsAiWorker, database: str, gateway: str, begun: float) -> Measured:
    logs = ctx.log_dir
    with contextlib.ExitStack() as stack:
        ids = system.create_users(database, plan.users + 1)  # the last one runs the probe
        tokens = {uid: system.user_token(database, uid) for uid in ids}
        stack.callback(_remove_artifacts, ids)
        track_calls(database)  # before the worker connects: its calls are counted by function
        models, models_pid = stack.enter_context(standin_process(logs / f"{plan.name}-standins.log"))
        knobs = {
            "latency_min_ms": plan.latency_ms[0],
            "latency_max_ms": plan.latency_ms[1],
            "stream_delay_ms": plan.stream_delay_ms,
            "error_429_rate": plan.error_429_rate,
            "error_429_retry_after": plan.error_429_retry_after_s,
            "random_seed": plan.seed,
            "tag_pattern": TAG_PATTERN,
        }
        httpx.post(f"{models}/_standin/config", json=knobs, timeout=10).raise_for_status()
        worker_pid, worker_port = stack.enter_context(
            worker_process(system, plan, database, gateway, models, logs / f"{plan.name}-worker.log")
        )
        anon_key = system.anon_key(database)
        users = [
            User(i, uid, {"apikey": anon_key, "Authorization": f"Bearer {tokens[uid]}"}, system.status_topic(uid))
            for i, uid in enumerate(ids)
        ]
        pids = {
            "worker": worker_pid,
            "gateway": pid_of_gateway(int(gateway.rsplit(":", 1)[1])),
            "model_standins": models_pid,
            "load_generator": os.getpid(),
        }
        st = Stack(database, gateway, models, anon_key, users, pids, worker_port)
        setup_s = time.monotonic() - begun
        got = asyncio.run(drive(plan, st, tokens))
        jobs = read_jobs(database)
        timings, dropped = fetch_timings(models)
        events = count_events(database)
        calls = count_calls(database)
        stopping = time.monotonic()
    return Measured(got, jobs, timings, dropped, events, calls, setup_s, stopping)


def write_job_facts(path: Path, jobs: dict[str, JobFacts]) -> None:
    """Every job's timestamps (epoch seconds) and model requests, one JSON line each, for reading a
    tail job by job (the report keeps only summaries; logs/ is not kept in git)."""
    with path.open("w") as out:
        for facts in jobs.values():
            out.write(json.dumps(dataclasses.asdict(facts) | {"clean": facts.clean}) + "\n")


@contextlib.contextmanager
def worker_process(
    system: RunsAiWorker, plan: Plan, database: str, gateway: str, models: str, log: Path
) -> Iterator[tuple[int, int]]:
    """One worker process of ``system`` (ours: ``python -m worker run``): (pid, health port)."""
    port = free_port()
    artifacts = log.parent / f"{NAME}-artifacts-{uuid.uuid4().hex[:6]}"  # postgres store only
    argv, env = system.ai_worker(
        database,
        gateway,
        models,
        port=port,
        concurrency=plan.worker_concurrency,
        provider_concurrency=plan.provider_concurrency,
        artifacts=artifacts,
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        # /health answers 200 once the queue is reachable and Realtime is joined.
        processes.wait_http(f"http://{paths.HOST}:{port}/health", proc, "worker", log)
        yield proc.pid, port
    finally:
        processes.stop(proc)
        shutil.rmtree(artifacts, ignore_errors=True)


def _error_digest(errors: dict[str, dict[str, Any]], jobs: dict[str, JobFacts]) -> dict[str, Any]:
    """Errors the users saw in their jobs' broadcasts (a retry shows one before the job succeeds)."""
    by_type: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for job_id, error in errors.items():
        kind = jobs[job_id].kind if job_id in jobs else "?"
        key = f"{kind}: {error.get('type')}"
        by_type[key] += 1
        examples.setdefault(key, str(error.get("message", ""))[:300])
    return {"jobs_by_kind_and_type": dict(by_type), "example_messages": examples}


def _remove_artifacts(user_ids: list[str]) -> None:
    """Generated images land in the stack's Storage folder under <bucket>/<user_id>/: remove ours."""
    root = Settings.from_stack().storage_dir / "job-artifacts"
    for uid in user_ids:
        shutil.rmtree(root / uid, ignore_errors=True)


def code_state() -> str:
    """The commit measured, and which product files differed from it (the checkout may be shared)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "worker", "devstack", "supabase"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return "unknown (git not available)"
    changed = [line[3:] for line in dirty if line.strip()]
    return f"{head or 'unknown'}" + (f" + uncommitted changes in {', '.join(changed)}" if changed else "")
