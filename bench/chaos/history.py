"""The history checker: every job judged by what the database recorded (the jobs row and, on a
local stack, every change of its status, attempts and result captured by the run's audit
trigger) and by what the subscribed clients received on ``jobs:<uid>``.

Pure functions on plain data, so a test can hand it fabricated histories with a planted double,
loss or stuck job (tests/integration/test_chaos_checker.py) and see it counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class Transition:
    """One audited change of a jobs row (insert: ``old_status`` None)."""

    at: float  # epoch seconds (clock_timestamp() of the change)
    old_status: str | None
    new_status: str
    old_attempts: int
    new_attempts: int
    result_written: bool  # result went from anything to a different non-null value
    worker_id: str | None = None


@dataclass(frozen=True)
class Job:
    """The jobs row as read after the run."""

    id: str
    user_id: str
    kind: str
    status: str
    attempts: int
    max_attempts: int
    has_result: bool
    run_at: float
    lease_expires_at: float | None
    updated_at: float
    error_type: str | None = None


@dataclass(frozen=True)
class Seen:
    """A status a subscribed client received for a job (``via``: realtime, or a REST read after a
    reconnect, as the plugin catches up)."""

    at: float
    status: str
    via: str


@dataclass
class Verdict:
    jobs: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    doubled: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    attempts_wrong: list[str] = field(default_factory=list)
    client_missed_final: list[str] = field(default_factory=list)
    client_wrong_final: list[str] = field(default_factory=list)
    client_final_via: dict[str, int] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # job id -> why it was counted

    @property
    def ok(self) -> bool:
        return not (
            self.lost
            or self.doubled
            or self.stuck
            or self.attempts_wrong
            or self.client_missed_final
            or self.client_wrong_final
        )

    def summary(self) -> dict[str, Any]:
        return {
            "jobs": self.jobs,
            "by_status": dict(sorted(self.by_status.items())),
            "lost": len(self.lost),
            "doubled": len(self.doubled),
            "stuck": len(self.stuck),
            "attempts_wrong": len(self.attempts_wrong),
            "client_missed_final": len(self.client_missed_final),
            "client_wrong_final": len(self.client_wrong_final),
            "client_final_via": dict(sorted(self.client_final_via.items())),
            "examples": dict(list(self.notes.items())[:20]),
        }

    def _flag(self, bucket: list[str], job_id: str, why: str) -> None:
        if job_id not in bucket:
            bucket.append(job_id)
        self.notes.setdefault(job_id, why)


def check(
    enqueued: Iterable[str],
    jobs: dict[str, Job],
    transitions: dict[str, list[Transition]] | None,
    seen: dict[str, list[Seen]],
    subscribed_users: set[str],
    *,
    now: float,
    lease_s: float,
    sweep_s: float,
    grace_s: float = 5.0,
) -> Verdict:
    """Judge every job the clients enqueued (and every other row in ``jobs``).

    ``transitions`` is None where no audit trail exists (a staging stack): the row-level checks
    still run. ``seen`` holds what subscribed clients received, by job id.
    """
    v = Verdict()
    ids = set(enqueued) | set(jobs)
    v.jobs = len(ids)
    patience = lease_s + sweep_s + grace_s
    for job_id in sorted(ids):
        job = jobs.get(job_id)
        if job is None:
            v._flag(v.lost, job_id, "enqueue returned this id; no row exists")
            continue
        v.by_status[job.status] = v.by_status.get(job.status, 0) + 1
        if job.attempts > job.max_attempts:
            v._flag(v.attempts_wrong, job_id, f"attempts {job.attempts} > max_attempts {job.max_attempts}")
        if job.status == "succeeded" and not job.has_result:
            v._flag(v.lost, job_id, "succeeded without a result")
        if job.status != "succeeded" and job.has_result:
            v._flag(v.doubled, job_id, f"{job.status} but a result was written")
        if job.status == "running" and (job.lease_expires_at or 0) < now - sweep_s - grace_s:
            v._flag(v.stuck, job_id, f"running with a lease that expired {now - (job.lease_expires_at or 0):.0f} s ago")
        if job.status == "queued" and job.run_at < now - patience:
            v._flag(v.stuck, job_id, f"queued and due for {now - job.run_at:.0f} s, never claimed")
        if transitions is not None:
            _check_transitions(v, job, transitions.get(job_id, []))
        if job.user_id in subscribed_users and job.status in TERMINAL:
            _check_client(v, job, seen.get(job_id, []))
    return v


def _check_transitions(v: Verdict, job: Job, trail: list[Transition]) -> None:
    terminal_entries = [t for t in trail if t.new_status in TERMINAL and t.old_status not in TERMINAL]
    if len(terminal_entries) > 1:
        v._flag(v.doubled, job.id, f"reached a terminal state {len(terminal_entries)} times")
    if any(t.old_status in TERMINAL and t.new_status != t.old_status for t in trail):
        v._flag(v.doubled, job.id, "left a terminal state")
    writes = sum(1 for t in trail if t.result_written)
    if writes > 1:
        v._flag(v.doubled, job.id, f"result written {writes} times")
    if job.status in TERMINAL and not terminal_entries:
        v._flag(v.lost, job.id, f"{job.status} without an audited transition to it")
    for t in trail:
        # Documented: a claim counts an attempt; a release or defer gives it back; nothing else
        # (a reaped lease, a failure, a retry) changes the count.
        delta = t.new_attempts - t.old_attempts
        if t.old_status is None:
            expected = {0}
        elif t.new_status == "running" and t.old_status != "running":
            expected = {1}
        elif t.old_status == "running" and t.new_status == "queued":
            expected = {0, -1}  # reaped or failed-retryable: 0; released or deferred: -1
        else:
            expected = {0}
        if delta not in expected:
            v._flag(
                v.attempts_wrong,
                job.id,
                f"{t.old_status} -> {t.new_status} changed attempts by {delta}, expected {sorted(expected)}",
            )
    claims = sum(1 for t in trail if t.new_status == "running" and t.old_status != "running")
    given_back = sum(
        1 for t in trail if t.old_status == "running" and t.new_status == "queued" and t.new_attempts < t.old_attempts
    )
    if trail and claims - given_back != job.attempts:
        v._flag(v.attempts_wrong, job.id, f"attempts {job.attempts} but {claims} claims and {given_back} give-backs")


def _check_client(v: Verdict, job: Job, seen: list[Seen]) -> None:
    finals = [s for s in seen if s.status in TERMINAL]
    if not finals:
        v._flag(v.client_missed_final, job.id, f"{job.status} in the database; the subscribed client never saw it")
        return
    last = max(seen, key=lambda s: s.at)
    if last.status != job.status:
        v._flag(v.client_wrong_final, job.id, f"client's last status {last.status!r}, database {job.status!r}")
    first_final = min(finals, key=lambda s: s.at)
    v.client_final_via[first_final.via] = v.client_final_via.get(first_final.via, 0) + 1
