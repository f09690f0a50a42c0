"""Railway Infrastructure as Code for the worker service: `railway config plan`, then `apply`.

Railway replaced Config as Code (railway.toml, read by legacy services until 2026-12-01) with
this file. IaC is experimental and its documented DSL is TypeScript; for `.railway/railway.py`
the Railway CLI imports this module with the machine's `python3`, calls ``main()`` and takes a
plain dict in its graph format, so the file needs no package (src: railwayapp/cli
`src/iac/eval.rs` `evaluate_python`, `src/iac/compiler.rs`). A service's ``deploy`` and
``build`` objects go to Railway's environment config unchanged, with the field names of
railway.toml. Sources and caveats: docs/deploy.md. tests/unit/test_railway_config.py loads this
file the way the CLI does and checks it against railway.toml.
"""

from __future__ import annotations

# This file manages the worker service only: without a partial name, `railway config apply`
# would plan to delete every other service of the project.
PARTIAL = "figma-ai-jobs-worker"
SERVICE = "worker"

BUILD: dict[str, object] = {
    "builder": "RAILPACK",
    # A plugin-only, SQL-only, docs or devstack commit does not redeploy the worker.
    "watchPatterns": ["/worker/**", "/requirements.txt", "/.python-version", "/railway.toml"],
}

DEPLOY: dict[str, object] = {
    "startCommand": "python -m worker run",
    "healthcheckPath": "/health",
    "healthcheckTimeout": 120,
    "restartPolicyType": "ON_FAILURE",
    "restartPolicyMaxRetries": 10,
    # SIGTERM, then SIGKILL after this: above DRAIN_TIMEOUT_SECONDS (default 60) plus a margin.
    "drainingSeconds": 90,
}


def main(ctx: object = None) -> dict[str, object]:
    # No "source": the service keeps the GitHub repository it was created from.
    worker = {"type": "service", "name": SERVICE, "build": BUILD, "deploy": DEPLOY}
    return {"name": "figma-ai-jobs", "resources": [worker]}
