"""`python -m bench.idlecost [--gaps 0,0.1,1,3,15,50] [--repeats 300] [--rounds 3] [--out DIR]`: the
CPU the same piece of the worker's work costs back to back, after the process slept, and after its
caches were swept.

The piece is what the worker does with each hand-off it receives via Supabase: supabase-py's
Realtime client validates the frame (realtime-py's message models) and the worker reads the
wake-up and its job row (``read_wake``). One process times it with ``time.thread_time_ns`` (this
thread's CPU only): ``--repeats`` times after sleeping each gap (0: back to back), and, as
``swept``, back to back after touching 64 MB (more than this box's caches) between pieces. The
gaps run interleaved, their order reversed every other round (the box's speed drifts). On a
virtual machine a CPU that went idle can come back with its caches and predictors cold: the same
work then costs more CPU, which is why every process of `python -m bench ai` costs less per job
the busier the box is (`python -m bench.loadcurve`). Writes
bench/results/<timestamp>-idlecost/report.md and report.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from realtime.message import ServerMessageAdapter

from bench.support import results_folder, write_tool_report
from worker.core.job_rows import read_wake
from worker.core.jobs import Job

SWEPT = "swept"
SWEEP_BYTES = 64 * 1024 * 1024
CACHE_LINE = 64


def wake_frame() -> str:
    """A hand-off as the worker's Realtime socket receives it: one rename job of 50 layers."""
    now = datetime.now(UTC)
    job = Job(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        kind="rename_layers",
        status="running",
        run_at=now,
        lease_expires_at=now + timedelta(minutes=1),
        payload={"layers": [{"id": f"1:{i}", "name": f"Rectangle {i}", "type": "RECTANGLE"} for i in range(50)]},
    )
    wake = {
        "kind": job.kind,
        "status": "queued",
        "run_at": now.isoformat(),
        "parked": True,
        "jobs": json.dumps([job.model_dump(mode="json")]),
    }
    message = {"event": "wake", "payload": wake, "type": "broadcast", "meta": {"id": str(uuid.uuid4())}}
    return json.dumps({"ref": None, "event": "broadcast", "payload": message, "topic": "realtime:worker:bench"})


def receive(frame: str) -> None:
    """The worker's work per hand-off frame: the Realtime client's validation, then ``read_wake``."""
    message = ServerMessageAdapter.validate_json(frame)
    payload = message.payload
    if not isinstance(payload, dict) or read_wake(payload.get("payload")) is None:
        raise RuntimeError("the bench's wake-up frame did not read as one")


def _sweeper() -> Callable[[], None]:
    memory = bytearray(SWEEP_BYTES)
    ones = b"\x01" * (SWEEP_BYTES // CACHE_LINE)

    def sweep() -> None:  # one write per cache line
        memory[::CACHE_LINE] = ones

    return sweep


def measure(piece: Callable[[], None], gap_ms: float | None, repeats: int, sweep: Callable[[], None]) -> list[float]:
    """µs of this thread's CPU per piece; ``gap_ms`` None: swept between pieces instead of a sleep."""
    samples = []
    for _ in range(repeats):
        if gap_ms is None:
            sweep()
        elif gap_ms > 0:
            time.sleep(gap_ms / 1000)
        started = time.thread_time_ns()
        piece()
        samples.append((time.thread_time_ns() - started) / 1000)
    return samples


def summarize(samples: dict[str, list[float]]) -> list[dict[str, Any]]:
    """Per condition (in the given order): the median and p90 µs, and the median over the back-to-back one's."""
    base = statistics.median(samples["0"]) if samples.get("0") else None
    rows = []
    for condition, values in samples.items():
        median = statistics.median(values)
        rows.append(
            {
                "condition": condition,
                "n": len(values),
                "median_us": round(median, 1),
                "p90_us": round(statistics.quantiles(values, n=10)[-1], 1) if len(values) >= 2 else round(median, 1),
                "vs_back_to_back": round(median / base, 2) if base else None,
            }
        )
    return rows


def label(condition: str) -> str:
    if condition == SWEPT:
        return f"back to back, {SWEEP_BYTES // 2**20} MB swept before each"
    return "back to back" if float(condition) == 0 else f"after sleeping {condition} ms"


def render(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    lines = [
        "# CPU of the same work after idle gaps (`python -m bench.idlecost`)",
        "",
        f"Settings: `{json.dumps(settings)}`. The piece: realtime-py's validation of a hand-off frame "
        "(one 50-layer rename job) and the worker's `read_wake` of it, as the worker does for each "
        "hand-off it receives via Supabase. This thread's CPU per piece (`thread_time_ns`).",
        "",
        "| condition | pieces | median µs | p90 µs | median ÷ back to back |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "–" if row["vs_back_to_back"] is None else f"{row['vs_back_to_back']:g}"
        lines.append(f"| {label(row['condition'])} | {row['n']} | {row['median_us']} | {row['p90_us']} | {ratio} |")
    return "\n".join(lines) + "\n"


def _gaps(text: str) -> list[float]:
    try:
        gaps = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated milliseconds, got {text!r}") from None
    if not gaps or any(not 0 <= g <= 1000 for g in gaps):
        raise argparse.ArgumentTypeError(f"each gap must be 0-1000 ms, got {text!r}")
    return sorted(set(gaps))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.idlecost", description=__doc__.split("\n\n")[0])
    parser.add_argument("--gaps", type=_gaps, default=[0, 0.1, 1, 3, 15, 50], help="ms asleep before each piece")
    parser.add_argument("--repeats", type=int, default=300, help="pieces per gap and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 10 <= args.repeats <= 10_000 or not 1 <= args.rounds <= 20:
        parser.error("--repeats must be 10-10000, --rounds 1-20")
    if sum(args.gaps) * args.repeats * args.rounds > 600_000:
        parser.error("the gaps × repeats × rounds would sleep over 10 minutes")
    frame, sweep = wake_frame(), _sweeper()
    piece = functools.partial(receive, frame)
    measure(piece, 0, 50, sweep)  # imports, first validations
    conditions: list[tuple[str, float | None]] = [(f"{g:g}", g) for g in args.gaps] + [(SWEPT, None)]
    samples: dict[str, list[float]] = {name: [] for name, _ in conditions}
    for n in range(args.rounds):
        for name, gap in conditions if n % 2 == 0 else conditions[::-1]:
            samples[name] += measure(piece, gap, args.repeats, sweep)
    rows = summarize(samples)
    settings = {"gaps_ms": args.gaps, "repeats": args.repeats, "rounds": args.rounds, "frame_bytes": len(frame)}
    out = results_folder(args.out, "idlecost")
    return write_tool_report(out, {"settings": settings, "rows": rows}, render(rows, settings), echo=True)


if __name__ == "__main__":
    raise SystemExit(main())
