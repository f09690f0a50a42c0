"""What happened to each job (the jobs table, joined to the stand-ins' request log by tag) and
the per-kind arithmetic on it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg
from psycopg import sql

from bench.scenarios.ai_workload.plan import TAG_PATTERN, TERMINAL
from bench.scenarios.ai_workload.users import Load, Submission
from bench.stats import percentile, summary
from devstack import paths


def union_s(intervals: Sequence[tuple[float, float]]) -> float:
    """Length of the union of [start, end] intervals (rename batches overlap)."""
    total, current_start, current_end = 0.0, None, None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None and current_start is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_end is not None and current_start is not None:
        total += current_end - current_start
    return total


@dataclass
class JobFacts:
    id: str
    kind: str
    status: str
    attempts: int
    created: float
    started: float | None
    finished: float | None
    error_type: str | None
    tag: str | None
    deferrals: int = 0  # defer_job calls (a model 429, or a shared cooldown / capacity wait)
    cooldown_wait_s: float = 0.0  # waited in the worker for a cooldown to end (result.model)
    requests: list[dict[str, Any]] = field(default_factory=list)
    enqueue_tx_s: float | None = None  # the enqueue's transaction in the gateway (its Server-Timing)

    @property
    def got_429(self) -> bool:
        return any(r["status"] == 429 for r in self.requests)

    @property
    def clean(self) -> bool:
        """Succeeded in one attempt, never deferred nor waiting out a cooldown, every model request
        answered."""
        return (
            self.status == "succeeded"
            and self.attempts == 1
            and not self.got_429
            and self.deferrals == 0
            and self.cooldown_wait_s == 0
            and bool(self.requests)
            and all(r["finished"] is not None for r in self.requests)
            and self.started is not None
            and self.finished is not None
        )

    @property
    def model_s(self) -> float:
        return union_s([(r["started"], r["finished"]) for r in self.requests if r["finished"] is not None])

    @property
    def total_s(self) -> float:
        assert self.finished is not None
        return self.finished - self.created

    @property
    def round_trip_s(self) -> float:
        """The longest single model request of the job: one round trip as the model served it."""
        return max(float(r["finished"]) - float(r["started"]) for r in self.requests)


def read_jobs(database: str) -> dict[str, JobFacts]:
    query = sql.SQL(
        "select id::text, kind, status, attempts, extract(epoch from created_at)::float8 as created, "
        "extract(epoch from started_at)::float8 as started, extract(epoch from finished_at)::float8 as finished, "
        "error->>'type' as error_type, substring(payload::text from {}) as tag, "
        "(select count(*) from public.job_events e where e.job_id = jobs.id and e.type = 'log' "
        "and e.data->>'event' = 'deferred')::int as deferrals, "
        "coalesce((result #>> '{{model,cooldown_wait_s}}')::float8, 0) as cooldown_wait_s from public.jobs"
    ).format(sql.Literal(TAG_PATTERN))
    with psycopg.connect(paths.database_url(database)) as conn:
        rows = conn.execute(query).fetchall()
    return {r[0]: JobFacts(*r) for r in rows}


def fetch_timings(models: str) -> tuple[list[dict[str, Any]], int]:
    out: list[dict[str, Any]] = []
    after, dropped = 0, 0
    with httpx.Client(base_url=models, timeout=30) as http:
        while True:
            page = http.get("/_standin/timings", params={"after": after, "limit": 10_000}).json()
            out.extend(page["timings"])
            after, dropped = page["next_after"], page["dropped"]
            if not page["more"]:
                return out, dropped


def ms(values_s: Sequence[float]) -> list[float]:
    return [v * 1000 for v in values_s]


def pct_ms(values_s: Sequence[float], p: float) -> float | None:
    return round(percentile(sorted(values_s), p) * 1000, 1) if values_s else None


def kind_row(label: str, subs: list[Submission], jobs: dict[str, JobFacts], load: Load) -> dict[str, Any]:
    facts = [jobs[s.job_id] for s in subs if s.job_id in jobs]
    done = [f for f in facts if f.status in TERMINAL and f.finished is not None]
    succeeded = [f for f in done if f.status == "succeeded"]
    clean = [f for f in succeeded if f.clean]
    overhead = [f.total_s - f.model_s for f in clean]
    rate_limited = sum(load.rate_limited.values()) if label == "all" else load.rate_limited[label]
    return {
        "kind": label,
        "submitted": len(subs),
        "completed": len(succeeded),
        "failed": sum(1 for f in done if f.status == "failed"),
        "lost": len(subs) - len(done),
        "rate_limited_at_enqueue": rate_limited,
        "got_a_model_429": sum(1 for f in facts if f.got_429),
        "deferred_without_own_429": sum(1 for f in facts if f.deferrals and not f.got_429),
        "waited_out_cooldown": sum(1 for f in facts if f.cooldown_wait_s > 0 and not f.got_429),
        "enqueue_to_done_p50_ms": pct_ms([f.total_s for f in succeeded], 50),
        "enqueue_to_done_p99_ms": pct_ms([f.total_s for f in succeeded], 99),
        "model_p50_ms": pct_ms([f.model_s for f in clean], 50),
        "overhead_n": len(overhead),
        "overhead_p50_ms": pct_ms(overhead, 50),
        "overhead_p99_ms": pct_ms(overhead, 99),
        "overhead_max_ms": round(max(overhead) * 1000, 1) if overhead else None,
    }


def overhead_parts(clean: list[JobFacts]) -> dict[str, dict[str, float]]:
    """Where the overhead goes: queue wait, claim → first model request, model gaps, last answer → done."""
    wait, before, gaps, after = [], [], [], []
    for f in clean:
        assert f.started is not None and f.finished is not None
        first = min(r["started"] for r in f.requests)
        last = max(r["finished"] for r in f.requests)
        wait.append(f.started - f.created)
        before.append(first - f.started)
        gaps.append((last - first) - f.model_s)
        after.append(f.finished - last)
    return {
        "enqueue_to_claim": summary(ms(wait)),
        "claim_to_first_model_request": summary(ms(before)),
        "gaps_between_model_requests": summary(ms(gaps)),
        "last_model_answer_to_done": summary(ms(after)),
    }


def enqueue_transaction_split(clean: list[JobFacts]) -> dict[str, dict[str, float]]:
    """The overhead with the enqueue's own transaction set apart. ``created_at`` is the transaction's
    start (``now()``), so the overhead counts the whole enqueue transaction in the gateway stand-in:
    the product's enqueue SQL (a hand-off's claim included) and the stand-in's round trips around it
    (BEGIN, the request's settings, the call, COMMIT). Its commit is placed at start + the
    ``transaction`` stage of the answer's Server-Timing (a little late: the stage starts just before
    BEGIN is sent)."""
    timed = [(f, f.enqueue_tx_s) for f in clean if f.enqueue_tx_s is not None]
    tx = [t for _, t in timed]
    to_first = [min(r["started"] for r in f.requests) - (f.created + t) for f, t in timed]
    rest = [f.total_s - f.model_s - t for f, t in timed]
    return {
        "enqueue_transaction": summary(ms(tx)),
        "commit_to_first_model_request": summary(ms(to_first)),
        "overhead_after_the_enqueue_commit": summary(ms(rest)),
    }


WARM_AFTER_S = 10.0  # the users' start ramp (5 s) and the stack's cold start are behind by then


def steady_overhead_s(
    facts: Sequence[JobFacts], clean: Sequence[JobFacts], after_s: float = WARM_AFTER_S
) -> list[float]:
    """The overhead of the clean jobs enqueued ``after_s`` or more after the run's first job: past
    the start ramp and the cold start of a freshly started stack (every new database connection,
    the worker's and the gateway stand-in's, plans each SQL function it calls the first time:
    bench/FIXES.md). Reported beside the whole run's figure, which stays the goal's."""
    if not facts:
        return []
    first = min(f.created for f in facts)
    return [f.total_s - f.model_s for f in clean if f.created - first >= after_s]


def busiest_model_burst(facts: Sequence[JobFacts], window_s: float = 0.1) -> tuple[int, float | None]:
    """The most model requests that started within one ``window_s`` (a sliding window), and when
    (seconds after the run's first job): how many calls the worker released at once, e.g. the jobs
    that waited out one cooldown (bench/FIXES.md, "the herd at a cooldown's end")."""
    starts = sorted(r["started"] for f in facts for r in f.requests)
    if not starts:
        return 0, None
    first = min(f.created for f in facts)
    best, at, low = 0, None, 0
    for high, started in enumerate(starts):
        while started - starts[low] > window_s:
            low += 1
        if high - low + 1 > best:
            best, at = high - low + 1, starts[low] - first
    return best, at


def count_events(database: str) -> dict[str, int]:
    with psycopg.connect(paths.database_url(database)) as conn:
        rows = conn.execute("select type, count(*) from public.job_events group by 1").fetchall()
    return {str(r[0]): int(r[1]) for r in rows}
