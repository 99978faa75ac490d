#!/usr/bin/env bash
# The Vulkan backend inside the whole suite: builds zt with VULKAN=1 into
# its own build directory, then runs the Vulkan tests (tests/vulkan: every
# shader against the CPU reference, every golden fixture, the portable
# build, under the Khronos validation layer — any validation message fails
# them) on the device the Vulkan loader finds; in CI that is Mesa's
# lavapipe. Then the CLI on the Vulkan backend. A missing tool, driver or
# layer is a FAIL, never a silent pass: CI installs glslc, libvulkan-dev,
# mesa-vulkan-drivers, vulkan-validationlayers and vulkan-tools.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
B=${ZT_VULKAN_BUILD:-build-vulkan}
D="$T/vulkan" && rm -rf "$D" && mkdir -p "$D"

missing=()
command -v glslc >/dev/null || missing+=(glslc)
[ -e /usr/include/vulkan/vulkan.h ] || missing+=(libvulkan-dev)
command -v vulkaninfo >/dev/null || missing+=(vulkan-tools)
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
ls /usr/share/vulkan/explicit_layer.d/VkLayer_khronos_validation.json >/dev/null 2>&1 ||
    missing+=(vulkan-validationlayers)
if [ ${#missing[@]} -gt 0 ]; then
    fail vulkan_toolchain_installed "missing Debian packages: ${missing[*]}"
    exit 0
fi
ok vulkan_toolchain_installed
if ! vulkaninfo --summary >"$D/vulkaninfo.txt" 2>&1; then
    fail vulkan_device_present "vulkaninfo: $(tail -3 "$D/vulkaninfo.txt")"
    exit 0
fi
ok vulkan_device_present

if ! make -s BUILD="$B" VULKAN=1 -j"$(nproc)" "$B/zt" "$B/zt-vulkan-tests" >"$D/build.log" 2>&1; then
    fail vulkan_build "$(tail -5 "$D/build.log")"
    exit 0
fi
ok vulkan_build

# the tests print their own "ok NAME" / "FAIL NAME" lines
VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation ZT_TEST_TMP="$D/tests" "$B/zt-vulkan-tests" \
    2>"$D/tests.err" || tail -20 "$D/tests.err" | sed 's/^/  /'

# the CLI: a greedy continuation on the demo model is the CPU's
M=models/zt-demo-15m-f16.gguf
cpu=$("$B/zt" run "$M" "And God said" -n 8 --temp 0 --backend cpu 2>/dev/null)
vk=$(VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation "$B/zt" run "$M" "And God said" -n 8 --temp 0 \
    --backend vulkan 2>"$D/run.err")
if [ -n "$vk" ] && [ "$vk" = "$cpu" ] && ! grep -q "zt vulkan:" "$D/run.err"; then
    ok vulkan_run_greedy_matches_cpu
else
    fail vulkan_run_greedy_matches_cpu "vulkan: '$vk' cpu: '$cpu' $(head -c 300 "$D/run.err")"
fi

# bench reports the dispatches of a decode step: 4 per layer + 3 with the
# attention and wo fused (a device with float atomics, as lavapipe is), 5
# per layer + 3 with them apart
"$B/zt" synth --preset tiny --type q4_k_m -o "$D/tiny.gguf" >/dev/null 2>&1
out=$("$B/zt" bench "$D/tiny.gguf" --backend vulkan -p 16 -n 4 -r 1 2>&1)
apart=$(ZT_VK_FUSE_WO=0 "$B/zt" bench "$D/tiny.gguf" --backend vulkan -p 16 -n 4 -r 1 2>&1)
if printf '%s\n' "$out" | grep -q "dispatches per decode step: 11 " &&
    printf '%s\n' "$apart" | grep -q "dispatches per decode step: 13 "; then
    ok vulkan_bench_counts_dispatches
else
    fail vulkan_bench_counts_dispatches "$out $apart"
fi

expect_error vulkan_says_what_fits "needs [0-9.]+ MiB of device memory.*would fit" \
    env ZT_VK_MEMORY_MB=100 "$B/zt" bench "$D/tiny.gguf" --backend vulkan -p 4096 -n 1 -s 64 -r 1
