"""`python -m bench.json_reader`: what the gateway's bounded JSON reader costs on worst-case bodies.

For each body (10 MB, the gateway's Settings.max_body_bytes, unless it is a refused or an
allowed-at-the-limit shape) it prints the best of a few runs of plain ``json.loads``, of
``bounded_json.parse`` (pre-scan + parse, or refusal), and the longest event-loop stall while
``bounded_json.parse_async`` handles it (a 1 ms ticker runs meanwhile). No servers, no network.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import statistics
import time
from collections.abc import Callable

from bench.report import ROOT, md_table, save_measurement
from devstack.gateway import bounded_json

SIZE = 10 * 1024 * 1024
RUNS = 5


def _filled(unit: bytes) -> bytes:
    count = (SIZE - 2) // (len(unit) + 1)
    return b"[" + b",".join([unit] * count) + b"]"


def _array(unit: bytes, count: int) -> bytes:
    return b"[" + b",".join([unit] * count) + b"]"


def bodies() -> dict[str, bytes]:
    deep = b"[" * bounded_json.MAX_DEPTH + b"]" * bounded_json.MAX_DEPTH
    return {
        "10 MB of tiny ints [0,0,...]": _filled(b"0"),
        "10 MB of empty objects": _filled(b"{}"),
        "10 MB of empty strings": _filled(b'""'),
        "10 MB of 41-digit ints": _filled(b"9" * 41),
        "10 MB of allowed-depth nests": _filled(deep),
        "100,000 levels of [": b"[" * 100_000 + b"]" * 100_000,
        "10 MB string": b'"' + b"x" * (SIZE - 2) + b'"',
        "10 MB string of \\u00e9 escapes": b'"' + b"\\u00e9" * ((SIZE - 2) // 6) + b'"',
        '10 MB string of \\" and \\\\': b'"' + b'\\"\\\\' * ((SIZE - 2) // 4) + b'"',
        "10 MB string of [{,": b'"' + b"[{," * ((SIZE - 2) // 3) + b'"',
        "limit: 100,000 tiny ints": _array(b"0", bounded_json.MAX_VALUES),
        "limit: 100,000 40-digit ints": _array(b"9" * 40, bounded_json.MAX_VALUES),
        "limit: 100,000 nested lists": _array(deep[1:-1], bounded_json.MAX_VALUES // bounded_json.MAX_DEPTH),
        "limit: 1,000 objects of 10 KB strings": _array(b'{"k":"' + b"y" * 10_000 + b'"}', 1000),
    }


def _best_ms(work: Callable[[], object]) -> tuple[float, str]:
    best, outcome = float("inf"), "ok"
    for _ in range(RUNS):
        start = time.perf_counter()
        try:
            work()
        except bounded_json.JsonError as exc:
            outcome = exc.problem
        except (ValueError, RecursionError) as exc:
            outcome = type(exc).__name__
        best = min(best, time.perf_counter() - start)
    return best * 1000, outcome


async def _stall_ms(body: bytes) -> float:
    """The longest gap a 1 ms ticker sees while parse_async handles ``body``."""
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.001)
            gaps.append(time.perf_counter() - start)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.02)
    with contextlib.suppress(bounded_json.JsonError):
        await bounded_json.parse_async(body)
    done.set()
    await task
    return max(gaps) * 1000


def main() -> None:
    load_before = os.getloadavg()
    rows: list[dict[str, object]] = []
    for name, body in bodies().items():
        plain, plain_outcome = _best_ms(lambda body=body: json.loads(body))  # type: ignore[misc]
        bounded, outcome = _best_ms(lambda body=body: bounded_json.parse(body))  # type: ignore[misc]
        stall = statistics.median(asyncio.run(_stall_ms(body)) for _ in range(3))
        rows.append(
            {
                "body": name,
                "bytes": len(body),
                "json.loads ms": f"{plain:.1f} ({plain_outcome})",
                "bounded parse ms": f"{bounded:.1f} ({outcome})",
                "event-loop stall ms": f"{stall:.1f}",
            }
        )
    print(md_table(rows))
    out = save_measurement("json-reader", "python -m bench.json_reader", rows, load_before)
    print(f"saved {out.relative_to(ROOT)}/report.json and report.md")


if __name__ == "__main__":
    main()
