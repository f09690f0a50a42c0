"""One conformance suite for every QueueStore: the in-memory fake, psycopg, and supabase-py.

The same assertions run against each, so the fake the unit tests rely on cannot drift from the
SQL API, and both real adapters translate the API's answers and errors the same way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, LiteralString, Protocol

import pytest
import pytest_asyncio

from devstack import paths
from tests.integration.worker_support import Gateway, SqlHarness, clone_database, cloned_gateway, drop_database
from worker.adapters.memory import MemoryStore
from worker.adapters.postgres import PostgresStore, PostgresWakeups, wake_channel
from worker.adapters.supabase import RealtimeWakeups, SupabaseStore, connect
from worker.core.errors import InvalidArgument, JobNotFound, LeaseLost
from worker.core.job_rows import PROBLEM
from worker.core.jobs import Job, JobHint, JobRow, UnparseableJob, Wake
from worker.core.ports import Dashboard, ModelCall, ModelUsage, QueueStore, UsageRecord, Wakeups

pytestmark = pytest.mark.integration
W = "conformance-worker"
WAIT = 15.0


class Harness(Protocol):
    def new_user(self) -> uuid.UUID: ...
    def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, user_id: uuid.UUID | None = None, **kw: Any
    ) -> Job: ...
    def cancel(self, job_id: uuid.UUID) -> None: ...
    def expire_lease(self, job_id: uuid.UUID) -> None: ...
    def get(self, job_id: uuid.UUID) -> Job: ...
    def corrupt(self, job_id: uuid.UUID, column: str, value: LiteralString, wire: Any = None) -> None: ...
    def facts(self, job_id: uuid.UUID) -> dict[str, Any]: ...


class MemoryHarness:
    def __init__(self, store: MemoryStore) -> None:
        self.store = store

    def new_user(self) -> uuid.UUID:
        return uuid.uuid4()

    def enqueue(
        self, kind: str, payload: dict[str, Any] | None = None, *, user_id: uuid.UUID | None = None, **kw: Any
    ) -> Job:
        return self.store.enqueue(kind, payload or {"n": 1}, user_id=user_id, **kw)

    def cancel(self, job_id: uuid.UUID) -> None:
        self.store.cancel(job_id)

    def expire_lease(self, job_id: uuid.UUID) -> None:
        self.store.expire_lease(job_id)

    def get(self, job_id: uuid.UUID) -> Job:
        return self.store.get(job_id)

    def corrupt(self, job_id: uuid.UUID, column: str, value: LiteralString, wire: Any = None) -> None:
        self.store.corrupt(job_id, **{column: wire})

    def facts(self, job_id: uuid.UUID) -> dict[str, Any]:
        row = self.store.rows[job_id]
        return {"status": row.status, "attempts": row.attempts, "error": row.error}


class Store(QueueStore, Dashboard, Protocol):
    """Every adapter serves the queue and, on the same connection, the dashboard views."""


@dataclass
class Backend:
    name: str
    store: Store
    harness: Harness
    wakeups: Wakeups | None = None


@pytest.fixture(scope="module")
def supabase_db(pg_cluster: None) -> Iterator[Gateway]:
    with cloned_gateway("worker_conf") as gw:
        yield gw


@pytest_asyncio.fixture(params=["memory", "postgres", "supabase"])
async def backend(request: pytest.FixtureRequest, pg_cluster: None) -> AsyncIterator[Backend]:
    if request.param == "memory":
        store = MemoryStore()
        yield Backend("memory", store, MemoryHarness(store))
        return
    if request.param == "postgres":
        name = clone_database("worker_conf")
        harness = SqlHarness(name)
        pg = PostgresStore(paths.database_url(name))
        try:
            yield Backend("postgres", pg, harness, PostgresWakeups(paths.database_url(name)))
        finally:
            await pg.close()
            harness.close()
            drop_database(name)
        return
    gw: Gateway = request.getfixturevalue("supabase_db")
    harness = SqlHarness(gw.database)
    harness.truncate()
    client = await connect(gw.url, gw.service_role_key)
    sb = SupabaseStore(client)
    try:
        yield Backend("supabase", sb, harness, RealtimeWakeups(client))
    finally:
        await sb.close()
        harness.close()


async def claim_rows(b: Backend, n: int = 10, kinds: list[str] | None = None, lease: int = 60) -> list[JobRow]:
    return await b.store.claim_jobs(W, kinds, n, lease)


async def claim(b: Backend, n: int = 10, kinds: list[str] | None = None, lease: int = 60) -> list[Job]:
    return [readable(row) for row in await claim_rows(b, n, kinds, lease)]


def readable(row: JobRow) -> Job:
    assert isinstance(row, Job), row
    return row


async def test_claim_takes_due_jobs_in_priority_order_with_a_lease(backend: Backend) -> None:
    h = backend.harness
    low = h.enqueue("generate_design", priority=-5)
    high = h.enqueue("generate_design", priority=0)  # the default plan's ceiling for this kind
    later = h.enqueue("generate_design", run_at=datetime.now(UTC) + timedelta(hours=1))
    before = datetime.now(UTC)
    jobs = await claim(backend)
    after = datetime.now(UTC)
    assert [j.id for j in jobs] == [high.id, low.id]
    assert all(j.status == "running" and j.worker_id == W and j.attempts == 1 for j in jobs)
    lease = jobs[0].lease_expires_at
    # Bounded by clock readings around the call, so no assumption about how fast it runs.
    assert lease is not None and before + timedelta(seconds=59) <= lease <= after + timedelta(seconds=61)
    assert h.get(later.id).status == "queued"


async def test_claim_honours_kinds_max_jobs_and_per_user_caps(backend: Backend) -> None:
    h = backend.harness
    user = h.new_user()
    edits = [h.enqueue("generate_edits", user_id=user) for _ in range(3)]  # max_running_per_user = 1
    designs = [h.enqueue("generate_design") for _ in range(3)]
    first = await claim(backend, n=2, kinds=["generate_design"])
    assert {j.kind for j in first} == {"generate_design"} and len(first) == 2
    only_one = await claim(backend, kinds=["generate_edits"])
    assert [j.id for j in only_one] == [edits[0].id]
    assert await claim(backend, kinds=["generate_edits"]) == []
    rest = await claim(backend)
    assert [j.id for j in rest] == [designs[2].id]


async def test_renew_extends_held_leases_and_shows_cancel_requests(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("generate_design")
    other = h.enqueue("rename_layers")
    [held] = await claim(backend, kinds=["generate_design"], lease=10)
    h.cancel(job.id)
    before = datetime.now(UTC)
    rows = {r.id: readable(r) for r in await backend.store.renew_leases(W, [held.id, other.id, uuid.uuid4()], 600)}
    assert set(rows) == {job.id, other.id}
    renewed = rows[job.id]
    assert renewed.cancel_requested and renewed.status == "running"
    assert renewed.lease_expires_at is not None
    assert renewed.lease_expires_at >= before + timedelta(seconds=599)  # 600 s, not the 10 s claimed
    assert rows[other.id].status == "queued"


async def test_progress_and_errors_for_jobs_not_held(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("rename_layers")
    [held] = await claim(backend)
    await backend.store.report_progress(held.id, W, percent=40, message="batch 2 of 5")
    await backend.store.report_progress(held.id, W, partial="Variant A")
    assert h.get(job.id).progress == {"percent": 40, "message": "batch 2 of 5"}
    # Handlers compute percentages as floats (100 * done / total): every transport must carry them.
    await backend.store.report_progress(held.id, W, percent=100 * 1 / 8)
    assert h.get(job.id).progress == {"percent": 12.5, "message": "batch 2 of 5"}
    with pytest.raises(LeaseLost):
        await backend.store.report_progress(held.id, "someone-else", percent=1)
    with pytest.raises(JobNotFound):
        await backend.store.report_progress(uuid.uuid4(), W, percent=1)
    with pytest.raises(InvalidArgument):
        await backend.store.report_progress(held.id, W)
    with pytest.raises(InvalidArgument):
        await backend.store.report_progress(held.id, W, percent=140)


async def test_complete_records_the_result_once(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("rename_layers")
    await claim(backend)
    done = readable(await backend.store.complete_job(job.id, W, {"names": [{"id": "1:2", "name": "Title"}]}))
    assert (done.status, done.result) == ("succeeded", {"names": [{"id": "1:2", "name": "Title"}]})
    assert done.progress["percent"] == 100
    with pytest.raises(LeaseLost):
        await backend.store.complete_job(job.id, W, {"again": True})
    assert h.get(job.id).result == {"names": [{"id": "1:2", "name": "Title"}]}


async def test_complete_jobs_completes_held_jobs_and_reports_the_rest(backend: Backend) -> None:
    h = backend.harness
    a, b, c = h.enqueue("rename_layers"), h.enqueue("rename_layers"), h.enqueue("rename_layers")
    await claim(backend)
    await backend.store.complete_job(c.id, W, {"first": True})
    missing = uuid.uuid4()
    outcome = await backend.store.complete_jobs(
        W, [(a.id, {"n": 1}), (b.id, {"n": [2]}), (c.id, {"again": True}), (missing, {})]
    )
    assert outcome[a.id] is None and outcome[b.id] is None
    assert "not held" in str(outcome[c.id])
    assert outcome[missing] == "not found"
    assert (h.get(a.id).status, h.get(a.id).result) == ("succeeded", {"n": 1})
    assert h.get(b.id).result == {"n": [2]}
    assert h.get(c.id).result == {"first": True}  # the lost one is left as it was
    with pytest.raises(InvalidArgument):
        await backend.store.complete_jobs(W, [])
    with pytest.raises(InvalidArgument):
        await backend.store.complete_jobs(W, [(a.id, {}), (a.id, {})])


async def test_fail_retryable_backs_off_and_permanent_fails(backend: Backend) -> None:
    h = backend.harness
    a, b = h.enqueue("generate_design"), h.enqueue("generate_design")
    await claim(backend)
    before = datetime.now(UTC)
    retry = readable(await backend.store.fail_job(a.id, W, {"type": "provider_unavailable", "message": "503"}, True))
    after = datetime.now(UTC)
    assert (retry.status, retry.attempts, retry.worker_id) == ("queued", 1, None)
    # Attempt 1 backs off 5 s with equal jitter: 2.5 to 5 s after the call (1 s clock slack).
    assert before + timedelta(seconds=1.5) <= retry.run_at <= after + timedelta(seconds=6)
    assert retry.error == {"type": "provider_unavailable", "message": "503", "retryable": True, "attempt": 1}
    final = readable(await backend.store.fail_job(b.id, W, {"type": "invalid_request", "message": "400"}, False))
    assert final.status == "failed" and final.error is not None and final.error["retryable"] is False
    with pytest.raises(InvalidArgument):
        await backend.store.fail_job(b.id, W, {"type": "x"}, True)


async def test_cancel_then_fail_records_cancelled(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("generate_design")
    await claim(backend)
    h.cancel(job.id)
    row = await backend.store.fail_job(job.id, W, {"type": "cancelled", "message": "cancelled"}, False)
    assert row.status == "cancelled"


async def test_defer_gives_the_attempt_back(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("generate_image")
    await claim(backend)
    when = datetime.now(UTC) + timedelta(seconds=30)
    row = readable(await backend.store.defer_job(job.id, W, when, "provider rate limit"))
    assert (row.status, row.attempts, row.worker_id) == ("queued", 0, None)
    assert abs((row.run_at - when).total_seconds()) < 1
    assert row.progress["message"] == "waiting: provider rate limit"
    with pytest.raises(InvalidArgument):
        await backend.store.defer_job(job.id, W, when, "")


async def test_release_returns_jobs_with_the_attempt_given_back(backend: Backend) -> None:
    h = backend.harness
    a, b = h.enqueue("generate_design"), h.enqueue("generate_design")
    await claim(backend)
    h.cancel(b.id)
    released = {r.id: r for r in await backend.store.release_jobs(W, [a.id, b.id])}
    assert (released[a.id].status, released[a.id].attempts) == ("queued", 0)
    assert released[b.id].status == "cancelled"
    assert await backend.store.release_jobs(W, None) == []


async def test_reap_requeues_expired_leases_and_next_run_at_sees_them(backend: Backend) -> None:
    h = backend.harness
    job = h.enqueue("rename_layers")
    assert await backend.store.next_run_at(["rename_layers"]) is None  # due now is not "next"
    await claim(backend)
    assert await backend.store.reap_expired_leases() == 0
    h.expire_lease(job.id)
    with pytest.raises(LeaseLost):
        await backend.store.complete_job(job.id, W, {})
    assert await backend.store.reap_expired_leases() == 1
    row = h.get(job.id)
    assert row.status == "queued" and row.error is not None and row.error["type"] == "lease_expired"
    assert await backend.store.next_run_at(["rename_layers"]) == row.run_at
    assert await backend.store.next_run_at(["generate_image"]) is None


async def test_invalid_arguments_are_typed(backend: Backend) -> None:
    with pytest.raises(InvalidArgument, match="lease_seconds"):
        await claim(backend, lease=2)
    with pytest.raises(InvalidArgument, match="kinds"):
        await claim(backend, kinds=["paint"])
    with pytest.raises(InvalidArgument, match="worker_id"):
        await backend.store.claim_jobs(" ", None, 1, 60)


async def test_job_kinds_and_views(backend: Backend) -> None:
    kinds = {k.kind: k for k in await backend.store.job_kinds()}
    assert kinds["rename_layers"].timeout_seconds == 120 and kinds["generate_image"].max_attempts == 2
    backend.harness.enqueue("generate_design")
    rows = await backend.store.read_view("job_stats")
    assert any(r["kind"] == "generate_design" and r["status"] == "queued" for r in rows)


async def park(b: Backend, n: int = 1) -> list[JobRow]:
    """Claim as W and, if that comes back short, park W: the next queued job wakes it."""
    return await b.store.claim_jobs(W, None, n, 60, park_seconds=60)


def hints_into(queue: asyncio.Queue[JobHint]) -> Callable[[Wake], None]:
    def on_wake(wake: Wake) -> None:
        for hint in wake.hints:
            queue.put_nowait(hint)

    return on_wake


async def test_wakeups_deliver_inserts_and_requeues_to_the_parked_worker(backend: Backend) -> None:
    if backend.wakeups is None:
        pytest.skip("the in-memory store has no push channel")
    hints: asyncio.Queue[JobHint] = asyncio.Queue()
    joined = asyncio.Event()
    await backend.wakeups.start(W, hints_into(hints), joined.set)
    try:
        async with asyncio.timeout(WAIT):
            await joined.wait()
        assert backend.wakeups.connected
        assert await park(backend) == []
        job = backend.harness.enqueue("generate_image", {"prompt": "x"})
        async with asyncio.timeout(WAIT):
            hint = await hints.get()
        assert (hint.kind, hint.status, hint.run_at) == ("generate_image", "queued", job.run_at)
        assert len(await park(backend, 2)) == 1  # claims it, parked again with a free slot
        later = datetime.now(UTC) + timedelta(minutes=5)
        await backend.store.defer_job(job.id, W, later, "rate limit")
        async with asyncio.timeout(WAIT):
            hint = await hints.get()
        assert hint.status == "queued" and hint.run_at is not None and abs((hint.run_at - later).total_seconds()) < 1
    finally:
        await backend.wakeups.close()


async def test_handoffs_bring_the_rows_claimed_for_the_parked_worker(backend: Backend) -> None:
    if backend.wakeups is None:
        pytest.skip("the in-memory store has no push channel")
    wakes: asyncio.Queue[Wake] = asyncio.Queue()
    joined = asyncio.Event()
    await backend.wakeups.start(W, wakes.put_nowait, joined.set)

    async def park_for_handoffs(seen: list[uuid.UUID]) -> list[JobRow]:
        return await backend.store.claim_jobs(W, None, 2, 60, park_seconds=60, handed_seen=seen)

    try:
        async with asyncio.timeout(WAIT):
            await joined.wait()
        assert await park_for_handoffs([]) == []
        job = backend.harness.enqueue("generate_image", {"prompt": "x"})
        async with asyncio.timeout(WAIT):
            wake = await wakes.get()
        [handed] = [readable(row) for row in wake.jobs]
        assert (handed.id, handed.status, handed.worker_id, handed.attempts) == (job.id, "running", W, 1)
        assert [h.kind for h in wake.hints] == ["generate_image"]
        assert wake.parked  # parked just now, a slot left: no claim owed
        other = backend.harness.enqueue("rename_layers")
        async with asyncio.timeout(WAIT):
            last = await wakes.get()
        assert [row.id for row in last.jobs] == [other.id] and not last.parked  # its last slot: a claim owed
        assert await park_for_handoffs([job.id, other.id]) == []  # seen: not answered again
        third = backend.harness.enqueue("rename_layers")
        async with asyncio.timeout(WAIT):
            assert [row.id for row in (await wakes.get()).jobs] == [third.id]
        assert [row.id for row in await park_for_handoffs([])] == [third.id]  # not seen: answered
    finally:
        await backend.store.unpark(W)
        await backend.wakeups.close()


# What a row can hold that the worker cannot read: (column, SQL written directly, how the API
# sends it, how the failure's message starts). JSON too deep or a number too long for Python's
# json exist only on the wire: the in-memory fake has none, so it skips those.
DEEP = 5000
UNREADABLE = [
    pytest.param("run_at", "'-infinity'", "-infinity", "run_at: ", id="run_at-minus-infinity"),
    pytest.param("run_at", "'0044-03-15 BC'", "0044-03-15T00:00:00+00:00 BC", "run_at: ", id="run_at-bc"),
    pytest.param("result", "'5'", 5, "result.", id="result-a-number"),
    pytest.param(
        "payload",
        f"""('{{"layers": ' || repeat('[', {DEEP}) || repeat(']', {DEEP}) || '}}')::jsonb""",
        None,
        "not JSON the worker can decode (RecursionError",
        id="payload-nested-too-deep",
    ),
    pytest.param(
        "payload",
        """('{"n": ' || repeat('9', 5000) || '}')::jsonb""",
        None,
        "not JSON the worker can decode (ValueError",
        id="payload-number-too-long",
    ),
]


@pytest.mark.parametrize(("column", "value", "wire", "problem"), UNREADABLE)
async def test_a_row_the_worker_cannot_read_comes_back_alone_as_unparseable(
    backend: Backend, column: str, value: LiteralString, wire: Any, problem: str
) -> None:
    if wire is None and backend.name == "memory":
        pytest.skip("the in-memory store has no JSON wire")
    h = backend.harness
    good, bad, other = (h.enqueue("rename_layers") for _ in range(3))
    h.corrupt(bad.id, column, value, wire)
    rows = {row.id: row for row in await claim_rows(backend)}
    assert set(rows) == {good.id, bad.id, other.id}  # one bad row hides none of the others
    assert isinstance(rows[good.id], Job) and isinstance(rows[other.id], Job)
    poison = rows[bad.id]
    assert isinstance(poison, UnparseableJob)
    assert (poison.kind, poison.status) == ("rename_layers", "running")
    assert poison.failure.message.startswith(PROBLEM + problem), poison.failure.message[:300]
    [renewed] = await backend.store.renew_leases(W, [bad.id], 60)  # every answer reads it the same way
    assert isinstance(renewed, UnparseableJob) and renewed.id == bad.id
    failed = await backend.store.fail_job(bad.id, W, poison.failure.to_error(), poison.failure.retryable)
    assert (failed.id, failed.status) == (bad.id, "failed")
    error = {"type": "invalid_job_row", "message": poison.failure.message, "retryable": False, "attempt": 1}
    assert h.facts(bad.id) == {"status": "failed", "attempts": 1, "error": error}


async def test_columns_the_worker_does_not_read_never_make_a_row_unreadable(backend: Backend) -> None:
    job = backend.harness.enqueue("rename_layers")
    backend.harness.corrupt(job.id, "created_at", "'infinity'", "infinity")
    [row] = await claim_rows(backend)
    assert isinstance(row, Job) and row.id == job.id


async def test_wakeups_skip_what_they_cannot_read_and_stay_connected(backend: Backend) -> None:
    if backend.wakeups is None:
        pytest.skip("the in-memory store has no push channel")
    hints: asyncio.Queue[JobHint] = asyncio.Queue()
    joined = asyncio.Event()
    await backend.wakeups.start(W, hints_into(hints), joined.set)
    try:
        async with asyncio.timeout(WAIT):
            await joined.wait()
        h = backend.harness
        await park(backend)
        first = h.enqueue("rename_layers")
        async with asyncio.timeout(WAIT):
            assert (await hints.get()).kind == "rename_layers"
        assert isinstance(h, SqlHarness)  # the in-memory store has no push channel
        # Parked again without claiming `first`: requeued with run_at = -infinity, it wakes W with that.
        h.sql(
            "insert into public.worker_wakeups (worker_id, free_slots, parked_until) values (%s, 1, now() + '1 minute')"
            " on conflict (worker_id) do update set free_slots = 1, woken_at = null",
            (W,),
        )
        h.corrupt(first.id, "run_at", "'-infinity'", "-infinity")
        # Whoever may NOTIFY (or send on the topic) can send anything.
        deep = '{"kind": ' + "[" * 3000 + "]" * 3000 + "}"  # deeper than json's limit, under NOTIFY's 8000 bytes
        for garbage in (deep, "not json", '{"kind": "rename_layers", "run_at": "2026-01-01T00:00:00"}'):
            h.sql("select pg_notify(%s, %s)", (wake_channel(W), garbage))
        for body in ('{"kind": 5}', '{"kind": "rename_layers", "run_at": "2026-01-01T00:00:00"}'):
            h.sql("select realtime.send(%s::jsonb, 'wake', %s, true)", (body, f"worker:{W}"))
        await park(backend, 2)
        job = h.enqueue("generate_image", {"prompt": "x"})
        async with asyncio.timeout(WAIT):
            hint = await hints.get()
        assert (hint.kind, hint.run_at) == ("generate_image", job.run_at)  # nothing malformed got through
        assert backend.wakeups.connected
    finally:
        await backend.wakeups.close()


async def test_a_due_time_python_cannot_hold_is_no_due_time(backend: Backend) -> None:
    if backend.name == "memory":
        pytest.skip("the in-memory store holds Python datetimes only")
    job = backend.harness.enqueue("rename_layers", run_at=datetime.now(UTC) + timedelta(hours=1))
    assert await backend.store.next_run_at(["rename_layers"]) == job.run_at
    backend.harness.corrupt(job.id, "run_at", "'infinity'")  # never due; the sweep must not fail on it
    assert await backend.store.next_run_at(["rename_layers"]) is None


async def test_record_usage_prices_calls_and_refuses_malformed_usage(backend: Backend) -> None:
    backend.harness.enqueue("generate_design")
    [job] = await claim(backend, kinds=["generate_design"])
    store = backend.store
    haiku = ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1000, 500, 200, 0), 1234)
    # 800 fresh input at $1/MTok, 200 cached at $0.10, 500 output at $5.
    assert await store.record_usage(job.id, W, 1, haiku) == pytest.approx(0.00332, abs=1e-9)
    image = ModelCall("gemini", "gemini-2.5-flash-image", ModelUsage(10, 1290, 0, 1), 900)
    assert await store.record_usage(job.id, W, 1, image) == pytest.approx(0.038703, abs=1e-9)
    assert await store.record_usage(job.id, W, 1, ModelCall("anthropic", "claude-x-9", ModelUsage(1, 1), 5)) is None
    bad = [
        (job.id, 1, ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1, 0, 2), 5), r"^cached_tokens: must not"),
        (job.id, 1, ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(-1, 0), 5), r"^input_tokens: must be"),
        (job.id, 1, ModelCall("Anthropic", "claude-haiku-4-5", ModelUsage(1, 0), 5), r"^provider: must be"),
        (job.id, 1, ModelCall("anthropic", "claude haiku", ModelUsage(1, 0), 5), r"^model: must be"),
        (job.id, 1, ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1, 0), -1), r"^latency_ms: must be"),
        (job.id, 2, haiku, r"^attempt: must be between 1 and the job's attempts \(1\), got 2"),
    ]
    for job_id, attempt, call, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            await store.record_usage(job_id, W, attempt, call)
    with pytest.raises(JobNotFound):
        await store.record_usage(uuid.uuid4(), W, 1, haiku)
    [per_kind] = await store.read_view("cost_per_kind")
    assert (per_kind["kind"], per_kind["jobs"], per_kind["calls"]) == ("generate_design", 1, 3)
    assert float(per_kind["cost_usd"]) == pytest.approx(0.042023, abs=1e-6)
    assert float(per_kind["cost_per_1k_jobs_usd"]) == pytest.approx(42.023, abs=1e-3)


async def test_record_usage_batch_records_in_order_answers_gone_jobs_and_refuses_as_a_whole(backend: Backend) -> None:
    backend.harness.enqueue("generate_design")
    [job] = await claim(backend, kinds=["generate_design"])
    store = backend.store
    haiku = ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1000, 500, 200, 0), 1234)
    unpriced = ModelCall("anthropic", "claude-x-9", ModelUsage(1, 1), 5)
    gone = uuid.uuid4()
    answers = await store.record_usage_batch(
        W, [UsageRecord(job.id, 1, haiku), UsageRecord(gone, 1, haiku), UsageRecord(job.id, 1, unpriced)]
    )
    assert [(a.job_id, a.recorded, a.reason) for a in answers] == [
        (job.id, True, None),
        (gone, False, "job not found"),
        (job.id, True, None),
    ]
    assert answers[0].cost_usd == pytest.approx(0.00332, abs=1e-9) and answers[2].cost_usd is None
    # A malformed record names its place in the batch, and nothing of the batch is recorded.
    [before] = await store.read_view("cost_per_kind")
    bad = [
        (UsageRecord(job.id, 1, ModelCall("Anthropic", "m", ModelUsage(1, 0), 5)), r"^calls\[1\]\.provider: must be"),
        (UsageRecord(job.id, 2, haiku), r"^calls\[1\]\.attempt: must be between 1 and the job's attempts \(1\)"),
    ]
    for record, message in bad:
        with pytest.raises(InvalidArgument, match=message):
            await store.record_usage_batch(W, [UsageRecord(job.id, 1, haiku), record])
    [after] = await store.read_view("cost_per_kind")
    assert after["calls"] == before["calls"]


async def test_complete_jobs_records_the_usage_it_carries_held_or_not_and_refuses_a_bad_record(
    backend: Backend,
) -> None:
    backend.harness.enqueue("generate_design")
    backend.harness.enqueue("generate_design")
    mine, lost = await claim(backend, 2, kinds=["generate_design"])
    store = backend.store
    haiku = ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1000, 500, 200, 0), 1234)
    [before] = await store.read_view("cost_per_kind") or [{"calls": 0}]
    # A bad record refuses the whole call by name: nothing completes, nothing is recorded.
    bad = ModelCall("anthropic", "", ModelUsage(1, 0), 5)
    with pytest.raises(InvalidArgument, match=r"^completions\[0\]\.usage\[1\]\.model: "):
        await store.complete_jobs(
            W, [(mine.id, {})], usage={mine.id: [UsageRecord(mine.id, 1, haiku), UsageRecord(mine.id, 1, bad)]}
        )
    assert (await store.read_view("cost_per_kind") or [{"calls": 0}])[0]["calls"] == before["calls"]
    outcome = await store.complete_jobs(
        "someone-else",
        [(mine.id, {"n": 1}), (lost.id, {})],
        usage={mine.id: [UsageRecord(mine.id, 1, haiku)] * 2, lost.id: [UsageRecord(lost.id, 1, haiku)]},
    )
    assert outcome[mine.id] is not None and outcome[lost.id] is not None  # neither held by someone-else
    # Recorded all the same: the calls were made, and paid for.
    [after] = await store.read_view("cost_per_kind")
    assert after["calls"] == before["calls"] + 3
    outcome = await store.complete_jobs(W, [(mine.id, {"n": 1})], usage={mine.id: [UsageRecord(mine.id, 1, haiku)]})
    assert outcome == {mine.id: None}
    assert (await store.read_view("cost_per_kind"))[0]["calls"] == before["calls"] + 4
