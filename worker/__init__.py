"""The job worker: claims jobs from the Supabase queue API and runs one handler per job kind.

Core modules (everything outside ``adapters/``, ``providers/`` and the composition root
``compose.py``) talk to the outside only through the ports in ``worker.ports``.
"""
