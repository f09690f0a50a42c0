"""`python -m bench attack [--count N] [--seed S] [--quick] [--out DIR] [--print-grants]`

Against SUPABASE_URL when set (see bench/attack/target.py for the variables), else against a
gateway process it starts on a free loopback port over the local devstack database. Writes
bench/results/<timestamp>-attack/report.json and report.md; exits 1 if any count but the number
of requests is above 0.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.attack import forgery, grants
from bench.attack.runner import Outcome, attack
from bench.attack.target import Target
from bench.report import ROOT, machine_info, md_table

DEFAULT_COUNT = 1000  # fuzzed requests and frames; the fixed cases (~450) come on top
QUICK_COUNT = 150


@contextmanager
def local_target() -> Iterator[Target]:
    """devstack's database (started and migrated if need be) behind a gateway process of its own."""
    from bench.support import gateway_process
    from devstack import keys, paths, signing_keys
    from devstack.cli import db_up

    db_up()
    stack = keys.load_or_create()
    with gateway_process() as url:
        yield Target(
            url=url,
            client_key=stack.publishable_key,
            secret_key=stack.secret_key,
            database_url=paths.database_url(),
            local=True,
            extra={"mint": forgery.local_minter(signing_keys.read)},
        )


@contextmanager
def chosen_target() -> Iterator[Target]:
    external = Target.from_env()
    if external is None:
        with local_target() as target:
            yield target
        return
    if secret := os.environ.get("SUPABASE_JWT_SECRET"):
        external.extra["mint"] = forgery.secret_minter(secret)
    yield external


def write_report(out_dir: Path, header: dict[str, Any], outcome: Outcome) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        **header,
        "counts": outcome.counts,
        "requests_per_category": outcome.per_category,
        "statuses": outcome.statuses,
        "notes": outcome.notes,
        "seconds": outcome.seconds,
        "findings": outcome.findings,
    }
    (out_dir / "report.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    rows = [{"count": k, "value": v, "must be 0": k != "requests"} for k, v in outcome.counts.items()]
    per = [{"category": k, "requests": v} for k, v in outcome.per_category.items()]
    md = [
        f"# attack suite\n\n`{header['command']}` at {header['measured_at']} against {header['target']}",
        f"({outcome.seconds} s, seed {header['seed']})\n",
        md_table(rows),
        md_table(per),
        "Statuses: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcome.statuses.items())) + "\n",
    ]
    md += [f"- note: {n}" for n in outcome.notes]
    if not outcome.clean:
        md.append("\n## Findings\n\n```json\n" + json.dumps(outcome.findings, indent=2, default=str) + "\n```")
    (out_dir / "report.md").write_text("\n".join(md) + "\n")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench attack", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--count",
        type=int,
        default=None,
        help=f"fuzzed requests and frames, beyond the ~450 fixed cases (default {DEFAULT_COUNT})",
    )
    parser.add_argument("--seed", type=int, default=20261204)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_COUNT} requests: checks the pipeline")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--print-grants",
        action="store_true",
        help="print the catalog's function grants in supabase/grants_reviewed.json's shape and exit",
    )
    args = parser.parse_args(argv)
    count = args.count or (QUICK_COUNT if args.quick else DEFAULT_COUNT)
    with chosen_target() as target:
        if args.print_grants:
            if not target.database_url:
                parser.error("--print-grants needs DATABASE_URL")
            review = grants.reviewed()
            print(grants.print_catalog(grants.catalog(target.database_url, review["schemas"]), review), end="")
            return 0
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        header = {
            "measured_at": stamp,
            "command": "python -m bench attack " + " ".join(argv),
            "target": "local devstack gateway" if target.local else target.url,
            "seed": args.seed,
        }
        load_before = os.getloadavg()
        outcome = attack(target, count=count, seed=args.seed)
        if target.local:  # the machine and the commit, as the other bench reports give them
            header["machine"] = machine_info(load_before)
    out_dir = args.out or ROOT / "bench" / "results" / f"{stamp}-attack"
    write_report(out_dir, header, outcome)
    print(md_table([{"count": k, "value": v} for k, v in outcome.counts.items()]))
    for note in outcome.notes:
        print(f"note: {note}")
    print(f"saved {out_dir}/report.json and report.md")
    return 0 if outcome.clean else 1
