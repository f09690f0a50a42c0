"""What the machine and the database do during the load, sampled every second, and the
per-process figures /proc gives (RSS, CPU seconds)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from devstack import paths


def pid_of_gateway(port: int) -> int | None:
    """The gateway process bench.support started (found by its unique --port), for CPU samples."""
    wanted = ["-m", "devstack.gateway"]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if all(w in argv for w in wanted) and "--port" in argv and str(port) in argv:
            return int(entry.name)
    return None


def _rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) in MB from /proc/<pid>/status."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", 0.0), values.get("VmHWM", 0.0)


def cpu_s(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@dataclass
class Samples:
    t: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    hwm_mb: float = 0.0
    connections: list[int] = field(default_factory=list)
    by_client_max: Counter[str] = field(default_factory=Counter)
    loadavg: list[float] = field(default_factory=list)
    cpu_pressure: list[float] = field(default_factory=list)  # PSI "some avg10", % of time
    active: list[int] = field(default_factory=list)  # connections running a statement
    waits: Counter[str] = field(default_factory=Counter)  # samples × connections, by wait event
    longest_active_ms: list[float] = field(default_factory=list)
    loop_lag_ms: list[float] = field(default_factory=list)  # this process: oversleep of 100 ms naps
    slot_lag_mb: list[float] = field(default_factory=list)  # the gateway's logical slot behind the WAL
    wal_mb_per_s: list[float] = field(default_factory=list)  # the whole cluster's WAL, all databases
    gateway_tcp: dict[str, list[int]] = field(
        default_factory=lambda: {"established": [], "time_wait_closed_by_client": [], "time_wait_closed_by_gateway": []}
    )


def _tcp_states(port: int) -> tuple[int, int, int]:
    """Connections to the gateway's port: (established, TIME_WAIT on the client side, TIME_WAIT
    on the gateway's side). TIME_WAIT stays 60 s on the side that closed first, so the counts show
    who keeps closing connections instead of reusing them (clients whose pool keeps too few idle
    connections, or the server's keep-alive timeout)."""
    established = by_client = by_gateway = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                remote_port = int(parts[2].rsplit(":", 1)[1], 16)
                state = parts[3]
                if remote_port == port:  # the client's end (both ends live on this machine)
                    established += state == "01"
                    by_client += state == "06"
                elif local_port == port:
                    by_gateway += state == "06"
    return established, by_client, by_gateway


def _cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI)."""
    try:
        first = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(first.split("avg10=")[1].split()[0])


async def sample(database: str, worker_pid: int, gateway_port: int, stop: asyncio.Event, out: Samples) -> None:
    """Every second: the worker's RSS, the scratch database's connections by client and what the
    active ones wait on, and how busy the machine is (load, CPU pressure, this loop's lag)."""
    query = (
        "select usename, coalesce(nullif(application_name, ''), '-'), backend_type, state, "
        "coalesce(wait_event_type || ':' || wait_event, 'cpu'), "
        "extract(epoch from clock_timestamp() - query_start)::float8 * 1000 "
        "from pg_stat_activity where datname = %s and pid <> pg_backend_pid()"
    )
    # Realtime (the worker's wake-ups, the users' broadcasts) is decoded from the gateway's logical
    # slot, which reads the whole cluster's WAL: other databases' writes delay it too.
    wal_query = (
        "select pg_current_wal_lsn() - '0/0'::pg_lsn, "
        "(select max(pg_current_wal_lsn() - confirmed_flush_lsn) from pg_replication_slots where database = %s)"
    )
    last_wal: tuple[float, float] | None = None
    async with await psycopg.AsyncConnection.connect(paths.database_url(database), autocommit=True) as conn:
        started = time.monotonic()
        while not stop.is_set():
            rss = _rss_mb(worker_pid)
            wal_row = await (await conn.execute(wal_query, (database,))).fetchone()
            if wal_row is not None:
                now_wal = (time.monotonic(), float(wal_row[0]))
                if last_wal is not None:
                    out.wal_mb_per_s.append(round((now_wal[1] - last_wal[1]) / 2**20 / (now_wal[0] - last_wal[0]), 2))
                last_wal = now_wal
                out.slot_lag_mb.append(round(float(wal_row[1] or 0) / 2**20, 2))
            rows = await (await conn.execute(query, (database,))).fetchall()
            out.t.append(round(time.monotonic() - started, 2))
            if rss is not None:
                out.rss_mb.append(round(rss[0], 1))
                out.hwm_mb = max(out.hwm_mb, rss[1])
            out.connections.append(len(rows))
            groups = Counter(f"{r[0]} / {r[1]} / {r[2]}" for r in rows)
            for key, n in groups.items():
                out.by_client_max[key] = max(out.by_client_max[key], n)
            # The Realtime feed's connections wait for WAL by design: not work the queue waits on.
            active = [
                r for r in rows if r[3] == "active" and r[2] != "walsender" and not str(r[1]).startswith("devstack_")
            ]
            out.active.append(len(active))
            for r in active:
                out.waits[str(r[4])] += 1
            out.longest_active_ms.append(round(max((float(r[5] or 0) for r in active), default=0.0), 1))
            out.loadavg.append(os.getloadavg()[0])
            pressure = _cpu_pressure()
            if pressure is not None:
                out.cpu_pressure.append(pressure)
            for key, value in zip(out.gateway_tcp, _tcp_states(gateway_port), strict=True):
                out.gateway_tcp[key].append(value)
            for _ in range(5):  # the rest of the second: naps whose oversleep is the scheduling lag
                if stop.is_set():
                    break
                nap = time.monotonic()
                await asyncio.sleep(0.1)
                out.loop_lag_ms.append((time.monotonic() - nap - 0.1) * 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.45)
