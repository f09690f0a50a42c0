"""The fault injector: plays the seeded schedule in a thread of its own (the faults block: a
database restart, a gateway restart, a drain) while the users run in the event loop.

A kill -9 picks its moment from the jobs table: a worker with a generate_edits job that has
streamed partial output (mid-stream), or a generate_image job past its "uploading" progress with
no result yet (mid-upload), else any worker holding a running job."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import psycopg

from bench.chaos.plan import KILL, ChaosPlan, Planned
from bench.chaos.stack import Target
from bench.chaos.workers import Slot, Workers
from devstack import paths

LOOK_FOR_POINT_S = 6.0  # how long a kill waits for its preferred moment before taking any job
MIN_SERVING_S = 8.0  # a worker is killed only once it has served this long since /health said ready

# Which running jobs each kill point wants (the worker holding the first such job is killed).
POINTS: dict[str, str] = {
    "mid_stream": "j.kind = 'generate_edits' and exists "
    "(select 1 from public.job_events e where e.job_id = j.id and e.type = 'partial')",
    "mid_upload": "j.kind = 'generate_image' and coalesce((j.progress->>'percent')::numeric, 0) >= 80",
    "any_running": "true",
}
MODEL_FAULTS: dict[str, dict[str, Any]] = {
    "model_429": {"kind": "429", "count": 20, "retry_after": 1},
    "model_529": {"kind": "529", "count": 10},
    "model_500": {"kind": "500", "count": 10},
    "model_hang": {"kind": "timeout", "count": 3, "hold_seconds": 30},
    # generate_edits instructions say "Friendlier": its streamed answers are cut mid-body.
    "model_drop_mid_stream": {"kind": "disconnect", "count": 5, "provider": "anthropic", "match": "Friendlier"},
}


@dataclass
class Injected:
    at: float  # epoch seconds when the fault was applied
    fault: str
    detail: str = ""
    worker_id: str | None = None
    jobs_running: list[str] = field(default_factory=list)  # kill / SIGTERM: the jobs the worker held
    ended: float | None = None  # when the fault's own action returned (a restart, a drain)
    error: str | None = None


class Injector(threading.Thread):
    def __init__(self, target: Target, workers: Workers, models: str, plan: ChaosPlan, items: list[Planned]) -> None:
        super().__init__(name="chaos-injector", daemon=True)
        self.target, self.workers, self.models, self.plan, self.items = target, workers, models, plan, items
        self.rng = random.Random(plan.seed + 1)
        self.done: list[Injected] = []
        self.stop_event = threading.Event()
        self.started_at = 0.0

    def run(self) -> None:
        self.started_at = time.monotonic()
        for item in self.items:
            wait = self.started_at + item.at_s - time.monotonic()
            if wait > 0 and self.stop_event.wait(wait):
                return
            record = Injected(time.time(), item.fault)
            try:
                self._apply(item.fault, record)
            except Exception as exc:  # a fault that could not be applied is reported, not fatal
                record.error = f"{type(exc).__name__}: {exc}"[:300]
            record.ended = time.time()
            self.done.append(record)

    def _apply(self, fault: str, record: Injected) -> None:
        if fault == KILL:
            self._kill(record)
        elif fault == "sigterm_drain":
            slot, jobs = self._busiest()
            record.worker_id, record.jobs_running = slot.worker_id, jobs
            record.detail = f"exit code {self.workers.sigterm(slot, self.plan.drain_timeout_s + 10)}"
        elif fault == "postgres_restart":
            self.target.restart_postgres()
        elif fault == "gateway_restart":
            self.target.restart_gateway()
        elif fault == "realtime_drop_worker":
            record.detail = f"{self.target.drop_sockets('service_role')} sockets"
        elif fault == "realtime_drop_clients":
            record.detail = f"{self.target.drop_sockets('anon')} sockets"
        elif fault in MODEL_FAULTS:
            httpx.post(f"{self.models}/_standin/faults", json=MODEL_FAULTS[fault], timeout=10).raise_for_status()
            record.detail = str(MODEL_FAULTS[fault])
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def _running(self, where: str) -> list[tuple[str, str]]:
        """(worker_id, job_id) of running jobs matching ``where`` on our live workers; [] without
        database access (staging), where kills take a random worker."""
        if self.target.database is None:
            return []
        # Workers serving for a while only: a kill right after a (slow) start would stop all progress.
        live = [s.worker_id for s in self.workers.slots if s.serving_for() >= MIN_SERVING_S]
        query = (
            "select j.worker_id, j.id::text from public.jobs j "
            f"where j.status = 'running' and j.worker_id = any(%s) and {where}"
        )
        try:
            with psycopg.connect(paths.database_url(self.target.database), autocommit=True, connect_timeout=3) as conn:
                return [(str(r[0]), str(r[1])) for r in conn.execute(query, (live,)).fetchall()]
        except psycopg.Error:
            return []

    def _kill(self, record: Injected) -> None:
        point = self.rng.choice(["mid_stream", "mid_upload", "any_running"])
        found = self._look_for(point, LOOK_FOR_POINT_S)
        if not found:  # no such moment came: any running job (restarted workers may still be starting)
            point, found = "any_running", self._look_for("any_running", LOOK_FOR_POINT_S * 3)
        slot = self.workers.by_id(self.rng.choice(found)[0]) if found else None
        if slot is None and self.target.database is None:  # staging: no view of who holds what
            point, slot = "random_worker", self.rng.choice(self.workers.slots)
        if slot is None:
            # Every worker is still starting (or drained): a kill now would hit no job. Reported
            # under could_not_apply; the schedule has room for it.
            raise RuntimeError("no worker held a running job")
        record.detail, record.worker_id, record.at = point, slot.worker_id, time.time()
        record.jobs_running = [j for w, j in self._running("true") if w == slot.worker_id]
        self.workers.kill9(slot)

    def _look_for(self, point: str, seconds: float) -> list[tuple[str, str]]:
        deadline = time.monotonic() + seconds
        while not (found := self._running(POINTS[point])) and time.monotonic() < deadline:
            time.sleep(0.05)
        return found

    def _busiest(self) -> tuple[Slot, list[str]]:
        held = self._running("true")
        counts = {s.worker_id: [j for w, j in held if w == s.worker_id] for s in self.workers.slots}
        slot = max(self.workers.slots, key=lambda s: len(counts[s.worker_id]))
        return slot, counts[slot.worker_id]
