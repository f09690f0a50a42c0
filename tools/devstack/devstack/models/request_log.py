"""What the model stand-ins saw: the request log (``/_standin/requests``, newest entries kept) and
the timing log (``/_standin/timings``: when each request started and finished, with its tag, so a
benchmark can find the requests of one job again)."""

from __future__ import annotations

import itertools
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request

from devstack.models.knobs import Provider

LOG_LIMIT = 1000  # the demo runs for hours; keep the newest entries only
# Timing entries are small (no bodies), and a benchmark reads every request of its run: room
# for a few minutes of heavy load. Older entries are dropped first.
TIMING_LIMIT = 100_000
TIMINGS_PAGE = 10_000


@dataclass
class RequestRecord:
    seq: int
    provider: Provider
    path: str
    model: str | None
    job_kind: str | None
    stream: bool
    fault: str | None
    status: int
    timestamp: str
    headers: dict[str, str]
    body: Any
    disconnected: bool = False  # set when the client went away while a fault held the request


@dataclass
class RequestLog:
    entries: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=LOG_LIMIT))
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add(self, **fields: Any) -> RequestRecord:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        record = RequestRecord(seq=next(self._seq), timestamp=stamp, **fields)
        self.entries.append(record)
        return record

    def select(self, provider: str | None) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.entries if provider in (None, r.provider)]


@dataclass
class Timing:
    """When one provider request was served: epoch seconds on the stand-in's clock."""

    seq: int  # the same number as the request's entry in the request log
    provider: Provider
    job_kind: str | None
    stream: bool
    tag: str | None
    started: float  # the request reached the stand-in
    finished: float | None = None  # the last byte of the answer went out (None while in flight)
    status: int = 200
    fault: str | None = None
    latency_ms: int = 0  # the latency the knobs added

    def end(self) -> None:
        if self.finished is None:
            self.finished = time.time()


@dataclass
class TimingLog:
    entries: deque[Timing] = field(default_factory=lambda: deque(maxlen=TIMING_LIMIT))
    dropped: int = 0  # the oldest entries pushed out since the last clear: a reader missed them

    def add(self, timing: Timing) -> Timing:
        if len(self.entries) == self.entries.maxlen:
            self.dropped += 1
        self.entries.append(timing)
        return timing

    def clear(self) -> int:
        cleared = len(self.entries)
        self.entries.clear()
        self.dropped = 0
        return cleared

    def page(self, after: int, limit: int) -> dict[str, Any]:
        picked: list[dict[str, Any]] = []
        more = False
        for entry in self.entries:
            if entry.seq <= after:
                continue
            if len(picked) == limit:
                more = True
                break
            picked.append(asdict(entry))
        return {
            "count": len(picked),
            "timings": picked,
            "next_after": picked[-1]["seq"] if picked else after,
            "more": more,
            "dropped": self.dropped,
        }


# Headers worth seeing in the log; credentials are reported by presence only.
_LOGGED_HEADERS = ("anthropic-version", "anthropic-beta", "content-type", "user-agent", "x-goog-api-client")
_CREDENTIAL_HEADERS = ("x-api-key", "authorization", "x-goog-api-key")


def logged_headers(request: Request) -> dict[str, str]:
    picked = {name: request.headers[name] for name in _LOGGED_HEADERS if name in request.headers}
    present = [name for name in _CREDENTIAL_HEADERS if name in request.headers]
    if present:
        picked["credential"] = ",".join(present)
    return picked
