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
if [ -f tests/node/package-lock.json ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
make -j"$(nproc)"
make test
