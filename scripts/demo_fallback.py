"""The fallback part of `make demo` (issue 13): the operator gives generate_design a chain
(Claude, then Gemini) in public.kind_models, the stand-in's fault knob makes Claude answer 529
(overloaded), and the user's next design job is answered by the fallback; the result says so
and the shared cooldown is visible in public.model_capacity. Stand-ins only (a real API cannot be
told to be overloaded); everything it changes is put back at the end."""

from __future__ import annotations

from typing import Any

import httpx
import psycopg
from psycopg.rows import dict_row

from devstack import paths

KIND = "generate_design"
PRIMARY = ("anthropic", "claude-haiku-4-5")
FALLBACK = ("gemini", "gemini-2.5-flash")


def install_chain() -> bool:
    """The chain, as an operator writes it (one SQL statement); False if the kind has one already."""
    with psycopg.connect(paths.database_url(), autocommit=True) as conn:
        if conn.execute("select 1 from public.kind_models where kind = %s", (KIND,)).fetchone():
            return False
        conn.execute(
            "insert into public.kind_models (kind, position, provider, model) values (%s, 1, %s, %s), (%s, 2, %s, %s)",
            (KIND, *PRIMARY, KIND, *FALLBACK),
        )
    return True


def remove_chain() -> None:
    with psycopg.connect(paths.database_url(), autocommit=True) as conn:
        conn.execute("delete from public.kind_models where kind = %s", (KIND,))
        conn.execute("delete from public.model_capacity where provider = %s and model = %s", PRIMARY)


def overload_primary(models_url: str) -> None:
    """The stand-in fault knob: the next request for the primary model is answered 529."""
    fault = {"provider": PRIMARY[0], "kind": "529", "model": PRIMARY[1], "retry_after": 30}
    httpx.post(f"{models_url}/_standin/faults", json=fault, timeout=5).raise_for_status()


def cooldowns() -> list[dict[str, Any]]:
    with psycopg.connect(paths.database_url(), autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(
            "select provider, model, cooldown_status,"
            " round(extract(epoch from cooldown_until - now()))::int as seconds_left"
            " from public.model_capacity where cooldown_until > now() order by provider, model"
        ).fetchall()


def describe(result: dict[str, Any] | None) -> str:
    model = (result or {}).get("model") or {}
    if not model:
        return "the result names no model"
    how = "a FALLBACK" if model.get("fallback") else "the first model of the chain"
    return f"answered by {model['provider']}/{model['model']} ({how})"
