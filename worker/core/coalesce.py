"""One call in flight, the rest wait for the next: the shape of every batched RPC the worker
makes per item (usage records, capacity asks).

No timer: a lone item goes out at once (one round trip, as if unbatched), and under load a batch
grows to whatever arrived during one round trip. A call the SQL API refuses as a whole because of
one bad item (``InvalidArgument``) is sent again item by item, so only that item fails. Each item
gets its own future: its answer, or what ``_failed`` makes of the error that kept it from one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Generic, TypeVar

from worker.core.errors import InvalidArgument

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

    async def _call(self, items: list[Item]) -> Sequence[Answer]:
        """One call for ``items``: an answer per item, in order (raises if the call fails)."""
        raise NotImplementedError

    def _failed(self, items: list[Item], exc: Exception) -> list[Answer | Exception]:
        """What the items of a failed call get: the error itself, unless a subclass says otherwise."""
        return [exc] * len(items)

    async def _answers(self, items: list[Item]) -> list[Answer | Exception]:
        try:
            answers = list(await self._call(items))
        except InvalidArgument as exc:
            if len(items) == 1:
                return self._failed(items, exc)
            return [answer for item in items for answer in await self._answers([item])]
        except Exception as exc:  # the whole call failed: every item hears why
            return self._failed(items, exc)
        if len(answers) != len(items):
            return self._failed(items, RuntimeError(f"{self.name}: {len(answers)} answers for {len(items)} items"))
        return list(answers)

    async def _send(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[: self.max_items], self._pending[self.max_items :]
            answers = await self._answers([item for item, _ in batch])
            for (_, done), answer in zip(batch, answers, strict=True):
                if done.done():  # its waiter was cancelled
                    continue
                if isinstance(answer, Exception):
                    done.set_exception(answer)
                else:
                    done.set_result(answer)
