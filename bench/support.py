"""What the benchmarks share: a gateway in its own process, as `devstack up` runs it, so the
numbers include no GIL contention with the benchmark's own client threads and tasks."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from devstack import paths
from tests.integration.servers import free_port

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


def summary(values_ms: list[float]) -> dict[str, float]:
    """count, p50/p95/p99 (nearest rank), max and mean of latencies in milliseconds."""
    if not values_ms:
        return {"count": 0}
    ordered = sorted(values_ms)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))], 2)

    return {
        "count": len(ordered),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
    }


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    """What the numbers were measured on: saved with every result."""
    return {
        "nproc": os.cpu_count(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "note": "shared 2-core box; other sessions may be using the same PostgreSQL cluster",
    }
