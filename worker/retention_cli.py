"""`python -m worker purge`: one retention run for operators, then exit.

Purges finished jobs older than ``--older-than`` (what pg_cron does daily), queues orphaned
objects older than ``--orphan-grace``, deletes what the outbox holds through the artifact store
(the Storage API, or ARTIFACTS_DIR with WORKER_STORE=postgres) and prints one line.
"""

from __future__ import annotations

import argparse
import re
from datetime import timedelta

from worker.config import Settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
MAX_DURATION = timedelta(days=3652)  # the SQL functions' 10-year bound


def duration(text: str) -> timedelta:
    """``30s``, ``15m``, ``12h``, ``7d`` (argparse type)."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"expected a number and a unit s/m/h/d such as 7d or 12h, got {text!r}")
    value = timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    if value > MAX_DURATION:
        raise argparse.ArgumentTypeError(f"must be at most 10 years, got {text!r}")
    return value


async def purge(settings: Settings, older_than: timedelta | None, orphan_grace: timedelta | None) -> int:
    from worker.compose import build_retention, build_transports  # lazily: parsing --help stays light

    transports = await build_transports(settings)
    try:
        retention = build_retention(settings, transports, orphan_grace=orphan_grace)
        if retention is None:
            print("worker: this store serves no retention RPCs")
            return 1
        report = await retention.run_once(purge_older_than=older_than)
    finally:
        await transports.store.close()
    print(f"worker: {report.line()}")
    return 1 if report.failed else 0
