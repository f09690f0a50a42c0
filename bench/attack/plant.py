"""User A's data, every piece carrying a unique canary string, and the checksums that show whether
the attack wrote anything.

Planted as A (enqueue_job under A's token: payload and idempotency key) and, with the secret key,
as the worker would: one job claimed, given a progress event and a result, and an object uploaded
to A's folder of job-artifacts. Claiming uses ``claim_jobs`` restricted to one kind and releases
any job that is not A's at once (attempt given back), so on a shared staging stack nobody's job is
held; still, run it against a project with no real users.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from bench.attack.target import Target, User

BUCKET = "job-artifacts"
KIND = "rename_layers"
WORKER = "attack-suite"


@dataclass
class Planted:
    canaries: list[str] = field(default_factory=list)
    job_ids: list[str] = field(default_factory=list)  # A's jobs
    object_names: list[str] = field(default_factory=list)  # A's objects (bucket-relative)

    def canary(self, seed: int) -> str:
        value = f"cnry{seed}x{uuid.uuid4().hex[:16]}"
        self.canaries.append(value)
        return value


def _ok(answer: httpx.Response, what: str) -> Any:
    if answer.status_code >= 300:
        raise RuntimeError(f"planting {what} failed: {answer.status_code} {answer.text[:300]}")
    return answer.json() if answer.content else None


def plant(target: Target, client: httpx.Client, a: User, seed: int) -> Planted:
    planted = Planted()
    rpc = f"{target.url}/rest/v1/rpc"
    for _ in range(2):
        # Distinct canaries per field: a request naming one (a filter on it) must still see no other.
        name, note, key = planted.canary(seed), planted.canary(seed), planted.canary(seed)
        body = {
            "kind": KIND,
            "payload": {"layers": [{"id": "1:1", "name": name}], "note": note},
            "idempotency_key": key,
        }
        job = _ok(client.post(f"{rpc}/enqueue_job", json=body, headers=target.headers(a.token)), "a job")
        planted.job_ids.append(job["id"])
    if target.secret_key:
        _finish_one(target, client, planted, seed)
        c = planted.canary(seed)
        name = f"{a.id}/{planted.job_ids[0]}/{c}.png"
        _ok(
            client.post(
                f"{target.url}/storage/v1/object/{BUCKET}/{name}",
                content=b"\x89PNG\r\n\x1a\n" + f"artifact {c}".encode(),
                headers=target.service_headers(**{"Content-Type": "image/png"}),
            ),
            "an object",
        )
        planted.object_names.append(name)
    return planted


def _finish_one(target: Target, client: httpx.Client, planted: Planted, seed: int) -> None:
    """Claim A's first job as a worker would, report progress and complete it, canaries in both."""
    rpc = f"{target.url}/rest/v1/rpc"
    headers = target.service_headers()
    mine = planted.job_ids[0]
    for _ in range(20):
        claimed = _ok(
            client.post(
                f"{rpc}/claim_jobs", json={"worker_id": WORKER, "kinds": [KIND], "max_jobs": 10}, headers=headers
            ),
            "a claim",
        )
        others = [j["id"] for j in claimed if j["id"] != mine]
        if others:
            client.post(f"{rpc}/release_jobs", json={"worker_id": WORKER, "job_ids": others}, headers=headers)
        if any(j["id"] == mine for j in claimed):
            break
    else:
        raise RuntimeError("planting: A's job was never claimed")
    c = planted.canary(seed)
    progress = {"job_id": mine, "worker_id": WORKER, "percent": 50, "message": c, "partial": planted.canary(seed)}
    _ok(client.post(f"{rpc}/report_progress", json=progress, headers=headers), "progress")
    c = planted.canary(seed)
    result = {"job_id": mine, "worker_id": WORKER, "result": {"renamed": [{"id": "1:1", "name": c}]}}
    _ok(client.post(f"{rpc}/complete_job", json=result, headers=headers), "a result")


# Rows the attack could touch: A's, and anything created while it ran except B's own new jobs
# and their traces (B may submit jobs: the fuzzer's well-formed enqueue_job calls do). Other users'
# old rows are not compared: the reaper and retention may rewrite them meanwhile.
_NOT_B_NEW = "user_id = %(a)s or (created_at >= %(since)s and user_id <> %(b)s)"
CHECKED = {
    "public.jobs": _NOT_B_NEW,
    "public.job_events": _NOT_B_NEW,
    "public.usage_ledger": "user_id = any(%(users)s) or created_at >= %(since)s",
    "public.job_result_cache": _NOT_B_NEW,
    "public.user_plans": "user_id = any(%(users)s) or updated_at >= %(since)s",
    "public.artifact_deletions": "created_at >= %(since)s or name like any(%(prefixes)s)",
    "storage.objects": "created_at >= %(since)s or name like any(%(prefixes)s)",
    "storage.buckets": "true",
    "public.job_kinds": "true",
    "public.plans": "true",
    "public.plan_kind_limits": "true",
    "public.kind_models": "true",
    "public.model_prices": "true",
    "public.provider_limits": "true",
}


def checksums(database_url: str, users: list[str], since: str) -> dict[str, str]:
    """md5 over the checked rows of every table (sorted by their text form); ``users`` is [A, B]."""
    ids = [uuid.UUID(u) for u in users]  # A, B
    params = {"users": ids, "a": ids[0], "b": ids[1], "since": since, "prefixes": [f"{u}/%" for u in users]}
    out: dict[str, str] = {}
    with psycopg.connect(database_url, autocommit=True) as conn:
        for table, where in CHECKED.items():
            rows = conn.execute(f"select t::text from {table} t where {where} order by 1", params).fetchall()
            digest = hashlib.md5(usedforsecurity=False)
            for (row,) in rows:
                digest.update(row.encode() + b"\n")
            out[table] = f"{len(rows)}:{digest.hexdigest()}"
    return out


def database_now(database_url: str) -> str:
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute("select now()::text").fetchone()
    assert row is not None
    return str(row[0])
