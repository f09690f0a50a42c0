"""The Railway configuration: .railway/railway.py (IaC) loaded the way the Railway CLI loads it,
railway.toml (legacy Config as Code) saying the same, watch patterns that skip commits the
worker does not run from, and a health endpoint that answers Railway's health checker."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from worker.config import Settings
from worker.core.clock import SystemClock
from worker.core.health import HealthState
from worker.core.metrics import Metrics
from worker.health_server import create_app

ROOT = Path(__file__).resolve().parents[2]
IAC_FILE = ROOT / ".railway" / "railway.py"
CAC_FILE = ROOT / "railway.toml"
# railwayapp/cli src/iac/partial.rs PARTIAL_NAME
PARTIAL_NAME = re.compile(r"^[a-zA-Z0-9._-]{1,64}$")


def load_iac() -> tuple[str | None, dict[str, Any]]:
    """What src/iac/eval.rs `evaluate_python` does: import the file, call main(), JSON it."""
    spec = importlib.util.spec_from_file_location("railway_iac_user", IAC_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    project = module.main()
    payload = json.loads(json.dumps({"partial": getattr(module, "PARTIAL", None), "project": project}))
    return payload["partial"], payload["project"]


def worker_service() -> dict[str, Any]:
    _, project = load_iac()
    services = [r for r in project["resources"] if r["type"] == "service" and r["name"] == "worker"]
    assert len(services) == 1
    service: dict[str, Any] = services[0]
    return service


def cac() -> dict[str, Any]:
    return tomllib.loads(CAC_FILE.read_text())


def test_the_iac_file_evaluates_as_a_partial_graph_of_the_worker_alone() -> None:
    partial, project = load_iac()
    # Without a partial name, `railway config apply` would delete the project's other services.
    assert partial is not None and PARTIAL_NAME.match(partial)
    assert [(r["type"], r["name"]) for r in project["resources"]] == [("service", "worker")]
    assert "source" not in worker_service()  # the service keeps the repository it was created from


def test_the_iac_file_runs_without_any_package_the_way_the_cli_runs_it(tmp_path: Path) -> None:
    # The CLI runs the machine's python3 with no project venv: stdlib only.
    script = (
        "import importlib.util, json, sys\n"
        "spec = importlib.util.spec_from_file_location('railway_iac_user', sys.argv[1])\n"
        "mod = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(mod)\n"
        "print(json.dumps({'partial': mod.PARTIAL, 'project': mod.main()}))\n"
    )
    proc = subprocess.run(
        ["python3", "-I", "-S", "-c", script, str(IAC_FILE)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["project"]["resources"][0]["deploy"]["startCommand"] == "python -m worker run"


def test_railway_toml_and_the_iac_file_say_the_same() -> None:
    service = worker_service()
    assert cac()["build"] == service["build"]
    assert cac()["deploy"] == service["deploy"]


def test_railpack_and_the_worker_start_command() -> None:
    deploy = cac()["deploy"]
    assert cac()["build"]["builder"] == "RAILPACK"
    assert "NIXPACKS" not in CAC_FILE.read_text() + IAC_FILE.read_text()
    assert deploy["startCommand"] == "python -m worker run"
    assert deploy["restartPolicyType"] in {"ON_FAILURE", "ALWAYS", "NEVER"}
    assert 1 <= deploy["restartPolicyMaxRetries"] <= 10  # the most Railway's free plans allow


def test_draining_outlasts_the_workers_own_drain() -> None:
    drain = Settings.model_fields["drain_timeout_seconds"].default
    assert cac()["deploy"]["drainingSeconds"] > drain + 10


def watched(path: str) -> bool:
    """Railway's watch patterns are gitignore-style and anchored at the repository root."""
    patterns = cac()["build"]["watchPatterns"]
    assert all(p.startswith("/") for p in patterns), "anchor every pattern at the root"
    return any(fnmatch.fnmatchcase(path, p.removeprefix("/")) for p in patterns)


@pytest.mark.parametrize(
    "path",
    [
        "worker/core/runtime.py",
        "worker/adapters/queries.sql",
        "worker/schemas/generate_design.payload.json",
        "requirements.txt",
        ".python-version",
        "railway.toml",
    ],
)
def test_a_change_to_what_the_image_runs_redeploys(path: str) -> None:
    assert watched(path)


@pytest.mark.parametrize(
    "path",
    [
        "plugin-client/src/ui/main.ts",
        "plugin-client/manifest.json",
        "supabase/migrations/20261123000100_jobs_schema.sql",  # pushed with `supabase db push`
        "tools/devstack/devstack/gateway/app.py",
        "tests/unit/test_worker_core.py",
        "bench/requirements.txt",
        "requirements-dev.txt",
        "README.md",
        "docs/deploy.md",
        "pyproject.toml",  # tool settings; Railpack installs requirements.txt only
    ],
)
def test_a_change_elsewhere_does_not_redeploy(path: str) -> None:
    assert not watched(path)


def test_every_tracked_worker_file_is_watched() -> None:
    files = subprocess.run(
        ["git", "ls-files", "worker"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    assert files and all(watched(f) for f in files)


def test_the_health_path_answers_railways_health_checker() -> None:
    state = HealthState(SystemClock(), heartbeat_interval=10.0, store_ok=True)
    state.beat()
    client = TestClient(create_app(state, Metrics()), base_url="http://healthcheck.railway.app")
    response = client.get(cac()["deploy"]["healthcheckPath"])
    assert response.status_code == 200  # Railway wants 200; no host check turns it into a 400
    assert response.json()["status"] == "ok"
