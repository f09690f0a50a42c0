"""`python -m bench.loadcurve [--users 50,100,200,400] [--rounds 2] [--out DIR]`: CPU per AI job of
every process at several loads.

Runs `python -m bench ai --users N` once per load and round (ascending loads in even rounds,
descending in odd ones: this box's speed drifts between minutes) and tabulates what each run's
report measured: jobs finished per second, the CPU per job of the worker, the gateway stand-in,
the model stand-ins and the load generator, the worker's ratio to the last two (whose work per job
is fixed), and the overhead's p99. Every process's CPU per job falls as the box gets busier, its own
work per job unchanged: this box is a virtual machine whose idle CPUs pay for waking up (see
`python -m bench.idlecost`). Writes bench/results/<timestamp>-loadcurve/report.md and report.json;
each run's own report stays in its folder beside them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench import processes
from bench.scenario import MAX_USERS, MIN_USERS
from bench.support import ROOT, results_folder, write_tool_report
from bench.worker_cpu import worker_to_reference

PROCESSES = ("worker", "gateway", "model_standins", "load_generator")


def schedule(loads: list[int], rounds: int) -> list[tuple[int, int]]:
    """(round, users) in run order: ascending in even rounds, descending in odd ones."""
    return [(r, users) for r in range(rounds) for users in (loads if r % 2 == 0 else loads[::-1])]


def read_run(report: dict[str, Any]) -> dict[str, Any]:
    """One run's figures from its report.json (the `ai` scenario)."""
    data = report["scenarios"]["ai_workload"]["data"]
    cpu = data["cpu_ms_per_job"]
    return {
        "jobs_per_s": data["counts"]["throughput_completed_per_s"],
        "cpu_ms_per_job": {name: cpu.get(name) for name in PROCESSES},
        "worker_ratio": worker_to_reference(cpu),
        "overhead_p99_ms": data["worker_overhead_ms"]["all"]["p99_ms"],
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def curve(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per load (ascending): the medians over its rounds."""
    rows = []
    for users in sorted({r["users"] for r in runs}):
        mine = [r for r in runs if r["users"] == users]
        rows.append(
            {
                "users": users,
                "runs": len(mine),
                "jobs_per_s": _median([r["jobs_per_s"] for r in mine]),
                "cpu_ms_per_job": {p: _median([r["cpu_ms_per_job"][p] for r in mine]) for p in PROCESSES},
                "worker_ratio": _median([r["worker_ratio"] for r in mine]),
                "overhead_p99_ms": _median([r["overhead_p99_ms"] for r in mine]),
            }
        )
    return rows


def render(rows: list[dict[str, Any]], runs: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:g}"

    lines = [
        "# CPU per AI job at several loads (`python -m bench.loadcurve`)",
        "",
        f"Settings: `{json.dumps(settings)}`. Each run is `python -m bench ai --users N` (worker via "
        "Supabase); medians over the rounds. CPU per job: the process's user + system CPU during the "
        "load ÷ jobs finished. The model stand-ins and the load generator do the same work per job at "
        "every load.",
        "",
        "| users | runs | jobs/s | worker ms/job | gateway | model stand-ins | load generator "
        "| worker ÷ (stand-ins + load generator) | overhead p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        cpu = row["cpu_ms_per_job"]
        lines.append(
            f"| {row['users']} | {row['runs']} | {cell(row['jobs_per_s'])} | "
            + " | ".join(cell(cpu[p]) for p in PROCESSES)
            + f" | {cell(row['worker_ratio'])} | {cell(row['overhead_p99_ms'])} |"
        )
    lines += ["", "Every run, in order:", "", "| round | users | jobs/s | worker ms/job | gateway | folder |"]
    lines += ["|---|---|---|---|---|---|"]
    for run in runs:
        cpu = run["cpu_ms_per_job"]
        lines.append(
            f"| {run['round'] + 1} | {run['users']} | {cell(run['jobs_per_s'])} | {cell(cpu['worker'])} "
            f"| {cell(cpu['gateway'])} | `{run['folder']}` |"
        )
    return "\n".join(lines) + "\n"


def _loads(text: str) -> list[int]:
    try:
        loads = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers, got {text!r}") from None
    if not loads or any(not MIN_USERS <= n <= MAX_USERS for n in loads):
        raise argparse.ArgumentTypeError(f"each load must be {MIN_USERS}-{MAX_USERS}, got {text!r}")
    return loads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadcurve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=_loads, default=[50, 100, 200, 400], help="loads, e.g. 50,100,200,400")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10:
        parser.error(f"--rounds must be 1-10, got {args.rounds}")
    out = results_folder(args.out, "loadcurve")
    settings = {"users": args.users, "rounds": args.rounds}
    runs = []
    for n, users in schedule(args.users, args.rounds):
        folder = out / f"users-{users}-round-{n + 1}"
        argv_run = [sys.executable, "-m", "bench", "ai", "--users", str(users), "--out", str(folder)]
        log_path = out / f"{folder.name}.log"
        with open(log_path, "w") as log:
            done = subprocess.run(argv_run, cwd=ROOT, env=processes.clean_env(), stdout=log, stderr=log)
        if done.returncode != 0:
            raise SystemExit(f"`{' '.join(argv_run[1:])}` exited {done.returncode}; its output: {log_path}")
        run = read_run(json.loads((folder / "report.json").read_text()))
        runs.append({"round": n, "users": users, "folder": folder.name, **run})
        print(f"round {n + 1}, {users} users: worker {run['cpu_ms_per_job']['worker']} ms/job", flush=True)
    rows = curve(runs)
    return write_tool_report(out, {"settings": settings, "curve": rows, "runs": runs}, render(rows, runs, settings))


if __name__ == "__main__":
    raise SystemExit(main())
