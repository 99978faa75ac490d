/*
 * The whole CUDA forward pass against the CPU backend (the reference), on
 * small random models of the synth presets: rotate-half RoPE with fused
 * QKV (phi3) and interleaved RoPE with GQA and separate tensors (llama),
 * in q4_0, q4_K_M, q8_0 and f16, plus hand-added QKV biases. Each test
 * drives both backends through the same calls with the same page table:
 *
 *   a 20-token prompt of sequence 0 (batched path, tensor-core attention
 *   tiles), logits of every row;
 *   prompts of 5 and 11 tokens of sequences 1 and 2 in one call (a short
 *   run takes the split-K row attention, a long one the tiles);
 *   decode steps of 1 and 3 rows (the decode phase kernels, CUDA graph),
 *   then one of 4 rows, two each of sequences 0 and 1 (a row attends to
 *   the K/V its sequence's other row writes in the same step);
 *
 * and compares the logits row by row (relative L2). Bounds: 3e-2 for
 * quantized weights (both backends quantize activations to int8 for the
 * GEMV but at different points; the GEMM uses f16 activations), 1e-2 for
 * f16 weights. The CUDA argmax must be the argmax of its own logits.
 */
#include "../golden.h"
#include "../test.h"
#include "../unit/rng.h"
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "model/synth.h"
#include "quant/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct duo {
    zt_model *m;
    zt_backend *cpu, *gpu;
    zt_backend_opts o;
    int32_t *pt; /* [n_seq][max_pages] */
    int vocab;
    double worst; /* largest relative L2 seen */
} duo;

/* The preset's model with n_heads / n_kv_heads query / KV heads instead of
 * its own (0: its own), dim kept, so head_dim follows. */
static zt_model *make_model_heads(const char *preset, const char *ftype, const char *override_arch,
                                  int n_heads, int n_kv_heads) {
    const synth_spec *sp = synth_preset(preset);
    if (!sp) return NULL;
    synth_spec s = *sp;
    zt_model *m = NULL;
    zt_error err = {0};
    if (override_arch) s.arch = override_arch;
    if (n_heads > 0) s.n_heads = n_heads, s.n_kv_heads = n_kv_heads;
    if (synth_build(&s, ftype, 1234, NULL, 2, &m, &err) != ZT_OK) {
        fprintf(stderr, "  synth: %s\n", err.msg);
        return NULL;
    }
    if (arch_init(m, &err) != ZT_OK) {
        fprintf(stderr, "  arch: %s\n", err.msg);
        zt_model_free(m);
        return NULL;
    }
    return m;
}

static zt_model *make_model(const char *preset, const char *ftype, const char *override_arch) {
    return make_model_heads(preset, ftype, override_arch, 0, 0);
}

static int duo_open(duo *d, zt_model *m, int kv_type) {
    memset(d, 0, sizeof *d);
    d->m = m;
    d->vocab = m->cfg.n_vocab;
    d->o = (zt_backend_opts){.n_threads = 2,
                             .n_pages = 96,
                             .n_seq = 4,
                             .max_pages_per_seq = 24,
                             .max_batch = 64,
                             .kv_type = kv_type};
    zt_error err = {0};
    if (zt_cuda_backend.probe(&err) != ZT_OK) {
        fprintf(stderr, "  no usable CUDA device: %s\n", err.msg);
        return -1;
    }
    zt_backend_opts oc = d->o;
    oc.kv_type = ZT_KV_F16;
    if (zt_cpu_backend.create(m, &oc, &d->cpu, &err) != ZT_OK ||
        zt_cuda_backend.create(m, &d->o, &d->gpu, &err) != ZT_OK) {
        fprintf(stderr, "  create: %s\n", err.msg);
        return -1;
    }
    /* decode steps of up to 8 rows through the GEMV kernels (the
     * default's limit too, but shared memory may lower it), so that every
     * row template of them is checked here */
    zt_cuda_tuning t;
    zt_cuda_get_tuning(d->gpu, &t);
    t.max_decode_rows = 8;
    if (zt_cuda_set_tuning(d->gpu, &t, &err) != ZT_OK) {
        fprintf(stderr, "  tuning: %s\n", err.msg);
        return -1;
    }
    d->pt = malloc(sizeof(int32_t) * d->o.n_seq * d->o.max_pages_per_seq);
    /* scattered pages: logical page k of sequence s is (k * 4 + s) * 7 % 96 */
    for (int s = 0; s < d->o.n_seq; s++)
        for (int k = 0; k < d->o.max_pages_per_seq; k++)
            d->pt[s * d->o.max_pages_per_seq + k] = ((k * 4 + s) * 7) % d->o.n_pages;
    return 0;
}

static void duo_close(duo *d) {
    if (d->cpu) zt_cpu_backend.destroy(d->cpu);
    if (d->gpu) zt_cuda_backend.destroy(d->gpu);
    free(d->pt);
    if (d->m) zt_model_free(d->m);
}

/* The synth preset's model in ftype (arch: NULL, or another architecture
 * for its tensors) on both backends with a kv_type cache; false when
 * either cannot be made (the reason is printed). */
static bool duo_start(duo *d, const char *preset, const char *ftype, const char *arch,
                      int kv_type) {
    zt_model *m = make_model(preset, ftype, arch);
    if (!m) {
        memset(d, 0, sizeof *d);
        return false;
    }
    if (duo_open(d, m, kv_type)) {
        duo_close(d);
        return false;
    }
    return true;
}

/* Runs rows (seq[i], pos[i], tok[i]) on both backends, all rows wanted;
 * returns the worst relative L2 over rows, or -1 on an error. */
static double duo_step(duo *d, int n, const int32_t *seq, const int32_t *pos, const int32_t *tok) {
    int32_t *out = malloc(sizeof(int32_t) * n), *amax = malloc(sizeof(int32_t) * n);
    float *lc = malloc(sizeof(float) * (size_t)n * d->vocab);
    float *lg = malloc(sizeof(float) * (size_t)n * d->vocab);
    for (int i = 0; i < n; i++) out[i] = i;
    for (size_t i = 0; i < (size_t)n * d->vocab; i++) lg[i] = NAN;
    zt_fwd f = {n, tok, pos, seq, d->pt, n, out, lc, NULL};
    zt_error err = {0};
    double worst = -1;
    if (zt_cpu_backend.forward(d->cpu, &f, &err) != ZT_OK) {
        fprintf(stderr, "  cpu forward: %s\n", err.msg);
        goto done;
    }
    f.logits = lg, f.argmax = amax;
    if (zt_cuda_backend.forward(d->gpu, &f, &err) != ZT_OK) {
        fprintf(stderr, "  cuda forward: %s\n", err.msg);
        goto done;
    }
    worst = 0;
    for (int i = 0; i < n; i++) {
        double e = 0, nrm = 0;
        const float *a = lc + (size_t)i * d->vocab, *b = lg + (size_t)i * d->vocab;
        int best = 0;
        for (int v = 0; v < d->vocab; v++) {
            if (isnan(b[v])) {
                worst = 1e30;
                break;
            }
            e += ((double)b[v] - a[v]) * ((double)b[v] - a[v]);
            nrm += (double)a[v] * a[v];
            if (b[v] > b[best]) best = v;
        }
        if (best != amax[i]) {
            fprintf(stderr, "  row %d: argmax %d, but logits say %d\n", i, amax[i], best);
            worst = 1e30;
        }
        double rel = sqrt(e / nrm);
        if (rel > worst) worst = rel;
    }
done:
    free(out), free(amax), free(lc), free(lg);
    if (worst > d->worst) d->worst = worst;
    return worst;
}

/* The scenario of the header comment; returns the worst relative L2. */
static double scenario(duo *d) {
    test_rng rng = rng_seed(5);
    int32_t seq[40], pos[40], tok[40];
    int n = 0;
    double w = 0, e;
#define TOK() ((int32_t)(rng_u64(&rng) % (uint64_t)d->vocab))
    for (int i = 0; i < 20; i++) seq[n] = 0, pos[n] = i, tok[n] = TOK(), n++;
    if ((e = duo_step(d, n, seq, pos, tok)) < 0) return -1;
    w = fmax(w, e);
    n = 0;
    for (int i = 0; i < 5; i++) seq[n] = 1, pos[n] = i, tok[n] = TOK(), n++;
    for (int i = 0; i < 11; i++) seq[n] = 2, pos[n] = i, tok[n] = TOK(), n++;
    if ((e = duo_step(d, n, seq, pos, tok)) < 0) return -1;
    w = fmax(w, e);
    for (int step = 0; step < 3; step++) {
        int32_t s1 = 0, p1 = 20 + step, t1 = TOK();
        if ((e = duo_step(d, 1, &s1, &p1, &t1)) < 0) return -1;
        w = fmax(w, e);
    }
    int32_t s3[3] = {0, 1, 2}, p3[3] = {23, 5, 11}, t3[3] = {TOK(), TOK(), TOK()};
    if ((e = duo_step(d, 3, s3, p3, t3)) < 0) return -1;
    w = fmax(w, e);
    int32_t s4[4] = {0, 0, 1, 1}, p4[4] = {24, 25, 6, 7}, t4[4] = {TOK(), TOK(), TOK(), TOK()};
    if ((e = duo_step(d, 4, s4, p4, t4)) < 0) return -1;
#undef TOK
    return fmax(w, e);
}

static void run_case(int *test_failed_, const char *preset, const char *ftype, double tol) {
    duo d;
    if (!duo_start(&d, preset, ftype, NULL, ZT_KV_F16)) {
        CHECK(0);
        return;
    }
    double w = scenario(&d);
    fprintf(stderr, "  %s %s: worst rel L2 %.2e\n", preset, ftype, w);
    CHECK(w >= 0 && w < tol);
    duo_close(&d);
}

TEST(test_cuda_forward_phi3_q4_0_matches_cpu) { run_case(test_failed_, "tiny", "q4_0", 3e-2); }
TEST(test_cuda_forward_phi3_q4_k_m_matches_cpu) { run_case(test_failed_, "tiny", "q4_k_m", 3e-2); }
TEST(test_cuda_forward_phi3_f16_matches_cpu) { run_case(test_failed_, "tiny", "f16", 1e-2); }
TEST(test_cuda_forward_phi3_bf16_matches_cpu) { run_case(test_failed_, "tiny", "bf16", 1e-2); }
TEST(test_cuda_forward_llama_q8_0_matches_cpu) {
    run_case(test_failed_, "llama-tiny", "q8_0", 3e-2);
}
TEST(test_cuda_forward_llama_q4_k_m_matches_cpu) {
    run_case(test_failed_, "llama-tiny", "q4_k_m", 3e-2);
}

/* Biases (qwen2-style) and a short sliding window, both read by the two
 * backends from the same config. */
TEST(test_cuda_forward_bias_and_window_match_cpu) {
    zt_model *m = make_model("llama-tiny", "q4_0", NULL);
    REQUIRE(m != NULL);
    zt_config *c = &m->cfg;
    int q = c->n_heads * c->head_dim, kv = c->n_kv_heads * c->head_dim;
    /* standalone tensors: adding to m->tensors could move the array that
     * the weight roles point into */
    enum { MAXL = 8 };
    static zt_tensor bias[MAXL][3];
    float *buf[MAXL][3] = {{NULL}};
    REQUIRE(c->n_layers <= MAXL);
    test_rng rng = rng_seed(9);
    for (int l = 0; l < c->n_layers; l++) {
        const int dims[3] = {q, kv, kv};
        const zt_tensor **dst[3] = {&m->w.layers[l].bq, &m->w.layers[l].bk, &m->w.layers[l].bv};
        for (int k = 0; k < 3; k++) {
            zt_tensor *t = &bias[l][k];
            memset(t, 0, sizeof *t);
            snprintf(t->name, sizeof t->name, "blk.%d.bias%d", l, k);
            REQUIRE((buf[l][k] = malloc(sizeof(float) * dims[k])) != NULL);
            rng_fill_normal(&rng, buf[l][k], dims[k], 0.5f);
            t->type = ZT_F32, t->n_dims = 1, t->ne[0] = dims[k], t->ne[1] = t->ne[2] = t->ne[3] = 1;
            t->data = buf[l][k], t->nbytes = sizeof(float) * dims[k];
            *dst[k] = t;
        }
    }
    c->sliding_window = 7;
    duo d;
    if (duo_open(&d, m, ZT_KV_F16)) {
        duo_close(&d);
        for (int l = 0; l < MAXL; l++)
            for (int k = 0; k < 3; k++) free(buf[l][k]);
        CHECK(0);
        return;
    }
    double w = scenario(&d);
    fprintf(stderr, "  bias + window 7: worst rel L2 %.2e\n", w);
    CHECK(w >= 0 && w < 3e-2);
    duo_close(&d);
    for (int l = 0; l < MAXL; l++)
        for (int k = 0; k < 3; k++) free(buf[l][k]);
}

/* The step f (one row) under tuning t against ref: every logit poisoned
 * with NaN first, then the largest |got - ref|, infinite where a logit
 * was not written or is not a number, in got or in ref (fmax alone
 * would skip a NaN). -1
 * where the tuning or the forward is refused. */
static double variant_diff(duo *d, const zt_cuda_tuning *t, zt_fwd *f, float *got,
                           const float *ref) {
    zt_error err = {0};
    if (zt_cuda_set_tuning(d->gpu, t, &err) != ZT_OK) return -1;
    for (int v = 0; v < d->vocab; v++) got[v] = NAN;
    f->logits = got;
    if (zt_cuda_backend.forward(d->gpu, f, &err) != ZT_OK) return -1;
    double diff = 0;
    for (int v = 0; v < d->vocab; v++)
        diff =
            isnan(got[v]) || isnan(ref[v]) ? INFINITY : fmax(diff, fabs((double)got[v] - ref[v]));
    return diff;
}

/* Every decode variant computes the same numbers (same device code), and a
 * long context takes several attention splits. */
TEST(test_cuda_decode_variants_agree_over_long_context) {
    duo d;
    if (!duo_start(&d, "tiny", "q4_0", NULL, ZT_KV_F16)) {
        CHECK(0);
        return;
    }
    /* a 300-token prompt in chunks of 60, then decode */
    test_rng rng = rng_seed(11);
    int32_t seq[60], pos[60], tok[60];
    double w = 0;
    for (int c0 = 0; c0 < 300; c0 += 60) {
        for (int i = 0; i < 60; i++)
            seq[i] = 0, pos[i] = c0 + i, tok[i] = (int32_t)(rng_u64(&rng) % 32000);
        w = fmax(w, duo_step(&d, 60, seq, pos, tok));
    }
    int32_t s = 0, p = 300, t = 17, out = 0;
    w = fmax(w, duo_step(&d, 1, &s, &p, &t));
    fprintf(stderr, "  300 positions: worst rel L2 vs cpu %.2e\n", w);
    CHECK(w >= 0 && w < 3e-2);
    float *ref = malloc(sizeof(float) * d.vocab), *got = malloc(sizeof(float) * d.vocab);
    zt_fwd f = {1, &t, &p, &s, d.pt, 1, &out, ref, NULL};
    zt_error err = {0};
    zt_cuda_tuning tu;
    zt_cuda_get_tuning(d.gpu, &tu);
    tu.fuse_wo = 0; /* bit for bit: the fused wo adds by atomics (its own test) */
    CHECK(tu.long_from == 0); /* by default every step is a short one (the long ones: below) */
    CHECK(zt_cuda_set_tuning(d.gpu, &tu, &err) == ZT_OK);
    for (int v = 0; v < d.vocab; v++) ref[v] = NAN; /* variant_diff: every logit written */
    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
    /* the short steps' graph against: graph / one by one, with and without
     * programmatic dependent launch and L2 prefetch (none, ahead, before
     * the wait, both), the pack before or after the first weight loads */
    CHECK(tu.decode_mode == ZT_CUDA_GRAPH);
    for (int k = 0; k < 8; k++) {
        zt_cuda_tuning t2 = tu;
        t2.decode_mode = k < 4 ? ZT_CUDA_GRAPH : ZT_CUDA_PHASES;
        t2.pdl = k % 2;
        t2.pf_mode = k % 4;
        t2.pf_bytes = k == 6 ? 0 : 1 << 16;
        t2.pack_first = k == 1 || k == 2 || k == 5;
        double diff = variant_diff(&d, &t2, &f, got, ref);
        fprintf(stderr, "  decode variant %d: max |diff| %.3g\n", k, diff);
        CHECK(diff == 0);
    }
    /* the persistent and staged modes (2, 3) were removed: refused */
    for (int mode = 2; mode <= 3; mode++) {
        zt_cuda_tuning t2 = tu;
        t2.decode_mode = mode;
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
    }
    /* this step as a long one (tune.long_from: every phase kernel), every
     * pack before the phase's first weight loads, then QKV's after them
     * (the default's long_pack) */
    for (int k = 0; k < 2; k++) {
        zt_cuda_tuning t2 = tu;
        t2.long_from = 16;
        t2.long_pack = k == 0 ? tu.long_pack | 1 : tu.long_pack & ~1; /* bit 0: qkv */
        double diff = variant_diff(&d, &t2, &f, got, ref);
        fprintf(stderr, "  decode as a long step, long_pack %#x: max |diff| %.3g\n", t2.long_pack,
                diff);
        CHECK(diff == 0);
        t2.long_pack = 1 << 2; /* the attention: no weight phase */
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
        t2.long_pack = tu.long_pack, t2.long_from = -1;
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
    }
    /* down's input quantized by each of its blocks instead of once by
     * gate|up's (tune.h_pack), qkv's by each of its blocks instead of once
     * by down's (tune.x_pack), gate|up's instead of once by wo's (tune.
     * g_pack; wo apart: this test's tuning), in a short and in a long step:
     * the same int8 codes and sums, so the same logits bit for bit */
    CHECK(tu.h_pack == 1 && tu.x_pack == 1 && tu.g_pack == 1);
    const char *packs[3] = {"h_pack", "x_pack", "g_pack"};
    for (int k = 0; k < 6; k++) {
        zt_cuda_tuning t2 = tu;
        int *field = k < 2 ? &t2.h_pack : k < 4 ? &t2.x_pack : &t2.g_pack;
        *field = 0;
        t2.long_from = k % 2 ? 16 : 0;
        double diff = variant_diff(&d, &t2, &f, got, ref);
        fprintf(stderr, "  decode without %s, %s step: max |diff| %.3g\n", packs[k / 2],
                k % 2 ? "long" : "short", diff);
        CHECK(diff == 0);
        *field = 2;
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
    }
    /* the attention in the phase kernel, one block an SM, instead of its
     * kernel of its own at two (tune.attn_decode 0), with two items a block
     * (so the same splits), and that kernel with its K/V into registers
     * (1) instead of through per-warp rings (2: this step sees 301
     * positions), in a short and in a long step: the same items and key
     * groups, so the same logits bit for bit */
    CHECK(tu.attn_decode == 2 && tu.attn_items == 1);
    for (int k = 0; k < 4; k++) {
        zt_cuda_tuning t2 = tu;
        t2.attn_decode = k < 2 ? 0 : 1, t2.attn_items = k < 2 ? 2 : 1;
        t2.long_from = k % 2 ? 16 : 0;
        double diff = variant_diff(&d, &t2, &f, got, ref);
        fprintf(stderr, "  the attention %s, %s step: max |diff| %.3g\n",
                k < 2 ? "in the phase kernel" : "with its K/V into registers",
                k % 2 ? "long" : "short", diff);
        CHECK(diff == 0);
        t2.attn_decode = 3;
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
    }
    /* the rings' K/V copies at the default L2 policy instead of
     * evict-first (tune.kv_evict; this step sees 301 positions, so it takes
     * the rings), short and long step: the same bytes, so the same logits
     * bit for bit */
    CHECK(tu.kv_evict == 1);
    for (int k = 0; k < 2; k++) {
        zt_cuda_tuning t2 = tu;
        t2.kv_evict = 0;
        t2.long_from = k ? 16 : 0;
        double diff = variant_diff(&d, &t2, &f, got, ref);
        fprintf(stderr, "  K/V copies at the default L2 policy, %s step: max |diff| %.3g\n",
                k ? "long" : "short", diff);
        CHECK(diff == 0);
        t2.kv_evict = 2;
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_EINVAL);
    }
    /* the attention's splits: one split of all 301 positions (longer than
     * the row-list kernel's 256), and splits of 16 positions aiming at 16
     * items per block; the sums run in another order, so close, not equal */
    const int min_chunk[2] = {1024, 16}, items[2] = {1, 16};
    for (int k = 0; k < 2; k++) {
        zt_cuda_tuning t2 = tu;
        t2.attn_min_chunk = min_chunk[k], t2.attn_items = items[k];
        CHECK(zt_cuda_set_tuning(d.gpu, &t2, &err) == ZT_OK);
        f.logits = got;
        CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
        double e = rel_l2(got, ref, d.vocab);
        fprintf(stderr, "  attention splits of >= %d positions, %d items a block: rel L2 %.2e\n",
                min_chunk[k], items[k], e);
        CHECK(e < 1e-4);
    }
    CHECK(zt_cuda_set_tuning(d.gpu, &tu, &err) == ZT_OK);
    free(ref), free(got);
    duo_close(&d);
}

/* The single-sequence decode with attention and wo in one launch
 * (tune.fuse_wo, attn_wo.cuh) against the phases apart, step by step of a
 * greedy continuation: one launch a layer fewer, logits within float
 * reassociation (each head group adds its part of x += att Wo^T by
 * atomics, in no fixed order), the same tokens; at 2, 4 and 8 Wo slices,
 * for Q4_0, Q4_K + Q6_K, Q8_0 with GQA, F16 and BF16 (float Wo: f32 dot
 * products, no int8 pack); and one key split over 300
 * positions (tune.fold_upto) close to the default's several. */
TEST(test_cuda_fused_attention_wo_matches_phases) {
    const char *cases[5][2] = {{"tiny", "q4_0"},
                               {"tiny", "q4_k_m"},
                               {"llama-tiny", "q8_0"},
                               {"tiny", "f16"},
                               {"tiny", "bf16"}};
    for (int c = 0; c < 5; c++) {
        duo d;
        if (!duo_start(&d, cases[c][0], cases[c][1], NULL, ZT_KV_F16)) {
            CHECK(0);
            return;
        }
        test_rng rng = rng_seed(70 + c);
        int32_t seq[20], pos[20], tok[20];
        for (int i = 0; i < 20; i++)
            seq[i] = 0, pos[i] = i, tok[i] = (int32_t)(rng_u64(&rng) % (uint64_t)d.vocab);
        CHECK(duo_step(&d, 20, seq, pos, tok) >= 0);
        zt_cuda_tuning base, fused;
        zt_cuda_get_tuning(d.gpu, &base);
        base.fuse_wo = 0;
        fused = base;
        fused.fuse_wo = 1;
        float *ref = malloc(sizeof(float) * d.vocab), *got = malloc(sizeof(float) * d.vocab);
        zt_error err = {0};
        int32_t s = 0, p = 20, t = tok[19], out = 0, am_ref = -1, am = -1;
        double worst = 0;
        int same = 1, launches[2] = {0, 0};
        for (int k = 0; k < 12; k++, p++) {
            /* the step apart, then fused: both write the same K/V at p */
            zt_fwd f = {1, &t, &p, &s, d.pt, 1, &out, ref, &am_ref};
            CHECK(zt_cuda_set_tuning(d.gpu, &base, &err) == ZT_OK);
            CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
            launches[0] = zt_cuda_backend.dispatches(d.gpu);
            fused.wo_slices = 2 << (k % 3);
            CHECK(zt_cuda_set_tuning(d.gpu, &fused, &err) == ZT_OK);
            for (int v = 0; v < d.vocab; v++) got[v] = NAN;
            f.logits = got, f.argmax = &am;
            CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
            launches[1] = zt_cuda_backend.dispatches(d.gpu);
            CHECK(launches[1] == launches[0] - d.m->cfg.n_layers);
            worst = fmax(worst, rel_l2(got, ref, d.vocab));
            same &= am == am_ref;
            t = am_ref;
        }
        fprintf(stderr,
                "  fused attention + wo, %s %s: 12 steps, worst rel L2 %.2e, %s tokens, "
                "%d launches against %d\n",
                cases[c][0], cases[c][1], worst, same ? "the same" : "different", launches[1],
                launches[0]);
        CHECK(worst < 1e-5);
        CHECK(same);
        /* 300 positions: one split when fused (fold_upto), several apart */
        for (int i = 0; i < 20 && p < 300; i++) {
            int n = 300 - p < 20 ? 300 - p : 20;
            for (int j = 0; j < n; j++)
                seq[j] = 0, pos[j] = p + j, tok[j] = (int32_t)(rng_u64(&rng) % (uint64_t)d.vocab);
            CHECK(zt_cuda_set_tuning(d.gpu, &base, &err) == ZT_OK);
            zt_fwd f = {n, tok, pos, seq, d.pt, 0, NULL, NULL, NULL};
            CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
            p += n;
        }
        zt_fwd f = {1, &t, &p, &s, d.pt, 1, &out, ref, NULL};
        CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
        launches[0] = zt_cuda_backend.dispatches(d.gpu);
        fused.wo_slices = 4, fused.fold_upto = 1024;
        CHECK(zt_cuda_set_tuning(d.gpu, &fused, &err) == ZT_OK);
        f.logits = got;
        CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
        CHECK(zt_cuda_backend.dispatches(d.gpu) == launches[0] - d.m->cfg.n_layers);
        double e = rel_l2(got, ref, d.vocab);
        fprintf(stderr, "  fused, one split of %d positions: rel L2 %.2e\n", p + 1, e);
        CHECK(e < 1e-4);
        /* bad settings are refused */
        fused.wo_slices = 0;
        CHECK(zt_cuda_set_tuning(d.gpu, &fused, &err) == ZT_EINVAL);
        fused.wo_slices = 4, fused.fold_upto = 4096;
        CHECK(zt_cuda_set_tuning(d.gpu, &fused, &err) == ZT_EINVAL);
        free(ref), free(got);
        duo_close(&d);
    }
}

/* The attention's scores and PV on tensor cores (tune.attn_mma: f16 hi + lo
 * parts of the queries and probabilities; 1, the ring item, and 2, the
 * warp-parallel form, the default) against the FMA form: logits
 * within float reassociation and the same greedy tokens, over a context
 * that takes one key split and one that takes several, for one query head
 * an item (tiny: head_dim 64) and four (llama-tiny: GQA, head_dim 32), and
 * llama-tiny with 2 query heads of 128 dims on one KV head (the
 * warp-parallel form's largest head).
 * F16 weights: with quantized ones the activations that wo reads are
 * rounded to int8, where a 1e-7 difference can flip one rounding and move
 * the logits by ~1e-3 (a Q8_0 model showed 2.45e-3 at one step of 16,
 * deterministically, both forms equally far from the CPU's), which would
 * hide the attention's own agreement. */
TEST(test_cuda_attention_tensor_cores_match_fmas) {
    const char *cases[3][2] = {{"tiny", "f16"}, {"llama-tiny", "f16"}, {"llama-tiny", "f16"}};
    const int heads[3][2] = {{0, 0}, {0, 0}, {2, 1}}; /* the last: head_dim 128 */
    for (int c = 0; c < 3; c++) {
        duo d;
        zt_model *m = make_model_heads(cases[c][0], cases[c][1], NULL, heads[c][0], heads[c][1]);
        if (!m || duo_open(&d, m, ZT_KV_F16)) {
            if (m) duo_close(&d);
            CHECK(0);
            return;
        }
        test_rng rng = rng_seed(90 + c);
        int32_t seq[60], pos[60], tok[60];
        zt_cuda_tuning fma, mma, warps, regs;
        zt_cuda_get_tuning(d.gpu, &warps);
        CHECK(warps.attn_mma == 2 && warps.attn_decode == 2); /* the defaults */
        fma = mma = regs = warps;
        fma.attn_mma = 0, mma.attn_mma = 1, regs.attn_decode = 1;
        float *ref = malloc(sizeof(float) * d.vocab), *got = malloc(sizeof(float) * d.vocab);
        float *got_reg = malloc(sizeof(float) * d.vocab);
        zt_error err = {0};
        double worst[2] = {0, 0}, worst_w[2] = {0, 0}, regs_diff = 0;
        int same = 1, t = 0;
        for (int c0 = 0; c0 < 300; c0 += 60) { /* decode after 60 positions, then after 300 */
            for (int i = 0; i < 60; i++)
                seq[i] = 0, pos[i] = c0 + i, tok[i] = (int32_t)(rng_u64(&rng) % (uint64_t)d.vocab);
            CHECK(duo_step(&d, 60, seq, pos, tok) >= 0);
            if (c0 != 0 && c0 != 240) continue;
            int32_t s = 0, p = c0 + 60, out = 0, am_ref = -1, am = -1;
            t = tok[59];
            for (int k = 0; k < 4; k++, p++) { /* every form writes the same K/V at p */
                zt_fwd f = {1, &t, &p, &s, d.pt, 1, &out, ref, &am_ref};
                CHECK(zt_cuda_set_tuning(d.gpu, &fma, &err) == ZT_OK);
                CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
                CHECK(zt_cuda_set_tuning(d.gpu, &mma, &err) == ZT_OK);
                for (int v = 0; v < d.vocab; v++) got[v] = NAN;
                f.logits = got, f.argmax = &am;
                CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
                worst[c0 != 0] = fmax(worst[c0 != 0], rel_l2(got, ref, d.vocab));
                same &= am == am_ref;
                CHECK(zt_cuda_set_tuning(d.gpu, &warps, &err) == ZT_OK); /* attn_warps.cuh */
                for (int v = 0; v < d.vocab; v++) got[v] = NAN;
                CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
                worst_w[c0 != 0] = fmax(worst_w[c0 != 0], rel_l2(got, ref, d.vocab));
                same &= am == am_ref;
                /* after 300 positions (the attention apart from wo, which
                 * adds in a fixed order; the fused kernel's atomics make
                 * two runs differ by ~1e-7): the same item with its K/V
                 * into registers instead of through per-warp rings (the
                 * default there), bit for bit */
                if (c0 != 0) {
                    CHECK(zt_cuda_set_tuning(d.gpu, &regs, &err) == ZT_OK);
                    for (int v = 0; v < d.vocab; v++) got_reg[v] = NAN;
                    f.logits = got_reg;
                    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
                    for (int v = 0; v < d.vocab; v++)
                        regs_diff =
                            fmax(regs_diff,
                                 isnan(got_reg[v]) ? INFINITY : fabs((double)got_reg[v] - got[v]));
                }
                t = am_ref;
            }
        }
        fprintf(stderr,
                "  attention on tensor cores, %s %s hd %d: worst rel L2 against FMAs %.2e after "
                "60 positions, %.2e after 300; %s tokens\n",
                cases[c][0], cases[c][1], d.m->cfg.head_dim, worst[0], worst[1],
                same ? "the same" : "different");
        fprintf(stderr,
                "  warp-parallel form: %.2e after 60, %.2e after 300; K/V into registers "
                "instead of rings after 300: max |diff| %.3g\n",
                worst_w[0], worst_w[1], regs_diff);
        CHECK(worst[0] < 1e-5 && worst[1] < 1e-5);
        CHECK(worst_w[0] < 1e-5 && worst_w[1] < 1e-5);
        CHECK(regs_diff == 0);
        CHECK(same);
        fma.attn_mma = 3;
        CHECK(zt_cuda_set_tuning(d.gpu, &fma, &err) == ZT_EINVAL);
        free(ref), free(got), free(got_reg);
        duo_close(&d);
    }
}

/* The batched path's attention for rows outside tile runs (one position of
 * each of several sequences, with the decode step off): the warp-parallel
 * form in a kernel of its own (tune.attn_rows 1 and 2) and the ring item
 * (0), each against the CPU within the batched path's F16 bound (its
 * activations are rounded to f16, as run_case's F16 tolerance says), and
 * against each other within 2e-3 with the same greedy tokens: the forms'
 * outputs differ by float reassociation (~1e-7), but the path rounds them
 * to f16 for wo, where that can flip a rounding (2^-11 of a value; seen:
 * 1.6e-4 in the logits at head_dim 128, 0 at 32 and 64). Contexts of one
 * key split (31, 101 positions) and two (271, 301; splits of 256), for the
 * three head shapes of the test above (F16 weights, for its reason). */
TEST(test_cuda_attention_rows_forms_agree) {
    const char *cases[3] = {"tiny", "llama-tiny", "llama-tiny"};
    const int heads[3][2] = {{0, 0}, {0, 0}, {2, 1}}; /* the last: head_dim 128 */
    const int len[4] = {30, 100, 270, 300};
    for (int c = 0; c < 3; c++) {
        duo d;
        zt_model *m = make_model_heads(cases[c], "f16", NULL, heads[c][0], heads[c][1]);
        if (!m || duo_open(&d, m, ZT_KV_F16)) {
            if (m) duo_close(&d);
            CHECK(0);
            return;
        }
        test_rng rng = rng_seed(120 + c);
        zt_error err = {0};
        int32_t seq[64], pos[64], tok[64], out[4] = {0, 1, 2, 3}, am[3][4];
        for (int s = 0; s < 4; s++) /* the prompts on both backends, 64 positions a step */
            for (int p0 = 0; p0 < len[s]; p0 += 64) {
                const int n = len[s] - p0 < 64 ? len[s] - p0 : 64;
                for (int i = 0; i < n; i++)
                    seq[i] = s, pos[i] = p0 + i,
                    tok[i] = (int32_t)(rng_u64(&rng) % (uint64_t)d.vocab);
                CHECK(duo_step(&d, n, seq, pos, tok) >= 0);
            }
        zt_cuda_tuning base;
        zt_cuda_get_tuning(d.gpu, &base);
        const zt_cuda_tuning def = base;
        base.max_decode_rows = 0; /* every step through the batched path */
        float *lg[3];
        double worst = 0, cpu[3];
        int same = 1;
        for (int form = 0; form < 3; form++) {
            zt_cuda_tuning t = base;
            t.attn_rows = form;
            CHECK(zt_cuda_set_tuning(d.gpu, &t, &err) == ZT_OK);
            for (int s = 0; s < 4; s++) seq[s] = s, pos[s] = len[s], tok[s] = 1 + s;
            cpu[form] = duo_step(&d, 4, seq, pos, tok); /* every form writes the same K/V */
            CHECK(cpu[form] >= 0 && cpu[form] < 1e-2);
            lg[form] = malloc(sizeof(float) * 4 * d.vocab);
            for (int v = 0; v < 4 * d.vocab; v++) lg[form][v] = NAN;
            zt_fwd f = {4, tok, pos, seq, d.pt, 4, out, lg[form], am[form]};
            CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
            if (form == 0) continue;
            worst = fmax(worst, rel_l2(lg[form], lg[0], 4 * d.vocab));
            for (int s = 0; s < 4; s++) same &= am[form][s] == am[0][s];
        }
        fprintf(stderr,
                "  attention rows, %s hd %d: rel L2 against the CPU %.2e (ring item), %.2e and "
                "%.2e (warp-parallel kernels); between them %.2e, %s tokens\n",
                cases[c], d.m->cfg.head_dim, cpu[0], cpu[1], cpu[2], worst,
                same ? "the same" : "different");
        CHECK(worst < 2e-3);
        CHECK(same);
        base.attn_rows = 3;
        CHECK(zt_cuda_set_tuning(d.gpu, &base, &err) == ZT_EINVAL);
        /* the decode path's step of the two shorter sequences (< 256
         * positions a row): the K/V into registers, and through the rings
         * as the rows' keys together ask (ring_keys 1): the same values in
         * the same registers, so the same logits bit for bit */
        for (int k = 0; k < 2; k++) {
            zt_cuda_tuning t = def;
            t.ring_keys = k;
            CHECK(zt_cuda_set_tuning(d.gpu, &t, &err) == ZT_OK);
            for (int s = 0; s < 2; s++) seq[s] = s, pos[s] = len[s], tok[s] = 1 + s;
            for (int v = 0; v < 2 * d.vocab; v++) lg[k][v] = NAN;
            zt_fwd f = {2, tok, pos, seq, d.pt, 2, out, lg[k], NULL};
            CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
        }
        int differ = 0; /* NaN (unwritten) differs too */
        for (int v = 0; v < 2 * d.vocab; v++) differ += !(lg[1][v] == lg[0][v]);
        fprintf(stderr, "  2 rows below 256 positions, the rings by their keys: %d logits differ\n",
                differ);
        CHECK(differ == 0);
        base = def, base.ring_keys = -1;
        CHECK(zt_cuda_set_tuning(d.gpu, &base, &err) == ZT_EINVAL);
        for (int form = 0; form < 3; form++) free(lg[form]);
        duo_close(&d);
    }
}

/* The int8 KV cache stays close to the f16 one. */
TEST(test_cuda_kv_q8_close_to_f16) {
    duo d;
    if (!duo_start(&d, "tiny", "q8_0", NULL, ZT_KV_Q8)) {
        CHECK(0);
        return;
    }
    double w = scenario(&d); /* against the CPU's f16 cache */
    fprintf(stderr, "  kv q8: worst rel L2 vs cpu (f16 cache) %.2e\n", w);
    CHECK(w >= 0 && w < 6e-2);
    duo_close(&d);
}

TEST(test_cuda_forward_rejects_bad_rows) {
    duo d;
    if (!duo_start(&d, "tiny", "q4_0", NULL, ZT_KV_F16)) {
        CHECK(0);
        return;
    }
    int32_t s = 0, p = 0, t = d.vocab, out = 0, am = -1;
    zt_fwd f = {1, &t, &p, &s, d.pt, 1, &out, NULL, &am};
    zt_error err = {0};
    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_EINVAL);
    CHECK(strstr(err.msg, "token") != NULL);
    t = 3;
    d.pt[0] = 9999;
    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_EINVAL);
    CHECK(strstr(err.msg, "page") != NULL);
    d.pt[0] = 0;
    p = 24 * 16;
    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_EINVAL);
    p = 0;
    CHECK(zt_cuda_backend.forward(d.gpu, &f, &err) == ZT_OK);
    CHECK(am >= 0 && am < d.vocab);
    duo_close(&d);
}
