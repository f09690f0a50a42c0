"""REST and RPC templates for the gateway fuzz test: what supabase-js/py, the plugin and the
worker send to ``/rest/v1`` (tables, the dashboard views, every public function)."""

from __future__ import annotations

import random
import uuid

from devstack.tests.integration.fuzz_model import FuzzRequest, Subjects

VIEWS = ("active_jobs", "job_stats", "pending_jobs_queue")
CASTS = ("id::text", "id::badtype", "payload::int", "created_at::date", "kind::text[]", "payload->>x::\u0000")


def _tables(rng: random.Random, s: Subjects, job: str) -> list[FuzzRequest]:
    view = rng.choice(VIEWS)
    return [
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("select", "id,kind,status"), ("order", "created_at.desc")]),
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("select", f"id,{rng.choice(CASTS)}")]),
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("select", "*,job_events(*)"), ("job_events.limit", "2")]),
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("payload->>prompt", "eq.x"), ("user_id", f"eq.{s.uid}")]),
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("id", f"eq.{job}")], headers={"accept": b"text/csv"}),
        FuzzRequest("rest", "GET", "/rest/v1/jobs", [("limit", "1")], headers={"prefer": b"count=exact"}),
        FuzzRequest("rest", "GET", "/rest/v1/job_events", [("job_id", f"eq.{job}"), ("limit", "5")]),
        FuzzRequest("rest", "GET", "/rest/v1/job_kinds", [("select", "*")]),
        FuzzRequest("rest", "GET", f"/rest/v1/{view}", [("limit", "3")]),
        FuzzRequest("rest", "GET", f"/rest/v1/{view}", [("select", f"*,{rng.choice(CASTS)}")]),
        FuzzRequest("rest", "HEAD", "/rest/v1/jobs", [("status", "eq.queued")]),
        FuzzRequest("rest", "POST", "/rest/v1/jobs", body={"kind": "rename_layers", "payload": {"layers": []}}),
        FuzzRequest(
            "rest",
            "POST",
            "/rest/v1/jobs",
            [("columns", "kind,payload"), ("on_conflict", "id")],
            body=[{"kind": "generate_design", "payload": {"prompt": "x"}}],
            headers={"prefer": b"return=representation,resolution=merge-duplicates"},
        ),
        FuzzRequest("rest", "PATCH", "/rest/v1/jobs", [("id", f"eq.{job}")], body={"status": "succeeded"}),
        FuzzRequest("rest", "DELETE", "/rest/v1/jobs", [("id", f"eq.{job}")]),
        # Writes to views that are not updatable: PostgREST's 405, never PostgreSQL's 55000 (500).
        FuzzRequest("rest", "POST", f"/rest/v1/{view}", body={"kind": "x"}, creds=rng.choice(["user", "secret"])),
        FuzzRequest("rest", "PATCH", f"/rest/v1/{view}", [("kind", "eq.x")], body={"kind": "y"}),
        FuzzRequest("rest", "DELETE", f"/rest/v1/{view}", [("kind", "eq.x")], creds=rng.choice(["user", "secret"])),
        FuzzRequest("rest", "GET", "/rest/v1/no_such_table"),
        FuzzRequest("rest", "GET", "/rest/v1/"),
    ]


def _functions(rng: random.Random, s: Subjects, job: str) -> list[FuzzRequest]:
    worker = {"worker_id": "fuzz"}
    return [
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/enqueue_job",
            body={"kind": "rename_layers", "payload": {"layers": [{"id": "1:2", "name": "a"}]}, "priority": 0},
        ),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/enqueue_job",
            body={
                "kind": "generate_design",
                "payload": {"prompt": "x"},
                "idempotency_key": f"k{rng.randrange(100)}",
                "run_at": "2030-01-01T00:00:00Z",
                "depends_on": job,
            },
        ),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/cancel_job", body={"job_id": job}),
        FuzzRequest("rpc", "GET", "/rest/v1/rpc/enqueue_job", [("kind", "rename_layers")]),
        FuzzRequest("rpc", "GET", "/rest/v1/rpc/next_job_run_at", [("kinds", "{rename_layers}")]),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/claim_jobs",
            body={**worker, "kinds": ["rename_layers"], "max_jobs": 0, "lease_seconds": 30},
            creds=rng.choice(["secret", "user"]),
        ),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/report_progress", body={**worker, "job_id": job, "percent": 50}),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/renew_leases", body={**worker, "job_ids": [job]}),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/release_jobs", body={**worker, "job_ids": [job]}, creds="secret"),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/complete_job", body={**worker, "job_id": job, "result": {}}),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/complete_jobs",
            body={**worker, "completions": [{"job_id": job, "result": {}}]},
            creds="secret",
        ),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/fail_job",
            body={**worker, "job_id": job, "error": {"message": "x"}, "retryable": False},
            creds="secret",
        ),
        FuzzRequest(
            "rpc",
            "POST",
            "/rest/v1/rpc/defer_job",
            body={**worker, "job_id": job, "run_at": "2030-01-01T00:00:00Z", "reason": "x"},
            creds="secret",
        ),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/purge_finished_jobs", body={"older_than": "7 days"}),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/reap_expired_leases", body={}),
        FuzzRequest("rpc", "POST", "/rest/v1/rpc/no_such_function", body={}),
    ]


def templates(rng: random.Random, s: Subjects) -> list[FuzzRequest]:
    job = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return _tables(rng, s, job) + _functions(rng, s, job)
