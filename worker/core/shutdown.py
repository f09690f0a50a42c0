"""Two-phase shutdown: the first request stops claiming and drains; a second one hurries.

``worker.signals`` turns SIGTERM/SIGINT into requests.
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("worker.shutdown")


class Shutdown:
    def __init__(self) -> None:
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()

    def request(self) -> None:
        if self.stopping.is_set():
            log.warning("second shutdown request: releasing running jobs now")
            self.hurry.set()
        else:
            log.info("shutdown requested: no new claims; draining running jobs")
            self.stopping.set()
