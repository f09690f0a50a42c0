"""The conformance suite (test_worker_conformance.py) for the batched progress calls:
report_progress_batch and complete_jobs carrying the last progress, on every QueueStore."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.test_worker_conformance import Backend, W, backend, claim, supabase_db
from worker.core.errors import InvalidArgument
from worker.core.ports import ProgressReport

pytestmark = pytest.mark.integration
__all__ = ["backend", "supabase_db"]  # the shared fixtures


async def test_progress_batch_applies_many_jobs_in_order_and_refuses_lost_ones(backend: Backend) -> None:
    h = backend.harness
    a, b, lost = h.enqueue("rename_layers"), h.enqueue("rename_layers"), h.enqueue("rename_layers")
    await claim(backend)
    h.expire_lease(lost.id)
    missing = uuid.uuid4()
    outcome = await backend.store.report_progress_batch(
        W,
        [
            ProgressReport(a.id, percent=100 * 1 / 3, message="batch 1 of 3"),
            ProgressReport(b.id, partial="Variant A"),
            ProgressReport(lost.id, percent=50),
            ProgressReport(a.id, percent=100 * 2 / 3, message="batch 2 of 3"),
            ProgressReport(missing, message="x"),
            ProgressReport(b.id, message="writing"),
        ],
    )
    assert outcome[a.id] is None and outcome[b.id] is None
    assert "expired" in str(outcome[lost.id])
    assert outcome[missing] == "not found"
    assert h.get(a.id).progress == {"percent": 66.7, "message": "batch 2 of 3"}  # the last step wins
    assert h.get(b.id).progress["message"] == "writing"
    assert h.get(lost.id).progress.get("percent") != 50


@pytest.mark.parametrize(
    ("report", "field"),
    [
        (ProgressReport(uuid.uuid4()), "reports[1]: nothing to report"),
        (ProgressReport(uuid.uuid4(), percent=140), "reports[1].percent: must be between 0 and 100"),
        (ProgressReport(uuid.uuid4(), message="m" * 1001), "reports[1].message: must be at most 1000 characters"),
        (ProgressReport(uuid.uuid4(), partial="p" * 65537), "reports[1].partial: must be at most 65536 bytes"),
    ],
)
async def test_progress_batch_refuses_a_bad_item_and_changes_nothing(
    backend: Backend, report: ProgressReport, field: str
) -> None:
    h = backend.harness
    job = h.enqueue("rename_layers")
    await claim(backend)
    with pytest.raises(InvalidArgument) as err:
        await backend.store.report_progress_batch(W, [ProgressReport(job.id, percent=10, message="first"), report])
    assert str(err.value).startswith(field)
    assert h.get(job.id).progress.get("message") != "first"
    with pytest.raises(InvalidArgument):
        await backend.store.report_progress_batch(W, [])


async def test_complete_jobs_carries_the_last_progress(backend: Backend) -> None:
    h = backend.harness
    a, b = h.enqueue("generate_design"), h.enqueue("generate_design")
    await claim(backend)
    last = {a.id: ProgressReport(a.id, percent=95, message="12 nodes")}
    outcome = await backend.store.complete_jobs(W, [(a.id, {"n": 1}), (b.id, {"n": 2})], last)
    assert outcome == {a.id: None, b.id: None}
    assert h.get(a.id).progress == {"percent": 100, "message": "12 nodes"}
    assert h.get(b.id).status == "succeeded"
    c = h.enqueue("generate_design")
    await claim(backend)
    with pytest.raises(InvalidArgument) as err:
        await backend.store.complete_jobs(W, [(c.id, {})], {c.id: ProgressReport(c.id, percent=101)})
    assert str(err.value).startswith("completions[0].progress.percent: must be between 0 and 100")
    assert h.get(c.id).status == "running"


async def test_a_started_marker_announces_a_quietly_claimed_job_and_changes_nothing(backend: Backend) -> None:
    """The worker's claim (with park_seconds: claim_jobs_or_park) is quiet; its "started" item,
    alone or joined with the first step, is accepted for a held job and refused for a lost one."""
    h = backend.harness
    a, b, lost = h.enqueue("generate_design"), h.enqueue("generate_design"), h.enqueue("generate_design")
    claimed = await backend.store.claim_jobs(W, None, 3, 60, park_seconds=30)
    assert {j.id for j in claimed} == {a.id, b.id, lost.id}
    h.expire_lease(lost.id)
    before = h.get(a.id).progress
    outcome = await backend.store.report_progress_batch(
        W,
        [
            ProgressReport(a.id, started=True),
            ProgressReport(b.id, percent=5, message="designing", started=True),
            ProgressReport(lost.id, started=True),
        ],
    )
    assert outcome[a.id] is None and outcome[b.id] is None
    assert "expired" in str(outcome[lost.id])
    assert h.get(a.id).status == "running" and h.get(a.id).progress == before
    assert h.get(b.id).progress == {"percent": 5, "message": "designing"}


async def test_complete_jobs_refuses_a_result_over_1_mib_naming_it_and_changes_nothing(backend: Backend) -> None:
    h = backend.harness
    small, big = h.enqueue("generate_design"), h.enqueue("generate_design")
    await claim(backend)
    with pytest.raises(InvalidArgument) as err:
        await backend.store.complete_jobs(W, [(small.id, {}), (big.id, {"text": "x" * (1024 * 1024)})])
    assert str(err.value).startswith("completions[1].result: 1048588 bytes exceeds 1 MiB"), str(err.value)
    assert h.get(small.id).status == "running" and h.get(big.id).status == "running"
