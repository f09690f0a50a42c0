"""The attack suite (bench/attack) in short, against a gateway over a fresh clone of the migrated
database: every count must be 0. And the suite must see what it is there to see: with a policy
that lets every user read every job, or a worker function granted to users, it counts leaks and
findings (so a 0 is not a blind 0)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from bench.attack import forgery
from bench.attack.runner import PHASES, Outcome, attack
from bench.attack.target import Target
from devstack import keys, paths, signing_keys
from tests.integration.worker_support import Gateway, cloned_gateway

pytestmark = pytest.mark.integration

SEED = 20261204
FUZZ_COUNT = 120  # the fixed cases (~450) come on top


def _target(gw: Gateway) -> Target:
    return Target(
        url=gw.url,
        client_key=keys.load_or_create().publishable_key,
        secret_key=gw.secret_key,
        database_url=paths.database_url(gw.database),
        local=True,
        extra={"mint": forgery.local_minter(signing_keys.read)},
    )


@pytest.fixture
def gw(template_db: str) -> Iterator[Gateway]:
    with cloned_gateway("attack") as running:
        yield running


def _run(gw: Gateway, *phases: str) -> Outcome:
    return attack(_target(gw), count=FUZZ_COUNT, seed=SEED, log=lambda _: None, phases=phases or PHASES)


def test_the_suite_counts_no_5xx_leak_breach_write_or_crash(gw: Gateway) -> None:
    outcome = _run(gw)
    assert outcome.counts["requests"] >= 500
    assert set(outcome.per_category) >= {"forgery", "cross-tenant", "privileges", "fuzz-http", "fuzz-ws"}
    nonzero = {k: v for k, v in outcome.counts.items() if k != "requests" and v}
    assert nonzero == {}, outcome.findings
    assert outcome.notes == []


def test_too_wide_policies_are_counted_as_leaks_and_unexpected_writes(gw: Gateway) -> None:
    with psycopg.connect(paths.admin_url(gw.database), autocommit=True) as conn:
        conn.execute('create policy "too wide" on public.jobs for select to authenticated using (true)')
        conn.execute("grant update (priority) on public.jobs to authenticated")
        conn.execute('create policy "too wide write" on public.jobs for update to authenticated using (true)')
    outcome = _run(gw, "cross-tenant")
    assert outcome.counts["leaks"] > 0
    assert any(leak["category"] == "cross-tenant" for leak in outcome.findings["leaks"])
    assert "public.jobs" in outcome.findings["unexpected_writes"]


def test_a_worker_function_granted_to_users_is_a_finding_and_a_breach(gw: Gateway) -> None:
    with psycopg.connect(paths.admin_url(gw.database), autocommit=True) as conn:
        conn.execute("grant execute on function public.reap_expired_leases() to authenticated")
    outcome = _run(gw, "privileges")
    assert [f["function"] for f in outcome.findings["grant_findings"]] == ["public.reap_expired_leases()"]
    assert any(b["case"] == "rpc reap_expired_leases as authenticated" for b in outcome.findings["breaches"])


def test_a_policy_letting_users_send_to_any_topic_is_a_breach(gw: Gateway) -> None:
    with psycopg.connect(paths.admin_url(gw.database), autocommit=True) as conn:
        conn.execute(
            'create policy "anyone sends anywhere" on realtime.messages for insert to authenticated with check (true)'
        )
    outcome = _run(gw, "cross-tenant")
    assert "B's broadcast reached A's private topic" in [b["case"] for b in outcome.findings["breaches"]]
