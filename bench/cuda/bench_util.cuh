/*
 * What the standalone CUDA benchmarks (persist_bench.cu, read_bench.cu)
 * share: one error path, the weights' fill, the median of timings. A
 * program defines BENCH_NAME (its name, for the error lines) first.
 */
#ifndef ZT_BENCH_CUDA_BENCH_UTIL_CUH
#define ZT_BENCH_CUDA_BENCH_UTIL_CUH

#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* A CUDA call that must succeed: else its text and error, and exit. */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            fprintf(stderr, BENCH_NAME ": %s: %s\n", #call, cudaGetErrorString(e_));               \
            exit(1);                                                                               \
        }                                                                                          \
    } while (0)

/* n words of deterministic, well-mixed bits (a multiplicative hash of the
 * index): weights that are neither zeros nor a pattern the caches see. */
__global__ void fill_kernel(uint32_t *w, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        uint32_t h = (uint32_t)i * 2654435761u;
        w[i] = h ^ (h >> 15) ^ (uint32_t)(i >> 32);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of t[0 .. n), sorting it. */
static double median(double *t, int n) {
    qsort(t, n, sizeof(double), cmp_double);
    return t[n / 2];
}

#endif
