"""`python -m bench [scenario ...] [--quick]`: run the scenarios side by side on this machine and
write bench/results/<timestamp>/report.json, report.md and PNG plots.

Loopback only: everything runs against the devstack PostgreSQL cluster (127.0.0.1:54322, started
here if it is down) in scratch databases that are dropped afterwards, with gateways, workers and
stand-ins on free loopback ports, all stopped when their scenario ends.

`python -m bench attack ...` runs the attack suite instead (bench/attack/cli.py), and
`python -m bench chaos ...` the chaos suite (bench/chaos/runner.py).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from bench import report
from bench.scenario import MAX_USERS, MIN_USERS, Context, ScenarioResult

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = {  # CLI name → module, in report order
    "pickup": "bench.scenarios.pickup",
    "drain": "bench.scenarios.drain",
    "notify": "bench.scenarios.notify",
    "ai": "bench.scenarios.ai_workload",
    "ai_direct": "bench.scenarios.ai_direct",
    "scaleout": "bench.scenarios.scaleout",
    "limits": "bench.scenarios.provider_limits",
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["attack"]:  # its own options and target (bench/attack/cli.py)
        from bench.attack.cli import main as attack_main

        return attack_main(argv[1:])
    if argv[:1] == ["chaos"]:  # its own command: a fault schedule, not a side-by-side scenario
        from bench.chaos.runner import main as chaos

        return chaos(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario", help=f"any of {', '.join(SCENARIOS)} (default: all)"
    )
    parser.add_argument("--quick", action="store_true", help="small counts: checks the pipeline, numbers not quotable")
    parser.add_argument(
        "--systems",
        default=None,
        help="comma-separated systems for the queue scenarios (pickup, drain), e.g. ours_postgres,pgqueuer "
        "(default: all); for A/B runs on a busy machine",
    )
    parser.add_argument(
        "--users",
        type=int,
        default=None,
        help=f"plugin users of the AI scenarios (ai, ai_direct), {MIN_USERS}-{MAX_USERS} (default: 200; --quick 20)",
    )
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<timestamp>)")
    args = parser.parse_args(argv)
    if args.users is not None and not MIN_USERS <= args.users <= MAX_USERS:
        parser.error(f"--users must be {MIN_USERS}-{MAX_USERS}, got {args.users}")
    unknown = [s for s in args.scenarios if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    chosen = [s for s in SCENARIOS if s in args.scenarios] if args.scenarios else list(SCENARIOS)
    systems = tuple(s.strip() for s in args.systems.split(",")) if args.systems else None
    from bench.systems.registry import MODULES

    if systems and (bad := [s for s in systems if s not in MODULES]):
        parser.error(f"unknown system(s) {', '.join(bad)}; known: {', '.join(MODULES)}")

    from devstack.cli import db_up
    from devstack.gc_tuning import freeze_imports

    db_up()  # idempotent: starts the project-local cluster if it is down
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    out_dir = args.out or ROOT / "bench" / "results" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(out_dir=out_dir, quick=args.quick, systems=systems, users=args.users)
    load_before = os.getloadavg()
    started = time.monotonic()
    results: list[ScenarioResult] = []
    header = {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": "python -m bench " + " ".join(argv),
        "quick": args.quick,
    }
    for name in chosen:
        print(f"[{name}]", flush=True)
        t0 = time.monotonic()
        scenario = importlib.import_module(SCENARIOS[name])
        freeze_imports()  # the driver simulates the users: no full-collection stops of its own
        result = scenario.run(ctx)
        result.data["scenario_seconds"] = round(time.monotonic() - t0, 1)
        results.append(result)
        # Written after every scenario, so an interrupted run still leaves what it measured.
        header.update(machine=report.machine_info(load_before), duration_s=time.monotonic() - started)
        report.write(out_dir, header, results)
    report.print_summary(results, out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
