"""The worker's core: the claim loop (``runtime``), job execution (``job_runner``), acks, the
handler's context, retry, health and metrics state, and every port (``ports``).

It reaches the outside world only through the protocols in ``worker.core.ports``; the
import-linter contracts in pyproject.toml keep adapters, providers, SDKs, web frameworks and rich
out of it.
"""
