"""The supabase-py subscriber, a process of its own: ``python -m bench.scenarios.notify subscribe
--url URL --topic jobs:<uid> --out FILE --expect N [--max-seconds S]`` (env NOTIFY_ANON_KEY,
NOTIFY_ACCESS_TOKEN: kept off the command line, which `ps` shows). See clients.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from realtime.types import BroadcastPayload, RealtimeChannelOptions

from bench.scenarios.notify.plan import READY_TIMEOUT_S, STATUSES
from supabase import acreate_client


async def subscribe(args: argparse.Namespace) -> int:
    records: list[tuple[str, str, str | None, float]] = []
    seen: set[tuple[str, str]] = set()
    job_events = 0
    done = asyncio.Event()
    joined = asyncio.Event()
    statuses: list[str] = []
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)

    def on_job(message: BroadcastPayload) -> None:
        t = time.time()  # first, before any other work in the callback
        p = message.get("payload") or {}
        key = (str(p.get("id")), str(p.get("status")))
        records.append((*key, p.get("updated_at"), t))
        if key[1] in STATUSES:
            seen.add(key)
        if len(seen) >= args.expect:
            done.set()

    def on_job_event(_message: BroadcastPayload) -> None:
        nonlocal job_events
        job_events += 1

    def on_status(state: Any, err: Exception | None) -> None:
        name = str(getattr(state, "value", state))
        statuses.append(name)
        if name == "SUBSCRIBED":
            joined.set()
        elif err is not None:
            print(f"notify subscriber: {name}: {err}", file=sys.stderr)

    client = await acreate_client(args.url, os.environ["NOTIFY_ANON_KEY"])
    await client.realtime.set_auth(os.environ["NOTIFY_ACCESS_TOKEN"])
    # The plugin's channel: private, `job` and `job_event` handlers (job_event is only counted).
    options: RealtimeChannelOptions = {"config": {"broadcast": None, "presence": None, "private": True}}
    channel = client.channel(args.topic, options)
    channel.on_broadcast("job", on_job)
    channel.on_broadcast("job_event", on_job_event)
    await channel.subscribe(on_status)
    try:
        await asyncio.wait_for(joined.wait(), READY_TIMEOUT_S)
    except TimeoutError:
        print(f"notify subscriber: not joined ({statuses})", file=sys.stderr)
        return 1
    sys.stdout.write("SUBSCRIBED\n")
    sys.stdout.flush()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), args.max_seconds)
    with args.out.open("w") as f:
        for job_id, status, updated_at, t in records:
            f.write(json.dumps({"id": job_id, "status": status, "updated_at": updated_at, "t": t}) + "\n")
    meta = {
        "client": "supabase-py",
        "version": metadata.version("supabase"),
        "received": len(records),
        "job_events": job_events,
        "statuses": statuses,
    }
    args.out.with_name(args.out.name + ".meta.json").write_text(json.dumps(meta) + "\n")
    with contextlib.suppress(Exception):
        await asyncio.wait_for(client.realtime.remove_all_channels(), 2)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scenarios.notify")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("subscribe", help="the supabase-py subscriber (env NOTIFY_ANON_KEY, NOTIFY_ACCESS_TOKEN)")
    s.add_argument("--url", required=True)
    s.add_argument("--topic", required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--expect", type=int, required=True, help="stop after this many distinct (job id, status)")
    s.add_argument("--max-seconds", type=float, default=120.0)
    args = parser.parse_args(argv)
    return asyncio.run(subscribe(args))
