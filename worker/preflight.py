"""`python -m worker run --check`: would `run` start here? One line, and an exit code.

After the configuration (the CLI validates it as for `run`, model keys included), one
authenticated round trip to the queue's backend and nothing else: no model call, no Realtime,
no claim, no write. ``next_job_run_at`` is granted to the service role alone, so an answer proves
the URL and the service-role key; ``job_kinds`` and ``kind_models`` prove the migrations are there.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.compose import build_transports
from worker.config import Settings
from worker.core.errors import StoreError, StoreUnavailable
from worker.core.ports import ProviderControl


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    line: str

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def backend(settings: Settings) -> str:
    """Where the queue lives, for messages (never the database password)."""
    if settings.worker_store == "supabase":
        return f"Supabase at {settings.supabase_url}"
    return "Postgres at DATABASE_URL"


def credential(settings: Settings) -> str:
    """Which key the worker presents, e.g. " (secret API key from SUPABASE_SECRET_KEY)"."""
    key = settings.supabase_key
    return f" ({key.describe()})" if settings.worker_store == "supabase" and key is not None else ""


async def check(settings: Settings) -> CheckResult:
    where = backend(settings)
    try:
        transports = await build_transports(settings)
    except Exception as exc:  # the client refused to start: an unusable URL, say
        return CheckResult(False, f"check failed: cannot connect to {where}: {type(exc).__name__}: {exc}")
    store = transports.store
    try:
        await store.next_run_at(settings.worker_kinds)
        known = {kind.kind for kind in await store.job_kinds()}
        chains_missing = await _chains_missing(transports.control)
    except StoreUnavailable as exc:
        return CheckResult(False, f"check failed: cannot reach {where}: {exc}")
    except StoreError as exc:
        code = f" ({exc.code})" if exc.code != StoreError.code else ""
        return CheckResult(
            False,
            f"check failed: {where} refused the worker's key{credential(settings)}: {exc}{code}; it must be the "
            "secret key (sb_secret_…) or the legacy service-role key",
        )
    except Exception as exc:  # anything else a foreign server answers is a failed check, not a traceback
        return CheckResult(False, f"check failed: unexpected answer from {where}: {type(exc).__name__}: {exc}")
    finally:
        await store.close()
    missing = [kind for kind in settings.worker_kinds if kind not in known]
    if missing:
        return CheckResult(
            False, f"check failed: {where} has no job_kinds row for {', '.join(missing)} (are the migrations pushed?)"
        )
    if chains_missing is not None:
        return CheckResult(
            False,
            f"check failed: {where} cannot read the fallback chains (public.kind_models: {chains_missing}); "
            "are the migrations pushed?",
        )
    return CheckResult(
        True,
        f"check ok: configuration valid; {where} answered as the service role{credential(settings)} "
        f"(next_job_run_at, job_kinds: {', '.join(settings.worker_kinds)}, kind_models); model APIs not contacted",
    )


async def _chains_missing(control: ProviderControl) -> str | None:
    """Why the fallback chains cannot be read (the provider-limit migration not pushed), or None.
    The key was accepted already, so a refusal here is the schema's, not the credential's."""
    try:
        await control.kind_models()
    except StoreUnavailable:
        raise
    except StoreError as exc:
        return (str(exc).splitlines() or [type(exc).__name__])[0]  # Postgres adds a LINE/caret block
    return None
