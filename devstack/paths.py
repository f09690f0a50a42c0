"""Where the local stack keeps its state and which loopback ports it uses.

Everything lives under the git-ignored ``.devstack/`` folder of the checkout, so the stack never
touches another cluster on the machine.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("DEVSTACK_STATE_DIR", ROOT / ".devstack"))
PGDATA = STATE / "pg"
PGRUN = STATE / "run"  # unix socket + pid files live here, not in /var/run/postgresql
PGLOG = STATE / "postgres.log"
ENV_FILE = STATE / "env"
SECRETS_FILE = STATE / "secrets.json"
SIGNING_KEYS_FILE = STATE / "signing_keys.json"

HOST = "127.0.0.1"
PG_PORT = int(os.environ.get("DEVSTACK_PG_PORT", "54322"))
API_PORT = int(os.environ.get("DEVSTACK_API_PORT", "54321"))
MODELS_PORT = int(os.environ.get("DEVSTACK_MODELS_PORT", "54329"))

PLATFORM_SQL = Path(__file__).resolve().parent / "sql" / "platform.sql"
MIGRATIONS_DIR = ROOT / "supabase" / "migrations"
SEED_SQL = ROOT / "supabase" / "seed.sql"

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_LIB = Path("/usr/lib/postgresql/15/lib")

SUPERUSER = "postgres"
SUPERUSER_PASSWORD = "postgres"  # local-only, loopback-only: same as `supabase start`
DATABASE = "postgres"


def database_url(dbname: str = DATABASE, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
    return f"postgresql://{user}:{password}@{HOST}:{PG_PORT}/{dbname}"
