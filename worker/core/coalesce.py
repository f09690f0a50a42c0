"""One call in flight, the rest wait for the next: the shape of every batched RPC the worker
makes per item (usage records, capacity asks).

No timer: a lone item goes out at once (one round trip, as if unbatched), and under load a batch
grows to whatever arrived during one round trip. Each item gets its own future: its answer, or
the exception the call (or ``_call`` for that item alone) raised.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

Item = TypeVar("Item")
Answer = TypeVar("Answer")


class Coalescer(Generic[Item, Answer]):
    def __init__(self, name: str, max_items: int) -> None:
        self.name = name
        self.max_items = max_items
        self._pending: list[tuple[Item, asyncio.Future[Answer]]] = []
        self._sender: asyncio.Task[None] | None = None

    def add(self, item: Item) -> asyncio.Future[Answer]:
        """Queue an item (returns at once); the future gets its answer."""
        done: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending.append((item, done))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name=self.name)
        return done

    async def _call(self, items: list[Item]) -> list[Answer | Exception]:
        """One call for ``items``: an answer, or an exception, per item in order."""
        raise NotImplementedError

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            try:
                answers = await self._call([item for item, _ in batch])
                if len(answers) != len(batch):
                    raise RuntimeError(f"{self.name}: {len(answers)} answers for {len(batch)} items")
            except Exception as exc:  # the whole call failed: every item hears why
                answers = [exc] * len(batch)
            for (_, done), answer in zip(batch, answers, strict=True):
                if done.done():  # its waiter was cancelled
                    continue
                if isinstance(answer, Exception):
                    done.set_exception(answer)
                else:
                    done.set_result(answer)
