"""Provider-wide limits (acquire_model_capacity), shared cooldowns (report_model_rate_limit) and
the fallback chains table (kind_models), as each role, including replicas racing the limiter."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
import pytest

from devstack.sqlapi import SqlApi

ACQUIRE = "select * from acquire_model_capacity(provider => %s, model => %s, tokens => %s)"
REPORT = "select report_model_rate_limit(provider => %s, model => %s, status => %s, retry_after_seconds => %s) as until"


def acquire(api: SqlApi, model: str = "m1", tokens: int = 0, provider: str = "anthropic") -> dict[str, Any]:
    return api.as_service(ACQUIRE, (provider, model, tokens))[0]


def limit(api: SqlApi, model: str = "m1", rpm: int | None = None, tpm: int | None = None) -> None:
    api.admin(
        "insert into public.provider_limits (provider, model, requests_per_minute, tokens_per_minute) "
        "values ('anthropic', %s, %s, %s)",
        (model, rpm, tpm),
    )


def age_bucket(api: SqlApi, model: str, seconds: int) -> None:
    """Move the bucket's last refill back in time, as if `seconds` had passed."""
    api.admin(
        "update public.model_capacity set refilled_at = refilled_at - make_interval(secs => %s) where model = %s",
        (seconds, model),
    )


def test_without_limits_every_request_is_granted_as_unlimited_and_nothing_is_written(api: SqlApi) -> None:
    for _ in range(5):
        assert acquire(api) == {"granted": True, "wait_seconds": 0, "reason": "unlimited"}
    assert api.count("select count(*) from public.model_capacity") == 0


def test_a_model_without_limits_still_cools_down(api: SqlApi) -> None:
    api.as_service(REPORT, ("anthropic", "m1", 529, 30))
    refused = acquire(api)
    assert (refused["granted"], refused["reason"]) == (False, "cooldown") and 25 < refused["wait_seconds"] <= 30
    api.admin("update public.model_capacity set cooldown_until = now() - interval '1 second' where model = 'm1'")
    assert acquire(api)["reason"] == "unlimited"


def test_a_model_without_limits_is_answered_without_waiting_for_its_row_lock(api: SqlApi) -> None:
    """Replicas asking for a model with nothing to count are not serialized on its row: an ask
    while another transaction holds the row is answered at once (it waited before)."""
    api.as_service(REPORT, ("anthropic", "m1", 529, 0))  # the row exists, its cooldown is over
    with SqlApi(api.dbname) as holder, holder.conn.transaction():
        holder.conn.execute("select 1 from public.model_capacity where model = 'm1' for update")
        with api.conn.transaction():
            api.conn.execute("set local lock_timeout = '2s'")
            row = api.conn.execute(ACQUIRE, ("anthropic", "m1", 0)).fetchone()
    assert row is not None and row["reason"] == "unlimited"


def test_requests_per_minute_is_a_bucket_that_refills(api: SqlApi) -> None:
    limit(api, rpm=3)
    assert [acquire(api)["granted"] for _ in range(3)] == [True, True, True]
    refused = acquire(api)
    assert refused["granted"] is False and refused["reason"] == "requests"
    assert 0 < refused["wait_seconds"] <= 20  # one request comes back every 20 s at 3/min
    age_bucket(api, "m1", 20)
    assert acquire(api)["granted"] is True
    assert acquire(api)["granted"] is False
    age_bucket(api, "m1", 3600)  # an idle hour refills to the limit, not beyond
    assert [acquire(api)["granted"] for _ in range(4)] == [True, True, True, False]


def test_tokens_per_minute_counts_the_tokens_asked_for(api: SqlApi) -> None:
    limit(api, tpm=1000)
    assert acquire(api, tokens=600)["granted"] is True
    refused = acquire(api, tokens=600)
    assert refused["granted"] is False and refused["reason"] == "tokens"
    assert 0 < refused["wait_seconds"] <= 12  # 200 missing tokens at 1000/min
    assert acquire(api, tokens=300)["granted"] is True  # a smaller request still fits
    age_bucket(api, "m1", 60)
    # A request larger than the whole budget waits for a full bucket instead of never passing.
    assert acquire(api, tokens=5000)["granted"] is True


def test_limits_are_per_provider_and_model(api: SqlApi) -> None:
    limit(api, "m1", rpm=1)
    assert acquire(api, "m1")["granted"] is True
    assert acquire(api, "m1")["granted"] is False
    assert acquire(api, "m2")["granted"] is True
    assert acquire(api, "m1", provider="gemini")["granted"] is True


def test_a_429_opens_a_shared_cooldown_and_empties_the_bucket(api: SqlApi) -> None:
    limit(api, rpm=60)
    assert acquire(api)["granted"] is True
    until = api.as_service(REPORT, ("anthropic", "m1", 429, 30))[0]["until"]
    refused = acquire(api)
    assert refused["granted"] is False and refused["reason"] == "cooldown"
    assert 0 < refused["wait_seconds"] <= 30
    assert acquire(api, "m2")["granted"] is True  # other models are not affected
    state = api.admin("select * from public.model_capacity where model = 'm1'")[0]
    assert state["cooldown_until"] == until and state["cooldown_status"] == 429 and state["cooldowns"] == 1
    assert state["requests_left"] == 0
    # A shorter cooldown reported later does not cut the longer one short.
    assert api.as_service(REPORT, ("anthropic", "m1", 529, 1))[0]["until"] == until
    # When the cooldown is over, capacity comes back at the configured rate, from empty.
    api.admin(
        "update public.model_capacity set cooldown_until = now() - interval '1 second', "
        "refilled_at = now() - interval '1 second' where model = 'm1'"
    )
    assert acquire(api)["granted"] is True


def test_a_529_cools_down_without_touching_the_bucket(api: SqlApi) -> None:
    limit(api, rpm=2)
    assert acquire(api)["granted"] is True
    api.as_service(REPORT, ("anthropic", "m1", 529, 5))
    assert acquire(api)["reason"] == "cooldown"
    api.admin("update public.model_capacity set cooldown_until = now() - interval '1 second' where model = 'm1'")
    assert acquire(api)["granted"] is True  # the one request left in the bucket


@pytest.mark.parametrize(
    ("query", "args", "message"),
    [
        (ACQUIRE, ("", "m1", 0), "provider: must be a lowercase provider name"),
        (ACQUIRE, ("Anthropic Inc", "m1", 0), "provider: must be a lowercase provider name"),
        (ACQUIRE, (None, "m1", 0), "provider: must be a lowercase provider name"),
        (ACQUIRE, ("anthropic", "", 0), "model: must be a model name of 1 to 200 characters"),
        (ACQUIRE, ("anthropic", "x" * 201, 0), "model: must be a model name of 1 to 200 characters"),
        (ACQUIRE, ("anthropic", "m1", -1), "tokens: must be between 0 and 1000000000, got -1"),
        (ACQUIRE, ("anthropic", "m1", None), "tokens: must be between 0 and 1000000000, got null"),
        (REPORT, ("anthropic", "m1", 500, 5), "status: must be 429 (rate limited) or 529 (overloaded), got 500"),
        (REPORT, ("anthropic", "m1", None, 5), "status: must be 429 (rate limited) or 529 (overloaded), got null"),
        (REPORT, ("anthropic", "m1", 429, -1), "retry_after_seconds: must be between 0 and 3600, got -1"),
        (REPORT, ("anthropic", "m1", 429, 3601), "retry_after_seconds: must be between 0 and 3600, got 3601"),
        (REPORT, ("anthropic", "m1", 429, float("nan")), "retry_after_seconds: must be between 0 and 3600, got NaN"),
        (REPORT, ("", "m1", 429, 5), "provider: must be a lowercase provider name"),
    ],
)
def test_bad_arguments_are_refused_by_name_and_change_nothing(
    api: SqlApi, query: str, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        api.as_service(query, args)
    assert str(info.value).startswith(message), str(info.value)
    assert api.count("select count(*) from public.model_capacity") == 0


@pytest.mark.parametrize("role", ["anon", "authenticated"])
def test_only_the_service_role_reaches_limits_cooldowns_and_chains(api: SqlApi, role: str) -> None:
    uid = api.create_user()

    def call(query: str, args: Any = None) -> Any:
        if role == "anon":
            return api.as_anon(query, args)
        return api.as_user(uid, query, args)

    for query, args in [
        (ACQUIRE, ("anthropic", "m1", 0)),
        (REPORT, ("anthropic", "m1", 429, 5)),
        ("select * from public.provider_limits", None),
        ("select * from public.model_capacity", None),
        ("select * from public.kind_models", None),
        ("insert into public.kind_models values ('generate_design', 1, 'anthropic', 'm1')", None),
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            call(query, args)
    assert api.count("select count(*) from public.model_capacity") == 0


def test_the_service_role_reads_state_but_writes_it_only_through_the_rpcs(api: SqlApi) -> None:
    limit(api, rpm=10)
    acquire(api)
    assert len(api.as_service("select * from public.model_capacity")) == 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        api.as_service("update public.model_capacity set cooldown_until = null")
    api.as_service("insert into public.provider_limits values ('anthropic', 'm9', 10, null)")
    api.as_service("insert into public.kind_models values ('generate_design', 1, 'anthropic', 'm9')")
    assert api.as_service("select model from public.kind_models")[0]["model"] == "m9"


def test_kind_models_rejects_unknown_kinds_bad_positions_and_duplicates(api: SqlApi) -> None:
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        api.admin("insert into public.kind_models values ('no_such_kind', 1, 'anthropic', 'm1')")
    with pytest.raises(psycopg.errors.CheckViolation):
        api.admin("insert into public.kind_models values ('generate_design', 0, 'anthropic', 'm1')")
    api.admin("insert into public.kind_models values ('generate_design', 1, 'anthropic', 'm1')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        api.admin("insert into public.kind_models values ('generate_design', 2, 'anthropic', 'm1')")


def test_replicas_racing_the_limiter_never_exceed_it(api: SqlApi) -> None:
    """Eight connections (replicas) ask at once, many times: the grants never exceed the bucket
    plus what refilled while they raced, and the bucket never goes below zero."""
    rpm = 40
    limit(api, rpm=rpm)
    granted: list[bool] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def replica() -> None:
        with SqlApi(api.dbname) as mine:
            start.wait()
            for _ in range(15):
                row = acquire(mine)
                with lock:
                    granted.append(bool(row["granted"]))

    began = time.monotonic()
    threads = [threading.Thread(target=replica) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - began
    assert len(granted) == 120
    # Not a timing assert: the bound grows with however long the race took.
    assert rpm <= sum(granted) <= rpm + int(elapsed * rpm / 60) + 1
    assert api.admin("select requests_left from public.model_capacity")[0]["requests_left"] >= 0
