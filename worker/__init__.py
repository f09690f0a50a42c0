"""The job worker: claims jobs from the Supabase queue API and runs one handler per job kind.

``worker.core`` is the loop, job execution, acks, context, retry and the ports (``worker.core.ports``)
through which it reaches everything outside; it imports no adapter, provider, SDK, web framework
or rich (import-linter contracts in pyproject.toml). ``adapters/``, ``providers/`` and ``handlers/``
build on the core; the modules here are process plumbing: the CLI, settings, the composition root
``compose.py``, the health/metrics HTTP server, logging and signals.
"""
