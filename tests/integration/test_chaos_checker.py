"""The chaos suite's history checker (bench/chaos/history.py) is honest: fabricated histories
with a planted double, loss, stuck job, miscounted attempt or a client that missed the end are
each counted, and a clean history of retries, reaped leases and catch-up reads passes."""

from __future__ import annotations

from dataclasses import replace

from bench.chaos.history import Job, Seen, Transition, Verdict, check

NOW = 10_000.0
LEASE, SWEEP = 6.0, 2.0
USER = "u1"


def job(job_id: str, status: str = "succeeded", attempts: int = 1, **kw: object) -> Job:
    base = Job(
        id=job_id,
        user_id=USER,
        kind="generate_edits",
        status=status,
        attempts=attempts,
        max_attempts=3,
        has_result=status == "succeeded",
        run_at=NOW - 100,
        lease_expires_at=None,
        updated_at=NOW - 50,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def t(at: float, old: str | None, new: str, a0: int, a1: int, result: bool = False, worker: str = "w1") -> Transition:
    return Transition(NOW - 100 + at, old, new, a0, a1, result, worker)


def reaped_then_succeeded() -> list[Transition]:
    """Claimed, the worker killed, the lease reaped (attempt kept), claimed again, succeeded."""
    return [
        t(0, None, "queued", 0, 0),
        t(1, "queued", "running", 0, 1),
        t(9, "running", "queued", 1, 1, worker="w1"),
        t(14, "queued", "running", 1, 2, worker="w2"),
        t(16, "running", "succeeded", 2, 2, result=True, worker="w2"),
    ]


def run(
    jobs: dict[str, Job],
    trail: dict[str, list[Transition]] | None,
    seen: dict[str, list[Seen]],
    enqueued: list[str] | None = None,
) -> Verdict:
    return check(enqueued or list(jobs), jobs, trail, seen, {USER}, now=NOW, lease_s=LEASE, sweep_s=SWEEP)


def final(status: str = "succeeded", via: str = "realtime") -> list[Seen]:
    return [Seen(NOW - 80, "running", "realtime"), Seen(NOW - 70, status, via)]


def test_a_clean_history_with_a_reaped_lease_and_a_catch_up_read_passes() -> None:
    v = run({"a": job("a", attempts=2)}, {"a": reaped_then_succeeded()}, {"a": final(via="rest_after_reconnect")})
    assert v.ok, v.summary()
    assert v.client_final_via == {"rest_after_reconnect": 1}


def test_a_second_success_is_counted_doubled() -> None:
    trail = [
        *reaped_then_succeeded(),
        t(17, "succeeded", "running", 2, 3),  # a stale worker re-ran a finished job
        t(19, "running", "succeeded", 3, 3, result=True),
    ]
    v = run({"a": job("a", attempts=2)}, {"a": trail}, {"a": final()})
    assert v.doubled == ["a"]
    assert not v.ok


def test_a_result_written_twice_is_counted_doubled() -> None:
    trail = [*reaped_then_succeeded(), t(18, "succeeded", "succeeded", 2, 2, result=True)]
    v = run({"a": job("a", attempts=2)}, {"a": trail}, {"a": final()})
    assert v.doubled == ["a"]


def test_an_enqueued_job_without_a_row_is_counted_lost() -> None:
    v = run({"a": job("a", attempts=2)}, {"a": reaped_then_succeeded()}, {"a": final()}, enqueued=["a", "gone"])
    assert v.lost == ["gone"]
    assert not v.ok


def test_a_success_without_a_result_is_counted_lost() -> None:
    v = run({"a": job("a", attempts=2, has_result=False)}, {"a": reaped_then_succeeded()}, {"a": final()})
    assert v.lost == ["a"]


def test_a_running_job_past_its_lease_and_the_sweep_is_stuck() -> None:
    running = job("a", status="running", has_result=False, lease_expires_at=NOW - LEASE - SWEEP - 30)
    trail = [t(0, None, "queued", 0, 0), t(1, "queued", "running", 0, 1)]
    v = run({"a": running}, {"a": trail}, {})
    assert v.stuck == ["a"]


def test_a_due_queued_job_nobody_claims_is_stuck_but_a_backed_off_one_is_not() -> None:
    due = job("a", status="queued", attempts=0, has_result=False, run_at=NOW - 60)
    later = job("b", status="queued", attempts=1, has_result=False, run_at=NOW + 5)
    v = run({"a": due, "b": later}, None, {})
    assert v.stuck == ["a"]


def test_a_claim_that_does_not_count_an_attempt_is_caught() -> None:
    trail = [t(0, None, "queued", 0, 0), t(1, "queued", "running", 0, 0), t(3, "running", "succeeded", 0, 0, True)]
    v = run({"a": job("a", attempts=0)}, {"a": trail}, {"a": final()})
    assert v.attempts_wrong == ["a"]


def test_more_attempts_than_allowed_is_caught_without_an_audit_trail() -> None:
    v = run({"a": job("a", attempts=4)}, None, {"a": final()})
    assert v.attempts_wrong == ["a"]


def test_a_subscribed_client_that_never_saw_the_end_is_counted() -> None:
    v = run({"a": job("a", attempts=2)}, {"a": reaped_then_succeeded()}, {"a": [Seen(NOW - 80, "running", "realtime")]})
    assert v.client_missed_final == ["a"]
    assert not v.ok


def test_a_client_left_with_a_stale_status_after_the_end_is_counted() -> None:
    seen = [*final(), Seen(NOW - 60, "running", "realtime")]
    v = run({"a": job("a", attempts=2)}, {"a": reaped_then_succeeded()}, {"a": seen})
    assert v.client_wrong_final == ["a"]


def test_unsubscribed_users_are_not_held_to_the_client_check() -> None:
    other = job("a", attempts=2, user_id="u2")
    v = run({"a": other}, {"a": reaped_then_succeeded()}, {})
    assert v.ok, v.summary()
