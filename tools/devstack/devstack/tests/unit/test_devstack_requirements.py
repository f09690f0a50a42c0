"""devstack has its own requirements file: it lists every third-party package devstack's code
imports (its tests and pytest plugin run on requirements-dev.txt), at the versions the worker's
runtime file pins (one venv holds both)."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

from devstack import paths

REQUIREMENTS = paths.TOOL / "requirements.txt"
# Test code, not the tool: run by pytest from the development venv.
TEST_PACKAGES = (paths.PACKAGE / "tests", paths.PACKAGE / "testing")
# import name -> the distribution that provides it (anyio comes with starlette and httpx)
DISTRIBUTION = {"jwt": "pyjwt", "psycopg_pool": "psycopg-pool", "anyio": "starlette"}


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)", line.strip())
        if match:
            found[match.group(1).lower()] = match.group(2)
    return found


def third_party_imports(package: Path) -> set[str]:
    names: set[str] = set()
    for source in package.rglob("*.py"):
        if any(source.is_relative_to(tests) for tests in TEST_PACKAGES):
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("devstack", "__future__")}


def test_devstack_lists_what_it_imports() -> None:
    listed = pins(REQUIREMENTS)
    needed = {DISTRIBUTION.get(name, name) for name in third_party_imports(paths.PACKAGE)}
    assert needed <= set(listed), f"missing from {REQUIREMENTS}: {sorted(needed - set(listed))}"


def test_devstack_pins_the_workers_versions() -> None:
    devstack, worker = pins(REQUIREMENTS), pins(paths.ROOT / "requirements.txt")
    differing = {
        name: (version, worker[name]) for name, version in devstack.items() if worker.get(name, version) != version
    }
    assert differing == {}
