/*
 * Kernel tests of the WebGPU backend, run inside the browser (the wasm
 * module exports zt_webgpu_selftest through src/wasm/zt_wasm.c): every
 * WGSL kernel alone on seeded random inputs (never zeros), its output read
 * back and compared with a scalar C reference computed here in double
 * precision — the reference dequantizers of src/quant for the weights, and
 * the arithmetic of the CPU backend (cpu.c) for norm, RoPE, attention,
 * SiLU and argmax. Shapes are deliberately awkward: feature counts that
 * are not multiples of the workgroup, partial rotary dims, grouped-query
 * heads, positions past one 64-key chunk, shuffled KV pages, a sliding
 * window, batches that are not multiples of the 4-row matmul tile.
 *
 * Results: one JSON object per check, {"name", "err", "tol", "ok"}, where
 * err is the largest |got - ref| / max|ref| over the output.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/webgpu/host.h"
#include "backend/webgpu/kernels.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/f16.h"

typedef struct st_ctx {
    wg_device dev;
    char *out;      /* JSON array being written */
    size_t len, cap;
    int failed;
    uint64_t rng;
} st_ctx;

static float st_rand(st_ctx *t) { /* uniform in [-1, 1), xorshift64* */
    t->rng ^= t->rng >> 12, t->rng ^= t->rng << 25, t->rng ^= t->rng >> 27;
    return (float)((t->rng * 0x2545F4914F6CDD1DULL) >> 40) / (float)(1 << 23) - 1.0f;
}

static void st_fill(st_ctx *t, float *v, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) v[i] = st_rand(t) * scale;
}

static void st_report(st_ctx *t, const char *name, double err, double tol) {
    bool ok = err <= tol; /* NaN fails */
    if (!ok) t->failed++;
    char line[256];
    int n = snprintf(line, sizeof line, "%s{\"name\":\"%s\",\"err\":%.3g,\"tol\":%.3g,\"ok\":%s}",
                     t->len > 1 ? "," : "", name, err, tol, ok ? "true" : "false");
    if (t->len + (size_t)n + 2 > t->cap) {
        size_t cap = 2 * t->cap + (size_t)n + 64;
        char *o = realloc(t->out, cap);
        if (!o) return;
        t->out = o;
        t->cap = cap;
    }
    memcpy(t->out + t->len, line, (size_t)n + 1);
    t->len += (size_t)n;
}

/* Largest |got - ref| relative to the largest |ref|. */
static double st_err(const float *got, const double *ref, size_t n) {
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(ref[i]));
    for (size_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - ref[i]) / scale;
        if (!(e <= worst)) worst = e;
    }
    return worst;
}

static uint32_t st_buffer(const void *data, size_t bytes, const char *label) {
    uint32_t b = zt_gpu_buffer_create((uint32_t)((bytes + 15) & ~(size_t)15), ZT_GPU_STORAGE, label);
    if (b && data) zt_gpu_buffer_write(b, 0, data, (uint32_t)bytes);
    return b;
}

/* The batch buffer of common.wgsl for rows of one sequence (seq 0, or the
 * seq array), pages [n_seq][mpps] and the rope table of inv_freq. */
typedef struct st_batch {
    int n_rows, n_out;
    const int32_t *tokens, *pos, *seq, *out_rows, *pages;
    int n_seq, mpps, rope_half;
    const float *inv_freq;
} st_batch;

static uint32_t st_batch_buffer(const st_batch *sb) {
    int B = sb->n_rows;
    size_t words = WG_B_HEADER + 4 * (size_t)B + (size_t)sb->n_seq * sb->mpps +
                   2 * (size_t)B * sb->rope_half;
    uint32_t *w = calloc(words, 4);
    if (!w) return 0;
    uint32_t at = WG_B_HEADER;
    w[WG_B_N_ROWS] = (uint32_t)B, w[WG_B_N_OUT] = (uint32_t)sb->n_out;
    w[WG_B_TOKENS] = at, at += B;
    w[WG_B_POS] = at, at += B;
    w[WG_B_SEQ] = at, at += B;
    w[WG_B_OUT_ROWS] = at, at += B;
    w[WG_B_PAGE_TABLE] = at, at += sb->n_seq * sb->mpps;
    w[WG_B_ROPE] = at;
    w[WG_B_PAGES_PER_SEQ] = (uint32_t)sb->mpps, w[WG_B_PAGE_SIZE] = ZT_KV_PAGE;
    for (int r = 0; r < B; r++) {
        w[w[WG_B_TOKENS] + r] = sb->tokens ? (uint32_t)sb->tokens[r] : 0;
        w[w[WG_B_POS] + r] = sb->pos ? (uint32_t)sb->pos[r] : 0;
        w[w[WG_B_SEQ] + r] = sb->seq ? (uint32_t)sb->seq[r] : 0;
        w[w[WG_B_OUT_ROWS] + r] = sb->out_rows && r < sb->n_out ? (uint32_t)sb->out_rows[r] : 0;
        for (int i = 0; i < sb->rope_half; i++) {
            float angle = (float)(sb->pos ? sb->pos[r] : 0) * sb->inv_freq[i];
            float cs[2] = {cosf(angle), sinf(angle)};
            memcpy(w + at + 2 * ((size_t)r * sb->rope_half + i), cs, 8);
        }
    }
    for (int i = 0; i < sb->n_seq * sb->mpps && sb->pages; i++)
        w[w[WG_B_PAGE_TABLE] + i] = (uint32_t)sb->pages[i];
    uint32_t b = st_buffer(w, 4 * words, "test batch");
    free(w);
    return b;
}

/* Runs one dispatch of kernel/fmt with uniform p and bindings 1 (batch)
 * and binds[], waits, and reads `read_bytes` of buffer `out` into dst. */
static int st_run(st_ctx *t, int kernel, int fmt, const void *p, size_t p_size, uint32_t batch,
                  const zt_gpu_binding *binds, int n_binds, uint32_t gx, uint32_t gy, uint32_t gz,
                  uint32_t out, void *dst, size_t read_bytes, zt_error *err) {
    uint32_t pipeline;
    int rc = wg_pipeline(&t->dev, kernel, fmt, &pipeline, err);
    if (rc) return rc;
    uint32_t u = zt_gpu_buffer_create(WG_UNIFORM_SLOT, ZT_GPU_UNIFORM, "test uniform");
    uint8_t slot[WG_UNIFORM_SLOT] = {0};
    memcpy(slot, p, p_size);
    zt_gpu_buffer_write(u, 0, slot, WG_UNIFORM_SLOT);
    zt_gpu_binding e[8] = {{0, u, 0, 0}, {1, batch, 0, 0}};
    memcpy(e + 2, binds, sizeof *binds * (size_t)n_binds);
    uint32_t group = zt_gpu_bind_group_create(pipeline, e, (uint32_t)(2 + n_binds), "test");
    zt_gpu_dispatch d = {pipeline, group, gx, gy, gz};
    zt_gpu_submit(&d, 1);
    char msg[sizeof err->msg];
    rc = zt_gpu_read(out, 0, (uint32_t)read_bytes, dst) ? zt_fail(err, ZT_EBACKEND, "readback")
         : zt_gpu_check(msg, sizeof msg)                 ? zt_fail(err, ZT_EBACKEND, "%s", msg)
                                                         : ZT_OK;
    zt_gpu_buffer_destroy(u);
    return rc;
}

/* A [n_out][n_in] weight tensor of `type` from random floats (owned data). */
static zt_tensor st_tensor(st_ctx *t, int type, int64_t n_in, int64_t n_out, const char *name) {
    zt_tensor w = {.type = type, .n_dims = 2, .ne = {n_in, n_out, 1, 1}};
    snprintf(w.name, sizeof w.name, "%s", name);
    size_t row = quant_row_bytes(type, n_in);
    float *f = malloc(sizeof(float) * (size_t)n_in);
    void *data = malloc(row * (size_t)n_out);
    if (f && data)
        for (int64_t o = 0; o < n_out; o++) {
            st_fill(t, f, (size_t)n_in, 1.0f);
            quant_quantize_row(type, f, (uint8_t *)data + row * o, n_in);
        }
    free(f);
    w.data = data;
    w.nbytes = data ? row * (size_t)n_out : 0;
    return w;
}

/* Row o of w as the reference dequantizer gives it. */
static void st_row(const zt_tensor *w, int64_t o, float *out) {
    quant_dequant_row(w->type, (const uint8_t *)w->data + quant_row_bytes(w->type, w->ne[0]) * o,
                      out, w->ne[0]);
}

static const char *type_name(int type) { return quant_type_info(type)->name; }

/* ---- the tests ---------------------------------------------------------- */

static int test_matmul(st_ctx *t, int type, int n_rows, bool bias, zt_error *err) {
    const int n_in = 160, n_out = 77; /* n_out: not a multiple of any workgroup */
    zt_tensor wt = st_tensor(t, type, n_in, n_out, "test w");
    float *x = malloc(sizeof(float) * n_rows * n_in), *bv = malloc(sizeof(float) * n_out);
    float *y = malloc(sizeof(float) * n_rows * n_out), *row = malloc(sizeof(float) * n_in);
    double *ref = malloc(sizeof(double) * n_rows * n_out);
    wg_matrix m = {0};
    uint32_t bx = 0, by = 0, bb = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!wt.data || !x || !bv || !y || !row || !ref) goto done;
    st_fill(t, x, (size_t)n_rows * n_in, 1.0f);
    st_fill(t, bv, n_out, 0.5f);
    const zt_tensor *parts[1] = {&wt};
    if ((rc = wg_matrix_upload(&m, parts, 1, "test w", err))) goto done;
    bx = st_buffer(x, sizeof(float) * n_rows * n_in, "test x");
    by = st_buffer(NULL, sizeof(float) * n_rows * n_out, "test y");
    bb = st_buffer(bv, sizeof(float) * n_out, "test bias");
    st_batch sb = {.n_rows = n_rows, .n_seq = 1, .mpps = 1};
    batch = st_batch_buffer(&sb);
    wg_p_matmul p = {n_in, n_out, n_out, WG_B_N_ROWS, bias, m.scales_word, 0, 0};
    zt_gpu_binding binds[] = {{2, m.buf, 0, 0}, {3, bx, 0, 0}, {4, by, 0, 0}, {5, bb, 0, 0}};
    uint32_t gx, gy;
    wg_grid_split(wg_feature_groups(&t->dev, n_out), &gx, &gy);
    if ((rc = st_run(t, WG_MATMUL, m.fmt, &p, sizeof p, batch, binds, 4, gx, gy,
                     (uint32_t)(n_rows + 3) / 4, by, y, sizeof(float) * n_rows * n_out, err)))
        goto done;
    for (int o = 0; o < n_out; o++) {
        st_row(&wt, o, row);
        for (int r = 0; r < n_rows; r++) {
            double s = bias ? bv[o] : 0;
            for (int i = 0; i < n_in; i++) s += (double)row[i] * x[r * n_in + i];
            ref[r * n_out + o] = s;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "matmul %s rows=%d%s", type_name(type), n_rows,
             bias ? " +bias" : "");
    st_report(t, name, st_err(y, ref, (size_t)n_rows * n_out), 2e-6);
done:
    wg_matrix_free(&m);
    uint32_t bufs[] = {bx, by, bb, batch};
    for (int i = 0; i < 4; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free((void *)wt.data), free(x), free(bv), free(y), free(row), free(ref);
    return rc;
}

static int test_ffn(st_ctx *t, int type, int n_rows, zt_error *err) {
    const int n_in = 96, n_ff = 72;
    zt_tensor wg = st_tensor(t, type, n_in, n_ff, "test gate"), wu = st_tensor(t, type, n_in, n_ff, "test up");
    float *x = malloc(sizeof(float) * n_rows * n_in), *h = malloc(sizeof(float) * n_rows * n_ff);
    float *rg = malloc(sizeof(float) * n_in), *ru = malloc(sizeof(float) * n_in);
    double *ref = malloc(sizeof(double) * n_rows * n_ff);
    wg_matrix m = {0};
    uint32_t bx = 0, bh = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!wg.data || !wu.data || !x || !h || !rg || !ru || !ref) goto done;
    st_fill(t, x, (size_t)n_rows * n_in, 1.0f);
    const zt_tensor *parts[2] = {&wg, &wu}; /* separate gate/up, concatenated at upload */
    if ((rc = wg_matrix_upload(&m, parts, 2, "test gate_up", err))) goto done;
    bx = st_buffer(x, sizeof(float) * n_rows * n_in, "test x");
    bh = st_buffer(NULL, sizeof(float) * n_rows * n_ff, "test h");
    st_batch sb = {.n_rows = n_rows, .n_seq = 1, .mpps = 1};
    batch = st_batch_buffer(&sb);
    wg_p_ffn p = {n_in, n_ff, m.scales_word, 0};
    zt_gpu_binding binds[] = {{2, m.buf, 0, 0}, {3, bx, 0, 0}, {4, bh, 0, 0}};
    uint32_t gx, gy;
    wg_grid_split(wg_feature_groups(&t->dev, n_ff), &gx, &gy);
    if ((rc = st_run(t, WG_FFN, m.fmt, &p, sizeof p, batch, binds, 3, gx, gy,
                     (uint32_t)(n_rows + 3) / 4, bh, h, sizeof(float) * n_rows * n_ff, err)))
        goto done;
    for (int o = 0; o < n_ff; o++) {
        st_row(&wg, o, rg);
        st_row(&wu, o, ru);
        for (int r = 0; r < n_rows; r++) {
            double g = 0, u = 0;
            for (int i = 0; i < n_in; i++) g += (double)rg[i] * x[r * n_in + i];
            for (int i = 0; i < n_in; i++) u += (double)ru[i] * x[r * n_in + i];
            ref[r * n_ff + o] = g / (1 + exp(-g)) * u;
        }
    }
    char name[96];
    snprintf(name, sizeof name, "ffn %s rows=%d", type_name(type), n_rows);
    st_report(t, name, st_err(h, ref, (size_t)n_rows * n_ff), 4e-6);
done:
    wg_matrix_free(&m);
    uint32_t bufs[] = {bx, bh, batch};
    for (int i = 0; i < 3; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free((void *)wg.data), free((void *)wu.data), free(x), free(h), free(rg), free(ru), free(ref);
    return rc;
}

static int test_embed(st_ctx *t, int type, zt_error *err) {
    const int dim = 128, vocab = 50, n_rows = 3;
    const int32_t tokens[3] = {7, 0, 49};
    zt_tensor wt = st_tensor(t, type, dim, vocab, "test table");
    float *x = malloc(sizeof(float) * n_rows * dim), *row = malloc(sizeof(float) * dim);
    double *ref = malloc(sizeof(double) * n_rows * dim);
    wg_matrix m = {0};
    uint32_t bx = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!wt.data || !x || !row || !ref) goto done;
    const zt_tensor *parts[1] = {&wt};
    if ((rc = wg_matrix_upload(&m, parts, 1, "test table", err))) goto done;
    bx = st_buffer(NULL, sizeof(float) * n_rows * dim, "test x");
    st_batch sb = {.n_rows = n_rows, .tokens = tokens, .n_seq = 1, .mpps = 1};
    batch = st_batch_buffer(&sb);
    wg_p_embed p = {dim, m.scales_word, 0, 0};
    zt_gpu_binding binds[] = {{2, m.buf, 0, 0}, {3, bx, 0, 0}};
    if ((rc = st_run(t, WG_EMBED, m.fmt, &p, sizeof p, batch, binds, 2, n_rows, 1, 1, bx, x,
                     sizeof(float) * n_rows * dim, err)))
        goto done;
    for (int r = 0; r < n_rows; r++) {
        st_row(&wt, tokens[r], row);
        for (int i = 0; i < dim; i++) ref[r * dim + i] = row[i];
    }
    char name[64];
    snprintf(name, sizeof name, "embed %s", type_name(type));
    st_report(t, name, st_err(x, ref, (size_t)n_rows * dim), 0);
done:
    wg_matrix_free(&m);
    if (bx) zt_gpu_buffer_destroy(bx);
    if (batch) zt_gpu_buffer_destroy(batch);
    free((void *)wt.data), free(x), free(row), free(ref);
    return rc;
}

/* add / gather as the forward pass uses them. */
static int test_norm(st_ctx *t, bool add, bool gather, zt_error *err) {
    const int dim = 200, n_rows = 5, n_out = 2;
    const int32_t out_rows[2] = {1, 4};
    int n = gather ? n_out : n_rows;
    float *x = malloc(sizeof(float) * n_rows * dim), *d = malloc(sizeof(float) * n_rows * dim);
    float *g = malloc(sizeof(float) * dim), *xn = malloc(sizeof(float) * n_rows * dim);
    float *xb = malloc(sizeof(float) * n_rows * dim);
    double *ref = malloc(sizeof(double) * n_rows * dim), *ref_x = malloc(sizeof(double) * n_rows * dim);
    uint32_t bx = 0, bd = 0, bg = 0, bn = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!x || !d || !g || !xn || !xb || !ref || !ref_x) goto done;
    st_fill(t, x, (size_t)n_rows * dim, 2.0f);
    st_fill(t, d, (size_t)n_rows * dim, 1.0f);
    st_fill(t, g, dim, 1.0f);
    bx = st_buffer(x, sizeof(float) * n_rows * dim, "test x");
    bd = st_buffer(d, sizeof(float) * n_rows * dim, "test d");
    bg = st_buffer(g, sizeof(float) * dim, "test gamma");
    bn = st_buffer(NULL, sizeof(float) * n_rows * dim, "test xn");
    st_batch sb = {.n_rows = n_rows, .n_out = n_out, .out_rows = out_rows, .n_seq = 1, .mpps = 1};
    batch = st_batch_buffer(&sb);
    const float eps = 1e-5f;
    wg_p_norm p = {dim, eps, add, gather};
    zt_gpu_binding binds[] = {{2, bx, 0, 0}, {3, bd, 0, 0}, {4, bg, 0, 0}, {5, bn, 0, 0}};
    if ((rc = st_run(t, WG_ADD_RMSNORM, WG_FMT_NONE, &p, sizeof p, batch, binds, 4, n, 1, 1, bn,
                     xn, sizeof(float) * n * dim, err)) ||
        (rc = zt_gpu_read(bx, 0, sizeof(float) * n_rows * dim, xb) ? ZT_EBACKEND : ZT_OK))
        goto done;
    for (int r = 0; r < n_rows; r++)
        for (int i = 0; i < dim; i++)
            ref_x[r * dim + i] = add && !gather ? x[r * dim + i] + d[r * dim + i] : x[r * dim + i];
    for (int i = 0; i < n; i++) {
        int src = gather ? out_rows[i] : i;
        double ss = 0, v[200];
        for (int k = 0; k < dim; k++) {
            v[k] = (double)x[src * dim + k] + (add ? d[src * dim + k] : 0);
            ss += v[k] * v[k];
        }
        double scale = 1.0 / sqrt(ss / dim + eps);
        for (int k = 0; k < dim; k++) ref[i * dim + k] = v[k] * scale * g[k];
    }
    char name[64];
    snprintf(name, sizeof name, "add_rmsnorm%s%s", add ? " add" : "", gather ? " gather" : "");
    st_report(t, name, st_err(xn, ref, (size_t)n * dim), 2e-6);
    snprintf(name, sizeof name, "add_rmsnorm%s%s residual", add ? " add" : "", gather ? " gather" : "");
    st_report(t, name, st_err(xb, ref_x, (size_t)n_rows * dim), 1e-7);
done:;
    uint32_t bufs[] = {bx, bd, bg, bn, batch};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free(x), free(d), free(g), free(xn), free(xb), free(ref), free(ref_x);
    return rc;
}

/* The KV test layout: 2 sequences, 6 pages each of a 16-page pool, pages
 * handed out in a shuffled order. */
#define ST_PAGES 16
#define ST_MPPS 6
static const int32_t st_pages[2 * ST_MPPS] = {9, 3, 14, 0, 11, 6, 2, 15, 7, 12, 4, 10};

static double st_kv_round(double v, bool f16) { return f16 ? zt_f16_to_f32(zt_f32_to_f16((float)v)) : v; }

static int test_rope_kv(st_ctx *t, bool interleaved, bool kv_f16, zt_error *err) {
    enum { HD = 24, NH = 4, NKV = 2, ROPE = 16, ROWS = 3 };
    const int q_dim = NH * HD, kv_dim = NKV * HD, qkv_dim = q_dim + 2 * kv_dim;
    const int32_t pos[ROWS] = {0, 17, 66}, seq[ROWS] = {0, 1, 1};
    float inv_freq[ROPE / 2];
    for (int i = 0; i < ROPE / 2; i++) inv_freq[i] = powf(10000.0f, -2.0f * i / ROPE);
    size_t slots = (size_t)ST_PAGES * ZT_KV_PAGE;
    float *qkv = malloc(sizeof(float) * ROWS * qkv_dim), *q = malloc(sizeof(float) * ROWS * q_dim);
    float *kc = calloc(slots * kv_dim, sizeof(float)), *vc = calloc(slots * kv_dim, sizeof(float));
    double *ref = malloc(sizeof(double) * ROWS * (q_dim + 2 * kv_dim));
    float *got = malloc(sizeof(float) * ROWS * (q_dim + 2 * kv_dim));
    uint32_t bqkv = 0, bq = 0, bk = 0, bv = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!qkv || !q || !kc || !vc || !ref || !got) goto done;
    st_fill(t, qkv, (size_t)ROWS * qkv_dim, 1.0f);
    t->dev.kv_f16 = kv_f16;
    wg_device_reset(&t->dev);
    bool f16_store = kv_f16 && t->dev.f16; /* the f16 path stores halves */
    size_t elem = f16_store ? 2 : 4;
    bqkv = st_buffer(qkv, sizeof(float) * ROWS * qkv_dim, "test qkv");
    bq = st_buffer(NULL, sizeof(float) * ROWS * q_dim, "test q");
    bk = st_buffer(NULL, slots * kv_dim * elem, "test k cache");
    bv = st_buffer(NULL, slots * kv_dim * elem, "test v cache");
    st_batch sb = {.n_rows = ROWS, .pos = pos, .seq = seq, .pages = st_pages, .n_seq = 2,
                   .mpps = ST_MPPS, .rope_half = ROPE / 2, .inv_freq = inv_freq};
    batch = st_batch_buffer(&sb);
    wg_p_rope p = {HD, ROPE, interleaved, q_dim, kv_dim, qkv_dim, 0, 0};
    zt_gpu_binding binds[] = {{2, bqkv, 0, 0}, {3, bq, 0, 0}, {4, bk, 0, 0}, {5, bv, 0, 0}};
    if ((rc = st_run(t, WG_ROPE_KV, WG_FMT_NONE, &p, sizeof p, batch, binds, 4, ROWS, 1, 1, bq, q,
                     sizeof(float) * ROWS * q_dim, err)))
        goto done;
    void *kh = malloc(slots * kv_dim * elem), *vh = malloc(slots * kv_dim * elem);
    if (!kh || !vh || zt_gpu_read(bk, 0, (uint32_t)(slots * kv_dim * elem), kh) ||
        zt_gpu_read(bv, 0, (uint32_t)(slots * kv_dim * elem), vh)) {
        free(kh), free(vh);
        rc = zt_fail(err, ZT_EBACKEND, "readback");
        goto done;
    }
    for (size_t i = 0; i < slots * kv_dim; i++) {
        kc[i] = f16_store ? zt_f16_to_f32(((uint16_t *)kh)[i]) : ((float *)kh)[i];
        vc[i] = f16_store ? zt_f16_to_f32(((uint16_t *)vh)[i]) : ((float *)vh)[i];
    }
    free(kh), free(vh);
    /* reference: cpu.c's rope on (q, k), then the cache writes */
    size_t at = 0;
    for (int r = 0; r < ROWS; r++) {
        double v[4 * HD * 4];
        const float *in = qkv + (size_t)r * qkv_dim;
        for (int e = 0; e < qkv_dim; e++) v[e] = in[e];
        for (int h = 0; h < NH + NKV; h++)
            for (int i = 0; i < ROPE / 2; i++) {
                float angle = (float)pos[r] * inv_freq[i];
                double cs = cosf(angle), sn = sinf(angle);
                int a = h * HD + (interleaved ? 2 * i : i), b = h * HD + (interleaved ? 2 * i + 1 : i + ROPE / 2);
                double x0 = in[a], x1 = in[b];
                v[a] = x0 * cs - x1 * sn;
                v[b] = x0 * sn + x1 * cs;
            }
        int page = st_pages[seq[r] * ST_MPPS + pos[r] / ZT_KV_PAGE];
        size_t slot = ((size_t)page * ZT_KV_PAGE + pos[r] % ZT_KV_PAGE) * kv_dim;
        for (int e = 0; e < q_dim; e++) got[at] = q[r * q_dim + e], ref[at++] = v[e];
        for (int e = 0; e < kv_dim; e++)
            got[at] = kc[slot + e], ref[at++] = st_kv_round(v[q_dim + e], kv_f16);
        for (int e = 0; e < kv_dim; e++)
            got[at] = vc[slot + e], ref[at++] = st_kv_round(v[q_dim + kv_dim + e], kv_f16);
    }
    char name[96];
    snprintf(name, sizeof name, "rope_kv %s kv=%s", interleaved ? "interleaved" : "rotate-half",
             kv_f16 ? "f16" : "f32");
    /* f16 KV: the GPU's f32 -> f16 conversion may round the other way (1 ulp) */
    st_report(t, name, st_err(got, ref, at), kv_f16 ? 1e-3 : 2e-6);
done:;
    uint32_t bufs[] = {bqkv, bq, bk, bv, batch};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free(qkv), free(q), free(kc), free(vc), free(ref), free(got);
    return rc;
}

static int test_attention(st_ctx *t, int window, bool kv_f16, zt_error *err) {
    enum { HD = 40, NH = 6, NKV = 2, ROWS = 4 };
    const int q_dim = NH * HD, kv_dim = NKV * HD;
    const int32_t pos[ROWS] = {0, 1, 70, 95}, seq[ROWS] = {1, 1, 0, 0};
    size_t slots = (size_t)ST_PAGES * ZT_KV_PAGE;
    t->dev.kv_f16 = kv_f16;
    t->dev.head_dim = HD;
    wg_device_reset(&t->dev);
    bool f16_store = kv_f16 && t->dev.f16;
    size_t elem = f16_store ? 2 : 4;
    float *q = malloc(sizeof(float) * ROWS * q_dim), *kc = malloc(sizeof(float) * slots * kv_dim);
    float *vc = malloc(sizeof(float) * slots * kv_dim), *out = malloc(sizeof(float) * ROWS * q_dim);
    uint16_t *kh = malloc(2 * slots * kv_dim), *vh = malloc(2 * slots * kv_dim);
    double *ref = malloc(sizeof(double) * ROWS * q_dim), *s = malloc(sizeof(double) * 128);
    uint32_t bq = 0, bk = 0, bv = 0, bo = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!q || !kc || !vc || !out || !kh || !vh || !ref || !s) goto done;
    st_fill(t, q, (size_t)ROWS * q_dim, 1.0f);
    st_fill(t, kc, slots * kv_dim, 1.0f);
    st_fill(t, vc, slots * kv_dim, 1.0f);
    for (size_t i = 0; i < slots * kv_dim && kv_f16; i++) { /* the cache holds f16 values */
        kh[i] = zt_f32_to_f16(kc[i]), kc[i] = zt_f16_to_f32(kh[i]);
        vh[i] = zt_f32_to_f16(vc[i]), vc[i] = zt_f16_to_f32(vh[i]);
    }
    bq = st_buffer(q, sizeof(float) * ROWS * q_dim, "test q");
    bk = st_buffer(f16_store ? (void *)kh : (void *)kc, slots * kv_dim * elem, "test k cache");
    bv = st_buffer(f16_store ? (void *)vh : (void *)vc, slots * kv_dim * elem, "test v cache");
    bo = st_buffer(NULL, sizeof(float) * ROWS * q_dim, "test out");
    st_batch sb = {.n_rows = ROWS, .pos = pos, .seq = seq, .pages = st_pages, .n_seq = 2,
                   .mpps = ST_MPPS};
    batch = st_batch_buffer(&sb);
    wg_p_attention p = {NH, NKV, HD, q_dim, kv_dim, (uint32_t)window, 1.0f / sqrtf((float)HD), 0};
    zt_gpu_binding binds[] = {{2, bq, 0, 0}, {3, bk, 0, 0}, {4, bv, 0, 0}, {5, bo, 0, 0}};
    if ((rc = st_run(t, WG_ATTENTION, WG_FMT_NONE, &p, sizeof p, batch, binds, 4, NH, ROWS, 1, bo,
                     out, sizeof(float) * ROWS * q_dim, err)))
        goto done;
    for (int r = 0; r < ROWS; r++)
        for (int h = 0; h < NH; h++) {
            int kvh = h / (NH / NKV), lo = window > 0 && pos[r] + 1 > window ? pos[r] + 1 - window : 0;
            double mx = -1e300, sum = 0;
            for (int tk = lo; tk <= pos[r]; tk++) {
                size_t slot = ((size_t)st_pages[seq[r] * ST_MPPS + tk / ZT_KV_PAGE] * ZT_KV_PAGE +
                               tk % ZT_KV_PAGE) * kv_dim + kvh * HD;
                double d = 0;
                for (int i = 0; i < HD; i++) d += (double)q[r * q_dim + h * HD + i] * kc[slot + i];
                s[tk - lo] = d / sqrt((double)HD);
                mx = fmax(mx, s[tk - lo]);
            }
            for (int tk = lo; tk <= pos[r]; tk++) sum += s[tk - lo] = exp(s[tk - lo] - mx);
            for (int i = 0; i < HD; i++) {
                double a = 0;
                for (int tk = lo; tk <= pos[r]; tk++) {
                    size_t slot = ((size_t)st_pages[seq[r] * ST_MPPS + tk / ZT_KV_PAGE] * ZT_KV_PAGE +
                                   tk % ZT_KV_PAGE) * kv_dim + kvh * HD;
                    a += s[tk - lo] / sum * vc[slot + i];
                }
                ref[r * q_dim + h * HD + i] = a;
            }
        }
    char name[96];
    snprintf(name, sizeof name, "attention window=%d kv=%s", window, kv_f16 ? "f16" : "f32");
    st_report(t, name, st_err(out, ref, (size_t)ROWS * q_dim), 4e-6);
done:;
    uint32_t bufs[] = {bq, bk, bv, bo, batch};
    for (int i = 0; i < 5; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free(q), free(kc), free(vc), free(out), free(kh), free(vh), free(ref), free(s);
    return rc;
}

static int test_argmax(st_ctx *t, zt_error *err) {
    enum { VOCAB = 1000, N = 3 };
    const int32_t want[N] = {0, 517, 999}, tie = 733; /* row 1: 517 and 733 tie */
    float *lg = malloc(sizeof(float) * N * VOCAB);
    uint32_t got[N] = {0}, bl = 0, bo = 0, batch = 0;
    int rc = ZT_ENOMEM;
    if (!lg) goto done;
    st_fill(t, lg, (size_t)N * VOCAB, 4.0f);
    for (int r = 0; r < N; r++) lg[r * VOCAB + want[r]] = 9.5f;
    lg[1 * VOCAB + tie] = 9.5f;
    bl = st_buffer(lg, sizeof(float) * N * VOCAB, "test logits");
    bo = st_buffer(NULL, sizeof(got), "test best");
    st_batch sb = {.n_rows = N, .n_out = N, .n_seq = 1, .mpps = 1};
    batch = st_batch_buffer(&sb);
    wg_p_argmax p = {VOCAB, 0, 0, 0};
    zt_gpu_binding binds[] = {{2, bl, 0, 0}, {3, bo, 0, 0}};
    if ((rc = st_run(t, WG_ARGMAX, WG_FMT_NONE, &p, sizeof p, batch, binds, 2, N, 1, 1, bo, got,
                     sizeof got, err)))
        goto done;
    int wrong = 0;
    for (int r = 0; r < N; r++) wrong += got[r] != (uint32_t)want[r];
    st_report(t, "argmax (ties to the lowest index)", wrong, 0);
done:;
    uint32_t bufs[] = {bl, bo, batch};
    for (int i = 0; i < 3; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    free(lg);
    return rc;
}

/* Runs every kernel test with the given feature choices; returns a JSON
 * array (malloc'd, caller frees) or NULL with err set. */
char *zt_webgpu_selftest(bool allow_f16, bool allow_subgroups, int split, uint64_t seed,
                         int *n_failed, zt_error *err) {
    st_ctx t = {.rng = seed * 0x9E3779B97F4A7C15ULL + 1};
    if (!(zt_gpu_features() & ZT_GPU_HAVE_DEVICE)) {
        zt_fail(err, ZT_EBACKEND, "no WebGPU device");
        return NULL;
    }
    wg_device_init(&t.dev, allow_f16, allow_subgroups, split, false, 0);
    t.cap = 256;
    if (!(t.out = malloc(t.cap))) return NULL;
    strcpy(t.out, "[");
    t.len = 1;
    static const int types[] = {ZT_F32, ZT_F16, ZT_Q8_0, ZT_Q4_0};
    int rc = ZT_OK;
    for (int i = 0; i < 4 && !rc; i++) {
        rc = test_matmul(&t, types[i], 1, false, err);
        if (!rc) rc = test_matmul(&t, types[i], 6, i == 0, err);
        if (!rc) rc = test_ffn(&t, types[i], i % 2 ? 5 : 1, err);
        if (!rc) rc = test_embed(&t, types[i], err);
    }
    for (int m = 0; m < 3 && !rc; m++) rc = test_norm(&t, m > 0, m == 2, err);
    for (int m = 0; m < 4 && !rc; m++) rc = test_rope_kv(&t, m & 1, m >= 2, err);
    if (!rc) rc = test_attention(&t, 0, false, err);
    if (!rc) rc = test_attention(&t, 37, false, err);
    if (!rc) rc = test_attention(&t, 0, true, err);
    if (!rc) rc = test_argmax(&t, err);
    if (rc) {
        if (err && !err->msg[0]) zt_fail(err, rc, "webgpu self-test: out of memory");
        free(t.out);
        return NULL;
    }
    strcpy(t.out + t.len, "]");
    *n_failed = t.failed;
    return t.out;
}

/* ---- shader texts --------------------------------------------------------- */

/* Appends s to the JSON buffer as a string literal. */
static void json_str(st_ctx *t, const char *s) {
    size_t need = t->len + 2 * strlen(s) + 8;
    if (need > t->cap) {
        char *o = realloc(t->out, 2 * need);
        if (!o) return;
        t->out = o;
        t->cap = 2 * need;
    }
    char *at = t->out + t->len;
    *at++ = '"';
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') *at++ = '\\', *at++ = *s;
        else if (*s == '\n') *at++ = '\\', *at++ = 'n';
        else *at++ = *s;
    }
    *at++ = '"';
    *at = 0;
    t->len = (size_t)(at - t->out);
}

static void json_raw(st_ctx *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        char *o = realloc(t->out, 2 * (t->len + n + 1));
        if (!o) return;
        t->out = o;
        t->cap = 2 * (t->len + n + 1);
    }
    memcpy(t->out + t->len, s, n + 1);
    t->len += n;
}

char *zt_webgpu_shaders(bool allow_f16, bool allow_subgroups, int split, bool kv_f16) {
    st_ctx t = {0};
    wg_device_init(&t.dev, allow_f16, allow_subgroups, split, kv_f16, 40);
    json_raw(&t, "[");
    for (int k = 0; k < WG_KERNEL_COUNT; k++) {
        bool weights = k == WG_EMBED || k == WG_MATMUL || k == WG_FFN;
        for (int fmt = weights ? WG_FMT_F32 : WG_FMT_NONE; fmt < (weights ? WG_FMT_COUNT : 1); fmt++) {
            char label[64], num[64];
            wg_pipeline_label(k, fmt, label, sizeof label);
            size_t len;
            char *src = wg_shader_source(&t.dev, k, fmt, &len);
            const char *names[2];
            double values[2];
            int n = wg_pipeline_constants(&t.dev, k, names, values);
            json_raw(&t, t.len > 1 ? ",{\"label\":" : "{\"label\":");
            json_str(&t, label);
            json_raw(&t, ",\"constants\":{");
            for (int i = 0; i < n; i++) {
                snprintf(num, sizeof num, "%s\"%s\":%g", i ? "," : "", names[i], values[i]);
                json_raw(&t, num);
            }
            json_raw(&t, "},\"code\":");
            json_str(&t, src ? src : "");
            json_raw(&t, "}");
            free(src);
        }
    }
    json_raw(&t, "]");
    return t.out;
}
