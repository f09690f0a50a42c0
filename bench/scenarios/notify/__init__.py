"""Client notification: job status change commit → subscriber callback, supabase-py and
supabase-js side by side (``run``; the method text is in report.py).

plan.py: the workload; drive.py: the status changes, through the system's JobLifecycle;
clients.py: the two subscriber processes; subscriber.py: the supabase-py one; report.py: the
join of receipts to commits, table, goals and notes; runner.py: the scenario on the harness.
"""

from bench.scenarios.notify.runner import run

__all__ = ["run"]
