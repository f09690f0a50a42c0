"""SIGTERM/SIGINT as shutdown requests: the first drains, a second one hurries (``Shutdown``)."""

from __future__ import annotations

import asyncio
import signal

from worker.core.shutdown import Shutdown


def install(shutdown: Shutdown) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, shutdown.request)
