"""`python -m worker run [--check] | stats | purge [--older-than 7d] | schema [--check]`.

Exit codes: 0 done (including a drained shutdown, or a passed `run --check`), 1 stale schemas /
runtime failure / Supabase unreachable or refusing the key, 2 invalid configuration or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from worker.config import ConfigError, Settings, load_settings
from worker.retention_cli import duration

EXIT_CONFIG = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description="The Figma AI job worker")
    parser.add_argument("--env-file", type=Path, help="read KEY=VALUE settings from this file (e.g. .devstack/env)")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="claim and run jobs until SIGTERM/SIGINT")
    run.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration, make one service-role call to Supabase, print one line and exit",
    )
    sub.add_parser("stats", help="print the dashboard views (job_stats, active_jobs, pending_jobs_queue)")
    purge = sub.add_parser(
        "purge",
        help="one retention run: purge finished jobs, queue orphaned files, delete them through Storage",
    )
    purge.add_argument(
        "--older-than",
        type=duration,
        default=timedelta(days=7),
        help="purge jobs finished longer ago than this (default 7d; units s/m/h/d)",
    )
    purge.add_argument("--no-purge", action="store_true", help="only delete files (orphans and the outbox)")
    purge.add_argument(
        "--orphan-grace",
        type=duration,
        default=None,
        help="delete files no job owns once older than this (default RETENTION_ORPHAN_GRACE_SECONDS, 1d)",
    )
    schema = sub.add_parser("schema", help="write worker/schemas/<kind>.{payload,result}.json")
    schema.add_argument("--check", action="store_true", help="exit 1 if the checked-in schemas are stale")
    args = parser.parse_args(argv)

    if args.command == "schema":
        from worker.schema_export import export

        return export(check=args.check)

    try:
        settings = load_settings(args.env_file)
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "purge":
        from worker.retention_cli import purge as run_purge

        return asyncio.run(run_purge(settings, None if args.no_purge else args.older_than, args.orphan_grace))
    if args.command == "stats":
        from worker.stats import print_stats

        return asyncio.run(print_stats(settings))
    try:
        settings.check_model_keys()
    except ConfigError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check:
        return _check(settings)
    return _run(settings)


def _check(settings: Settings) -> int:
    from worker import preflight

    result = asyncio.run(preflight.check(settings))
    print(f"worker: {result.line}", file=sys.stdout if result.ok else sys.stderr)
    return result.exit_code


def _run(settings: Settings) -> int:
    from worker import compose, event_loop

    try:
        return event_loop.run(compose.run_worker(settings), settings.worker_event_loop)
    except KeyboardInterrupt:  # a signal before the handlers were installed
        return 0
