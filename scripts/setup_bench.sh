#!/usr/bin/env bash
# What `make bench` needs on top of scripts/setup.sh: .venv-bench, the product's development
# requirements (requirements-dev.txt: the runtime set plus devstack's) plus bench/requirements.txt
# (procrastinate, pgqueuer, matplotlib, profilers), and bench/js's own npm project (supabase-js and
# the Node 22 the notify scenario's JS subscriber runs under). Kept apart so the competitors never
# end up in the product's .venv. Idempotent (stamps of the requirement files' and lockfile's hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

PY=${PYTHON:-python3}
stamp=.venv-bench/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt tools/devstack/requirements.txt bench/requirements.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv-bench/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: creating .venv-bench from requirements-dev.txt + bench/requirements.txt"
  [[ -x .venv-bench/bin/python ]] || "$PY" -m venv .venv-bench
  .venv-bench/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -r bench/requirements.txt
  echo "$want" > "$stamp"
fi
bash scripts/devstack_path.sh .venv-bench

bash scripts/npm_ci.sh bench/js
