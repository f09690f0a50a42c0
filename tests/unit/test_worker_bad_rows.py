"""Rows the worker cannot read, against the in-memory store: each fails alone, nothing else stops.

The adapters' side (the same rows through psycopg and supabase-py) is in
tests/integration/test_worker_conformance.py; the worker process in test_worker_process.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.unit.test_worker_core import config, echo, running, until
from worker.adapters.memory import MemoryStore
from worker.core.context import JobContext
from worker.core.errors import TransientFailure
from worker.core.job_rows import PROBLEM, read_hint, read_job, read_job_list, read_job_text, read_time
from worker.core.jobs import Job, JobHint, UnparseableJob
from worker.core.json_scan import array_items, top_level_string
from worker.handlers import HANDLERS

RENAME = {"layers": [{"id": "1:2", "type": "TEXT", "name": "Text 1"}]}


def readable_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "user_id": str(uuid.uuid4()),
        "kind": "rename_layers",
        "status": "running",
        "payload": {"n": 1},
        "attempts": 1,
        "max_attempts": 3,
        "run_at": "2026-11-23T10:00:00+00:00",
        "lease_expires_at": "2026-11-23T10:01:00+00:00",
        "worker_id": "w1",
        "created_at": "2026-11-23T10:00:00+00:00",
    }
    return {**row, **overrides}


# -- the worker ------------------------------------------------------------------------------


async def test_unreadable_rows_in_a_batch_fail_alone_and_the_worker_keeps_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    good = [store.enqueue("rename_layers", {"n": i}) for i in range(3)]
    minus_infinity, bare_result, nameless = (store.enqueue("rename_layers") for _ in range(3))
    store.corrupt(minus_infinity.id, run_at="-infinity")
    store.corrupt(bare_result.id, result=5)
    store.corrupt(nameless.id, id="not-a-uuid")  # nothing can be failed without a name
    async with running(store, {"rename_layers": echo}, config(concurrency=8)) as (worker, _):
        await until(lambda: all(store.get(j.id).status == "succeeded" for j in good), "the good jobs succeeded")
        await until(
            lambda: all(store.rows[j.id].status == "failed" for j in (minus_infinity, bare_result)), "bad rows failed"
        )
        later = store.enqueue("rename_layers", {"n": "later"})
        worker._on_hint(JobHint(kind="rename_layers"))
        await until(lambda: store.get(later.id).status == "succeeded", "a job after the bad batch ran")
        assert store.rows[nameless.id].status == "running"  # left to the lease reaper
        assert worker.metrics.count("worker_jobs_unreadable_total", kind="rename_layers") == 2
    for job, field in ((minus_infinity, "run_at"), (bare_result, "result")):
        row = store.rows[job.id]
        assert row.attempts == 1
        assert row.error is not None and set(row.error) == {"type", "message", "retryable", "attempt"}
        assert (row.error["type"], row.error["retryable"], row.error["attempt"]) == ("invalid_job_row", False, 1)
        assert row.error["message"].startswith(PROBLEM + field)
    assert "run_at: Input should be a valid datetime" in store.rows[minus_infinity.id].error["message"]  # type: ignore[index]
    assert "skipped a job row without a usable id ('not-a-uuid')" in caplog.text


async def test_a_payload_the_handler_rejects_fails_without_a_retry() -> None:
    store = MemoryStore()
    bad = store.enqueue("rename_layers", {"layers": 5})
    good = store.enqueue("generate_design", {"n": 1})
    # The real handler: it checks the payload against its model before any model call.
    async with running(store, {"rename_layers": HANDLERS["rename_layers"], "generate_design": echo}):
        await until(lambda: store.get(bad.id).status == "failed", "the bad payload failed")
        await until(lambda: store.get(good.id).status == "succeeded", "the good one ran")
    row = store.get(bad.id)
    assert row.attempts == 1 and row.error is not None
    assert (row.error["type"], row.error["retryable"]) == ("invalid_payload", False)
    assert row.error["message"].startswith("payload: layers: Input should be a valid list")


async def test_a_kind_without_a_handler_fails_without_a_retry() -> None:
    store = MemoryStore()
    orphan = store.enqueue("generate_image", {"prompt": "x"})  # claimed (in the worker's kinds), but unhandled
    good = store.enqueue("rename_layers", {"n": 1})
    async with running(store, {"rename_layers": echo}):
        await until(lambda: store.get(orphan.id).status == "failed", "the unhandled job failed")
        await until(lambda: store.get(good.id).status == "succeeded", "the good one ran")
    error = store.get(orphan.id).error
    assert error is not None and (error["type"], error["retryable"], error["attempt"]) == ("invalid_request", False, 1)
    assert error["message"] == "this worker has no handler for kind generate_image"


async def test_an_unreadable_answer_while_running_neither_stops_the_job_nor_the_worker() -> None:
    store = MemoryStore()
    gate = asyncio.Event()

    async def held(payload: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        await gate.wait()
        if payload.get("fail"):
            raise TransientFailure("provider 503")
        return {}

    finishing = store.enqueue("rename_layers")
    failing = store.enqueue("rename_layers", {"fail": True})
    async with running(store, {"rename_layers": held}) as (worker, _):
        await until(lambda: len(worker.runs) == 2, "both running")
        for job in (finishing, failing):
            store.corrupt(job.id, result=5)  # an operator edits the rows mid-run
        await worker.heartbeat()  # renew_leases answers with rows it cannot read
        assert all(run.stop_reason is None for run in worker.runs.values())
        gate.set()
        await until(lambda: store.rows[finishing.id].status == "succeeded", "the finishing job succeeded")
        # fail_job answers with the unreadable row: the retry is recorded all the same.
        await until(lambda: store.rows[failing.id].status == "queued", "the failing job went back to the queue")
        later = store.enqueue("rename_layers")
        worker._on_hint(JobHint(kind="rename_layers"))
        await until(lambda: store.get(later.id).status == "succeeded", "the worker still runs jobs")


# -- reading rows ----------------------------------------------------------------------------


def test_a_row_reads_as_a_job_or_names_what_is_wrong() -> None:
    row = readable_row()
    assert isinstance(read_job(row), Job)
    bad = read_job(readable_row(run_at="0044-03-15T00:00:00+00:00 BC", attempts=2, kind="generate_image"))
    assert isinstance(bad, UnparseableJob)
    assert (bad.kind, bad.status, bad.attempts) == ("generate_image", "running", 2)
    assert bad.failure.to_error() == {
        "type": "invalid_job_row",
        "message": PROBLEM + "run_at: Input should be a valid datetime or date, unexpected extra characters at the "
        "end of the input (got '0044-03-15T00:00:00+00:00 BC')",
    }
    assert not bad.failure.retryable
    naive = read_job(readable_row(run_at="2026-11-23T10:00:00"))  # the worker could not compare it with its clock
    assert isinstance(naive, UnparseableJob) and "run_at: Input should have timezone info" in naive.failure.message


def test_a_row_without_a_usable_id_is_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, "worker.rows")
    for raw in (readable_row(id="nope", run_at="x"), readable_row(id=None), [1, 2], "text", None, 5):
        assert read_job(raw) is None
    assert read_job_text("[" * 5000) is None
    assert caplog.text.count("skipped a job row without a usable id") == 7


def test_a_body_with_an_undecodable_row_is_read_row_by_row() -> None:
    first, middle, last = readable_row(), readable_row(payload={"a": 1}), readable_row(status="queued")
    deep = json.dumps(middle).replace('{"a": 1}', '{"a": ' + "[" * 3000 + "]" * 3000 + "}")
    body = f"[{json.dumps(first)}, {deep},\n {json.dumps(last)}]"
    rows = read_job_list(body)
    assert [type(r) for r in rows] == [Job, UnparseableJob, Job]
    assert [str(r.id) for r in rows] == [first["id"], middle["id"], last["id"]]
    assert rows[1].status == "running" and "RecursionError" in rows[1].failure.message  # type: ignore[union-attr]
    assert read_job_list(json.dumps(first)) == [read_job(first)]  # one bare object, as a single-row function answers
    assert read_job_list("") == [] and read_job_list("null") == []


def test_reading_never_raises_whatever_a_row_holds() -> None:
    """Seeded fuzz: random values in every column, and random cuts and splices of the JSON text."""
    rng = random.Random(10)
    weird: list[Any] = [
        None, True, 5, -1, 2**70, 1.5, float("inf"), "", "-infinity", "infinity", "0044-03-15T00:00:00+00:00 BC",
        "20000-01-01T00:00:00+00:00", "2026-11-23T10:00:00", "\x00", "\ud800", [], {}, [[[]]], {"a": {"b": None}},
        "9" * 5000,
    ]  # fmt: skip
    columns = list(readable_row())
    for _ in range(3000):
        row = readable_row()
        for column in rng.sample(columns, rng.randint(1, 3)):
            row[column] = rng.choice(weird)
        result = read_job(row)
        if isinstance(row["id"], str) and result is not None:
            assert str(result.id) == row["id"]
        text = json.dumps(row)
        if rng.random() < 0.5:
            cut = rng.randrange(len(text))
            text = text[:cut] + rng.choice(["", "[" * 3000, '"', "\\", "}", ","]) + text[cut + rng.randint(0, 20) :]
        read_job_text(text)
        read_job_list("[" + text + "," + text + "]")
        read_hint(text)
        read_hint(row)


def test_malformed_wake_ups_and_timestamps_are_dropped() -> None:
    assert read_hint('{"kind": "rename_layers", "run_at": "2026-11-23T10:00:00+00:00"}') == JobHint(
        kind="rename_layers", run_at=datetime(2026, 11, 23, 10, tzinfo=UTC)
    )
    for raw in ("[" * 5000, '{"kind": "x", "run_at": "-infinity"}', '{"kind": "x", "run_at": "2026-01-01"}', 7, None):
        assert read_hint(raw) is None
    assert read_time("2026-11-23T10:00:00+00:00") == datetime(2026, 11, 23, 10, tzinfo=UTC)
    assert read_time(None) is None
    for raw in ("infinity", "-infinity", "20000-01-01T00:00:00+00:00", "0044-03-15T00:00:00+00:00 BC", 5):
        assert read_time(raw) is None


def test_the_scanner_splits_arrays_and_reads_top_level_strings_only() -> None:
    text = '[{"id": "a", "s": "]\\"},{[", "n": [1, {"id": "inner"}]}, 5 , "x,y", {"id": "b"}]'
    assert array_items(text) == ['{"id": "a", "s": "]\\"},{[", "n": [1, {"id": "inner"}]}', "5", '"x,y"', '{"id": "b"}']
    assert array_items('{"id": "a"}') == ['{"id": "a"}'] and array_items("  ") == []
    assert array_items('[{"id": "a"}, {"id": "b", "p": [[[') == ['{"id": "a"}', '{"id": "b", "p": [[[']  # cut short
    assert top_level_string('{"p": {"id": "inner"}, "id": "outer"}', "id") == "outer"
    assert top_level_string('{"p": ["id", ":", "x"], "kind": 5}', "kind") is None
    assert top_level_string('{"id": "\\u0061b"}', "id") == "ab"
    assert top_level_string('["id", "x"]', "id") is None
