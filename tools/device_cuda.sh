#!/usr/bin/env bash
# The one script the CUDA work runs on the GPU machine (one `run` call):
#
#   bash tools/device_cuda.sh [STAGES]     STAGES: any of tests,sanitize,bench,icache
#                                          (default: the first three)
#   BENCH_TYPES="q4_0 q4_k_m f16"          model types the bench runs
#   BENCH_ARGS=--quick                     fewer variants / steps
#   (a base_bench_cuda in the pack -- bench/cuda/build.sh's BASE_BENCH --
#    is a baseline's bench, run first for each type: same card, same call,
#    bench_base_*.log; a call brings back at most 8 files, so with a
#    baseline and three types run it with OUT=/tmp/o and tar that into $OUT)
#
# Expects build-cuda/pack/bins.tar.xz from bench/cuda/build.sh (carried
# with the call: carry ["build-cuda/pack"]); builds there with nvcc only
# when it is missing. Writes under $OUT:
#   gpu.txt        nvidia-smi's view of the card
#   tests.log      tests/cuda (every kernel family, whole forward vs CPU)
#   sanitize.log   compute-sanitizer memcheck + racecheck on a subset
#   bench_*.log    bench/cuda/bench_cuda per model type
#   icache_*.log   ncu over one decode step as the graph runs (what the warps
#                  wait on, instruction fetch first), then layer 5's four
#                  kernels' executed code (tools/ncu_footprint.py) and, with
#                  the pack's lineinfo.tar.xz (build.sh LINEINFO=), where in
#                  the source their once-a-warp code comes from
#                  (tools/ncu_lines.py)
#   summary.txt    the lines worth reading, also printed last
# The whole script keeps to a 560 s deadline (a call may run 600 s): each
# step gets what is left, and steps that cannot start in time are skipped.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/zt-cuda-out}
mkdir -p "$OUT"
STAGES=${1:-tests,sanitize,bench}
BENCH_TYPES=${BENCH_TYPES:-q4_0 q4_k_m f16}
BENCH_ARGS=${BENCH_ARGS:-}
CB=${CUDA_BUILD:-build-cuda} # carried: $CB/pack/bins.tar.xz
BIN=$CB/bin
SUM=$OUT/summary.txt
DEADLINE=$((SECONDS + ${DEVICE_SECONDS:-560}))
: >"$SUM"
say() { echo "$@" | tee -a "$SUM"; }
has() { [[ ",$STAGES," == *",$1,"* ]]; }
# left CAP: seconds a step may take (at most CAP, at most what is left)
left() { local l=$((DEADLINE - SECONDS)); [ "$l" -gt "$1" ] && l=$1; echo $l; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
    --format=csv >"$OUT/gpu.txt" 2>&1
say "gpu: $(tail -1 "$OUT/gpu.txt")"
say "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none) (plus the working tree)"

if [ -f $CB/pack/bins.tar.xz ]; then
    # a baseline left by an earlier pack must not pass for this one's
    mkdir -p $BIN && rm -f $BIN/base_bench_cuda && tar -C $BIN -xJf $CB/pack/bins.tar.xz
fi
if [ ! -x $BIN/zt-cuda-tests ] || [ ! -x $BIN/bench_cuda ]; then
    say "building on the device (no carried binaries)"
    timeout "$(left 400)" bash bench/cuda/build.sh -j 16 >"$OUT/build.log" 2>&1 ||
        { say "BUILD FAILED"; tail -30 "$OUT/build.log"; exit 1; }
fi

if has tests; then
    timeout "$(left 200)" $BIN/zt-cuda-tests >"$OUT/tests.log" 2>&1
    say "tests: exit $? -- $(grep -E '^unit:' "$OUT/tests.log")"
    grep -E '^FAIL|rel L2|max \|diff' "$OUT/tests.log" | head -60 | tee -a "$SUM"
fi

if has bench && [ -x $BIN/base_bench_cuda ]; then
    for t in $BENCH_TYPES; do
        [ "$(left 1000)" -lt 120 ] && { say "baseline bench $t: skipped (deadline)"; continue; }
        timeout "$(left 200)" $BIN/base_bench_cuda $t $BENCH_ARGS >"$OUT/bench_base_$t.log" 2>&1
        say "baseline bench $t: exit $?"
        grep -E 'decode_tg128|tl attn|pp512|batched|depth|^\|' "$OUT/bench_base_$t.log" |
            sed 's/^/  base: /' | tee -a "$SUM"
    done
fi

if has bench; then
    for t in $BENCH_TYPES; do
        [ "$(left 1000)" -lt 60 ] && { say "bench $t: skipped (deadline)"; continue; }
        timeout "$(left 200)" $BIN/bench_cuda $t $BENCH_ARGS >"$OUT/bench_$t.log" 2>&1
        say "bench $t: exit $?"
        grep -E 'copy_GBps|floor|decode_tg128|best|phase |tl |timeline|pp512|batched|depth|bench_s|^\|' \
            "$OUT/bench_$t.log" | tee -a "$SUM"
    done
fi

if has sanitize; then
    {
        for t in test_cuda_matmul_q4_k test_cuda_forward_phi3_q4_0 \
            test_cuda_decode_variants_agree_over_long_context \
            test_cuda_fused_attention_wo_matches_phases test_cuda_attention_tensor_cores_match_fmas \
            test_cuda_attention_rows_forms_agree; do
            [ "$(left 1000)" -lt 30 ] && { echo "$t: skipped (deadline)"; continue; }
            echo "== memcheck $t"
            timeout "$(left 120)" compute-sanitizer --tool memcheck --error-exitcode 9 \
                $BIN/zt-cuda-tests $t
            echo "exit $?"
        done
        for t in test_cuda_forward_llama_q8 test_cuda_forward_llama_q4_k_m \
            test_cuda_fused_attention_wo_matches_phases test_cuda_attention_tensor_cores_match_fmas \
            test_cuda_attention_rows_forms_agree test_cuda_decode_variants_agree_over_long_context; do
            [ "$(left 1000)" -lt 30 ] && { echo "$t: skipped (deadline)"; continue; }
            echo "== racecheck $t"
            timeout "$(left 120)" compute-sanitizer --tool racecheck --error-exitcode 9 \
                $BIN/zt-cuda-tests $t
            echo "exit $?"
        done
    } >"$OUT/sanitize.log" 2>&1
    say "sanitize: $(grep -E 'SUMMARY|^exit|skipped' "$OUT/sanitize.log" | tr '\n' ' ')"
fi
if has icache; then
    # 2026-11-29-cuda-h200-8.md: the step's kernels fetch their code cold every launch
    M='regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio,smsp__inst_executed.sum'
    for t in $BENCH_TYPES; do
        [ "$(left 1000)" -lt 90 ] && { say "icache $t: skipped (deadline)"; continue; }
        timeout "$(left 120)" ncu --profile-from-start off --graph-profiling graph \
            --cache-control none --clock-control none --metrics "$M" \
            $BIN/bench_cuda $t --steps rows=1 >"$OUT/icache_$t.log" 2>&1
        say "icache $t: $(grep -E 'no_instruction|inst_executed' "$OUT/icache_$t.log" |
            awk '{print $1, $NF}' | tr '\n' ' ')"
        timeout "$(left 200)" ncu --profile-from-start off --cache-control none \
            --clock-control none --launch-skip 20 --launch-count 4 --section SourceCounters \
            --import-source no -f -o /tmp/icache_$t $BIN/bench_cuda $t --steps rows=1 \
            >/dev/null 2>&1 &&
            ncu --import /tmp/icache_$t.ncu-rep --page source --csv --print-source sass \
                >/tmp/icache_$t.csv 2>/dev/null &&
            python3 tools/ncu_footprint.py </tmp/icache_$t.csv | tee -a "$OUT/icache_$t.log" "$SUM"
        if [ -f $CB/pack/lineinfo.tar.xz ]; then
            rm -rf /tmp/zt-li && mkdir -p /tmp/zt-li && tar -C /tmp/zt-li -xJf $CB/pack/lineinfo.tar.xz
            (cd /tmp/zt-li && for o in *.o; do cuobjdump -xelf all "$o" >/dev/null; done)
            for c in /tmp/zt-li/*.cubin; do nvdisasm -gi -c "$c" >"${c%.cubin}.dis"; done
            for k in "cu_phase_kernel<(int)1, (int)0" "cu_attn_wo_kernel<" \
                "cu_phase_kernel<(int)1, (int)4" "cu_phase_kernel<(int)1, (int)5"; do
                for d in /tmp/zt-li/*.dis; do
                    python3 tools/ncu_lines.py /tmp/icache_$t.csv "$d" "$k" 2>/dev/null
                done
            done >>"$OUT/icache_$t.log"
        fi
    done
fi
echo "==== summary"
cat "$SUM"
