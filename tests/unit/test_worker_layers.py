"""Layer rule: core modules import no transport (adapters, supabase, psycopg, httpx, SDKs)."""

from __future__ import annotations

import ast
from pathlib import Path

import worker

PACKAGE = Path(worker.__file__).resolve().parent
# Transports and the composition root that wires them; everything else is core.
OUTSIDE_CORE = ("adapters", "providers")
COMPOSITION = {"compose.py"}
BANNED = (
    "worker.adapters",
    "worker.providers",
    "supabase",
    "realtime",
    "postgrest",
    "storage3",
    "psycopg",
    "psycopg_pool",
    "httpx",
    "httpx2",
    "anthropic",
    "google",
    "websockets",
    "uvicorn",
)


def core_modules() -> list[Path]:
    return [
        p
        for p in PACKAGE.rglob("*.py")
        if p.relative_to(PACKAGE).parts[0] not in OUTSIDE_CORE and p.name not in COMPOSITION
    ]


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level:
            raise AssertionError(f"{path}: use absolute imports")
    return names


def test_core_imports_no_transport() -> None:
    modules = core_modules()
    assert len(modules) > 10 and any(p.name == "runtime.py" for p in modules)
    offenders = {
        f"{p.relative_to(PACKAGE)}: {name}"
        for p in modules
        for name in imported(p)
        if any(name == b or name.startswith(b + ".") for b in BANNED)
    }
    assert offenders == set()


def test_the_rule_catches_a_transport_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from worker.adapters.postgres import PostgresStore\nimport httpx\n")
    assert {"worker.adapters.postgres", "httpx"} <= imported(sample)
