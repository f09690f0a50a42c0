"""Retention maintenance in the core, against the in-memory fakes (held honest by
tests/integration/test_worker_retention.py): batching, failures leaving work leased, the
periodic loop, the folder store's removal, and `python -m worker purge`."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from worker import retention_cli
from worker.adapters.files import FolderArtifacts
from worker.adapters.memory import MemoryStore
from worker.adapters.memory_limits import MemoryProviderControl
from worker.adapters.memory_retention import MemoryObjects, MemoryRetention
from worker.compose import Transports
from worker.config import ConfigError, Settings, load_settings
from worker.core.errors import StoreError, StoreUnavailable
from worker.core.metrics import Metrics
from worker.core.ports import ArtifactDeletion
from worker.core.retention import Retention, RetentionConfig, run_periodically


class Clock:
    def __init__(self) -> None:
        self.wall = datetime(2026, 12, 4, tzinfo=UTC)

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)


class Fakes:
    def __init__(self) -> None:
        self.clock = Clock()
        self.store = MemoryStore(self.clock)
        self.objects = MemoryObjects(self.clock)
        self.retention_store = MemoryRetention(self.store, self.objects)

    async def finished_image_job(self, days_ago: float = 8) -> str:
        job = self.store.enqueue("generate_image", {"prompt": "a cat"})
        path = f"{job.user_id}/{job.id}/image.png"
        await self.objects.upload(path, b"png", "image/png")
        row = self.store.rows[job.id]
        row.status, row.result, row.finished_at = "succeeded", {"path": path}, self.clock.now() - timedelta(days_ago)
        return path

    def retention(self, **config: object) -> Retention:
        return Retention(self.retention_store, self.objects, RetentionConfig(**config), Metrics())  # type: ignore[arg-type]


@pytest.fixture
def fakes() -> Fakes:
    return Fakes()


async def test_the_outbox_is_drained_in_batches_the_storage_api_accepts(fakes: Fakes) -> None:
    paths = {await fakes.finished_image_job() for _ in range(5)}
    retention = fakes.retention(batch=2)
    report = await retention.run_once(purge_older_than=timedelta(days=7))
    assert (report.purged_jobs, report.removed, report.not_removed, report.failed) == (5, 5, 0, None)
    assert set(fakes.objects.removed) == paths and fakes.objects.objects == {}
    assert fakes.store.calls.count("claim_artifact_deletions") == 3  # 2 + 2 + 1: the short batch ends the run
    assert fakes.retention_store.outbox == {}
    assert retention.metrics.count("worker_artifacts_deleted_total") == 5


async def test_a_run_takes_at_most_max_batches_and_leaves_the_rest_queued(fakes: Fakes) -> None:
    for _ in range(5):
        await fakes.finished_image_job()
    report = await fakes.retention(batch=2, max_batches=1).run_once(purge_older_than=timedelta(days=7))
    assert report.removed == 2 and len(fakes.retention_store.outbox) == 3
    assert len(fakes.objects.objects) == 3


async def test_a_failed_removal_stops_the_run_and_keeps_the_batch_leased_until_its_lease_ends(fakes: Fakes) -> None:
    path = await fakes.finished_image_job()
    fakes.objects.fail_next.append(StoreUnavailable("storage: connection refused"))
    retention = fakes.retention(lease_seconds=60)
    report = await retention.run_once(purge_older_than=timedelta(days=7))
    assert report.failed == "storage: connection refused" and report.removed == 0
    assert "ack_artifact_deletions" not in fakes.store.calls
    [queued] = fakes.retention_store.outbox.values()
    assert queued.row.name == path and queued.row.attempts == 1
    assert (await retention.run_once()).removed == 0  # still leased: nobody else removes it meanwhile
    await fakes.clock.sleep(61)
    again = await retention.run_once()
    assert (again.removed, again.failed) == (1, None) and fakes.objects.objects == {}
    assert "deleted 1 object(s)" in again.line()


async def test_an_object_still_stored_after_removal_is_not_acknowledged(fakes: Fakes) -> None:
    path = await fakes.finished_image_job()

    class Stubborn(MemoryObjects):
        async def remove(self, paths: object) -> None:
            return None  # answers success but keeps the object (e.g. removed from another bucket)

    stubborn = Stubborn(fakes.clock)
    stubborn.objects = fakes.objects.objects
    retention = Retention(fakes.retention_store, stubborn, RetentionConfig())
    report = await retention.run_once(purge_older_than=timedelta(days=7))
    assert (report.removed, report.not_removed) == (0, 1)
    assert [q.row.name for q in fakes.retention_store.outbox.values()] == [path]


async def test_orphans_use_the_configured_grace_period(fakes: Fakes) -> None:
    await fakes.objects.upload("u/j/image.png", b"x", "image/png")
    assert (await fakes.retention(orphan_grace=timedelta(hours=1)).run_once()).orphans_queued == 0
    await fakes.clock.sleep(3600)
    report = await fakes.retention(orphan_grace=timedelta(hours=1)).run_once()
    assert (report.orphans_queued, report.removed) == (1, 1) and fakes.objects.objects == {}


def test_a_batch_over_the_storage_api_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="batch: must be between 1 and 1000, got 1001"):
        RetentionConfig(batch=1001)


async def test_the_periodic_loop_runs_until_stopping_is_set(fakes: Fakes) -> None:
    await fakes.finished_image_job()
    stopping = asyncio.Event()
    runs = 0
    retention = fakes.retention()
    original = retention.run_once

    async def counted(purge_older_than: timedelta | None = None) -> object:
        nonlocal runs
        runs += 1
        if runs == 2:
            stopping.set()
        return await original(purge_older_than)

    retention.run_once = counted  # type: ignore[method-assign,assignment]
    await run_periodically(retention, 0.001, stopping)
    assert runs == 2
    assert "purge_finished_jobs" not in fakes.store.calls  # the worker leaves purging to pg_cron


async def test_the_periodic_loop_survives_an_unexpected_error(fakes: Fakes) -> None:
    stopping = asyncio.Event()
    calls = 0
    retention = fakes.retention()

    async def broken(purge_older_than: timedelta | None = None) -> object:
        nonlocal calls
        calls += 1
        if calls == 2:
            stopping.set()
        raise RuntimeError("bug")

    retention.run_once = broken  # type: ignore[method-assign,assignment]
    await run_periodically(retention, 0.001, stopping)
    assert calls == 2


async def test_the_folder_store_removes_files_and_the_folders_they_leave_empty(tmp_path: Path) -> None:
    folder = FolderArtifacts(tmp_path)
    await folder.upload("u/j1/image.png", b"1", "image/png")
    await folder.upload("u/j2/image.png", b"2", "image/png")
    await folder.remove(["u/j1/image.png", "u/j1/image.png", "u/missing/image.png"])
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["u", "u/j2", "u/j2/image.png"]
    with pytest.raises(StoreError, match=r"artifact path must be relative without '\.\.'"):
        await folder.remove(["../etc/passwd"])


DURATIONS = [("30s", timedelta(seconds=30)), ("1.5h", timedelta(hours=1.5)), ("7d", timedelta(days=7))]


@pytest.mark.parametrize(("text", "value"), DURATIONS)
def test_durations(text: str, value: timedelta) -> None:
    assert retention_cli.duration(text) == value


@pytest.mark.parametrize("text", ["7", "7 days", "-1d", "d", "4000d"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        retention_cli.duration(text)


def test_retention_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKER_STORE", "postgres")
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:9/db")
    monkeypatch.setenv("RETENTION_SECONDS", "-1")
    with pytest.raises(ConfigError, match="RETENTION_SECONDS: Input should be greater than or equal to 0"):
        load_settings()


@pytest.fixture
def purge_fakes(monkeypatch: pytest.MonkeyPatch, fakes: Fakes) -> Fakes:
    async def build(_settings: Settings) -> Transports:
        return Transports(
            fakes.store, None, fakes.objects, fakes.store, MemoryProviderControl(), retention=fakes.retention_store
        )

    monkeypatch.setattr("worker.compose.build_transports", build)
    return fakes


def settings() -> Settings:
    return Settings(worker_store="postgres", database_url="postgresql://x@127.0.0.1:9/db")


async def test_the_purge_command_prints_one_line(purge_fakes: Fakes, capsys: pytest.CaptureFixture[str]) -> None:
    await purge_fakes.finished_image_job(days_ago=8)
    await purge_fakes.finished_image_job(days_ago=1)
    assert await retention_cli.purge(settings(), timedelta(days=7), None) == 0
    assert capsys.readouterr().out == (
        "worker: purged 1 finished job(s); queued 0 orphaned object(s); "
        "deleted 1 object(s) through the artifact store; 0 left for a later run\n"
    )
    assert len(purge_fakes.objects.objects) == 1


async def test_the_purge_command_exits_1_when_the_store_fails(
    purge_fakes: Fakes, capsys: pytest.CaptureFixture[str]
) -> None:
    purge_fakes.store.fail_next.append(StoreUnavailable("connection refused"))
    assert await retention_cli.purge(settings(), timedelta(days=7), None) == 1
    assert capsys.readouterr().out.endswith("(stopped: connection refused)\n")


class StaleClaim:
    """A replica whose claim answered before its lease ran out: it hands out ``rows`` once."""

    def __init__(self, inner: MemoryRetention, rows: list[ArtifactDeletion]) -> None:
        self.inner, self.rows = inner, rows

    async def purge_finished_jobs(self, older_than: timedelta) -> int:
        return await self.inner.purge_finished_jobs(older_than)

    async def enqueue_orphaned_artifacts(self, grace: timedelta, max_items: int) -> int:
        return await self.inner.enqueue_orphaned_artifacts(grace, max_items)

    async def claim_artifact_deletions(self, max_items: int, lease_seconds: int) -> list[ArtifactDeletion]:
        rows, self.rows = self.rows, []
        return rows

    async def ack_artifact_deletions(self, ids: Sequence[int]) -> dict[int, str | None]:
        return await self.inner.ack_artifact_deletions(ids)


async def test_a_row_another_replica_finished_counts_as_neither_removed_nor_left(fakes: Fakes) -> None:
    await fakes.finished_image_job()
    await fakes.retention_store.purge_finished_jobs(timedelta(days=7))
    stale = await fakes.retention_store.claim_artifact_deletions(10, 60)
    await fakes.clock.sleep(61)
    assert (await fakes.retention().run_once()).removed == 1  # another replica, after the lease
    slow = Retention(StaleClaim(fakes.retention_store, stale), fakes.objects, RetentionConfig(), Metrics())
    report = await slow.run_once()
    assert (report.removed, report.not_removed, report.failed) == (0, 0, None)
