"""Background services of the local stack (the API gateway, the model stand-ins).

Each runs as `python -m <module>` in its own session with a pid file and a log under
`.devstack/`; `stop` signals only the pid it recorded, and only if that process is still one of
ours, so `devstack down` never touches anything it did not start.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from devstack import paths


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    health_path: str

    @property
    def pidfile(self) -> Path:
        return paths.STATE / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return paths.STATE / f"{self.name}.log"

    @property
    def url(self) -> str:
        return f"http://{paths.HOST}:{self.port}"

    def pid(self) -> int | None:
        """The recorded pid if that process is alive and is this service."""
        try:
            pid = int(self.pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, ValueError):
            return None
        return pid if self.module in cmdline else None

    def healthy(self) -> bool:
        try:
            return httpx.get(self.url + self.health_path, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self, timeout: float = 30.0) -> None:
        if self.pid() is not None:
            return
        if self.healthy():
            raise ServiceError(f"{self.name}: port {self.port} already answers, but not from this stack; stop it first")
        paths.STATE.mkdir(parents=True, exist_ok=True)
        with self.logfile.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=paths.ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # survives the CLI; `down` stops it
            )
        self.pidfile.write_text(str(proc.pid))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                self.pidfile.unlink(missing_ok=True)
                raise ServiceError(f"{self.name} exited with {proc.returncode}:\n{self.log_tail()}")
            if self.healthy():
                return
            time.sleep(0.1)
        self.stop()
        raise ServiceError(f"{self.name} did not become healthy within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.pid() is not None:
                time.sleep(0.1)
            if self.pid() is not None:
                os.kill(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)

    def describe(self) -> str:
        pid = self.pid()
        if pid is None:
            return "stopped"
        return f"running, pid {pid}, {self.url}" + ("" if self.healthy() else " (not answering)")

    def log_tail(self, lines: int = 30) -> str:
        if not self.logfile.exists():
            return ""
        return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])


GATEWAY = Service("gateway", "devstack.gateway", paths.API_PORT, "/health")
MODELS = Service("models", "devstack.models", paths.MODELS_PORT, "/_standin/health")
ALL: tuple[Service, ...] = (MODELS, GATEWAY)
