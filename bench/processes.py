"""Plumbing for the processes a scenario starts (gateway, model stand-ins, workers, subscribers):
a clean environment, a bounded wait for readiness over HTTP, and a bounded stop."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

# Nothing from the caller's shell may point a child at real models or another stack.
_FOREIGN = ("SUPABASE_", "DATABASE_", "WORKER_", "ANTHROPIC_", "GEMINI_", "PROVIDER_", "MODEL_", "STANDIN_")


def clean_env() -> dict[str, str]:
    """This process's environment without the variables that configure a stack, a worker or models."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN)}


def stop(proc: subprocess.Popen[Any], grace_s: float = 20.0) -> int | None:
    """SIGTERM, then SIGKILL if it is still running after ``grace_s``; its exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def wait_http(url: str, proc: subprocess.Popen[Any], what: str, log: Path | None = None, timeout: float = 30) -> None:
    """Until ``url`` answers 200; raise (with the tail of ``log``) if ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log is not None and log.exists() else ""
            raise RuntimeError(f"{what} did not become ready (exit {proc.poll()})" + (f":\n{tail}" if tail else ""))
        time.sleep(0.1)
