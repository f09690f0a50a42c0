"""The product's SQL API through the real supabase-py: REST for the RPCs and tables, Realtime for
the private jobs topic, Auth for the users. User A can neither read, change nor receive user B's
jobs; users cannot run the worker side; errors arrive with the HTTP statuses clients rely on.
Runs unchanged against a `supabase start` stack with our migrations (SUPABASE_URL + keys)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import psycopg
import pytest
from postgrest.exceptions import APIError
from realtime.types import RealtimeChannelOptions

from devstack.testing.callbacks import Collector, SubscribeStatus
from devstack.testing.fixtures import Stack
from supabase import AsyncClient, acreate_client

pytestmark = pytest.mark.integration
WAIT = 10.0


@asynccontextmanager
async def signed_in(stack: Stack) -> AsyncIterator[tuple[AsyncClient, str]]:
    """A fresh anonymous user, as the Figma plugin signs in by default."""
    client = await acreate_client(stack.url, stack.anon_key)
    res = await client.auth.sign_in_anonymously()
    assert res.session is not None and res.user is not None
    await client.realtime.set_auth(res.session.access_token)
    try:
        yield client, res.user.id
    finally:
        await client.realtime.remove_all_channels()
        # Leave no queued jobs behind: a worker attached to this stack later would run them.
        async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
            await conn.execute("delete from public.jobs where user_id = %s", (res.user.id,))


@asynccontextmanager
async def service(stack: Stack) -> AsyncIterator[AsyncClient]:
    client = await acreate_client(stack.url, stack.service_role_key)
    yield client


async def enqueue(
    client: AsyncClient, kind: str = "rename_layers", payload: dict[str, Any] | None = None, **kw: Any
) -> Any:
    res = await client.rpc("enqueue_job", {"kind": kind, "payload": payload or {"layers": []}, **kw}).execute()
    return res.data


async def test_enqueue_returns_the_row_and_the_owner_reads_it(stack: Stack) -> None:
    async with signed_in(stack) as (alice, alice_id):
        job = await enqueue(alice, "generate_design", {"prompt": "pricing page"}, idempotency_key="k-1")
        assert job["user_id"] == alice_id and job["status"] == "queued" and job["kind"] == "generate_design"
        again = await enqueue(alice, "generate_design", {"prompt": "pricing page"}, idempotency_key="k-1")
        assert again["id"] == job["id"]
        rows = (await alice.table("jobs").select("id, status, payload").eq("id", job["id"]).execute()).data
        assert rows == [{"id": job["id"], "status": "queued", "payload": {"prompt": "pricing page"}}]


async def test_users_are_isolated_over_rest(stack: Stack) -> None:
    async with signed_in(stack) as (alice, _), signed_in(stack) as (bob, _):
        job = await enqueue(alice)
        assert (await bob.table("jobs").select("id").eq("id", job["id"]).execute()).data == []
        assert (await bob.table("job_events").select("id").eq("job_id", job["id"]).execute()).data == []
        with pytest.raises(APIError) as err:
            await bob.rpc("cancel_job", {"job_id": job["id"]}).execute()
        assert err.value.code == "PT404"
        # No direct writes, even to one's own rows.
        with pytest.raises(APIError) as err:
            await alice.table("jobs").update({"status": "succeeded"}).eq("id", job["id"]).execute()
        assert err.value.code == "42501"
        mine = (await alice.table("jobs").select("status").eq("id", job["id"]).execute()).data
        assert mine == [{"status": "queued"}]


@pytest.mark.parametrize(
    ("rpc", "args"),
    [
        ("claim_jobs", {"worker_id": "sneaky"}),
        ("reap_expired_leases", {}),
        ("complete_job", {"job_id": "00000000-0000-0000-0000-000000000000", "worker_id": "w", "result": {}}),
    ],
)
async def test_users_cannot_run_the_worker_side(stack: Stack, rpc: str, args: dict[str, Any]) -> None:
    async with signed_in(stack) as (alice, _):
        with pytest.raises(APIError) as err:
            await alice.rpc(rpc, args).execute()
        assert err.value.code == "42501"
    anon = await acreate_client(stack.url, stack.anon_key)
    with pytest.raises(APIError) as err:
        await anon.rpc(rpc, args).execute()
    assert err.value.code == "42501"


async def test_error_statuses_on_the_wire(stack: Stack) -> None:
    async with signed_in(stack) as (alice, _):
        token = (await alice.auth.get_session()).access_token  # type: ignore[union-attr]
        headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        url = f"{stack.url}/rest/v1/rpc/enqueue_job"
        async with httpx.AsyncClient() as http:
            bad_kind = await http.post(url, headers=headers, json={"kind": "render_video"})
            assert bad_kind.status_code == 400
            assert bad_kind.json()["code"] == "22023"
            assert bad_kind.json()["message"] == 'kind: unknown job kind "render_video"'
            too_big = await http.post(
                url, headers=headers, json={"kind": "generate_image", "payload": {"p": "x" * 20000}}
            )
            assert too_big.status_code == 413 and too_big.json()["code"] == "PT413"
            for i in range(3):
                ok = await http.post(url, headers=headers, json={"kind": "generate_edits", "payload": {"i": i}})
                assert ok.status_code == 200, ok.text
            limited = await http.post(url, headers=headers, json={"kind": "generate_edits", "payload": {"i": 3}})
            assert limited.status_code == 429
            assert limited.json()["code"] == "PT429"
            assert limited.json()["hint"].startswith("retry after ")
            anon = await http.post(url, headers={"apikey": stack.anon_key}, json={"kind": "rename_layers"})
            assert anon.status_code == 401


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"run_at": "-infinity"}, "run_at"),  # issue 10: this row used to crash every worker
        ({"run_at": "infinity"}, "run_at"),
        ({"run_at": "4713-01-01 00:00:00+00 BC"}, "run_at"),
        ({"payload": {"prompt": "x", "deep": json.loads("[" * 32 + "]" * 32)}}, "payload"),  # 33 levels
        ({"payload": {"prompt": "x", "n": 10**400}}, "payload"),
        ({"kind": "k" * 10_000}, "kind"),
    ],
)
async def test_hostile_arguments_are_400_naming_the_field(stack: Stack, args: dict[str, Any], field: str) -> None:
    async with signed_in(stack) as (alice, _):
        with pytest.raises(APIError) as err:
            await alice.rpc("enqueue_job", {"kind": "generate_design", "payload": {"prompt": "x"}, **args}).execute()
        assert err.value.code == "22023"
        assert (err.value.message or "").startswith(f"{field}: ")
        assert (await alice.table("jobs").select("id").execute()).data == []


async def _join_jobs_topic(client: AsyncClient, user_id: str, got: Collector) -> Exception | None:
    status = SubscribeStatus()
    options: RealtimeChannelOptions = {"config": {"broadcast": None, "presence": None, "private": True}}
    channel = client.channel(f"jobs:{user_id}", options)
    channel.on_broadcast("job", got)
    channel.on_broadcast("job_event", got)
    await channel.subscribe(status)
    while True:
        state, err = await status.next(WAIT)
        if getattr(state, "value", state) in ("SUBSCRIBED", "CHANNEL_ERROR", "TIMED_OUT"):
            return err if getattr(state, "value", state) != "SUBSCRIBED" else None


async def test_owner_receives_every_change_live_and_nobody_else_can_join(stack: Stack) -> None:
    async with signed_in(stack) as (alice, alice_id), signed_in(stack) as (bob, _), service(stack) as worker:
        got = Collector()
        assert await _join_jobs_topic(alice, alice_id, got) is None
        refused = await _join_jobs_topic(bob, alice_id, Collector())
        assert refused is not None and "Unauthorized" in str(refused)

        job = await enqueue(alice, "rename_layers", {"layers": [{"id": "1:2", "name": "Rectangle"}]})
        claimed: list[dict[str, Any]] = (
            await worker.rpc(
                "claim_jobs", {"worker_id": "it-worker", "kinds": ["rename_layers"], "max_jobs": 50}
            ).execute()
        ).data  # type: ignore[assignment]
        mine = [j for j in claimed if j["id"] == job["id"]]
        assert len(mine) == 1
        for other in claimed:  # leave jobs of concurrent tests as they were
            if other["id"] != job["id"]:
                await worker.rpc("release_jobs", {"worker_id": "it-worker", "job_ids": [other["id"]]}).execute()
        await worker.rpc(
            "report_progress", {"job_id": job["id"], "worker_id": "it-worker", "percent": 50, "message": "half"}
        ).execute()
        await worker.rpc(
            "report_progress", {"job_id": job["id"], "worker_id": "it-worker", "partial": "Hero"}
        ).execute()
        result = {"names": [{"id": "1:2", "name": "Hero background"}]}
        await worker.rpc("complete_job", {"job_id": job["id"], "worker_id": "it-worker", "result": result}).execute()

        seen: list[tuple[str, Any]] = []
        while not any(p.get("status") == "succeeded" for _, p in seen):
            msg = await got.next(WAIT)
            body = msg.get("payload", msg)
            seen.append((body.get("event", ""), body.get("payload", body)))
        statuses = [p["status"] for _, p in seen if "status" in p]
        assert statuses[0] == "queued" and statuses[-1] == "succeeded" and "running" in statuses
        events = [p for _, p in seen if "type" in p]
        assert [(e["type"], e["data"]) for e in events] == [
            ("progress", {"percent": 50, "message": "half"}),
            ("partial", {"text": "Hero"}),
        ]
        assert next(p for _, p in seen if p.get("status") == "succeeded")["result"] == result


async def test_a_spent_budget_is_402_on_the_wire_and_users_read_their_spend(stack: Stack) -> None:
    async with signed_in(stack) as (alice, alice_id), service(stack) as operator:
        plan = "wire_" + alice_id.replace("-", "")[:12]
        await operator.rpc("set_plan", {"plan": plan, "monthly_budget_usd": 0.01}).execute()
        await operator.rpc("set_user_plan", {"user_id": alice_id, "plan": plan}).execute()
        job = await enqueue(alice, "generate_design", {"prompt": "pricing page"})
        usage = {"job_id": job["id"], "worker_id": "w", "attempt": 1, "provider": "anthropic"}
        usage |= {"model": "claude-haiku-4-5", "input_tokens": 0, "output_tokens": 4000, "latency_ms": 800}
        with pytest.raises(APIError) as err:  # only the service role records usage
            await alice.rpc("record_usage", usage).execute()
        assert err.value.code == "42501"
        recorded = (await operator.rpc("record_usage", usage).execute()).data
        assert isinstance(recorded, dict) and recorded["cost_usd"] == 0.02  # 4,000 output tokens at $5 per million
        token = (await alice.auth.get_session()).access_token  # type: ignore[union-attr]
        headers = {"apikey": stack.anon_key, "Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient() as http:
            refused = await http.post(
                f"{stack.url}/rest/v1/rpc/enqueue_job", headers=headers, json={"kind": "generate_design"}
            )
        assert refused.status_code == 402, refused.text
        body = refused.json()
        assert body["code"] == "PT402"
        assert body["message"].startswith(f'budget: plan "{plan}" allows 0.01 USD a month and 0.0200 USD is spent;')
        assert " it resets at " in body["message"]
        spend = (await alice.table("my_spend").select("plan, budget_usd, spent_usd, remaining_usd").execute()).data
        assert spend == [{"plan": plan, "budget_usd": 0.01, "spent_usd": 0.02, "remaining_usd": 0}]
        costs = (await alice.table("job_costs").select("job_id, cost_usd").execute()).data
        assert costs == [{"job_id": job["id"], "cost_usd": 0.02}]
    # Leave no plan behind in a shared stack.
    async with await psycopg.AsyncConnection.connect(stack.database_url, autocommit=True) as conn:
        await conn.execute("delete from public.user_plans where plan = %s", (plan,))
        await conn.execute("delete from public.plans where plan = %s", (plan,))
