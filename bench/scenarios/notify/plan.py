"""The notify workload: what one user's jobs look like, how many, how fast, and the goal."""

from __future__ import annotations

KIND = "rename_layers"
PAYLOAD = {"layers": [{"id": "1:2", "type": "RECTANGLE", "name": "Rectangle 1"}], "context": "bench notify"}
RESULT = {"names": [{"id": "1:2", "name": "Hero Background"}]}
STATUSES = ("queued", "running", "succeeded")  # enqueue_job, claim_jobs, complete_job
SYSTEMS = ["ours_supabase"]  # the Supabase path: Realtime broadcasts to supabase-py and supabase-js
GOAL_P99_MS = 50.0
JOBS_FULL, JOBS_QUICK = 100, 17  # × 3 status changes: 300 / 51 measured
WARMUP_JOBS = 2  # first connections, plans and caches on every path; received, not counted
GAP_MS = (20.0, 50.0)  # uniform random pause after each commit
SEED = 20261123  # the pauses are reproducible
READY_TIMEOUT_S = 30.0  # subscriber start + join
DRAIN_S = 10.0  # after the last commit, for the last broadcasts to arrive
