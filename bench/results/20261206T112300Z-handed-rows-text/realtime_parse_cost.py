"""What supabase-py's Realtime client spends on one hand-off wake-up, with the rows as nested JSON
and as one JSON text. Run from the repository root: `.venv-bench/bin/python
bench/results/20261206T112300Z-handed-rows-text/realtime_parse_cost.py`."""

from __future__ import annotations

import json
import random
import sys
import time
import uuid
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path[:0] = [
    str(Path(__file__).resolve().parents[3]),
    str(Path(__file__).resolve().parents[3] / "tools" / "devstack"),
]

from realtime.message import ServerMessageAdapter  # noqa: E402

from bench.scenarios.ai_workload.plan import rename_payload  # noqa: E402

ROUNDS = 2000
NOW = "2026-12-06T10:00:00.123456+00:00"


def per_call_us(work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    for _ in range(ROUNDS):
        work()
    return (time.perf_counter() - start) / ROUNDS * 1e6


def frame(rows: object) -> str:
    message = {"kind": "rename_layers", "status": "queued", "run_at": NOW, "jobs": rows, "parked": True}
    return json.dumps(
        {
            "event": "broadcast",
            "topic": "realtime:worker:w1",
            "ref": None,
            "join_ref": "1",
            "payload": {"event": "wake", "payload": message, "type": "broadcast", "meta": {"id": str(uuid.uuid4())}},
        }
    )


job = {
    "id": str(uuid.uuid4()),
    "user_id": str(uuid.uuid4()),
    "kind": "rename_layers",
    "payload": rename_payload("tag-1", random.Random(1), 50),
    "status": "running",
    "priority": 0,
    "run_at": NOW,
    "attempts": 1,
    "max_attempts": 3,
    "worker_id": "w1",
    "lease_expires_at": NOW,
    "progress": None,
    "result": None,
    "error": None,
    "created_at": NOW,
    "updated_at": NOW,
    "started_at": NOW,
    "finished_at": None,
    "cancel_requested": False,
    "idempotency_key": None,
    "cached": False,
}
nested: list[dict[str, object]] = [job]
for name, rows, text_rows in (("nested JSON", nested, None), ("one JSON text", nested, json.dumps(nested))):
    text = frame(rows if text_rows is None else text_rows)
    parsed = ServerMessageAdapter.validate_json(text)
    validate = per_call_us(lambda: ServerMessageAdapter.validate_json(text))  # noqa: B023
    formatted = per_call_us(lambda: f"parsed message as {parsed!r}")  # noqa: B023
    decode = 0.0 if text_rows is None else per_call_us(partial(json.loads, text_rows))
    costs = f"validate_json {validate:.0f} µs, repr {formatted:.0f} µs, json.loads {decode:.0f} µs"
    print(f"{name}: {len(text)} bytes, {costs}")
