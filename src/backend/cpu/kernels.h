/*
 * CPU kernels: a thread pool and the quantized matmul that dominates the
 * CPU forward pass. Weights are prepared once (optionally repacked) into a
 * cpu_matrix; activations are f32 rows.
 */
#ifndef ZT_BACKEND_CPU_KERNELS_H
#define ZT_BACKEND_CPU_KERNELS_H

#include <stdint.h>

#include "model/model.h"

/* ---- thread pool ---------------------------------------------------- */

typedef struct cpu_pool cpu_pool;

/* n_threads <= 0 means the number of online cores. NULL on failure. */
cpu_pool *cpu_pool_create(int n_threads);
int cpu_pool_size(const cpu_pool *pool);
/* Runs fn(ctx, ith, nth) on every thread (ith = 0 .. nth-1; the caller's
 * thread is one of them) and returns when all have finished. */
void cpu_pool_run(cpu_pool *pool, void (*fn)(void *ctx, int ith, int nth), void *ctx);
void cpu_pool_free(cpu_pool *pool);

/* ---- matmul ---------------------------------------------------------- */

typedef struct cpu_matrix {
    int type;          /* enum zt_type of `data` (may differ from the file's after repack) */
    int64_t n_in;      /* row length (tensor ne[0]) */
    int64_t n_out;     /* rows (tensor ne[1]) */
    const void *data;  /* weights as the kernels read them */
    void *owned;       /* repacked copy, freed by cpu_matrix_free */
} cpu_matrix;

/* Prepares a 2-D weight tensor for cpu_matmul (any type quant_type_info
 * can dequantize). */
int cpu_matrix_init(cpu_matrix *mat, const zt_tensor *t, zt_error *err);
void cpu_matrix_free(cpu_matrix *mat);

/* y[r * ld_y + o] = sum_i W[o][i] * x[r * n_in + i]
 * for r < n_rows, o < n_out. Threads split the work over `pool`. */
void cpu_matmul(cpu_pool *pool, const cpu_matrix *w, const float *x, int n_rows, float *y,
                int ld_y);

#endif
