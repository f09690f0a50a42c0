"""Retention end to end on devstack: a generate_image job's image is uploaded to Storage, the job
is purged, and the worker's maintenance (or `python -m worker purge`) leaves nothing behind: no
job row, no events, no storage.objects row, no file in devstack's storage folder (or
ARTIFACTS_DIR), no outbox row; orphaned objects go the same way.

Every wait is bounded; every process is stopped in ``finally`` (the fixtures of test_worker_process).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from devstack import paths
from devstack.gateway.context import Settings as GatewaySettings
from tests.integration import test_worker_process as proc
from tests.integration.check_support import run_worker
from tests.integration.test_worker_process import Env, WorkerProcess, until

pytestmark = pytest.mark.integration
# The process suite's fixtures (its own database, gateway and stand-ins; workers killed after).
env, standin, spawn = proc.env, proc.standin, proc.spawn
BUCKET = "job-artifacts"


def image_job(env: Env) -> tuple[uuid.UUID, uuid.UUID, str]:
    """Enqueue a generate_image job, wait until it succeeded; (job id, user id, image path)."""
    job = env.db.enqueue("generate_image", {"prompt": "a lighthouse at dusk"})
    done = until(lambda: (r := env.db.get(job.id)).status == "succeeded" and r, "image job succeeded")
    assert done.result is not None
    return job.id, job.user_id, str(done.result["path"])


def storage_folder() -> Path:
    return GatewaySettings.from_stack(database="unused").storage_dir / BUCKET


def leftovers(env: Env, job_id: uuid.UUID, names: list[str]) -> dict[str, int]:
    """Everything retention must remove, counted: all zero means nothing is left behind."""

    def count(query: str, params: tuple[object, ...]) -> int:
        return int(env.db.sql(query, params)[0]["n"])

    return {
        "job rows": count("select count(*) as n from public.jobs where id = %s", (job_id,)),
        "job events": count("select count(*) as n from public.job_events where job_id = %s", (job_id,)),
        "storage.objects rows": count(
            "select count(*) as n from storage.objects where bucket_id = %s and name = any(%s)", (BUCKET, names)
        ),
        "outbox rows": count("select count(*) as n from public.artifact_deletions where name = any(%s)", (names,)),
        "files on disk": sum(1 for name in names if (storage_folder() / name).exists()),
    }


def upload_orphan(env: Env) -> str:
    """An object no job owns (as a zombie attempt's late upload would be), through the Storage API."""
    name = f"{uuid.uuid4()}/{uuid.uuid4()}/image.png"
    response = httpx.post(
        f"{env.gw.url}/storage/v1/object/{BUCKET}/{name}",
        content=b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
        headers={"apikey": env.gw.secret_key, "content-type": "image/png"},
        timeout=10,
    )
    response.raise_for_status()
    return name


def test_the_workers_maintenance_leaves_nothing_behind(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess]
) -> None:
    w = spawn("supabase", RETENTION_SECONDS="1", RETENTION_ORPHAN_GRACE_SECONDS="0")
    w.wait_healthy()
    job_id, user_id, path = image_job(env)
    orphan = upload_orphan(env)
    before = leftovers(env, job_id, [path, orphan])
    assert before["job rows"] == 1 and before["job events"] > 0 and before["files on disk"] == 2
    assert before["storage.objects rows"] == 2
    # What pg_cron runs daily (interval '0': every finished job).
    assert env.db.api.as_service("select purge_finished_jobs(interval '0') as n")[0]["n"] == 1
    until(lambda: not any(leftovers(env, job_id, [path, orphan]).values()), "nothing left behind")
    assert not (storage_folder() / str(user_id)).exists()  # the emptied folders went too
    assert "worker_artifacts_deleted_total 2" in w.metrics()


def purge_command(env: Env, tmp_path: Path, store: str, *args: str) -> subprocess.CompletedProcess[str]:
    variables = {
        "WORKER_STORE": store,
        "SUPABASE_URL": env.gw.url,
        "SUPABASE_SECRET_KEY": env.gw.secret_key,
        "DATABASE_URL": paths.database_url(env.gw.database),
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
    }
    return run_worker(sys.executable, variables, ["purge", *args])


@pytest.mark.parametrize("store", ["supabase", "postgres"])
def test_python_m_worker_purge_deletes_through_the_artifact_store(
    env: Env, standin: httpx.Client, spawn: Callable[..., WorkerProcess], tmp_path: Path, store: str
) -> None:
    w = spawn(store, RETENTION_SECONDS="0")  # maintenance off: only the command deletes
    w.wait_healthy()
    job_id, _, path = image_job(env)
    # Where the image went: Storage (its catalog row and its file) or the direct adapter's folder.
    stored = storage_folder() / path if store == "supabase" else tmp_path / "artifacts" / path
    assert stored.exists()
    w.kill()
    done = purge_command(env, tmp_path, store, "--older-than", "0s", "--orphan-grace", "1d")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "worker: purged 1 finished job(s); queued 0 orphaned object(s); "
        "deleted 1 object(s) through the artifact store; 0 left for a later run\n"
    )
    assert not stored.exists()
    assert not any(leftovers(env, job_id, [path]).values())
    again = purge_command(env, tmp_path, store, "--older-than", "0s")
    assert again.stdout.startswith("worker: purged 0 finished job(s)") and again.returncode == 0


def test_a_bad_duration_is_refused_with_usage_and_exit_2(env: Env, tmp_path: Path) -> None:
    done = purge_command(env, tmp_path, "supabase", "--older-than", "7 days")
    assert done.returncode == 2
    assert "argument --older-than: expected a number and a unit s/m/h/d such as 7d or 12h" in done.stderr
