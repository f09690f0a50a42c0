"""Worker configuration from the environment (pydantic-settings), validated up front.

A bad value is reported once, naming the environment variable, and the CLI exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from worker import api_key
from worker.event_loop import EventLoopChoice, uvloop_installed

KINDS: tuple[str, ...] = ("generate_design", "rename_layers", "generate_edits", "generate_image")
# Without PORT the health server stays on loopback at this port; with PORT (Railway injects it) it
# listens on every interface, because Railway's health check and proxy reach it from outside.
DEFAULT_HEALTH_PORT = 8080
LOOPBACK = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - only when PORT is set, i.e. on a platform that routes to it
# `.devstack/env` carries model keys that start with this: only the local stand-ins accept them.
PLACEHOLDER_KEY_PREFIX = "devstack-placeholder"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
ProviderName = Literal["anthropic", "gemini"]
StoreName = Literal["supabase", "postgres"]


class ConfigError(Exception):
    """Configuration is unusable; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False, frozen=True)

    # Where the queue lives: supabase-py over REST + Realtime (default) or psycopg directly.
    worker_store: StoreName = "supabase"
    supabase_url: str | None = None
    # The service-role key: today's secret key (sb_secret_…) is preferred; the legacy JWT is read
    # when it is not set. See ``supabase_key``.
    supabase_secret_key: str | None = None
    supabase_service_role_key: str | None = None
    database_url: str | None = None
    # Artifacts for the psycopg setup (no Storage API): a local folder.
    artifacts_dir: Path = Path("artifacts")

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    gemini_api_key: str | None = None
    gemini_base_url: str | None = None

    provider_generate_design: ProviderName = "anthropic"
    provider_rename_layers: ProviderName = "anthropic"
    provider_generate_edits: ProviderName = "anthropic"
    provider_generate_image: ProviderName = "gemini"
    model_generate_design: str = "claude-haiku-4-5"
    model_rename_layers: str = "claude-haiku-4-5"
    model_generate_edits: str = "claude-haiku-4-5"
    model_generate_image: str = "gemini-2.5-flash-image"
    # Concurrent requests per provider (rename_layers fans out batches under this limit).
    provider_concurrency: int = Field(default=8, ge=1, le=256)
    provider_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)
    provider_retries: int = Field(default=2, ge=0, le=10)
    # Ask SQL for capacity before each model call (public.provider_limits, shared by every
    # replica) and share 429/529 cooldowns; off, each replica finds the limits through 429s.
    shared_provider_limits: bool = True
    # How long a call may wait in the worker for shared capacity before its job is deferred.
    provider_max_wait_seconds: float = Field(default=10.0, ge=0, le=300)

    worker_id: str | None = None
    worker_concurrency: int = Field(default=4, ge=1, le=1000)
    worker_kinds: Annotated[tuple[str, ...], NoDecode] = KINDS
    lease_seconds: int = Field(default=60, ge=5, le=3600)
    heartbeat_seconds: float | None = Field(default=None, gt=0)
    sweep_seconds: float = Field(default=30.0, gt=0)
    drain_timeout_seconds: float = Field(default=60.0, ge=0)
    # Retention maintenance (worker.core.retention): how often each replica drains the artifact
    # outbox (0 turns it off), and how old an object no job owns must be before it is deleted.
    retention_seconds: float = Field(default=600.0, ge=0)
    retention_orphan_grace_seconds: int = Field(default=86400, ge=0, le=315360000)
    # The health/metrics server: see ``health_bind`` for how PORT and HEALTH_HOST combine.
    port: int | None = Field(default=None, ge=1, le=65535)
    health_host: str | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # uvloop when installed (auto), or insist on one (worker/event_loop.py says why).
    worker_event_loop: EventLoopChoice = "auto"

    @field_validator("worker_kinds", mode="before")
    @classmethod
    def _split_kinds(cls, value: object) -> object:
        if isinstance(value, str):
            kinds = tuple(k.strip() for k in value.split(",") if k.strip())
            return kinds or KINDS
        return value

    @field_validator("worker_kinds")
    @classmethod
    def _known_kinds(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [k for k in value if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS)}")
        return value

    @field_validator("supabase_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http(s) URL such as https://<project-ref>.supabase.co")
        return value

    @field_validator("worker_event_loop", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("worker_event_loop")
    @classmethod
    def _loop_available(cls, value: EventLoopChoice) -> EventLoopChoice:
        if value == "uvloop" and not uvloop_installed():
            raise ValueError("uvloop is not installed (it does not build on Windows); use auto or asyncio")
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.worker_store == "supabase":
            _require(self, "supabase_url", "the supabase store needs the project URL")
            key = self.supabase_key
            if key is None:
                raise ValueError(
                    f"{api_key.SECRET_VAR}: required (or the legacy {api_key.LEGACY_VAR}): the worker calls the "
                    "queue RPCs as the service role"
                )
            refusal = key.refusal()
            if refusal is not None:
                raise ValueError(refusal)
        else:
            _require(self, "database_url", "WORKER_STORE=postgres connects to Postgres directly")
        if self.heartbeat_seconds is not None and self.heartbeat_seconds > self.lease_seconds / 3:
            raise ValueError(
                f"HEARTBEAT_SECONDS: {self.heartbeat_seconds} is more than a third of LEASE_SECONDS "
                f"({self.lease_seconds}); leases would expire between renewals"
            )
        return self

    def check_model_keys(self) -> None:
        """Running jobs needs a key for every provider the configured kinds use (`stats` does not).

        A devstack placeholder key only works against the local stand-ins: sent to the real API it
        would fail every job, so it counts as missing unless the provider's base URL is loopback.
        """
        for kind in self.worker_kinds:
            provider = self.provider_for(kind)
            name = f"{provider.upper()}_API_KEY"
            key: str | None = getattr(self, f"{provider}_api_key")
            if not key:
                raise ConfigError(f"invalid configuration: {name}: required (kind {kind} uses {provider})")
            base_url: str | None = getattr(self, f"{provider}_base_url")
            if key.startswith(PLACEHOLDER_KEY_PREFIX) and urlsplit(base_url or "").hostname not in _LOOPBACK_HOSTS:
                raise ConfigError(
                    f"invalid configuration: {name}: is the devstack placeholder, which only the local stand-ins "
                    f"accept; set a real key (or {provider.upper()}_BASE_URL to the stand-ins)"
                )

    @property
    def supabase_key(self) -> api_key.SupabaseKey | None:
        """SUPABASE_SECRET_KEY when set, else the legacy SUPABASE_SERVICE_ROLE_KEY, with its kind."""
        return api_key.choose(self.supabase_secret_key, self.supabase_service_role_key)

    def provider_for(self, kind: str) -> ProviderName:
        value: ProviderName = getattr(self, f"provider_{kind}")
        return value

    def model_for(self, kind: str) -> str:
        value: str = getattr(self, f"model_{kind}")
        return value

    @property
    def health_bind(self) -> tuple[str, int]:
        """(host, port) of the health server: HEALTH_HOST wins; else every interface when PORT is
        set (Railway injects PORT and health-checks it from outside), else loopback on 8080."""
        host = self.health_host or (ALL_INTERFACES if self.port is not None else LOOPBACK)
        return host, self.port if self.port is not None else DEFAULT_HEALTH_PORT

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds if self.heartbeat_seconds is not None else self.lease_seconds / 3


def _require(settings: Settings, field: str, why: str) -> None:
    if not getattr(settings, field):
        raise ValueError(f"{field.upper()}: required ({why})")


def load_settings(env_file: Path | None = None) -> Settings:
    """Settings from the environment; ``env_file`` (e.g. ``.devstack/env``) fills in what it lacks.

    The process environment wins over the file, so one variable can be overridden per run.
    """
    if env_file is not None and not env_file.is_file():
        raise ConfigError(f"--env-file: {env_file} is not a readable file")
    try:
        return Settings(_env_file=env_file)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        message = str(err["msg"]).removeprefix("Value error, ")
        if loc:
            lines.append(f"{loc[0].upper()}: {message} (got {err.get('input')!r})")
        else:
            lines.append(message)
    return "invalid configuration: " + "; ".join(lines)
