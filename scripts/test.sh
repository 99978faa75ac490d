#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine: installs what it needs
# (Debian packages, the pinned npm packages of tests/*/), builds zt and
# runs the suite, then again under sanitizers, then a short fuzz pass. The
# last line reads "N passed, N failed" over all three.
set -uo pipefail
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
# Three stages, each printing "ok NAME" / "FAIL NAME" lines:
#   1. make test        the whole suite (unit, e2e, Node, browsers)
#   2. make asan        the C and server suites again under ASan + UBSan
#                       (not the CUDA compile nor the Vulkan tests: nvcc's
#                       output is not instrumented and the Vulkan binaries
#                       are stage 1's, so they would only repeat stage 1,
#                       ~4.5 minutes on 2 cores)
#   3. make fuzz-ci     every fuzz target for a bounded time
log=$(mktemp)
status=0
make -j"$(nproc)" || exit 1
make test 2>&1 | tee "$log" || status=1
ZT_NODE_TESTS="server" ZT_E2E_SKIP="cuda_build vulkan" make asan 2>&1 | sed -u 's/^\(ok\|FAIL\) /\1 asan: /' | tee -a "$log" || status=1
FUZZ_CI_SECONDS=${FUZZ_CI_SECONDS:-10} make fuzz-ci 2>&1 | tee -a "$log" || status=1
echo "$(grep -c '^ok ' "$log") passed, $(grep -c '^FAIL ' "$log") failed"
rm -f "$log"
exit $status
