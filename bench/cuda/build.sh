#!/usr/bin/env bash
# Builds the CUDA test and benchmark programs into build-cuda/bin without
# the top-level make (so a half-written file elsewhere in the tree cannot
# stop a GPU run), for carrying to the GPU machine (tools/device_cuda.sh):
#
#   bench/cuda/build.sh [-j N]
#
# CUDA_BUILD=dir puts the build elsewhere; NVCC_EXTRA adds nvcc flags (a
# variant's -D options; use a separate CUDA_BUILD for each set of flags).
#
# Host code is built for x86-64-v3 (any recent server CPU; the GPU host is
# not this machine), device code for sm_90a; the CUDA runtime and libstdc++
# are linked statically. Objects are kept in build-cuda/ and rebuilt when
# their source (or a header of the backend) is newer.
set -euo pipefail
cd "$(dirname "$0")/../.."
JOBS=2
[ "${1:-}" = "-j" ] && JOBS=$2
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
OUT=${CUDA_BUILD:-build-cuda} # where objects and binaries go
CFLAGS="-std=c11 -D_GNU_SOURCE -DZT_HAVE_CUDA -O2 -march=x86-64-v3 -g -Wall -Wextra -Werror \
-Wno-unused-parameter -fno-strict-aliasing -Iinclude -Isrc"
NVCCFLAGS="-std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Iinclude -Isrc \
-Xcompiler -Wall,-Wextra,-Wno-unused-parameter,-Werror ${NVCC_EXTRA:-}"
mkdir -p $OUT/obj $OUT/bin

# library C sources: everything but the CLI, the server and other backends
LIB_C=$(find src -name '*.c' | grep -v -e '^src/cli/' -e '^src/server/' -e '^src/wasm/' \
    -e '^src/backend/vulkan/' -e '^src/backend/webgpu/' | sort)
CUDA_HDRS=$(ls src/backend/cuda/*.h src/backend/cuda/*.cuh)
ALL_H=$(find include src -name '*.h' | sort)

newer() { # newer OBJ SRC...: true when OBJ is missing or older than a SRC
    local o=$1; shift
    [ ! -e "$o" ] && return 0
    for s in "$@"; do [ "$s" -nt "$o" ] && return 0; done
    return 1
}

objs=()
jobs_run=0
run() { "$@" & jobs_run=$((jobs_run + 1)); if [ $jobs_run -ge $JOBS ]; then wait -n; jobs_run=$((jobs_run - 1)); fi; }

for f in src/backend/cuda/*.cu; do
    o=$OUT/obj/$(basename "$f" .cu).cu.o
    objs+=("$o")
    if newer "$o" "$f" $CUDA_HDRS $ALL_H; then
        echo "nvcc $f"
        run "$CUDA_HOME/bin/nvcc" $NVCCFLAGS -c "$f" -o "$o"
    fi
done
for f in $LIB_C; do
    o=$OUT/obj/$(echo "$f" | tr / _ | sed 's/\.c$/.o/')
    objs+=("$o")
    if newer "$o" "$f" $ALL_H; then
        echo "cc $f"
        run gcc $CFLAGS -c "$f" -o "$o"
    fi
done
wait
LIBS="-L$CUDA_HOME/lib64 -lcudart_static -ldl -lrt -lpthread -lm -Wl,-Bstatic -lstdc++ -Wl,-Bdynamic"

gcc $CFLAGS -o $OUT/bin/zt-cuda-tests tests/unit/main.c tests/cuda/*.c "${objs[@]}" $LIBS
gcc $CFLAGS -I$CUDA_HOME/include -o $OUT/bin/bench_cuda bench/cuda/bench_cuda.c "${objs[@]}" $LIBS
# the synthetic step (phase kernels against a persistent kernel), standalone
if newer $OUT/bin/persist_bench bench/cuda/persist_bench.cu bench/cuda/bench_util.cuh; then
    "$CUDA_HOME/bin/nvcc" $NVCCFLAGS -o $OUT/bin/persist_bench bench/cuda/persist_bench.cu
fi
# how the bytes of a row reach a warp (registers, cp.async, bulk copies), standalone
if newer $OUT/bin/read_bench bench/cuda/read_bench.cu bench/cuda/bench_util.cuh; then
    "$CUDA_HOME/bin/nvcc" $NVCCFLAGS -o $OUT/bin/read_bench bench/cuda/read_bench.cu
fi
# the carried form: stripped, compressed (the tree a GPU run takes is capped
# at 64 MiB, ~49 of them tracked files). xz -9's 64 MB window sees that the
# binaries share their kernels: 7.9 MB for both, against 15.5 at the default.
# BASE_BENCH=path adds a baseline's stripped bench_cuda as base_bench_cuda,
# which tools/device_cuda.sh benches first, in the same call. LINEINFO=dir
# packs that build's decode objects (built with NVCC_EXTRA=-lineinfo from
# the same tree) for tools/device_cuda.sh's icache stage: which source
# lines the profiled kernels' code comes from (tools/ncu_lines.py).
mkdir -p $OUT/pack $OUT/strip
strip -o $OUT/strip/zt-cuda-tests $OUT/bin/zt-cuda-tests
strip -o $OUT/strip/bench_cuda $OUT/bin/bench_cuda
strip -o $OUT/strip/persist_bench $OUT/bin/persist_bench
strip -o $OUT/strip/read_bench $OUT/bin/read_bench
files=(zt-cuda-tests bench_cuda persist_bench read_bench)
rm -f $OUT/strip/base_bench_cuda
if [ -n "${BASE_BENCH:-}" ]; then
    cp "$BASE_BENCH" $OUT/strip/base_bench_cuda && files+=(base_bench_cuda)
fi
tar -C $OUT/strip -cf - "${files[@]}" | xz -9 -T1 >$OUT/pack/bins.tar.xz
rm -f $OUT/pack/lineinfo.tar.xz
if [ -n "${LINEINFO:-}" ]; then
    tar -C "$LINEINFO/obj" -cf - decode.cu.o decode_r1.cu.o | xz -9 -T1 >$OUT/pack/lineinfo.tar.xz
fi
ls -la $OUT/bin $OUT/pack
