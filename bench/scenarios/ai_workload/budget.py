"""Round trips and Realtime messages per job (issue 14): the worker's RPC calls by function, counted
by PostgreSQL (pg_stat_user_functions, with track_functions on for the scratch database), and
the broadcasts the users' sockets received, against hosted Realtime's per-plan message quotas."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import psycopg

from bench.scenarios.ai_workload.facts import JobFacts
from devstack import paths
from worker.handlers.rename_layers import BATCH_SIZE as RENAME_BATCH_SIZE

# Hosted Realtime messages per second by plan: https://supabase.com/docs/guides/realtime/limits
# (docs/hosted-platform.md §3).
PLAN_MESSAGES_PER_S = {"free": 100, "pro": 500, "pro_no_spend_cap": 2500}
# The worker's side of the SQL API: what a job costs in round trips.
WORKER_CALLS = (
    "claim_jobs",
    "claim_jobs_or_park",
    "complete_and_claim",
    "report_and_complete",
    "unpark_worker",
    "renew_leases",
    "report_progress",
    "report_progress_batch",
    "record_usage_batch",
    "complete_job",
    "complete_jobs",
    "fail_job",
    "defer_job",
    "acquire_model_capacity_batch",
    "report_model_rate_limit",
)


def track_calls(database: str) -> None:
    """Count calls of plpgsql and SQL functions in ``database`` from now on (new sessions)."""
    # The scratch cluster's setting (a reload reaches the gateway's pooled sessions too).
    with psycopg.connect(paths.admin_url(database), autocommit=True) as conn:
        conn.execute("alter system set track_functions = 'all'")
        conn.execute("select pg_reload_conf()")
        conn.execute("select pg_stat_reset()")


def count_calls(database: str) -> dict[str, int]:
    """Calls of the worker's functions so far (the public API functions only, not nested helpers);
    then the cluster's setting goes back to its default."""
    with psycopg.connect(paths.admin_url(database), autocommit=True) as conn:
        rows = conn.execute(
            "select funcname, sum(calls)::bigint from pg_stat_user_functions where schemaname = 'public' "
            "and funcname = any(%s) group by 1",
            (list(WORKER_CALLS),),
        ).fetchall()
        conn.execute("alter system reset track_functions")
        conn.execute("select pg_reload_conf()")
    return top_level({str(r[0]): int(r[1]) for r in rows})


# Functions of the API that call others of it: pg_stat_user_functions counts the inner calls too.
# Once per call: claim_jobs inside claim_jobs_or_park and complete_and_claim, complete_jobs inside
# complete_and_claim, report_progress_batch and complete_jobs inside report_and_complete.
# (record_usage and acquire_model_capacity run once per item inside the batch functions and
# complete_jobs; the worker never calls them itself, so they are not counted at all.)
NESTED_ONCE = {
    "claim_jobs_or_park": ("claim_jobs",),
    "complete_and_claim": ("claim_jobs", "complete_jobs"),
    "report_and_complete": ("report_progress_batch", "complete_jobs"),
}


def top_level(calls: dict[str, int]) -> dict[str, int]:
    """The round trips the worker made, by function: nested calls taken out (see NESTED_ONCE)."""
    out = dict(calls)
    for outer, inner in NESTED_ONCE.items():
        for name in inner:
            if name in out:
                out[name] -= calls.get(outer, 0)
    return {name: n for name, n in out.items() if n > 0}


def calls_per_job(calls: dict[str, int], jobs: dict[str, JobFacts]) -> dict[str, Any]:
    """The worker's round trips per finished job. ``claim_jobs`` left after the nesting is not one:
    a parked worker claims through claim_jobs_or_park, so those are the hand-offs, made by the
    enqueue's trigger for a parked worker (and the rare claim of a worker whose push channel is
    not joined yet)."""
    finished = max(1, sum(1 for j in jobs.values() if j.finished is not None))
    trips = {name: n for name, n in calls.items() if name != "claim_jobs"}
    per = {name: round(n / finished, 2) for name, n in sorted(trips.items())}
    return {
        "jobs_finished": finished,
        "per_job": per,
        "total_per_job": round(sum(trips.values()) / finished, 2),
        "handoffs_per_job": round(calls.get("claim_jobs", 0) / finished, 2),
    }


STREAMING_KINDS = ("generate_edits",)  # its text reaches the client in pieces: not held to 3


def message_targets(kinds: Iterable[str], rename_layers: int) -> dict[str, int]:
    """Messages a job that does not stream may cost: 3 (queued, running with its first step, the
    outcome with its last; a job handed off by its own enqueue is not announced queued, so
    usually 2). rename_layers reports a step after each model batch, and the issue
    keeps every batch's step: 2 + its batches (the last batch's step rides with the outcome)."""
    batches = -(-rename_layers // RENAME_BATCH_SIZE)
    return {kind: 2 + batches if kind == "rename_layers" else 3 for kind in kinds if kind not in STREAMING_KINDS}


def realtime_goals(budget: dict[str, Any], rename_layers: int) -> list[tuple[str, str, str, bool | None]]:
    """Issue 14's Realtime goals as (name, target, measured, met) from ``realtime_budget``."""
    kinds = budget.get("messages_per_job_by_kind", {})
    targets = message_targets(kinds, rename_layers)
    free = budget.get("plans", {}).get("free", {})
    return [
        (
            "Realtime messages per job that does not stream",
            "≤ 3 (mean per kind); rename_layers ≤ 2 + its batches (each batch's step kept)",
            ", ".join(f"{k} {kinds[k]['mean']} of ≤ {t} (max {kinds[k]['max']})" for k, t in targets.items())
            or "no jobs",
            all(kinds[k]["mean"] <= t for k, t in targets.items()) if targets else None,
        ),
        (
            "Realtime messages per second vs the Free plan",
            "this load within 100 messages/s",
            f"{budget.get('messages_per_s_during_load')} messages/s; {budget.get('messages_per_job')} per job "
            f"→ Free sustains {free.get('jobs_per_s_sustained')} jobs/s",
            free.get("this_load_within"),
        ),
    ]


def realtime_budget(
    per_job: Counter[str],
    labels: Counter[tuple[str, str]],
    during_load: int,
    window_s: float,
    jobs: dict[str, JobFacts],
) -> dict[str, Any]:
    """Messages per job (by kind, and by what each message was) and per second, and the jobs per
    second each plan sustains."""
    by_kind: dict[str, list[int]] = {}
    label_totals: dict[str, Counter[str]] = {}
    for job_id, facts in jobs.items():
        if facts.finished is not None:
            by_kind.setdefault(facts.kind, []).append(per_job.get(job_id, 0))
    for (job_id, label), n in labels.items():
        if (seen := jobs.get(job_id)) is not None and seen.finished is not None:
            label_totals.setdefault(seen.kind, Counter())[label] += n
    counts = [n for ns in by_kind.values() for n in ns]
    mean = sum(counts) / max(1, len(counts))
    per_s = during_load / max(window_s, 1e-9)
    return {
        "messages_per_job": round(mean, 2),
        "messages_per_job_by_kind": {
            kind: {"mean": round(sum(ns) / len(ns), 2), "max": max(ns), "over_3": sum(1 for n in ns if n > 3)}
            for kind, ns in sorted(by_kind.items())
        },
        # e.g. generate_design: {"job:queued": 1.0, "job:running": 1.0, "job:succeeded": 1.0}
        "messages_per_job_by_kind_and_what": {
            kind: {label: round(n / len(by_kind[kind]), 2) for label, n in sorted(label_totals.get(kind, {}).items())}
            for kind in sorted(by_kind)
        },
        "messages_per_s_during_load": round(per_s, 1),
        "plans": {
            plan: {
                "messages_per_s": quota,
                "jobs_per_s_sustained": round(quota / mean, 1) if mean else None,
                "this_load_within": per_s <= quota,
            }
            for plan, quota in PLAN_MESSAGES_PER_S.items()
        },
    }
