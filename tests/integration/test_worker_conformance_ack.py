"""complete_and_claim and report_and_complete on every QueueStore (the backends of
test_worker_conformance.py)."""

from __future__ import annotations

import uuid
from typing import Any, LiteralString

import pytest

from tests.integration.test_worker_conformance import UNREADABLE, Backend, W, backend, claim, supabase_db
from worker.core.errors import InvalidArgument
from worker.core.job_rows import PROBLEM
from worker.core.jobs import Job, UnparseableJob
from worker.core.ports import ProgressReport

pytestmark = pytest.mark.integration
__all__ = ["backend", "supabase_db"]  # the fixtures, used by name


async def test_acknowledges_then_claims_in_one_call(backend: Backend) -> None:
    h = backend.harness
    a, b = h.enqueue("rename_layers"), h.enqueue("rename_layers")
    await claim(backend)
    taken = h.enqueue("generate_design")
    h.enqueue("rename_layers")  # another kind: not asked for
    missing = uuid.uuid4()
    acks, jobs = await backend.store.complete_and_claim(
        W, [(a.id, {"n": 1}), (missing, {}), (b.id, {"n": 2})], ["generate_design"], 5, 60
    )
    assert acks == {a.id: None, missing: "not found", b.id: None}
    assert [j.id for j in jobs] == [taken.id]
    job = jobs[0]
    assert isinstance(job, Job) and (job.status, job.worker_id, job.attempts) == ("running", W, 1)
    assert (h.get(a.id).status, h.get(a.id).result) == ("succeeded", {"n": 1})
    assert h.get(b.id).result == {"n": 2}


async def test_the_last_progress_rides_with_the_acknowledgement(backend: Backend) -> None:
    h = backend.harness
    done = h.enqueue("generate_design")
    await claim(backend)
    nxt = h.enqueue("generate_design")
    last = {done.id: ProgressReport(done.id, percent=95, message="12 nodes")}
    acks, jobs = await backend.store.complete_and_claim(W, [(done.id, {})], None, 5, 60, last)
    assert acks == {done.id: None} and [j.id for j in jobs] == [nxt.id]
    assert h.get(done.id).progress == {"percent": 100, "message": "12 nodes"}
    with pytest.raises(InvalidArgument) as err:  # checked like complete_jobs': nothing changes
        await backend.store.complete_and_claim(
            W, [(nxt.id, {})], None, 5, 60, {nxt.id: ProgressReport(nxt.id, percent=101)}
        )
    assert str(err.value).startswith("completions[0].progress.percent")
    assert h.get(nxt.id).status == "running"


async def test_an_acknowledgement_frees_the_slot_the_claim_takes(backend: Backend) -> None:
    h = backend.harness
    user = h.new_user()
    first, second = (h.enqueue("generate_edits", user_id=user) for _ in range(2))  # max 1 running per user
    assert [j.id for j in await claim(backend, kinds=["generate_edits"])] == [first.id]
    acks, jobs = await backend.store.complete_and_claim(W, [(first.id, {})], ["generate_edits"], 5, 60)
    assert acks == {first.id: None} and [j.id for j in jobs] == [second.id]


async def test_a_lost_lease_is_reported_and_the_claim_still_happens(backend: Backend) -> None:
    h = backend.harness
    held = h.enqueue("rename_layers")
    await claim(backend)
    h.expire_lease(held.id)
    queued = h.enqueue("rename_layers")
    acks, jobs = await backend.store.complete_and_claim(W, [(held.id, {})], None, 5, 60)
    assert acks[held.id] is not None and [j.id for j in jobs] == [queued.id]
    assert h.get(held.id).status == "running"  # left as it was


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"max_jobs": 0}, "max_jobs"),
        ({"lease_seconds": 1}, "lease_seconds"),
        ({"kinds": ["no_such_kind"]}, "kinds"),
        ({"worker_id": ""}, "worker_id"),
        ({"completions": []}, "completions"),
        ({"completions": "twice"}, "completions"),
    ],
)
async def test_a_bad_argument_is_refused_and_changes_nothing(
    backend: Backend, args: dict[str, Any], field: str
) -> None:
    h = backend.harness
    held = h.enqueue("rename_layers")
    await claim(backend)
    queued = h.enqueue("rename_layers")
    call: dict[str, Any] = {
        "worker_id": W,
        "completions": [(held.id, {})],
        "kinds": None,
        "max_jobs": 5,
        "lease_seconds": 60,
        **args,
    }
    if call["completions"] == "twice":
        call["completions"] = [(held.id, {}), (held.id, {})]
    with pytest.raises(InvalidArgument) as err:
        await backend.store.complete_and_claim(**call)
    assert str(err.value).startswith(f"{field}:"), str(err.value)
    assert h.get(held.id).status == "running" and h.get(queued.id).status == "queued"


# A value Python cannot hold, and JSON nested deeper than the parser goes.
@pytest.mark.parametrize(("column", "value", "wire", "problem"), [UNREADABLE[0], UNREADABLE[3]])
async def test_a_claimed_row_the_worker_cannot_read_comes_back_alone(
    backend: Backend, column: str, value: LiteralString, wire: Any, problem: str
) -> None:
    if wire is None and backend.name == "memory":
        pytest.skip("the in-memory store has no JSON wire")
    h = backend.harness
    held = h.enqueue("rename_layers")
    await claim(backend)
    good, bad = h.enqueue("rename_layers"), h.enqueue("rename_layers")
    h.corrupt(bad.id, column, value, wire)
    acks, jobs = await backend.store.complete_and_claim(W, [(held.id, {})], None, 5, 60)
    rows = {row.id: row for row in jobs}
    assert acks == {held.id: None} and set(rows) == {good.id, bad.id}
    poison = rows[bad.id]
    assert isinstance(rows[good.id], Job) and isinstance(poison, UnparseableJob)
    assert poison.failure.message.startswith(PROBLEM + problem), poison.failure.message[:300]


async def test_reports_and_completions_in_one_call(backend: Backend) -> None:
    h = backend.harness
    started, done, lost = h.enqueue("rename_layers"), h.enqueue("rename_layers"), h.enqueue("rename_layers")
    await claim(backend)
    h.expire_lease(lost.id)
    reported, acks = await backend.store.report_and_complete(
        W,
        [ProgressReport(started.id, percent=5, message="designing", started=True), ProgressReport(lost.id, percent=9)],
        [(done.id, {"n": 1})],
        {done.id: ProgressReport(done.id, percent=95, message="12 nodes")},
    )
    assert reported[started.id] is None and "expired" in str(reported[lost.id])
    assert acks == {done.id: None}
    assert (h.get(started.id).status, h.get(started.id).progress) == (
        "running",
        {"percent": 5, "message": "designing"},
    )
    assert (h.get(done.id).status, h.get(done.id).result) == ("succeeded", {"n": 1})
    assert h.get(done.id).progress == {"percent": 100, "message": "12 nodes"}
    assert h.get(lost.id).progress.get("percent") != 9


@pytest.mark.parametrize(
    ("reports", "completions", "field"),
    [
        ("bad", "good", "reports[0].percent"),
        ("none", "good", "reports"),
        ("good", "none", "completions"),
        ("good", "twice", "completions"),
        ("good", "bad progress", "completions[0].progress.percent"),
    ],
)
async def test_a_bad_part_refuses_the_whole_call(backend: Backend, reports: str, completions: str, field: str) -> None:
    h = backend.harness
    reported, done = h.enqueue("rename_layers"), h.enqueue("rename_layers")
    await claim(backend)
    items = {
        "good": [ProgressReport(reported.id, percent=5, message="first")],
        "bad": [ProgressReport(reported.id, percent=140)],
        "none": [],
    }[reports]
    acks: dict[str, list[tuple[uuid.UUID, dict[str, Any]]]] = {
        "good": [(done.id, {})],
        "bad progress": [(done.id, {})],
        "twice": [(done.id, {}), (done.id, {})],
        "none": [],
    }
    last = {done.id: ProgressReport(done.id, percent=101)} if completions == "bad progress" else None
    with pytest.raises(InvalidArgument) as err:
        await backend.store.report_and_complete(W, items, acks[completions], last)
    assert str(err.value).startswith(f"{field}:"), str(err.value)
    assert h.get(reported.id).progress.get("message") != "first"
    assert h.get(done.id).status == "running"
