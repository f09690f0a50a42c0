"""`python -m bench.transports` end to end at a tiny size: every case measured on both of its
transports, against a real model stand-in, and the report says which one the worker ships."""

from __future__ import annotations

import json
from pathlib import Path

from bench import transports


def test_every_case_is_measured_on_both_transports(tmp_path: Path) -> None:
    out = tmp_path / "report"
    argv = ["--requests", "4", "--concurrency", "4", "--rounds", "1", "--latency-ms", "0", "--stream-delay-ms", "0"]
    assert transports.main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "report.json").read_text())["results"]
    assert set(results) == set(transports.CASES)
    for case, (shipped, other) in transports.CASES.items():
        for transport in (shipped, other):
            [ms] = results[case][transport]
            assert ms > 0, (case, transport)
    report = (out / "report.md").read_text()
    assert "| anthropic | aiohttp: median" in report and "| gemini_image | httpx2: median" in report
