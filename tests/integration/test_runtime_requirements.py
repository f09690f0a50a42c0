"""The deployed image's Python environment: a fresh venv from requirements.txt alone (what
Railpack installs), running the worker from a copy of worker/ alone (what the watch patterns
deploy on), passes `python -m worker run --check` against devstack and holds no dev tools.

Slow: building the venv takes about a minute with a cold pip cache (seconds when warm).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.testing.fixtures import KEY_FLAVOURS, KeyFlavour, Stack
from tests.integration.check_support import PLACEHOLDER_MODELS, ROOT, one_line, run_check

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DEV_ONLY = ("pytest", "_pytest", "pytest_asyncio", "mypy", "ruff")


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(python of a venv built from requirements.txt alone, an app folder holding worker/ alone)."""
    base = tmp_path_factory.mktemp("runtime")
    app = base / "app"
    shutil.copytree(ROOT / "worker", app / "worker", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "requirements.txt", app / "requirements.txt")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", "requirements.txt"],
        cwd=app,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    return python, app


def test_the_runtime_venv_is_consistent_and_has_no_dev_tools(image: tuple[Path, Path]) -> None:
    python, app = image
    check = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout
    probe = "import importlib.util, sys; print([m for m in sys.argv[1:] if importlib.util.find_spec(m)])"
    found = subprocess.run(
        [str(python), "-c", probe, *DEV_ONLY], cwd=app, capture_output=True, text=True, timeout=60, check=True
    )
    assert found.stdout.strip() == "[]"


@pytest.mark.parametrize("flavour", KEY_FLAVOURS)
def test_a_fresh_runtime_venv_passes_check_against_devstack(
    stack: Stack, image: tuple[Path, Path], flavour: KeyFlavour
) -> None:
    python, app = image
    variable = "SUPABASE_SECRET_KEY" if flavour == "new" else "SUPABASE_SERVICE_ROLE_KEY"
    key = stack.with_flavour(flavour).server_key
    proc = run_check(python, {"SUPABASE_URL": stack.url, variable: key, **PLACEHOLDER_MODELS}, cwd=app)
    assert proc.returncode == 0, proc.stderr
    assert one_line(proc.stdout).startswith(f"worker: check ok: configuration valid; Supabase at {stack.url}")


def test_a_fresh_runtime_venv_with_a_wrong_key_fails_with_one_line(stack: Stack, image: tuple[Path, Path]) -> None:
    python, app = image
    unknown = "sb_secret_" + "A" * 22 + "_" + "B" * 8  # well formed, never issued: the gateway refuses it
    proc = run_check(python, {"SUPABASE_URL": stack.url, "SUPABASE_SECRET_KEY": unknown, **PLACEHOLDER_MODELS}, cwd=app)
    assert proc.returncode == 1
    assert one_line(proc.stderr).startswith(f"worker: check failed: Supabase at {stack.url} refused the worker's key")
