"""(b) Cross-tenant: user B, with a valid token, against user A's data through every surface and
filter form. Reads must come back without a byte of A's data (canaries), writes must change
nothing (checksums), and what must be refused must be."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx

from bench.attack import surfaces
from bench.attack.plant import BUCKET, KIND, Planted
from bench.attack.recorder import Recorder
from bench.attack.surfaces import send, send_raw
from bench.attack.target import Target, User

CATEGORY = "cross-tenant"
SPOOF = "spoofedbyb"  # in every message B sends toward A's topic; A's listener must never hear it
# Every relation a signed-in user can name (the catalog adds any others when DATABASE_URL is set).
RELATIONS = [
    "active_jobs",
    "cost_per_kind",
    "job_costs",
    "job_stats",
    "my_spend",
    "pending_jobs_queue",
    "spend_by_user_month",
    "tokens_per_kind",
    "jobs",
    "job_events",
    "job_kinds",
    "usage_ledger",
    "job_result_cache",
    "user_plans",
    "plans",
    "plan_kind_limits",
    "model_prices",
    "provider_limits",
    "model_capacity",
    "kind_models",
    "artifact_deletions",
]


def read_queries(a: User, planted: Planted) -> list[tuple[str, str, dict[str, str]]]:
    """(name, path and query, extra headers) of GETs that aim at A's rows."""
    ids = ",".join(planted.job_ids)
    first = planted.job_ids[0]
    note, key = planted.canaries[1], planted.canaries[2]  # the first job's payload note and idempotency key
    q = urllib.parse.quote
    return [
        ("select=*", "jobs?select=*", {}),
        ("id=eq.A", f"jobs?id=eq.{first}", {}),
        ("user_id=eq.A", f"jobs?user_id=eq.{a.id}", {}),
        ("or=(user_id.eq.A,...)", f"jobs?or=(user_id.eq.{a.id},id.eq.{first})", {}),
        ("or with and()", f"jobs?or=(and(user_id.eq.{a.id},status.neq.x),id.in.({ids}))", {}),
        ("not.eq B", "jobs?user_id=not.eq.00000000-0000-0000-0000-000000000000", {}),
        ("not.is.null", "jobs?id=not.is.null", {}),
        ("in.(A ids)", f"jobs?id=in.({ids})", {}),
        ("JSON ->> filter on A's canary", f"jobs?payload->>note=eq.{note}", {}),
        ("JSON -> path select", "jobs?select=p:payload->layers->0->>name,r:result->renamed", {}),
        ("JSON like on payload", f"jobs?payload->>note=like.{q('cnry*')}", {}),
        ("aliases", "jobs?select=who:user_id,what:payload,out:result,key:idempotency_key", {}),
        ("embedded job_events", "jobs?select=*,job_events(*)", {}),
        ("job_events of A's job", f"job_events?job_id=eq.{first}", {}),
        ("job_events embedding jobs", "job_events?select=*,jobs(*)", {}),
        ("count=exact", f"jobs?id=in.({ids})", {"Prefer": "count=exact"}),
        ("count=planned", "jobs?select=*", {"Prefer": "count=planned"}),
        ("order and range", "jobs?order=created_at.desc&limit=1000&offset=0", {"Range": "0-999"}),
        ("single object", f"jobs?id=eq.{first}", {"Accept": "application/vnd.pgrst.object+json"}),
        ("CSV", "jobs?select=*", {"Accept": "text/csv"}),
        ("idempotency key guess", f"jobs?idempotency_key=eq.{key}", {}),
        ("usage of A", f"usage_ledger?user_id=eq.{a.id}", {}),
        ("plan of A", f"user_plans?user_id=eq.{a.id}", {}),
        ("artifact outbox", f"artifact_deletions?name=like.{q(a.id + '*')}", {}),
        ("result cache", f"job_result_cache?user_id=eq.{a.id}", {}),
    ]


def write_queries(a: User, planted: Planted) -> list[tuple[str, str, str, Any, dict[str, str]]]:
    """(name, method, path, json body, headers) of writes at A's rows: all must change nothing."""
    first = planted.job_ids[0]
    rep = {"Prefer": "return=representation"}
    job = {"id": first, "user_id": a.id, "kind": KIND, "payload": {}, "status": "cancelled"}
    return [
        ("PATCH A's job", "PATCH", f"jobs?id=eq.{first}", {"status": "cancelled"}, rep),
        ("PATCH all", "PATCH", "jobs", {"priority": 100}, rep),
        ("PATCH A's priority via or=", "PATCH", f"jobs?or=(user_id.eq.{a.id},id.eq.{first})", {"priority": 100}, rep),
        ("DELETE A's job", "DELETE", f"jobs?id=eq.{first}", None, rep),
        ("DELETE via or=", "DELETE", f"jobs?or=(user_id.eq.{a.id})", None, rep),
        ("INSERT a job for A", "POST", "jobs", job, rep),
        (
            "upsert over A's job",
            "POST",
            "jobs?on_conflict=id",
            job,
            {**rep, "Prefer": "resolution=merge-duplicates,return=representation"},
        ),
        (
            "INSERT an event on A's job",
            "POST",
            "job_events",
            {"job_id": first, "user_id": a.id, "type": "log", "data": {}},
            rep,
        ),
        ("PATCH A's plan", "PATCH", f"user_plans?user_id=eq.{a.id}", {"plan": "pro"}, rep),
        ("INSERT a plan for B", "POST", "user_plans", {"user_id": a.id, "plan": "pro"}, rep),
        ("DELETE usage", "DELETE", "usage_ledger", None, rep),
    ]


def run(
    target: Target,
    client: httpx.Client,
    rec: Recorder,
    a: User,
    b: User,
    planted: Planted,
    relations: list[tuple[str, str]],
) -> None:
    rest = f"{target.url}/rest/v1"
    hb = target.headers(b.token)
    for name, path, extra in read_queries(a, planted):
        send(client, rec, CATEGORY, f"GET {name}", "GET", f"{rest}/{path}", headers={**hb, **extra})
        send(
            client,
            rec,
            CATEGORY,
            f"HEAD {name}",
            "HEAD",
            f"{rest}/{path}",
            headers={**hb, "Prefer": "count=exact", **extra},
        )
    for relation, column in relations:
        send(client, rec, CATEGORY, f"GET {relation} select=*", "GET", f"{rest}/{relation}?select=*", headers=hb)
        # Writes to every table and view (filtered, as hosted's safeupdate wants): the checksums judge.
        where = f"{rest}/{relation}?{column}=not.is.null"
        send(client, rec, CATEGORY, f"DELETE {relation}", "DELETE", where, headers=hb)
        send(client, rec, CATEGORY, f"PATCH {relation}", "PATCH", where, json={column: None}, headers=hb)
        send(client, rec, CATEGORY, f"POST {relation}", "POST", f"{rest}/{relation}", json={}, headers=hb)
    for name, method, path, body, extra in write_queries(a, planted):
        send(client, rec, CATEGORY, name, method, f"{rest}/{path}", json=body, headers={**hb, **extra})
    for job_id in planted.job_ids:
        calls: list[Probe] = [
            ("rpc cancel_job(A's job)", "POST", f"{rest}/rpc/cancel_job", {"json": {"job_id": job_id}}, True),
            ("rpc cancel_job(A's job), GET form", "GET", f"{rest}/rpc/cancel_job?job_id={job_id}", {}, True),
        ]
        for fn, body in [
            ("report_progress", {"job_id": job_id, "worker_id": "x", "percent": 1}),
            ("complete_job", {"job_id": job_id, "worker_id": "x", "result": {}}),
            ("fail_job", {"job_id": job_id, "worker_id": "x", "error": {}}),
            ("release_jobs", {"worker_id": "attack-suite", "job_ids": [job_id]}),
        ]:
            calls.append((f"rpc {fn}(A's job) as B", "POST", f"{rest}/rpc/{fn}", {"json": body}, True))
        # A dependency on A's job would tell B how A's job ends (waiting → queued or cancelled).
        depends = {"kind": KIND, "payload": {"layers": []}, "depends_on": job_id}
        calls.append(
            ("rpc enqueue_job depending on A's job", "POST", f"{rest}/rpc/enqueue_job", {"json": depends}, True)
        )
        _probe(client, rec, hb, calls)
    # The idempotency key of A's second job, reused by B: B gets a job of its own (a legitimate
    # write), never A's. B's job now holds that string, so it stops being a canary afterwards.
    key = planted.canaries[5]
    reuse = {"kind": KIND, "payload": {"layers": []}, "idempotency_key": key}
    _probe(
        client,
        rec,
        hb,
        [("rpc enqueue_job with A's idempotency key", "POST", f"{rest}/rpc/enqueue_job", {"json": reuse}, False)],
    )
    rec.canaries.remove(key)
    _storage(target, client, rec, a, b, planted)
    _broadcasts(target, client, rec, a, b)
    surfaces.realtime_join(target, rec, CATEGORY, "B joins private jobs:A", a.id, b.token, must_refuse=True)
    surfaces.realtime_join(
        target, rec, CATEGORY, "B joins private jobs:A (upper case)", a.id.upper(), b.token, must_refuse=True
    )
    surfaces.realtime_join(target, rec, CATEGORY, "anon joins private jobs:A", a.id, None, must_refuse=True)


Probe = tuple[str, str, str, dict[str, Any], bool]  # name, method, url, httpx arguments, must refuse


def _probe(client: httpx.Client, rec: Recorder, headers: dict[str, str], probes: list[Probe]) -> None:
    for name, method, url, kwargs, must_refuse in probes:
        extra = kwargs.pop("headers", {})
        send(client, rec, CATEGORY, name, method, url, headers={**headers, **extra}, must_refuse=must_refuse, **kwargs)


def _storage(target: Target, client: httpx.Client, rec: Recorder, a: User, b: User, planted: Planted) -> None:
    storage = f"{target.url}/storage/v1"
    hb = target.headers(b.token)
    lists = [f"{a.id}/", a.id, "", f"{b.id}/../{a.id}/", f"{a.id}//", f"/{a.id}/", "%", "_"]
    probes: list[Probe] = [
        (
            f"storage list prefix {p!r}",
            "POST",
            f"{storage}/object/list/{BUCKET}",
            {"json": {"prefix": p, "limit": 1000, "search": ""}},
            False,
        )
        for p in lists
    ]
    png = {"Content-Type": "image/png"}
    for name in planted.object_names:
        probes += [
            (f"storage GET {form or 'object/'}A's object", "GET", f"{storage}/object/{form}{BUCKET}/{name}", {}, True)
            for form in ("authenticated/", "", "public/", "info/", "info/authenticated/")
        ]
        moved = {"bucketId": BUCKET, "sourceKey": name, "destinationKey": f"{b.id}/stolen.png"}
        probes += [
            (
                "storage sign A's object",
                "POST",
                f"{storage}/object/sign/{BUCKET}/{name}",
                {"json": {"expiresIn": 60}},
                True,
            ),
            (
                "storage sign many",
                "POST",
                f"{storage}/object/sign/{BUCKET}",
                {"json": {"expiresIn": 60, "paths": [name]}},
                False,
            ),
            (
                "storage overwrite A's object",
                "PUT",
                f"{storage}/object/{BUCKET}/{name}",
                {"content": b"x", "headers": {**png, "x-upsert": "true"}},
                True,
            ),
            (
                "storage upload into A's folder",
                "POST",
                f"{storage}/object/{BUCKET}/{a.id}/planted-by-b.png",
                {"content": b"x", "headers": png},
                True,
            ),
            (
                "storage delete A's object",
                "DELETE",
                f"{storage}/object/{BUCKET}",
                {"json": {"prefixes": [name]}},
                False,
            ),
            ("storage move A's object to B", "POST", f"{storage}/object/move", {"json": moved}, True),
            ("storage copy A's object to B", "POST", f"{storage}/object/copy", {"json": moved}, True),
        ]
    _probe(client, rec, hb, probes)
    for name in planted.object_names:
        tail = name.split("/", 1)[1]
        traversals = [
            f"{b.id}/../{name}",
            f"{b.id}/%2e%2e/{name}",
            f"{b.id}/%2E%2E%2F{name}",
            f"{b.id}/..%2f{name}",
            f"{b.id}//../{name}",
            f"{b.id}/./../{a.id}/{tail}",
            f"%2e%2e/{name}",
            f"{b.id}/%252e%252e/{name}",
        ]
        for path in traversals:
            for form in ("authenticated/", ""):
                shown = path.replace(b.id, "B").replace(a.id, "A")
                send_raw(
                    target,
                    rec,
                    CATEGORY,
                    f"storage traversal GET {form}{shown}",
                    "GET",
                    f"/storage/v1/object/{form}{BUCKET}/{path}",
                    hb,
                    must_refuse=True,
                )


def _broadcasts(target: Target, client: httpx.Client, rec: Recorder, a: User, b: User) -> None:
    """B sends a fake job update to A's private topic: over HTTP (batch and single) and over a
    socket after a (refused) join. A's listener (runner.py) must hear none of them."""
    api = f"{target.url}/realtime/v1/api/broadcast"
    fake = {"id": "00000000-0000-4000-8000-000000000000", "status": "succeeded", "note": SPOOF}
    hb = target.headers(b.token)
    for private in (True, False):
        message = {"topic": f"jobs:{a.id}", "event": "job", "payload": fake, "private": private}
        send(
            client,
            rec,
            CATEGORY,
            f"broadcast batch to jobs:A (private={private})",
            "POST",
            api,
            json={"messages": [message]},
            headers=hb,
        )
    send(
        client,
        rec,
        CATEGORY,
        "broadcast single to private jobs:A",
        "POST",
        f"{api}/jobs:{a.id}/events/job?private=true",
        json=fake,
        headers=hb,
        must_refuse=True,
    )
    surfaces.realtime_join(
        target,
        rec,
        CATEGORY,
        "B joins jobs:A, then broadcasts",
        a.id,
        b.token,
        must_refuse=True,
        then_send={"event": "broadcast", "payload": {"type": "broadcast", "event": "job", "payload": fake}},
    )
