"""What every scenario gets (Context) and gives back (ScenarioResult) to the report."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_USERS, MAX_USERS = 1, 2000  # --users: each user is a task of the load generator and an auth.users row


@dataclass(frozen=True)
class Context:
    out_dir: Path  # bench/results/<timestamp>/: plots go here, named <scenario>_*.png
    quick: bool = False  # smaller counts: a smoke run of the whole pipeline, not numbers to quote
    systems: tuple[str, ...] | None = None  # the queue scenarios' systems (None: all of them)
    users: int | None = None  # the AI scenarios' plugin users (None: the plan's own count)

    @property
    def log_dir(self) -> Path:
        path = self.out_dir / "logs"
        path.mkdir(parents=True, exist_ok=True)
        return path


@dataclass
class Goal:
    """One goal of the issue: the target as text, what was measured, and whether it was met."""

    name: str
    target: str
    measured: str
    met: bool | None  # None: not measurable in this run (say why in `measured`)


@dataclass
class ScenarioResult:
    name: str  # "pickup", "drain", ...
    title: str
    method: str  # markdown: what was measured and how
    settings: dict[str, Any]  # every knob that shaped the numbers, per system where it differs
    table: list[dict[str, Any]]  # the summary rows (same keys in every row), printed and in report.md
    data: dict[str, Any] = field(default_factory=dict)  # everything else measured, for report.json
    plots: list[str] = field(default_factory=list)  # file names in Context.out_dir
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
