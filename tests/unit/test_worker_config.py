"""Configuration: defaults, the env file, and one clear message naming the bad variable (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from worker import cli
from worker.cli import main
from worker.config import ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]
BASE = {
    "SUPABASE_URL": "http://127.0.0.1:54321",
    "SUPABASE_SERVICE_ROLE_KEY": "service-key",
    "ANTHROPIC_API_KEY": "a-key",
    "GEMINI_API_KEY": "g-key",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith(("SUPABASE_", "ANTHROPIC_", "GEMINI_", "WORKER_", "LEASE_", "DATABASE_", "PORT", "HEALTH_")):
            monkeypatch.delenv(name)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_defaults_and_derived_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("WORKER_KINDS", "rename_layers, generate_image")
    env.setenv("LEASE_SECONDS", "30")
    s = load_settings()
    assert s.worker_kinds == ("rename_layers", "generate_image")
    assert s.heartbeat_interval == 10.0  # a third of the lease
    assert s.provider_for("generate_image") == "gemini"
    assert s.model_for("rename_layers") == "claude-haiku-4-5"


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("WORKER_CONCURRENCY", "0", "WORKER_CONCURRENCY"),
        ("WORKER_KINDS", "rename_layers,paint", "WORKER_KINDS"),
        ("LEASE_SECONDS", "2", "LEASE_SECONDS"),
        ("HEARTBEAT_SECONDS", "30", "HEARTBEAT_SECONDS"),
        ("SUPABASE_URL", "", "SUPABASE_URL"),
        ("PROVIDER_GENERATE_DESIGN", "openai", "PROVIDER_GENERATE_DESIGN"),
        ("PORT", "http", "PORT"),
        ("PORT", "0", "PORT"),
        ("PORT", "65536", "PORT"),
        ("PORT", "-1", "PORT"),
        ("PORT", "", "PORT"),
        ("SUPABASE_URL", "db.example.com", "SUPABASE_URL"),
        ("SUPABASE_URL", "ftp://example.com", "SUPABASE_URL"),
        ("WORKER_EVENT_LOOP", "tokio", "WORKER_EVENT_LOOP"),
    ],
)
def test_a_bad_variable_is_named(env: pytest.MonkeyPatch, name: str, value: str, named: str) -> None:
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert f"{named}:" in str(caught.value)


def test_a_missing_key_for_a_used_provider_is_named(env: pytest.MonkeyPatch) -> None:
    env.delenv("GEMINI_API_KEY")
    settings = load_settings()  # reading the views (`stats`) needs no model keys
    with pytest.raises(ConfigError, match="GEMINI_API_KEY: required"):
        settings.check_model_keys()
    env.setenv("WORKER_KINDS", "rename_layers")  # no gemini kind: no gemini key needed
    load_settings().check_model_keys()


def test_run_without_a_model_key_exits_2_naming_it(env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    env.delenv("ANTHROPIC_API_KEY")
    assert cli.main(["run"]) == 2
    assert "ANTHROPIC_API_KEY: required (kind generate_design uses anthropic)" in capsys.readouterr().err


def test_env_file_fills_in_and_the_environment_wins(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.delenv("SUPABASE_URL")
    file = tmp_path / "env"
    file.write_text("SUPABASE_URL='http://127.0.0.1:9999'\nWORKER_CONCURRENCY=7\nSUPABASE_ANON_KEY=x\n")
    env.setenv("WORKER_CONCURRENCY", "3")
    s = load_settings(file)
    assert (s.supabase_url, s.worker_concurrency) == ("http://127.0.0.1:9999", 3)
    with pytest.raises(ConfigError, match="--env-file"):
        load_settings(tmp_path / "missing")


def test_cli_exits_2_with_one_line_naming_the_variable(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("WORKER_CONCURRENCY", "lots")
    assert main(["run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("worker: invalid configuration: WORKER_CONCURRENCY:")
    assert len(err.splitlines()) == 1


def test_module_entry_point_exits_2() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SUPABASE_", "DATABASE_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "worker", "run"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert "SUPABASE_URL" in proc.stderr


@pytest.mark.parametrize(
    ("variables", "bind"),
    [
        ({}, ("127.0.0.1", 8080)),  # local: loopback on the default port
        ({"PORT": "7000"}, ("0.0.0.0", 7000)),  # noqa: S104 - Railway injects PORT, health-checks from outside
        ({"PORT": "7000", "HEALTH_HOST": "127.0.0.1"}, ("127.0.0.1", 7000)),  # HEALTH_HOST wins
        ({"PORT": "7000", "HEALTH_HOST": "::"}, ("::", 7000)),  # e.g. an IPv6-only private network
        ({"HEALTH_HOST": "0.0.0.0"}, ("0.0.0.0", 8080)),  # noqa: S104
    ],
)
def test_the_health_server_binding_follows_port_and_health_host(
    env: pytest.MonkeyPatch, variables: dict[str, str], bind: tuple[str, int]
) -> None:
    for name, value in variables.items():
        env.setenv(name, value)
    assert load_settings().health_bind == bind


@pytest.mark.parametrize("value", ["railway", "0", "70000", "8080.5"])
def test_a_bad_port_exits_2_with_one_line_naming_port(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    env.setenv("PORT", value)
    assert main(["run", "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("worker: invalid configuration: PORT:") and f"(got {value!r})" in err
    assert len(err.splitlines()) == 1


PLACEHOLDER = "devstack-placeholder-only-the-local-stand-ins-accept-this"


@pytest.mark.parametrize(
    ("base_url", "accepted"),
    [
        ("http://127.0.0.1:54329", True),
        ("http://localhost:54329", True),
        (None, False),  # the real API would answer 401 to every job
        ("https://api.anthropic.com", False),
    ],
)
def test_a_placeholder_model_key_only_works_against_local_stand_ins(
    env: pytest.MonkeyPatch, base_url: str | None, accepted: bool
) -> None:
    env.setenv("WORKER_KINDS", "rename_layers")
    env.setenv("ANTHROPIC_API_KEY", PLACEHOLDER)
    if base_url:
        env.setenv("ANTHROPIC_BASE_URL", base_url)
    settings = load_settings()
    if accepted:
        settings.check_model_keys()
    else:
        with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY: is the devstack placeholder"):
            settings.check_model_keys()


def test_devstack_writes_the_placeholder_the_worker_recognizes() -> None:
    from devstack.envfile import MODEL_KEY_PLACEHOLDER
    from worker.config import PLACEHOLDER_KEY_PREFIX

    assert MODEL_KEY_PLACEHOLDER == PLACEHOLDER
    assert MODEL_KEY_PLACEHOLDER.startswith(PLACEHOLDER_KEY_PREFIX)


def test_run_check_without_a_model_key_exits_2_before_any_request(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env.setenv("SUPABASE_URL", "http://127.0.0.1:9")  # nothing listens: a request would fail with 1, not 2
    env.delenv("GEMINI_API_KEY")
    assert main(["run", "--check"]) == 2
    assert "GEMINI_API_KEY: required" in capsys.readouterr().err


# --- which Supabase key: SUPABASE_SECRET_KEY (preferred) or the legacy SUPABASE_SERVICE_ROLE_KEY ---

SECRET = "sb_secret_hV4O-1H-vnpt3Jl5MXpdc4_vkjKQG3J"
PUBLISHABLE = "sb_publishable_tYsI9u2UsQhFkR3y_ZIhfx_iSMKvmcL"


def _jwt(role: str | None) -> str:
    import jwt

    claims = {"iss": "supabase", "exp": 4102444800, **({"role": role} if role else {})}
    return jwt.encode(claims, "any-secret-the-worker-never-verifies-" + "x" * 16, "HS256")


@pytest.mark.parametrize(
    ("secret", "legacy", "variable", "described"),
    [
        (SECRET, None, "SUPABASE_SECRET_KEY", "secret API key from SUPABASE_SECRET_KEY"),
        (
            None,
            _jwt("service_role"),
            "SUPABASE_SERVICE_ROLE_KEY",
            "legacy service_role JWT key from SUPABASE_SERVICE_ROLE_KEY",
        ),
        (SECRET, _jwt("service_role"), "SUPABASE_SECRET_KEY", "secret API key from SUPABASE_SECRET_KEY"),  # preferred
        (_jwt("service_role"), None, "SUPABASE_SECRET_KEY", "legacy service_role JWT key from SUPABASE_SECRET_KEY"),
        (None, SECRET, "SUPABASE_SERVICE_ROLE_KEY", "secret API key from SUPABASE_SERVICE_ROLE_KEY"),
        ("", "opaque-to-us", "SUPABASE_SERVICE_ROLE_KEY", "key of unrecognised form from SUPABASE_SERVICE_ROLE_KEY"),
    ],
)
def test_the_worker_prefers_the_secret_key_and_says_which_kind(
    env: pytest.MonkeyPatch, secret: str | None, legacy: str | None, variable: str, described: str
) -> None:
    env.delenv("SUPABASE_SERVICE_ROLE_KEY")
    for name, value in (("SUPABASE_SECRET_KEY", secret), ("SUPABASE_SERVICE_ROLE_KEY", legacy)):
        if value is not None:
            env.setenv(name, value)
    key = load_settings().supabase_key
    assert key is not None
    assert (key.variable, key.describe()) == (variable, described)
    assert key.value == (secret or legacy)


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SUPABASE_SECRET_KEY", PUBLISHABLE, "is a publishable key (sb_publishable_…), which acts as anon"),
        ("SUPABASE_SERVICE_ROLE_KEY", PUBLISHABLE, "is a publishable key"),
        ("SUPABASE_SERVICE_ROLE_KEY", _jwt("anon"), "is the legacy anon key (a JWT with role anon)"),
        ("SUPABASE_SECRET_KEY", _jwt("anon"), "is the legacy anon key"),
        ("SUPABASE_SERVICE_ROLE_KEY", _jwt("authenticated"), "is a JWT with role 'authenticated'"),
    ],
)
def test_a_publishable_or_anon_key_exits_2_with_one_line_naming_the_variable(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, says: str
) -> None:
    env.delenv("SUPABASE_SERVICE_ROLE_KEY")
    env.setenv(variable, value)
    env.setenv("SUPABASE_URL", "http://127.0.0.1:9")  # nothing listens: a request would fail with 1, not 2
    assert main(["run", "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"worker: invalid configuration: {variable}: {says}")
    assert "needs the project's secret key (sb_secret_…) or its legacy service_role key" in err
    assert value not in err  # the key itself is never printed
    assert len(err.splitlines()) == 1


def test_a_publishable_secret_key_is_refused_even_when_a_good_legacy_key_is_set(env: pytest.MonkeyPatch) -> None:
    env.setenv("SUPABASE_SERVICE_ROLE_KEY", _jwt("service_role"))
    env.setenv("SUPABASE_SECRET_KEY", PUBLISHABLE)  # the preferred variable is read, and it is wrong
    with pytest.raises(ConfigError, match="SUPABASE_SECRET_KEY: is a publishable key"):
        load_settings()


def test_no_supabase_key_names_both_variables(env: pytest.MonkeyPatch) -> None:
    env.delenv("SUPABASE_SERVICE_ROLE_KEY")
    with pytest.raises(ConfigError, match=r"SUPABASE_SECRET_KEY: required \(or the legacy SUPABASE_SERVICE_ROLE_KEY\)"):
        load_settings()


def test_the_postgres_store_needs_no_supabase_key(env: pytest.MonkeyPatch) -> None:
    env.setenv("WORKER_STORE", "postgres")
    env.setenv("DATABASE_URL", "postgresql://x@127.0.0.1:9/db")
    env.setenv("SUPABASE_SERVICE_ROLE_KEY", PUBLISHABLE)  # unused by this store, so not judged
    assert load_settings().worker_store == "postgres"


def test_start_up_logs_which_key_kind_the_worker_uses(
    env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import asyncio

    from worker import compose, logs, signals

    env.setenv("SUPABASE_SECRET_KEY", SECRET)
    settings = load_settings()

    async def refuse(_settings: object) -> None:
        raise RuntimeError("stop after the start-up line")

    env.setattr(compose, "build_transports", refuse)
    env.setattr(logs, "setup", lambda _level: None)
    env.setattr(signals, "install", lambda _shutdown: None)
    with caplog.at_level("INFO", logger="worker"), pytest.raises(RuntimeError, match="stop after"):
        asyncio.run(compose.run_worker(settings))
    assert "queue: Supabase at http://127.0.0.1:54321, with the secret API key from SUPABASE_SECRET_KEY" in caplog.text
    assert SECRET not in caplog.text
