"""`python -m worker run` as a subprocess against a gateway + database of its own and the model stand-ins.

Covers: Realtime/LISTEN wake-up (sweep disabled), kill -9 mid-job and reclaim, SIGTERM drain and
release, 429 deferral, cancellation, per-user concurrency, a Supabase (gateway) restart, and
rows the worker cannot read claimed alongside good jobs.
Every wait is bounded; every worker process is killed in ``finally``.
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, LiteralString

import httpx
import pytest

from devstack import migrate, paths
from devstack.paths import free_port
from devstack.testing.fixtures import KeyFlavour
from devstack.testing.servers import Server
from tests.integration.worker_support import (
    Gateway,
    SqlHarness,
    clone_database,
    drop_database,
    gateway,
    model_standins,
)
from worker.core.job_rows import PROBLEM
from worker.core.jobs import Job

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WAIT = 45.0
# The queue backends, and for Supabase each key flavour: SUPABASE_SECRET_KEY (sb_secret_, what
# `.devstack/env` and the README use) or the legacy SUPABASE_SERVICE_ROLE_KEY JWT. Tests without
# this parametrization run on the secret key.
BACKENDS = [
    pytest.param("supabase", "new", id="supabase-secret-key"),
    pytest.param("supabase", "legacy", id="supabase-service-role-jwt"),
    pytest.param("postgres", "new", id="postgres"),  # reads no Supabase key
]


def until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        time.sleep(0.05)


@dataclass
class Env:
    gw: Gateway
    models: Server
    db: SqlHarness
    gateway_port: int
    restart_gateway: Callable[[], None]


@pytest.fixture(scope="module")
def env(pg_cluster: None) -> Iterator[Env]:
    name = clone_database("worker_proc")
    port = free_port()
    state: dict[str, Any] = {}
    try:
        with model_standins() as models:
            cm = gateway(name, port)
            state["cm"], state["gw"] = cm, cm.__enter__()

            def restart() -> None:
                state["cm"].__exit__(None, None, None)
                time.sleep(1.0)  # the worker sees connection refused meanwhile
                cm2 = gateway(name, port)
                state["cm"], state["gw"] = cm2, cm2.__enter__()

            db = SqlHarness(name)
            try:
                yield Env(state["gw"], models, db, port, restart)
            finally:
                db.close()
                state["cm"].__exit__(None, None, None)
    finally:
        drop_database(name)


@pytest.fixture
def standin(env: Env) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=env.models.url, timeout=10) as control:
        control.post("/_standin/reset").raise_for_status()
        env.db.truncate()
        yield control
        control.post("/_standin/reset").raise_for_status()


class WorkerProcess:
    def __init__(self, env: Env, log: Path, store: str, flavour: KeyFlavour = "new", **overrides: str) -> None:
        self.port = free_port()
        self.worker_id = f"proc-{uuid.uuid4().hex[:8]}"
        key = (
            {"SUPABASE_SECRET_KEY": env.gw.secret_key}
            if flavour == "new"
            else {"SUPABASE_SERVICE_ROLE_KEY": env.gw.service_role_key}
        )
        variables = {
            "WORKER_STORE": store,
            "SUPABASE_URL": env.gw.url,
            **key,
            "DATABASE_URL": paths.database_url(env.gw.database),
            "ANTHROPIC_API_KEY": "dummy",
            "ANTHROPIC_BASE_URL": env.models.url,
            "GEMINI_API_KEY": "dummy",
            "GEMINI_BASE_URL": env.models.url,
            "WORKER_ID": self.worker_id,
            "PORT": str(self.port),
            "HEALTH_HOST": paths.HOST,  # PORT alone would mean every interface (Railway's case)
            "LEASE_SECONDS": "5",
            "SWEEP_SECONDS": "3600",  # wake-ups must come from Realtime / LISTEN, not the sweep
            "DRAIN_TIMEOUT_SECONDS": "30",
            "PROVIDER_TIMEOUT_SECONDS": "60",
            "ARTIFACTS_DIR": str(log.parent / "artifacts"),
            **overrides,
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "DATABASE_", "WORKER_"))}
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "worker", "run"],
            cwd=ROOT,
            env={**clean, **variables},
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def health(self) -> dict[str, Any] | None:
        try:
            response = httpx.get(f"http://{paths.HOST}:{self.port}/health", timeout=2)
        except httpx.HTTPError:
            return None
        body: dict[str, Any] = response.json()
        return body if response.status_code == 200 else None

    def wait_healthy(self) -> dict[str, Any]:
        def ok() -> dict[str, Any] | None:
            assert self.proc.poll() is None, f"worker exited early:\n{self.log.read_text()[-3000:]}"
            return self.health()

        body: dict[str, Any] = until(ok, "worker healthy (database reachable, realtime joined)")
        return body

    def metrics(self) -> str:
        return httpx.get(f"http://{paths.HOST}:{self.port}/metrics", timeout=2).text

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def spawn(env: Env, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(store: str = "supabase", flavour: KeyFlavour = "new", **overrides: str) -> WorkerProcess:
        w = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", store, flavour, **overrides)
        started.append(w)
        return w

    try:
        yield start
    finally:
        for w in started:
            w.kill()


def job(env: Env, job_id: uuid.UUID) -> Job:
    return env.db.get(job_id)


def design(env: Env, **kw: Any) -> Job:
    return env.db.enqueue("generate_design", {"prompt": "A pricing page for a coffee subscription"}, **kw)


@pytest.mark.parametrize(("store", "flavour"), BACKENDS)
def test_a_pushed_job_is_claimed_without_the_sweep(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess], store: str, flavour: KeyFlavour
) -> None:
    w = spawn(store, flavour)
    body = w.wait_healthy()
    assert "event loop: uvloop " in w.log.read_text()  # the default where uvloop is installed
    if store == "supabase":  # the start-up line says which key the worker uses
        used = "secret API key from SUPABASE_SECRET_KEY" if flavour == "new" else "legacy service_role JWT key"
        assert f"queue: Supabase at {env.gw.url}, with the {used}" in w.log.read_text()
    assert body["realtime"]["joined"] is True
    latencies = []
    for _ in range(5):
        job_id = design(env).id
        done = until(lambda: job(env, job_id).status == "succeeded" and env.db.row(job_id), "job succeeded")  # noqa: B023
        latencies.append((done["started_at"] - done["created_at"]).total_seconds())
    # The sweep interval is an hour: only the push can have woken the worker.
    text = w.metrics()
    assert 'worker_wakeups_total{reason="push"}' in text

    # The loop-lag probe runs beside the worker: its histogram counts its 0.1 s wake-ups.
    def lag_samples() -> int:
        found = re.search(r"^worker_event_loop_lag_seconds_count (\d+)$", w.metrics(), re.MULTILINE)
        return int(found.group(1)) if found else 0

    first = until(lag_samples, "a loop-lag sample")
    until(lambda: lag_samples() > first, "another loop-lag sample")
    print(f"\n[{store}] enqueue->claim seconds: {sorted(round(x, 4) for x in latencies)}")


def test_kill_9_mid_job_is_reclaimed_after_the_lease_and_finished_once(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    standin.post("/_standin/config", json={"latency_ms": 60_000}).raise_for_status()
    first = spawn("supabase")
    first.wait_healthy()
    j = design(env)
    until(lambda: job(env, j.id).status == "running", "first worker runs the job")
    first.proc.kill()  # SIGKILL: no release, no cleanup
    first.proc.wait(timeout=10)
    standin.post("/_standin/config", json={"latency_ms": 0}).raise_for_status()
    second = spawn("supabase", SWEEP_SECONDS="1")  # its sweep reaps the dead worker's lease
    second.wait_healthy()
    done = until(lambda: (r := job(env, j.id)).status == "succeeded" and r, "reclaimed and finished")
    assert done.attempts == 2 and done.worker_id == second.worker_id
    assert done.result is not None and done.result["root"]["type"] == "FRAME"
    completions = env.db.sql(
        "select count(*) as n from public.job_events"
        " where job_id = %s and type = 'progress' and (data->>'percent')::numeric = 95",
        (j.id,),
    )
    assert completions[0]["n"] == 1  # the handler finished once; the killed attempt never got there


def test_sigterm_drains_finishing_jobs_and_releases_the_rest(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    standin.post("/_standin/config", json={"latency_ms": 60_000}).raise_for_status()
    w = spawn("supabase", DRAIN_TIMEOUT_SECONDS="1")
    w.wait_healthy()
    j = design(env)
    until(lambda: job(env, j.id).status == "running", "running")
    w.signal(signal.SIGTERM)
    assert w.wait_exit() == 0
    row = job(env, j.id)
    assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None)


def test_sigterm_lets_a_running_job_finish(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    standin.post("/_standin/config", json={"latency_ms": 1500}).raise_for_status()
    w = spawn("postgres")
    w.wait_healthy()
    j = design(env)
    until(lambda: job(env, j.id).status == "running", "running")
    w.signal(signal.SIGTERM)
    later = design(env, user_id=env.db.new_user())
    assert w.wait_exit() == 0
    assert job(env, j.id).status == "succeeded"
    assert job(env, later.id).status == "queued"  # nothing new is claimed after the signal


def test_a_429_defers_without_using_an_attempt(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    standin.post("/_standin/faults", json={"provider": "anthropic", "kind": "429", "retry_after": 2}).raise_for_status()
    # Longer than the worker may wait in place (a shorter one is waited out: test_worker_process_limits).
    w = spawn("supabase", PROVIDER_MAX_WAIT_SECONDS="1")
    w.wait_healthy()
    j = design(env)
    done = until(lambda: (r := job(env, j.id)).status == "succeeded" and r, "succeeded after the deferral")
    assert done.attempts == 1  # the deferred attempt was given back
    logs = [data for kind, data in env.db.events(j.id) if kind == "log"]
    assert logs and logs[0]["event"] == "deferred"
    assert 'worker_jobs_deferred_total{kind="generate_design"} 1' in w.metrics()


@pytest.mark.parametrize("store", ["supabase", "postgres"])
def test_every_model_call_lands_in_the_usage_ledger(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess], store: str
) -> None:
    standin.post(
        "/_standin/faults", json={"provider": "anthropic", "kind": "invalid_json", "count": 1}
    ).raise_for_status()
    w = spawn(store)
    w.wait_healthy()
    j = design(env)  # two model calls: the invalid answer and its repair round
    until(lambda: job(env, j.id).status == "succeeded", "succeeded")
    rows = env.db.sql(
        "select attempt, provider, model, input_tokens, output_tokens, cached_tokens, images, latency_ms, cost_usd,"
        " worker_id from public.usage_ledger where job_id = %s order by id",
        (j.id,),
    )
    assert [(r["attempt"], r["provider"], r["model"]) for r in rows] == [(1, "anthropic", "claude-haiku-4-5")] * 2
    for r in rows:
        assert r["input_tokens"] > 0 and r["output_tokens"] > 0 and (r["cached_tokens"], r["images"]) == (0, 0)
        assert r["latency_ms"] is not None and r["latency_ms"] >= 0
        assert r["cost_usd"] == (r["input_tokens"] * 1 + r["output_tokens"] * 5) / Decimal(1_000_000)
        assert r["worker_id"] == rows[0]["worker_id"]


def test_cancelling_a_running_job(env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]) -> None:
    standin.post("/_standin/config", json={"latency_ms": 60_000}).raise_for_status()
    w = spawn("supabase")
    w.wait_healthy()
    j = design(env)
    until(lambda: job(env, j.id).status == "running", "running")
    env.db.cancel(j.id)
    row = until(lambda: (r := job(env, j.id)).status == "cancelled" and r, "cancelled by the worker")
    assert row.error is not None and row.error["type"] == "cancelled"
    assert 'worker_jobs_cancelled_total{kind="generate_design"} 1' in w.metrics()


def test_per_user_concurrency_holds_across_workers(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    standin.post("/_standin/config", json={"latency_ms": 300}).raise_for_status()
    workers = [spawn("supabase", WORKER_CONCURRENCY="4"), spawn("postgres", WORKER_CONCURRENCY="4")]
    for w in workers:
        w.wait_healthy()
    user = env.db.new_user()
    jobs = [
        env.db.enqueue("generate_edits", {"text": f"Start your free trial today {i}"}, user_id=user) for i in range(3)
    ]
    until(lambda: all(job(env, j.id).status == "succeeded" for j in jobs), "all succeeded")
    spans = sorted((env.db.row(j.id)["started_at"], env.db.row(j.id)["finished_at"]) for j in jobs)
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end  # generate_edits allows one running job per user
    assert len({job(env, j.id).worker_id for j in jobs}) >= 1


def test_the_worker_recovers_from_a_supabase_restart(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    w = spawn("supabase")
    w.wait_healthy()
    before = design(env)
    until(lambda: job(env, before.id).status == "succeeded", "first job")
    env.restart_gateway()
    after = design(env)
    until(lambda: job(env, after.id).status == "succeeded", "a job enqueued after the restart")
    assert w.proc.poll() is None  # no restart of the worker was needed
    w.wait_healthy()


@pytest.mark.parametrize(("store", "flavour"), BACKENDS)
def test_the_worker_recovers_when_its_database_connections_are_killed(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess], store: str, flavour: KeyFlavour
) -> None:
    """What a database restart looks like from outside: every connection drops at once (the
    gateway's pools and Realtime feed, or the worker's own pool and LISTEN connection)."""
    w = spawn(store, flavour)
    w.wait_healthy()
    before = design(env)
    until(lambda: job(env, before.id).status == "succeeded", "first job")
    # As the platform's superuser (a restart is not something the project's postgres role does);
    # the test's own connection survives, as before.
    own = env.db.sql("select pg_backend_pid() as pid")[0]["pid"]
    with migrate.admin_connection(env.gw.database) as admin:
        row = admin.execute(
            "select count(*) filter (where pg_terminate_backend(pid)) from pg_stat_activity "
            "where datname = current_database() and pid not in (pg_backend_pid(), %s)",
            (own,),
        ).fetchone()
    killed = int(str(row[0])) if row else 0
    assert killed >= 1
    after = design(env)
    until(lambda: job(env, after.id).status == "succeeded", "a job enqueued after the connections died")
    assert job(env, after.id).attempts == 1
    assert w.proc.poll() is None  # recovered in place, no restart
    w.wait_healthy()


# What an operator or an older version could write (the SQL API refuses these), and how the
# worker's error message for each starts.
UNREADABLE: list[tuple[str, LiteralString, str]] = [
    ("run_at", "'-infinity'", "run_at: "),
    ("run_at", "'0044-03-15 BC'", "run_at: "),
    ("result", "'5'", "result."),
    ("payload", """('{"prompt": ' || repeat('[', 5000) || repeat(']', 5000) || '}')::jsonb""", "not JSON"),
    ("payload", """('{"prompt": ' || repeat('9', 5000) || '}')::jsonb""", "not JSON"),
]


@pytest.mark.parametrize(("store", "flavour"), BACKENDS)
def test_unreadable_rows_in_a_batch_fail_alone_and_the_worker_keeps_running(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess], store: str, flavour: KeyFlavour
) -> None:
    good = [design(env) for _ in range(3)]
    bad = []
    for column, value, problem in UNREADABLE:
        row = design(env)
        env.db.corrupt(row.id, column, value)
        bad.append((row.id, problem))
    wrong_payload = env.db.enqueue("generate_design", {"prompt": ""})  # readable, but not a valid payload
    everything = [j.id for j in good] + [job_id for job_id, _ in bad] + [wrong_payload.id]
    w = spawn(store, flavour, WORKER_CONCURRENCY="16")  # started after the inserts: its first claim takes them all

    def outcome(job_id: uuid.UUID) -> dict[str, Any]:
        assert w.proc.poll() is None, f"worker exited:\n{w.log.read_text()[-3000:]}"
        return env.db.facts(job_id)

    for job_id in everything:
        until(lambda: outcome(job_id)["status"] in ("succeeded", "failed"), "every job finished")  # noqa: B023
    [claims] = env.db.sql("select count(distinct started_at) as n from public.jobs where id = any(%s)", (everything,))
    assert claims["n"] == 1  # one claim statement (one transaction time) took good and bad rows together
    assert all(outcome(j.id)["status"] == "succeeded" for j in good)
    for job_id, problem in bad:
        facts = outcome(job_id)
        assert (facts["status"], facts["attempts"]) == ("failed", 1)
        assert {k: facts["error"][k] for k in ("type", "retryable", "attempt")} == {
            "type": "invalid_job_row",
            "retryable": False,
            "attempt": 1,
        }
        assert facts["error"]["message"].startswith(PROBLEM + problem), facts["error"]["message"][:300]
    facts = outcome(wrong_payload.id)
    assert (facts["status"], facts["attempts"], facts["error"]["type"]) == ("failed", 1, "invalid_payload")
    assert facts["error"]["retryable"] is False
    w.wait_healthy()  # still running, and /health answers 200
    after = design(env)
    until(lambda: outcome(after.id)["status"] == "succeeded", "a job enqueued afterwards")
    assert f'worker_jobs_unreadable_total{{kind="generate_design"}} {len(UNREADABLE)}' in w.metrics()
