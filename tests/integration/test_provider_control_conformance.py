"""One conformance suite for every ProviderControl: the in-memory fake, psycopg and supabase-py.

The sibling of test_worker_conformance.py for the shared provider limits, cooldowns and fallback
chains (20261204000200_provider_limits.sql): the same assertions run against each, so the fake
the unit tests rely on keeps the SQL's semantics.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import pytest
import pytest_asyncio

from devstack import paths
from tests.integration.worker_support import Gateway, SqlHarness, clone_database, cloned_gateway, drop_database
from worker.adapters.memory_limits import MemoryProviderControl
from worker.adapters.postgres import PostgresStore
from worker.adapters.rpc_store import RpcStore
from worker.adapters.supabase import SupabaseStore, connect
from worker.core.errors import InvalidArgument
from worker.core.ports import CapacityRequest, ModelRoute, ProviderControl

pytestmark = pytest.mark.integration


class Operator(Protocol):
    def set_limits(self, provider: str, model: str, rpm: int | None, tpm: int | None = None) -> None: ...
    def set_chain(self, kind: str, routes: list[ModelRoute]) -> None: ...


class SqlOperator:
    def __init__(self, harness: SqlHarness) -> None:
        self.api = harness.api

    def set_limits(self, provider: str, model: str, rpm: int | None, tpm: int | None = None) -> None:
        self.api.admin("insert into public.provider_limits values (%s, %s, %s, %s)", (provider, model, rpm, tpm))

    def set_chain(self, kind: str, routes: list[ModelRoute]) -> None:
        self.api.admin("delete from public.kind_models where kind = %s", (kind,))
        for position, route in enumerate(routes, start=1):
            self.api.admin(
                "insert into public.kind_models values (%s, %s, %s, %s)", (kind, position, route.provider, route.model)
            )


@dataclass
class Backend:
    name: str
    control: ProviderControl
    operator: Operator


@pytest.fixture(scope="module")
def supabase_db(pg_cluster: None) -> Iterator[Gateway]:
    with cloned_gateway("control_conf") as gw:
        yield gw


@pytest_asyncio.fixture(params=["memory", "postgres", "supabase"])
async def backend(request: pytest.FixtureRequest, pg_cluster: None) -> AsyncIterator[Backend]:
    if request.param == "memory":
        memory = MemoryProviderControl()
        yield Backend("memory", memory, memory)
        return
    store: RpcStore
    if request.param == "postgres":
        name = clone_database("control_conf")
        harness = SqlHarness(name)
        store = PostgresStore(paths.database_url(name))
    else:
        gw: Gateway = request.getfixturevalue("supabase_db")
        name = gw.database
        harness = SqlHarness(name)
        harness.api.admin("truncate public.provider_limits, public.model_capacity, public.kind_models")
        store = SupabaseStore(await connect(gw.url, gw.service_role_key))
    try:
        yield Backend(request.param, store, SqlOperator(harness))
    finally:
        await store.close()
        harness.close()
        if request.param == "postgres":
            drop_database(name)


async def test_capacity_is_granted_until_the_bucket_is_empty(backend: Backend) -> None:
    c = backend.control
    backend.operator.set_limits("anthropic", "m1", rpm=2)
    assert [(await c.acquire_model_capacity("anthropic", "m1", 10)).granted for _ in range(3)] == [True, True, False]
    refused = await c.acquire_model_capacity("anthropic", "m1", 10)
    assert refused.reason == "requests" and 0 < refused.wait_seconds <= 30
    assert (await c.acquire_model_capacity("anthropic", "unlimited", 10)).granted


async def test_tokens_are_counted(backend: Backend) -> None:
    c = backend.control
    backend.operator.set_limits("gemini", "m1", rpm=None, tpm=100)
    assert (await c.acquire_model_capacity("gemini", "m1", 80)).granted
    refused = await c.acquire_model_capacity("gemini", "m1", 80)
    assert not refused.granted and refused.reason == "tokens"


async def test_a_batch_is_answered_in_order_from_the_same_buckets(backend: Backend) -> None:
    c = backend.control
    backend.operator.set_limits("anthropic", "m1", rpm=2)
    await c.report_model_rate_limit("gemini", "hot", 529, 30)
    asks = [
        CapacityRequest("anthropic", "m1", 10),
        CapacityRequest("gemini", "hot"),
        CapacityRequest("anthropic", "m2"),
    ]
    answers = await c.acquire_model_capacity_batch([*asks, asks[0], asks[0]])
    assert [(a.granted, a.reason) for a in answers] == [
        (True, "granted"),
        (False, "cooldown"),
        (True, "unlimited"),
        (True, "granted"),
        (False, "requests"),
    ]
    assert 0 < answers[1].wait_seconds <= 30 and 0 < answers[4].wait_seconds <= 30
    assert not (await c.acquire_model_capacity("anthropic", "m1", 0)).granted  # the single call's bucket


@pytest.mark.parametrize(
    ("requests", "message"),
    [
        ([CapacityRequest("anthropic", "m1"), CapacityRequest("Bad Name", "m1")], r"^requests\[1\]\.provider: "),
        ([CapacityRequest("anthropic", "m1"), CapacityRequest("anthropic", "")], r"^requests\[1\]\.model: "),
        ([CapacityRequest("anthropic", "m1", -1)], r"^requests\[0\]\.tokens: must be between 0 and 1000000000"),
    ],
)
async def test_a_bad_request_refuses_the_batch_by_name_and_takes_nothing(
    backend: Backend, requests: list[CapacityRequest], message: str
) -> None:
    backend.operator.set_limits("anthropic", "m1", rpm=1)
    with pytest.raises(InvalidArgument, match=message):
        await backend.control.acquire_model_capacity_batch(requests)
    assert (await backend.control.acquire_model_capacity("anthropic", "m1", 0)).granted  # nothing was taken


async def test_a_reported_429_opens_a_cooldown_for_everyone(backend: Backend) -> None:
    c = backend.control
    before = datetime.now(UTC)
    until = await c.report_model_rate_limit("anthropic", "m1", 429, 30)
    assert before + timedelta(seconds=29) < until <= datetime.now(UTC) + timedelta(seconds=30)
    refused = await c.acquire_model_capacity("anthropic", "m1", 0)
    assert not refused.granted and refused.reason == "cooldown" and 0 < refused.wait_seconds <= 30
    assert await c.report_model_rate_limit("anthropic", "m1", 529, 1) == until  # never shortened
    assert (await c.acquire_model_capacity("anthropic", "m2", 0)).granted


async def test_chains_come_back_in_position_order(backend: Backend) -> None:
    assert await backend.control.kind_models() == {}
    routes = [ModelRoute("anthropic", "claude-haiku-4-5"), ModelRoute("gemini", "gemini-2.5-flash")]
    backend.operator.set_chain("generate_design", routes)
    backend.operator.set_chain("rename_layers", routes[::-1])
    assert await backend.control.kind_models() == {"generate_design": routes, "rename_layers": routes[::-1]}


@pytest.mark.parametrize(
    ("provider", "model", "status", "retry_after", "field"),
    [
        ("Bad Name", "m1", 429, 1.0, "provider"),
        ("anthropic", "", 429, 1.0, "model"),
        ("anthropic", "m1", 503, 1.0, "status"),
        ("anthropic", "m1", 429, -1.0, "retry_after_seconds"),
    ],
)
async def test_bad_arguments_are_refused_by_name(
    backend: Backend, provider: str, model: str, status: int, retry_after: float, field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await backend.control.report_model_rate_limit(provider, model, status, retry_after)
    assert str(refused.value).startswith(f"{field}: ")
    with pytest.raises(InvalidArgument, match=r"^tokens: "):
        await backend.control.acquire_model_capacity("anthropic", "m1", -1)
    assert (await backend.control.acquire_model_capacity("anthropic", "m1", 0)).granted  # nothing changed
