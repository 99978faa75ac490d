#!/usr/bin/env bash
# The CUDA backend's weight layouts and arithmetic, on the CPU
# (tests/cuda/test_cuda_units.c: every repacked block type against the
# reference dequantizer, the zero padding of short float rows, the int8
# activation blocks and dot products). Plain C against the suite's own
# libzt.a (under `make asan`, with the sanitizers): no GPU, no nvcc. Relays
# the runner's "ok" / "FAIL" lines.
source "$(dirname "$0")/lib.sh"
cd "$(dirname "$0")/../.."
lib="$(dirname "$ZT")/libzt.a"
if [ ! -f "$lib" ]; then
    fail cuda_units "no $lib to build against"
    exit 0
fi
san=""
if nm "$lib" 2>/dev/null | grep -q __asan_; then
    san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
fi
# shellcheck disable=SC2086
if ! ${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Isrc $san -o "$T/zt-cuda-units" \
    tests/unit/main.c tests/cuda/test_cuda_units.c src/backend/cuda/repack.c "$lib" \
    -lpthread -lm 2>"$T/cuda-units.build.log"; then
    fail cuda_units "build: $(head -n 1 "$T/cuda-units.build.log")"
    exit 0
fi
"$T/zt-cuda-units" 2>&1 | grep -E "^(ok|FAIL) "
