"""Two-phase shutdown: the first signal stops claiming and drains; a second one hurries."""

from __future__ import annotations

import asyncio
import logging
import signal

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

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request)
