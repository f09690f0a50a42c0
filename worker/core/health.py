"""Liveness facts the worker keeps; ``worker.health_server`` serves them on /health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from worker.core.ports import Clock


@dataclass
class HealthState:
    clock: Clock
    heartbeat_interval: float
    realtime_connected: Callable[[], bool] | None = None
    store_ok: bool = False
    store_error: str | None = None
    last_heartbeat: float | None = None  # monotonic
    started: float = field(default=0.0)

    def beat(self) -> None:
        self.last_heartbeat = self.clock.monotonic()

    def report(self) -> tuple[bool, dict[str, object]]:
        now = self.clock.monotonic()
        age = None if self.last_heartbeat is None else round(now - self.last_heartbeat, 3)
        # A heartbeat older than three intervals means leases are at risk of expiring.
        heartbeat_ok = age is not None and age <= 3 * self.heartbeat_interval + 1
        if age is None:
            heartbeat_ok = now - self.started <= 3 * self.heartbeat_interval + 1
        realtime = None if self.realtime_connected is None else self.realtime_connected()
        healthy = self.store_ok and heartbeat_ok and realtime is not False
        return healthy, {
            "status": "ok" if healthy else "unhealthy",
            "database": {"reachable": self.store_ok, "error": self.store_error},
            "realtime": {"joined": realtime},
            "heartbeat": {"age_seconds": age, "ok": heartbeat_ok},
        }
