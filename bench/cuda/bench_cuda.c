/*
 * The CUDA backend's benchmark (PEERS.md's measurements, run on zt):
 *
 *   bench_cuda TYPE [--quick|--steps|--depths|--rows|--vs SPEC...]
 *                                  TYPE = q4_0 | q4_k_m | f16 | q8_0
 *                                  (--steps: 4 decode steps only, for ncu;
 *                                  --depths: decode at 256-2048 positions only;
 *                                  --rows: timelines of steps of 1, 2, 4, 8 rows;
 *                                  --vs [rows=N]: tunings against each other
 *                                  (N sequences a step, 1 to 8), each SPEC
 *                                  "field=value,..." over the default, or "default";
 *                                  e.g. --vs default attn_mma=1 fuse_wo=1,fold_upto=256)
 *
 * builds the synthetic Phi-3-mini of PEERS.md in memory (exact shapes and
 * per-tensor types of synth.h; random bytes in the real block formats,
 * scales set to weights of magnitude ~0.02: values do not change the
 * speed of these kernels), uploads it, and measures:
 *
 *   copy     device-to-device memcpy GB/s (bytes read + written), the
 *            ceiling the decode floor is computed from
 *   decode   8-token prompt, then 128 greedy tokens at batch 1, each
 *            step's argmax fed back (tok/s, wall clock over the 128 steps),
 *            for the default tuning and a few variants (the summary's
 *            tg128 is the default's)
 *   phases   one decode step phase by phase (event timing): ms and GB/s
 *   pp512    one 512-row prompt forward (median of 3)
 *   batch    B sequences (prompt 128 each), 128 steps of B rows: aggregate
 *            tok/s, for B = 1, 8, 32, 64 (--quick: 1 and 8, 32 steps)
 *   depth    128 greedy tokens after a 2048-token prompt (not with --quick)
 *
 * Output: "key value" lines, then a summary table (the last lines) and the
 * run's wall time ("bench_s"). A full run of one type took 14 s (Q4_0) and
 * 21 s (F16) on an H100 80GB HBM3 (2026-11-26, the committed kernels,
 * model built and uploaded in ~3 s); tools/device_cuda.sh gives each type
 * up to 200 s.
 */
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "model/synth.h"
#include "quant/quant.h"
#include "util/f16.h"

#include <cuda_profiler_api.h>
#include <cuda_runtime_api.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* ---- the synthetic model ------------------------------------------------ */

typedef struct fill_job {
    zt_tensor *t;
    uint64_t seed;
    int64_t r0, r1; /* rows */
} fill_job;

static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Random block bytes, then every scale field set to a sane f16. */
static void fill_rows(zt_tensor *t, uint64_t seed, int64_t r0, int64_t r1) {
    size_t row = quant_row_bytes(t->type, t->ne[0]);
    const zt_type_info *ti = quant_type_info(t->type);
    uint64_t s = seed ^ (uint64_t)r0 * 0x100000001b3ull;
    for (int64_t r = r0; r < r1; r++) {
        uint8_t *p = (uint8_t *)t->data + (size_t)r * row;
        for (size_t i = 0; i < row; i += 8) {
            uint64_t v = mix(&s);
            memcpy(p + i, &v, row - i < 8 ? row - i : 8);
        }
        int nb = (int)(t->ne[0] / ti->block_elems);
        for (int b = 0; b < nb; b++) {
            uint8_t *blk = p + (size_t)b * ti->block_bytes;
            uint16_t d = zt_f32_to_f16(0.02f / 8), dmin = zt_f32_to_f16(0.02f / 16);
            switch (t->type) {
            case ZT_Q4_0:
            case ZT_Q8_0:
                memcpy(blk, &d, 2);
                break;
            case ZT_Q4_K:
            case ZT_Q5_K:
                d = zt_f32_to_f16(0.02f / 256);
                memcpy(blk, &d, 2), memcpy(blk + 2, &dmin, 2);
                break;
            case ZT_Q6_K:
                d = zt_f32_to_f16(0.02f / 1024);
                memcpy(blk + 208, &d, 2);
                break;
            case ZT_F16:
                for (int i = 0; i < 1; i++) {
                    uint16_t *h = (uint16_t *)blk;
                    h[0] = (uint16_t)((h[0] & 0x83ff) | 0x2400); /* |x| in [1/64, 1/32) */
                }
                break;
            case ZT_F32: {
                float one = 1.0f + (float)(mix(&s) % 1000) * 2e-5f;
                memcpy(blk, &one, 4);
                break;
            }
            default:
                break;
            }
        }
    }
}

static void *fill_worker(void *arg) {
    fill_job *j = arg;
    fill_rows(j->t, j->seed, j->r0, j->r1);
    return NULL;
}

static zt_tensor *add(zt_model *m, const char *ftype, const char *name, int layer, int n_layers,
                      int64_t ne0, int64_t ne1, uint64_t seed) {
    int type = synth_tensor_type(ftype, name, layer, n_layers, ne0);
    zt_tensor *t = model_add_tensor(m, name);
    t->type = type;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0, t->ne[1] = ne1, t->ne[2] = t->ne[3] = 1;
    t->nbytes = quant_row_bytes(type, ne0) * (size_t)ne1;
    t->data = model_own(m, malloc(t->nbytes));
    if (!t->data) {
        fprintf(stderr, "out of memory for %s\n", name);
        exit(1);
    }
    enum { NT = 16 };
    pthread_t th[NT];
    fill_job jobs[NT];
    for (int i = 0; i < NT; i++) {
        jobs[i] = (fill_job){t, seed * 7919 + (uint64_t)i, ne1 * i / NT, ne1 * (i + 1) / NT};
        pthread_create(&th[i], NULL, fill_worker, &jobs[i]);
    }
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    return t;
}

static zt_model *build_phi3_mini(const char *ftype, size_t *weight_bytes) {
    const synth_spec *s = synth_preset("phi3-mini");
    zt_model *m = model_new("bench-phi3-mini");
    char key[96], name[96];
#define KEY(x) (snprintf(key, sizeof key, "phi3.%s", x), key)
    model_set_str(m, "general.architecture", "phi3");
    model_set_u32(m, KEY("context_length"), (uint32_t)s->ctx);
    model_set_u32(m, KEY("embedding_length"), (uint32_t)s->dim);
    model_set_u32(m, KEY("feed_forward_length"), (uint32_t)s->ffn_dim);
    model_set_u32(m, KEY("block_count"), (uint32_t)s->n_layers);
    model_set_u32(m, KEY("attention.head_count"), (uint32_t)s->n_heads);
    model_set_u32(m, KEY("attention.head_count_kv"), (uint32_t)s->n_kv_heads);
    model_set_u32(m, KEY("rope.dimension_count"), (uint32_t)(s->dim / s->n_heads));
    model_set_f32(m, KEY("rope.freq_base"), s->rope_theta);
    model_set_f32(m, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps);
    model_set_u32(m, KEY("vocab_size"), (uint32_t)s->n_vocab);
    model_set_u32(m, KEY("attention.sliding_window"), (uint32_t)s->sliding_window);
#undef KEY
    int L = s->n_layers, q = s->dim, qkv = 3 * s->dim;
    uint64_t seed = 1;
    size_t wb = 0;
    zt_tensor *t;
    add(m, ftype, "token_embd.weight", -1, L, s->dim, s->n_vocab, seed++);
    for (int l = 0; l < L; l++) {
#define N(x) (snprintf(name, sizeof name, "blk.%d.%s", l, x), name)
        add(m, ftype, N("attn_norm.weight"), l, L, s->dim, 1, seed++);
        t = add(m, ftype, N("attn_qkv.weight"), l, L, s->dim, qkv, seed++), wb += t->nbytes;
        t = add(m, ftype, N("attn_output.weight"), l, L, q, s->dim, seed++), wb += t->nbytes;
        add(m, ftype, N("ffn_norm.weight"), l, L, s->dim, 1, seed++);
        t = add(m, ftype, N("ffn_up.weight"), l, L, s->dim, 2 * s->ffn_dim, seed++),
        wb += t->nbytes;
        t = add(m, ftype, N("ffn_down.weight"), l, L, s->ffn_dim, s->dim, seed++), wb += t->nbytes;
#undef N
    }
    add(m, ftype, "output_norm.weight", -1, L, s->dim, 1, seed++);
    t = add(m, ftype, "output.weight", -1, L, s->dim, s->n_vocab, seed++), wb += t->nbytes;
    zt_error err = {0};
    if (arch_init(m, &err) != ZT_OK) {
        fprintf(stderr, "arch: %s\n", err.msg);
        exit(1);
    }
    *weight_bytes = wb;
    return m;
}

/* ---- measurements ------------------------------------------------------- */

typedef struct bench {
    zt_backend *b;
    zt_backend_opts o;
    int32_t *pt; /* [n_seq][max_pages]: sequence s owns pages [s * max_pages, ...) */
    int vocab;
} bench;

static int fwd(bench *B, int n, const int32_t *seq, const int32_t *pos, const int32_t *tok,
               int n_out, const int32_t *out_rows, int32_t *argmax) {
    zt_fwd f = {n, tok, pos, seq, B->pt, n_out, out_rows, NULL, argmax};
    zt_error err = {0};
    if (zt_cuda_backend.forward(B->b, &f, &err) != ZT_OK) {
        fprintf(stderr, "forward: %s\n", err.msg);
        exit(1);
    }
    return 0;
}

/* Prefills sequences [0, n_seq) with `len` tokens each (chunks of max_batch). */
static void prefill(bench *B, int n_seq, int len) {
    int cap = B->o.max_batch, n = 0;
    int32_t *seq = malloc(4 * cap), *pos = malloc(4 * cap), *tok = malloc(4 * cap),
            *out = malloc(4 * cap);
    for (int s = 0; s < n_seq; s++)
        for (int p = 0; p < len; p++) {
            seq[n] = s, pos[n] = p, tok[n] = (s * 31 + p * 7) % 32000, n++;
            if (n == cap || (s == n_seq - 1 && p == len - 1)) {
                fwd(B, n, seq, pos, tok, 0, out, NULL);
                n = 0;
            }
        }
    free(seq), free(pos), free(tok), free(out);
}

/* steps greedy decode steps of n_seq rows from position `start`;
 * returns aggregate tok/s. */
static double decode(bench *B, int n_seq, int start, int steps) {
    int32_t seq[64], pos[64], tok[64], out[64], am[64];
    for (int s = 0; s < n_seq; s++) seq[s] = s, tok[s] = 1 + s, out[s] = s;
    double t0 = now_s();
    for (int k = 0; k < steps; k++) {
        for (int s = 0; s < n_seq; s++) pos[s] = start + k;
        fwd(B, n_seq, seq, pos, tok, n_seq, out, am);
        for (int s = 0; s < n_seq; s++) tok[s] = am[s];
    }
    return (double)n_seq * steps / (now_s() - t0);
}

/* Sets base with its int field at byte offset `off` changed to v (the
 * sweeps below: one tuning field at a time, then base again); 0, or -1
 * when the backend refuses it. */
static int set_tuning_field(bench *B, const zt_cuda_tuning *base, size_t off, int v) {
    zt_cuda_tuning t = *base;
    memcpy((char *)&t + off, &v, sizeof v);
    zt_error err = {0};
    return zt_cuda_set_tuning(B->b, &t, &err) ? -1 : 0;
}

/* The tuning fields --vs names (every field of zt_cuda_tuning is an int). */
static const struct {
    const char *name;
    size_t off;
} tuning_fields[] = {
#define F(x)                                                                                       \
    { #x, offsetof(zt_cuda_tuning, x) }
    F(decode_mode),    F(pf_bytes),    F(pf_mode),    F(max_decode_rows), F(pdl),
    F(attn_min_chunk), F(attn_items),  F(pack_first), F(gemm_tail),       F(long_from),
    F(long_pack),      F(fuse_wo),     F(wo_slices),  F(fold_upto),       F(attn_mma),
    F(h_pack),         F(gemm_depth),  F(attn_rows),  F(x_pack),          F(g_pack),
    F(gemm_split),     F(attn_decode), F(kv_evict),   F(ring_keys),
#undef F
};

/* *t = base with spec's "field=value,field=value" applied ("" or
 * "default": base itself); -1 with a message for an unknown field or a
 * value that is not an integer. */
static int parse_tuning(const char *spec, const zt_cuda_tuning *base, zt_cuda_tuning *t) {
    *t = *base;
    if (!strcmp(spec, "default")) return 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '='), *end = NULL;
        size_t k = 0, n = sizeof tuning_fields / sizeof tuning_fields[0];
        if (eq) *eq = 0;
        while (k < n && strcmp(tuning_fields[k].name, kv)) k++;
        long v = eq ? strtol(eq + 1, &end, 0) : 0;
        if (!eq || k == n || end == eq + 1 || *end || v < INT_MIN || v > INT_MAX) {
            fprintf(stderr, "--vs: '%s' is not field=integer of a tuning field\n", kv);
            return -1;
        }
        int iv = (int)v;
        memcpy((char *)t + tuning_fields[k].off, &iv, sizeof iv);
    }
    return 0;
}

/* Prefill of 512 tokens of one sequence: tok/s, the median of 3 after a
 * warm-up. */
static double pp512_run(bench *B) {
    int32_t *seq = malloc(4 * 512), *pos = malloc(4 * 512), *tok = malloc(4 * 512), out = 511;
    for (int i = 0; i < 512; i++) seq[i] = 0, pos[i] = i, tok[i] = (i * 13) % 32000;
    double t[3];
    int32_t am;
    fwd(B, 512, seq, pos, tok, 1, &out, &am);
    for (int r = 0; r < 3; r++) {
        double a = now_s();
        fwd(B, 512, seq, pos, tok, 1, &out, &am);
        t[r] = now_s() - a;
    }
    qsort(t, 3, sizeof t[0], cmp_d);
    free(seq), free(pos), free(tok);
    return 512 / t[1];
}

/* The tuning of spec (parse_tuning's) over base set on the backend: 0, or
 * -1 (printed) when the spec is not one or the backend refuses it. */
static int set_spec(bench *B, const zt_cuda_tuning *base, const char *spec) {
    zt_cuda_tuning t;
    zt_error err = {0};
    if (parse_tuning(spec, base, &t)) return -1;
    if (zt_cuda_set_tuning(B->b, &t, &err)) {
        fprintf(stderr, "tuning %s: %s\n", spec, err.msg);
        return -1;
    }
    return 0;
}

static double copy_bandwidth(void) {
    size_t n = (size_t)1 << 31;
    void *a, *b;
    if (cudaMalloc(&a, n) || cudaMalloc(&b, n)) return 0;
    cudaMemset(a, 1, n);
    double t[12];
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    for (int i = 0; i < 12; i++) {
        cudaEventRecord(e0, 0);
        cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice);
        cudaEventRecord(e1, 0);
        cudaEventSynchronize(e1);
        float ms;
        cudaEventElapsedTime(&ms, e0, e1);
        t[i] = ms;
    }
    qsort(t, 12, sizeof t[0], cmp_d);
    cudaFree(a), cudaFree(b);
    return 2.0 * n / (t[6] * 1e-3) / 1e9;
}

/* One decode step inside the graph (the current tuning), from the
 * kernels' own clocks: what each phase adds to the step (its last block's
 * end minus the previous launch's), the blocks' mean work once past the
 * wait, and the ramp (previous end -> this kernel's last block past its
 * wait). */
static int print_timeline_rows(bench *B, const char *label, int pos, int rows) {
    zt_error err = {0};
    {
        int32_t s[8], p[8], tk[8], out[8], am[8];
        for (int r = 0; r < rows; r++) s[r] = r, p[r] = pos, tk[r] = 5 + r, out[r] = r;
        zt_fwd f = {rows, tk, p, s, B->pt, rows, out, NULL, am};
        enum { CAP = 1024 };
        static double t[CAP][ZT_CUDA_TL_FIELDS];
        static int ph[CAP], ly[CAP];
        double adds[ZT_CUDA_N_PHASES] = {0}, work[ZT_CUDA_N_PHASES] = {0},
               ramp[ZT_CUDA_N_PHASES] = {0}, early[ZT_CUDA_N_PHASES] = {0},
               mk[ZT_CUDA_N_PHASES][3] = {{0}}, late[ZT_CUDA_N_PHASES] = {0},
               to_wait[ZT_CUDA_N_PHASES] = {0}, beside[ZT_CUDA_N_PHASES] = {0},
               after_sm[ZT_CUDA_N_PHASES] = {0};
        int cnt[ZT_CUDA_N_PHASES] = {0}, n = 0;
        decode(B, rows, 8, 4); /* the graph exists */
        for (int rep = 0; rep < 3; rep++)
            if (zt_cuda_timeline(B->b, &f, CAP, &n, ph, ly, t, &err)) {
                fprintf(stderr, "timeline: %s\n", err.msg);
                return 1;
            }
        for (int k = 0; k < n; k++) {
            double prev = k ? t[k - 1][2] : 0;
            adds[ph[k]] += t[k][2] - prev;
            work[ph[k]] += t[k][3];
            ramp[ph[k]] += k ? t[k][1] - prev : 0;
            early[ph[k]] += k ? prev - t[k][0] : 0;
            for (int m = 0; m < 3; m++) mk[ph[k]][m] += t[k][4 + m];
            late[ph[k]] += k ? t[k][7] - prev : 0;
            to_wait[ph[k]] += t[k][8];
            beside[ph[k]] += t[k][9], after_sm[ph[k]] += t[k][10];
            cnt[ph[k]]++;
        }
        printf("timeline [%s] (kernels' %%globaltimer, batch %d at position %d; step %.1f us):\n",
               label, rows, pos, n ? t[n - 1][2] : 0.0);
        for (int k = 0; k < ZT_CUDA_N_PHASES; k++)
            if (cnt[k])
                printf("  tl %-8s x%-3d adds %7.2f us  work %7.2f us  ramp %6.2f us  starts %6.2f "
                       "us early  (means per launch)\n",
                       zt_cuda_phase_name(k), cnt[k], adds[k] / cnt[k], work[k] / cnt[k],
                       ramp[k] / cnt[k], early[k] / cnt[k]);
        printf("  (marks, mean per block that reached them: weight phases wait -> packed -> items "
               "done; attention wait -> q loaded -> scores -> PV)\n");
        for (int k = 0; k < ZT_CUDA_N_PHASES; k++)
            if (cnt[k] && mk[k][0] > 0)
                printf("  tl %-8s marks %7.2f %7.2f %7.2f us\n", zt_cuda_phase_name(k),
                       mk[k][0] / cnt[k], mk[k][1] / cnt[k], mk[k][2] / cnt[k]);
        printf("  (blocks: the last block's start after the previous launch's end; a block's "
               "start -> past its wait, mean; blocks started beside the previous launch's "
               "block on their SM; a block's start after that SM's previous block ended, "
               "mean)\n");
        for (int k = 0; k < ZT_CUDA_N_PHASES; k++)
            if (cnt[k])
                printf("  tl %-8s blocks  last start %6.2f us  start->wait %6.2f us  beside "
                       "%5.1f  after the SM's last %6.2f us\n",
                       zt_cuda_phase_name(k), late[k] / cnt[k], to_wait[k] / cnt[k],
                       beside[k] / cnt[k], after_sm[k] / cnt[k]);
        for (int k = 0; k < n; k++)
            if (ly[k] == 5 || k >= n - 2)
                printf("  tl layer %2d %-8s first start %9.2f  all waited %9.2f  last end %9.2f  "
                       "work %7.2f\n",
                       ly[k], zt_cuda_phase_name(ph[k]), t[k][0], t[k][1], t[k][2], t[k][3]);
    }
    return 0;
}

static int print_timeline(bench *B, const char *label, int pos) {
    return print_timeline_rows(B, label, pos, 1);
}

/* Interleaved rounds of variants: for each depth, the context prefilled,
 * then three rounds in which every tuning of tv decodes 128 steps (after
 * 8 for the graphs' capture), so that drift hits all variants alike. */
static void variant_rounds(bench *B, const char *tag, int rows, const int *depths, int nd,
                           const zt_cuda_tuning *tv, const char *const *names, int nv) {
    zt_error err = {0};
    for (int di = 0; di < nd; di++) {
        prefill(B, rows, depths[di]);
        for (int rep = 0; rep < 3; rep++)
            for (int i = 0; i < nv; i++) {
                if (zt_cuda_set_tuning(B->b, &tv[i], &err)) {
                    printf("%s [%s] refused: %s\n", tag, names[i], err.msg);
                    continue;
                }
                decode(B, rows, depths[di], 8);
                double r = decode(B, rows, depths[di], 128);
                printf("%s round %d rows %d depth %d [%s] %.1f tok/s, launches/step %d\n", tag, rep,
                       rows, depths[di], names[i], r, zt_cuda_backend.dispatches(B->b));
            }
    }
}

int main(int argc, char **argv) {
    const char *ftype = argc > 1 ? argv[1] : "q4_0";
    int quick = argc > 2 && !strcmp(argv[2], "--quick");
    /* --steps [depth | rows=N [SPEC]]: only 4 decode steps after the
     * build (the default variant, or the default after a 2048-token
     * prompt), for ncu; rows=N: see below */
    int steps_only = argc > 2 && !strcmp(argv[2], "--steps");
    int steps_deep = steps_only && argc > 3 && !strcmp(argv[3], "depth");
    /* --depths: decode at 256-2048 positions of context, the long steps
     * and the packs first (before the first weight loads) against the
     * default's short steps */
    int depths_only = argc > 2 && !strcmp(argv[2], "--depths");
    /* --vs [rows=N] SPEC...: tunings against each other (SPEC:
     * "field=value,..." over the default, or "default"; up to 8),
     * interleaved rounds of 128 steps of N sequences (1; up to 64) after
     * 8, 160, 512 and (one sequence) 2048 positions, then each one's
     * timeline at position 64 (for more rows than the decode step takes:
     * after 128 positions, no timeline) */
    int vs_only = argc > 2 && !strcmp(argv[2], "--vs");
    /* --rows: the default's timeline with 1, 2, 4 and 8 sequences a step
     * (where a step's time goes as rows are added) */
    int rows_only = argc > 2 && !strcmp(argv[2], "--rows");
    if (vs_only && (argc < 4 || argc - (strncmp(argv[3], "rows=", 5) ? 3 : 4) > 8)) {
        fprintf(stderr, "--vs takes 1 to 8 tunings (\"default\" or field=value,...)\n");
        return 2;
    }
    char dev[256];
    int n_sm = 0;
    size_t mem = 0;
    if (zt_cuda_device_info(dev, sizeof dev, &n_sm, &mem)) {
        fprintf(stderr, "no CUDA device\n");
        return 1;
    }
    printf("device %s (%d SMs, %.1f GiB)\n", dev, n_sm, mem / 1073741824.0);
    double t_start = now_s();
    double bw = copy_bandwidth();
    printf("copy_GBps %.0f\n", bw);

    double t0 = now_s();
    size_t wbytes = 0;
    zt_model *m = build_phi3_mini(ftype, &wbytes);
    printf("model phi3-mini %s: %.3f GB of weights read per token (all but token_embd), built in "
           "%.1f s\n",
           ftype, wbytes / 1e9, now_s() - t0);
    printf("floor_tok_s %.0f  (at %.0f GB/s)\n", bw * 1e9 / wbytes, bw);

    bench B;
    memset(&B, 0, sizeof B);
    /* sequence 0 holds 136 pages (depth 2048 + 128), the others 20 (prompt
     * 128 + 128 steps = 16 pages); 64 sequences for the largest batch */
    B.o = (zt_backend_opts){.n_threads = 0,
                            .n_pages = 136 + 63 * 20,
                            .n_seq = 64,
                            .max_pages_per_seq = 136,
                            .max_batch = 512,
                            .kv_type = ZT_KV_F16};
    B.vocab = m->cfg.n_vocab;
    B.pt = malloc(sizeof(int32_t) * B.o.n_seq * B.o.max_pages_per_seq);
    for (int s = 0; s < B.o.n_seq; s++)
        for (int k = 0; k < B.o.max_pages_per_seq; k++)
            B.pt[s * B.o.max_pages_per_seq + k] = s == 0 ? k : k < 20 ? 136 + (s - 1) * 20 + k : 0;
    zt_error err = {0};
    t0 = now_s();
    if (zt_cuda_backend.create(m, &B.o, &B.b, &err) != ZT_OK) {
        fprintf(stderr, "create: %s\n", err.msg);
        return 1;
    }
    printf("upload_s %.1f\n", now_s() - t0);
    zt_cuda_tuning def; /* the backend's default (the variants below change it) */
    zt_cuda_get_tuning(B.b, &def);

    /* decode at batch 1 over the variants: tuning specs over the default
     * (parse_tuning's) */
    static const struct {
        const char *name, *spec;
    } var[] = {
        {"default", "default"},
        {"long steps", "long_from=1"},
        {"packs first", "pack_first=1"},
        {"pdl but wo", "pdl=2"},
        {"no pdl", "pdl=0"},
        {"one by one, no pdl", "decode_mode=1,pdl=0"},
        {"L2 prefetch 1M before the wait", "pf_bytes=1048576,pf_mode=2"},
        {"L2 prefetch 1M ahead", "pf_bytes=1048576,pf_mode=1"},
    };
    int nvar = quick ? 4 : (int)(sizeof var / sizeof var[0]);
    double best = 0, tg_default = 0;
    int best_i = 0;
    prefill(&B, 1, 8);
    if (depths_only) {
        const int depth[4] = {256, 512, 1024, 2048};
        for (int d = 0; d < 4; d++) {
            prefill(&B, 1, depth[d]);
            for (int rep = 0; rep < 2; rep++)
                for (int i = 0; i < 3; i++) {
                    if (set_spec(&B, &def, var[i].spec)) continue;
                    decode(&B, 1, depth[d], 4); /* the graph's capture */
                    printf("decode at depth %d [%s]: %.1f tok/s\n", depth[d], var[i].name,
                           decode(&B, 1, depth[d], 128));
                }
        }
        zt_cuda_backend.destroy(B.b);
        zt_model_free(m);
        return 0;
    }
    if (vs_only) {
        zt_cuda_tuning tv[8];
        const char *names[8];
        int nv = 0, a0 = 3, rows = 1;
        if (!strncmp(argv[3], "rows=", 5)) { /* sequences a step (the decode path's rows) */
            char *end = NULL;
            rows = (int)strtol(argv[3] + 5, &end, 10);
            if (*end || rows < 1 || rows > 64 || argc < 5) {
                fprintf(stderr, "--vs rows=N (1..64) takes tunings after it\n");
                return 2;
            }
            a0 = 4;
        }
        for (int a = a0; a < argc; a++, nv++) {
            if (parse_tuning(argv[a], &def, &tv[nv])) return 1;
            names[nv] = argv[a];
        }
        /* one sequence: up to 2048 positions; several: up to 512; more
         * than the decode step takes (the batched path): after the batched
         * decode's prompt of 128 (and no timeline: it is the decode step's) */
        const int depths[4] = {8, 160, 512, 2048}, batched[1] = {128};
        const int big = rows > def.max_decode_rows;
        variant_rounds(&B, "vs", rows, big ? batched : depths,
                       big        ? 1
                       : rows > 1 ? 3
                                  : 4,
                       tv, names, nv);
        for (int i = 0; i < nv && !big; i++) /* each variant's step at position 64 */
            if (zt_cuda_set_tuning(B.b, &tv[i], &err) == 0)
                print_timeline_rows(&B, names[i], 64, rows);
        /* and one sequence's after 2,040 and 2,048 (the rounds' last
         * prompt holds them): 16 and 17 key chunks a split */
        for (int i = 0; i < nv && rows == 1; i++)
            if (zt_cuda_set_tuning(B.b, &tv[i], &err) == 0)
                print_timeline_rows(&B, names[i], 2040, 1),
                    print_timeline_rows(&B, names[i], 2048, 1);
        zt_cuda_backend.destroy(B.b);
        zt_model_free(m);
        return 0;
    }
    if (rows_only) {
        prefill(&B, 8, 64);
        for (int rows = 1; rows <= 8; rows *= 2) {
            decode(&B, rows, 64, 4); /* the graph of this many rows */
            if (print_timeline_rows(&B, "default", 64, rows)) return 1;
        }
        zt_cuda_backend.destroy(B.b);
        zt_model_free(m);
        return 0;
    }
    if (steps_only && argc > 3 && !strncmp(argv[3], "rows=", 5)) {
        /* --steps rows=N [SPEC]: N sequences after 128 positions, 4 steps,
         * then one inside cudaProfilerStart / Stop (ncu --profile-from-start
         * off: that step's kernels only) */
        const int rows = atoi(argv[3] + 5);
        zt_cuda_tuning t;
        if (rows < 1 || rows > 64 || parse_tuning(argc > 4 ? argv[4] : "default", &def, &t) ||
            zt_cuda_set_tuning(B.b, &t, &err)) {
            fprintf(stderr, "--steps rows=N (1..64) [tuning]: refused\n");
            return 2;
        }
        prefill(&B, rows, 128);
        decode(&B, rows, 128, 4);
        cudaProfilerStart();
        printf("profiled step: %.1f tok/s\n", decode(&B, rows, 132, 1));
        cudaProfilerStop();
        zt_cuda_backend.destroy(B.b);
        zt_model_free(m);
        return 0;
    }
    if (steps_only) {
        if (steps_deep) prefill(&B, 1, 2048);
        printf("decode_steps %.1f tok/s\n", decode(&B, 1, steps_deep ? 2048 : 8, 4));
        zt_cuda_backend.destroy(B.b);
        zt_model_free(m);
        return 0;
    }
    for (int i = 0; i < nvar; i++) {
        if (set_spec(&B, &def, var[i].spec)) {
            printf("decode_tg128 [%s] refused\n", var[i].name);
            continue;
        }
        decode(&B, 1, 8, 8); /* warm-up (graph capture) */
        double r1 = decode(&B, 1, 8, 128), r2 = decode(&B, 1, 8, 128);
        double r = r1 > r2 ? r1 : r2;
        printf("decode_tg128 [%s] %.1f tok/s (runs %.1f %.1f), %.0f GB/s, %.0f%% of floor, "
               "launches/token %d\n",
               var[i].name, r, r1, r2, r * wbytes / 1e9, 100.0 * r * wbytes / (bw * 1e9),
               zt_cuda_backend.dispatches(B.b));
        if (i == 0) tg_default = r;
        if (r > best) best = r, best_i = i;
    }
    /* the rest of the bench, and the summary, measure the default */
    printf("best decode variant: %s (%.1f tok/s; the default %.1f)\n", var[best_i].name, best,
           tg_default);
    if (set_spec(&B, &def, "default")) return 1;

    /* attention at short contexts: fewer positions per split put more SMs
     * on it (the sweep includes the default, tune.attn_min_chunk) */
    {
        zt_cuda_tuning t0;
        zt_cuda_get_tuning(B.b, &t0);
        const int chunks[4] = {16, 32, 64, 128};
        for (int k = 0; k < 4; k++) {
            if (set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, attn_min_chunk), chunks[k]))
                continue;
            decode(&B, 1, 8, 8);
            double r1 = decode(&B, 1, 8, 128), r2 = decode(&B, 1, 8, 128);
            printf("decode_tg128 [default, attn_min_chunk=%d] %.1f tok/s (runs %.1f %.1f)\n",
                   chunks[k], r1 > r2 ? r1 : r2, r1, r2);
        }
        set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, attn_min_chunk), t0.attn_min_chunk);
    }

    /* per-phase breakdown of one step at position 64 */
    {
        int32_t s = 0, p = 64, tk = 5, out = 0, am;
        zt_fwd f = {1, &tk, &p, &s, B.pt, 1, &out, NULL, &am};
        double ms[ZT_CUDA_N_PHASES], tot = 0, sum[ZT_CUDA_N_PHASES] = {0};
        for (int rep = 0; rep < 5; rep++) {
            if (zt_cuda_profile_decode(B.b, &f, ms, &err)) {
                fprintf(stderr, "profile: %s\n", err.msg);
                return 1;
            }
            for (int k = 0; k < ZT_CUDA_N_PHASES; k++) sum[k] += ms[k] / 5;
        }
        const zt_config *c = &m->cfg;
        double bytes[ZT_CUDA_N_PHASES] = {0};
        for (int l = 0; l < c->n_layers; l++) {
            const zt_layer_weights *W = &m->w.layers[l];
            bytes[0] += W->wqkv->nbytes;
            bytes[3] += W->wo->nbytes;
            bytes[4] += W->w_gate_up->nbytes;
            bytes[5] += W->w_down->nbytes;
        }
        bytes[6] = m->w.output->nbytes;
        printf("phase breakdown (phases mode, events, mean of 5, batch 1 at position 64):\n");
        for (int k = 0; k < ZT_CUDA_N_PHASES; k++) {
            tot += sum[k];
            if (sum[k] > 0)
                printf("  phase %-8s %8.3f ms %7.0f GB/s\n", zt_cuda_phase_name(k), sum[k],
                       bytes[k] > 0 ? bytes[k] / (sum[k] * 1e-3) / 1e9 : 0.0);
        }
        printf("  phase total    %8.3f ms (%.0f tok/s if launched back to back)\n", tot, 1e3 / tot);
    }

    /* the same step inside the graph, from the kernels' own clocks, for
     * the default and (when it is another) the best variant */
    print_timeline(&B, "default", 64);
    if (best_i != 0 && set_spec(&B, &def, var[best_i].spec) == 0) {
        print_timeline(&B, var[best_i].name, 64);
        if (set_spec(&B, &def, "default")) return 1;
    }

    /* pp512 with the GEMMs' tail split (tune.gemm_tail, the default) and
     * without it, then the default again */
    double pp512 = 0;
    {
        zt_cuda_tuning t0;
        zt_cuda_get_tuning(B.b, &t0);
        for (int tail = 0; tail <= 1; tail++) {
            if (set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, gemm_tail), tail)) continue;
            double r = pp512_run(&B);
            printf("pp512 [gemm_tail=%d] %.0f tok/s (%.2f ms), launches %d\n", tail, r, 512e3 / r,
                   zt_cuda_backend.dispatches(B.b));
        }
        set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, gemm_tail), t0.gemm_tail);
        pp512 = pp512_run(&B);
        printf("pp512 %.0f tok/s (%.2f ms), launches %d, the default (gemm_tail=%d)\n", pp512,
               512e3 / pp512, zt_cuda_backend.dispatches(B.b), t0.gemm_tail);
    }

    /* batched decode */
    double agg[4] = {0};
    const int bs[4] = {1, 8, 32, 64};
    for (int i = 0; i < (quick ? 2 : 4); i++) {
        prefill(&B, bs[i], 128);
        agg[i] = decode(&B, bs[i], 128, quick ? 32 : 128);
        printf("batched decode B=%d: %.0f tok/s aggregate (launches/step %d)\n", bs[i], agg[i],
               zt_cuda_backend.dispatches(B.b));
    }
    /* the same 4 and 8 rows through the batched (tensor-core) path: where
     * the decode GEMV should stop (max_decode_rows) */
    {
        zt_cuda_tuning t0;
        zt_cuda_get_tuning(B.b, &t0);
        for (int rows = 2; rows <= 8; rows *= 2) {
            double r[2] = {0, 0}; /* gemv, gemm */
            for (int k = 0; k < 2; k++) {
                if (set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, max_decode_rows),
                                     k == 0 ? rows : rows / 2))
                    continue;
                prefill(&B, rows, 128);
                r[k] = decode(&B, rows, 128, 32);
            }
            set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, max_decode_rows),
                             t0.max_decode_rows);
            printf("batched decode B=%d: gemv path %.0f tok/s, gemm path %.0f tok/s\n", rows, r[0],
                   r[1]);
        }
    }

    /* depth 2048 */
    double deep = 0;
    if (!quick) { /* the default tuning, then variants */
        if (zt_cuda_set_tuning(B.b, &def, &err)) {
            fprintf(stderr, "tuning: %s\n", err.msg);
            return 1;
        }
        prefill(&B, 1, 2048);
        decode(&B, 1, 2048, 4); /* the graph's capture */
        deep = decode(&B, 1, 2048, 128);
        printf("decode at depth 2048: %.1f tok/s\n", deep);
        print_timeline(&B, "default, after the 2048-token prompt", 2100);
        /* the attention's items per block at this depth */
        zt_cuda_tuning t0;
        zt_cuda_get_tuning(B.b, &t0);
        const int items[] = {1, 2, 4};
        for (int k = 0; k < 3; k++) {
            if (set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, attn_items), items[k])) continue;
            printf("decode at depth 2048, attn_items=%d (default %d): %.1f tok/s\n", items[k],
                   t0.attn_items, decode(&B, 1, 2048, 128));
        }
        set_tuning_field(&B, &t0, offsetof(zt_cuda_tuning, attn_items), t0.attn_items);
        /* the long steps and the packs first (variants 1-2: the packs
         * before the first weight loads, but QKV's, or all of them) against
         * the default's short steps, two runs each */
        for (int rep = 0; rep < 2; rep++)
            for (int i = 0; i < 3; i++) {
                if (set_spec(&B, &def, var[i].spec)) continue;
                decode(&B, 1, 2048, 4); /* the graph's capture */
                printf("decode at depth 2048 [%s]: %.1f tok/s\n", var[i].name,
                       decode(&B, 1, 2048, 128));
            }
        if (set_spec(&B, &def, "default")) return 1;
    }

    printf("\n| %s | tg128 tok/s | %% floor | pp512 tok/s | B=1 | B=8 | B=32 | B=64 | 64/1 | "
           "depth 2048 |\n",
           ftype);
    printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    printf("| zt cuda | %.0f | %.0f%% | %.0f | %.0f | %.0f | %.0f | %.0f | %.1fx | %.0f |\n",
           tg_default, 100.0 * tg_default * wbytes / (bw * 1e9), pp512, agg[0], agg[1], agg[2],
           agg[3], agg[0] > 0 ? agg[3] / agg[0] : 0, deep);
    printf("bench_s %.0f\n", now_s() - t_start);
    zt_cuda_backend.destroy(B.b);
    zt_model_free(m);
    free(B.pt);
    return 0;
}
