#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs
# (Debian packages, the pinned npm packages of tests/node), builds zt and
# runs `make test`, whose last line reads "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v cc >/dev/null || need+=(build-essential)
command -v make >/dev/null || need+=(make)
command -v node >/dev/null || need+=(nodejs npm)
command -v tmux >/dev/null || need+=(tmux)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# every test folder with an npm lock file gets its pinned packages
for lock in tests/*/package-lock.json; do
    [ -e "$lock" ] || continue
    (cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error)
done
make -j"$(nproc)"
make test
