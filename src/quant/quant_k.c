/*
 * The k-quants: 256-element super-blocks split into sub-blocks of 16 or 32
 * elements, each with its own scale (and, for q2_K/q4_K/q5_K, its own
 * offset), and those per-sub-block numbers quantized again against one or
 * two f16 super-scales. Layouts are bit-exact with GGUF (ggml's
 * block_qN_K); the dequantizers evaluate ggml's formulas in ggml's order.
 *
 *   type  sub-blocks  quants           sub-block codes          bytes
 *   q2_K  16 x 16     2 bit, 0..3      4-bit scale, 4-bit min     84
 *   q3_K  16 x 16     3 bit, -4..3     6-bit signed scale        110
 *   q4_K   8 x 32     4 bit, 0..15     6-bit scale, 6-bit min    144
 *   q5_K   8 x 32     5 bit, 0..31     6-bit scale, 6-bit min    176
 *   q6_K  16 x 16     6 bit, -32..31   8-bit signed scale        210
 *   q8_K   1 x 256    8 bit            f32 scale, no codes       292
 *
 * Quantizing is a least-squares fit in two levels, in the spirit of ggml's
 * reference quantizer:
 *   1. per sub-block, search a range of grid spacings; for each, round the
 *      data onto the grid and solve for the scale (and offset) that fits
 *      those integers best; then alternate rounding and refitting;
 *   2. per super-block, try a few super-scales (the largest sub-block
 *      value over the largest code, and over one or two codes less),
 *      ranked by the error of the plainly rounded codes; the winner's
 *      sub-blocks then try the codes next to their rounded scale (and
 *      min), and for the formats with mins the two super-scales get a
 *      final least-squares refit against the chosen codes.
 * The error is plain squared error: it is what the round-trip tests
 * measure, and for weights without importance statistics it is the
 * honest target. On Gaussian data this gives 3-10% less RMS error than
 * ggml's quantize_row_qN_K_ref (q4_K 6.95% vs 7.2%, q6_K 1.68% vs 1.79%,
 * measured by dequantizing both with ggml's own code), at about 8 M
 * weights/s on one core: the quants cost a few hundred rounding passes
 * per weight, so the inner loops avoid divisions and libm calls.
 */
#include "quant/quant.h"
#include "quant/quant_impl.h"
#include "util/f16.h"

#include <math.h>
#include <string.h>

typedef struct {
    uint8_t scales[QK_K / 16]; /* low nibble: scale code, high: min code */
    uint8_t qs[QK_K / 4];      /* 2-bit quants */
    uint16_t d, dmin;          /* f16 super-scales */
} block_q2_K;

typedef struct {
    uint8_t hmask[QK_K / 8]; /* 3rd bit of each quant; set means q >= 0 */
    uint8_t qs[QK_K / 4];    /* low 2 bits */
    uint8_t scales[12];      /* 16 x 6-bit codes, stored + 32 */
    uint16_t d;              /* f16 super-scale */
} block_q3_K;

_Static_assert(sizeof(block_q2_K) == 84, "block_q2_K must be 84 bytes");
_Static_assert(sizeof(block_q3_K) == 110, "block_q3_K must be 110 bytes");
_Static_assert(sizeof(block_q4_K) == 144, "block_q4_K must be 144 bytes");
_Static_assert(sizeof(block_q5_K) == 176, "block_q5_K must be 176 bytes");
_Static_assert(sizeof(block_q6_K) == 210, "block_q6_K must be 210 bytes");
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K must be 292 bytes");

/* ---- dequantizers ---------------------------------------------------- */

/* Element e of a q2_K/q3_K super-block: its low two bits are bits
 * 2 * ((e % 128) / 32) of qs[32 * (e / 128) + e % 32], so one byte holds
 * elements 32 apart; its sub-block is e / 16. */
static int q2_bits(const uint8_t *qs, int e) {
    return qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32)) & 3;
}

void quant_dequant_q2_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q2_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d), dmin = zt_f16_to_f32(blk.dmin);
        for (int e = 0; e < QK_K; e++) {
            uint8_t code = blk.scales[e / 16];
            float dl = d * (float)(code & 0xf), ml = dmin * (float)(code >> 4);
            dst[e] = dl * (float)q2_bits(blk.qs, e) - ml;
        }
    }
}

/* The 6-bit code of q3_K sub-block i (0..15): low 4 bits in the nibbles of
 * bytes 0-7 (i < 8 low nibble of byte i, else high nibble of byte i - 8),
 * top 2 bits in bytes 8-11 at bit 2 * (i / 4) of byte 8 + i % 4. */
static int q3_code(const uint8_t scales[12], int i) {
    int low = i < 8 ? scales[i] & 0xf : scales[i - 8] >> 4;
    int high = scales[8 + i % 4] >> (2 * (i / 4)) & 3;
    return low | high << 4;
}

void quant_dequant_q3_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q3_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int e = 0; e < QK_K; e++) {
            float dl = d * (float)(q3_code(blk.scales, e / 16) - 32);
            int high = blk.hmask[e % 32] >> (e / 32) & 1;
            dst[e] = dl * (float)(q2_bits(blk.qs, e) - (high ? 0 : 4));
        }
    }
}

/* q4_K and q5_K: element e's low 4 bits are the low (e % 64 < 32) or high
 * nibble of qs[32 * (e / 64) + e % 32]; q5_K's 5th bit is bit e / 32 of
 * qh[e % 32]. Sub-block e / 32 has the scale/min pair of quant_k_scale_min. */
static int q4_nibble(const uint8_t *qs, int e) {
    uint8_t byte = qs[32 * (e / 64) + e % 32];
    return e % 64 < 32 ? byte & 0xf : byte >> 4;
}

void quant_dequant_q4_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q4_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d), dmin = zt_f16_to_f32(blk.dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            quant_k_scale_min(j, blk.scales, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int e = 32 * j; e < 32 * j + 32; e++)
                dst[e] = dl * (float)q4_nibble(blk.qs, e) - ml;
        }
    }
}

void quant_dequant_q5_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q5_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d), dmin = zt_f16_to_f32(blk.dmin);
        for (int j = 0; j < 8; j++) {
            uint8_t sc, m;
            quant_k_scale_min(j, blk.scales, &sc, &m);
            float dl = d * (float)sc, ml = dmin * (float)m;
            for (int e = 32 * j; e < 32 * j + 32; e++) {
                int q = q4_nibble(blk.qs, e) | (blk.qh[e % 32] >> j & 1) << 4;
                dst[e] = dl * (float)q - ml;
            }
        }
    }
}

/* q6_K: in each 128-element half h, element e = 128 h + 32 r + l (r < 4,
 * l < 32) takes its low 4 bits from ql[64 h + 32 (r % 2) + l] (low nibble
 * for r < 2) and its top 2 bits from qh[32 h + l] at bit 2 r. */
static int q6_quant(const uint8_t *ql, const uint8_t *qh, int e) {
    int h = e / 128, r = (e % 128) / 32, l = e % 32;
    uint8_t lowbyte = ql[64 * h + 32 * (r % 2) + l];
    int low = r < 2 ? lowbyte & 0xf : lowbyte >> 4;
    int high = qh[32 * h + l] >> (2 * r) & 3;
    return (low | high << 4) - 32;
}

void quant_dequant_q6_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q6_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int e = 0; e < QK_K; e++)
            dst[e] = d * (float)blk.scales[e / 16] * (float)q6_quant(blk.ql, blk.qh, e);
    }
}

void quant_dequant_q8_k(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += QK_K) {
        block_q8_K blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        for (int e = 0; e < QK_K; e++) dst[e] = blk.d * (float)blk.qs[e];
    }
}

/* ---- sub-block fits --------------------------------------------------- */

#define FIT_STEPS  10 /* grid spacings tried: nmax +- FIT_STEPS / 10 */
#define FIT_REFINE 4  /* rounds of re-round + refit after the search */

static float sq(float v) { return v * v; }

/* Squared error of x ~ s * q - m with the quants that rounding gives;
 * fills q (0..nmax). s == 0 leaves every quant at 0. */
static float round_asym(const float *x, int n, int nmax, float s, float m, int *q) {
    float err = 0.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        q[i] = quant_round_clamp((x[i] + m) * inv, 0, nmax);
        err += sq(s * (float)q[i] - m - x[i]);
    }
    return err;
}

typedef struct {
    float s, m, err; /* x ~ s * q - m, and the squared error of that */
} asym_fit;

/* One trial of an asymmetric fit, in one pass: round x onto the grid
 * (s, m), then solve for the least-squares (s, m) of those quants under
 * the format's limits s >= 0, m >= 0 (mins are coded unsigned), and
 * return it with its error. sum_x, sum_xx: sums of x and x^2. */
static asym_fit fit_asym_grid(const float *x, int n, int nmax, float s, float m, float sum_x,
                              float sum_xx) {
    float inv = 1.0f / s, sum_qx = 0.0f;
    int sum_q = 0, sum_qq = 0; /* integer sums: exact, and no float add chain */
    for (int i = 0; i < n; i++) {
        int q = quant_round_clamp((x[i] + m) * inv, 0, nmax);
        sum_q += q;
        sum_qq += q * q;
        sum_qx += (float)q * x[i];
    }
    double det = (double)n * sum_qq - (double)sum_q * sum_q;
    double scale = 0.0, offset = 0.0;
    if (det > 0.0) {
        scale = ((double)n * sum_qx - (double)sum_q * sum_x) / det;
        offset = (sum_x - scale * sum_q) / n;
    }
    if (offset > 0.0) { /* pin the offset at 0, refit the scale alone */
        offset = 0.0;
        scale = sum_qq > 0 ? (double)sum_qx / sum_qq : 0.0;
    }
    if (!(scale > 0.0)) { /* no usable spread: the mean alone */
        scale = 0.0;
        offset = fmin(0.0, (double)sum_x / n);
    }
    /* sum (scale q + offset - x)^2, expanded over the sums */
    double err = sum_xx + scale * scale * sum_qq + n * offset * offset - 2.0 * scale * sum_qx -
                 2.0 * offset * sum_x + 2.0 * scale * offset * sum_q;
    return (asym_fit){(float)scale, (float)-offset, (float)fmax(err, 0.0)};
}

/* Fits x[0..n) ~ s * q - m with q in 0..nmax; returns s and m (both >= 0)
 * before they are coded. */
static void fit_asym(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float lo = 0.0f, hi = 0.0f, sum_x = 0.0f, sum_xx = 0.0f;
    for (int i = 0; i < n; i++) {
        lo = fminf(lo, x[i]);
        hi = fmaxf(hi, x[i]);
        sum_x += x[i];
        sum_xx += x[i] * x[i];
    }
    if (!(hi - lo > 0.0f) || !isfinite(hi - lo)) { /* all zero, or one value below zero */
        *s_out = 0.0f;
        *m_out = lo < 0.0f ? -lo : 0.0f;
        return;
    }
    asym_fit best = {0.0f, -lo, INFINITY};
    for (int step = -FIT_STEPS; step <= FIT_STEPS; step++) {
        float s = (hi - lo) / ((float)nmax + 0.1f * (float)step);
        asym_fit f = fit_asym_grid(x, n, nmax, s, -lo, sum_x, sum_xx);
        if (f.err < best.err) best = f;
    }
    for (int round = 0; round < FIT_REFINE && best.s > 0.0f; round++) {
        asym_fit f = fit_asym_grid(x, n, nmax, best.s, best.m, sum_x, sum_xx);
        if (!(f.err < best.err)) break;
        best = f;
    }
    *s_out = best.s;
    *m_out = best.m;
}

/* Squared error of x ~ s * q with q in -nneg..npos; fills q. */
static float round_sym(const float *x, int n, int nneg, int npos, float s, int *q) {
    float err = 0.0f, inv = s != 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        q[i] = quant_round_clamp(x[i] * inv, -nneg, npos);
        err += sq(s * (float)q[i] - x[i]);
    }
    return err;
}

/* One trial of a symmetric fit in one pass: round x onto the grid s, then
 * the least-squares scale of those quants; returns it, its error in *err. */
static float fit_sym_grid(const float *x, int n, int nneg, int npos, float s, float sum_xx,
                          float *err) {
    float inv = 1.0f / s, sum_qx = 0.0f;
    int sum_qq = 0;
    for (int i = 0; i < n; i++) {
        int q = quant_round_clamp(x[i] * inv, -nneg, npos);
        sum_qq += q * q;
        sum_qx += (float)q * x[i];
    }
    if (sum_qq == 0) {
        *err = sum_xx;
        return 0.0f;
    }
    *err = (float)fmax((double)sum_xx - (double)sum_qx * sum_qx / sum_qq, 0.0);
    return sum_qx / (float)sum_qq;
}

/* Fits x[0..n) ~ s * q with q in -nneg..npos. The scale is signed: the
 * grid has one more level below zero than above, and the sign of s picks
 * which side the largest magnitude lands on. */
static float fit_sym(const float *x, int n, int nneg, int npos) {
    float amax = 0.0f, max = 0.0f, sum_xx = 0.0f;
    for (int i = 0; i < n; i++) {
        if (fabsf(x[i]) > amax) {
            amax = fabsf(x[i]);
            max = x[i];
        }
        sum_xx += x[i] * x[i];
    }
    if (!(amax > 0.0f) || !isfinite(amax)) return 0.0f;
    float best_s = 0.0f, best_err = INFINITY, err;
    for (int step = -FIT_STEPS; step <= FIT_STEPS; step++) {
        for (int side = 0; side < 2; side++) {
            float levels = (float)(side ? npos : -nneg) + 0.1f * (float)step;
            if (levels == 0.0f) continue;
            float s = fit_sym_grid(x, n, nneg, npos, max / levels, sum_xx, &err);
            if (err < best_err) {
                best_err = err;
                best_s = s;
            }
        }
    }
    for (int round = 0; round < FIT_REFINE && best_s != 0.0f; round++) {
        float s = fit_sym_grid(x, n, nneg, npos, best_s, sum_xx, &err);
        if (!(err < best_err)) break;
        best_err = err;
        best_s = s;
    }
    return best_s;
}

/* ---- super-block coding ---------------------------------------------- */

/* Super-scales tried: the largest sub-block value over code_max, over
 * code_max - 1, ... The first is ggml's choice; the others win when the
 * largest sub-block codes better one step down, and they make quantizing
 * already-quantized data land back on its own grid more often. */
#define SUPER_CANDIDATES 3

/* One coding of a super-block: super-scales, per-sub-block codes (mc only
 * for the asymmetric formats), quants, and the squared error it leaves. */
typedef struct {
    uint16_t d, dmin; /* f16 */
    int sc[16], mc[16];
    int q[QK_K];
    float err;
} k_coding;

/* Codes for one asymmetric sub-block (fitted s, m) with the super-scales
 * fixed: the rounded (scale, min) codes and, when reach is 1, their
 * neighbours, keeping the pair whose re-rounded quants give the least
 * error. Returns that error. */
static float code_asym_sub(const float *x, int len, int nmax, int code_max, float d, float dmin,
                           float s, float m, int reach, int *sc, int *mc, int *q) {
    int s0 = d > 0.0f ? quant_round_clamp(s / d, 0, code_max) : 0;
    int m0 = dmin > 0.0f ? quant_round_clamp(m / dmin, 0, code_max) : 0;
    int trial[32];
    *sc = s0;
    *mc = m0;
    float best_err = round_asym(x, len, nmax, d * (float)s0, dmin * (float)m0, q);
    for (int cs = s0 - reach; cs <= s0 + reach; cs++) {
        for (int cm = m0 - reach; cm <= m0 + reach; cm++) {
            if (cs < 0 || cs > code_max || cm < 0 || cm > code_max) continue;
            float err = round_asym(x, len, nmax, d * (float)cs, dmin * (float)cm, trial);
            if (err < best_err) {
                best_err = err;
                *sc = cs;
                *mc = cm;
                memcpy(q, trial, (size_t)len * sizeof *trial);
            }
        }
    }
    return best_err;
}

/* Fills c's codes, quants and error for its super-scales c->d, c->dmin. */
static void code_asym_all(const float *x, int n_sub, int len, int nmax, int code_max,
                          const float *s, const float *m, int reach, k_coding *c) {
    float d = zt_f16_to_f32(c->d), dmin = zt_f16_to_f32(c->dmin);
    c->err = 0.0f;
    for (int j = 0; j < n_sub; j++)
        c->err += code_asym_sub(x + j * len, len, nmax, code_max, d, dmin, s[j], m[j], reach,
                                &c->sc[j], &c->mc[j], c->q + j * len);
}

/* With the codes and quants chosen, d and dmin enter x ~ d (sc q) -
 * dmin mc linearly: solve for them by least squares, round to f16,
 * re-round the quants, and keep the result if the error went down. */
static void refit_asym_super(const float *x, int n_sub, int len, int nmax, k_coding *c) {
    double aa = 0, ab = 0, bb = 0, ax = 0, bx = 0;
    for (int j = 0; j < n_sub; j++) {
        for (int i = j * len; i < (j + 1) * len; i++) {
            double a = (double)(c->sc[j] * c->q[i]), b = (double)c->mc[j];
            aa += a * a;
            ab += a * b;
            bb += b * b;
            ax += a * x[i];
            bx += b * x[i];
        }
    }
    double det = aa * bb - ab * ab;
    if (!(det > 0.0)) return;
    k_coding t = *c;
    t.d = zt_f32_to_f16((float)((ax * bb - bx * ab) / det));
    t.dmin = zt_f32_to_f16((float)((ax * ab - bx * aa) / det));
    float d = zt_f16_to_f32(t.d), dmin = zt_f16_to_f32(t.dmin);
    if (!(d >= 0.0f && dmin >= 0.0f)) return;
    t.err = 0.0f;
    for (int j = 0; j < n_sub; j++)
        t.err += round_asym(x + j * len, len, nmax, d * (float)t.sc[j], dmin * (float)t.mc[j],
                            t.q + j * len);
    if (t.err < c->err) *c = t;
}

/* A super-block of n_sub sub-blocks of len elements, x ~ (d * sc) q -
 * (dmin * mc) with codes sc, mc in 0..code_max and quants in 0..nmax. */
static void code_asym(const float *x, int n_sub, int len, int nmax, int code_max, k_coding *best) {
    float s[16], m[16], max_s = 0.0f, max_m = 0.0f; /* [n_sub] fitted, uncoded */
    for (int j = 0; j < n_sub; j++) {
        fit_asym(x + j * len, len, nmax, &s[j], &m[j]);
        max_s = fmaxf(max_s, s[j]);
        max_m = fmaxf(max_m, m[j]);
    }
    /* d's candidates with dmin at ggml's choice, then dmin's with the best
     * d, ranked on the plainly rounded codes; the winner then searches the
     * codes' neighbours. */
    k_coding trial;
    best->err = INFINITY;
    for (int k = 0; k < SUPER_CANDIDATES; k++) {
        trial.d = zt_f32_to_f16(max_s / (float)(code_max - k));
        trial.dmin = zt_f32_to_f16(max_m / (float)code_max);
        code_asym_all(x, n_sub, len, nmax, code_max, s, m, 0, &trial);
        if (k == 0 || trial.err < best->err) *best = trial;
    }
    for (int k = 1; k < SUPER_CANDIDATES; k++) {
        trial.d = best->d;
        trial.dmin = zt_f32_to_f16(max_m / (float)(code_max - k));
        code_asym_all(x, n_sub, len, nmax, code_max, s, m, 0, &trial);
        if (trial.err < best->err) *best = trial;
    }
    code_asym_all(x, n_sub, len, nmax, code_max, s, m, 1, best);
    refit_asym_super(x, n_sub, len, nmax, best);
}

/* As code_asym_sub for a symmetric sub-block: signed code c with
 * neighbours, x ~ (d * c) q. */
static float code_sym_sub(const float *x, int len, int nneg, int npos, int code_neg, int code_pos,
                          float d, float s, int reach, int *sc, int *q) {
    int c0 = d != 0.0f ? quant_round_clamp(s / d, -code_neg, code_pos) : 0;
    int trial[32];
    *sc = c0;
    float best_err = round_sym(x, len, nneg, npos, d * (float)c0, q);
    for (int c = c0 - reach; c <= c0 + reach; c++) {
        if (c < -code_neg || c > code_pos) continue;
        float err = round_sym(x, len, nneg, npos, d * (float)c, trial);
        if (err < best_err) {
            best_err = err;
            *sc = c;
            memcpy(q, trial, (size_t)len * sizeof *trial);
        }
    }
    return best_err;
}

/* Fills c's codes, quants and error for its super-scale c->d. */
static void code_sym_all(const float *x, int n_sub, int len, int nneg, int npos, int code_neg,
                         int code_pos, const float *s, int reach, k_coding *c) {
    float d = zt_f16_to_f32(c->d);
    c->err = 0.0f;
    for (int j = 0; j < n_sub; j++)
        c->err += code_sym_sub(x + j * len, len, nneg, npos, code_neg, code_pos, d, s[j], reach,
                               &c->sc[j], c->q + j * len);
}

/* A super-block of n_sub sub-blocks of len elements, x ~ (d * sc) q with
 * signed codes sc in -code_neg..code_pos and q in -nneg..npos. */
static void code_sym(const float *x, int n_sub, int len, int nneg, int npos, int code_neg,
                     int code_pos, k_coding *best) {
    float s[16], max = 0.0f; /* [n_sub] fitted, uncoded */
    for (int j = 0; j < n_sub; j++) {
        s[j] = fit_sym(x + j * len, len, nneg, npos);
        if (fabsf(s[j]) > fabsf(max)) max = s[j];
    }
    k_coding trial;
    best->err = INFINITY;
    for (int k = 0; k < SUPER_CANDIDATES; k++) {
        /* like the quants, the largest scale takes the extra negative code */
        trial.d = zt_f32_to_f16(max / (float)-(code_neg - k));
        trial.dmin = 0;
        code_sym_all(x, n_sub, len, nneg, npos, code_neg, code_pos, s, 0, &trial);
        if (k == 0 || trial.err < best->err) *best = trial;
    }
    code_sym_all(x, n_sub, len, nneg, npos, code_neg, code_pos, s, 1, best);
}

/* ---- quantizers: codes and quants into the GGUF bit layouts ----------- */

/* Low two bits of quant e into a q2_K/q3_K qs array (see q2_bits). */
static void q2_put(uint8_t *qs, int e, int bits) {
    qs[32 * (e / 128) + e % 32] |= (uint8_t)((bits & 3) << (2 * ((e % 128) / 32)));
}

void quant_quantize_q2_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q2_K blk;
        k_coding c;
        memset(&blk, 0, sizeof blk);
        code_asym(src, 16, 16, 3, 15, &c);
        blk.d = c.d;
        blk.dmin = c.dmin;
        for (int j = 0; j < 16; j++) blk.scales[j] = (uint8_t)(c.sc[j] | c.mc[j] << 4);
        for (int e = 0; e < QK_K; e++) q2_put(blk.qs, e, c.q[e]);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

void quant_quantize_q3_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q3_K blk;
        k_coding c;
        memset(&blk, 0, sizeof blk);
        code_sym(src, 16, 16, 4, 3, 32, 31, &c);
        blk.d = c.d;
        for (int i = 0; i < 16; i++) { /* inverse of q3_code */
            int code = c.sc[i] + 32;
            blk.scales[i % 8] |= (uint8_t)((code & 0xf) << (i < 8 ? 0 : 4));
            blk.scales[8 + i % 4] |= (uint8_t)((code >> 4) << (2 * (i / 4)));
        }
        for (int e = 0; e < QK_K; e++) {
            q2_put(blk.qs, e, c.q[e] + 4);
            if (c.q[e] >= 0) blk.hmask[e % 32] |= (uint8_t)(1 << (e / 32));
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

/* Inverse of quant_k_scale_min for 8 (scale, min) code pairs. */
static void k_pack_scale_min(uint8_t scales[K_SCALE_SIZE], const int *sc, const int *mc) {
    memset(scales, 0, K_SCALE_SIZE);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            scales[j] |= (uint8_t)sc[j];
            scales[j + 4] |= (uint8_t)mc[j];
        } else {
            scales[j + 4] = (uint8_t)((sc[j] & 0xf) | (mc[j] & 0xf) << 4);
            scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
            scales[j] |= (uint8_t)((mc[j] >> 4) << 6);
        }
    }
}

/* Low 4 bits of quant e into a q4_K/q5_K qs array (see q4_nibble). */
static void q4_put(uint8_t *qs, int e, int q) {
    qs[32 * (e / 64) + e % 32] |= (uint8_t)((q & 0xf) << (e % 64 < 32 ? 0 : 4));
}

void quant_quantize_q4_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q4_K blk;
        k_coding c;
        memset(&blk, 0, sizeof blk);
        code_asym(src, 8, 32, 15, 63, &c);
        blk.d = c.d;
        blk.dmin = c.dmin;
        k_pack_scale_min(blk.scales, c.sc, c.mc);
        for (int e = 0; e < QK_K; e++) q4_put(blk.qs, e, c.q[e]);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

void quant_quantize_q5_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q5_K blk;
        k_coding c;
        memset(&blk, 0, sizeof blk);
        code_asym(src, 8, 32, 31, 63, &c);
        blk.d = c.d;
        blk.dmin = c.dmin;
        k_pack_scale_min(blk.scales, c.sc, c.mc);
        for (int e = 0; e < QK_K; e++) {
            q4_put(blk.qs, e, c.q[e]);
            blk.qh[e % 32] |= (uint8_t)((c.q[e] >> 4) << (e / 32));
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

void quant_quantize_q6_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q6_K blk;
        k_coding c;
        memset(&blk, 0, sizeof blk);
        code_sym(src, 16, 16, 32, 31, 128, 127, &c);
        blk.d = c.d;
        for (int j = 0; j < 16; j++) blk.scales[j] = (int8_t)c.sc[j];
        for (int e = 0; e < QK_K; e++) { /* inverse of q6_quant */
            int u = c.q[e] + 32, h = e / 128, r = (e % 128) / 32, l = e % 32;
            blk.ql[64 * h + 32 * (r % 2) + l] |= (uint8_t)((u & 0xf) << (r < 2 ? 0 : 4));
            blk.qh[32 * h + l] |= (uint8_t)((u >> 4) << (2 * r));
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

/* q8_K is ggml's activation format for k-quant dot products: the largest
 * magnitude maps to -127 (never -128, so kernels may negate a quant), and
 * bsums holds the sum of each 16 quants. */
void quant_quantize_q8_k(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += QK_K) {
        block_q8_K blk;
        float amax = 0.0f, max = 0.0f;
        for (int e = 0; e < QK_K; e++) {
            if (fabsf(src[e]) > amax) {
                amax = fabsf(src[e]);
                max = src[e];
            }
        }
        float iscale = amax > 0.0f ? -127.0f / max : 0.0f;
        blk.d = iscale != 0.0f ? 1.0f / iscale : 0.0f;
        for (int e = 0; e < QK_K; e++)
            blk.qs[e] = (int8_t)quant_clamp_int(roundf(iscale * src[e]), -127, 127);
        for (int j = 0; j < QK_K / 16; j++) {
            int sum = 0;
            for (int e = 16 * j; e < 16 * j + 16; e++) sum += blk.qs[e];
            blk.bsums[j] = (int16_t)sum;
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}
