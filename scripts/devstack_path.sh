#!/usr/bin/env bash
# Put devstack (tools/devstack, a tool beside the product, not an installed package) on a venv's
# import path with a .pth file, so `<venv>/bin/python -m devstack` works from the repository root.
# Usage: scripts/devstack_path.sh <venv>. Idempotent. A worktree sharing another checkout's venv
# sets PYTHONPATH=tools/devstack instead (it comes before site-packages).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1
site=$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
want="$PWD/tools/devstack"
pth="$site/figma_ai_jobs_devstack.pth"
if [[ ! -f $pth || $(cat "$pth") != "$want" ]]; then echo "$want" > "$pth"; fi
