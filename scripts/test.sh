#!/usr/bin/env bash
# Every test, in the order that fails fastest: lint/types, Python suites (SQL on template clones,
# unit, integration against an in-process gateway, worker end-to-end), the SQL suite again on
# PostgreSQL 17, then the JavaScript suites against the stack started by `python -m devstack up`
# (stopped again on exit, success or not).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# Suites that can run without a browser or a stack skip by default (handy by hand); here a
# missing prerequisite must fail the run instead.
export REQUIRE_FULL_SUITE=1

section() { printf '\n==> %s\n' "$*"; }

section "lint and types (ruff, mypy --strict, import-linter layers, tsc --strict, generated types up to date)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy .
.venv/bin/lint-imports --no-logo
if [[ -f worker/__main__.py ]]; then $PY -m worker schema --check; fi
(cd plugin-client && npm run --silent typecheck && npm run --silent check:types)

section "python: sql, unit, integration (worker processes end to end included)"
$PY -m devstack db up
set +e
$PY -m pytest -q -p no:cacheprovider
status=$?
set -e
# pytest exits 5 when it collected nothing: that is a failure here, never a pass.
if [[ $status -ne 0 ]]; then exit $status; fi

section "sql suite on PostgreSQL 17 (hosted's version for new projects; no pg_cron there)"
# A second cluster (.devstack/pg17) from the npm build in tools/devstack/pg17, on the 15 port + 10.
pg17() { DEVSTACK_PG_VERSION=17 DEVSTACK_PG_PORT=$((${DEVSTACK_PG_PORT:-54322} + 10)) "$@"; }
started_pg17=0
if ! pg17 $PY -m devstack db status | grep -q ': running'; then started_pg17=1; fi
set +e
pg17 $PY -m pytest -q -p no:cacheprovider tests/sql tools/devstack/devstack/tests/sql
status=$?
set -e
if [[ $started_pg17 == 1 ]]; then pg17 $PY -m devstack db down >/dev/null; fi
if [[ $status -ne 0 ]]; then exit $status; fi

section "plugin-client unit tests and build"
(cd plugin-client && npm test && npm run build)

section "start python -m devstack up for the JavaScript suites"
# Stop on exit only what this run started: a developer's running stack is left as it was.
started_stack=0
cleanup() { if [[ $started_stack == 1 ]]; then $PY -m devstack down >/dev/null || true; fi; }
trap cleanup EXIT
if ! $PY -m devstack status | grep -q '^gateway: running'; then started_stack=1; fi
$PY -m devstack up >/dev/null
set -a
# shellcheck disable=SC1091
source .devstack/env
set +a
# Both key flavours against the same stack: the hosted default (publishable + secret keys) and the
# legacy JWT keys (anon + service_role), which projects keep until they switch.
for flavour in new legacy; do
  section "JavaScript suites with the $flavour API keys (SUPABASE_KEY_FLAVOUR=$flavour)"
  export SUPABASE_KEY_FLAVOUR=$flavour
  if [[ -f tests/js/package.json ]]; then (cd tests/js && npm test); fi
  (cd plugin-client && npm run test:integration && npm run test:e2e)
done
