"""`make demo`: the product end to end on the local stack.

Starts devstack (database, gateway, model stand-ins) and the worker, signs a user in with
supabase-py, subscribes to the user's private topic `jobs:<uid>`, submits one job of each kind,
shows live progress from Realtime (no polling), streamed edit text as it arrives, the results
and the timings (enqueue → claimed → done), then stops what it started.

With ANTHROPIC_API_KEY and GEMINI_API_KEY in the environment and DEMO_REAL_MODELS=1 the worker
calls the real APIs; otherwise it uses the local stand-ins and says so.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import demo_fallback  # scripts/, beside this file
import httpx
from realtime.types import BroadcastPayload, RealtimeChannelOptions
from rich.console import Console
from rich.live import Live
from rich.table import Table

from devstack import cli, envfile, paths, pgcluster, services
from supabase import AsyncClient, acreate_client

console = Console(highlight=False)
TIMEOUT_SECONDS = 120.0
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KIND_ORDER = ("generate_design", "rename_layers", "generate_edits", "generate_image")


def layers(n: int) -> list[dict[str, Any]]:
    """A frame's worth of badly named layers, as the plugin collects them from a selection."""
    kinds = ["RECTANGLE", "TEXT", "FRAME", "ELLIPSE", "VECTOR"]
    texts = ["Start free trial", "Pricing", "Most popular", "$29/mo", "Contact sales"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        out.append(
            {
                "id": f"12:{100 + i}",
                "type": kind,
                "name": f"{kind.title()} {i + 1}",
                "text": texts[i % len(texts)] if kind == "TEXT" else None,
                "parent_id": "12:1" if i < n // 2 else "12:2",
            }
        )
    return out


PAYLOADS: dict[str, dict[str, Any]] = {
    "generate_design": {
        "prompt": "A pricing page with three tiers, the middle one highlighted",
        "design_system": {"summary": "Inter; 8 px grid; primary #4F46E5; radius 12", "components": []},
        "platform": "desktop",
    },
    "rename_layers": {"layers": layers(50), "context": "pricing page"},
    "generate_edits": {"text": "Start your free trial today", "instruction": "friendlier, shorter", "variants": 3},
    "generate_image": {"prompt": "a calm mountain lake at dawn, flat illustration", "aspect_ratio": "16:9"},
}


@dataclass
class Tracked:
    kind: str
    job_id: str
    enqueued_at: float
    status: str = "queued"
    percent: float = 0.0
    message: str = ""
    partial: str = ""
    history: list[str] = field(default_factory=list)
    row: dict[str, Any] = field(default_factory=dict)
    done: asyncio.Event = field(default_factory=asyncio.Event)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((paths.HOST, 0))
        port: int = s.getsockname()[1]
        return port


def model_env() -> tuple[dict[str, str], str]:
    real = (
        os.environ.get("DEMO_REAL_MODELS") == "1"
        and os.environ.get("ANTHROPIC_API_KEY")
        and os.environ.get("GEMINI_API_KEY")
    )
    if real:
        return {"ANTHROPIC_BASE_URL": "", "GEMINI_BASE_URL": ""}, "real Anthropic and Gemini APIs (DEMO_REAL_MODELS=1)"
    stand_in = f"http://{paths.HOST}:{paths.MODELS_PORT}"
    env = {
        "ANTHROPIC_API_KEY": "devstack-standin",
        "GEMINI_API_KEY": "devstack-standin",
        "ANTHROPIC_BASE_URL": stand_in,
        "GEMINI_BASE_URL": stand_in,
    }
    return env, f"no real model keys in use: the LOCAL STAND-INS at {stand_in} answer (deterministic, not a real model)"


def pace_stand_ins(latency_ms: int, stream_delay_ms: int) -> dict[str, int] | None:
    """Give the stand-ins a model-like pace so live progress is visible; returns the old knobs."""
    url = f"http://{paths.HOST}:{paths.MODELS_PORT}/_standin/config"
    try:
        old: dict[str, int] = httpx.get(url, timeout=5).json()
        httpx.post(
            url, json={"latency_ms": latency_ms, "stream_delay_ms": stream_delay_ms}, timeout=5
        ).raise_for_status()
    except httpx.HTTPError:
        return None
    return old


def restore_stand_ins(old: dict[str, int] | None) -> None:
    if old is not None:
        httpx.post(f"http://{paths.HOST}:{paths.MODELS_PORT}/_standin/config", json=old, timeout=5)


class Worker:
    """`python -m worker run` as a child process, stopped with SIGTERM (drain) at the end."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.log = paths.STATE / "demo-worker.log"
        # HEALTH_HOST: with PORT set the worker would listen on every interface (Railway's case).
        full_env = {
            **os.environ,
            **env,
            "PORT": str(self.port),
            "HEALTH_HOST": paths.HOST,
            "WORKER_ID": "demo-worker",
            "WORKER_CONCURRENCY": "4",
        }
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "worker", "--env-file", str(paths.ENV_FILE), "run"],
                cwd=paths.ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"demo: the worker exited with {self.proc.returncode}; see {self.log}")
            try:
                if httpx.get(f"http://{paths.HOST}:{self.port}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"demo: the worker was not healthy within {timeout:.0f} s; see {self.log}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def render(tracked: list[Tracked]) -> Table:
    table = Table(title="jobs (live from Realtime)", expand=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("progress", no_wrap=True)
    table.add_column("latest", overflow="ellipsis", no_wrap=True, ratio=1)
    for t in tracked:
        filled = int(t.percent / 5)
        bar = "█" * filled + "░" * (20 - filled)
        latest = f"“…{t.partial[-70:]}”" if t.partial and t.status == "running" else t.message
        colour = {"succeeded": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}.get(
            t.status, "white"
        )
        table.add_row(t.kind, f"[{colour}]{t.status}[/]", f"{bar} {t.percent:5.1f}%", latest)
    return table


async def subscribe(client: AsyncClient, uid: str, by_id: dict[str, Tracked]) -> None:
    def on_job(msg: BroadcastPayload) -> None:
        p = msg["payload"]
        t = by_id.get(p.get("id", ""))
        if t is None:
            return
        t.status = p["status"]
        t.percent = float((p.get("progress") or {}).get("percent") or t.percent)
        t.message = (p.get("progress") or {}).get("message") or t.message
        t.history.append(f"{p['status']} {t.percent:.0f}% {t.message}".strip())
        if p["status"] in ("succeeded", "failed", "cancelled"):
            t.done.set()

    def on_event(msg: BroadcastPayload) -> None:
        p = msg["payload"]
        t = by_id.get(p.get("job_id", ""))
        if t is not None and p.get("type") == "partial":
            t.partial += p["data"].get("text", "")

    subscribed = asyncio.Event()
    failure: list[str] = []

    def on_status(state: Any, err: Exception | None) -> None:
        if getattr(state, "value", state) == "SUBSCRIBED":
            subscribed.set()
        elif err is not None:
            failure.append(str(err))
            subscribed.set()

    options: RealtimeChannelOptions = {"config": {"broadcast": None, "presence": None, "private": True}}
    channel = client.channel(f"jobs:{uid}", options)
    channel.on_broadcast("job", on_job)
    channel.on_broadcast("job_event", on_event)
    await channel.subscribe(on_status)
    await asyncio.wait_for(subscribed.wait(), 15)
    if failure:
        raise SystemExit(f"demo: joining jobs:{uid} failed: {failure[0]}")


def summarize(t: Tracked) -> str:
    r = t.row.get("result") or {}
    if t.status != "succeeded":
        return f"{t.status}: {(t.row.get('error') or {}).get('message', '')}"
    if t.kind == "generate_design":
        return f"node tree '{r['root'].get('name')}' with {r['node_count']} nodes"
    if t.kind == "rename_layers":
        names = r["names"]
        return f"{len(names)} layers renamed, e.g. " + "; ".join(f"{n['id']} → {n['name']}" for n in names[:3])
    if t.kind == "generate_edits":
        return " | ".join(v.get("text", "")[:40] for v in r["variants"])
    return f"{r['path']} ({r['mime_type']}, {r['width']}×{r['height']}, {r['bytes']} bytes in Storage)"


def seconds(a: str | None, b: str | None) -> str:
    if not a or not b:
        return "—"
    return f"{(datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds():.2f}s"


async def run_job(client: AsyncClient, kind: str, by_id: dict[str, Tracked], tracked: list[Tracked]) -> Tracked:
    started = time.monotonic()
    row = cast(
        dict[str, Any], (await client.rpc("enqueue_job", {"kind": kind, "payload": PAYLOADS[kind]}).execute()).data
    )
    t = Tracked(kind, row["id"], started)
    by_id[t.job_id] = t
    tracked.append(t)
    return t


async def show_fallback(client: AsyncClient, by_id: dict[str, Tracked]) -> bool:
    """One more design job while the stand-in says Claude is overloaded: the chain's next model answers."""
    console.rule("fallback: Claude overloaded (stand-in fault knob), the kind's chain moves on")
    demo_fallback.overload_primary(f"http://{paths.HOST}:{paths.MODELS_PORT}")
    chain = " → ".join("/".join(m) for m in (demo_fallback.PRIMARY, demo_fallback.FALLBACK))
    console.print(f"chain of generate_design in public.kind_models: {chain}; the stand-in answers the first 529")
    t = await run_job(client, "generate_design", by_id, [])
    await asyncio.wait_for(t.done.wait(), TIMEOUT_SECONDS)
    row = cast(dict[str, Any], (await client.table("jobs").select("*").eq("id", t.job_id).execute()).data[0])
    how = demo_fallback.describe(row["result"])
    console.print(f"design job {t.job_id}: {row['status']} in {row['attempts']} attempt(s), {how}")
    console.print(f"result.model = {row['result'].get('model') if row['result'] else None}")
    for c in demo_fallback.cooldowns():
        console.print(
            f"shared cooldown (public.model_capacity): {c['provider']}/{c['model']} after a {c['cooldown_status']},"
            f" {c['seconds_left']} s left: no replica sends to it meanwhile"
        )
    return bool(row["status"] == "succeeded" and (row["result"] or {}).get("model", {}).get("fallback"))


async def run_jobs(env: dict[str, str], fallback: bool) -> bool:
    # The publishable key, as a plugin gets it today (the worker reads SUPABASE_SECRET_KEY from the env file).
    client = await acreate_client(env["SUPABASE_URL"], env["SUPABASE_PUBLISHABLE_KEY"])
    session = (await client.auth.sign_in_anonymously()).session
    assert session is not None and session.user is not None
    uid = session.user.id
    await client.realtime.set_auth(session.access_token)
    console.print(f"signed in anonymously as user [bold]{uid}[/]; subscribing to private topic jobs:{uid}")
    by_id: dict[str, Tracked] = {}
    tracked: list[Tracked] = []
    await subscribe(client, uid, by_id)

    for kind in KIND_ORDER:
        await run_job(client, kind, by_id, tracked)

    with Live(render(tracked), console=console, refresh_per_second=10) as live:
        deadline = time.monotonic() + TIMEOUT_SECONDS
        while not all(t.done.is_set() for t in tracked) and time.monotonic() < deadline:
            live.update(render(tracked))
            await asyncio.sleep(0.1)
        live.update(render(tracked))

    # Results and timestamps come from the rows (RLS: the user's own), not from the broadcasts.
    rows = cast(list[dict[str, Any]], (await client.table("jobs").select("*").in_("id", list(by_id)).execute()).data)
    for row in rows:
        by_id[row["id"]].row = row

    edits = next(t for t in tracked if t.kind == "generate_edits")
    console.rule("streamed edit text, as it arrived over Realtime")
    console.print(edits.partial.strip() or "(nothing streamed)")

    table = Table(title="results and timings (server clock)")
    for col in ("kind", "attempts", "enqueue → claimed", "claimed → done", "model", "result"):
        table.add_column(col, overflow="fold")
    for t in tracked:
        r = t.row
        table.add_row(
            t.kind,
            str(r.get("attempts")),
            seconds(r.get("created_at"), r.get("started_at")),
            seconds(r.get("started_at"), r.get("finished_at")),
            "{provider}/{model}".format(**(r.get("result") or {}).get("model", {"provider": "?", "model": "?"})),
            summarize(t),
        )
    console.print(table)

    image = next(t for t in tracked if t.kind == "generate_image")
    if image.status == "succeeded":
        data = await client.storage.from_("job-artifacts").download(image.row["result"]["path"])
        is_png = data.startswith(PNG_SIGNATURE)
        console.print(f"downloaded the image back as the user: {len(data)} bytes, PNG: {is_png}")
    design = next(t for t in tracked if t.kind == "generate_design")
    console.print(f"progress history of the design job: {' → '.join(design.history)}")
    fell_back = await show_fallback(client, by_id) if fallback else True
    await client.realtime.remove_all_channels()
    return fell_back and all(t.status == "succeeded" for t in tracked)


def main() -> int:
    console.rule("local stack")
    # Stop at the end exactly what the demo started: a running database or service is left alone.
    was_running = {svc.name for svc in services.ALL if svc.pid() is not None}
    db_was_running = pgcluster.status().running
    cli.stack_up()
    env = envfile.values()
    extra, models_note = model_env()
    console.print(f"\n[bold]models:[/] {models_note}")
    paced = pace_stand_ins(latency_ms=600, stream_delay_ms=25) if extra.get("ANTHROPIC_BASE_URL") else None
    # The fallback needs the stand-ins' fault knob, and a chain the worker reads when it starts.
    fallback = bool(extra.get("ANTHROPIC_BASE_URL")) and demo_fallback.install_chain()
    console.rule("worker")
    worker = Worker(extra)
    try:
        worker.wait_healthy()
        console.print(f"python -m worker run is up (health on 127.0.0.1:{worker.port}, log {worker.log})")
        console.rule("one job of each kind")
        ok = asyncio.run(run_jobs(env, fallback))
    finally:
        code = worker.stop()
        if fallback:
            demo_fallback.remove_chain()
        restore_stand_ins(paced)
        console.print(f"worker stopped (SIGTERM → drained, exit {code})")
        for svc in reversed(services.ALL):
            if svc.name not in was_running:
                svc.stop()
        if not db_was_running:
            pgcluster.stop()
    console.rule("done" if ok else "some jobs did not succeed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
