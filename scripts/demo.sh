#!/usr/bin/env bash
# The first command of the README: on a fresh Debian machine, installs a C
# toolchain if missing, builds zt and runs its main job on the model shipped
# in the repo: a streamed completion, then a two-turn chat, with tok/s.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null || ! command -v make >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential >/dev/null
fi
make -j"$(nproc)" zt
M=models/zt-demo-15m-f16.gguf
echo
echo "== zt run $M \"And it came to pass\""
./zt run "$M" "And it came to pass" -n 64 --seed 7
echo
echo "== zt chat $M   (two turns, typed from a script)"
printf 'Tell me a fortune.\nWhat is a hacker?\n' | ./zt chat "$M" -n 96 --seed 7
