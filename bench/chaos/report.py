"""report.json and report.md of a chaos run, and the summary printed at the end."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from bench.chaos.faults import Injected


def faults_section(done: list[Injected], recoveries: list[float | None]) -> dict[str, Any]:
    by_type: Counter[str] = Counter(f.fault for f in done if f.error is None)
    failed: Counter[str] = Counter(f.fault for f in done if f.error is not None)
    points: Counter[str] = Counter(f.detail for f in done if f.fault == "kill_9" and f.error is None)
    worst: dict[str, float] = {}
    unrecovered: Counter[str] = Counter()
    for f, r in zip(done, recoveries, strict=True):
        if f.error is not None:
            continue
        if r is None:
            unrecovered[f.fault] += 1
        else:
            worst[f.fault] = max(worst.get(f.fault, 0.0), round(r, 2))
    return {
        "injected_by_type": dict(by_type),
        "kill_points": dict(points),
        "kills_with_jobs_in_flight": sum(1 for f in done if f.fault == "kill_9" and f.jobs_running),
        "jobs_in_flight_at_kills": sum(len(f.jobs_running) for f in done if f.fault == "kill_9"),
        "could_not_apply": dict(failed),
        "errors": [f"{f.fault}: {f.error}" for f in done if f.error is not None][:20],
        "max_recovery_s_by_type": worst,
        "max_recovery_s": max(worst.values(), default=None),
        "no_recovery_measured": dict(unrecovered),
    }


def write(out_dir: Path, data: dict[str, Any]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    (out_dir / "report.md").write_text(markdown(data))


def markdown(d: dict[str, Any]) -> str:
    v, f, s = d["verdict"], d["faults"], d["settings"]
    lines = [
        f"# Chaos run {d['measured_at']} — {'PASS' if d['ok'] else 'FAIL'}",
        "",
        f"`{d['command']}` against {d['target']}, seed {s['seed']}, {d['duration_s']:.0f} s in all.",
        "",
        "| | |",
        "|---|---|",
        f"| jobs | {v['jobs']} ({', '.join(f'{k} {n}' for k, n in v['by_status'].items())}) |",
        f"| lost | {v['lost']} |",
        f"| doubled | {v['doubled']} |",
        f"| stuck | {v['stuck']} |",
        f"| attempts miscounted | {v['attempts_wrong']} |",
        f"| subscribed clients missing the final state | {v['client_missed_final']} |",
        f"| subscribed clients whose last state differs | {v['client_wrong_final']} |",
        f"| final state reached subscribers via | {', '.join(f'{k} {n}' for k, n in v['client_final_via'].items())} |",
        f"| worker kills -9 with jobs in flight | {f['kills_with_jobs_in_flight']} |",
        f"| max recovery | {_seconds(f['max_recovery_s'])} |",
        "",
        "## Faults",
        "",
        "| fault | injected | max recovery (s) |",
        "|---|---|---|",
    ]
    for name, n in f["injected_by_type"].items():
        lines.append(f"| {name} | {n} | {f['max_recovery_s_by_type'].get(name, '—')} |")
    lines += [
        "",
        f"Kill points: {json.dumps(f['kill_points'])}; kills that hit a worker holding jobs: "
        f"{f['kills_with_jobs_in_flight']} ({f['jobs_in_flight_at_kills']} jobs in flight).",
        f"Skipped (not possible against this target): {', '.join(d['skipped']) or 'none'}.",
        f"Could not apply: {json.dumps(f['could_not_apply'])}.",
        "",
        "Recovery: for a kill -9 or SIGTERM, until every job the worker held was running on another "
        "worker or finished (lease + sweep + the retry back-off); for the other faults, from the end "
        "of the fault's action until the next job succeeded.",
        "",
        "## Settings",
        "",
        "```json",
        json.dumps(s, indent=1),
        "```",
        "",
        f"Load: {json.dumps(d['load'])}",
        "",
        f"Machine: {json.dumps(d['machine'])}",
        "",
    ]
    if v["examples"]:
        lines += ["## Findings", "", *(f"- `{k}`: {why}" for k, why in v["examples"].items()), ""]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    return "n/a (no audit trail on this target)" if value is None else f"{value} s"


def print_summary(d: dict[str, Any], out_dir: Path) -> None:
    v, f = d["verdict"], d["faults"]
    print(
        f"chaos: {'PASS' if d['ok'] else 'FAIL'}: {v['jobs']} jobs {v['by_status']}; lost {v['lost']}, "
        f"doubled {v['doubled']}, stuck {v['stuck']}, attempts miscounted {v['attempts_wrong']}, "
        f"clients missing final {v['client_missed_final']} (wrong {v['client_wrong_final']})"
    )
    print(f"faults: {f['injected_by_type']}; could not apply {f['could_not_apply']}")
    print(f"max recovery: {_seconds(f['max_recovery_s'])}")
    print(f"report: {out_dir / 'report.md'}")
