"""The systems in report order, loaded by module name (a missing optional package is reported,
not fatal: the scenario says which system it could not run and why)."""

from __future__ import annotations

import importlib
from typing import cast

from bench.systems.base import System

MODULES = {
    "ours_supabase": "bench.systems.ours_supabase",
    "ours_postgres": "bench.systems.ours_postgres",
    "procrastinate": "bench.systems.procrastinate_queue",
    "pgqueuer": "bench.systems.pgqueuer_queue",
}


def load(name: str) -> System:
    module = importlib.import_module(MODULES[name])
    return cast(System, module.SYSTEM)


def available(names: list[str] | None = None) -> tuple[list[System], dict[str, str]]:
    """The systems that import, and why the others do not."""
    systems: list[System] = []
    problems: dict[str, str] = {}
    for name in names or list(MODULES):
        try:
            systems.append(load(name))
        except ImportError as exc:
            problems[name] = f"{type(exc).__name__}: {exc}"
    return systems, problems
