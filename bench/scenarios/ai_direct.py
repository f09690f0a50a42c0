"""The AI workload with the worker on the direct Postgres adapter (``python -m bench ai_direct``):
next to ``ai`` it shows the worker's own share of the overhead apart from the gateway's REST and
Realtime hops (the users still submit and listen through the gateway)."""

from __future__ import annotations

from bench.scenario import Context, ScenarioResult
from bench.scenarios.ai_workload import run_direct


def run(ctx: Context) -> ScenarioResult:
    return run_direct(ctx)
