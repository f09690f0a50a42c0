"""One attack run against a target: sign in A and B, plant A's canaries while B listens on
Realtime, snapshot the checked tables, run the categories, snapshot again, and count."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.exceptions import WebSocketException
from websockets.sync.client import connect

from bench.attack import forgery, fuzz, grants, plant, tenant
from bench.attack.recorder import Recorder
from bench.attack.target import Target, User, sign_in

HEALTH_WAIT_S = 15.0
WS_SHARE = 0.15  # of the fuzzer's budget, as websocket frames


@dataclass
class Outcome:
    counts: dict[str, int]
    findings: dict[str, Any]
    per_category: dict[str, int]
    statuses: dict[str, int]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def clean(self) -> bool:
        return all(v == 0 for k, v in self.counts.items() if k != "requests")


def healthy(target: Target, client: httpx.Client) -> bool:
    """The gateway answers Auth's health again within HEALTH_WAIT_S (else: counted as a crash)."""
    deadline = time.monotonic() + HEALTH_WAIT_S
    while time.monotonic() < deadline:
        try:
            if client.get(f"{target.url}/auth/v1/health", headers=target.headers(), timeout=5).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    return False


Join = tuple[str, dict[str, Any]]  # topic, config
CHANGES = [{"event": "*", "schema": "public", "table": t} for t in ("jobs", "job_events")]


class Listener(threading.Thread):
    """One user's socket on some channels; everything heard is judged afterwards. B listens
    while A's data is planted (nothing of A's may arrive); A listens during the attack (nothing
    B sends may arrive on A's private topic)."""

    def __init__(self, target: Target, user: User, joins: list[Join]) -> None:
        super().__init__(daemon=True)
        self.target, self.user, self.joins = target, user, joins
        self.heard: list[str] = []
        self.ready, self.stop = threading.Event(), threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with connect(self.target.ws_url, open_timeout=10, close_timeout=2) as ws:
                for ref, (topic, config) in enumerate(self.joins):
                    payload = {
                        "config": {"broadcast": {"self": False}, "presence": {"enabled": False}, **config},
                        "access_token": self.user.token,
                    }
                    ws.send(json.dumps({"topic": topic, "event": "phx_join", "payload": payload, "ref": str(ref)}))
                self.ready.set()
                while not self.stop.is_set():
                    try:
                        got = ws.recv(timeout=0.2)
                    except TimeoutError:
                        continue
                    self.heard.append(got if isinstance(got, str) else got.decode("utf-8", "replace"))
        except (WebSocketException, OSError) as exc:
            self.error = exc
            self.ready.set()

    def finish(self, notes: list[str], who: str) -> str:
        self.stop.set()
        self.join(5)
        joined = sum('"status":"ok"' in h.replace(" ", "") and "phx_reply" in h for h in self.heard)
        if self.error is not None or joined < len(self.joins):
            # A listener that never joined would hear nothing and report nothing: say so.
            notes.append(f"{who}'s Realtime listener joined {joined} of {len(self.joins)} channels ({self.error!r})")
        return "\n".join(self.heard)


PHASES = ("forgery", "cross-tenant", "privileges", "fuzz")


def attack(target: Target, *, count: int, seed: int, log: Any = print, phases: tuple[str, ...] = PHASES) -> Outcome:
    """``phases`` narrows the run (the tests of the detectors need only the phase they probe)."""
    started = time.monotonic()
    rec, crashes = Recorder(), 0
    notes: list[str] = []
    with httpx.Client(timeout=30) as client:
        a, b = sign_in(target, client, "A"), sign_in(target, client, "B")
        b_ears = Listener(
            target,
            b,
            [
                ("realtime:attack-changes", {"private": False, "postgres_changes": CHANGES}),
                (f"realtime:jobs:{b.id}", {"private": True, "postgres_changes": CHANGES}),
            ],
        )
        b_ears.start()
        b_ears.ready.wait(15)
        time.sleep(0.5)  # the joins are answered before A's rows arrive
        planted = plant.plant(target, client, a, seed)
        rec.canaries = list(planted.canaries)
        time.sleep(1.5)  # Realtime delivers A's changes (to A only, we check)
        rec.see("realtime-listen", "B's sockets while A's data was written", 200, b_ears.finish(notes, "B"))
        a_ears = Listener(target, a, [(f"realtime:jobs:{a.id}", {"private": True, "postgres_changes": CHANGES})])
        a_ears.start()
        a_ears.ready.wait(15)
        log(f"planted {len(planted.canaries)} canaries in A's jobs, events, results and objects")

        since = plant.database_now(target.database_url) if target.database_url else None
        users = [a.id, b.id]
        before = plant.checksums(target.database_url, users, since) if target.database_url and since else None
        if before is None:
            notes.append("no DATABASE_URL: unexpected writes not measured (checksums need direct SQL)")

        planted_object = planted.object_names[0] if planted.object_names else None
        steps: list[tuple[str, Any]] = [
            ("forgery", lambda: forgery.run(target, client, rec, a, b, planted_object)),
            ("cross-tenant", lambda: tenant.run(target, client, rec, a, b, planted, _relations(target))),
            ("privileges", lambda: _privileges(target, client, rec, b, notes)),
        ]
        for name, step in steps:
            if name not in phases:
                continue
            step()
            crashes += 0 if healthy(target, client) else 1
            log(f"{name}: {rec.requests[name]} requests so far {rec.counts()}")
        budget = count if "fuzz" in phases else 0  # the fuzzer's share; the fixed cases come on top
        fuzzer = fuzz.Fuzzer(seed, a, planted)
        ws_frames = int(budget * WS_SHARE)
        fuzz.run_http(target, client, rec, fuzzer, b, budget - ws_frames)
        crashes += 0 if healthy(target, client) else 1
        fuzz.run_ws(target, rec, fuzzer, b, ws_frames)
        crashes += 0 if healthy(target, client) else 1
        log(f"fuzz: {rec.requests['fuzz-http']} requests, {rec.requests['fuzz-ws']} frames {rec.counts()}")

        time.sleep(1.0)  # anything B managed to send reaches A's socket
        spoofed = a_ears.finish(notes, "A")
        if tenant.SPOOF in spoofed:
            rec.breaches.append(
                {
                    "category": tenant.CATEGORY,
                    "case": "B's broadcast reached A's private topic",
                    "status": 200,
                    "body": spoofed[:300],
                }
            )
        changed: list[str] = []
        if before is not None and target.database_url and since:
            after = plant.checksums(target.database_url, users, since)
            changed = [t for t in before if before[t] != after[t]]
    counts = {
        **rec.counts(),
        "unexpected_writes": len(changed),
        "gateway_crashes": crashes,
        "grant_findings": len(rec.extra_findings),
    }
    findings = {**rec.findings(), "unexpected_writes": changed, "grant_findings": rec.extra_findings}
    return Outcome(
        counts, findings, dict(rec.requests), dict(rec.statuses), notes, round(time.monotonic() - started, 1)
    )


def _relations(target: Target) -> list[tuple[str, str]]:
    """(relation, a column of it) for every table and view in public: from the catalog when
    DATABASE_URL is set, else the list in tenant.py."""
    if not target.database_url:
        return [(name, "id") for name in tenant.RELATIONS]
    import psycopg

    with psycopg.connect(target.database_url, autocommit=True) as conn:
        rows = conn.execute(
            "select c.relname, (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum = 1) "
            "from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p', 'f') order by 1"
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _privileges(target: Target, client: httpx.Client, rec: Recorder, b: User, notes: list[str]) -> None:
    review = grants.reviewed()
    if target.database_url:
        rec.extra_findings.extend(grants.compare(grants.catalog(target.database_url, review["schemas"]), review))
    else:
        notes.append("no DATABASE_URL: the catalog check of function grants was skipped (RPC calls still made)")
    grants.call_refused(target, client, rec, b, review)
