#!/usr/bin/env bash
# zt serve throughput on the GPU machine (one `run` call): aggregate tok/s
# and time to first token at 1, 8 and 32 concurrent streams with the CUDA
# backend, on a synthetic Phi-3-mini Q4_0 (the PEERS.md shape, written here
# by `zt synth`: random weights, the repo's Phi-3 tokenizer) and on the
# shipped demo model. The machine has python3 but no node, so the client is
# bench/server/throughput.py (the twin of throughput.mjs).
#
#   bash tools/device_serve.sh
#
# Expects a CUDA build of zt at build-gpu-serve/zt, carried with the call
# (carry ["build-gpu-serve/zt"]), made here with
#   make -j2 BUILD=build-gpu-serve CUDA=1 ARCHFLAGS=-march=x86-64-v3 build-gpu-serve/zt
#   strip build-gpu-serve/zt
# (x86-64-v3: the GPU host's CPU is not this machine's; strip: the tree a
# call carries is capped at 64 MiB). When it is missing, builds it there
# with make (needs nvcc). Environment knobs:
#   ZT_BIN=PATH           the zt binary (build-gpu-serve/zt)
#   SERVE_SECONDS=20      seconds per level
#   SERVE_LEVELS=1,8,32   stream counts
#   SERVE_MODELS="phi3 demo"  which runs, in order
#   SERVE_BACKEND=cuda    zt serve --backend (cpu to try the script elsewhere)
#   SERVE_ARGS=           more throughput.py options (e.g. --max-tokens 8)
#   PHI3_MODEL=/tmp/phi3-q4_0.gguf  where the synthetic model goes (kept
#                         between calls on a warm machine: synth once)
#   DEVICE_SECONDS=400    the whole script's deadline
#   ZT_COMMIT=SHA         recorded when the copied tree has no .git
# Writes under $OUT (at most 8 files come back):
#   env.txt        commit, binary, CPU, python, nvidia-smi
#   synth.log      zt synth's output and time
#   phi3.log       throughput.py on Phi-3-mini Q4_0 (--backend cuda)
#   demo.log       throughput.py on models/zt-demo-15m-f16.gguf (--backend cuda)
#   server.log     both servers' stderr
#   gpu_samples.csv  nvidia-smi once a second during the runs
#   summary.txt    the lines worth reading, also printed last
#   build.log      only when the binary was built here
set -u
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-/tmp/zt-serve-out}
mkdir -p "$OUT"
ZT_BIN=${ZT_BIN:-build-gpu-serve/zt}
SERVE_SECONDS=${SERVE_SECONDS:-20}
SERVE_LEVELS=${SERVE_LEVELS:-1,8,32}
SERVE_MODELS=${SERVE_MODELS:-phi3 demo}
SERVE_BACKEND=${SERVE_BACKEND:-cuda}
SERVE_ARGS=${SERVE_ARGS:-}
PHI3=${PHI3_MODEL:-/tmp/phi3-q4_0.gguf}
DEMO=models/zt-demo-15m-f16.gguf
SUM=$OUT/summary.txt
DEADLINE=$((SECONDS + ${DEVICE_SECONDS:-400}))
export PYTHONUNBUFFERED=1
: >"$SUM"
: >"$OUT/server.log"
say() { echo "$@" | tee -a "$SUM"; }
# left CAP: seconds a step may take (at most CAP, at most what is left)
left() { local l=$((DEADLINE - SECONDS)); [ "$l" -gt "$1" ] && l=$1; echo "$l"; }

{
    echo "date: $(date -u +%FT%TZ)"
    if git rev-parse HEAD >/dev/null 2>&1; then
        echo "commit: $(git rev-parse HEAD)"
        echo "tree changes vs commit: $(git status --short | wc -l) paths"
    else # the copied tree may come without .git: the caller names the commit
        echo "commit: ${ZT_COMMIT:-unknown} (no .git here; from ZT_COMMIT)"
        echo "tree changes vs commit: unknown"
    fi
    echo "uname: $(uname -a)"
    echo "cpu: $(nproc) x $(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2-)"
    echo "cpu flags (avx512f/amx_tile): $(grep -m1 -o -w -e avx512f -e amx_tile /proc/cpuinfo | sort -u | tr '\n' ' ')"
    echo "memory: $(grep MemTotal /proc/meminfo)"
    echo "python: $(python3 --version 2>&1) at $(command -v python3)"
    echo "binary: $(ls -la "$ZT_BIN" 2>&1)"
    echo "binary sha256: $(sha256sum "$ZT_BIN" 2>/dev/null | cut -c1-16)"
    echo "== nvidia-smi"
    nvidia-smi 2>&1
    echo "== nvidia-smi --query-gpu"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit \
        --format=csv 2>&1
} >"$OUT/env.txt"
say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
say "$(grep -m1 '^commit:' "$OUT/env.txt"), $(grep -m1 '^tree changes' "$OUT/env.txt")"
say "$(grep -m1 '^cpu:' "$OUT/env.txt")"

if [ ! -x "$ZT_BIN" ]; then
    say "no carried $ZT_BIN: building it here"
    export PATH=$PATH:/usr/local/cuda/bin
    timeout "$(left 300)" make -j"$(nproc)" BUILD=build-gpu-serve CUDA=1 build-gpu-serve/zt \
        >"$OUT/build.log" 2>&1 || { say "BUILD FAILED"; tail -30 "$OUT/build.log"; exit 1; }
    ZT_BIN=build-gpu-serve/zt
fi
"$ZT_BIN" >/dev/null 2>&1
rc=$?
if [ $rc -ge 128 ]; then
    say "$ZT_BIN dies with signal $((rc - 128)) before doing anything" \
        "(4 = SIGILL: built for another CPU; build with ARCHFLAGS=-march=x86-64-v3)"
    exit 1
fi

# one sample a second of what the GPU does, for the whole of the runs
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used,power.draw,clocks.sm \
    --format=csv -l 1 >"$OUT/gpu_samples.csv" 2>&1 &
SMI_PID=$!
trap 'kill $SMI_PID 2>/dev/null' EXIT

n_levels=$(echo "$SERVE_LEVELS" | tr ',' '\n' | grep -c .)
# a run needs its levels (each: the seconds, a warm-up request, the requests
# in flight finishing) plus the model's load
need=$((n_levels * (SERVE_SECONDS + 8) + 30))

for which in $SERVE_MODELS; do
    case $which in
    phi3)
        model=$PHI3
        if [ ! -s "$PHI3" ]; then
            t0=$SECONDS
            timeout "$(left 150)" "$ZT_BIN" synth --preset phi3-mini --type q4_0 -o "$PHI3" \
                --threads "$(nproc)" >"$OUT/synth.log" 2>&1
            rc=$?
            echo "exit $rc after $((SECONDS - t0)) s" >>"$OUT/synth.log"
            say "synth phi3-mini q4_0: exit $rc in $((SECONDS - t0)) s ($(nproc) threads)," \
                "$(stat -c %s "$PHI3" 2>/dev/null || echo 0) bytes"
            [ $rc -ne 0 ] && { rm -f "$PHI3"; tail -3 "$OUT/synth.log" | tee -a "$SUM"; continue; }
            "$ZT_BIN" tokenize "$PHI3" "And the LORD spake unto Moses" >>"$OUT/synth.log" 2>&1
            say "tokenizer check: $(tail -1 "$OUT/synth.log")"
        fi
        ;;
    demo) model=$DEMO ;;
    *) say "unknown run '$which' (phi3, demo)"; continue ;;
    esac
    if [ "$(left 100000)" -lt "$need" ]; then
        say "$which: skipped (deadline: $(left 100000) s left, a run needs about $need s)"
        continue
    fi
    log=$OUT/$which.log
    # shellcheck disable=SC2086  # SERVE_ARGS is a list of options
    timeout --kill-after=15 "$(left $((need + 60)))" python3 bench/server/throughput.py \
        --zt "$ZT_BIN" --model "$model" --backend "$SERVE_BACKEND" --seconds "$SERVE_SECONDS" \
        --levels "$SERVE_LEVELS" --server-log "$OUT/server.log" $SERVE_ARGS >"$log" 2>&1
    rc=$?
    say "== $which ($model): exit $rc"
    grep -E '^server:|^error|^warning|^\||^client CPU' "$log" | tee -a "$SUM"
done

kill $SMI_PID 2>/dev/null
say "GPU during the runs (nvidia-smi samples): max memory.used" \
    "$(awk -F', ' 'NR > 1 && $3 + 0 > m { m = $3 + 0 } END { print m " MiB" }' "$OUT/gpu_samples.csv")," \
    "max utilization $(awk -F', ' 'NR > 1 && $2 + 0 > m { m = $2 + 0 } END { print m " %" }' "$OUT/gpu_samples.csv")"
say "script time: $SECONDS s"
echo "==== summary"
cat "$SUM"
