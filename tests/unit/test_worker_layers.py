"""The layer rules, as import-linter checks them (the contracts in pyproject.toml, run by `make test`):
worker.core imports no adapter, provider, SDK, web framework or rich, and the app plumbing sits
above handlers | adapters | providers, which sit above the core; the worker imports no tool or test,
devstack nothing of the product's tests, and the product's tests never devstack's tests."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
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


WORKER_CONTRACTS = ("core-imports-no-transport", "worker-layers")
TREE_CONTRACTS = ("worker-imports-no-tool", "devstack-is-a-tool", "test-trees-apart")


def config_with(tmp_path: Path, contract_ids: tuple[str, ...], root_packages: list[str]) -> Path:
    """The repository's import-linter section with only ``contract_ids``, as a config file for a
    copy of part of the tree (values are strings and lists of strings: JSON writes them as TOML)."""
    section = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    lines = ["[tool.importlinter]", f"root_packages = {json.dumps(root_packages)}", "include_external_packages = true"]
    for contract in section["contracts"]:
        if contract["id"] in contract_ids:
            lines.append("[[tool.importlinter.contracts]]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in contract.items()]
    config = tmp_path / "importlinter.toml"
    config.write_text("\n".join(lines) + "\n")
    return config


def lint_imports(root: Path, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """lint-imports with the repository's contracts (or ``config``) on the packages under ``root``."""
    if config is None:
        config = config_with(root, WORKER_CONTRACTS, ["worker"]) if root != ROOT else ROOT / "pyproject.toml"
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(config), "--no-cache", "--no-logo"],
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
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert sorted(c["id"] for c in contracts) == sorted(WORKER_CONTRACTS + TREE_CONTRACTS)
    assert f"Contracts: {len(contracts)} kept, 0 broken." in run.stdout


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


def test_crossing_between_the_product_the_tools_and_the_test_trees_breaks_the_contracts(tmp_path: Path) -> None:
    # The real worker, and skeletons of the other trees with one forbidden import each.
    copy_of_worker(tmp_path)
    (tmp_path / "worker" / "adapters" / "uses_devstack.py").write_text("import devstack.paths\n")
    for package in ("devstack", "devstack/tests", "devstack/testing", "tests", "bench"):
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "__init__.py").write_text("")
    (tmp_path / "devstack" / "paths.py").write_text("")
    (tmp_path / "devstack" / "uses_tests.py").write_text("import tests\n")
    (tmp_path / "devstack" / "uses_worker.py").write_text("import worker.core.jobs\n")
    (tmp_path / "devstack" / "tests" / "uses_worker.py").write_text("import worker.core.jobs\n")  # allowed
    (tmp_path / "tests" / "uses_plugin.py").write_text("import devstack.testing\n")  # allowed
    (tmp_path / "tests" / "uses_devstack_tests.py").write_text("import devstack.tests\n")
    (tmp_path / "bench" / "uses_devstack_tests.py").write_text("import devstack.tests.uses_worker\n")
    run = lint_imports(tmp_path, config_with(tmp_path, TREE_CONTRACTS, ["worker", "devstack", "tests", "bench"]))
    assert run.returncode == 1, run.stdout + run.stderr
    assert "Contracts: 0 kept, 3 broken." in run.stdout, run.stdout
    for crossing in (
        "worker.adapters.uses_devstack -> devstack.paths",
        "devstack.uses_tests -> tests",
        "devstack.uses_worker -> worker.core.jobs",
        "tests.uses_devstack_tests -> devstack.tests",
        "bench.uses_devstack_tests -> devstack.tests.uses_worker",
    ):
        assert crossing in run.stdout, run.stdout
    for allowed in ("devstack.tests.uses_worker -> worker", "tests.uses_plugin -> devstack.testing"):
        assert allowed not in run.stdout, run.stdout
