"""Hosted Realtime's janitor, for realtime.messages: daily partitions from yesterday to today+3,
and partitions older than 72 h dropped (the SQL is realtime.devstack_maintain_partitions() in
devstack/sql/platform.sql). Hosted runs it every 4 h; here at start and every hour, so a gateway
left running over midnight never lacks tomorrow's partition."""

from __future__ import annotations

import asyncio
import logging

import psycopg
from psycopg_pool import AsyncConnectionPool

from devstack.gateway.realtime import background

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 3600.0
MAINTAIN = "select realtime.devstack_maintain_partitions()"


class Janitor:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> None:
        try:
            async with self.pool.connection() as conn:
                await conn.execute(MAINTAIN)
        except psycopg.Error as exc:  # the next round tries again; broadcasts warn meanwhile
            log.warning("realtime: could not maintain the realtime.messages partitions: %s", exc)

    async def start(self) -> None:
        await self.run_once()
        self._task = asyncio.create_task(self._loop(), name="realtime-janitor")

    async def stop(self) -> None:
        await background.cancel(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            await self.run_once()
