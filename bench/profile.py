"""`python -m bench.profile [--system ours_postgres] [--jobs 10000] [--out DIR]`: one drain run with
py-spy attached to the worker process; writes py-spy's raw (collapsed) stacks (the input of any
flamegraph tool) and a summary of the functions with the most samples (self and total).

The worker runs on uvloop, whose idle wait is C code: it shows as the loop's Python caller
(`Runner.run`) on top of the stack, where asyncio's loop shows `EpollSelector.select`.

py-spy comes with the bench venv (bench/requirements.txt). Attaching needs ptrace rights over the
worker (same user; on some systems kernel.yama.ptrace_scope must be 0 or 1).
"""

from __future__ import annotations

import argparse
import collections
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import harness
from bench.databases import scratch_database
from bench.systems import registry

PYSPY = Path(sys.executable).with_name("py-spy")


def summarize(collapsed: Path, top: int = 25) -> str:
    """The functions with the most samples: self (on top of the stack) and total (anywhere in it)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    samples = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        samples += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    out = [f"samples: {samples}", "", "self:"]
    out += [f"  {n / samples:6.1%}  {f}" for f, n in own.most_common(top)]
    out += ["", "total:"]
    out += [f"  {n / samples:6.1%}  {f}" for f, n in total.most_common(top)]
    return "\n".join(out) + "\n"


def _attach(pid: int, raw: Path, log: Path) -> subprocess.Popen[bytes]:
    """py-spy on ``pid``; retried while the interpreter is still starting (py-spy exits at once then)."""
    # --nonblocking: py-spy otherwise stops the process for every sample, and a uvloop worker
    # stopped and resumed 250 times a second spins (an idle loop: 5.8 s of CPU in 8 s, against
    # 0.4 unobserved), which would profile the profiler.
    argv = [str(PYSPY), "record", "--nonblocking", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    argv += ["-o", str(raw)]
    for _ in range(50):
        with log.open("ab") as err:
            spy = subprocess.Popen(argv, stdout=err, stderr=err)
        try:
            spy.wait(timeout=0.3)
        except subprocess.TimeoutExpired:
            return spy
    raise SystemExit(f"py-spy could not attach to {pid}; see {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile")
    parser.add_argument("--system", default="ours_postgres", choices=sorted(registry.MODULES))
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("bench/results") / time.strftime("%Y%m%dT%H%M%SZ-profile"))
    args = parser.parse_args(argv)
    system = registry.load(args.system)
    args.out.mkdir(parents=True, exist_ok=True)
    with scratch_database(f"profile_{args.system}") as db:
        system.prepare(db)
        system.reset(db)
        system.fill(db, args.jobs)
        with harness.maybe_gateway(system, db) as gateway:
            tag = f"profile-{args.system}"
            logs = args.out / "logs"  # worker log and handler records: not kept in git
            logs.mkdir(exist_ok=True)
            with harness.workers(system, db, gateway, 1, args.concurrency, logs, tag, wait_ready=False) as procs:
                pid = procs[0].proc.pid
                raw = args.out / f"{args.system}.collapsed.txt"
                spy = _attach(pid, raw, logs / "py-spy.log")
                cpu = harness.CpuMeter(procs)
                started = time.monotonic()
                _, capped = harness.wait_empty(system, db, 300, cpu)
                seconds = time.monotonic() - started
                spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
                spy.wait(timeout=60)
    summary = summarize(raw)
    head = f"{args.system}: {args.jobs} jobs in {seconds:.1f} s (capped: {capped}), "
    head += f"worker CPU {cpu.ms_per_job()} ms/job (profiler overhead included)\n\n"
    (args.out / f"{args.system}.summary.txt").write_text(head + summary)
    print(head + summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
