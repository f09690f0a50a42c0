"""`python -m worker run --check`: one line and exit 0 when the configuration is valid and Supabase
accepts the service-role key; one line naming what failed otherwise (2 configuration, 1 refused
or unreachable). And the newcomer path: `.devstack/env` alone is a complete worker configuration."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest
from dotenv import dotenv_values

from devstack import envfile, migrate, paths
from devstack.gateway.app import create_app
from devstack.gateway.context import Settings
from devstack.paths import free_port
from devstack.testing.fixtures import Stack
from devstack.testing.servers import Server
from tests.integration.check_support import PLACEHOLDER_MODELS, one_line, run_check

pytestmark = pytest.mark.integration
PYTHON = sys.executable


def supabase_env(stack: Stack, key: str, variable: str = "SUPABASE_SERVICE_ROLE_KEY") -> dict[str, str]:
    return {"SUPABASE_URL": stack.url, variable: key, **PLACEHOLDER_MODELS}


def test_check_passes_with_the_service_role_key(stack: Stack) -> None:
    proc = run_check(PYTHON, supabase_env(stack, stack.service_role_key))
    assert proc.returncode == 0, proc.stderr
    line = one_line(proc.stdout)
    assert line.startswith(
        f"worker: check ok: configuration valid; Supabase at {stack.url} answered as the service role "
        "(legacy service_role JWT key from SUPABASE_SERVICE_ROLE_KEY)"
    )
    assert "model APIs not contacted" in line


def test_check_passes_with_the_secret_key_and_says_so(stack: Stack) -> None:
    secret = stack.with_flavour("new").server_key
    proc = run_check(PYTHON, supabase_env(stack, secret, "SUPABASE_SECRET_KEY"))
    assert proc.returncode == 0, proc.stderr
    assert one_line(proc.stdout).startswith(
        f"worker: check ok: configuration valid; Supabase at {stack.url} answered as the service role "
        "(secret API key from SUPABASE_SECRET_KEY)"
    )


@pytest.mark.parametrize("variable", ["SUPABASE_SECRET_KEY", "SUPABASE_SERVICE_ROLE_KEY"])
@pytest.mark.parametrize("kind", ["publishable", "anon"])
def test_a_publishable_or_anon_key_exits_2_before_any_request(stack: Stack, kind: str, variable: str) -> None:
    key = stack.with_flavour("new").client_key if kind == "publishable" else stack.anon_key
    proc = run_check(PYTHON, supabase_env(stack, key, variable))
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"worker: invalid configuration: {variable}: is ")
    assert "the worker needs the project's secret key (sb_secret_…) or its legacy service_role key" in line


def test_check_passes_for_the_postgres_store(stack: Stack) -> None:
    proc = run_check(PYTHON, {"WORKER_STORE": "postgres", "DATABASE_URL": stack.database_url, **PLACEHOLDER_MODELS})
    assert proc.returncode == 0, proc.stderr
    assert one_line(proc.stdout).startswith("worker: check ok: configuration valid; Postgres at DATABASE_URL")


def _foreign_service_role_key() -> str:
    now = int(time.time())
    claims = {"role": "service_role", "iat": now, "exp": now + 3600}
    return jwt.encode(claims, "a-secret-this-stack-never-saw-" + "x" * 32, "HS256")


UNKNOWN_SECRET = "sb_secret_" + "A" * 22 + "_" + "B" * 8  # well formed, never issued


@pytest.mark.parametrize(
    ("key", "variable", "detail"),
    [
        ("foreign", "SUPABASE_SERVICE_ROLE_KEY", "(legacy service_role JWT key from SUPABASE_SERVICE_ROLE_KEY): "),
        ("not-a-key", "SUPABASE_SERVICE_ROLE_KEY", "(key of unrecognised form from SUPABASE_SERVICE_ROLE_KEY): "),
        (UNKNOWN_SECRET, "SUPABASE_SECRET_KEY", "(secret API key from SUPABASE_SECRET_KEY): Unregistered API key"),
    ],
)
def test_a_key_supabase_refuses_fails_with_one_line(stack: Stack, key: str, variable: str, detail: str) -> None:
    value = {"foreign": _foreign_service_role_key()}.get(key, key)  # foreign: signed by another project
    proc = run_check(PYTHON, supabase_env(stack, value, variable))
    assert proc.returncode == 1
    line = one_line(proc.stderr)
    assert line.startswith(f"worker: check failed: Supabase at {stack.url} refused the worker's key {detail}")
    assert line.endswith("it must be the secret key (sb_secret_…) or the legacy service-role key")


def test_an_unreachable_supabase_fails_with_one_line(stack: Stack) -> None:
    url = f"http://{paths.HOST}:{free_port()}"  # nothing listens there
    proc = run_check(PYTHON, {**supabase_env(stack, stack.service_role_key), "SUPABASE_URL": url})
    assert proc.returncode == 1
    assert one_line(proc.stderr).startswith(f"worker: check failed: cannot reach Supabase at {url}: ")


def test_a_configuration_error_exits_2_before_any_request(stack: Stack) -> None:
    proc = run_check(PYTHON, {**supabase_env(stack, stack.service_role_key), "WORKER_CONCURRENCY": "0"})
    assert proc.returncode == 2
    assert one_line(proc.stderr).startswith("worker: invalid configuration: WORKER_CONCURRENCY:")


# --- the newcomer path: python -m devstack up, then python -m worker with .devstack/env ------------


@pytest.fixture(scope="module")
def devstack_env_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The env file exactly as `python -m devstack up` writes it, with devstack's gateway at the
    URL the file names: the developer's running one, or an in-process one on that port."""
    values = envfile.values()
    if os.environ.get("SUPABASE_URL", values["SUPABASE_URL"]) != values["SUPABASE_URL"]:
        pytest.skip("the suites run against another stack; .devstack/env describes devstack")
    file = tmp_path_factory.mktemp("devstack") / "env"
    file.write_text(envfile.render(values))
    try:
        running = httpx.get(f"{values['SUPABASE_URL']}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        running = False
    if running:
        yield file
        return
    with Server(create_app(Settings.from_stack()), paths.API_PORT):
        yield file


def test_the_env_file_carries_marked_placeholder_model_keys_and_the_stand_ins(devstack_env_file: Path) -> None:
    values = dotenv_values(devstack_env_file)
    stand_ins = f"http://{paths.HOST}:{paths.MODELS_PORT}"
    for provider in ("ANTHROPIC", "GEMINI"):
        assert values[f"{provider}_API_KEY"] == envfile.MODEL_KEY_PLACEHOLDER
        assert "placeholder" in envfile.MODEL_KEY_PLACEHOLDER and "stand-ins" in envfile.MODEL_KEY_PLACEHOLDER
        assert values[f"{provider}_BASE_URL"] == stand_ins


def test_the_devstack_env_file_alone_configures_a_worker_that_passes_check(devstack_env_file: Path) -> None:
    proc = run_check(PYTHON, {}, env_file=devstack_env_file)
    assert proc.returncode == 0, proc.stderr
    url = dotenv_values(devstack_env_file)["SUPABASE_URL"]
    assert one_line(proc.stdout).startswith(f"worker: check ok: configuration valid; Supabase at {url}")


def test_a_database_without_the_provider_limit_migration_fails_with_one_line(stack: Stack) -> None:
    # The key works and job_kinds is there, but public.kind_models (20261204000200) is not: the
    # worker would run without its fallback chains and shared limits, so the check says so.
    name = f"check_{uuid.uuid4().hex[:10]}"
    migrate.recreate_database(name)
    try:
        migrate.migrate(name, seed=False)
        with psycopg.connect(paths.admin_url(name), autocommit=True) as conn:
            conn.execute("drop table public.kind_models cascade")
        env = {"WORKER_STORE": "postgres", "DATABASE_URL": paths.database_url(name), **PLACEHOLDER_MODELS}
        proc = run_check(PYTHON, env)
    finally:
        migrate.drop_database(name)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith("worker: check failed: Postgres at DATABASE_URL cannot read the fallback chains"), line
    assert line.endswith("are the migrations pushed?"), line
