"""The real worker processes (`python -m worker run`) of a chaos run: a fixed number of slots,
each refilled with a fresh process (new WORKER_ID) after a kill -9 or a SIGTERM."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import processes
from bench.chaos.plan import ChaosPlan
from bench.chaos.stack import Target
from bench.support import ROOT
from devstack import paths
from devstack.paths import free_port


@dataclass
class Slot:
    index: int
    proc: subprocess.Popen[bytes] | None = None
    worker_id: str = ""
    generation: int = 0
    ready_at: float | None = None  # time.monotonic() when /health first answered 200

    def serving_for(self) -> float:
        up = self.proc is not None and self.proc.poll() is None and self.ready_at is not None
        return time.monotonic() - self.ready_at if up and self.ready_at is not None else -1.0


class Workers:
    def __init__(self, target: Target, plan: ChaosPlan, models: str, log_dir: Path) -> None:
        self.target = target
        self.models = models
        self.log_dir = log_dir
        self.slots = [Slot(i) for i in range(plan.workers)]
        self.env = {
            "WORKER_CONCURRENCY": str(plan.worker_concurrency),
            "PROVIDER_CONCURRENCY": str(plan.worker_concurrency * 2),
            "LEASE_SECONDS": str(plan.lease_s),
            "SWEEP_SECONDS": str(plan.sweep_s),
            "DRAIN_TIMEOUT_SECONDS": str(plan.drain_timeout_s),
            "PROVIDER_TIMEOUT_SECONDS": str(plan.provider_timeout_s),
        }

    def start(self, slot: Slot, wait: bool = True) -> None:
        slot.generation += 1
        slot.worker_id = f"chaos-w{slot.index}-g{slot.generation}"
        port = free_port()
        env = self.target.worker_env(slot.worker_id, port, self.env, self.models)
        log = self.log_dir / f"worker{slot.index}.log"
        with log.open("ab") as out:
            out.write(f"--- {time.strftime('%H:%M:%S')} start {slot.worker_id}\n".encode())
            slot.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        slot.ready_at = None
        url, proc = f"http://{paths.HOST}:{port}/health", slot.proc

        def ready() -> None:
            with contextlib.suppress(RuntimeError):  # killed before it was ready
                processes.wait_http(url, proc, slot.worker_id, log, timeout=180)
                if slot.proc is proc:
                    slot.ready_at = time.monotonic()

        if wait:
            ready()
        else:
            threading.Thread(target=ready, name=f"ready-{slot.worker_id}", daemon=True).start()

    def start_all(self) -> None:
        for slot in self.slots:
            self.start(slot)

    def by_id(self, worker_id: str) -> Slot | None:
        return next((s for s in self.slots if s.worker_id == worker_id and s.proc is not None), None)

    def kill9(self, slot: Slot) -> None:
        assert slot.proc is not None
        slot.proc.send_signal(signal.SIGKILL)
        slot.proc.wait(timeout=10)
        self.start(slot, wait=False)  # its jobs wait for the lease; a fresh process takes the slot

    def sigterm(self, slot: Slot, grace_s: float) -> int | None:
        """SIGTERM and wait for the drain (a process that outlives ``grace_s`` is killed); restart."""
        assert slot.proc is not None
        code = processes.stop(slot.proc, grace_s=grace_s)
        self.start(slot, wait=False)
        return code

    def alive(self) -> int:
        return sum(1 for s in self.slots if s.proc is not None and s.proc.poll() is None)

    def stop_all(self) -> None:
        for slot in self.slots:
            if slot.proc is not None:
                processes.stop(slot.proc, grace_s=20)
