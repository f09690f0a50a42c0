"""report.json, report.md and the printed summary of one `python -m bench` run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import psycopg
from rich.console import Console
from rich.table import Table

from bench.scenario import ScenarioResult
from devstack import paths

ROOT = Path(__file__).resolve().parent.parent
FIXES = ROOT / "bench" / "FIXES.md"  # profiling and before/after of product fixes, kept by hand


def machine_info(load_before: tuple[float, float, float]) -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
    with psycopg.connect(paths.database_url(), autocommit=True) as conn:
        row = conn.execute("select version()").fetchone()
        pg = str(row[0]) if row else "unknown"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return {
        "cpu": cpu,
        "nproc": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "postgres": pg,
        "git_commit": commit.stdout.strip() or None,
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }


def save_measurement(
    name: str, command: str, rows: list[dict[str, Any]], load_before: tuple[float, float, float]
) -> Path:
    """A standalone measurement (python -m bench.hostile, bench.json_reader): its rows, the machine
    and the command, as bench/results/<timestamp>-<name>/report.json and report.md."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = ROOT / "bench" / "results" / f"{stamp}-{name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {"measured_at": stamp, "command": command, "machine": machine_info(load_before), "rows": rows}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / "report.md").write_text(f"# {name}\n\n`{command}` at {stamp}\n\n{md_table(rows)}\n")
    return out_dir


def write(out_dir: Path, header: dict[str, Any], results: list[ScenarioResult]) -> None:
    report = {**header, "scenarios": {r.name: asdict(r) for r in results}}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (out_dir / "report.md").write_text(markdown(header, results))


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def md_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_\n"
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def goal_rows(results: list[ScenarioResult]) -> list[dict[str, Any]]:
    return [
        {"goal": g.name, "target": g.target, "measured": g.measured, "met": "–" if g.met is None else g.met}
        for r in results
        for g in r.goals
    ]


def markdown(header: dict[str, Any], results: list[ScenarioResult]) -> str:
    m = header["machine"]
    parts = [
        f"# Benchmark report {header['measured_at']}\n",
        f"`{header['command']}` on {m['cpu']} ({m['nproc']} cores, {m['memory_gib']} GiB), {m['platform']}, "
        f"Python {m['python']}, {m['postgres'].split(' on ')[0]}; commit `{m['git_commit']}`; "
        f"load average before {m['loadavg_before']}, after {m['loadavg_after']}. "
        f"Took {header['duration_s']:.0f} s.\n",
        "Every number is measured in this run on this machine; nothing here is asserted by a test. "
        "All systems share one PostgreSQL cluster (each its own database) and the machine's cores.\n",
        "## Goals\n",
        md_table(goal_rows(results)),
    ]
    for r in results:
        parts += [f"## {r.title}\n", r.method + "\n", md_table(r.table)]
        parts += [f"![{p}]({p})\n" for p in r.plots]
        if r.notes:
            parts.append("Notes:\n\n" + "\n".join(f"- {n}" for n in r.notes) + "\n")
        parts.append(
            "<details><summary>Settings</summary>\n\n```json\n"
            + json.dumps(r.settings, indent=2)
            + "\n```\n</details>\n"
        )
    if FIXES.exists():
        parts += ["## Profiling and fixes (before / after)\n", FIXES.read_text()]
    return "\n".join(parts)


def print_summary(results: list[ScenarioResult], out_dir: Path) -> None:
    console = Console(width=160)
    for r in results:
        if r.table:
            table = Table(title=r.title, title_justify="left")
            for col in r.table[0]:
                table.add_column(col)
            for row in r.table:
                table.add_row(*(_cell(row.get(c)) for c in r.table[0]))
            console.print(table)
        for note in r.notes:
            console.print(f"  note: {note}")
    rows = goal_rows(results)
    if rows:
        table = Table(title="Goals", title_justify="left")
        for col in rows[0]:
            table.add_column(col)
        for row in rows:
            table.add_row(*(_cell(row[c]) for c in row))
        console.print(table)
    console.print(f"report: {out_dir / 'report.md'} (and report.json, *.png)")
