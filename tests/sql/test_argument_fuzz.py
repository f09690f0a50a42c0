"""Seeded hostile values against every bounded argument: each is refused (22023, field first) and nothing changes."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from devstack.sqlapi import SqlApi
from tests.sql.bounds_support import Queue, assert_refused, enqueue_call, make_queue, nested, service_call

pytestmark = pytest.mark.sql

SEED = 20261203
ROUNDS = 300


def hostile_timestamp(rng: random.Random) -> str:
    return rng.choice(
        [
            "-infinity",
            "infinity",
            f"{rng.randint(1, 4713):04d}-01-01 00:00:00+00 BC",
            f"{rng.randint(1, 1999):04d}-{rng.randint(1, 12):02d}-01 00:00:00+00",
            f"{rng.randint(2100, 294276)}-06-15 12:00:00+00",
        ]
    )


def hostile_percent(rng: random.Random) -> str:
    return rng.choice(
        ["NaN", "Infinity", "-Infinity", f"1e{rng.randint(3, 130000)}", f"-{rng.random() + 1e-9:.12f}", "100.000001"]
    )


def hostile_ids(rng: random.Random, held: str) -> list[Any]:
    shape = rng.choice(["long", "null", "2d"])
    if shape == "long":
        return [held] * rng.choice([1001, 5000, 100_000])
    if shape == "null":
        ids: list[Any] = [held] * rng.randint(1, 50)
        ids.insert(rng.randrange(len(ids) + 1), None)
        return ids
    return [[held], [held]]


def hostile_kinds(rng: random.Random) -> list[Any]:
    shape = rng.choice(["long", "null", "unknown"])
    if shape == "long":
        return ["rename_layers"] * rng.choice([101, 1000, 100_000])
    if shape == "null":
        return ["rename_layers", None]
    return ["rename_layers", "x" * rng.randint(64, 200_000)]


def hostile_payload(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return nested(rng.randint(33, 2500))
    number = rng.choice([f"1e{rng.randint(309, 100000)}", "-" + "9" * rng.randint(310, 6000)])
    return '{"layers": [{"id": "1", "n": ' + number + "}]}"


Case = Callable[[random.Random, SqlApi, Queue], tuple[Callable[[], object], str]]


def enqueue_run_at(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    return enqueue_call(api, q.user, run_at=hostile_timestamp(rng)), "run_at"


def enqueue_payload(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    return enqueue_call(api, q.user, payload=hostile_payload(rng)), "payload"


def enqueue_kind(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    return enqueue_call(api, q.user, kind="k" * rng.randint(64, 500_000)), "kind"


def defer_run_at(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    query = "select * from defer_job(%s, 'w1', %s::timestamptz, 'provider 429')"
    return service_call(api, query, (q.running["id"], hostile_timestamp(rng))), "run_at"


def progress_percent(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    query = "select report_progress(%s, 'w1', percent => %s::numeric)"
    return service_call(api, query, (q.running["id"], hostile_percent(rng))), "percent"


def job_ids(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    fn = rng.choice(["renew_leases", "release_jobs"])
    query = f"select * from {fn}(worker_id => 'w1', job_ids => %s::uuid[])"
    return service_call(api, query, (hostile_ids(rng, str(q.running["id"])),)), "job_ids"


def kinds(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    query = rng.choice(
        ["select * from claim_jobs(worker_id => 'w3', kinds => %s::text[])", "select next_job_run_at(%s::text[])"]
    )
    return service_call(api, query, (hostile_kinds(rng),)), "kinds"


def older_than(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    value = rng.choice([f"{rng.randint(11, 178_000_000)} years", f"-{rng.randint(1, 10**6)} seconds"])
    return service_call(api, "select purge_finished_jobs(%s::interval)", (value,)), "older_than"


def orphan_grace(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    value = rng.choice([f"{rng.randint(11, 178_000_000)} years", f"-{rng.randint(1, 10**6)} seconds"])
    return service_call(api, "select enqueue_orphaned_artifacts(%s::interval)", (value,)), "grace"


def outbox_ids(rng: random.Random, api: SqlApi, q: Queue) -> tuple[Callable[[], object], str]:
    ids = hostile_ids(rng, "1")
    return service_call(api, "select * from ack_artifact_deletions(%s::bigint[])", (ids,)), "ids"


CASES: list[Case] = [
    enqueue_run_at,
    enqueue_payload,
    enqueue_kind,
    defer_run_at,
    progress_percent,
    job_ids,
    kinds,
    older_than,
    orphan_grace,
    outbox_ids,
]


def test_seeded_hostile_values_are_all_refused_and_change_nothing(api: SqlApi) -> None:
    rng = random.Random(SEED)
    queue = make_queue(api)
    seen: dict[str, int] = {}
    for _ in range(ROUNDS):
        case = rng.choice(CASES)
        call, field = case(rng, api, queue)
        assert_refused(api, call, field)
        seen[case.__name__] = seen.get(case.__name__, 0) + 1
    assert set(seen) == {c.__name__ for c in CASES}  # every case was drawn
    # The queue still works after all of it.
    assert [j["id"] for j in api.claim("w3", kinds=["rename_layers"])] == [queue.queued["id"]]
