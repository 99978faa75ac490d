#!/usr/bin/env bash
# CI has nvcc but no GPU: the CUDA backend must compile (make CUDA=1), and a
# CUDA build without a device must say so and not crash. The GPU tests
# themselves run on the GPU machine (make test-cuda; bench/results/).
#
# Here every CUDA source goes through nvcc's front end and NVVM to PTX for
# compute_90a (a fatbinary the driver would JIT-assemble), not through
# ptxas to sm_90a SASS: the assembler doubled this test (~9 against ~4.5
# minutes on CI's two cores, most of the suite) for a binary nothing here
# runs. ptxas runs in the GPU machine's builds, whose binaries are tested.
source "$(dirname "$0")/lib.sh"
if ! command -v nvcc >/dev/null && [ ! -x /usr/local/cuda/bin/nvcc ]; then
    echo "skip cuda_backend_compiles: no nvcc on this machine (not counted)"
    exit 0
fi
B="$T/cuda-build"
if make -s -j"$(nproc)" CUDA=1 CUDA_GENCODE="-gencode=arch=compute_90a,code=compute_90a" \
    BUILD="$B" "$B/zt" >"$T/cuda-build.log" 2>&1; then
    ok cuda_backend_compiles
else
    fail cuda_backend_compiles "$(grep -m3 -E 'error|Error' "$T/cuda-build.log")"
    exit 0
fi
if command -v nvidia-smi >/dev/null && nvidia-smi >/dev/null 2>&1; then
    echo "skip cuda_without_device_is_a_clean_error: a GPU is present (not counted)"
else
    expect_error cuda_without_device_is_a_clean_error 'backend cuda is not usable here' \
        "$B/zt" run models/zt-demo-15m-f16.gguf "Hi" -n 2 --backend cuda
fi
