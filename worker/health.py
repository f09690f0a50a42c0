"""Liveness facts the worker keeps, and the /health and /metrics HTTP endpoints (Starlette)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from worker.clock import Clock
from worker.metrics import Metrics


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


def create_app(state: HealthState, metrics: Metrics) -> Starlette:
    async def health(_request: Request) -> JSONResponse:
        healthy, body = state.report()
        return JSONResponse(body, status_code=200 if healthy else 503)

    async def prometheus(_request: Request) -> PlainTextResponse:
        return PlainTextResponse(metrics.render(), media_type="text/plain; version=0.0.4")

    return Starlette(routes=[Route("/health", health), Route("/metrics", prometheus)])
