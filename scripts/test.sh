#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs
# (Debian packages, the pinned npm packages of tests/*/), builds zt and
# runs `make test`, whose last line reads "N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the suite uses: the toolchain, tmux (zt chat in a
# terminal), Node.js (reference tokenizers, servers' clients, browsers),
# Chromium (the web pages), clang/lld/wasi-libc (the wasm build), clang's
# sanitizer and fuzzer runtimes (fuzz regressions, leak check), glslc and
# Mesa's lavapipe with the Khronos validation layers (the Vulkan backend).
packages=(build-essential tmux chromium clang-14 lld-14 wasi-libc libclang-rt-14-dev-wasm32
          libclang-rt-14-dev llvm-14 glslc libvulkan-dev mesa-vulkan-drivers
          vulkan-validationlayers vulkan-tools)
need=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# a Node.js that is already there (from any source) is kept
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# every test folder with an npm lock file gets its pinned packages
for lock in tests/*/package-lock.json; do
    [ -e "$lock" ] || continue
    (cd "$(dirname "$lock")" && npm ci --no-audit --no-fund --loglevel=error)
done
make -j"$(nproc)"
make test
