/*
 * AVX2 matmul kernels for machines without AVX-512 (AVX-VNNI vpdpbusd when
 * the compiler targets it, vpmaddubsw + vpmaddwd otherwise), on the panel
 * layouts of matmul_impl.h.
 *
 * The same method as matmul_avx512.c with 8-lane registers: a tile is
 * R <= CPU_AVX2_MR activation rows times one half of a panel (8 outputs,
 * the low or high 32 bytes of each 64-byte weight vector), so a panel is
 * read in two passes, the second from L1/L2. Decode streams the weights
 * once from memory; this path is meant for correctness and decode speed on
 * older x86, not for prefill records.
 *
 * Without VNNI, vpmaddubsw sums two u8 x s8 products into a saturating
 * int16. The codes of Q4_0/Q4_K/Q5_K/Q6_K are below 64, so those sums stay
 * below 2 * 63 * 127 and are exact; Q8_0 codes reach 255, so there the
 * kernel multiplies |w| by sign(a, w) instead (|w| <= 128: exact too) and
 * starts from 0 rather than from the -128 * sum(a) offset term.
 */
#include "backend/cpu/matmul_impl.h"

#ifdef CPU_HAVE_AVX2

#include <immintrin.h>
#include <string.h>

#define AI          static inline __attribute__((always_inline))
#define CPU_AVX2_MR 2

/* acc + 4-byte dot products, for u below 128. */
AI __m256i dp_small(__m256i acc, __m256i u, __m256i s) {
#ifdef __AVXVNNI__
    return _mm256_dpbusd_avx_epi32(acc, u, s);
#else
    return _mm256_add_epi32(acc,
                            _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}

/* As in matmul_avx512.c: one-row decode prefetches the panel this far
 * ahead (the first of the two half-panel passes brings the lines in;
 * prefetching the next panel during the second pass measured no better). */
#ifndef CPU_DECODE_PREFETCH
#define CPU_DECODE_PREFETCH 4096
#endif

AI void prefetch_ahead(const uint8_t *p, int bytes, int R, int h) {
    if (CPU_DECODE_PREFETCH == 0 || R != 1 || h != 0) return;
    for (int i = 0; i < bytes; i += 64)
        _mm_prefetch((const char *)p + CPU_DECODE_PREFETCH + i, _MM_HINT_T0);
}

AI __m256i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

AI __m256 f16x8(const uint8_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)p));
}
AI __m256 i8x8(const uint8_t *p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p)));
}
AI __m256i v32(const uint8_t *p) { return _mm256_loadu_si256((const __m256i *)(const void *)p); }

/* (a & m) | (b & k): nibble plus high bits. */
AI __m256i merge_bits(__m256i lo, __m256i hi_shifted, __m256i hmask) {
    return _mm256_or_si256(lo, _mm256_and_si256(hi_shifted, hmask));
}

AI __m256i bit_to_4(__m256i h, int bit) {
    if (bit < 4) return _mm256_slli_epi16(h, 4 - bit);
    if (bit > 4) return _mm256_srli_epi16(h, bit - 4);
    return h;
}

typedef struct rows2 {
    const int8_t *q[CPU_AVX2_MR];
    const float *d[CPU_AVX2_MR];
    const int32_t *aux[CPU_AVX2_MR];
    const float *dsa[CPU_AVX2_MR];
    const float *x[CPU_AVX2_MR];
} rows2;

AI void rows_init(rows2 *t, const cpu_act *a, int r0, int R, int quant) {
    for (int r = 0; r < R; r++) {
        int64_t row = r0 + r;
        if (quant) {
            t->q[r] = a->q + row * a->ld_q;
            t->d[r] = a->d + row * a->ld_d;
            t->aux[r] = a->aux + row * a->ld_aux;
            t->dsa[r] = cpu_act_auxf(a, (int)row);
        } else {
            t->x[r] = a->x + row * a->n_in;
        }
    }
}

/* Stores R rows of 8 outputs, the first n_valid of them. */
AI void store8(float *y, int ld_y, int n_valid, const __m256 *acc, int R) {
    for (int r = 0; r < R; r++) {
        if (n_valid == 8) {
            _mm256_storeu_ps(y + (int64_t)r * ld_y, acc[r]);
        } else {
            float tmp[8];
            _mm256_storeu_ps(tmp, acc[r]);
            memcpy(y + (int64_t)r * ld_y, tmp, sizeof(float) * (size_t)n_valid);
        }
    }
}

/* In every kernel `h` (0/1) selects outputs 8h .. 8h + 7 of the panel. */

AI void tile_q4_0(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                  int n_valid, const int R) {
    rows2 t;
    rows_init(&t, a, r0, R, 1);
    __m256 acc[CPU_AVX2_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < a->n_in / 32; b++) {
        const uint8_t *pb = panel + b * 288;
        prefetch_ahead(pb, 288, R, h);
        __m256i s[CPU_AVX2_MR];
        for (int r = 0; r < R; r++) s[r] = _mm256_set1_epi32(t.aux[r][b]);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m256i p = v32(pb + 32 + 64 * v + 32 * h);
            __m256i lo = _mm256_and_si256(p, m4),
                    hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
            for (int r = 0; r < R; r++) {
                s[r] = dp_small(s[r], lo, bcast4(t.q[r] + 32 * b + 4 * v));
                s[r] = dp_small(s[r], hi, bcast4(t.q[r] + 32 * b + 16 + 4 * v));
            }
        }
        __m256 dw = f16x8(pb + 16 * h);
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r]),
                                     _mm256_mul_ps(dw, _mm256_set1_ps(t.d[r][b])), acc[r]);
    }
    store8(y, ld_y, n_valid, acc, R);
}

AI void tile_q8_0(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                  int n_valid, const int R) {
    rows2 t;
    rows_init(&t, a, r0, R, 1);
    __m256 acc[CPU_AVX2_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < a->n_in / 32; b++) {
        const uint8_t *pb = panel + b * 544;
        prefetch_ahead(pb, 544, R, h);
        __m256i s[CPU_AVX2_MR];
#ifdef __AVXVNNI__
        for (int r = 0; r < R; r++) s[r] = _mm256_set1_epi32(t.aux[r][b]);
#else
        for (int r = 0; r < R; r++) s[r] = _mm256_setzero_si256();
        const __m256i flip = _mm256_set1_epi8((char)0x80), ones = _mm256_set1_epi16(1);
#endif
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m256i code = v32(pb + 32 + 64 * g + 32 * h);
#ifdef __AVXVNNI__
            for (int r = 0; r < R; r++)
                s[r] = _mm256_dpbusd_avx_epi32(s[r], code, bcast4(t.q[r] + 32 * b + 4 * g));
#else
            __m256i w = _mm256_xor_si256(code, flip), aw = _mm256_abs_epi8(w);
            for (int r = 0; r < R; r++) {
                __m256i sa = _mm256_sign_epi8(bcast4(t.q[r] + 32 * b + 4 * g), w);
                s[r] =
                    _mm256_add_epi32(s[r], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, sa), ones));
            }
#endif
        }
        __m256 dw = f16x8(pb + 16 * h);
        for (int r = 0; r < R; r++)
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s[r]),
                                     _mm256_mul_ps(dw, _mm256_set1_ps(t.d[r][b])), acc[r]);
    }
    store8(y, ld_y, n_valid, acc, R);
}

AI void tile_q45_k(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                   int n_valid, const int R, const int q5) {
    const int pbytes = q5 ? 2816 : 2304;
    rows2 t;
    rows_init(&t, a, r0, R, 1);
    __m256 acc[CPU_AVX2_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m10 = _mm256_set1_epi8(0x10);
    for (int64_t sb = 0; sb < a->n_in / 256; sb++) {
        const uint8_t *pb = panel + sb * pbytes;
        prefetch_ahead(pb, pbytes, R, h);
        __m256 dw = f16x8(pb + 16 * h), dmin = f16x8(pb + 32 + 16 * h);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m256i slo[CPU_AVX2_MR], shi[CPU_AVX2_MR];
            for (int r = 0; r < R; r++) slo[r] = shi[r] = _mm256_setzero_si256();
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                __m256i p = v32(pb + CPU_QK_QS + (c * 8 + v) * 64 + 32 * h);
                __m256i lo = _mm256_and_si256(p, m4),
                        hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), m4);
                if (q5) {
                    __m256i hb = v32(pb + CPU_QK_QH + v * 64 + 32 * h);
                    lo = merge_bits(lo, bit_to_4(hb, 2 * c), m10);
                    hi = merge_bits(hi, bit_to_4(hb, 2 * c + 1), m10);
                }
                const int64_t k = 256 * sb + 64 * c + 4 * v;
                for (int r = 0; r < R; r++) {
                    slo[r] = dp_small(slo[r], lo, bcast4(t.q[r] + k));
                    shi[r] = dp_small(shi[r], hi, bcast4(t.q[r] + k + 32));
                }
            }
            for (int half = 0; half < 2; half++) {
                int s = 2 * c + half;
                int64_t b = sb * 8 + s;
                __m128i scu, mnu;
                cpu_k_scale_min16(pb + CPU_QK_PLANES, s, &scu, &mnu);
                if (h) {
                    scu = _mm_srli_si128(scu, 8);
                    mnu = _mm_srli_si128(mnu, 8);
                }
                __m256 sc = _mm256_mul_ps(dw, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(scu)));
                __m256 mn = _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(mnu)));
                for (int r = 0; r < R; r++) {
                    __m256i sum = half ? shi[r] : slo[r];
                    acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum),
                                             _mm256_mul_ps(sc, _mm256_set1_ps(t.d[r][b])), acc[r]);
                    acc[r] = _mm256_fnmadd_ps(mn, _mm256_set1_ps(t.dsa[r][b]), acc[r]);
                }
            }
        }
    }
    store8(y, ld_y, n_valid, acc, R);
}

AI void tile_q6_k(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                  int n_valid, const int R) {
    rows2 t;
    rows_init(&t, a, r0, R, 1);
    __m256 acc[CPU_AVX2_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    for (int64_t sb = 0; sb < a->n_in / 256; sb++) {
        const uint8_t *pb = panel + sb * 3360;
        prefetch_ahead(pb, 3360, R, h);
        __m256 dw = f16x8(pb + 16 * h);
        for (int nh = 0; nh < 4; nh++) {
            const int n = nh >> 1, hl = nh & 1;
            __m256i s[4][CPU_AVX2_MR];
            for (int tt = 0; tt < 4; tt++)
                for (int r = 0; r < R; r++)
                    s[tt][r] = _mm256_set1_epi32(t.aux[r][sb * 16 + 8 * n + 2 * tt + hl]);
#pragma GCC unroll 4
            for (int l = 4 * hl; l < 4 * hl + 4; l++) {
                __m256i qa = v32(pb + 288 + (16 * n + l) * 64 + 32 * h);
                __m256i qb = v32(pb + 288 + (16 * n + 8 + l) * 64 + 32 * h);
                __m256i qh = v32(pb + 2336 + (8 * n + l) * 64 + 32 * h);
                __m256i g[4];
                g[0] = merge_bits(_mm256_and_si256(qa, m4), _mm256_slli_epi16(qh, 4), m30);
                g[1] = merge_bits(_mm256_and_si256(qb, m4), _mm256_slli_epi16(qh, 2), m30);
                g[2] = merge_bits(_mm256_and_si256(_mm256_srli_epi16(qa, 4), m4), qh, m30);
                g[3] = merge_bits(_mm256_and_si256(_mm256_srli_epi16(qb, 4), m4),
                                  _mm256_srli_epi16(qh, 2), m30);
                const int64_t k = 256 * sb + 128 * n + 4 * l;
#pragma GCC unroll 4
                for (int tt = 0; tt < 4; tt++)
                    for (int r = 0; r < R; r++)
                        s[tt][r] = dp_small(s[tt][r], g[tt], bcast4(t.q[r] + k + 32 * tt));
            }
#pragma GCC unroll 4
            for (int tt = 0; tt < 4; tt++) {
                int g16 = 8 * n + 2 * tt + hl;
                __m256 sc = _mm256_mul_ps(dw, i8x8(pb + 32 + 16 * g16 + 8 * h));
                for (int r = 0; r < R; r++)
                    acc[r] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(s[tt][r]),
                        _mm256_mul_ps(sc, _mm256_set1_ps(t.d[r][sb * 8 + g16 / 2])), acc[r]);
            }
        }
    }
    store8(y, ld_y, n_valid, acc, R);
}

AI __m256 load_wf(const uint8_t *p, int kind) {
    if (kind == CPU_W_F32) return _mm256_loadu_ps((const void *)p);
    if (kind == CPU_W_F16) return f16x8(p);
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

AI void tile_float(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                   int n_valid, const int R, const int kind) {
    const int elem = kind == CPU_W_F32 ? 4 : 2, step = 16 * elem;
    rows2 t;
    rows_init(&t, a, r0, R, 0);
    __m256 acc[CPU_AVX2_MR];
    int64_t n = a->n_in, i = 0;
    const uint8_t *ph = panel + 8 * elem * h;
    if (R == 1) {
        __m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (; i + 4 <= n; i += 4) {
            const uint8_t *p = ph + i * step;
            c0 = _mm256_fmadd_ps(_mm256_set1_ps(t.x[0][i]), load_wf(p, kind), c0);
            c1 = _mm256_fmadd_ps(_mm256_set1_ps(t.x[0][i + 1]), load_wf(p + step, kind), c1);
            c2 = _mm256_fmadd_ps(_mm256_set1_ps(t.x[0][i + 2]), load_wf(p + 2 * step, kind), c2);
            c3 = _mm256_fmadd_ps(_mm256_set1_ps(t.x[0][i + 3]), load_wf(p + 3 * step, kind), c3);
        }
        acc[0] = _mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3));
    } else {
        for (int r = 0; r < R; r++) acc[r] = _mm256_setzero_ps();
    }
    for (; i < n; i++) {
        __m256 w = load_wf(ph + i * step, kind);
        for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(t.x[r][i]), w, acc[r]);
    }
    store8(y, ld_y, n_valid, acc, R);
}

/* ---- drivers ------------------------------------------------------------------- */

typedef void (*tile_fn)(const uint8_t *panel, const cpu_act *a, int r0, int h, float *y, int ld_y,
                        int n_valid);

#define TILE_SET(name, call)                                                                       \
    static void name##_1(const uint8_t *p, const cpu_act *a, int r0, int h, float *y, int ld,      \
                         int nv) {                                                                 \
        call(p, a, r0, h, y, ld, nv, 1);                                                           \
    }                                                                                              \
    static void name##_2(const uint8_t *p, const cpu_act *a, int r0, int h, float *y, int ld,      \
                         int nv) {                                                                 \
        call(p, a, r0, h, y, ld, nv, 2);                                                           \
    }                                                                                              \
    static const tile_fn name##_fns[CPU_AVX2_MR] = {name##_1, name##_2};

#define CALL_Q4_K(p, a, r0, h, y, ld, nv, R) tile_q45_k(p, a, r0, h, y, ld, nv, R, 0)
#define CALL_Q5_K(p, a, r0, h, y, ld, nv, R) tile_q45_k(p, a, r0, h, y, ld, nv, R, 1)
#define CALL_F32(p, a, r0, h, y, ld, nv, R)  tile_float(p, a, r0, h, y, ld, nv, R, CPU_W_F32)
#define CALL_F16(p, a, r0, h, y, ld, nv, R)  tile_float(p, a, r0, h, y, ld, nv, R, CPU_W_F16)
#define CALL_BF16(p, a, r0, h, y, ld, nv, R) tile_float(p, a, r0, h, y, ld, nv, R, CPU_W_BF16)

TILE_SET(q4_0, tile_q4_0)
TILE_SET(q8_0, tile_q8_0)
TILE_SET(q4_k, CALL_Q4_K)
TILE_SET(q5_k, CALL_Q5_K)
TILE_SET(q6_k, tile_q6_k)
TILE_SET(f32, CALL_F32)
TILE_SET(f16, CALL_F16)
TILE_SET(bf16, CALL_BF16)

static const tile_fn *tiles_for(int kind) {
    switch (kind) {
    case CPU_W_F32:
        return f32_fns;
    case CPU_W_F16:
        return f16_fns;
    case CPU_W_BF16:
        return bf16_fns;
    case CPU_W_Q8_0:
        return q8_0_fns;
    case CPU_W_Q4_0:
        return q4_0_fns;
    case CPU_W_Q4_K:
        return q4_k_fns;
    case CPU_W_Q5_K:
        return q5_k_fns;
    case CPU_W_Q6_K:
        return q6_k_fns;
    default:
        return NULL;
    }
}

int cpu_rect_avx2(const cpu_rect *j) {
    const tile_fn *fns = tiles_for(j->kind);
    if (!fns) return 0;
    const cpu_wformat *f = &cpu_wformats[j->kind];
    size_t panel_bytes = (size_t)(j->w->n_in / f->kb) * f->pb;
    for (int64_t p = j->p0; p < j->p1; p++) {
        const uint8_t *panel = (const uint8_t *)j->w->data + (size_t)p * panel_bytes;
        int64_t left = j->w->n_out - p * CPU_NR;
        for (int h = 0; h < 2; h++) {
            int64_t nv = left - 8 * h;
            if (nv <= 0) break;
            for (int r = j->r0; r < j->r1; r += CPU_AVX2_MR) {
                int nr = j->r1 - r < CPU_AVX2_MR ? j->r1 - r : CPU_AVX2_MR;
                fns[nr - 1](panel, j->act, r, h, j->y + (int64_t)r * j->ld_y + p * CPU_NR + 8 * h,
                            j->ld_y, nv < 8 ? (int)nv : 8);
            }
        }
    }
    return 1;
}

/* ---- activation quantization ---------------------------------------------------- */

static inline float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline int32_t hsum8(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    return _mm_cvtsi128_si32(s);
}

/* The low byte of each of 8 int32 lanes, in order, as 8 bytes. */
static inline void store_bytes8(int8_t *dst, __m256i v) {
    const __m256i pick =
        _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4, 8, 12,
                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
    __m256i b = _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, pick),
                                            _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1));
    _mm_storel_epi64((__m128i *)(void *)dst, _mm256_castsi256_si128(b));
}

void cpu_quantize_row_avx2(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16) {
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
    for (int64_t b = 0; b < n / 32; b++) {
        __m256 xv[4];
        __m256 m = _mm256_setzero_ps();
        for (int i = 0; i < 4; i++) {
            xv[i] = _mm256_loadu_ps(x + 32 * b + 8 * i);
            m = _mm256_max_ps(m, _mm256_and_ps(xv[i], absmask));
        }
        float amax = hmax8(m);
        float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        __m256 vid = _mm256_set1_ps(id);
        __m256i iv[4];
        for (int i = 0; i < 4; i++) {
            iv[i] = _mm256_cvtps_epi32(_mm256_mul_ps(xv[i], vid));
            iv[i] = _mm256_max_epi32(_mm256_min_epi32(iv[i], hi), lo);
            store_bytes8(q + 32 * b + 8 * i, iv[i]);
        }
        sum16[2 * b] = hsum8(_mm256_add_epi32(iv[0], iv[1]));
        sum16[2 * b + 1] = hsum8(_mm256_add_epi32(iv[2], iv[3]));
    }
}

#else
typedef int cpu_matmul_avx2_unused; /* ISO C wants a declaration */
#endif
