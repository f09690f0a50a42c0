"""A gateway in its own process, as `devstack up` runs it, so the numbers include no GIL
contention with the benchmark's own client threads and tasks."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from devstack import paths
from devstack.paths import free_port

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def gateway_process(database: str = paths.DATABASE) -> Iterator[str]:
    """`python -m devstack.gateway` for ``database`` on a free loopback port; yields its URL."""
    port = free_port()
    url = f"http://{paths.HOST}:{port}"
    command = [sys.executable, "-m", "devstack.gateway", "--database", database, "--port", str(port)]
    proc = subprocess.Popen(command, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/health", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"gateway did not start (exit {proc.poll()})") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
