/*
 * CPU matmul and thread pool. Every weight type is quantized from random
 * Gaussian data with the reference quantizer, multiplied by random
 * activations on every compiled ISA (scalar, AVX2, AVX-512, AMX) and
 * thread count, and compared with a float64 product of the reference
 * dequantized weights and the original f32 activations.
 *
 * Error bounds (relative L2 over the whole output):
 *  - f32/f16/bf16 and the generic (dequantize a row) path: 1e-5, only f32
 *    summation order differs from the float64 reference;
 *  - quantized weights: 2e-2. The activations are rounded to int8 with one
 *    scale per 32 values, an error of at most half a step (amax / 254) per
 *    value; for Gaussian rows that is about 0.5% RMS of the activations,
 *    and it reaches the output with the same relative size because the
 *    weights are independent of it. 2e-2 leaves a factor of 4 of margin.
 *  - the AMX path (CPU_AMX_MIN_ROWS+ rows of quantized weights) rounds weights and
 *    activations to bf16 instead (relative error at most 2^-9 each, about
 *    0.2% on the output): 5e-3.
 * Every other SIMD path must also agree with the scalar kernels to 1e-5 of
 * the output's scale: the integer dot products are exact and the f32
 * scales are applied in the same order, so only f32 summation may differ.
 */
#include "../test.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_impl.h"
#include "quant/quant.h"
#include "rng.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#define POISON_GAP  -7777.0f /* columns between n_out and ld_y must keep it */
#define QUANT_BOUND 2e-2
#define FLOAT_BOUND 1e-5
#define AMX_BOUND   5e-3
#ifndef CPU_AMX_MIN_ROWS
#define CPU_AMX_MIN_ROWS (1 << 30) /* no AMX path compiled */
#endif

static const char *isa_name(int isa) {
    static const char *names[] = {"scalar", "avx2", "avx512", "amx"};
    return names[isa];
}

/* A quantized random matrix and its dequantized reference. */
typedef struct test_w {
    zt_tensor t;
    uint8_t *bytes;
    float *ref; /* [n_out][n_in] dequantized */
} test_w;

static int make_weights(test_w *tw, int type, int n_out, int n_in, uint64_t seed) {
    memset(tw, 0, sizeof *tw);
    size_t row_bytes = quant_row_bytes(type, n_in);
    if (!row_bytes) return -1;
    tw->bytes = malloc(row_bytes * (size_t)n_out);
    tw->ref = malloc(sizeof(float) * (size_t)n_out * n_in);
    float *src = malloc(sizeof(float) * (size_t)n_in);
    test_rng rng = rng_seed(seed);
    for (int o = 0; o < n_out; o++) {
        rng_fill_normal(&rng, src, n_in, 0.05f);
        quant_quantize_row(type, src, tw->bytes + (size_t)o * row_bytes, n_in);
        quant_dequant_row(type, tw->bytes + (size_t)o * row_bytes, tw->ref + (size_t)o * n_in,
                          n_in);
    }
    free(src);
    snprintf(tw->t.name, sizeof tw->t.name, "test.%s", quant_type_info(type)->name);
    tw->t.type = type;
    tw->t.n_dims = 2;
    tw->t.ne[0] = n_in;
    tw->t.ne[1] = n_out;
    tw->t.ne[2] = tw->t.ne[3] = 1;
    tw->t.data = tw->bytes;
    tw->t.nbytes = row_bytes * (size_t)n_out;
    return 0;
}

static void free_weights(test_w *tw) {
    free(tw->bytes);
    free(tw->ref);
}

static void reference(const test_w *tw, const float *x, int n_rows, double *out) {
    int64_t n_in = tw->t.ne[0], n_out = tw->t.ne[1];
    for (int r = 0; r < n_rows; r++)
        for (int64_t o = 0; o < n_out; o++) {
            double s = 0;
            for (int64_t i = 0; i < n_in; i++) s += (double)tw->ref[o * n_in + i] * x[r * n_in + i];
            out[r * n_out + o] = s;
        }
}

/* Runs the matmul into a poisoned y; returns the relative L2 error against
 * ref, or a huge value when an element was not written or a gap column was
 * touched. */
static double run_and_compare(cpu_pool *pool, const cpu_matrix *m, const float *x, int n_rows,
                              const double *ref, int isa, float *y_out) {
    int n_out = (int)m->n_out, ld_y = n_out + 3;
    float *y = malloc(sizeof(float) * (size_t)n_rows * ld_y);
    for (int i = 0; i < n_rows * ld_y; i++) y[i] = (i % ld_y) < n_out ? NAN : POISON_GAP;
    cpu_matmul_isa(pool, m, x, n_rows, y, ld_y, isa);
    double num = 0, den = 0;
    int bad = 0;
    for (int r = 0; r < n_rows; r++) {
        for (int o = 0; o < n_out; o++) {
            float v = y[r * ld_y + o];
            if (!isfinite(v)) bad++;
            double e = v - ref[r * n_out + o];
            num += e * e;
            den += ref[r * n_out + o] * ref[r * n_out + o];
            if (y_out) y_out[r * n_out + o] = v;
        }
        for (int o = n_out; o < ld_y; o++)
            if (y[r * ld_y + o] != POISON_GAP) bad++;
    }
    free(y);
    if (bad) {
        fprintf(stderr, "  %d elements unwritten or overwritten\n", bad);
        return 1e30;
    }
    return sqrt(num / (den > 0 ? den : 1));
}

/* Checks one weight type on every usable ISA, thread count and row count. */
static int check_type(int type, int n_out, int n_in, double bound, uint64_t seed) {
    int failed = 0;
    test_w tw;
    if (make_weights(&tw, type, n_out, n_in, seed)) return 1;
    cpu_matrix m;
    zt_error err = {0};
    if (cpu_matrix_init(&m, &tw.t, &err)) {
        fprintf(stderr, "  cpu_matrix_init: %s\n", err.msg);
        free_weights(&tw);
        return 1;
    }
    cpu_pool *pools[3] = {NULL, cpu_pool_create(1), cpu_pool_create(2)};
    static const int rows_list[] = {1, 3, 17, 64};
    int max_rows = 64;
    float *x = malloc(sizeof(float) * (size_t)max_rows * n_in);
    double *ref = malloc(sizeof(double) * (size_t)max_rows * n_out);
    float *y_scalar = malloc(sizeof(float) * (size_t)max_rows * n_out);
    float *y_isa = malloc(sizeof(float) * (size_t)max_rows * n_out);
    test_rng rng = rng_seed(seed ^ 0x5eed);
    rng_fill_normal(&rng, x, (int64_t)max_rows * n_in, 1.0f);
    int quant_kind = cpu_wformats[cpu_wkind_of(type)].quant;
    for (size_t ri = 0; ri < sizeof rows_list / sizeof *rows_list; ri++) {
        int n_rows = rows_list[ri];
        reference(&tw, x, n_rows, ref);
        double e = run_and_compare(pools[2], &m, x, n_rows, ref, CPU_ISA_SCALAR, y_scalar);
        if (!(e <= bound)) {
            fprintf(stderr, "  %s [%d x %d] rows %d scalar: rel L2 error %.3g > %.3g\n",
                    quant_type_info(type)->name, n_out, n_in, n_rows, e, bound);
            failed = 1;
        }
        double yscale = 0;
        for (int i = 0; i < n_rows * n_out; i++) yscale = fmax(yscale, fabs(y_scalar[i]));
        for (int isa = 0; isa < CPU_ISA_COUNT; isa++) {
            if (!cpu_isa_usable(isa)) continue;
            for (int pi = 0; pi < 3; pi++) {
                if (pi == 1 && !pools[1]) continue;
                e = run_and_compare(pools[pi], &m, x, n_rows, ref, isa, y_isa);
                double maxdiff = 0;
                for (int i = 0; i < n_rows * n_out; i++)
                    maxdiff = fmax(maxdiff, fabs(y_isa[i] - y_scalar[i]));
                /* AMX takes larger batches of quantized weights in bf16: its own
                 * rounding, checked against the reference alone */
                int bf16 = isa == CPU_ISA_AMX && n_rows >= CPU_AMX_MIN_ROWS && quant_kind;
                if (!(e <= (bf16 ? AMX_BOUND : bound)) || (!bf16 && !(maxdiff <= 1e-5 * yscale))) {
                    fprintf(stderr,
                            "  %s [%d x %d] rows %d %s threads %d: rel L2 error %.3g (bound %.3g), "
                            "max diff from scalar %.3g (scale %.3g)\n",
                            quant_type_info(type)->name, n_out, n_in, n_rows, isa_name(isa),
                            cpu_pool_size(pools[pi]), e, bound, maxdiff, yscale);
                    failed = 1;
                }
            }
        }
    }
    free(x);
    free(ref);
    free(y_scalar);
    free(y_isa);
    for (int i = 1; i < 3; i++) cpu_pool_free(pools[i]);
    cpu_matrix_free(&m);
    free_weights(&tw);
    return failed;
}

TEST(test_cpu_matmul_f32_matches_float64_reference) {
    CHECK(!check_type(ZT_F32, 37, 256, FLOAT_BOUND, 1));
    CHECK(!check_type(ZT_F32, 300, 512, FLOAT_BOUND, 2));
}

TEST(test_cpu_matmul_f16_matches_float64_reference) {
    CHECK(!check_type(ZT_F16, 37, 256, FLOAT_BOUND, 3));
    CHECK(!check_type(ZT_F16, 300, 512, FLOAT_BOUND, 4));
}

TEST(test_cpu_matmul_bf16_matches_float64_reference) {
    CHECK(!check_type(ZT_BF16, 37, 256, FLOAT_BOUND, 5));
    CHECK(!check_type(ZT_BF16, 300, 512, FLOAT_BOUND, 6));
}

TEST(test_cpu_matmul_q8_0_within_activation_rounding) {
    CHECK(!check_type(ZT_Q8_0, 37, 256, QUANT_BOUND, 7));
    CHECK(!check_type(ZT_Q8_0, 300, 512, QUANT_BOUND, 8));
}

TEST(test_cpu_matmul_q4_0_within_activation_rounding) {
    CHECK(!check_type(ZT_Q4_0, 37, 256, QUANT_BOUND, 9));
    CHECK(!check_type(ZT_Q4_0, 300, 512, QUANT_BOUND, 10));
}

TEST(test_cpu_matmul_q4_k_within_activation_rounding) {
    CHECK(!check_type(ZT_Q4_K, 37, 256, QUANT_BOUND, 11));
    CHECK(!check_type(ZT_Q4_K, 300, 512, QUANT_BOUND, 12));
}

TEST(test_cpu_matmul_q5_k_within_activation_rounding) {
    CHECK(!check_type(ZT_Q5_K, 37, 256, QUANT_BOUND, 13));
    CHECK(!check_type(ZT_Q5_K, 300, 512, QUANT_BOUND, 14));
}

TEST(test_cpu_matmul_q6_k_within_activation_rounding) {
    CHECK(!check_type(ZT_Q6_K, 37, 256, QUANT_BOUND, 15));
    CHECK(!check_type(ZT_Q6_K, 300, 512, QUANT_BOUND, 16));
}

/* Types without a repacked layout go through dequantize-a-row. */
TEST(test_cpu_matmul_generic_types_match_float64_reference) {
    CHECK(!check_type(ZT_Q4_1, 37, 256, FLOAT_BOUND, 17));
    CHECK(!check_type(ZT_Q5_0, 300, 256, FLOAT_BOUND, 18));
    CHECK(!check_type(ZT_Q3_K, 37, 512, FLOAT_BOUND, 19));
    CHECK(!check_type(ZT_Q2_K, 37, 256, FLOAT_BOUND, 20));
}

/* One panel (fewer panels than threads) makes the threads split rows. */
TEST(test_cpu_matmul_single_panel_splits_rows) {
    CHECK(!check_type(ZT_Q4_0, 5, 256, QUANT_BOUND, 21));
    CHECK(!check_type(ZT_Q6_K, 16, 256, QUANT_BOUND, 22));
}

/* Enough rows of a long input for several activation chunks (and, on the
 * AMX path, several input slices and row chunks), on every usable ISA. */
TEST(test_cpu_matmul_many_rows_span_chunks) {
    int n_out = 37, n_in = 8192, n_rows = 600;
    int types[] = {ZT_Q4_0, ZT_Q4_K};
    float *x = malloc(sizeof(float) * (size_t)n_rows * n_in);
    double *ref = malloc(sizeof(double) * (size_t)n_rows * n_out);
    test_rng rng = rng_seed(99);
    rng_fill_normal(&rng, x, (int64_t)n_rows * n_in, 1.0f);
    cpu_pool *pool = cpu_pool_create(2);
    REQUIRE(pool);
    for (int ti = 0; ti < 2; ti++) {
        test_w tw;
        REQUIRE(!make_weights(&tw, types[ti], n_out, n_in, 23 + ti));
        cpu_matrix m;
        zt_error err = {0};
        REQUIRE(!cpu_matrix_init(&m, &tw.t, &err));
        reference(&tw, x, n_rows, ref);
        for (int isa = CPU_ISA_AVX2; isa < CPU_ISA_COUNT; isa++) {
            if (!cpu_isa_usable(isa)) continue;
            double e = run_and_compare(pool, &m, x, n_rows, ref, isa, NULL);
            if (!(e <= (isa == CPU_ISA_AMX ? AMX_BOUND : QUANT_BOUND))) {
                fprintf(stderr, "  %s %s: rel L2 error %.3g\n", quant_type_info(types[ti])->name,
                        isa_name(isa), e);
                CHECK(0);
            }
        }
        cpu_matrix_free(&m);
        free_weights(&tw);
    }
    cpu_pool_free(pool);
    free(x);
    free(ref);
}

/* AMX: one thread with more panels than a panel block, over several input
 * slices, so accumulators wait between slices for several blocks. */
TEST(test_cpu_matmul_amx_panel_blocks_and_slices) {
    if (!cpu_isa_usable(CPU_ISA_AMX)) return;
    int n_out = 1040, n_in = 4096, n_rows = 200;
    test_w tw;
    REQUIRE(!make_weights(&tw, ZT_Q4_0, n_out, n_in, 31));
    cpu_matrix m;
    zt_error err = {0};
    REQUIRE(!cpu_matrix_init(&m, &tw.t, &err));
    float *x = malloc(sizeof(float) * (size_t)n_rows * n_in);
    double *ref = malloc(sizeof(double) * (size_t)n_rows * n_out);
    test_rng rng = rng_seed(77);
    rng_fill_normal(&rng, x, (int64_t)n_rows * n_in, 1.0f);
    reference(&tw, x, n_rows, ref);
    cpu_pool *pool = cpu_pool_create(1);
    REQUIRE(pool);
    CHECK(run_and_compare(pool, &m, x, n_rows, ref, CPU_ISA_AMX, NULL) <= AMX_BOUND);
    cpu_pool_free(pool);
    free(x);
    free(ref);
    cpu_matrix_free(&m);
    free_weights(&tw);
}

TEST(test_cpu_matrix_init_rejects_bad_shapes) {
    uint8_t data[18 * 4] = {0};
    zt_tensor t = {.name = "blk.0.bad.weight",
                   .type = ZT_Q4_0,
                   .n_dims = 2,
                   .ne = {48, 2, 1, 1},
                   .data = data,
                   .nbytes = sizeof data};
    cpu_matrix m;
    zt_error err = {0};
    CHECK(cpu_matrix_init(&m, &t, &err) == ZT_EINVAL); /* 48 is not a multiple of 32 */
    CHECK(strstr(err.msg, "blk.0.bad.weight") != NULL);
    t.ne[0] = 64;
    t.ne[1] = 3; /* needs 3 * 36 bytes, has 72 */
    CHECK(cpu_matrix_init(&m, &t, &err) == ZT_EFORMAT);
    CHECK(strstr(err.msg, "bytes") != NULL);
    t.ne[1] = 2;
    t.type = 39; /* no such type */
    CHECK(cpu_matrix_init(&m, &t, &err) == ZT_EUNSUP);
    t.type = ZT_Q4_0;
    t.n_dims = 3;
    t.ne[2] = 2;
    CHECK(cpu_matrix_init(&m, &t, &err) == ZT_EINVAL);
    t.n_dims = 2;
    t.ne[2] = 1;
    CHECK(cpu_matrix_init(&m, &t, &err) == ZT_OK);
    cpu_matrix_free(&m);
}

/* ---- thread pool ----------------------------------------------------------- */

typedef struct pool_probe {
    atomic_int calls[8];
    atomic_int bad_nth;
    int expect_nth;
} pool_probe;

static void probe_fn(void *ctx, int ith, int nth) {
    pool_probe *p = ctx;
    if (nth != p->expect_nth || ith < 0 || ith >= nth)
        atomic_fetch_add(&p->bad_nth, 1);
    else
        atomic_fetch_add(&p->calls[ith], 1);
}

/* Every share runs exactly once per run, over many back-to-back runs and
 * after pauses long enough for the workers to fall asleep. */
static int check_pool(int n_threads, int runs) {
    cpu_pool *pool = cpu_pool_create(n_threads);
    if (!pool) return 1;
    int failed = cpu_pool_size(pool) != n_threads;
    pool_probe probe;
    memset(&probe, 0, sizeof probe);
    probe.expect_nth = n_threads;
    for (int run = 0; run < runs; run++) {
        for (int i = 0; i < 8; i++) atomic_store(&probe.calls[i], 0);
        cpu_pool_run(pool, probe_fn, &probe);
        for (int i = 0; i < n_threads; i++)
            if (atomic_load(&probe.calls[i]) != 1) failed = 1;
        if (run % 500 == 499) {
            struct timespec ts = {0, 2000000}; /* 2 ms: past the spin budget */
            nanosleep(&ts, NULL);
        }
    }
    if (atomic_load(&probe.bad_nth)) failed = 1;
    cpu_pool_free(pool);
    return failed;
}

TEST(test_cpu_pool_runs_every_share_once) {
    CHECK(!check_pool(1, 1000));
    CHECK(!check_pool(2, 3000));
    CHECK(!check_pool(3, 2000)); /* more threads than this machine's cores */
}

TEST(test_cpu_pool_default_size_is_online_cores) {
    cpu_pool *pool = cpu_pool_create(0);
    REQUIRE(pool);
    CHECK(cpu_pool_size(pool) == (int)sysconf(_SC_NPROCESSORS_ONLN));
    cpu_pool_free(pool);
    CHECK(cpu_pool_size(NULL) == 1);
}

/* A pool is reusable for different jobs, and a job sees the ctx it was
 * given (the workers read fn/ctx after the run is published). */
typedef struct sum_job {
    const int *v;
    int n;
    long long part[8];
} sum_job;

static void sum_fn(void *ctx, int ith, int nth) {
    sum_job *j = ctx;
    long long s = 0;
    for (int i = j->n * ith / nth; i < j->n * (ith + 1) / nth; i++) s += j->v[i];
    j->part[ith] = s;
}

TEST(test_cpu_pool_jobs_see_their_own_context) {
    cpu_pool *pool = cpu_pool_create(2);
    REQUIRE(pool);
    int v[1000];
    for (int i = 0; i < 1000; i++) v[i] = i;
    for (int n = 1; n <= 1000; n += 37) {
        sum_job j = {.v = v, .n = n};
        cpu_pool_run(pool, sum_fn, &j);
        CHECK_EQ_INT(j.part[0] + j.part[1], (long long)n * (n - 1) / 2);
    }
    cpu_pool_free(pool);
}
