#!/usr/bin/env bash
# `npm ci` in each given npm project whose package-lock.json changed since its last install
# (a stamp of the lockfile's hash in node_modules). Used by setup.sh and setup_bench.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
for dir in "$@"; do
  [[ -f $dir/package-lock.json ]] || continue
  lock=$dir/node_modules/.lock.sha
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [[ ! -f $lock || $(cat "$lock") != "$want" ]]; then
    echo "setup: npm ci in $dir"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$lock"
  fi
done
