"""bench.loadcurve's run order and table, and bench.idlecost's summary and frame (no plotting imports)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from bench import idlecost, loadcurve
from bench.support import write_tool_report


def report(jobs_per_s: float, worker: float, p99: float) -> dict[str, Any]:
    cpu = {"worker": worker, "gateway": 8.0, "model_standins": 3.0, "load_generator": 3.5}
    data = {
        "cpu_ms_per_job": cpu,
        "counts": {"throughput_completed_per_s": jobs_per_s},
        "worker_overhead_ms": {"all": {"p99_ms": p99}},
    }
    return {"scenarios": {"ai_workload": {"data": data}}}


def test_loads_run_ascending_then_descending() -> None:
    assert loadcurve.schedule([50, 200], 3) == [(0, 50), (0, 200), (1, 200), (1, 50), (2, 50), (2, 200)]


def test_the_curve_takes_each_loads_medians_and_the_workers_ratio() -> None:
    runs = [
        {"round": 0, "users": 200, "folder": "a", **loadcurve.read_run(report(28.0, 7.0, 60.0))},
        {"round": 0, "users": 50, "folder": "b", **loadcurve.read_run(report(7.0, 10.0, 40.0))},
        {"round": 1, "users": 200, "folder": "c", **loadcurve.read_run(report(30.0, 6.0, 80.0))},
    ]
    rows = loadcurve.curve(runs)
    assert [r["users"] for r in rows] == [50, 200]
    assert rows[1]["runs"] == 2 and rows[1]["jobs_per_s"] == 29.0 and rows[1]["overhead_p99_ms"] == 70.0
    assert rows[1]["cpu_ms_per_job"]["worker"] == 6.5
    assert rows[0]["worker_ratio"] == round(10.0 / 6.5, 2)
    text = loadcurve.render(rows, runs, {"users": [50, 200], "rounds": 2})
    assert "| 50 | 1 | 7 | 10 | 8 | 3 | 3.5 | 1.54 | 40 |" in text
    assert "| 2 | 200 | 30 | 6 | 8 | `c` |" in text


def test_a_run_without_a_figure_shows_a_dash() -> None:
    run = loadcurve.read_run(report(28.0, 7.0, 60.0))
    run["cpu_ms_per_job"]["gateway"] = None
    rows = loadcurve.curve([{"round": 0, "users": 200, "folder": "a", **run}])
    assert rows[0]["cpu_ms_per_job"]["gateway"] is None
    assert "| 200 | 1 | 28 | 7 | – |" in loadcurve.render(rows, [], {})


@pytest.mark.parametrize("text", ["", "50,x", "0", "2001", "50,-1"])
def test_bad_loads_are_refused_naming_the_value(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(repr(text))):
        loadcurve._loads(text)


def test_loads_are_sorted_once_each() -> None:
    assert loadcurve._loads("400,50,400, 100") == [50, 100, 400]


def test_idle_cost_summary_compares_each_condition_with_back_to_back() -> None:
    rows = idlecost.summarize({"0": [10.0, 12.0, 11.0], "15": [30.0, 33.0, 31.0], idlecost.SWEPT: [44.0, 44.0]})
    assert [r["condition"] for r in rows] == ["0", "15", idlecost.SWEPT]
    assert rows[0]["vs_back_to_back"] == 1.0 and rows[1]["vs_back_to_back"] == round(31.0 / 11.0, 2)
    assert rows[2]["median_us"] == 44.0 and rows[2]["n"] == 2
    text = idlecost.render(rows, {})
    assert "| after sleeping 15 ms | 3 | 31.0 |" in text and "| back to back | 3 | 11.0 |" in text


def test_idle_cost_reads_its_own_frame_as_the_worker_does() -> None:
    idlecost.receive(idlecost.wake_frame())  # raises if the frame did not read as a hand-off
    not_a_wake = {"event": "wake", "type": "broadcast", "payload": {"no_kind": 1}}
    frame = json.dumps({"ref": None, "event": "broadcast", "topic": "realtime:x", "payload": not_a_wake})
    with pytest.raises(RuntimeError, match="did not read as one"):
        idlecost.receive(frame)


@pytest.mark.parametrize("text", ["", "1,a", "-1", "1001"])
def test_bad_gaps_are_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        idlecost._gaps(text)


def test_a_tools_report_is_written_as_json_and_markdown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert write_tool_report(tmp_path, {"settings": {"a": 1}}, "# title\n", echo=True) == 0
    assert json.loads((tmp_path / "report.json").read_text()) == {"settings": {"a": 1}}
    assert (tmp_path / "report.md").read_text() == "# title\n"
    printed = capsys.readouterr().out
    assert "# title" in printed and f"report: {tmp_path / 'report.md'}" in printed
