"""The words of the AI workload report: the notes on a run, its settings and the method."""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

from bench.scenarios.ai_workload.facts import JobFacts, busiest_model_burst, overhead_parts, pct_ms
from bench.scenarios.ai_workload.plan import Plan
from bench.scenarios.ai_workload.sampling import Samples
from bench.scenarios.ai_workload.users import FALLBACK_POLL_AFTER_S, Load
from bench.stats import percentile
from bench.worker_lag import gc_pause_note, loop_lag_note


def notes_on(
    plan: Plan,
    load: Load,
    jobs: dict[str, JobFacts],
    facts: list[JobFacts],
    clean: list[JobFacts],
    samples: Samples,
    extra: dict[str, Any],
    probe_problem: str | None,
    error_rate: float,
    failed: list[JobFacts],
) -> list[str]:
    notes: list[str] = []
    if plan.users < 200:
        notes.append(f"Quick run ({plan.users} users, {plan.duration_s:.0f} s): a smoke test, not numbers to quote.")
    if failed:
        kinds = Counter(f"{f.kind}: {f.error_type}" for f in failed)
        notes.append(f"{len(failed)} jobs failed: {dict(kinds)}.")
    if load.api_errors or load.transport_errors:
        notes.append(f"REST errors other than 429: {dict(load.api_errors)} {dict(load.transport_errors)}.")
    if load.rate_limited:
        notes.append(
            f"{sum(load.rate_limited.values())} enqueue calls were refused by the per-user rate limits "
            f"({dict(load.rate_limited)}); the users waited the hinted {load.rate_limited_wait_s:.0f} s in total, "
            f"and {load.rate_limited_too_late} hints pointed past the end of the run (those users stopped)."
        )
    if load.polls:
        notes.append(
            f"{load.polls} fallback REST reads: some final statuses did not arrive over Realtime within "
            f"{FALLBACK_POLL_AFTER_S:.0f} s."
        )
    if extra["timings_dropped"]:
        notes.append(f"The stand-ins' timing log dropped {extra['timings_dropped']} entries: model time is incomplete.")
    if clean:
        parts = overhead_parts(clean)
        worst = max(parts, key=lambda k: parts[k].get("p99_ms", 0.0))
        notes.append(
            f"Largest overhead component at p99: {worst.replace('_', ' ')} "
            f"({parts[worst].get('p99_ms')} ms; p50 {parts[worst].get('p50_ms')} ms)."
        )
    burst, burst_at = busiest_model_burst(facts)
    if burst_at is not None:
        notes.append(
            f"Busiest 100 ms of model calls: {burst} requests started, {burst_at:.1f} s after the first job "
            "(the worker releases the jobs that waited out a cooldown spread over a window after its end)."
        )
    share = extra["cpu_share_during_load"]
    if share:
        busy = ", ".join(f"{k} {v:.0%}" for k, v in sorted(share.items(), key=lambda kv: -kv[1]))
        notes.append(
            f"CPU during the load (share of one core): {busy}, on {extra['nproc']} cores; "
            f"load average 1 min peaked at {max(samples.loadavg, default=0):.1f}."
        )
    if samples.cpu_pressure and percentile(sorted(samples.cpu_pressure), 50) >= 50:
        notes.append(
            f"The machine was short of CPU during the load: some runnable task waited for a CPU "
            f"{percentile(sorted(samples.cpu_pressure), 50):.0f} % of the time (median of /proc/pressure/cpu "
            "'some avg10'). Processes outside this scenario count too; latencies are inflated accordingly."
        )
    wait_p50 = pct_ms([f.started - f.created for f in facts if f.started is not None], 50)
    if wait_p50 is not None and wait_p50 > 1000:
        notes.append(
            f"Wake-ups were late: enqueue → claim p50 {wait_p50 / 1000:.1f} s. The worker wakes on Realtime, which the "
            f"gateway decodes from its logical slot; the slot was up to {max(samples.slot_lag_mb, default=0):.0f} MB "
            f"behind the WAL, and the cluster wrote {max(samples.wal_mb_per_s, default=0):.1f} MB/s of WAL at most "
            "(all databases of the shared cluster, not only this one)."
        )
    waits = extra.get("db_active_statements_max")
    if waits is not None and waits <= 2:
        notes.append(
            f"The database was not the bottleneck: at most {waits} statement(s) of the scratch database were "
            "running at any sample."
        )
    digest = extra.get("errors_seen_by_users", {}).get("jobs_by_kind_and_type", {})
    grouped = {k: v for k, v in digest.items() if "internal_error" in k}
    retried_429 = [f for f in facts if f.got_429 and f.attempts > 1]
    if grouped and retried_429:
        notes.append(
            f"{len(retried_429)} jobs that got a model 429 used up an attempt instead of being deferred "
            f"({dict(Counter(f.kind for f in retried_429))}); their users saw {grouped}. rename_layers runs its "
            "batches in an asyncio.TaskGroup, whose ExceptionGroup the runner does not classify as RateLimited."
        )
    if probe_problem:
        notes.append(f"Idle rename probe: {probe_problem}.")
    worker_metrics = extra.get("worker_metrics", {})
    notes += [note for note in (loop_lag_note(worker_metrics), gc_pause_note(worker_metrics)) if note]
    notes += budget_notes(extra)
    return notes


def budget_notes(extra: dict[str, Any]) -> list[str]:
    """RPC calls and Realtime messages per job, against hosted Realtime's plan quotas (issue 14)."""
    notes: list[str] = []
    if calls := extra.get("rpc_calls"):
        each = ", ".join(f"{k} {v}" for k, v in sorted(calls["per_job"].items(), key=lambda kv: -kv[1]))
        notes.append(
            f"RPC calls per finished job: {calls['total_per_job']} ({each}); and "
            f"{calls.get('handoffs_per_job', 0)} claims per job made in the enqueue for a parked worker (hand-offs)."
        )
    if rt := extra.get("realtime_budget"):
        kinds = ", ".join(
            f"{k} {v['mean']} (max {v['max']}, {v['over_3']} over 3)" for k, v in rt["messages_per_job_by_kind"].items()
        )
        plans = ", ".join(
            f"{name} {p['messages_per_s']}/s → {p['jobs_per_s_sustained']} jobs/s" for name, p in rt["plans"].items()
        )
        notes.append(
            f"Realtime messages received per job: {rt['messages_per_job']} ({kinds}); "
            f"{rt['messages_per_s_during_load']} messages/s during the load. At this mix each plan sustains: {plans}."
        )
    return notes


def settings_of(plan: Plan, code: str) -> dict[str, Any]:
    return {
        "code": code,
        "users": plan.users,
        "duration_s": plan.duration_s,
        "user_start_ramp_s": plan.ramp_s,
        "think_time_s": f"uniform {plan.think_s[0]:g}–{plan.think_s[1]:g}",
        "mix": dict(plan.mix),
        "rename_layers_per_job": plan.rename_layers,
        "model_latency_ms": f"uniform {plan.latency_ms[0]}–{plan.latency_ms[1]} per request (time to first byte)",
        "stream_delay_ms": f"{plan.stream_delay_ms} between streamed deltas (generate_edits), after the latency",
        "model_429_rate": plan.error_429_rate,
        "model_429_retry_after_s": plan.error_429_retry_after_s,
        "standin_random_seed": plan.seed,
        "worker": "1 process, python -m worker run",
        "WORKER_STORE": plan.store
        + (" (REST + Realtime via the gateway)" if plan.store == "supabase" else " (psycopg, LISTEN/NOTIFY)"),
        "WORKER_CONCURRENCY": plan.worker_concurrency,
        "PROVIDER_CONCURRENCY": plan.provider_concurrency,
        "PROVIDER_MAX_WAIT_SECONDS": os.environ.get("BENCH_PROVIDER_MAX_WAIT_SECONDS", "10 (default)"),
        "worker_other_settings": "LEASE_SECONDS 60, SWEEP_SECONDS 30, PROVIDER_RETRIES 2, "
        "PROVIDER_TIMEOUT_SECONDS 120 (defaults), LOG_LEVEL WARNING",
        "job_kinds": "as migrated: rate_limit_per_minute per user rename_layers 10, generate_design 10, "
        "generate_edits 3, generate_image 3; max_running_per_user 3 / 2 / 1 / 1; max_attempts 3 / 3 / 3 / 2",
        "rename_batch_size": "25 layers per model request (worker/handlers/rename_layers.py)",
        "drain_cap_s": plan.drain_cap_s,
        "idle_probe": f"{plan.probe_jobs} rename jobs of {plan.rename_layers} layers, one at a time, "
        f"fixed latency {plan.probe_latency_ms} ms, no 429s",
        "processes": "gateway, model stand-ins and worker in processes of their own; the users are asyncio "
        "tasks of the scenario process (httpx for REST, one websocket each for Realtime)",
        "database": "scratch database on the shared devstack cluster (127.0.0.1:54322), migrated, dropped after",
    }


def method(plan: Plan) -> str:
    return f"""\
**Setup.** A scratch database is migrated (the product's `job_kinds` and their limits unchanged) and
gets {plan.users} users (+1 for the probe), each with its own JWT (HS256 with the stack's secret, role and
aud `authenticated`). The devstack gateway, the model stand-ins (`python -m devstack.models`) and one
`python -m worker run` (WORKER_STORE={plan.store}; `supabase` claims and reports over REST and wakes on
Realtime) run in processes of their own on free loopback ports. The stand-ins answer every request after a latency
drawn uniformly from {plan.latency_ms[0]}–{plan.latency_ms[1]} ms (streams then send their deltas
{plan.stream_delay_ms} ms apart) and answer {plan.error_429_rate:.0%} of requests 429 at once with
`retry-after: {plan.error_429_retry_after_s:g}`.

**Users.** Each user is a closed loop: pick a kind (mix {", ".join(f"{k} {w:.0%}" for k, w in plan.mix)}),
`POST /rest/v1/rpc/enqueue_job` with the anon key and its own JWT, wait for the job's final status,
think {plan.think_s[0]:g}–{plan.think_s[1]:g} s, repeat. Users start at a random moment in the first
{plan.ramp_s:g} s and stop submitting after {plan.duration_s:g} s. An enqueue refused with 429 (the
per-user rate limit) is retried after the `retry after N seconds` of its hint, and counted as rate
limited, not as an error. The user waits for the result as the plugin does: on its private Realtime
topic `jobs:<uid>` (one websocket per user, joined with its JWT); only if no final broadcast arrives
within {FALLBACK_POLL_AFTER_S:g} s does it read the job over REST. No timing comes from the clients.

**Timings** come from the `jobs` table at the end (database clock): enqueue → done =
`finished_at − created_at` of succeeded jobs. **Model time** of a job: every payload carries a unique
tag in text the worker forwards to the model (the rename context, the design prompt, the edit
instruction, the image prompt); the stand-ins log each request's start (request received) and end
(answer rendered, or the last streamed chunk sent) with the tag, and a job's model time is the length
of the union of its requests' intervals (the two rename batches overlap). **Worker overhead** =
enqueue → done − model time: wake-up and claim, handler start, progress and partial-output writes,
Storage upload (images), `complete_job`. It is reported over jobs that succeeded in one attempt and
were never deferred and never waited out a cooldown in the worker (`result.model.cooldown_wait_s`):
a job that got a model 429 itself, or met the shared cooldown another job's 429 opened (issue 13),
waits the `retry-after` by design, in the worker when it is short, in the queue otherwise. The overhead is also split
into enqueue → claim, claim → first model request, gaps between model requests, and last model answer
→ done (`finished_at`); these mix the database's and the stand-ins' clocks, which are the same machine
clock. `created_at` is the enqueue transaction's start, so the overhead includes that whole
transaction as the gateway stand-in runs it: the product's enqueue SQL (a hand-off's claim for a
parked worker included) and the stand-in's round trips around it. The gateway sends PostgREST's
`Server-Timing` header (`PGRST_SERVER_TIMING_ENABLED`); its `transaction` stage places each enqueue's
commit, and the overhead after the commit is reported beside the whole.

**Errors and losses.** Error rate = (failed jobs + REST errors other than 429) / (finished jobs + those
REST errors). Lost = jobs a user got an id for that are missing from the table or not finished
{plan.drain_cap_s:g} s after submissions stopped.

**Resources.** Every second: the worker's RSS (`VmRSS` in `/proc/<pid>/status`; `VmHWM` is the
kernel's peak) and the scratch database's connections in `pg_stat_activity` by user / application /
backend type, with the wait event of each running statement. CPU seconds per process over the load
window come from `/proc/<pid>/stat`. To tell the product's cost from the machine's state, the run also
records the CPU pressure (`/proc/pressure/cpu`, share of time some runnable task waited for a CPU;
other processes on the machine count), this process's event-loop lag, and the TCP connections to the
gateway's port (TIME_WAIT on the client side = connections a client closed instead of reusing).

**rename {plan.rename_layers} layers vs one round trip.** The worker sends 25 layers per model request,
all batches at once. After the load, on the idle system, {plan.probe_jobs} rename jobs of
{plan.rename_layers} layers run one at a time with a fixed model latency of {plan.probe_latency_ms} ms and
no 429s: claimed → done (`finished_at − started_at`) against the longest single model request of the
job. The same ratio is reported for the rename jobs of the main run. "≈ one round trip" is judged as
a median ratio ≤ 1.1 (two batches in a row would give ≈ 2).
"""
