/*
 * CPU matmul microbenchmark on the Phi-3-mini shapes: qkv [9216 x 3072],
 * o [3072 x 3072], gate_up [16384 x 3072], down [3072 x 8192], lm_head
 * [32064 x 3072]; 32 layers.
 *
 * It measures, on the cpu_pool the backend uses:
 *   1. streaming read bandwidth (a plain vector read loop over 1 GiB of
 *      huge pages, without and with software prefetch), the ceiling for
 *      decode;
 *   2. decode: one activation row through a rotating set of L layers whose
 *      weights (hundreds of MB) do not fit in any cache; the fastest of 8
 *      passes per matrix role; GB/s of weights streamed and the tok/s that
 *      32 layers + lm_head would give;
 *   3. prefill: 512 activation rows per matmul; GFLOP/s (2 M N K) and the
 *      tok/s of 32 layers (lm_head excluded: prefill needs one row of it),
 *      by the wall clock and by process CPU time / threads (the latter
 *      estimates an idle machine when other processes share the cores).
 * Weights are random bytes with sane f16 scales in the real block layouts
 * (bandwidth and compute do not depend on the values). Attention and the
 * other small ops are not included: these are matmul-only projections.
 *
 * Build (from the repo root):
 *   gcc -std=c11 -D_GNU_SOURCE -O2 -march=native -Iinclude -Isrc
 *       bench/cpu_matmul_bench.c src/backend/cpu/pool.c src/backend/cpu/matmul*.c
 *       src/quant/quant*.c src/util/error.c -lpthread -lm -o build/cpu_matmul_bench
 *   (matmul*.c and quant*.c as shell globs)
 * Run: build/cpu_matmul_bench [--threads N] [--isa scalar|avx2|avx512|amx]
 *      [--layers L] [--only decode|prefill|bandwidth] [--mix NAME]
 * Mixes: q4_0 and q4_K_M by default (q4_K_M as llama.cpp writes phi3:
 * qkv q5_K, down q6_K in half the layers, the rest q4_K, lm_head q6_K);
 * also q4_K, q6_K, q8_0, f16.
 */
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_impl.h"
#include "quant/quant.h"
#include "util/f16.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds used by the whole process (all threads). */
static double cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng_state = 0x1234567;
static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

/* ---- 1. streaming read bandwidth ------------------------------------------- */

typedef struct bw_job {
    const uint8_t *buf;
    size_t bytes;
    int reps;
    int prefetch; /* software prefetch this many bytes ahead (0: none) */
    atomic_ullong sink;
} bw_job;

static void bw_worker(void *ctx, int ith, int nth) {
    bw_job *j = ctx;
    size_t lo = j->bytes * ith / nth & ~(size_t)255, hi = j->bytes * (ith + 1) / nth & ~(size_t)255;
    uint64_t s = 0;
#if defined(__AVX512F__)
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int r = 0; r < j->reps; r++)
        for (size_t i = lo; i < hi; i += 256) {
            if (j->prefetch)
                for (int k = 0; k < 256; k += 64)
                    _mm_prefetch((const char *)j->buf + i + j->prefetch + k, _MM_HINT_T0);
            a0 = _mm512_add_epi64(a0, _mm512_load_si512((const void *)(j->buf + i)));
            a1 = _mm512_add_epi64(a1, _mm512_load_si512((const void *)(j->buf + i + 64)));
            a2 = _mm512_add_epi64(a2, _mm512_load_si512((const void *)(j->buf + i + 128)));
            a3 = _mm512_add_epi64(a3, _mm512_load_si512((const void *)(j->buf + i + 192)));
        }
    s = (uint64_t)_mm512_reduce_add_epi64(
        _mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)));
#else
    for (int r = 0; r < j->reps; r++)
        for (size_t i = lo; i < hi; i += 64) {
            uint64_t v[8];
            memcpy(v, j->buf + i, 64);
            for (int k = 0; k < 8; k++) s += v[k];
        }
#endif
    atomic_fetch_add(&j->sink, s);
}

static double measure_bandwidth(cpu_pool *pool, size_t bytes, int prefetch) {
    uint8_t *buf = aligned_alloc((size_t)2 << 20, bytes);
    if (!buf) return 0;
#ifdef MADV_HUGEPAGE
    madvise(buf, bytes, MADV_HUGEPAGE); /* as cpu_matrix_init does for weights */
#endif
    memset(buf, 1, bytes);
    bw_job j = {.buf = buf, .bytes = bytes, .reps = 1, .prefetch = prefetch};
    cpu_pool_run(pool, bw_worker, &j); /* warm-up */
    double best = 0;
    for (int t = 0; t < 5; t++) {
        j.reps = 2;
        double t0 = now_s();
        cpu_pool_run(pool, bw_worker, &j);
        double gbs = (double)bytes * j.reps / (now_s() - t0) / 1e9;
        if (gbs > best) best = gbs;
    }
    free(buf);
    return best;
}

/* ---- random weights ----------------------------------------------------------- */

/* Random bytes, then every f16 scale field set to a sane value. */
static int make_matrix(cpu_matrix *m, int type, int64_t n_out, int64_t n_in) {
    const zt_type_info *info = quant_type_info(type);
    size_t bytes = quant_row_bytes(type, n_in) * (size_t)n_out;
    uint8_t *data = malloc(bytes);
    if (!data) return -1;
    for (size_t i = 0; i + 8 <= bytes; i += 8) {
        uint64_t v = rng_next();
        memcpy(data + i, &v, 8);
    }
    size_t nblk = bytes / (size_t)info->block_bytes;
    for (size_t b = 0; b < nblk; b++) {
        uint8_t *blk = data + b * (size_t)info->block_bytes;
        uint16_t d = zt_f32_to_f16(0.001f + 0.001f * (float)(rng_next() % 100) / 100.0f);
        switch (type) {
        case ZT_Q4_0:
        case ZT_Q8_0:
            memcpy(blk, &d, 2);
            break;
        case ZT_Q4_K:
        case ZT_Q5_K:
            memcpy(blk, &d, 2);
            memcpy(blk + 2, &d, 2);
            break;
        case ZT_Q6_K:
            memcpy(blk + 208, &d, 2);
            break;
        case ZT_F16: {
            uint16_t h = zt_f32_to_f16(((float)(int)(rng_next() % 2001) - 1000.0f) * 1e-5f);
            memcpy(blk, &h, 2);
            break;
        }
        }
    }
    zt_tensor t = {
        .type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}, .data = data, .nbytes = bytes};
    snprintf(t.name, sizeof t.name, "bench.%s", info->name);
    zt_error err = {0};
    int rc = cpu_matrix_init(m, &t, &err);
    if (rc) fprintf(stderr, "cpu_matrix_init: %s\n", err.msg);
    if (m->owned)
        free(data); /* repacked: the kernels no longer read it */
    else
        m->owned = data; /* generic types read the file layout */
    return rc;
}

static double matrix_bytes(const cpu_matrix *m) {
    return (double)quant_row_bytes(m->type, m->n_in) * (double)m->n_out;
}

/* ---- the model shapes ------------------------------------------------------------ */

enum { QKV, O, GATE_UP, DOWN, N_ROLES };
static const int64_t role_out[N_ROLES] = {9216, 3072, 16384, 3072};
static const int64_t role_in[N_ROLES] = {3072, 3072, 3072, 8192};
static const char *role_name[N_ROLES] = {"qkv", "o", "gate_up", "down"};
#define N_LAYERS 32
#define LM_OUT   32064
#define DIM      3072

typedef struct mix {
    const char *name;
    int type[N_ROLES];
    int down_alt; /* ffn_down type in "use more bits" layers (Q4_K_M) */
    int lm_type;
} mix;

/* Q4_K_M as llama.cpp writes it for phi3: attn_qkv q5_K, ffn_down q6_K in
 * 16 of 32 layers (first/last 1/8 and every third), the rest q4_K,
 * output q6_K. Q4_0: everything q4_0, output q6_K. */
static const mix mixes[] = {
    {"q4_0", {ZT_Q4_0, ZT_Q4_0, ZT_Q4_0, ZT_Q4_0}, ZT_Q4_0, ZT_Q6_K},
    {"q4_K_M", {ZT_Q5_K, ZT_Q4_K, ZT_Q4_K, ZT_Q4_K}, ZT_Q6_K, ZT_Q6_K},
    {"q4_K", {ZT_Q4_K, ZT_Q4_K, ZT_Q4_K, ZT_Q4_K}, ZT_Q4_K, ZT_Q6_K},
    {"q6_K", {ZT_Q6_K, ZT_Q6_K, ZT_Q6_K, ZT_Q6_K}, ZT_Q6_K, ZT_Q6_K},
    {"q8_0", {ZT_Q8_0, ZT_Q8_0, ZT_Q8_0, ZT_Q8_0}, ZT_Q8_0, ZT_Q6_K},
    {"f16", {ZT_F16, ZT_F16, ZT_F16, ZT_F16}, ZT_F16, ZT_F16},
};

static int use_more_bits(int layer) {
    return layer < N_LAYERS / 8 || layer >= 7 * N_LAYERS / 8 || (layer - N_LAYERS / 8) % 3 == 2;
}

static int isa_from_name(const char *s) {
    static const char *names[] = {"scalar", "avx2", "avx512", "amx"};
    for (int i = 0; i < CPU_ISA_COUNT; i++)
        if (!strcmp(s, names[i])) return i;
    return -1;
}

int main(int argc, char **argv) {
    int n_threads = 0, isa = cpu_best_isa(), n_layers = 4;
    const char *only = NULL, *only_mix = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc)
            isa = isa_from_name(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc)
            n_layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--mix") && i + 1 < argc)
            only_mix = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--threads N] [--isa scalar|avx2|avx512|amx] [--layers L] "
                    "[--only bandwidth|decode|prefill] [--mix NAME]\n",
                    argv[0]);
            return 2;
        }
    }
    if (isa < 0 || !cpu_isa_usable(isa)) {
        fprintf(stderr, "that ISA is not usable here\n");
        return 2;
    }
    cpu_pool *pool = cpu_pool_create(n_threads);
    if (!pool) return 1;
    static const char *isa_names[] = {"scalar", "avx2", "avx512", "amx"};
    printf("threads %d, best isa %s, using %s\n", cpu_pool_size(pool), isa_names[cpu_best_isa()],
           isa_names[isa]);

    if (!only || !strcmp(only, "bandwidth")) {
        cpu_pool *one = cpu_pool_create(1);
        for (int pf = 0; pf <= 4096; pf += 4096) {
            double bw1 = measure_bandwidth(one, (size_t)1 << 30, pf);
            double bwn = measure_bandwidth(pool, (size_t)1 << 30, pf);
            printf("stream read 1 GiB%s: 1 thread %.1f GB/s, %d threads %.1f GB/s\n",
                   pf ? " (prefetch 4 KB ahead)" : "", bw1, cpu_pool_size(pool), bwn);
        }
        cpu_pool_free(one);
    }

    float *x = malloc(sizeof(float) * 512 * 8192);
    float *y = malloc(sizeof(float) * 512 * 16384 + sizeof(float) * LM_OUT);
    for (int i = 0; i < 512 * 8192; i++) x[i] = (float)((int)(rng_next() % 2001) - 1000) * 1e-3f;

    for (size_t mi = 0; mi < sizeof mixes / sizeof *mixes; mi++) {
        const mix *mx = &mixes[mi];
        if (only && !strcmp(only, "bandwidth")) break;
        if (only_mix ? strcmp(only_mix, mx->name) != 0 : mi >= 2) continue;
        /* layers[l][role]: distinct memory, L layers rotate */
        cpu_matrix(*layers)[N_ROLES] = calloc((size_t)n_layers, sizeof *layers);
        cpu_matrix lm;
        double layer_bytes_total = 0;
        for (int l = 0; l < n_layers; l++)
            for (int r = 0; r < N_ROLES; r++) {
                /* rotation layer l stands for model layer l * 32 / L, so
                 * the q4_K_M down types mix as in the model (L = 4: 2 of 4) */
                int type = r == DOWN && use_more_bits(l * N_LAYERS / n_layers) ? mx->down_alt
                                                                               : mx->type[r];
                if (make_matrix(&layers[l][r], type, role_out[r], role_in[r])) return 1;
                layer_bytes_total += matrix_bytes(&layers[l][r]);
            }
        if (make_matrix(&lm, mx->lm_type, LM_OUT, DIM)) return 1;
        printf("\n== %s: %d layers in rotation, %.0f MB of weights (+ lm_head %.0f MB)\n", mx->name,
               n_layers, layer_bytes_total / 1e6, matrix_bytes(&lm) / 1e6);

        if (!only || !strcmp(only, "decode")) {
            /* warm-up, then timed passes over all layers and lm_head; the
             * fastest pass counts (this machine may be shared) */
            double t_role[N_ROLES], b_role[N_ROLES] = {0}, t_lm = 1e9;
            for (int r = 0; r < N_ROLES; r++) t_role[r] = 1e9;
            for (int l = 0; l < n_layers; l++)
                for (int r = 0; r < N_ROLES; r++) b_role[r] += matrix_bytes(&layers[l][r]);
            int passes = 8;
            for (int pass = -1; pass < passes; pass++) {
                double t_pass[N_ROLES] = {0};
                for (int l = 0; l < n_layers; l++)
                    for (int r = 0; r < N_ROLES; r++) {
                        double t0 = now_s();
                        cpu_matmul_isa(pool, &layers[l][r], x, 1, y, (int)role_out[r], isa);
                        t_pass[r] += now_s() - t0;
                    }
                double t0 = now_s();
                cpu_matmul_isa(pool, &lm, x, 1, y, LM_OUT, isa);
                double tl = now_s() - t0;
                if (pass < 0) continue;
                for (int r = 0; r < N_ROLES; r++)
                    if (t_pass[r] < t_role[r]) t_role[r] = t_pass[r];
                if (tl < t_lm) t_lm = tl;
            }
            double t_layer = 0, b_layer = 0;
            printf("decode (1 row):\n");
            for (int r = 0; r < N_ROLES; r++) {
                printf("  %-8s %7.3f ms  %5.1f GB/s\n", role_name[r], 1e3 * t_role[r] / n_layers,
                       b_role[r] / t_role[r] / 1e9);
                t_layer += t_role[r] / n_layers;
                b_layer += b_role[r] / n_layers;
            }
            printf("  %-8s %7.3f ms  %5.1f GB/s\n", "lm_head", 1e3 * t_lm,
                   matrix_bytes(&lm) / t_lm / 1e9);
            double t_tok = N_LAYERS * t_layer + t_lm;
            printf(
                "  per layer %.3f ms (%.1f GB/s); 32 layers + lm_head: %.1f ms/token = %.2f tok/s "
                "(%.1f GB/s)\n",
                1e3 * t_layer, b_layer / t_layer / 1e9, 1e3 * t_tok, 1.0 / t_tok,
                (N_LAYERS * b_layer + matrix_bytes(&lm)) / t_tok / 1e9);
        }

        if (!only || !strcmp(only, "prefill")) {
            int rows = 512;
            printf("prefill (%d rows):\n", rows);
            double t_layer = 0, c_layer = 0;
            for (int r = 0; r < N_ROLES; r++) {
                /* per layer of the rotation the fastest of 2 calls, by the
                 * wall clock and by CPU time / threads (what an idle machine
                 * would give when other processes take our cores); then the
                 * mean over the layers (their types may differ) */
                double t = 0, tc = 0;
                cpu_matmul_isa(pool, &layers[0][r], x, rows, y, (int)role_out[r], isa);
                for (int l = 0; l < n_layers; l++) {
                    double tl = 1e9, tcl = 1e9;
                    for (int k = 0; k < 2; k++) {
                        double t0 = now_s(), c0 = cpu_s();
                        cpu_matmul_isa(pool, &layers[l][r], x, rows, y, (int)role_out[r], isa);
                        double tk = now_s() - t0, ck = (cpu_s() - c0) / cpu_pool_size(pool);
                        if (tk < tl) tl = tk;
                        if (ck < tcl) tcl = ck;
                    }
                    t += tl / n_layers;
                    tc += tcl / n_layers;
                }
                double flop = 2.0 * rows * (double)role_out[r] * (double)role_in[r];
                printf("  %-8s %8.2f ms  %6.1f GFLOP/s   (cpu time: %8.2f ms  %6.1f GFLOP/s)\n",
                       role_name[r], 1e3 * t, flop / t / 1e9, 1e3 * tc, flop / tc / 1e9);
                t_layer += t;
                c_layer += tc;
            }
            double layer_flop =
                2.0 * rows * (9216.0 * 3072 + 3072.0 * 3072 + 16384.0 * 3072 + 3072.0 * 8192);
            printf("  per layer %.2f ms; 32 layers: %.1f tok/s (%.1f GFLOP/s)\n", 1e3 * t_layer,
                   rows / (N_LAYERS * t_layer), layer_flop / t_layer / 1e9);
            printf("  by cpu time: per layer %.2f ms; 32 layers: %.1f tok/s (%.1f GFLOP/s)\n",
                   1e3 * c_layer, rows / (N_LAYERS * c_layer), layer_flop / c_layer / 1e9);
        }
        for (int l = 0; l < n_layers; l++)
            for (int r = 0; r < N_ROLES; r++) cpu_matrix_free(&layers[l][r]);
        cpu_matrix_free(&lm);
        free(layers);
    }
    free(x);
    free(y);
    cpu_pool_free(pool);
    return 0;
}
