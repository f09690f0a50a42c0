"""Retention conformance: the in-memory fakes, psycopg + a folder, and supabase-py + Storage run
the same retention assertions, so the fakes the unit tests use cannot drift from the SQL API.

What each backend keeps its files in differs (the memory bucket, ARTIFACTS_DIR, Storage); what
the outbox, the purge and the acknowledgements do must not.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pytest
import pytest_asyncio

from devstack import paths
from tests.integration import test_worker_conformance as conformance
from tests.integration.worker_support import Gateway, SqlHarness, clone_database, drop_database
from worker.adapters.files import FolderArtifacts
from worker.adapters.memory import MemoryStore
from worker.adapters.memory_retention import MemoryObjects, MemoryRetention
from worker.adapters.postgres import PostgresStore
from worker.adapters.supabase import StorageArtifacts, SupabaseStore, connect
from worker.core.errors import InvalidArgument
from worker.core.ports import ArtifactStore, RetentionStore
from worker.core.retention import Retention, RetentionConfig

pytestmark = pytest.mark.integration
# The conformance suite's module-wide database and gateway: a gateway's superuser connections
# outlive a stopped server for a moment, so only a module's end may drop the database under them.
supabase_db = conformance.supabase_db
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


class Files(Protocol):
    def stored(self) -> set[str]: ...
    def age(self, name: str, by: timedelta) -> None: ...


@dataclass
class Backend:
    name: str
    store: RetentionStore
    artifacts: ArtifactStore
    files: Files
    make_job: Any  # (days_ago) -> (job_id, path): a finished generate_image job with its image stored
    job_exists: Any
    outbox: Any

    def retention(self, grace: timedelta = timedelta(days=1)) -> Retention:
        return Retention(self.store, self.artifacts, RetentionConfig(batch=2, orphan_grace=grace))

    async def upload(self, name: str) -> None:
        await self.artifacts.upload(name, PNG, "image/png")


class MemoryFiles:
    def __init__(self, objects: MemoryObjects) -> None:
        self.objects = objects

    def stored(self) -> set[str]:
        return set(self.objects.objects)

    def age(self, name: str, by: timedelta) -> None:
        data, kind, created = self.objects.objects[name]
        self.objects.objects[name] = (data, kind, created - by)


class StorageFiles:
    """Storage's catalog (storage.objects); the bytes on disk are checked in test_worker_process."""

    def __init__(self, harness: SqlHarness) -> None:
        self.harness = harness

    def stored(self) -> set[str]:
        rows = self.harness.sql("select name from storage.objects where bucket_id = 'job-artifacts'")
        return {r["name"] for r in rows}

    def age(self, name: str, by: timedelta) -> None:
        self.harness.sql(
            "update storage.objects set created_at = created_at - %s where bucket_id = 'job-artifacts' and name = %s",
            (by, name),
        )


class FolderFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def stored(self) -> set[str]:
        return {p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file()}

    def age(self, name: str, by: timedelta) -> None:
        raise NotImplementedError("storage.objects does not know a folder's files")


def sql_backend(
    name: str, harness: SqlHarness, store: RetentionStore, artifacts: ArtifactStore, files: Files
) -> Backend:
    async def make_job(days_ago: int) -> tuple[uuid.UUID, str]:
        job = harness.enqueue("generate_image", {"prompt": "a cat"})
        path = f"{job.user_id}/{job.id}/image.png"
        await artifacts.upload(path, PNG, "image/png")
        harness.sql(
            "update public.jobs set status = 'succeeded', result = jsonb_build_object('path', %s::text),"
            " finished_at = now() - make_interval(days => %s) where id = %s",
            (path, days_ago, job.id),
        )
        return job.id, path

    def job_exists(job_id: uuid.UUID) -> bool:
        return bool(harness.sql("select 1 from public.jobs where id = %s", (job_id,)))

    def outbox() -> list[str]:
        return [r["name"] for r in harness.sql("select name from public.artifact_deletions order by name")]

    return Backend(name, store, artifacts, files, make_job, job_exists, outbox)


def memory_backend() -> Backend:
    store = MemoryStore()
    objects = MemoryObjects(store.clock)
    retention = MemoryRetention(store, objects)

    async def make_job(days_ago: int) -> tuple[uuid.UUID, str]:
        job = store.enqueue("generate_image", {"prompt": "a cat"})
        path = f"{job.user_id}/{job.id}/image.png"
        await objects.upload(path, PNG, "image/png")
        row = store.rows[job.id]
        row.status, row.result = "succeeded", {"path": path}
        row.finished_at = datetime.now(UTC) - timedelta(days=days_ago)
        return job.id, path

    def outbox() -> list[str]:
        return sorted(q.row.name for q in retention.outbox.values())

    return Backend("memory", retention, objects, MemoryFiles(objects), make_job, store.rows.__contains__, outbox)


@pytest_asyncio.fixture(params=["memory", "postgres", "supabase"])
async def backend(request: pytest.FixtureRequest, pg_cluster: None, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        yield memory_backend()
        return
    if request.param == "postgres":
        name = clone_database("worker_ret")
        harness = SqlHarness(name)
        pg = PostgresStore(paths.database_url(name))
        try:
            yield sql_backend("postgres", harness, pg, FolderArtifacts(tmp_path), FolderFiles(tmp_path))
        finally:
            await pg.close()
            harness.close()
            drop_database(name)
        return
    gw: Gateway = request.getfixturevalue("supabase_db")
    harness = SqlHarness(gw.database)
    client = await connect(gw.url, gw.secret_key)
    sb, storage = SupabaseStore(client), StorageArtifacts(client)
    try:
        yield sql_backend("supabase", harness, sb, storage, StorageFiles(harness))
    finally:
        # The next test starts empty: what this one left goes the way Storage deletes.
        if left := sorted(StorageFiles(harness).stored()):
            await storage.remove(left)
        harness.sql("delete from public.jobs where true")
        harness.sql("delete from public.artifact_deletions where true")
        await sb.close()
        harness.close()


async def test_purged_jobs_leave_no_file_and_no_outbox_row(backend: Backend) -> None:
    old = [await backend.make_job(days_ago=8) for _ in range(3)]
    recent_id, recent_path = await backend.make_job(days_ago=1)
    report = await backend.retention().run_once(purge_older_than=timedelta(days=7))
    assert (report.purged_jobs, report.removed, report.not_removed, report.failed) == (3, 3, 0, None)
    assert not any(backend.job_exists(job_id) for job_id, _ in old)
    assert backend.files.stored() == {recent_path} and backend.job_exists(recent_id)
    assert backend.outbox() == []


async def test_the_outbox_is_filled_by_the_purge_and_drained_by_the_worker(backend: Backend) -> None:
    job_id, path = await backend.make_job(days_ago=8)
    assert await backend.store.purge_finished_jobs(timedelta(days=7)) == 1
    assert backend.outbox() == [path] and backend.files.stored() == {path}  # nothing deleted by SQL
    [row] = await backend.store.claim_artifact_deletions(10, 60)
    assert (row.name, row.job_id, row.reason, row.attempts) == (path, job_id, "job_deleted", 1)
    assert await backend.store.claim_artifact_deletions(10, 60) == []  # leased
    if backend.name != "postgres":  # a folder's files are unknown to storage.objects
        assert await backend.store.ack_artifact_deletions([row.id]) == {row.id: "object still in storage"}
    await backend.artifacts.remove([path])
    await backend.artifacts.remove([path])  # already gone: fine
    assert await backend.store.ack_artifact_deletions([row.id, row.id]) == {row.id: None}
    assert await backend.store.ack_artifact_deletions([row.id]) == {row.id: "not in the outbox"}
    assert backend.outbox() == [] and backend.files.stored() == set()


async def test_orphans_older_than_the_grace_period_are_deleted(backend: Backend) -> None:
    if backend.name == "postgres":
        pytest.skip("orphans are found in storage.objects; ARTIFACTS_DIR's files are not listed there")
    live_id, live_path = await backend.make_job(days_ago=0)
    late, fresh, stray = (
        f"{uuid.uuid4()}/{uuid.uuid4()}/image.png",
        f"{uuid.uuid4()}/{uuid.uuid4()}/image.png",
        "x/y.png",
    )
    for name in (late, fresh, stray):
        await backend.upload(name)
    for name in (late, stray, live_path):
        backend.files.age(name, timedelta(days=2))
    report = await backend.retention(grace=timedelta(days=1)).run_once()
    assert (report.orphans_queued, report.removed, report.failed) == (2, 2, None)
    assert backend.files.stored() == {live_path, fresh} and backend.job_exists(live_id)
    assert backend.outbox() == []


@pytest.mark.parametrize(
    ("call", "prefix"),
    [
        (lambda s: s.purge_finished_jobs(timedelta(days=-1)), "older_than: must be a non-negative interval"),
        (lambda s: s.enqueue_orphaned_artifacts(timedelta(days=4000), 10), "grace: must be at most 10 years"),
        (lambda s: s.enqueue_orphaned_artifacts(timedelta(0), 0), "max_items: must be between 1 and 10000, got 0"),
        (lambda s: s.claim_artifact_deletions(1001, 60), "max_items: must be between 1 and 1000, got 1001"),
        (lambda s: s.claim_artifact_deletions(10, 4), "lease_seconds: must be between 5 and 3600, got 4"),
        (lambda s: s.ack_artifact_deletions([]), "ids: must be a non-empty array of outbox ids"),
    ],
)
async def test_bad_arguments_are_refused_alike_and_change_nothing(backend: Backend, call: Any, prefix: str) -> None:
    _, path = await backend.make_job(days_ago=8)
    with pytest.raises(InvalidArgument) as err:
        await call(backend.store)
    assert str(err.value).startswith(prefix), str(err.value)
    assert backend.outbox() == [] and backend.files.stored() == {path}
