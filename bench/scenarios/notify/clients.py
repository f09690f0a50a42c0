"""The two subscriber processes (supabase-py: ``python -m bench.scenarios.notify subscribe``;
supabase-js: ``bench/js/notify.mjs`` under the Node 22 of bench/js's own npm project), started
side by side and read back.

Both print ``SUBSCRIBED`` once joined, stop after the expected number of distinct
(job id, status) broadcasts (or on SIGTERM, or after ``--max-seconds``) and write JSON lines
``{"id", "status", "updated_at", "t"}`` (t = wall clock, epoch seconds) plus ``<out>.meta.json``.
"""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.scenarios.notify.plan import DRAIN_S, READY_TIMEOUT_S
from bench.support import ROOT

JS_PROJECT = ROOT / "bench" / "js"  # supabase-js and Node 22, installed by scripts/setup_bench.sh
NODE = JS_PROJECT / "node_modules" / ".bin" / "node"
JS_SUBSCRIBER = JS_PROJECT / "notify.mjs"


@dataclass
class Subscriber:
    """One subscriber subprocess; its stdout lines are read by a thread, so waiting never blocks on it."""

    label: str
    protocol: str
    proc: subprocess.Popen[str]
    out: Path
    log: IO[str]
    lines: queue.Queue[str] = field(default_factory=queue.Queue)

    def __post_init__(self) -> None:
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_subscribed(self, deadline: float) -> None:
        while True:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"{self.label} subscriber exited ({self.proc.returncode}) before joining"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.label} subscriber did not join within {READY_TIMEOUT_S:.0f} s") from None
                continue
            if line == "SUBSCRIBED":
                return

    def stop(self, deadline: float) -> str:
        """Wait until it stopped by itself (all broadcasts in), else SIGTERM (it saves what it has)."""
        try:
            self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return f"done (exit {self.proc.returncode})"
        except subprocess.TimeoutExpired:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
            return f"terminated after {DRAIN_S:.0f} s (exit {self.proc.returncode})"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            return "killed"

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self.log.close()

    def records(self) -> list[dict[str, Any]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines() if line.strip()]

    def meta(self) -> dict[str, Any]:
        meta = self.out.with_name(self.out.name + ".meta.json")
        return dict(json.loads(meta.read_text())) if meta.exists() else {}


def specs() -> tuple[list[tuple[str, str, list[str]]], dict[str, str]]:
    """(label, protocol, argv) of each subscriber that can run here, and why the others cannot."""
    python = [sys.executable, "-m", "bench.scenarios.notify", "subscribe"]
    found = [("supabase-py", "realtime-py, vsn 1.0.0 (JSON text frames)", python)]
    skipped: dict[str, str] = {}
    if NODE.exists():
        found.append(("supabase-js", "realtime-js, vsn 2.0.0", [str(NODE), str(JS_SUBSCRIBER)]))
    else:
        skipped["supabase-js"] = f"not measured: {NODE.relative_to(ROOT)} missing (make setup-bench)"
    return found, skipped


def start(label: str, protocol: str, argv: list[str], env: dict[str, str], out: Path, log_dir: Path) -> Subscriber:
    log = (log_dir / f"notify_{label}.log").open("w")
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    except OSError:
        log.close()
        raise
    return Subscriber(label, protocol, proc, out, log)
