"""Two `python -m worker run` processes share provider state through SQL (issue 13): a 429 one
of them receives cools the model down for the other too, and a kind's fallback chain answers
when its first model is overloaded. Same fixtures as test_worker_process.py; every wait bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.test_worker_process import (
    Env,
    WorkerProcess,
    design,
    env,
    job,
    spawn,
    standin,
    until,
)

pytestmark = pytest.mark.integration
__all__ = ["env", "spawn", "standin"]  # fixtures used below
HAIKU = "claude-haiku-4-5"


def rename(env: Env) -> Any:
    layers = [{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}]
    return env.db.enqueue("rename_layers", {"layers": layers}, user_id=env.db.new_user())


def requests(standin: httpx.Client) -> list[tuple[str, str | None, str | None, int]]:
    log = standin.get("/_standin/requests").json()["requests"]
    return [(r["provider"], r["model"], r["job_kind"], r["status"]) for r in log]


def test_a_429_cools_the_model_down_for_every_worker_process(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    # Two replicas, one per kind, so each job is sure to land on a different process; both kinds
    # use the same model. One on psycopg, one on supabase-py: the state is in SQL, not a transport.
    # The cooldown (8 s) is longer than either may wait in place (2 s): both jobs are deferred.
    designer = spawn("postgres", WORKER_KINDS="generate_design", PROVIDER_MAX_WAIT_SECONDS="2")
    renamer = spawn("supabase", WORKER_KINDS="rename_layers", PROVIDER_MAX_WAIT_SECONDS="2")
    designer.wait_healthy()
    renamer.wait_healthy()
    fault = {"provider": "anthropic", "kind": "429", "retry_after": 8}
    standin.post("/_standin/faults", json=fault).raise_for_status()
    first = design(env)
    until(lambda: _deferred(env, first.id), "first deferred by its 429")
    second = rename(env)
    until(lambda: _deferred(env, second.id), "second deferred by the shared cooldown")
    # While the model cooled down, only the 429 reached the provider: the other process never sent.
    assert requests(standin) == [("anthropic", HAIKU, "generate_design", 429)]
    assert 'worker_jobs_deferred_total{kind="rename_layers"} 1' in renamer.metrics()
    for j in (first, second):
        done = until(lambda: (r := job(env, j.id)).status == "succeeded" and r, "succeeded after the cooldown")  # noqa: B023
        assert done.attempts == 1  # the deferral kept the attempt
    cooldown = env.db.sql("select cooldown_status, cooldowns from public.model_capacity where model = %s", (HAIKU,))
    assert cooldown == [{"cooldown_status": 429, "cooldowns": 1}]


def test_a_short_cooldown_is_waited_out_in_the_worker_by_every_process(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    designer = spawn("supabase", WORKER_KINDS="generate_design")
    renamer = spawn("postgres", WORKER_KINDS="rename_layers")
    designer.wait_healthy()
    renamer.wait_healthy()
    standin.post("/_standin/faults", json={"provider": "anthropic", "kind": "429", "retry_after": 8}).raise_for_status()
    first = design(env)
    # The cooldown is shared once the first worker has reported it (not when the stand-in answered).
    until(lambda: _cooling_down(env), "the first job's 429 reported as a shared cooldown")
    second = rename(env)  # meets that cooldown on the other process
    for j in (first, second):
        done = until(lambda: (r := job(env, j.id)).status == "succeeded" and r, "succeeded after the cooldown")  # noqa: B023
        # Waited in the worker (8 s is under PROVIDER_MAX_WAIT_SECONDS' 10): no deferral, one attempt,
        # and the result says how long.
        assert done.attempts == 1 and not _deferred(env, j.id)
        assert done.result is not None and done.result["model"]["cooldown_wait_s"] > 0
    assert requests(standin) == [
        ("anthropic", HAIKU, "generate_design", 429),
        ("anthropic", HAIKU, "generate_design", 200),
        ("anthropic", HAIKU, "rename_layers", 200),
    ] or requests(standin) == [
        ("anthropic", HAIKU, "generate_design", 429),
        ("anthropic", HAIKU, "rename_layers", 200),
        ("anthropic", HAIKU, "generate_design", 200),
    ]
    for worker in (designer, renamer):
        assert "worker_jobs_deferred_total{" not in worker.metrics()


def test_an_overloaded_model_falls_back_to_the_next_in_the_kinds_chain(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    for kind in ("generate_design", "rename_layers"):
        env.db.sql(
            "insert into public.kind_models values (%s, 1, 'anthropic', %s), (%s, 2, 'gemini', 'gemini-2.5-flash')",
            (kind, HAIKU, kind),
        )
    fault = {"provider": "anthropic", "kind": "529", "model": HAIKU, "retry_after": 60}
    standin.post("/_standin/faults", json=fault).raise_for_status()
    designer = spawn("supabase", WORKER_KINDS="generate_design")
    renamer = spawn("postgres", WORKER_KINDS="rename_layers")
    designer.wait_healthy()
    renamer.wait_healthy()
    first = design(env)
    done = until(lambda: (r := job(env, first.id)).status == "succeeded" and r, "first answered by the fallback")
    assert done.attempts == 1 and done.result is not None and done.result["root"]["type"] == "FRAME"
    assert done.result["model"] == {
        "provider": "gemini",
        "model": "gemini-2.5-flash",
        "fallback": True,
        "cooldown_wait_s": 0.0,
    }
    second = rename(env)
    done = until(lambda: (r := job(env, second.id)).status == "succeeded" and r, "second on the fallback")
    assert done.result is not None and done.result["model"]["model"] == "gemini-2.5-flash"
    # The overloaded model was asked once; the other process skipped it while it cooled down.
    assert requests(standin) == [
        ("anthropic", HAIKU, "generate_design", 529),
        ("gemini", "gemini-2.5-flash", "generate_design", 200),
        ("gemini", "gemini-2.5-flash", "rename_layers", 200),
    ]


def _cooling_down(env: Env) -> bool:
    query = "select 1 from public.model_capacity where model = %s and cooldown_until > now()"
    return bool(env.db.sql(query, (HAIKU,)))


def _deferred(env: Env, job_id: Any) -> bool:
    logs = [data for kind, data in env.db.events(job_id) if kind == "log"]
    return any(entry.get("event") == "deferred" for entry in logs)
