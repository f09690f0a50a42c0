"""The queue through its SQL API alone: two users submit jobs, a worker claims, completes, fails,
retries; a user cancels; limits and isolation refuse what they must. Every state transition is
printed. Runs against the local cluster (`python -m devstack db up`).

    .venv/bin/python scripts/demo_sql.py
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from rich.console import Console

from devstack import cli, paths
from devstack.sqlapi import Row, SqlApi

ALICE = uuid.UUID("a0000000-0000-4000-8000-00000000000a")
BOB = uuid.UUID("b0000000-0000-4000-8000-00000000000b")
NAMES = {ALICE: "alice", BOB: "bob"}

console = Console(highlight=False)


class Transitions:
    """Prints a job's status each time it changes, with who caused it."""

    def __init__(self, api: SqlApi) -> None:
        self.api = api
        self.seen: dict[uuid.UUID, str] = {}

    def note(self, row: Row, by: str, note: str = "") -> None:
        before = self.seen.get(row["id"], "·")
        self.seen[row["id"]] = row["status"]
        arrow = f"{before} → {row['status']}" if before != row["status"] else f"{row['status']} (unchanged)"
        owner = NAMES.get(row["user_id"], "?")
        console.print(
            f"  [bold]{str(row['id'])[:8]}[/] {owner:<5} {row['kind']:<16} {arrow:<22} "
            f"a={row['attempts']} by {by:<9} {note}"
        )

    def refresh(self, job_id: uuid.UUID, by: str, note: str = "") -> None:
        self.note(self.api.job(job_id), by, note)


def refused(what: str, fn: Any) -> None:
    try:
        fn()
    except psycopg.Error as exc:
        console.print(
            f"  [red]refused[/] {what}: [{exc.sqlstate}] {exc.diag.message_primary}"
            + (f" — hint: {exc.diag.message_hint}" if exc.diag.message_hint else "")
        )
    else:
        raise SystemExit(f"demo: {what} should have been refused")


def main() -> None:
    console.rule("local database")
    cli.db_up()
    api = SqlApi(paths.DATABASE)
    for uid, name in NAMES.items():  # seed.sql creates them on a fresh stack; make sure
        api.admin(
            "insert into auth.users (id, aud, role, email) values (%s, 'authenticated', 'authenticated', %s) "
            "on conflict (id) do nothing",
            (uid, f"{name}@example.test"),
        )
    t = Transitions(api)
    run = uuid.uuid4().hex[:6]  # keeps idempotency keys fresh across demo runs

    console.rule("users submit jobs (as authenticated, JWT claims set as PostgREST does)")
    design = api.enqueue(ALICE, "generate_design", {"prompt": "pricing page, 3 tiers"}, idempotency_key=f"design-{run}")
    t.note(design, "alice", "enqueue_job")
    rename = api.enqueue(
        ALICE, "rename_layers", {"layers": [{"id": "1:2", "name": "Rectangle 12"}]}, depends_on=design["id"]
    )
    t.note(rename, "alice", "enqueue_job, depends_on the design")
    edits = api.enqueue(BOB, "generate_edits", {"text": "Buy now", "variants": 3})
    t.note(edits, "bob", "enqueue_job")
    api.set_user_plan(BOB, "pro")  # an operator's call: the pro plan's jobs get priority 50
    image = api.enqueue(BOB, "generate_image", {"prompt": "a calm mountain lake"})
    t.note(image, "bob", "enqueue_job on plan pro: priority 50")
    again = api.enqueue(ALICE, "generate_design", {"prompt": "pricing page, 3 tiers"}, idempotency_key=f"design-{run}")
    console.print(f"  same idempotency key → same job: {again['id'] == design['id']}")

    console.rule("isolation and validation")
    console.print(
        f"  bob sees {len(api.as_user(BOB, 'select id from public.jobs where user_id = %s', (ALICE,)))} of alice's jobs"
    )
    refused("anon enqueues", lambda: api.as_anon("select enqueue_job('rename_layers')"))
    refused("unknown kind", lambda: api.enqueue(ALICE, "render_video"))
    refused("payload is an array", lambda: api.as_user(ALICE, "select enqueue_job('rename_layers', '[1]')"))
    refused("bob cancels alice's job", lambda: api.as_user(BOB, "select cancel_job(%s)", (design["id"],)))
    refused("a user claims jobs", lambda: api.as_user(ALICE, "select claim_jobs('sneaky')"))

    console.rule("a worker (service role) claims, reports, completes")
    for row in api.claim("worker-1", max_jobs=10, lease_seconds=60):
        t.note(row, "worker-1", f"claim_jobs, lease until {row['lease_expires_at']:%H:%M:%S}")
    api.as_service("select report_progress(%s, 'worker-1', 50, 'laying out tiers')", (design["id"],))
    t.refresh(design["id"], "worker-1", "report_progress 50%")
    done = api.as_service(
        "select * from complete_job(%s, 'worker-1', %s)",
        (design["id"], json.dumps({"type": "FRAME", "name": "Pricing"})),
    )[0]
    t.note(done, "worker-1", "complete_job")
    t.refresh(rename["id"], "trigger", "dependency succeeded → queued")

    console.rule("failures: retry with backoff, then a permanent failure; deferral")
    failed = api.as_service(
        "select * from fail_job(%s, 'worker-1', %s, true)",
        (image["id"], json.dumps({"type": "provider_error", "message": "upstream 503"})),
    )[0]
    t.note(failed, "worker-1", f"fail_job retryable → retry at {failed['run_at']:%H:%M:%S}")
    deferred = api.as_service(
        "select * from defer_job(%s, 'worker-1', now() + interval '20 seconds', 'anthropic 429')", (edits["id"],)
    )[0]
    t.note(deferred, "worker-1", "defer_job: provider 429, attempt given back")
    api.admin("update public.jobs set run_at = now() where id = %s", (image["id"],))
    for row in api.claim("worker-2", max_jobs=10):
        t.note(row, "worker-2", "claim_jobs (retry / dependent)")
    final = api.as_service(
        "select * from fail_job(%s, 'worker-2', %s, false)",
        (image["id"], json.dumps({"type": "invalid_request", "message": "prompt rejected"})),
    )[0]
    t.note(final, "worker-2", "fail_job not retryable")

    console.rule("cancellation")
    t.note(
        api.as_user(ALICE, "select * from cancel_job(%s)", (rename["id"],))[0],
        "alice",
        "cancel_job (running → requested)",
    )
    t.note(
        api.as_service("select * from release_jobs('worker-2', null)")[0], "worker-2", "release_jobs honours the cancel"
    )
    t.note(api.as_user(BOB, "select * from cancel_job(%s)", (edits["id"],))[0], "bob", "cancel_job (queued)")

    console.rule("realtime: what the users' private topics received")
    rows = api.admin(
        "select topic, event, count(*) as n from realtime.messages "
        "where coalesce(payload->>'job_id', payload->>'id') = any(%s) group by 1, 2 order by 1, 2",
        ([str(j["id"]) for j in (design, rename, edits, image)],),
    )
    for r in rows:
        console.print(f"  {r['topic'][:14]}…  {r['event']:<10} {r['n']} messages")
    api.__exit__()


if __name__ == "__main__":
    main()
