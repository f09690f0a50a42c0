"""`python -m worker stats`: the dashboard views through the Dashboard port, as rich tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker import stats
from worker.adapters.files import FolderArtifacts
from worker.adapters.memory import MemoryStore
from worker.adapters.memory_limits import MemoryProviderControl
from worker.compose import Transports
from worker.config import Settings
from worker.core.errors import StoreUnavailable
from worker.core.ports import ModelCall, ModelUsage


class Store(MemoryStore):
    closed = 0

    async def close(self) -> None:
        self.closed += 1


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Store:
    memory = Store()

    async def build(_settings: Settings) -> Transports:
        return Transports(memory, None, FolderArtifacts(tmp_path), memory, MemoryProviderControl())

    monkeypatch.setattr(stats, "build_transports", build)
    return memory


def settings() -> Settings:
    return Settings(worker_store="postgres", database_url="postgresql://x@127.0.0.1:9/db")


async def test_every_view_is_printed_and_the_store_closed(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.enqueue("rename_layers")
    assert await stats.print_stats(settings()) == 0
    out = capsys.readouterr().out
    assert "public.job_stats" in out and "rename_layers" in out and "queued" in out
    assert "public.active_jobs: no rows" in out
    assert "public.pending_jobs_queue" in out and "public.pending_jobs_queue: no rows" not in out
    assert "public.spend_by_user_month: no rows" in out
    assert store.calls == ["read_view"] * 6 and store.closed == 1


async def test_spend_is_printed(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.enqueue("generate_design")
    [job] = await store.claim_jobs("w", None, 1, 60)
    call = ModelCall("anthropic", "claude-haiku-4-5", ModelUsage(1000, 500, 200, 0), 900)
    await store.record_usage(job.id, "w", 1, call)
    assert await stats.print_stats(settings()) == 0
    out = capsys.readouterr().out
    assert "public.spend_by_user_month" in out and "0.00332" in out
    assert "public.cost_per_kind" in out and "3.32" in out  # USD per 1,000 jobs
    assert "public.tokens_per_kind" in out and "anthropic" in out


async def test_an_unreachable_store_is_one_line_and_exit_1(store: Store, capsys: pytest.CaptureFixture[str]) -> None:
    store.fail_next.append(StoreUnavailable("connection refused"))
    assert await stats.print_stats(settings()) == 1
    assert "cannot read the dashboard views from DATABASE_URL: connection refused" in capsys.readouterr().out
    assert store.closed == 1
