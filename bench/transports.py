"""`python -m bench.transports [--requests 1000] [--concurrency 200] [--rounds 3] [--out DIR]`: CPU
per request of the worker's HTTP clients on each transport, against the model stand-in.

Each measurement is a fresh process (``--one CASE TRANSPORT``) that warms up with 50 requests (at
most ``--requests``), then sends ``--requests`` requests, ``--concurrency`` at a time, and reports its own CPU time
(``time.process_time``: user + system, all threads) per request; the stand-in answers after
``--latency-ms`` (300; streams then send their deltas ``--stream-delay-ms``, 15, apart), so the
requests overlap as under the AI load.
Cases, each on the transport the worker ships (first) and the other one:
  anthropic        ``messages.with_raw_response.create`` (real SDK) read by the worker's ``read_answer``, as the
                   worker completes: aiohttp (``DefaultAioHttpClient``) / httpx2
  anthropic_stream ``messages.create(stream=True)`` read to its last event, as the worker streams: aiohttp / httpx2
  gemini_image     ``generate_content`` of an image (real SDK): httpx2 / aiohttp (google-genai's own)
  rest             a JSON POST on httpx's API (the REST and Storage calls of WORKER_STORE=supabase):
                   httpx-aiohttp / httpx, 10 at a time (the worker's batchers keep one call each in
                   flight; more than its 100 pooled connections at once is not its load)
Transports alternate round by round (this box's speed drifts). Writes
bench/results/<timestamp>-transports/report.md and report.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

from bench import processes
from bench.support import ROOT, results_folder, standin_process, write_tool_report

CASES = {  # case -> (shipped transport, the other)
    "anthropic": ("aiohttp", "httpx2"),
    "anthropic_stream": ("aiohttp", "httpx2"),
    "gemini_image": ("httpx2", "aiohttp"),
    "rest": ("aiohttp", "httpx"),
}
WARM_UP = 50
REST_CONCURRENCY = 10


def _client(
    case: str, transport: str, base: str
) -> tuple[Callable[[int], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """One request of ``case`` on ``transport``, and how to close the client."""
    if case.startswith("anthropic"):
        import anthropic

        from worker.providers.claude import StreamReader, read_answer, spans_option, stream_text

        sdk_http = anthropic.DefaultAioHttpClient(timeout=60) if transport == "aiohttp" else None  # None: its httpx2
        claude = anthropic.AsyncAnthropic(
            api_key="bench",
            base_url=base,
            max_retries=0,
            timeout=60,
            http_client=sdk_http,
            open_telemetry=spans_option(),  # as the worker makes it
        )
        messages: Any = [{"role": "user", "content": "job_kind: generate_edits"}]

        async def ask(i: int) -> None:
            if case == "anthropic":
                raw = await claude.messages.with_raw_response.create(
                    model="claude-haiku-4-5", max_tokens=200, messages=messages
                )
                read_answer(await raw.read())
                return
            reader = StreamReader()
            async for _ in stream_text(claude, reader, model="claude-haiku-4-5", max_tokens=200, messages=messages):
                pass
            reader.usage()

        return ask, claude.close
    if case == "gemini_image":
        import httpx2
        from google import genai
        from google.genai import types

        args = {"transport": httpx2.AsyncHTTPTransport()} if transport == "httpx2" else None
        gemini = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=base, async_client_args=args))

        async def draw(i: int) -> None:
            await gemini.aio.models.generate_content(model="gemini-2.5-flash-image", contents=f"a cat {i}")

        return draw, gemini.aio.aclose
    from httpx_aiohttp import HttpxAiohttpClient

    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    http = (
        HttpxAiohttpClient(limits=limits, timeout=60)
        if transport == "aiohttp"
        else httpx.AsyncClient(limits=limits, timeout=60)
    )
    body = {"model": "claude-haiku-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}

    async def post(i: int) -> None:
        response = await http.post(
            f"{base}/v1/messages", json=body, headers={"x-api-key": "bench", "anthropic-version": "2023-06-01"}
        )
        response.raise_for_status()
        json.loads(response.content)

    return post, http.aclose


async def _measure(case: str, transport: str, base: str, requests: int, concurrency: int) -> float:
    send, close = _client(case, transport, base)
    gate = asyncio.Semaphore(min(concurrency, REST_CONCURRENCY) if case == "rest" else concurrency)

    async def one(i: int) -> None:
        async with gate:
            await send(i)

    try:
        await asyncio.gather(*(one(i) for i in range(min(WARM_UP, requests))))
        started = time.process_time()
        await asyncio.gather(*(one(i) for i in range(requests)))
        return (time.process_time() - started) * 1000 / requests
    finally:
        await close()


def _round(case: str, transport: str, base: str, requests: int, concurrency: int) -> float:
    argv = [sys.executable, "-m", "bench.transports", "--one", case, transport, base, "--requests", str(requests)]
    argv += ["--concurrency", str(concurrency)]
    done = subprocess.run(argv, cwd=ROOT, env=processes.clean_env(), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{case} on {transport} failed:\n{done.stderr[-2000:]}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["cpu_ms_per_request"])


def render(results: dict[str, dict[str, list[float]]], settings: dict[str, Any]) -> str:
    lines = [
        "# CPU per request of the worker's HTTP clients by transport (`python -m bench.transports`)",
        "",
        f"Settings: `{json.dumps(settings)}`. Client process CPU (user + system) per request, each round a "
        "fresh process; the stand-in runs in its own process and is not counted.",
        "",
        "| case | shipped transport: ms per request (rounds) | other transport: ms per request (rounds) "
        "| shipped / other (medians) |",
        "|---|---|---|---|",
    ]
    for case, (shipped, other) in CASES.items():
        a, b = results[case][shipped], results[case][other]
        cells = [
            f"{t}: median {statistics.median(xs):.2f} ({', '.join(f'{x:.2f}' for x in xs)})"
            for t, xs in ((shipped, a), (other, b))
        ]
        lines.append(f"| {case} | {cells[0]} | {cells[1]} | {statistics.median(a) / statistics.median(b):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-ms", type=int, default=300, help="the stand-in's answer latency")
    parser.add_argument("--stream-delay-ms", type=int, default=15, help="between the stand-in's streamed deltas")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--one", nargs=3, metavar=("CASE", "TRANSPORT", "BASE_URL"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 1 <= args.requests <= 100_000 or not 1 <= args.concurrency <= 1000 or not 1 <= args.rounds <= 20:
        parser.error("--requests must be 1-100000, --concurrency 1-1000, --rounds 1-20")
    if not 0 <= args.latency_ms <= 60_000 or not 0 <= args.stream_delay_ms <= 1000:
        parser.error("--latency-ms must be 0-60000, --stream-delay-ms 0-1000")
    if args.one:
        case, transport, base = args.one
        if case not in CASES or transport not in CASES[case]:
            parser.error(f"--one: unknown case or transport {case!r} {transport!r}")
        ms = asyncio.run(_measure(case, transport, base, args.requests, args.concurrency))
        print(json.dumps({"cpu_ms_per_request": round(ms, 4)}))
        return 0
    out = results_folder(args.out, "transports")
    settings = {
        "requests": args.requests,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "rest_concurrency": REST_CONCURRENCY,
        "standin_latency_ms": args.latency_ms,
        "stream_delay_ms": args.stream_delay_ms,
    }
    results: dict[str, dict[str, list[float]]] = {case: {t: [] for t in pair} for case, pair in CASES.items()}
    with standin_process(out / "standins.log") as (base, _pid):
        httpx.post(
            f"{base}/_standin/config",
            json={"latency_ms": args.latency_ms, "stream_delay_ms": args.stream_delay_ms},
            timeout=10,
        ).raise_for_status()
        for n in range(args.rounds):
            for case, pair in CASES.items():
                for transport in pair if n % 2 == 0 else tuple(reversed(pair)):
                    ms = _round(case, transport, base, args.requests, args.concurrency)
                    results[case][transport].append(ms)
                    print(f"  round {n + 1}: {case} on {transport}: {ms:.3f} ms CPU per request", flush=True)
    return write_tool_report(out, {"settings": settings, "results": results}, render(results, settings), echo=True)


if __name__ == "__main__":
    raise SystemExit(main())
