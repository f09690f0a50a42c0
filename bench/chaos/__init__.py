"""`python -m bench chaos [--seed N] [--duration S] [--jobs N] [--kills N] [--quick]`: a seeded,
bounded fault schedule against a running stack under AI-shaped load, then a check of every job's
history; report.json / report.md under bench/results/<timestamp>-chaos/, exit 1 on any loss,
double, stuck job, miscounted attempt or client that missed a final state.

Local (default): a scratch database on the devstack cluster with an audit trigger on public.jobs,
a gateway started here (with the loopback-only socket-drop control), the model stand-ins, real
`python -m worker run` processes. Staging: SUPABASE_URL, SUPABASE_ANON_KEY and
SUPABASE_SERVICE_ROLE_KEY (or SUPABASE_SECRET_KEY) point it at another stack; the faults that
need control of its database, gateway or Realtime are skipped and said so.

plan.py: knobs and the seeded schedule; stack.py: the target; workers.py: the worker processes;
clients.py: users and subscribers; faults.py: the injector; collect.py: the history and
recovery times; history.py: the checker; report.py: the report; runner.py: the run.
"""
