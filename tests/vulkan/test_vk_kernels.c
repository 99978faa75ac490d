/*
 * Every Vulkan shader against the CPU reference on random data, in both
 * shader builds (fast: subgroups, 16-bit storage, integer dot product;
 * portable: none of them). Outputs are poisoned (NaN) before each dispatch
 * and every element is checked, so an element a shader fails to write
 * fails the test; elements it must not write are checked to keep the
 * poison.
 *
 * References: quant_dequant_row (embed), cpu_matmul — the CPU backend's
 * matmul, which defines the arithmetic the GPU reproduces (int8 activation
 * codes per 32 inputs for quantized weights) — with the CPU backend's
 * rmsnorm and RoPE formulas, and attention / argmax / int8 rounding
 * written out here in double.
 */
#include "../test.h"
#include "../unit/rng.h"
#include "backend/cpu/kernels.h"
#include "backend/vulkan/vk.h"
#include "quant/quant.h"
#include "util/f16.h"
#include "vk_test.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

#define NAN_BITS 0x7fc00000u
#define POISON16 0xffffffffu /* two f16 NaNs */

static const int all_types[] = {ZT_F32, ZT_F16, ZT_BF16, ZT_Q8_0, ZT_Q4_0, ZT_Q4_K, ZT_Q6_K};

static int round32(int n) { return (n + 31) / 32 * 32; }

static bool is_quant(int type) { return type != ZT_F32 && type != ZT_F16 && type != ZT_BF16; }

/* Tolerance relative to the largest output. Float weights: summation order
 * only. Quantized weights: the int8 codes of the activations are the
 * CPU's except where x / d lands within an ulp of a rounding tie and the
 * device's division or the fused norm rounds it the other way; one such
 * code moves an output by about (max|w| max|x| / 127) / max|y|, ~1e-3 on
 * these sizes. */
static double tol_of(int type) { return is_quant(type) ? 3e-3 : 1e-5; }

/* A random [n][k] matrix of `type` (values normal * 0.5) in file layout. */
static bool make_tensor(zt_tensor *t, int type, int k, int n, test_rng *r) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "test.%s", quant_type_info(type)->name);
    t->type = type;
    t->n_dims = 2;
    t->ne[0] = k;
    t->ne[1] = n;
    t->nbytes = quant_row_bytes(type, k) * (size_t)n;
    void *data = malloc(t->nbytes);
    float *row = malloc(sizeof(float) * (size_t)k);
    if (!data || !row) {
        free(data), free(row);
        return false;
    }
    for (int o = 0; o < n; o++) {
        rng_fill_normal(r, row, k, 0.5f);
        char *dst = (char *)data + quant_row_bytes(type, k) * (size_t)o;
        if (type == ZT_F32)
            memcpy(dst, row, sizeof(float) * (size_t)k);
        else if (type == ZT_F16)
            for (int i = 0; i < k; i++) ((uint16_t *)dst)[i] = zt_f32_to_f16(row[i]);
        else if (type == ZT_BF16)
            for (int i = 0; i < k; i++) ((uint16_t *)dst)[i] = zt_f32_to_bf16(row[i]);
        else
            quant_quantize_row(type, row, dst, k);
    }
    free(row);
    t->data = data;
    return true;
}

/* y[r][o] = W[o] . x[r] through the CPU backend's matmul. */
static void cpu_reference(const zt_tensor *t, const float *x, int rows, float *y) {
    cpu_pool *pool = cpu_pool_create(1);
    cpu_matrix m;
    zt_error err = {0};
    if (cpu_matrix_init(&m, t, &err) == ZT_OK) {
        cpu_matmul(pool, &m, x, rows, y, (int)t->ne[1]);
        cpu_matrix_free(&m);
    }
    cpu_pool_free(pool);
}

static void cpu_rmsnorm(float *out, const float *x, const float *gamma, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * gamma[i];
}

static const char *build_name(bool portable) { return portable ? "portable" : "fast"; }

static vk_ctx *ctx_or_fail(bool portable, int *test_failed_) {
    vk_ctx *c = vt_ctx(portable);
    if (!c)
        *test_failed_ = 1;
    else if (!portable && !c->fast)
        fprintf(stderr, "  note: this device lacks the fast build's features\n");
    return c;
}

/* A step buffer: tokens, pos, seq, out rows (each mb long), page table. */
static bool make_step(vk_ctx *c, vk_buf *b, int mb, const int *tokens, const int *pos,
                      const int *seq, const int *out_rows, int n_rows, int n_out, const int *pages,
                      int n_page_ints) {
    int n = 4 * mb + n_page_ints;
    int32_t *s = malloc(sizeof(int32_t) * (size_t)n);
    if (!s) return false;
    for (int i = 0; i < n; i++) s[i] = -1;
    for (int i = 0; i < n_rows; i++) {
        if (tokens) s[VK_STEP_TOKENS * mb + i] = tokens[i];
        if (pos) s[VK_STEP_POS * mb + i] = pos[i];
        if (seq) s[VK_STEP_SEQ * mb + i] = seq[i];
    }
    for (int i = 0; i < n_out; i++) s[VK_STEP_OUT * mb + i] = out_rows[i];
    for (int i = 0; i < n_page_ints; i++) s[VK_STEP_PAGES * mb + i] = pages[i];
    bool ok = vt_buf(c, b, sizeof(int32_t) * (size_t)n, s, 0);
    free(s);
    return ok;
}

/* ---- embed ------------------------------------------------------------------------ */

static void check_embed(bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(11);
    const int tokens[] = {7, 0, 49, 7, 23};
    int n_rows = 5, vocab = 50;
    for (size_t ti = 0; ti < sizeof all_types / sizeof all_types[0]; ti++) {
        int type = all_types[ti];
        int dim = is_quant(type) ? 512 : 72; /* 72: rows padded to whole units */
        int xs = round32(dim);
        zt_tensor t;
        vk_matrix m;
        vk_buf step, x;
        zt_error err = {0};
        REQUIRE(make_tensor(&t, type, dim, vocab, &r));
        const zt_tensor *parts[] = {&t};
        REQUIRE(vk_matrix_upload(c, &m, parts, 1, -1, &err) == ZT_OK);
        REQUIRE(make_step(c, &step, 8, tokens, NULL, NULL, NULL, n_rows, 0, NULL, 0));
        REQUIRE(vt_buf(c, &x, sizeof(float) * 8 * xs, NULL, NAN_BITS));
        vk_shape s = {.dim = dim, .xs = xs, .max_batch = 8};
        vk_dispatch d;
        REQUIRE(vk_k_embed(c, &s, &m, &step, &x, n_rows, &d, &err) == ZT_OK);
        REQUIRE(vk_run(c, &d, 1, &err) == ZT_OK);
        float *got = malloc(sizeof(float) * 8 * xs), *want = calloc((size_t)8 * xs, sizeof(float));
        REQUIRE(got && want && vt_get(c, &x, got, sizeof(float) * 8 * xs));
        for (int i = 0; i < n_rows; i++)
            quant_dequant_row(type, (const char *)t.data + quant_row_bytes(type, dim) * tokens[i],
                              want + (size_t)i * xs, dim);
        char what[64];
        snprintf(what, sizeof what, "embed %s (%s)", quant_type_info(type)->name,
                 build_name(portable));
        CHECK(vt_close(what, got, want, (size_t)n_rows * xs, 1e-6));
        for (size_t i = (size_t)n_rows * xs; i < (size_t)8 * xs; i++) CHECK(isnan(got[i]));
        free(got), free(want), free((void *)t.data);
        vk_matrix_free(c, &m), vk_buf_free(c, &step), vk_buf_free(c, &x);
    }
}

TEST(test_vk_embed_matches_reference_dequant) {
    check_embed(false, test_failed_);
    check_embed(true, test_failed_);
}

/* ---- matmul ----------------------------------------------------------------------- */

/* x[r] += W a[r] for `rows` activation rows; every element of x checked
 * (its padding columns must keep their values). */
static void check_matmul(int type, int k, int n, int rows, bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(100 + type * 7 + rows);
    int kp = round32(k), xs = round32(n) + 32;
    zt_tensor t;
    vk_matrix m;
    vk_buf act, x;
    zt_error err = {0};
    if (!make_tensor(&t, type, k, n, &r)) {
        *test_failed_ = 1;
        return;
    }
    const zt_tensor *parts[] = {&t};
    float *a = calloc((size_t)rows * kp, sizeof(float)),
          *a_tight = malloc(sizeof(float) * rows * k);
    float *x0 = malloc(sizeof(float) * rows * xs), *got = malloc(sizeof(float) * rows * xs);
    float *y = malloc(sizeof(float) * rows * n);
    for (int i = 0; i < rows; i++) {
        rng_fill_normal(&r, a_tight + (size_t)i * k, k, 1.0f);
        memcpy(a + (size_t)i * kp, a_tight + (size_t)i * k, sizeof(float) * k);
    }
    rng_fill_normal(&r, x0, (int64_t)rows * xs, 1.0f);
    if (vk_matrix_upload(c, &m, parts, 1, -1, &err) ||
        !vt_buf(c, &act, sizeof(float) * rows * kp, a, 0) ||
        !vt_buf(c, &x, sizeof(float) * rows * xs, x0, 0)) {
        fprintf(stderr, "  %s\n", err.msg);
        *test_failed_ = 1;
        return;
    }
    vk_shape s = {0};
    vk_dispatch d;
    if (vk_k_matmul(c, &s, &m, &act, &x, xs, rows, &d, &err) || vk_run(c, &d, 1, &err) ||
        !vt_get(c, &x, got, sizeof(float) * rows * xs)) {
        fprintf(stderr, "  %s\n", err.msg);
        *test_failed_ = 1;
    } else {
        cpu_reference(&t, a_tight, rows, y);
        for (int i = 0; i < rows; i++)
            for (int o = 0; o < n; o++) x0[(size_t)i * xs + o] += y[(size_t)i * n + o];
        char what[96];
        snprintf(what, sizeof what, "matmul %s k %d rows %d (%s)", quant_type_info(type)->name, k,
                 rows, build_name(portable));
        if (!vt_close(what, got, x0, (size_t)rows * xs, tol_of(type))) *test_failed_ = 1;
    }
    free(a), free(a_tight), free(x0), free(got), free(y), free((void *)t.data);
    vk_matrix_free(c, &m), vk_buf_free(c, &act), vk_buf_free(c, &x);
}

static void matmul_cases(int type, int *test_failed_) {
    for (int p = 0; p < 2; p++) {
        int k = is_quant(type) ? 768 : 200;             /* 200: a ragged last unit */
        check_matmul(type, k, 37, 1, p, test_failed_);  /* decode: one row, 37 = 4 R + 5 */
        check_matmul(type, k, 37, 11, p, test_failed_); /* batch: NB 8, a partial tile */
    }
    check_matmul(type, is_quant(type) ? 8192 : 4100, 9, 1, false, test_failed_); /* long rows */
    /* rows so long that one staged activation row is all the shared
     * memory holds (lavapipe: 32 KB), for a batch */
    if (is_quant(type)) check_matmul(type, 16384, 9, 3, false, test_failed_);
    check_matmul(type, is_quant(type) ? 8192 : 4100, 9, 11, false, test_failed_);
    /* more staged activation rows than the default 8 in one workgroup */
    setenv("ZT_VK_NB", "16", 1);
    check_matmul(type, is_quant(type) ? 768 : 200, 37, 11, false, test_failed_);
    unsetenv("ZT_VK_NB");
    /* without the staged path (matvec.glsl), as a device whose shared
     * memory cannot hold the staged rows runs it */
    setenv("ZT_VK_STAGE", "0", 1);
    check_matmul(type, is_quant(type) ? 768 : 200, 37, 1, false, test_failed_);
    check_matmul(type, is_quant(type) ? 768 : 200, 37, 11, false, test_failed_);
    unsetenv("ZT_VK_STAGE");
}

TEST(test_vk_matmul_f32_matches_cpu_matmul) { matmul_cases(ZT_F32, test_failed_); }
TEST(test_vk_matmul_f16_matches_cpu_matmul) { matmul_cases(ZT_F16, test_failed_); }
TEST(test_vk_matmul_bf16_matches_cpu_matmul) { matmul_cases(ZT_BF16, test_failed_); }
TEST(test_vk_matmul_q8_0_matches_cpu_matmul) { matmul_cases(ZT_Q8_0, test_failed_); }
TEST(test_vk_matmul_q4_0_matches_cpu_matmul) { matmul_cases(ZT_Q4_0, test_failed_); }
TEST(test_vk_matmul_q4_k_matches_cpu_matmul) { matmul_cases(ZT_Q4_K, test_failed_); }
TEST(test_vk_matmul_q6_k_matches_cpu_matmul) { matmul_cases(ZT_Q6_K, test_failed_); }

/* A type the shaders do not read (q5_K) is uploaded as f16 of its values. */
TEST(test_vk_matmul_of_an_unread_type_uses_its_dequantized_values) {
    vk_ctx *c = ctx_or_fail(false, test_failed_);
    REQUIRE(c);
    test_rng r = rng_seed(5);
    zt_tensor t;
    REQUIRE(make_tensor(&t, ZT_Q5_K, 256, 6, &r));
    vk_matrix m;
    zt_error err = {0};
    const zt_tensor *parts[] = {&t};
    REQUIRE(vk_matrix_upload(c, &m, parts, 1, -1, &err) == ZT_OK);
    CHECK_EQ_INT(m.type, ZT_F16);
    float a[256], x[6 * 32] = {0}, got[6 * 32], row[256];
    rng_fill_normal(&r, a, 256, 1.0f);
    vk_buf act, xb;
    REQUIRE(vt_buf(c, &act, sizeof a, a, 0) && vt_buf(c, &xb, sizeof x, x, 0));
    vk_shape s = {0};
    vk_dispatch d;
    REQUIRE(vk_k_matmul(c, &s, &m, &act, &xb, 32, 1, &d, &err) == ZT_OK);
    REQUIRE(vk_run(c, &d, 1, &err) == ZT_OK && vt_get(c, &xb, got, sizeof got));
    for (int o = 0; o < 6; o++) {
        quant_dequant_row(ZT_Q5_K, (const char *)t.data + quant_row_bytes(ZT_Q5_K, 256) * o, row,
                          256);
        double want = 0;
        for (int i = 0; i < 256; i++) want += (double)zt_f16_to_f32(zt_f32_to_f16(row[i])) * a[i];
        CHECK_NEAR(got[o], want, 1e-4 * (fabs(want) + 1));
    }
    free((void *)t.data);
    vk_matrix_free(c, &m), vk_buf_free(c, &act), vk_buf_free(c, &xb);
}

/* ---- lm_head ------------------------------------------------------------------------ */

static void check_lm_head(int type, bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(31 + type);
    int dim = 256, vocab = 301, n_rows = 5, mb = 8, xs = 256;
    const int out_rows[] = {0, 2, 3};
    int n_out = 3;
    zt_tensor t;
    zt_error err = {0};
    if (!make_tensor(&t, type, dim, vocab, &r)) {
        *test_failed_ = 1;
        return;
    }
    const zt_tensor *parts[] = {&t};
    float *x = malloc(sizeof(float) * mb * xs), gamma[256],
          *xn = malloc(sizeof(float) * n_out * dim);
    float *want = malloc(sizeof(float) * n_out * vocab), *got = malloc(sizeof(float) * mb * vocab);
    rng_fill_normal(&r, x, (int64_t)mb * xs, 2.0f);
    for (int i = 0; i < dim; i++) gamma[i] = 1.0f + 0.1f * rng_normal(&r);
    vk_matrix m;
    vk_buf xb, gb, step, logits;
    vk_shape s = {.dim = dim, .xs = xs, .eps = 1e-5f, .vocab = vocab, .max_batch = mb};
    vk_dispatch d;
    if (vk_matrix_upload(c, &m, parts, 1, -1, &err) ||
        !vt_buf(c, &xb, sizeof(float) * mb * xs, x, 0) || !vt_buf(c, &gb, sizeof gamma, gamma, 0) ||
        !make_step(c, &step, mb, NULL, NULL, NULL, out_rows, n_rows, n_out, NULL, 0) ||
        !vt_buf(c, &logits, sizeof(float) * mb * vocab, NULL, NAN_BITS) ||
        vk_k_lm_head(c, &s, &m, &xb, &gb, &step, &logits, n_out, &d, &err) ||
        vk_run(c, &d, 1, &err) || !vt_get(c, &logits, got, sizeof(float) * mb * vocab)) {
        fprintf(stderr, "  %s\n", err.msg);
        *test_failed_ = 1;
    } else {
        for (int i = 0; i < n_out; i++)
            cpu_rmsnorm(xn + i * dim, x + out_rows[i] * xs, gamma, dim, 1e-5f);
        cpu_reference(&t, xn, n_out, want);
        char what[64];
        snprintf(what, sizeof what, "lm_head %s (%s)", quant_type_info(type)->name,
                 build_name(portable));
        if (!vt_close(what, got, want, (size_t)n_out * vocab, tol_of(type))) *test_failed_ = 1;
        for (int i = n_out * vocab; i < mb * vocab; i++)
            if (!isnan(got[i])) *test_failed_ = 1;
    }
    free(x), free(xn), free(want), free(got), free((void *)t.data);
    vk_matrix_free(c, &m), vk_buf_free(c, &xb), vk_buf_free(c, &gb), vk_buf_free(c, &step);
    vk_buf_free(c, &logits);
}

TEST(test_vk_lm_head_normalizes_and_gathers_wanted_rows_like_cpu) {
    for (int p = 0; p < 2; p++) {
        check_lm_head(ZT_Q6_K, p, test_failed_);
        check_lm_head(ZT_F32, p, test_failed_);
    }
    check_lm_head(ZT_Q4_0, false, test_failed_);
}

/* ---- ffn ------------------------------------------------------------------------------- */

static void check_ffn(int type, bool fused, int rows, bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(51 + type + rows);
    int dim = 256, ffn = 77, xs = 256, hs = round32(ffn);
    zt_tensor gu, g, u;
    zt_error err = {0};
    vk_matrix m;
    int rc;
    if (fused) {
        if (!make_tensor(&gu, type, dim, 2 * ffn, &r)) goto oom;
        const zt_tensor *parts[] = {&gu};
        rc = vk_matrix_upload(c, &m, parts, 1, -1, &err);
    } else {
        if (!make_tensor(&g, type, dim, ffn, &r) || !make_tensor(&u, type, dim, ffn, &r)) goto oom;
        const zt_tensor *parts[] = {&g, &u};
        rc = vk_matrix_upload(c, &m, parts, 2, -1, &err);
    }
    if (rc) {
        fprintf(stderr, "  %s\n", err.msg);
        *test_failed_ = 1;
        return;
    }
    float *x = malloc(sizeof(float) * rows * xs), gamma[256],
          *xn = malloc(sizeof(float) * rows * dim);
    float *y = malloc(sizeof(float) * rows * 2 * ffn), *want = malloc(sizeof(float) * rows * hs);
    float *got = malloc(sizeof(float) * rows * hs);
    rng_fill_normal(&r, x, (int64_t)rows * xs, 1.0f);
    for (int i = 0; i < dim; i++) gamma[i] = 1.0f + 0.1f * rng_normal(&r);
    vk_buf xb, gb, h;
    vk_shape s = {.dim = dim, .xs = xs, .hs = hs, .ffn_dim = ffn, .eps = 1e-5f};
    vk_dispatch d;
    if (!vt_buf(c, &xb, sizeof(float) * rows * xs, x, 0) ||
        !vt_buf(c, &gb, sizeof gamma, gamma, 0) ||
        !vt_buf(c, &h, sizeof(float) * rows * hs, NULL, NAN_BITS) ||
        vk_k_ffn(c, &s, &m, &xb, &gb, &h, rows, &d, &err) || vk_run(c, &d, 1, &err) ||
        !vt_get(c, &h, got, sizeof(float) * rows * hs)) {
        fprintf(stderr, "  %s\n", err.msg);
        *test_failed_ = 1;
    } else {
        for (int i = 0; i < rows; i++) cpu_rmsnorm(xn + i * dim, x + i * xs, gamma, dim, 1e-5f);
        if (fused) {
            cpu_reference(&gu, xn, rows, y);
        } else { /* gate rows then up rows, as the fused matrix has them */
            float *yg = malloc(sizeof(float) * rows * ffn),
                  *yu = malloc(sizeof(float) * rows * ffn);
            cpu_reference(&g, xn, rows, yg);
            cpu_reference(&u, xn, rows, yu);
            for (int i = 0; i < rows; i++) {
                memcpy(y + (size_t)i * 2 * ffn, yg + (size_t)i * ffn, sizeof(float) * ffn);
                memcpy(y + (size_t)i * 2 * ffn + ffn, yu + (size_t)i * ffn, sizeof(float) * ffn);
            }
            free(yg), free(yu);
        }
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < hs; j++) {
                if (j >= ffn) { /* padding: never written */
                    if (!isnan(got[(size_t)i * hs + j])) *test_failed_ = 1;
                    continue;
                }
                float gv = y[(size_t)i * 2 * ffn + j], uv = y[(size_t)i * 2 * ffn + ffn + j];
                want[(size_t)i * hs + j] = gv / (1.0f + expf(-gv)) * uv;
            }
        char what[64];
        snprintf(what, sizeof what, "ffn %s (%s)", quant_type_info(type)->name,
                 build_name(portable));
        for (int i = 0; i < rows; i++)
            if (!vt_close(what, got + (size_t)i * hs, want + (size_t)i * hs, (size_t)ffn,
                          tol_of(type)))
                *test_failed_ = 1;
    }
    free(x), free(xn), free(y), free(want), free(got);
    if (fused)
        free((void *)gu.data);
    else
        free((void *)g.data), free((void *)u.data);
    vk_matrix_free(c, &m), vk_buf_free(c, &xb), vk_buf_free(c, &gb), vk_buf_free(c, &h);
    return;
oom:
    *test_failed_ = 1;
}

TEST(test_vk_ffn_fuses_norm_gate_up_and_silu_like_cpu) {
    for (int p = 0; p < 2; p++) {
        check_ffn(ZT_Q4_K, true, 1, p, test_failed_);
        check_ffn(ZT_Q4_0, false, 6, p, test_failed_);
    }
    check_ffn(ZT_F16, true, 3, false, test_failed_);
}

/* ---- qkv ---------------------------------------------------------------------------- */

/* A small attention block: 4 query heads, 2 KV heads of head_dim 16,
 * 3 rows of 2 sequences, pages scattered in a pool of 6. */
enum { QK_DIM = 256, QK_HEADS = 4, QK_KV = 2, QK_HD = 16, QK_MB = 4, QK_MPPS = 3, QK_PAGES = 6 };
static const int qk_pos[] = {5, 17, 6}, qk_seq[] = {0, 1, 0};
static const int qk_pages[2 * QK_MPPS] = {4, 1, -1, 0, 5, -1}; /* [seq][logical page] */

static float *rope_table(int n_ctx, int rope_dim, float theta) {
    int half = rope_dim / 2;
    float *t = malloc(sizeof(float) * 2 * (size_t)n_ctx * half);
    for (int p = 0; p < n_ctx; p++)
        for (int i = 0; i < half; i++) {
            float inv = powf(theta, -2.0f * i / rope_dim), a = (float)p * inv;
            t[2 * (p * half + i)] = cosf(a);
            t[2 * (p * half + i) + 1] = sinf(a);
        }
    return t;
}

/* The CPU backend's rope (backend/cpu/cpu.c), from the same table. */
static void cpu_rope(float *v, int n_heads, int rope_dim, bool interleaved, const float *tab,
                     int pos) {
    int half = rope_dim / 2;
    for (int i = 0; i < half; i++) {
        float cs = tab[2 * (pos * half + i)], sn = tab[2 * (pos * half + i) + 1];
        int a = interleaved ? 2 * i : i, b = interleaved ? 2 * i + 1 : i + half;
        for (int h = 0; h < n_heads; h++) {
            float x0 = v[h * QK_HD + a], x1 = v[h * QK_HD + b];
            v[h * QK_HD + a] = x0 * cs - x1 * sn;
            v[h * QK_HD + b] = x0 * sn + x1 * cs;
        }
    }
}

static void check_qkv(int type, int kv_type, bool interleaved, int rope_dim, bool bias,
                      bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(71 + type + kv_type);
    const int q_dim = QK_HEADS * QK_HD, kv_dim = QK_KV * QK_HD, n = q_dim + 2 * kv_dim, rows = 3;
    const int slots = QK_PAGES * 16, n_ctx = QK_MPPS * 16;
    vk_shape s = {.dim = QK_DIM,
                  .n_heads = QK_HEADS,
                  .n_kv_heads = QK_KV,
                  .head_dim = QK_HD,
                  .q_dim = q_dim,
                  .kv_dim = kv_dim,
                  .xs = QK_DIM,
                  .qs = q_dim,
                  .eps = 1e-5f,
                  .rope_half = rope_dim / 2,
                  .kv_type = kv_type,
                  .max_batch = QK_MB,
                  .max_pages_per_seq = QK_MPPS};
    zt_tensor t;
    zt_error err = {0};
    REQUIRE(make_tensor(&t, type, QK_DIM, n, &r));
    const zt_tensor *parts[] = {&t};
    float x[QK_MB * QK_DIM], gamma[QK_DIM], bvec[n], xn[3 * QK_DIM], y[3 * n];
    rng_fill_normal(&r, x, QK_MB * QK_DIM, 1.0f);
    for (int i = 0; i < QK_DIM; i++) gamma[i] = 1.0f + 0.1f * rng_normal(&r);
    for (int i = 0; i < n; i++) bvec[i] = bias ? 0.3f * rng_normal(&r) : 0.0f;
    float *rope = rope_table(n_ctx, rope_dim, 10000.0f);
    uint32_t items[4 * (n / 2 + 1)];
    int n_items = vk_qkv_items(&s, interleaved, rope_dim, 0, n, items);
    REQUIRE(n_items > 0);

    size_t kv_elem = kv_type == ZT_KV_F16 ? 2 : 4;
    size_t cache_bytes = (size_t)slots * kv_dim * kv_elem,
           stage_bytes = sizeof(float) * QK_MB * 2 * kv_dim;
    vk_matrix m;
    vk_buf xb, gb, bb, qb, step, kc, vc, rb, ib;
    vk_dispatch d;
    bool q8 = kv_type == ZT_KV_Q8;
    REQUIRE(vk_matrix_upload(c, &m, parts, 1, -1, &err) == ZT_OK);
    REQUIRE(
        vt_buf(c, &xb, sizeof x, x, 0) && vt_buf(c, &gb, sizeof gamma, gamma, 0) &&
        vt_buf(c, &bb, sizeof bvec, bvec, 0) &&
        vt_buf(c, &qb, sizeof(float) * QK_MB * q_dim, NULL, NAN_BITS) &&
        make_step(c, &step, QK_MB, NULL, qk_pos, qk_seq, NULL, rows, 0, qk_pages, 2 * QK_MPPS) &&
        vt_buf(c, &kc, q8 ? stage_bytes : cache_bytes, NULL, kv_elem == 2 ? POISON16 : NAN_BITS) &&
        vt_buf(c, &vc, cache_bytes, NULL, kv_elem == 2 ? POISON16 : NAN_BITS) &&
        vt_buf(c, &rb, sizeof(float) * 2 * n_ctx * (rope_dim / 2), rope, 0) &&
        vt_buf(c, &ib, 16 * (size_t)n_items, items, 0));
    REQUIRE(vk_k_qkv(c, &s, &m, 0, &ib, n_items, &xb, &gb, &bb, &qb, &step, &kc, q8 ? &kc : &vc,
                     &rb, rows, &d, &err) == ZT_OK);
    REQUIRE(vk_run(c, &d, 1, &err) == ZT_OK);

    /* reference */
    for (int i = 0; i < rows; i++)
        cpu_rmsnorm(xn + i * QK_DIM, x + i * QK_DIM, gamma, QK_DIM, 1e-5f);
    cpu_reference(&t, xn, rows, y);
    for (int i = 0; i < rows; i++) {
        float *yi = y + i * n;
        for (int e = 0; e < n; e++) yi[e] += bvec[e];
        cpu_rope(yi, QK_HEADS, rope_dim, interleaved, rope, qk_pos[i]);
        cpu_rope(yi + q_dim, QK_KV, rope_dim, interleaved, rope, qk_pos[i]);
    }
    double tol = tol_of(type);
    char what[96];
    snprintf(what, sizeof what, "qkv %s kv %d %s rope %d (%s)", quant_type_info(type)->name,
             kv_type, interleaved ? "interleaved" : "rotate-half", rope_dim, build_name(portable));
    float qgot[QK_MB * 64], qwant[QK_MB * 64];
    REQUIRE(vt_get(c, &qb, qgot, sizeof qgot));
    for (int i = 0; i < QK_MB; i++)
        for (int e = 0; e < q_dim; e++) qwant[i * q_dim + e] = i < rows ? y[i * n + e] : NAN;
    for (int i = 0; i < rows; i++)
        CHECK(vt_close(what, qgot + i * q_dim, qwant + i * q_dim, q_dim, tol));
    CHECK(isnan(qgot[rows * q_dim]));

    if (q8) { /* k, v staged per row */
        float st[QK_MB * 2 * 32];
        REQUIRE(vt_get(c, &kc, st, sizeof st));
        for (int i = 0; i < rows; i++)
            CHECK(vt_close(what, st + i * 2 * kv_dim, y + i * n + q_dim, 2 * (size_t)kv_dim, tol));
        CHECK(isnan(st[rows * 2 * kv_dim]));
    } else { /* every slot: written at the rows' positions, poison elsewhere */
        for (int which = 0; which < 2; which++) {
            uint8_t *cache = malloc(cache_bytes);
            REQUIRE(vt_get(c, which ? &vc : &kc, cache, cache_bytes));
            for (int slot = 0; slot < slots; slot++) {
                int row = -1;
                for (int i = 0; i < rows; i++)
                    if (qk_pages[qk_seq[i] * QK_MPPS + qk_pos[i] / 16] * 16 + qk_pos[i] % 16 ==
                        slot)
                        row = i;
                for (int e = 0; e < kv_dim; e++) {
                    float v;
                    if (kv_elem == 2)
                        v = zt_f16_to_f32(((uint16_t *)cache)[slot * kv_dim + e]);
                    else
                        v = ((float *)cache)[slot * kv_dim + e];
                    if (row < 0) {
                        if (!isnan(v)) {
                            fprintf(stderr, "  %s: slot %d written\n", what, slot);
                            *test_failed_ = 1;
                            break;
                        }
                        continue;
                    }
                    float want = y[row * n + q_dim + which * kv_dim + e];
                    if (kv_elem == 2) want = zt_f16_to_f32(zt_f32_to_f16(want));
                    if (!(fabsf(v - want) <=
                          (kv_elem == 2 ? 2e-3f : (float)tol) * (fabsf(want) + 1))) {
                        fprintf(stderr, "  %s: %s slot %d [%d] = %g, expected %g\n", what,
                                which ? "v" : "k", slot, e, v, want);
                        *test_failed_ = 1;
                        break;
                    }
                }
            }
            free(cache);
        }
    }
    free(rope), free((void *)t.data);
    vk_matrix_free(c, &m);
    vk_buf *bufs[] = {&xb, &gb, &bb, &qb, &step, &kc, &vc, &rb, &ib};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
}

TEST(test_vk_qkv_rotate_half_f16_cache_with_bias_matches_cpu) {
    for (int p = 0; p < 2; p++) check_qkv(ZT_Q8_0, ZT_KV_F16, false, 16, true, p, test_failed_);
}

TEST(test_vk_qkv_interleaved_f32_cache_matches_cpu) {
    for (int p = 0; p < 2; p++) {
        check_qkv(ZT_F32, ZT_KV_F32, true, 16, false, p, test_failed_);
        check_qkv(ZT_Q8_0, ZT_KV_F16, true, 16, false, p, test_failed_);
    }
}

TEST(test_vk_qkv_partial_rope_stages_int8_cache_rows) {
    for (int p = 0; p < 2; p++) {
        check_qkv(ZT_Q4_K, ZT_KV_Q8, false, 8, true, p, test_failed_);
        check_qkv(ZT_Q4_0, ZT_KV_F16, true, 12, false, p, test_failed_);
    }
}

/* ---- kv_quant ------------------------------------------------------------------------ */

static int8_t ref_code(float v) {
    float r = nearbyintf(v);
    return (int8_t)(r < -127 ? -127 : r > 127 ? 127 : r);
}

TEST(test_vk_kv_quant_rounds_heads_to_int8_like_the_activation_quantizer) {
    for (int p = 0; p < 2; p++) {
        vk_ctx *c = ctx_or_fail(p, test_failed_);
        REQUIRE(c);
        test_rng r = rng_seed(81);
        const int kv_dim = QK_KV * QK_HD, rows = 3, slots = QK_PAGES * 16;
        vk_shape s = {.n_kv_heads = QK_KV,
                      .head_dim = QK_HD,
                      .kv_dim = kv_dim,
                      .kv_type = ZT_KV_Q8,
                      .max_batch = QK_MB,
                      .max_pages_per_seq = QK_MPPS};
        float stage[QK_MB * 2 * 32];
        rng_fill_normal(&r, stage, QK_MB * 2 * kv_dim, 3.0f);
        stage[5] = 0.5f * 127 / 127; /* a few exact values */
        vk_buf step, sb, kc, vc, ks, vs;
        REQUIRE(
            make_step(c, &step, QK_MB, NULL, qk_pos, qk_seq, NULL, rows, 0, qk_pages, 2 * QK_MPPS));
        REQUIRE(vt_buf(c, &sb, sizeof stage, stage, 0) &&
                vt_buf(c, &kc, (size_t)slots * kv_dim, NULL, 0xaaaaaaaau) &&
                vt_buf(c, &vc, (size_t)slots * kv_dim, NULL, 0xaaaaaaaau) &&
                vt_buf(c, &ks, sizeof(float) * slots * QK_KV, NULL, NAN_BITS) &&
                vt_buf(c, &vs, sizeof(float) * slots * QK_KV, NULL, NAN_BITS));
        vk_dispatch d;
        zt_error err = {0};
        REQUIRE(vk_k_kv_quant(c, &s, &step, &sb, &kc, &vc, &ks, &vs, rows, &d, &err) == ZT_OK);
        REQUIRE(vk_run(c, &d, 1, &err) == ZT_OK);
        int8_t *codes[2] = {malloc((size_t)slots * kv_dim), malloc((size_t)slots * kv_dim)};
        float *scales[2] = {malloc(sizeof(float) * slots * QK_KV),
                            malloc(sizeof(float) * slots * QK_KV)};
        REQUIRE(vt_get(c, &kc, codes[0], (size_t)slots * kv_dim) &&
                vt_get(c, &vc, codes[1], (size_t)slots * kv_dim) &&
                vt_get(c, &ks, scales[0], sizeof(float) * slots * QK_KV) &&
                vt_get(c, &vs, scales[1], sizeof(float) * slots * QK_KV));
        int written = 0;
        for (int w = 0; w < 2; w++)
            for (int slot = 0; slot < slots; slot++) {
                int row = -1;
                for (int i = 0; i < rows; i++)
                    if (qk_pages[qk_seq[i] * QK_MPPS + qk_pos[i] / 16] * 16 + qk_pos[i] % 16 ==
                        slot)
                        row = i;
                for (int h = 0; h < QK_KV; h++) {
                    float sc = scales[w][slot * QK_KV + h];
                    if (row < 0) {
                        CHECK(isnan(sc));
                        for (int e = 0; e < QK_HD; e++)
                            CHECK((uint8_t)codes[w][slot * kv_dim + h * QK_HD + e] == 0xaa);
                        continue;
                    }
                    const float *xv = stage + row * 2 * kv_dim + w * kv_dim + h * QK_HD;
                    float amax = 0;
                    for (int e = 0; e < QK_HD; e++) amax = fmaxf(amax, fabsf(xv[e]));
                    float dref = amax / 127.0f, id = 1.0f / dref;
                    CHECK_NEAR(sc, dref, 1e-6 * dref);
                    for (int e = 0; e < QK_HD; e++) {
                        int got = codes[w][slot * kv_dim + h * QK_HD + e],
                            want = ref_code(xv[e] * id);
                        CHECK(abs(got - want) <=
                              (fabsf(fabsf(xv[e] * id - truncf(xv[e] * id)) - 0.5f) < 1e-3f));
                        written++;
                    }
                }
            }
        CHECK_EQ_INT(written, 2 * rows * kv_dim);
        for (int w = 0; w < 2; w++) free(codes[w]), free(scales[w]);
        vk_buf *bufs[] = {&step, &sb, &kc, &vc, &ks, &vs};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
    }
}

/* ---- attention ------------------------------------------------------------------------ */

/* Rows of three sequences; the long one spans the splits of split 64. */
enum { AT_ROWS = 4, AT_MPPS = 12, AT_PAGES = 24 };
static const int at_pos[AT_ROWS] = {150, 20, 149, 0}, at_seq[AT_ROWS] = {0, 1, 0, 2};

static void check_attention(int kv_type, int window, int split, bool portable, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(portable, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(91 + kv_type + window);
    const int nh = QK_HEADS, nkv = QK_KV, hd = 32, q_dim = nh * hd, kv_dim = nkv * hd;
    const int slots = AT_PAGES * 16;
    vk_shape s = {.n_heads = nh,
                  .n_kv_heads = nkv,
                  .head_dim = hd,
                  .q_dim = q_dim,
                  .kv_dim = kv_dim,
                  .qs = q_dim,
                  .window = window,
                  .kv_type = kv_type,
                  .max_batch = AT_ROWS,
                  .max_pages_per_seq = AT_MPPS,
                  .split = split};
    int pages[3 * AT_MPPS], perm[AT_PAGES];
    for (int i = 0; i < AT_PAGES; i++) perm[i] = i;
    for (int i = AT_PAGES - 1; i > 0; i--) { /* scattered pages */
        int j = (int)(rng_u64(&r) % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
    const int used[3] = {10, 2, 1}; /* pages each sequence reaches */
    for (int i = 0, k = 0; i < 3 * AT_MPPS; i++)
        pages[i] = i % AT_MPPS < used[i / AT_MPPS] ? perm[k++] : -1;
    /* cache values as stored, and as the shader reads them */
    float *kval = malloc(sizeof(float) * slots * kv_dim),
          *vval = malloc(sizeof(float) * slots * kv_dim);
    float *ksc = malloc(sizeof(float) * slots * nkv), *vsc = malloc(sizeof(float) * slots * nkv);
    size_t elem = kv_type == ZT_KV_F16 ? 2 : kv_type == ZT_KV_Q8 ? 1 : 4;
    uint8_t *kraw = malloc(elem * slots * kv_dim), *vraw = malloc(elem * slots * kv_dim);
    for (int w = 0; w < 2; w++) {
        float *val = w ? vval : kval, *sc = w ? vsc : ksc;
        uint8_t *raw = w ? vraw : kraw;
        for (int i = 0; i < slots * kv_dim; i++) {
            float v = rng_normal(&r);
            if (kv_type == ZT_KV_F16) {
                uint16_t h = zt_f32_to_f16(v);
                memcpy(raw + 2 * i, &h, 2);
                val[i] = zt_f16_to_f32(h);
            } else if (kv_type == ZT_KV_F32) {
                memcpy(raw + 4 * i, &v, 4);
                val[i] = v;
            } else {
                int8_t q = (int8_t)(rng_u64(&r) % 255 - 127);
                raw[i] = (uint8_t)q;
                val[i] = q;
            }
        }
        for (int i = 0; i < slots * nkv; i++) {
            sc[i] = 0.01f + 0.02f * (float)rng_uniform(&r);
            if (kv_type == ZT_KV_Q8)
                for (int e = 0; e < hd; e++) val[(i / nkv) * kv_dim + (i % nkv) * hd + e] *= sc[i];
        }
    }
    float q[AT_ROWS * 128];
    rng_fill_normal(&r, q, AT_ROWS * q_dim, 1.0f);
    int max_pos = 0;
    for (int i = 0; i < AT_ROWS; i++) max_pos = at_pos[i] > max_pos ? at_pos[i] : max_pos;
    int n_splits = vk_attention_splits(&s, max_pos);
    vk_buf step, qb, kc, vc, ks, vs, out, part;
    zt_error err = {0};
    REQUIRE(
        make_step(c, &step, AT_ROWS, NULL, at_pos, at_seq, NULL, AT_ROWS, 0, pages, 3 * AT_MPPS));
    REQUIRE(vt_buf(c, &qb, sizeof q, q, 0) && vt_buf(c, &kc, elem * slots * kv_dim, kraw, 0) &&
            vt_buf(c, &vc, elem * slots * kv_dim, vraw, 0) &&
            vt_buf(c, &ks, sizeof(float) * slots * nkv, ksc, 0) &&
            vt_buf(c, &vs, sizeof(float) * slots * nkv, vsc, 0) &&
            vt_buf(c, &out, sizeof(float) * AT_ROWS * q_dim, NULL, NAN_BITS) &&
            vt_buf(c, &part, sizeof(float) * AT_ROWS * nh * n_splits * (hd + 2), NULL, NAN_BITS));
    vk_dispatch d[2];
    REQUIRE(vk_k_attention(c, &s, &step, &qb, &kc, &vc, &ks, &vs, n_splits > 1 ? &part : &out,
                           AT_ROWS, n_splits, &d[0], &err) == ZT_OK);
    if (n_splits > 1)
        REQUIRE(vk_k_attention_merge(c, &s, &part, &out, AT_ROWS, n_splits, &d[1], &err) == ZT_OK);
    REQUIRE(vk_run(c, d, n_splits > 1 ? 2 : 1, &err) == ZT_OK);
    float got[AT_ROWS * 128], want[AT_ROWS * 128];
    REQUIRE(vt_get(c, &out, got, sizeof got));
    for (int i = 0; i < AT_ROWS; i++) {
        int pos = at_pos[i], lo = window > 0 && pos - window + 1 > 0 ? pos - window + 1 : 0;
        for (int h = 0; h < nh; h++) {
            int kvh = h / (nh / nkv);
            double sc[160], mx = -DBL_MAX, sum = 0, o[32] = {0};
            for (int t = lo; t <= pos; t++) {
                int slot = pages[at_seq[i] * AT_MPPS + t / 16] * 16 + t % 16;
                double dot = 0;
                for (int e = 0; e < hd; e++)
                    dot += (double)q[i * q_dim + h * hd + e] * kval[slot * kv_dim + kvh * hd + e];
                sc[t] = dot / sqrt((double)hd);
                mx = sc[t] > mx ? sc[t] : mx;
            }
            for (int t = lo; t <= pos; t++) sum += sc[t] = exp(sc[t] - mx);
            for (int t = lo; t <= pos; t++) {
                int slot = pages[at_seq[i] * AT_MPPS + t / 16] * 16 + t % 16;
                for (int e = 0; e < hd; e++)
                    o[e] += sc[t] / sum * vval[slot * kv_dim + kvh * hd + e];
            }
            for (int e = 0; e < hd; e++) want[i * q_dim + h * hd + e] = (float)o[e];
        }
    }
    char what[96];
    snprintf(what, sizeof what, "attention kv %d window %d splits %d (%s)", kv_type, window,
             n_splits, build_name(portable));
    CHECK(vt_close(what, got, want, (size_t)AT_ROWS * q_dim, 1e-5));
    free(kval), free(vval), free(ksc), free(vsc), free(kraw), free(vraw);
    vk_buf *bufs[] = {&step, &qb, &kc, &vc, &ks, &vs, &out, &part};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
}

TEST(test_vk_attention_f16_cache_split_and_merged_matches_reference) {
    for (int p = 0; p < 2; p++) {
        check_attention(ZT_KV_F16, 0, 64, p, test_failed_);  /* 3 splits + merge */
        check_attention(ZT_KV_F16, 0, 512, p, test_failed_); /* one split */
    }
}

TEST(test_vk_attention_f32_cache_with_sliding_window_matches_reference) {
    for (int p = 0; p < 2; p++) {
        check_attention(ZT_KV_F32, 37, 64, p, test_failed_);
        check_attention(ZT_KV_F32, 5, 512, p, test_failed_);
    }
}

TEST(test_vk_attention_int8_cache_matches_reference) {
    for (int p = 0; p < 2; p++) {
        check_attention(ZT_KV_Q8, 0, 64, p, test_failed_);
        check_attention(ZT_KV_Q8, 100, 512, p, test_failed_);
    }
}

/* The attention with the output projection fused (vk_fuse_wo: at one key
 * split attention.comp's Wo build, at three attention_merge.comp's after
 * the splits' partials): one row at position 150 of a sequence of scattered
 * f16 pages, 8 query heads on 2 KV heads of 32 dims (4 Wo units a head
 * group), Wo of 300 rows (a ragged last slice) in `type`, against the
 * attention and wo dispatches apart, which the tests above check against
 * the CPU: the same int8 codes and sums in another order, so within 1e-5;
 * every element of x moved (none dropped) and the Wo rows of 1 and 2 a
 * thread alike. */
static void check_attention_wo(int type, int split, int *test_failed_) {
    vk_ctx *c = ctx_or_fail(false, test_failed_);
    if (!c) return;
    test_rng r = rng_seed(300 + type);
    enum {
        NH = 8,
        NKV = 2,
        HD = 32,
        QD = NH * HD,
        KVD = NKV * HD,
        NO = 300,
        MPPS = 12,
        PAGES = 16
    };
    vk_shape s = {.n_heads = NH,
                  .n_kv_heads = NKV,
                  .head_dim = HD,
                  .q_dim = QD,
                  .kv_dim = KVD,
                  .qs = QD,
                  .kv_type = ZT_KV_F16,
                  .max_batch = 1,
                  .max_pages_per_seq = MPPS,
                  .split = split};
    int pos = 150, seq = 0, pages[MPPS];
    for (int i = 0; i < MPPS; i++) pages[i] = i < 10 ? (i * 7 + 3) % PAGES : -1;
    int n_splits = vk_attention_splits(&s, pos);
    CHECK(n_splits == (split == 512 ? 1 : 3));
    if (!c->atomic_add || !vk_fuse_wo(c, &s, 1, n_splits)) {
        fprintf(stderr, "  the device lacks float atomic add: no fused build to test\n");
        *test_failed_ = 1;
        return;
    }
    uint16_t *kv = malloc(sizeof(uint16_t) * PAGES * 16 * KVD);
    float q[QD], *x0 = malloc(sizeof(float) * NO), *fused = malloc(sizeof(float) * NO),
                 *apart = malloc(sizeof(float) * NO);
    rng_fill_normal(&r, q, QD, 1.0f);
    rng_fill_normal(&r, x0, NO, 1.0f);
    zt_tensor t;
    REQUIRE(make_tensor(&t, type, QD, NO, &r));
    const zt_tensor *parts[] = {&t};
    vk_matrix wo;
    vk_buf step, qb, kc, vc, att, part, xa, xb;
    zt_error err = {0};
    REQUIRE(vk_matrix_upload(c, &wo, parts, 1, -1, &err) == ZT_OK);
    REQUIRE(make_step(c, &step, 1, NULL, &pos, &seq, NULL, 1, 0, pages, MPPS));
    for (int w = 0; w < 2; w++) {
        for (int i = 0; i < PAGES * 16 * KVD; i++) kv[i] = zt_f32_to_f16(rng_normal(&r));
        REQUIRE(vt_buf(c, w ? &vc : &kc, sizeof(uint16_t) * PAGES * 16 * KVD, kv, 0));
    }
    REQUIRE(vt_buf(c, &qb, sizeof q, q, 0) && vt_buf(c, &att, sizeof q, NULL, NAN_BITS) &&
            vt_buf(c, &part, sizeof(float) * NH * n_splits * (HD + 2), NULL, NAN_BITS));
    for (int rpt = 1; rpt <= 2; rpt++) {
        char v[8];
        snprintf(v, sizeof v, "%d", rpt);
        setenv("ZT_VK_WO_RPT", v, 1);
        vk_dispatch d[3];
        REQUIRE(vt_buf(c, &xa, sizeof(float) * NO, x0, 0) &&
                vt_buf(c, &xb, sizeof(float) * NO, x0, 0));
        vk_buf *att_out = n_splits > 1 ? &part : &att;
        if (n_splits == 1) { /* fused: attention with wo */
            REQUIRE(vk_k_attention_wo(c, &s, &step, &qb, &kc, &vc, &wo, &xa, &d[0], &err) == 0);
        } else { /* fused: the splits' partials, then merge with wo */
            REQUIRE(vk_k_attention(c, &s, &step, &qb, &kc, &vc, NULL, NULL, &part, 1, n_splits,
                                   &d[0], &err) == ZT_OK);
            REQUIRE(vk_k_attention_merge_wo(c, &s, &part, n_splits, &wo, &xa, &d[1], &err) == 0);
        }
        REQUIRE(vk_run(c, d, n_splits > 1 ? 2 : 1, &err) == ZT_OK);
        int n = 0; /* apart: attention, (merge,) wo */
        REQUIRE(vk_k_attention(c, &s, &step, &qb, &kc, &vc, NULL, NULL, att_out, 1, n_splits,
                               &d[n++], &err) == ZT_OK);
        if (n_splits > 1)
            REQUIRE(vk_k_attention_merge(c, &s, &part, &att, 1, n_splits, &d[n++], &err) == 0);
        REQUIRE(vk_k_matmul(c, &s, &wo, &att, &xb, NO, 1, &d[n++], &err) == ZT_OK);
        REQUIRE(vk_run(c, d, n, &err) == ZT_OK);
        REQUIRE(vt_get(c, &xa, fused, sizeof(float) * NO) &&
                vt_get(c, &xb, apart, sizeof(float) * NO));
        int moved = 0;
        for (int i = 0; i < NO; i++) moved += fused[i] != x0[i];
        CHECK_EQ_INT(moved, NO);
        char what[96];
        snprintf(what, sizeof what, "attention with wo fused, %s, %d splits, %d rows a thread",
                 quant_type_info(type)->name, n_splits, rpt);
        CHECK(vt_close(what, fused, apart, NO, 1e-5));
        vk_buf_free(c, &xa), vk_buf_free(c, &xb);
    }
    unsetenv("ZT_VK_WO_RPT");
    free(kv), free(x0), free(fused), free(apart), free((void *)t.data);
    vk_matrix_free(c, &wo);
    vk_buf *bufs[] = {&step, &qb, &kc, &vc, &att, &part};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) vk_buf_free(c, bufs[i]);
}

TEST(test_vk_attention_with_wo_fused_matches_the_dispatches_apart) {
    for (int split = 64; split <= 512; split *= 8) { /* 3 splits (merge with wo), then 1 */
        check_attention_wo(ZT_Q4_0, split, test_failed_);
        check_attention_wo(ZT_Q4_K, split, test_failed_);
        check_attention_wo(ZT_Q6_K, split, test_failed_);
        check_attention_wo(ZT_F16, split, test_failed_);
    }
}

/* ---- sample ------------------------------------------------------------------------------ */

TEST(test_vk_sample_takes_the_first_largest_logit_and_skips_nan) {
    for (int p = 0; p < 2; p++) {
        vk_ctx *c = ctx_or_fail(p, test_failed_);
        REQUIRE(c);
        test_rng r = rng_seed(3);
        enum { V = 1000, ROWS = 4 };
        float *lg = malloc(sizeof(float) * ROWS * V);
        rng_fill_normal(&r, lg, ROWS * V, 3.0f);
        lg[0 * V + 700] = 50, lg[0 * V + 300] = 50; /* tie: 300 wins */
        lg[1 * V + 999] = 60, lg[1 * V + 10] = NAN; /* last, with a NaN before */
        lg[2 * V + 0] = NAN, lg[2 * V + 1] = 70;    /* NaN first */
        lg[3 * V + 0] = 80;                         /* first */
        const int want[ROWS] = {300, 999, 1, 0};
        vk_buf lb, ab;
        REQUIRE(vt_buf(c, &lb, sizeof(float) * ROWS * V, lg, 0) &&
                vt_buf(c, &ab, sizeof(int32_t) * (ROWS + 1), NULL, (uint32_t)-7));
        vk_shape s = {.vocab = V};
        vk_dispatch d;
        zt_error err = {0};
        REQUIRE(vk_k_sample(c, &s, &lb, &ab, ROWS, &d, &err) == ZT_OK);
        REQUIRE(vk_run(c, &d, 1, &err) == ZT_OK);
        int32_t got[ROWS + 1];
        REQUIRE(vt_get(c, &ab, got, sizeof got));
        for (int i = 0; i < ROWS; i++) CHECK_EQ_INT(got[i], want[i]);
        CHECK_EQ_INT(got[ROWS], -7);
        free(lg);
        vk_buf_free(c, &lb), vk_buf_free(c, &ab);
    }
}
