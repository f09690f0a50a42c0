"""`.devstack/env`: sourceable KEY=VALUE lines describing the running stack."""

from __future__ import annotations

import shlex

from devstack import keys, paths

# The model stand-ins accept any key; this one says what it is, and the worker refuses it unless
# the provider's base URL is loopback (worker.config.PLACEHOLDER_KEY_PREFIX), so it cannot leak
# into a deploy and fail every job there.
MODEL_KEY_PLACEHOLDER = "devstack-placeholder-only-the-local-stand-ins-accept-this"


def values() -> dict[str, str]:
    k = keys.load_or_create()
    return {
        "SUPABASE_URL": f"http://{paths.HOST}:{paths.API_PORT}",
        # Today's keys first; the worker prefers SUPABASE_SECRET_KEY when both are set.
        "SUPABASE_PUBLISHABLE_KEY": k.publishable_key,
        "SUPABASE_SECRET_KEY": k.secret_key,
        # The legacy JWT keys, still accepted (hosted deprecates them by the end of 2026).
        "SUPABASE_ANON_KEY": k.anon_key,
        "SUPABASE_SERVICE_ROLE_KEY": k.service_role_key,
        "SUPABASE_JWT_SECRET": k.jwt_secret,
        "DATABASE_URL": paths.database_url(),
        "ANTHROPIC_API_KEY": MODEL_KEY_PLACEHOLDER,
        "ANTHROPIC_BASE_URL": f"http://{paths.HOST}:{paths.MODELS_PORT}",
        "GEMINI_API_KEY": MODEL_KEY_PLACEHOLDER,
        "GEMINI_BASE_URL": f"http://{paths.HOST}:{paths.MODELS_PORT}",
    }


def render(env: dict[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())


def write() -> dict[str, str]:
    env = values()
    paths.STATE.mkdir(parents=True, exist_ok=True)
    paths.ENV_FILE.write_text(render(env))
    paths.ENV_FILE.chmod(0o600)
    return env
