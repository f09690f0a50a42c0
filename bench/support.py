"""The devstack services a scenario runs beside the systems under test, each in its own process
(as `devstack up` runs them), so the numbers include no GIL contention with the benchmark's own
client threads and tasks: the gateway (REST, Realtime, Storage) and the model stand-ins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import processes
from devstack import paths
from devstack.gateway.context import SERVER_TIMING_VARIABLE
from devstack.paths import free_port

ROOT = Path(__file__).resolve().parent.parent


def results_folder(out: Path | None, suffix: str) -> Path:
    """``out``, or bench/results/<UTC timestamp>-<suffix>; made if missing."""
    folder = out or ROOT / "bench" / "results" / (time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{suffix}")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_tool_report(out: Path, data: dict[str, Any], markdown: str, *, echo: bool = False) -> int:
    """A tool's report.json and report.md in ``out``; prints where (and the markdown if ``echo``). 0."""
    (out / "report.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "report.md").write_text(markdown)
    if echo:
        print(markdown)
    print(f"report: {out / 'report.md'}")
    return 0


@contextmanager
def gateway_process(database: str = paths.DATABASE) -> Iterator[str]:
    """`python -m devstack.gateway` for ``database`` on a free loopback port; yields its URL."""
    port = free_port()
    url = f"http://{paths.HOST}:{port}"
    command = [sys.executable, "-m", "devstack.gateway", "--database", database, "--port", str(port)]
    # PostgREST's Server-Timing header: the AI workload places each enqueue's commit with it.
    proc = subprocess.Popen(command, cwd=ROOT, env={**os.environ, SERVER_TIMING_VARIABLE: "true"})
    try:
        processes.wait_http(f"{url}/health", proc, "gateway")
        yield url
    finally:
        processes.stop(proc, grace_s=15)


@contextmanager
def standin_process(log: Path) -> Iterator[tuple[str, int]]:
    """``python -m devstack.models`` on a free loopback port: (url, pid); output appended to ``log``."""
    port = free_port()
    url = f"http://{paths.HOST}:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devstack.models", "--port", str(port)],
            cwd=ROOT,
            env=processes.clean_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        processes.wait_http(f"{url}/_standin/health", proc, "model stand-ins", log)
        yield url, proc.pid
    finally:
        processes.stop(proc)
