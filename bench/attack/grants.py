"""(c) Privileges: every function in the exposed schemas, found through the catalog, against the
reviewed list in supabase/grants_reviewed.json. A function missing from the list, or whose
EXECUTE grants for anon/authenticated/service_role differ from the reviewed ones, is a finding.
Then, over HTTP, every function the list keeps from users is called as user B and as anon:
each call must be refused.

A new function is reviewed by adding its line (``python -m bench attack --print-grants`` prints
the catalog's view in the file's format) with a ``why``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.attack.recorder import Recorder
from bench.attack.surfaces import send
from bench.attack.target import Target, User

REVIEWED = Path(__file__).resolve().parents[2] / "supabase" / "grants_reviewed.json"
ROLES = ("anon", "authenticated", "service_role")
CATEGORY = "privileges"

CATALOG = """
select n.nspname || '.' || p.proname || '(' || oidvectortypes(p.proargtypes) || ')' as signature,
       has_function_privilege('anon', p.oid, 'execute'),
       has_function_privilege('authenticated', p.oid, 'execute'),
       has_function_privilege('service_role', p.oid, 'execute')
from pg_proc p join pg_namespace n on n.oid = p.pronamespace
where n.nspname = any(%s)
order by 1
"""


def reviewed(path: Path = REVIEWED) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def catalog(database_url: str, schemas: list[str]) -> dict[str, dict[str, bool]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        rows = conn.execute(CATALOG, (schemas,)).fetchall()
    return {sig: dict(zip(ROLES, (a, u, s), strict=True)) for sig, a, u, s in rows}


def compare(found: dict[str, dict[str, bool]], review: dict[str, Any]) -> list[dict[str, Any]]:
    """Findings: functions not reviewed, and grants that differ from the review."""
    out: list[dict[str, Any]] = []
    listed: dict[str, dict[str, Any]] = review["functions"]
    for sig, grants in found.items():
        entry = listed.get(sig)
        if entry is None:
            out.append({"function": sig, "problem": "not in supabase/grants_reviewed.json", "grants": grants})
            continue
        wrong = {role: grants[role] for role in ROLES if grants[role] != entry[role]}
        if wrong:
            out.append({"function": sig, "problem": "grants differ from the review", "actual": wrong})
    return out


def print_catalog(found: dict[str, dict[str, bool]], review: dict[str, Any]) -> str:
    """The catalog in the reviewed file's shape, keeping the ``why`` of functions already reviewed."""
    functions = {
        sig: {**grants, "why": review["functions"].get(sig, {}).get("why", "TODO: review")}
        for sig, grants in found.items()
    }
    return json.dumps({**review, "functions": functions}, indent=2) + "\n"


def call_refused(target: Target, client: httpx.Client, rec: Recorder, b: User, review: dict[str, Any]) -> None:
    """Every function kept from a role is refused to it over RPC (with empty arguments: the
    grant check comes before argument matching, so a 2xx or a 400 naming an argument is a breach)."""
    rest = f"{target.url}/rest/v1/rpc"
    for sig, entry in review["functions"].items():
        schema, _, rest_of = sig.partition(".")
        name = rest_of.split("(", 1)[0]
        if schema != "public":
            continue
        for role, headers in (("authenticated", target.headers(b.token)), ("anon", target.headers())):
            if entry[role]:
                continue
            send(
                client,
                rec,
                CATEGORY,
                f"rpc {name} as {role}",
                "POST",
                f"{rest}/{name}",
                json={},
                headers=headers,
                must_refuse=True,
            )
