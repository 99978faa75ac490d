/*
 * The CPU backend's thread pool (kernels.h) for the wasm32 build, where
 * wasi-libc has no threads: one "pool" of one thread, the caller, that
 * runs each job as share 0 of 1. Replaces src/backend/cpu/pool.c in that
 * build only (mk/wasm.mk), so the CPU reference runs in the browser too.
 */
#include <stdlib.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_impl.h"

struct cpu_pool {
    void *scratch; /* 64-aligned, scratch_bytes long; see cpu_pool_scratch */
    size_t scratch_bytes;
};

cpu_pool *cpu_pool_create(int n_threads) {
    (void)n_threads;
    return calloc(1, sizeof(cpu_pool));
}

int cpu_pool_size(const cpu_pool *pool) { return 1; }

void cpu_pool_run(cpu_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx) {
    fn(ctx, 0, 1);
}

void cpu_pool_free(cpu_pool *pool) {
    if (!pool) return;
    free(pool->scratch);
    free(pool);
}

void *cpu_pool_scratch(cpu_pool *pool, size_t bytes) {
    if (!pool) return NULL;
    if (bytes <= pool->scratch_bytes) return pool->scratch;
    size_t want = (bytes + (bytes >> 2) + 4095) & ~(size_t)4095; /* grow by 25% steps */
    free(pool->scratch);
    pool->scratch = aligned_alloc(64, want);
    pool->scratch_bytes = pool->scratch ? want : 0;
    return pool->scratch;
}
