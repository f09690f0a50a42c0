"""Starting the cluster when a client socket holds its port for a moment (the ports are inside the
ephemeral range): the start is tried again while the server log says the bind was refused, and
only then. pg_ctl and the server log are stand-ins here."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from devstack import paths, pgcluster

REFUSED = 'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use\n'
READY = "LOG:  database system is ready to accept connections\n"


@dataclass
class PgCtl:
    """What each `pg_ctl start` writes to the server log, in order; how many starts were made."""

    log: Path
    script: list[str] = field(default_factory=list)
    starts: int = 0

    def run(self, cmd: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        written = self.script.pop(0)
        with self.log.open("a") as f:
            f.write(written)
        self.starts += 1
        return subprocess.CompletedProcess(cmd, 0 if written == READY else 1, "", "pg_ctl: could not start server")


@pytest.fixture
def pg_ctl(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> PgCtl:
    fake = PgCtl(tmp_path / "postgres.log")
    fake.log.write_text(REFUSED)  # an earlier start's refusal: it must not count for this one
    monkeypatch.setattr(paths, "PGLOG", fake.log)
    monkeypatch.setattr(pgcluster, "status", lambda: pgcluster.Status(True, False, None))
    monkeypatch.setattr(pgcluster, "_port_in_use", lambda: False)
    monkeypatch.setattr(pgcluster, "_prepare_dirs", lambda: None)
    monkeypatch.setattr(pgcluster, "_as_root", lambda: False)
    monkeypatch.setattr(pgcluster, "_run", fake.run)
    monkeypatch.setattr(time, "sleep", lambda _seconds: None)
    return fake


def test_a_refused_bind_is_tried_again_until_the_port_is_free(pg_ctl: PgCtl) -> None:
    pg_ctl.script += [REFUSED, REFUSED, READY]
    pgcluster.start()
    assert pg_ctl.starts == 3


def test_any_other_failure_is_reported_at_once(pg_ctl: PgCtl) -> None:
    pg_ctl.script.append("FATAL:  data directory has invalid permissions\n")
    with pytest.raises(pgcluster.ClusterError, match="pg_ctl start failed"):
        pgcluster.start()
    assert pg_ctl.starts == 1  # the refusal already in the log from before is not this start's


def test_a_port_that_stays_taken_fails_after_a_bounded_number_of_tries(pg_ctl: PgCtl) -> None:
    pg_ctl.script += [REFUSED] * pgcluster.BIND_TRIES
    with pytest.raises(pgcluster.ClusterError, match="pg_ctl start failed"):
        pgcluster.start()
    assert pg_ctl.starts == pgcluster.BIND_TRIES
