import json, random, time, uuid, logging, sys
sys.path[:0] = ['/work/main']
from bench.scenarios.ai_workload.plan import rename_payload
from realtime.types import *  # noqa
from realtime._async import client as rc
Adapter = rc.ServerMessageAdapter
rng = random.Random(1)
payload = rename_payload("tag-1", rng, 50)
job = {"id": str(uuid.uuid4()), "user_id": str(uuid.uuid4()), "kind": "rename_layers", "payload": payload,
       "status": "running", "priority": 0, "run_at": "2026-12-06T10:00:00.123456+00:00", "attempts": 1, "max_attempts": 3,
       "worker_id": "w1", "lease_expires_at": "2026-12-06T10:01:00+00:00", "progress": None, "result": None, "error": None,
       "created_at": "2026-12-06T10:00:00.123456+00:00", "updated_at": "2026-12-06T10:00:00.123456+00:00",
       "started_at": "2026-12-06T10:00:00.123456+00:00", "finished_at": None, "cancel_requested": False,
       "idempotency_key": None, "depends_on": None, "cached": False, "timeout_seconds": 120}
msg = {"kind": "rename_layers", "status": "queued", "run_at": "2026-12-06T10:00:00.123456+00:00", "jobs": [job], "parked": True}
frame = json.dumps({"event": "broadcast", "topic": "realtime:worker:w1", "ref": None, "join_ref": "1",
                    "payload": {"event": "wake", "payload": msg, "type": "broadcast", "meta": {"id": str(uuid.uuid4())}}})
print("frame bytes", len(frame), "payload bytes", len(json.dumps(payload)))
N = 2000
t = time.perf_counter()
for _ in range(N): m = Adapter.validate_json(frame)
v = (time.perf_counter() - t) / N * 1e6
t = time.perf_counter()
for _ in range(N): r = f"parsed message as {m!r}"
rp = (time.perf_counter() - t) / N * 1e6
t = time.perf_counter()
for _ in range(N): json.loads(frame)
jl = (time.perf_counter() - t) / N * 1e6
print(f"validate_json {v:.0f} us, repr {rp:.0f} us, json.loads {jl:.0f} us; type {type(m).__name__}")
msg2 = dict(msg); msg2["jobs"] = json.dumps([job])
frame2 = json.dumps({"event": "broadcast", "topic": "realtime:worker:w1", "ref": None, "join_ref": "1",
                    "payload": {"event": "wake", "payload": msg2, "type": "broadcast", "meta": {"id": str(uuid.uuid4())}}})
t = time.perf_counter()
for _ in range(N): m2 = Adapter.validate_json(frame2)
v2 = (time.perf_counter() - t) / N * 1e6
t = time.perf_counter()
for _ in range(N): r = f"parsed message as {m2!r}"
rp2 = (time.perf_counter() - t) / N * 1e6
t = time.perf_counter()
for _ in range(N): json.loads(msg2["jobs"])
jl2 = (time.perf_counter() - t) / N * 1e6
print(f"jobs as text: validate_json {v2:.0f} us, repr {rp2:.0f} us, json.loads(jobs) {jl2:.0f} us")
import pydantic; print(pydantic.VERSION)
print(rc.ServerMessageAdapter)
