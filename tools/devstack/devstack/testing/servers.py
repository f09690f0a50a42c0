"""In-process servers for tests: uvicorn in a daemon thread on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

import uvicorn

from devstack import paths
from devstack.gateway.edge import server_config


class Server:
    """Binds its socket itself, so port 0 picks a free port with no race, and a stopped server's
    port can be taken again at once (SO_REUSEADDR: tests restart a gateway on the same port)."""

    def __init__(self, app: Any, port: int = 0) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted sockets inherit this on Linux; without it every small response waits for a
        # delayed ACK (~40 ms), which asyncio only avoids for sockets it creates itself.
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.bind((paths.HOST, port))
        self.port: int = self.sock.getsockname()[1]
        self.url = f"http://{paths.HOST}:{self.port}"
        config = server_config(app, log_level="warning", timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.sock.close()
