"""Callback collectors for tests of Realtime clients (supabase-py's channels call back; tests await)."""

from __future__ import annotations

import asyncio
from typing import Any

WAIT = 10.0  # seconds a test waits for one callback before it fails


class Collector:
    """Callback target: collects payloads in arrival order; ``next()`` waits (bounded)."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()

    def __call__(self, *args: Any) -> None:
        self.queue.put_nowait(args[0] if len(args) == 1 else args)

    async def next(self, timeout: float = WAIT) -> Any:
        return await asyncio.wait_for(self.queue.get(), timeout)

    def empty(self) -> bool:
        return self.queue.empty()


class SubscribeStatus(Collector):
    async def wait_for(self, status: str) -> Exception | None:
        while True:
            got, err = await self.next()
            if got.value == status or got == status:
                return err  # type: ignore[no-any-return]
