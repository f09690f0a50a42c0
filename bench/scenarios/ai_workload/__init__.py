"""AI workload: simulated Figma plugin users submit a mix of AI jobs through the REST API, one real
worker process runs them against the model stand-ins, and the jobs table, the stand-ins' timing log
and /proc say what the queue and the worker cost on top of the models (``run``).

Everything runs on loopback in processes of its own: the devstack gateway (REST, Realtime,
Storage), the model stand-ins (``python -m devstack.models``) and the worker; the users run as
asyncio tasks in this process. A scratch database is migrated for the run and dropped after it.

plan.py: the knobs (``Plan``) and payloads; users.py: the plugin users; sampling.py: the machine
and database every second; load.py: the asynchronous run; facts.py: what happened to each job;
runner.py: the scenario on the harness; result.py and text.py: the report, and ``method()`` says
how each number is measured.
"""

from bench.scenarios.ai_workload.runner import run, run_direct, run_plan

__all__ = ["run", "run_direct", "run_plan"]
