#!/usr/bin/env bash
# The Vulkan backend on the GPU machine (the `run` tool; NVIDIA's Vulkan
# ICD): the Vulkan tests under the validation layer, then `zt bench
# --backend vulkan` on Phi-3-mini-shaped q4_0 and q4_k_m files synthesized
# there, with a per-role GPU profile and a few launch shapes. Everything
# goes to $OUT/vulkan.log.
#
# The GPU machine has neither glslc nor the Vulkan loader, so prepare here:
#   make BUILD=build-gpu VULKAN=1 ARCHFLAGS=-march=x86-64-v3 \
#        build-gpu/zt build-gpu/zt-vulkan-tests
#   .gl/libvulkan1_*.deb                 the loader (unpacked to /, as the
#                                        device README's headless paragraph says)
#   .gl/extra/vulkan-validationlayers_*.deb, vulkan-tools_*.deb
#                                        unpacked under /tmp/vk
# and run with carry [".gl", "build-gpu/zt", "build-gpu/zt-vulkan-tests"]; or
# pack the binaries of several revisions with tools/vulkan_ab_pack.sh and
# carry [".gl", "build-ab"] (build-ab/ab.tar.xz is unpacked into build-gpu):
#   bash tools/device_vulkan.sh [quick|tests|bench|record|timeline|shapes|ab|sync]
# ("quick": tests and one q4_0 bench only; "tests": the tests and the
# greedy run only; "bench": the q4_0 bench only, no tests; "record": all
# but the tests and the launch shapes; "sync": only
# build-gpu/bench_vk_sync, what a dependency between dispatches costs,
# built with `make BUILD=build-gpu VULKAN=1 ... build-gpu/bench_vk_sync`
# and carried along; "timeline": the decode of VK_TYPES (default q4_0)
# with ZT_VK_TIMELINE=1,
# where each role's time goes, against the same bench without it). VK_SHAPES="ZT_VK_ROWS=16 ZT_VK_UNITS=1,ZT_VK_ROWS=4 ..."
# (comma-separated env settings) replaces the launch shapes tried, in quick
# runs too; a build-gpu/zt-base binary (an earlier commit, carried along)
# is benched first as the baseline of the same run. "shapes": each
# VK_SHAPES setting's decode bench and its matvec pipelines' compiled
# statistics (registers; ZT_VK_STATS=1), on VK_TYPES (default q4_0), after
# build-gpu/zt-base's decode bench where that is carried along. "ab": the
# decode bench of each VK_SHAPES setting ("base": build-gpu/zt-base;
# "@NAME SETTINGS": build-gpu/zt-NAME, another build carried along) in
# AB_ROUNDS interleaved rounds, each bench cut off after 120 s.
# SYNTH_AHEAD="q4_0 q4_k_m" with "tests" makes those benchmark files on the
# CPU while the tests run, for a later mode of the same call.
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/vulkan.log") 2>&1
Z=build-gpu/zt
section() { printf '\n== %s  (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

if [ -f build-ab/ab.tar.xz ]; then # tools/vulkan_ab_pack.sh's binaries
    mkdir -p build-gpu && tar xJf build-ab/ab.tar.xz -C build-gpu
fi
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
mkdir -p /tmp/vk
for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/vk; done
export LD_LIBRARY_PATH=/tmp/vk/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export VK_LAYER_PATH=/tmp/vk/usr/share/vulkan/explicit_layer.d
VKINFO=/tmp/vk/usr/bin/vulkaninfo
if ! $VKINFO --summary 2>/dev/null | grep -qi nvidia; then
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi

section machine
date -u
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
$VKINFO --summary 2>&1 | sed -n '/Devices:/,$p' | head -20
$VKINFO 2>/dev/null | grep -E "maxStorageBufferRange|maxMemoryAllocationSize|subgroupSize |shaderIntegerDotProduct |integerDotProduct4x8BitPackedMixedSignednessAccelerated" | sort -u
grep -m1 "model name" /proc/cpuinfo

# NVIDIA's ICD pulls in libnvidia-tls, whose initial-exec TLS block does not
# fit glibc's default surplus once the validation layer (and the test
# binary's own TLS) are loaded: "cannot allocate memory in static TLS
# block". A larger optional static TLS reserve (glibc >= 2.32) fixes it.
export GLIBC_TUNABLES=glibc.rtld.optional_static_tls=262144
ahead=() # SYNTH_AHEAD's background synths
synth() { # the Phi-3-mini-shaped file of type $1, unless an earlier mode made it
    # (under a lock, written aside and renamed: a synth started in the
    # background by the tests mode may still be writing it)
    flock /tmp/phi3-$1.lock sh -c "[ -s /tmp/phi3-$1.gguf ] ||
        { $Z synth --preset phi3-mini --type $1 -o /tmp/phi3-$1.part --threads 16 >/dev/null &&
          mv /tmp/phi3-$1.part /tmp/phi3-$1.gguf; }"
}
shapes_timeline() { # each VK_SHAPES setting: the bench, then its timeline
    local IFS=,
    for cfg in $VK_SHAPES; do
        section "$cfg"
        (IFS=' '; env $cfg $Z bench /tmp/phi3-q4_0.gguf --backend vulkan -p 0 -n 128 -r 3 | grep decode
         env $cfg ZT_VK_TIMELINE=1 $Z bench /tmp/phi3-q4_0.gguf --backend vulkan -p 0 -n 64 -r 1 2>&1 |
             grep -vE "^(model|weights|dispatches)")
    done
}
if [ "${1:-}" = timeline ]; then
    for t in ${VK_TYPES:-q4_0}; do
        section "decode timeline, $t (src/backend/vulkan/timeline.c)"
        synth $t
        $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 128 -r 3 | grep decode
        ZT_VK_TIMELINE=1 $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 128 -r 1 2>&1
    done
    [ -n "${VK_SHAPES:-}" ] && shapes_timeline
    exit 0
fi
if [ "${1:-}" = shapes ]; then
    # each VK_SHAPES setting on VK_TYPES (default q4_0): the decode bench,
    # then what the driver compiled for its matvec pipelines (ZT_VK_STATS)
    for t in ${VK_TYPES:-q4_0}; do
        synth $t
        if [ -x build-gpu/zt-base ]; then
            section "$t baseline binary (build-gpu/zt-base)"
            build-gpu/zt-base bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 128 -r 3 | grep decode
        fi
        IFS=, read -ra cfgs <<<"${VK_SHAPES:-ZT_VK_STAGE=1}"
        for cfg in "${cfgs[@]}"; do
            section "$t $cfg"
            env $cfg $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 128 -r 3 | grep decode
            env $cfg ZT_VK_STATS=1 $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 2 -r 1 2>&1 |
                grep "stats: \(qkv\|ffn\|matmul\|lm_head\|att\)" | sort -u
        done
    done
    exit 0
fi
if [ "${1:-}" = ab ]; then
    # AB_ROUNDS rounds (default 3) of the decode bench (AB_ARGS, default
    # "-p 0 -n 128 -r 3") of each VK_SHAPES setting ("base":
    # build-gpu/zt-base) on VK_TYPES, interleaved, so that a drift of the
    # machine's speed reaches every setting alike
    for t in ${VK_TYPES:-q4_0}; do
        synth $t
        IFS=, read -ra cfgs <<<"${VK_SHAPES:-base,ZT_VK_STAGE=1}"
        for r in $(seq 1 "${AB_ROUNDS:-3}"); do
            for cfg in "${cfgs[@]}"; do
                name=${cfg:-base} z=$Z
                if [ "$cfg" = base ]; then z=build-gpu/zt-base cfg=; fi
                if [ "${cfg:0:1}" = @ ]; then
                    read -r bin cfg <<<"$cfg"
                    z=build-gpu/zt-${bin:1}
                fi
                printf '%s round %s %-40s ' "$t" "$r" "$name"
                env $cfg timeout 120 $z bench /tmp/phi3-$t.gguf --backend vulkan ${AB_ARGS:--p 0 -n 128 -r 3} |
                    grep -oE "(pp|tg)[0-9]+ +[0-9.]+ tok/s.*"
            done
        done
    done
    exit 0
fi
if [ "${1:-}" = sync ]; then
    section "dispatch synchronization, no work in a step (bench/vulkan/sync_bench.c)"
    for n in 1000 4000; do timeout 120 build-gpu/bench_vk_sync $n; done
    exit 0
fi
if [ "${1:-}" = tests ] && [ -n "${SYNTH_AHEAD:-}" ]; then
    # the benchmark files of a later mode of the same call, made on the
    # CPU while the tests run on the GPU (Q4_K_M takes ~52 s)
    for t in $SYNTH_AHEAD; do
        synth $t &
        ahead+=($!)
    done
fi
if [ "${1:-}" != bench ] && [ "${1:-}" != record ]; then
    section "vulkan tests, validation layer on"
    VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation ZT_TEST_TMP=/tmp/zt-tests \
        build-gpu/zt-vulkan-tests >/tmp/tests.log 2>&1
    grep -vE "^ok " /tmp/tests.log
    if grep -q "layer not present" /tmp/tests.log; then
        section "vulkan tests, without the layer (it did not load here)"
        ZT_TEST_TMP=/tmp/zt-tests2 build-gpu/zt-vulkan-tests 2>&1 | grep -vE "^ok "
    fi
    section "greedy run, vulkan vs cpu"
    $Z run models/zt-demo-15m-f16.gguf "And God said" -n 32 --temp 0 --backend vulkan
    $Z run models/zt-demo-15m-f16.gguf "And God said" -n 32 --temp 0 --backend cpu
fi

# (their pids only: a bare `wait` also waits for the log's tee, forever)
if [ "${1:-}" = tests ]; then
    [ ${#ahead[@]} -eq 0 ] || wait "${ahead[@]}"
    exit 0
fi

section synth
types="q4_0 q4_k_m"
[ "${1:-}" = quick ] || [ "${1:-}" = bench ] && types=q4_0
for t in $types; do
    s0=$(date +%s)
    synth $t
    echo "synth $t: $(($(date +%s) - s0)) s"
done

if [ -x build-gpu/zt-base ]; then
    section "baseline binary (build-gpu/zt-base), q4_0 decode"
    build-gpu/zt-base bench /tmp/phi3-q4_0.gguf --backend vulkan -p 0 -n 128 -r 5 | grep -E "decode|dispatches"
fi
for t in $types; do
    section "bench $t"
    $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 512 -n 128 -r 5
    section "profile $t (timestamps after every dispatch: adds their cost)"
    ZT_VK_PROFILE=1 $Z bench /tmp/phi3-$t.gguf --backend vulkan -p 0 -n 64 -r 1
done
shapes() {
    section "launch shapes, q4_0 decode"
    local IFS=,
    for cfg in ${VK_SHAPES:-ZT_VK_ROWS=4,ZT_VK_ROWS=16,ZT_VK_UNITS=1,ZT_VK_UNITS=3}; do
        printf '%-32s ' "$cfg"
        (IFS=' '; env $cfg $Z bench /tmp/phi3-q4_0.gguf --backend vulkan -p 0 -n 128 -r 3 | grep decode)
    done
}
if [ "${1:-}" = quick ] || [ "${1:-}" = bench ]; then
    [ -n "${VK_SHAPES:-}" ] && shapes
    exit 0
fi
[ "${1:-}" = record ] || shapes
section "depth 2048 and 8 sequences, q4_k_m"
$Z bench /tmp/phi3-q4_k_m.gguf --backend vulkan -p 0 -d 2048 -n 64 -r 2 | grep -E "decode|dispatches"
$Z bench /tmp/phi3-q4_k_m.gguf --backend vulkan -p 0 -s 8 -n 64 -r 2 | grep -E "decode|dispatches"
section done
