"""`python -m worker run --check` and other one-shot commands as subprocesses, each with an
environment of its own (no tests here)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Everything the worker reads, so a test's variables (or a file) are the only configuration.
WORKER_PREFIXES = (
    "SUPABASE_",
    "DATABASE_",
    "WORKER_",
    "ANTHROPIC_",
    "GEMINI_",
    "PROVIDER_",
    "MODEL_",
    "HEALTH_",
    "PORT",
    "LEASE_",
    "HEARTBEAT_",
    "RETENTION_",
    "PYTHONPATH",
)
# Never contacted by --check; loopback, so the placeholder key below is accepted.
UNUSED_STAND_IN = "http://127.0.0.1:9"
PLACEHOLDER_MODELS = {
    "ANTHROPIC_API_KEY": "devstack-placeholder-only-the-local-stand-ins-accept-this",
    "ANTHROPIC_BASE_URL": UNUSED_STAND_IN,
    "GEMINI_API_KEY": "devstack-placeholder-only-the-local-stand-ins-accept-this",
    "GEMINI_BASE_URL": UNUSED_STAND_IN,
}


def run_check(
    python: str | Path, variables: dict[str, str], *, env_file: Path | None = None, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    return run_worker(python, variables, ["run", "--check"], env_file=env_file, cwd=cwd)


def run_worker(
    python: str | Path,
    variables: dict[str, str],
    command: Sequence[str],
    *,
    env_file: Path | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """`python -m worker <command>` to completion, configured by ``variables`` (and the file) alone."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(WORKER_PREFIXES)}
    args = [str(python), "-m", "worker"]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    return subprocess.run(
        [*args, *command],
        cwd=cwd,
        env={**clean, **variables},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]
