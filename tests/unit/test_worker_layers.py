"""The layer rule, as import-linter checks it (the contracts in pyproject.toml, run by `make test`):
worker.core imports no adapter, provider, SDK, web framework or rich, and the app plumbing sits
above handlers | adapters | providers, which sit above the core."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
# One module per kind of forbidden import, each dropped into a copy of worker/core.
VIOLATIONS = {
    "uses_adapter": ("from worker.adapters.postgres import PostgresStore", "worker.adapters.postgres"),
    "uses_provider": ("from worker.providers.claude import ClaudeProvider", "worker.providers.claude"),
    "uses_handler": ("from worker.handlers import HANDLERS", "worker.handlers"),
    "uses_app": ("from worker.config import Settings", "worker.config"),
    "uses_supabase": ("import supabase", "supabase"),
    "uses_postgrest": ("from postgrest.exceptions import APIError", "postgrest"),
    "uses_realtime": ("import realtime", "realtime"),
    "uses_anthropic": ("import anthropic", "anthropic"),
    "uses_genai": ("from google import genai", "google"),
    "uses_httpx": ("import httpx", "httpx"),
    "uses_psycopg": ("import psycopg", "psycopg"),
    "uses_starlette": ("from starlette.applications import Starlette", "starlette"),
    "uses_uvicorn": ("import uvicorn", "uvicorn"),
    "uses_rich": ("from rich.table import Table", "rich"),
}


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts on the ``worker`` package under ``root``."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache", "--no-logo"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": str(LINT_IMPORTS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_worker(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "worker", tmp_path / "worker", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path / "worker"


def test_the_tree_keeps_every_contract() -> None:
    assert (ROOT / "worker" / "core" / "runtime.py").is_file()  # the loop is in the checked package
    run = lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout


def test_core_importing_a_transport_breaks_the_contracts(tmp_path: Path) -> None:
    worker = copy_of_worker(tmp_path)
    for name, (statement, _) in VIOLATIONS.items():
        (worker / "core" / f"{name}.py").write_text(f"{statement}\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BROKEN" in run.stdout and "Contracts: 0 kept, 2 broken." in run.stdout
    missed = {name for name, (_, target) in VIOLATIONS.items() if f"worker.core.{name} -> {target}" not in run.stdout}
    assert missed == set(), run.stdout


@pytest.mark.parametrize(
    ("where", "statement", "expected"),
    [
        (
            "handlers/uses_adapter.py",
            "import worker.adapters.files",
            "worker.handlers.uses_adapter -> worker.adapters.files",
        ),
        (
            "providers/uses_handler.py",
            "import worker.handlers.figma",
            "worker.providers.uses_handler -> worker.handlers.figma",
        ),
        ("adapters/uses_app.py", "import worker.compose", "worker.adapters.uses_app -> worker.compose"),
    ],
)
def test_the_middle_layer_is_independent_and_below_the_app(
    tmp_path: Path, where: str, statement: str, expected: str
) -> None:
    worker = copy_of_worker(tmp_path)
    (worker / where).write_text(f"{statement}\n")
    run = lint_imports(tmp_path)
    assert run.returncode == 1 and expected in run.stdout, run.stdout + run.stderr


def test_a_new_top_level_module_must_choose_its_layer(tmp_path: Path) -> None:
    worker = copy_of_worker(tmp_path)
    (worker / "newcomer.py").write_text("")
    run = lint_imports(tmp_path)
    assert run.returncode == 1 and "worker.newcomer" in run.stdout, run.stdout + run.stderr
