"""Progress reports riding with acknowledgements (worker/core/progress.py ``take``,
worker/core/acks.py ``Riders``): a success sent while reports are held carries those the next beat
would send, in one report_and_complete call; order, pacing and completeness are kept."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from tests.unit.test_worker_progress import GatedStore, ManualClock, events, running
from worker.core.acks import CompletionBatcher
from worker.core.errors import StoreUnavailable
from worker.core.jobs import Job
from worker.core.ports import ProgressReport, UsageRecord
from worker.core.progress import ProgressBatcher


class HeldAcks(GatedStore):
    """report_and_complete waits for ``release`` (a slow round trip), or fails with ``error``."""

    def __init__(self) -> None:
        super().__init__()
        self.release_first.set()
        self.release = asyncio.Event()
        self.release.set()
        self.in_flight = asyncio.Event()
        self.error: Exception | None = None

    async def report_and_complete(
        self,
        worker_id: str,
        reports: Sequence[ProgressReport],
        completions: Sequence[tuple[uuid.UUID, dict[str, Any]]],
        last_progress: Mapping[uuid.UUID, ProgressReport] | None = None,
        usage: Mapping[uuid.UUID, Sequence[UsageRecord]] | None = None,
    ) -> tuple[dict[uuid.UUID, str | None], dict[uuid.UUID, str | None]]:
        self.in_flight.set()
        await self.release.wait()
        if self.error is not None:
            self.calls.append("report_and_complete")
            raise self.error
        return await super().report_and_complete(worker_id, reports, completions, last_progress, usage)


def batchers(store: HeldAcks, clock: ManualClock) -> tuple[ProgressBatcher, CompletionBatcher]:
    reports = ProgressBatcher(store, "w1", clock, min_interval=0.1)  # a beat of 0.05 s
    return reports, CompletionBatcher(store, "w1", riders=reports)


def calls(store: HeldAcks) -> list[str]:
    return [c for c in store.calls if c != "claim_jobs"]


async def held_step() -> tuple[HeldAcks, ManualClock, ProgressBatcher, CompletionBatcher, Job, Job]:
    """Two running jobs claimed at 1000.0: ``a`` queued a step at 1000.06 (due 1000.16, sent on
    the beat of 1000.20); the clock stands at 1000.17, ``done`` about to succeed."""
    store, clock = HeldAcks(), ManualClock()
    a, done = await running(store, 2, kind="generate_design")
    reports, acks = batchers(store, clock)
    reports.start(a.id)
    reports.start(done.id)
    await clock.move_to(1000.06)
    reports.progress(a.id, 5, "designing")
    await clock.move_to(1000.17)
    return store, clock, reports, acks, a, done


async def test_a_success_carries_the_reports_the_next_beat_would_send() -> None:
    store, clock = HeldAcks(), ManualClock()
    a, streaming, later, done, other = await running(store, 5, kind="generate_design")
    reports, acks = batchers(store, clock)
    for job in (a, streaming, later, done, other):
        reports.start(job.id)  # each claim counts as its job's last message, at 1000.0
    await clock.move_to(1000.06)
    reports.progress(a.id, 5, "designing")  # due 1000.16: sent on the beat of 1000.20
    await clock.move_to(1000.09)
    reports.partial(streaming.id, "Var")  # due 1000.19: streamed text keeps to the beat
    await clock.move_to(1000.12)
    reports.progress(later.id, 5, "later")  # due 1000.22: the beat after
    await clock.move_to(1000.17)

    await acks.complete(done.id, {"n": 1})
    assert calls(store) == ["report_and_complete"]  # no call of its own for a's step
    assert events(store, a) == [("progress", {"percent": 5, "message": "designing"})]
    assert store.get(done.id).status == "succeeded"

    await clock.move_to(1000.195)  # the text's hold is over, yet it waits for the beat
    await acks.complete(other.id, {})
    assert events(store, streaming) == []
    await clock.move_to(1000.201)
    assert store.batches == [[ProgressReport(streaming.id, partial="Var")]]
    await clock.move_to(1000.251)
    assert store.batches[1:] == [[ProgressReport(later.id, 5, "later")]]
    assert calls(store) == ["report_and_complete", "complete_jobs", "report_progress_batch", "report_progress_batch"]


async def test_a_ridden_jobs_next_report_is_paced_from_the_ride() -> None:
    store, clock, reports, acks, a, done = await held_step()
    await acks.complete(done.id, {})  # a's step rode at 1000.17
    reports.progress(a.id, 50, "half")
    await clock.move_to(1000.251)
    assert store.batches == []  # 1000.27 at the earliest: 0.1 s after the ride
    await clock.move_to(1000.301)
    assert store.batches == [[ProgressReport(a.id, 50, "half")]]


async def test_a_refused_call_completes_alone_and_sends_the_reports_on_their_own() -> None:
    store, clock = HeldAcks(), ManualClock()
    bad, good, done = await running(store, 3, kind="generate_design")
    reports, acks = batchers(store, clock)
    for job in (bad, good, done):
        reports.start(job.id)
    await clock.move_to(1000.06)
    reports.progress(bad.id, 5, "m" * 1001)  # over the SQL API's 1000 characters
    reports.progress(good.id, 5, "designing")
    await clock.move_to(1000.17)

    await acks.complete(done.id, {})
    assert store.get(done.id).status == "succeeded"
    await reports.settle(good.id, carry=False)
    await reports.settle(bad.id, carry=False)
    assert events(store, good) == [("progress", {"percent": 5, "message": "designing"})]
    assert events(store, bad) == []  # refused on its own, logged; nothing half-written
    assert calls(store)[:2] == ["report_and_complete", "complete_jobs"]
    assert "report_progress_batch" in calls(store)[2:]


async def test_an_outcome_waits_for_its_jobs_reports_riding_in_another_call() -> None:
    store, _, reports, acks, a, done = await held_step()
    store.release.clear()
    ack = asyncio.create_task(acks.complete(done.id, {}))
    await store.in_flight.wait()  # a's step rides in done's call, held in flight

    reports.partial(a.id, "first words")
    settling = asyncio.create_task(reports.settle(a.id, carry=False))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not settling.done()  # a's outcome must not overtake the reports in flight
    assert store.batches == []  # nor its later text
    store.release.set()
    async with asyncio.timeout(5):
        await ack
        await settling
    assert events(store, a) == [
        ("progress", {"percent": 5, "message": "designing"}),
        ("partial", {"text": "first words"}),
    ]


async def test_a_failed_call_fails_the_success_and_frees_its_reports(caplog: pytest.LogCaptureFixture) -> None:
    store, _, reports, acks, a, done = await held_step()
    store.error = StoreUnavailable("connection reset")
    with pytest.raises(StoreUnavailable):
        await acks.complete(done.id, {})
    async with asyncio.timeout(5):
        assert await reports.settle(a.id, carry=True) == []  # nothing pending, nothing in flight
    assert "progress not recorded: connection reset" in caplog.text
    assert store.get(done.id).status == "running" and events(store, a) == []


async def test_a_jobs_first_message_rides_once_its_first_step_joined_the_marker() -> None:
    store, clock = HeldAcks(), ManualClock()
    stepped, bare, done, other = await running(store, 4, kind="generate_design")
    reports, acks = batchers(store, clock)
    for job in (stepped, bare):
        reports.start(job.id, announce=True)  # quiet claims: each queues its "started" marker
    for job in (done, other):
        reports.start(job.id)
    await clock.move_to(1000.01)
    reports.progress(stepped.id, 5, "designing")  # joins the marker; due 1000.11, beat 1000.15

    await clock.move_to(1000.02)
    await acks.complete(done.id, {})
    assert calls(store) == ["report_and_complete"]  # the announcement went now, not at 1000.15
    assert events(store, stepped) == [("progress", {"percent": 5, "message": "designing"})]
    assert store.get(stepped.id).status == "running"

    await acks.complete(other.id, {})  # a marker alone waits for its step or its hold
    assert calls(store)[1:] == ["complete_jobs"]
    await clock.move_to(1000.151)
    assert store.batches == [[ProgressReport(bare.id, started=True)]]


async def test_a_successs_queued_reports_ride_in_its_own_outcome_call() -> None:
    store, clock = HeldAcks(), ManualClock()
    (job,) = await running(store, 1, kind="rename_layers")
    reports, acks = batchers(store, clock)
    reports.start(job.id)
    await clock.move_to(1000.2)
    reports.progress(job.id, 50, "batch 1 of 2")  # due 1000.30: still held when the job ends
    reports.progress(job.id, 100, "batch 2 of 2")
    own = await reports.settle(job.id, carry=True)
    assert own == [ProgressReport(job.id, 50, "batch 1 of 2"), ProgressReport(job.id, 100, "batch 2 of 2")]
    await acks.complete(job.id, {"n": 2}, own[-1], (), own[:-1])
    assert calls(store) == ["report_and_complete"]  # one round trip for the job's end
    assert events(store, job) == [
        ("progress", {"percent": 50, "message": "batch 1 of 2"}),
        ("progress", {"percent": 100, "message": "batch 2 of 2"}),
    ]
    assert (store.get(job.id).status, store.get(job.id).progress) == (
        "succeeded",
        {"percent": 100, "message": "batch 2 of 2"},
    )


async def test_a_refused_outcome_call_sends_its_jobs_reports_first_then_completes_alone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock = HeldAcks(), ManualClock()
    job, other = await running(store, 2, kind="rename_layers")
    reports, acks = batchers(store, clock)
    reports.start(job.id)
    reports.start(other.id, announce=True)
    reports.progress(other.id, 10, "m" * 1001)  # another job's first message, a bad one: it rides
    own = [ProgressReport(job.id, 50, "batch 1 of 2")]
    async with asyncio.timeout(5):
        await acks.complete(job.id, {}, None, (), own)
    assert calls(store)[0] == "report_and_complete"
    assert calls(store).index("complete_jobs") > calls(store).index("report_progress_batch")
    assert events(store, job) == [("progress", {"percent": 50, "message": "batch 1 of 2"})]  # before the end
    assert store.get(job.id).status == "succeeded"
    assert events(store, other) == [] and "progress not recorded" in caplog.text


async def test_reports_sent_apart_after_a_refusal_are_not_sent_again_with_the_retry() -> None:
    store, clock = HeldAcks(), ManualClock()
    good, bad = await running(store, 2, kind="rename_layers")
    reports, acks = batchers(store, clock)
    for job in (good, bad):
        reports.start(job.id)
    own = {j.id: [ProgressReport(j.id, 50, f"batch 1 of 2 ({j.id})")] for j in (good, bad)}
    big = {"text": "x" * (1024 * 1024 + 1)}  # over complete_jobs' 1 MiB: refused with the batch
    async with asyncio.timeout(5):
        outcomes = await asyncio.gather(
            acks.complete(good.id, {}, None, (), own[good.id]),
            acks.complete(bad.id, big, None, (), own[bad.id]),
            return_exceptions=True,
        )
    assert outcomes[0] is None and "1 MiB" in str(outcomes[1])
    for job in (good, bad):  # each step recorded once, before the outcome
        assert events(store, job) == [("progress", {"percent": 50, "message": f"batch 1 of 2 ({job.id})"})]
    assert (store.get(good.id).status, store.get(bad.id).status) == ("succeeded", "running")
