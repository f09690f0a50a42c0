"""What a worker remembers about hand-offs: jobs the database claimed for it while it was parked
(20261204000600_worker_wakeups.sql) and sent in a wake-up message.

A handed job can reach the worker twice: in its message, and in the answer of a parking claim
that was on its way when the hand-off committed (that claim returns the handed jobs the worker
did not list as seen). Whichever comes second must not start the job again, even if it has
finished meanwhile:
  * message first: the claim's answer is filtered by the jobs received since it was sent;
  * claim first: the message's rows are filtered by the claims recently started, named by job id
    and lease expiry (set by the claim; a later claim of the same job sets another).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from datetime import datetime

from worker.core.jobs import Job, JobRow

SEEN_MAX = 1000  # claim_jobs_or_park's bound on handed_seen
ClaimKey = tuple[uuid.UUID, datetime | None]


def _key(job: JobRow) -> ClaimKey:
    return (job.id, job.lease_expires_at if isinstance(job, Job) else None)


class Handoffs:
    def __init__(self, remember: int = 4096) -> None:
        self._seen: list[uuid.UUID] = []  # handed jobs received since the last parking claim was sent
        self._since_send: set[uuid.UUID] = set()
        self._claimed: set[ClaimKey] = set()
        self._order: deque[ClaimKey] = deque()
        self._remember = remember

    def take_seen(self) -> list[uuid.UUID]:
        """For a parking claim being sent now: the handed jobs received since the last one."""
        seen, self._seen = self._seen, []
        self._since_send = set()
        return seen

    def put_back(self, seen: list[uuid.UUID]) -> None:
        """The claim that carried ``seen`` failed: the next one lists them again."""
        self._seen[:0] = seen[: SEEN_MAX - len(self._seen)]

    def claimed(self, jobs: Sequence[JobRow]) -> list[JobRow]:
        """A parking claim's answer, less the handed jobs whose message came while it travelled."""
        kept = [job for job in jobs if job.id not in self._since_send]
        for job in kept:
            self._remember_claim(_key(job))
        return kept

    def handed(self, jobs: Sequence[JobRow]) -> list[JobRow]:
        """A message's handed jobs, less those a parking claim already returned."""
        kept = [job for job in jobs if _key(job) not in self._claimed]
        for job in jobs:
            if len(self._seen) < SEEN_MAX:  # beyond: the claim answers with duplicates, dropped above
                self._seen.append(job.id)
            self._since_send.add(job.id)
        return kept

    def _remember_claim(self, key: ClaimKey) -> None:
        self._claimed.add(key)
        self._order.append(key)
        if len(self._order) > self._remember:
            self._claimed.discard(self._order.popleft())
