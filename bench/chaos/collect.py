"""Reading the history after a run: the jobs rows (SQL on the local stack, REST with the service
key on staging) and the audit trail of transitions (local only); and the recovery time of each
fault, from that trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import psycopg

from bench.chaos.faults import Injected
from bench.chaos.history import TERMINAL, Job, Transition
from bench.chaos.plan import KILL
from bench.chaos.stack import Target
from devstack import paths

_COLUMNS = "id,user_id,kind,status,attempts,max_attempts,result,run_at,lease_expires_at,updated_at,error"


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return datetime.fromisoformat(str(value)).timestamp()


def _job(r: dict[str, Any]) -> Job:
    error = r.get("error")
    return Job(
        id=str(r["id"]),
        user_id=str(r["user_id"]),
        kind=str(r["kind"]),
        status=str(r["status"]),
        attempts=int(r["attempts"]),
        max_attempts=int(r["max_attempts"]),
        has_result=r.get("result") is not None,
        run_at=_epoch(r["run_at"]) or 0.0,
        lease_expires_at=_epoch(r.get("lease_expires_at")),
        updated_at=_epoch(r["updated_at"]) or 0.0,
        error_type=str(error.get("type")) if isinstance(error, dict) else None,
    )


def read_jobs(target: Target, ids: list[str]) -> dict[str, Job]:
    if target.database is not None:
        with (
            psycopg.connect(paths.database_url(target.database)) as conn,
            conn.cursor(row_factory=psycopg.rows.dict_row) as cur,
        ):
            rows = cur.execute(f"select {_COLUMNS} from public.jobs").fetchall()
        return {str(r["id"]): _job(r) for r in rows}
    out: dict[str, Job] = {}
    headers = {"apikey": target.service_key, "Authorization": f"Bearer {target.service_key}"}
    with httpx.Client(base_url=target.url, timeout=30, headers=headers) as http:
        for i in range(0, len(ids), 100):
            chunk = ",".join(ids[i : i + 100])
            response = http.get("/rest/v1/jobs", params={"id": f"in.({chunk})", "select": _COLUMNS})
            response.raise_for_status()
            out.update({str(r["id"]): _job(r) for r in response.json()})
    return out


def read_transitions(target: Target) -> dict[str, list[Transition]] | None:
    if target.database is None:
        return None  # no audit trail on a staging stack
    query = (
        "select job_id::text, extract(epoch from at)::float8, old_status, new_status, old_attempts, new_attempts, "
        "result_written, worker_id from chaos_audit.transitions order by id"
    )
    out: dict[str, list[Transition]] = {}
    with psycopg.connect(paths.database_url(target.database)) as conn:
        for r in conn.execute(query).fetchall():
            out.setdefault(str(r[0]), []).append(
                Transition(float(r[1]), r[2], str(r[3]), int(r[4]), int(r[5]), bool(r[6]), r[7])
            )
    return out


def recovery_s(fault: Injected, trail: dict[str, list[Transition]]) -> float | None:
    """Kill -9 / SIGTERM: until every job the worker held was running elsewhere or finished.
    Other faults: from the end of the fault's action until the next job succeeded."""
    if fault.fault in (KILL, "sigterm_drain"):
        worst = 0.0
        for job_id in fault.jobs_running:
            after = [
                t
                for t in trail.get(job_id, [])
                if t.at > fault.at
                and (t.new_status in TERMINAL or (t.new_status == "running" and t.worker_id != fault.worker_id))
            ]
            if not after:
                return None  # never recovered: the checker counts it stuck or lost
            worst = max(worst, after[0].at - fault.at)
        return worst
    start = fault.ended or fault.at
    firsts = [t.at for ts in trail.values() for t in ts if t.new_status == "succeeded" and t.at > start]
    return min(firsts) - fault.at if firsts else None


def timeline(trail: dict[str, list[Transition]], start: float, bucket_s: float = 30.0) -> list[int]:
    """Jobs that succeeded in each ``bucket_s`` window from ``start`` (the first fault)."""
    counts: dict[int, int] = {}
    for ts in trail.values():
        for t in ts:
            if t.new_status == "succeeded" and t.old_status != "succeeded" and t.at >= start:
                i = int((t.at - start) // bucket_s)
                counts[i] = counts.get(i, 0) + 1
    return [counts.get(i, 0) for i in range(max(counts, default=-1) + 1)]
