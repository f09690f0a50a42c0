"""`python -m devstack ...`: manage the local stack.

python -m devstack db up|down|status|reset    the PostgreSQL cluster only
python -m devstack up|down|status|reset|env   the whole stack
python -m devstack signing-keys list|standby|rotate [kid]|revoke <kid>|unrevoke <kid>
                                              JWT signing keys (signing_keys.py)
python -m devstack keys list|new KIND|revoke KEY   the opaque API keys (sb_publishable_/sb_secret_)
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable, Sequence

from devstack import envfile, keys, migrate, paths, pgcluster, schema_snapshot, services, signing_keys

STACK_PG_VERSIONS = ("15",)


class UsageError(Exception):
    """A request devstack refuses before touching anything (exit 2, no log tail)."""


def db_up() -> None:
    pgcluster.ensure_packages()
    pgcluster.init()
    pgcluster.start()
    applied = migrate.migrate()
    if paths.PG_VERSION in STACK_PG_VERSIONS:
        envfile.write()  # describes the stack; a side cluster (17) must not redirect its DATABASE_URL
    for m in applied:
        print(f"applied migration {m.label}")
        for notice in m.notices:
            print(f"  {notice}")
    cron = "pg_cron" if pgcluster.has_pg_cron() else "no pg_cron: its schedules are skipped"
    print(f"database ready: {paths.database_url()} (PostgreSQL {paths.PG_VERSION}, {cron})")


def db_down() -> None:
    pgcluster.stop()
    print("database stopped")


def db_status() -> None:
    print(f"database: {pgcluster.status().describe()}")


def db_reset() -> None:
    pgcluster.wipe()
    db_up()


SNAPSHOT_DATABASE = "devstack_schema_snapshot"


def schema_command(write: bool) -> int:
    """Migrate a scratch database and compare its schema with supabase/schema.sql (or rewrite it)."""
    pgcluster.ensure_packages()
    pgcluster.init()
    pgcluster.start()
    migrate.recreate_database(SNAPSHOT_DATABASE)
    try:
        migrate.migrate(SNAPSHOT_DATABASE, seed=False)
        diff = schema_snapshot.check_or_write(SNAPSHOT_DATABASE, write=write)
    finally:
        migrate.drop_database(SNAPSHOT_DATABASE)
    name = schema_snapshot.SNAPSHOT_FILE.relative_to(paths.ROOT)
    if write:
        print(f"wrote {name}")
        return 0
    if diff:
        print(diff, end="")
        print(
            f"{name} differs from what the migrations give: after adding a migration, run "
            "python -m devstack schema --write and review the diff",
            file=sys.stderr,
        )
        return 1
    print(f"{name} matches the migrations")
    return 0


def stack_env() -> None:
    print(envfile.render(envfile.values()), end="")


def _require_stack_version() -> None:
    if paths.PG_VERSION not in STACK_PG_VERSIONS:
        # The Realtime stand-in decodes WAL with wal2json and pg_recvlogical, which only the
        # Debian 15 build has; the 17 build serves the migrations and the SQL suite.
        raise UsageError(
            f"DEVSTACK_PG_VERSION={paths.PG_VERSION}: the full stack runs on PostgreSQL "
            f"{', '.join(STACK_PG_VERSIONS)} only (Realtime needs wal2json); use `python -m devstack db up` "
            "for the database alone"
        )


def jwt_signing() -> str:
    """What Auth signs with under ``DEVSTACK_JWT`` (the gateway reads the same variable)."""
    if signing_keys.mode() == "legacy":
        return "HS256 legacy secret (DEVSTACK_JWT=legacy; JWKS empty)"
    return f"ES256, kid {signing_keys.load_or_create().current.kid}"


def key_rows(stack_keys: keys.StackKeys) -> list[tuple[str, str]]:
    """The keys as `supabase status` names them: the opaque pair first, then the legacy JWTs."""
    return [
        ("Publishable key", stack_keys.publishable_key),
        ("Secret key", stack_keys.secret_key),
        ("anon key (legacy)", stack_keys.anon_key),
        ("service_role key (legacy)", stack_keys.service_role_key),
        ("JWT secret (legacy)", stack_keys.jwt_secret),
    ]


def _print_rows(rows: list[tuple[str, str]]) -> None:
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:>{width}}: {value}")


def stack_up() -> None:
    _require_stack_version()
    signing = jwt_signing()  # a bad DEVSTACK_JWT stops here, before anything starts
    db_up()
    for svc in services.ALL:
        svc.start()
    env = envfile.write()
    # The same shape as `supabase status`, so instructions for one work for the other.
    rows = [
        ("API URL", env["SUPABASE_URL"]),
        ("REST URL", env["SUPABASE_URL"] + "/rest/v1"),
        ("Realtime URL", env["SUPABASE_URL"].replace("http", "ws", 1) + "/realtime/v1/websocket"),
        ("Storage URL", env["SUPABASE_URL"] + "/storage/v1"),
        ("DB URL", env["DATABASE_URL"]),
        ("Models stand-in", env["ANTHROPIC_BASE_URL"]),
        ("JWT signing", signing),
        ("JWKS URL", env["SUPABASE_URL"] + "/auth/v1/.well-known/jwks.json"),
        *key_rows(keys.load_or_create()),
        ("env file", str(paths.ENV_FILE)),
    ]
    print("devstack is running.\n")
    _print_rows(rows)


def stack_down() -> None:
    for svc in reversed(services.ALL):
        svc.stop()
    db_down()


def stack_status() -> None:
    db_status()
    for svc in services.ALL:
        print(f"{svc.name}: {svc.describe()}")
    stored = keys.read()
    if stored is None or any(stored.active(kind) is None for kind in keys.KINDS):
        print("keys: not generated yet (python -m devstack up, or ... keys new KIND)")
        return
    print()
    _print_rows(key_rows(stored))


def keys_list() -> None:
    stored = keys.load_or_create()
    for k in stored.api_keys:
        state = "active" if k.revoked_at is None else f"revoked {_when(k.revoked_at)}"
        print(f"{k.kind:<11} {k.name:<16} {state:<28} {k.key}")


def keys_new(kind: keys.ApiKeyKind, name: str | None) -> None:
    key = keys.new(kind, name)
    envfile.write()
    print(f"new {kind} key {key.name!r}: {key.key}")


def keys_revoke(key_or_prefix: str) -> None:
    revoked = keys.revoke(key_or_prefix)
    print(f"revoked the {revoked.kind} key {revoked.name!r} ({revoked.masked()}); the gateway now answers it 401")
    stored = keys.read()
    if stored is not None and stored.active(revoked.kind) is None:
        # The stack (and .devstack/env) always has an active key of each kind.
        fresh = keys.load_or_create().active(revoked.kind)
        assert fresh is not None
        print(f"it was the last active {revoked.kind} key: new key {fresh.name!r}: {fresh.key}")
    envfile.write()


def _when(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def run_keys(args: argparse.Namespace) -> None:
    if args.keys_action == "list":
        keys_list()
    elif args.keys_action == "new":
        keys_new(args.kind, args.name)
    else:
        keys_revoke(args.key)


def stack_reset() -> None:
    _require_stack_version()
    for svc in reversed(services.ALL):
        svc.stop()
    keys.forget()
    signing_keys.forget()
    shutil.rmtree(paths.STATE / "storage", ignore_errors=True)
    pgcluster.wipe()
    stack_up()


def signing_keys_command(action: str, kid: str | None) -> None:
    """List or change the signing keys; a running gateway picks the change up with its next request."""
    if action != "list":
        key = signing_keys.change(action, kid)
        print(f"{key.kid} ({key.alg}) is now {key.state.replace('_', ' ')}")
        if key.legacy and key.state == "revoked":
            # Hosted asks to disable the legacy API keys first; devstack says what follows instead.
            print("note: the legacy anon and service_role keys are HS256 JWTs and are now refused as well")
    print(signing_keys.describe(signing_keys.load_or_create(), signing_keys.mode()))


SIGNING_KEY_ACTIONS = ("list", "standby", "rotate", "revoke", "unrevoke")

DB_COMMANDS: dict[str, Callable[[], None]] = {
    "up": db_up,
    "down": db_down,
    "status": db_status,
    "reset": db_reset,
}

STACK_COMMANDS: dict[str, Callable[[], None]] = {
    "up": stack_up,
    "down": stack_down,
    "status": stack_status,
    "reset": stack_reset,
    "env": stack_env,
}


def _add_keys_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("keys", help="list, make or revoke the opaque API keys (sb_publishable_/sb_secret_)")
    actions = parser.add_subparsers(dest="keys_action", required=True)
    actions.add_parser("list", help="every key, revoked ones included")
    new = actions.add_parser("new", help="make another key of a kind")
    new.add_argument("kind", choices=keys.KINDS)
    new.add_argument("--name", help="its name (default: 'default', then <kind>_<n>)")
    revoke = actions.add_parser("revoke", help="revoke a key (it stays recorded; the gateway answers it 401)")
    revoke.add_argument("key", help="the whole key, or its prefix and at least 4 more characters")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Docker-free local Supabase stand-in")
    sub = parser.add_subparsers(dest="command", required=True)
    db = sub.add_parser("db", help="the local PostgreSQL cluster only (DEVSTACK_PG_VERSION=15|17)")
    db.add_argument("action", choices=sorted(DB_COMMANDS))
    for name in sorted(STACK_COMMANDS):
        sub.add_parser(name)
    sk = sub.add_parser("signing-keys", help="list, add, rotate and revoke the JWT signing keys")
    sk.add_argument("action", choices=SIGNING_KEY_ACTIONS)
    sk.add_argument("kid", nargs="?", help="key id (`legacy` names the HS256 secret); rotate: default the standby key")
    _add_keys_parser(sub)
    schema = sub.add_parser("schema", help="check supabase/schema.sql against the migrations (or --write it)")
    schema.add_argument("--write", action="store_true", help="rewrite the file from the migrations")
    args = parser.parse_args(argv)
    if args.command == "schema":
        try:
            return schema_command(args.write)
        except ValueError as exc:
            print(f"devstack schema: {exc}", file=sys.stderr)
            return 2
    if args.command == "keys":
        try:
            run_keys(args)
        except (LookupError, ValueError) as exc:
            print(f"devstack keys: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "signing-keys":
        try:
            signing_keys_command(args.action, args.kid)
        except signing_keys.SigningKeyError as exc:
            print(f"devstack: {exc}", file=sys.stderr)
            return 2
        return 0
    action = DB_COMMANDS[args.action] if args.command == "db" else STACK_COMMANDS[args.command]
    try:
        action()
    except (UsageError, signing_keys.SigningKeyError, migrate.UnknownMigrations) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        return 2
    except (pgcluster.ClusterError, services.ServiceError) as exc:
        print(f"devstack: {exc}", file=sys.stderr)
        tail = pgcluster.log_tail()
        if tail:
            print(f"--- {paths.PGLOG} (tail) ---\n{tail}", file=sys.stderr)
        return 1
    return 0
