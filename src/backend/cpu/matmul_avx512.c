/*
 * AVX-512 matmul kernels (VNNI vpdpbusd where the compiler targets it, an
 * exact two-vpmaddwd emulation otherwise) on the panel layouts of
 * matmul_impl.h.
 *
 * A tile is R activation rows (R <= CPU_AVX512_MR) times one panel of 16
 * outputs, over the whole input length: one zmm accumulator per row holds
 * the 16 outputs. For each 4-input group the 64-byte weight vector (16
 * outputs x 4 codes) meets a broadcast of the row's 4 int8 activations in
 * one vpdpbusd, so a weight load is shared by R rows and an activation
 * load by 16 outputs. Per block of 32 inputs (16 for Q6_K) the int32 sums
 * are converted and scaled in f32 exactly as the scalar kernels in
 * matmul.c do, so the results agree to the bit.
 *
 * Decode (R = 1) streams each weight byte once; the work per 64 weight
 * bytes is a few integer ops, far below the memory time. Prefill uses
 * R = CPU_AVX512_MR rows per weight load (the AMX path takes over for
 * CPU_AMX_MIN_ROWS+ rows where AMX exists).
 */
#include "backend/cpu/matmul_impl.h"

#ifdef CPU_HAVE_AVX512

#include <immintrin.h>
#include <string.h>

#define AI            static inline __attribute__((always_inline))
#define CPU_AVX512_MR 4

AI __m512i dpbusd(__m512i acc, __m512i u, __m512i s) {
#ifdef __AVX512VNNI__
    return _mm512_dpbusd_epi32(acc, u, s);
#else
    /* Exact for all u8 x s8: even and odd bytes widened to 16 bits. */
    __m512i ue = _mm512_and_si512(u, _mm512_set1_epi16(0x00ff)), uo = _mm512_srli_epi16(u, 8);
    __m512i se = _mm512_srai_epi16(_mm512_slli_epi16(s, 8), 8), so = _mm512_srai_epi16(s, 8);
    return _mm512_add_epi32(acc,
                            _mm512_add_epi32(_mm512_madd_epi16(ue, se), _mm512_madd_epi16(uo, so)));
#endif
}

/* The 4 activation bytes at p in every lane. */
AI __m512i bcast4(const int8_t *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

AI __m512 load_f16x16(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}

/* 16 u8 / i8 at p as f32. */
AI __m512 load_i8x16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}

AI __m512i loadv(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

/* Moves bit `bit` of every byte of h to bit 4 (other bits: garbage). */
AI __m512i bit_to_4(__m512i h, int bit) {
    if (bit < 4) return _mm512_slli_epi16(h, (unsigned)(4 - bit));
    if (bit > 4) return _mm512_srli_epi16(h, (unsigned)(bit - 4));
    return h;
}

/* Decode streams each panel from memory once: with one row, prefetch this
 * far ahead of the block being read (0: leave it to the hardware). On the
 * 2-core Sapphire Rapids VM, 4 KB ahead raised one-row Q4_0 decode from
 * about 7.5 to 10-14 GB/s (bench/cpu_matmul_bench.c, shared machine). */
#ifndef CPU_DECODE_PREFETCH
#define CPU_DECODE_PREFETCH 4096
#endif

/* Prefetches the `bytes` that follow p + CPU_DECODE_PREFETCH, for R == 1. */
AI void prefetch_ahead(const uint8_t *p, int bytes, int R) {
    if (CPU_DECODE_PREFETCH == 0 || R != 1) return;
    for (int i = 0; i < bytes; i += 64)
        _mm_prefetch((const char *)p + CPU_DECODE_PREFETCH + i, _MM_HINT_T0);
}

/* a | (b & c), one vpternlogd. */
AI __m512i or_and(__m512i a, __m512i b, __m512i c) {
    return _mm512_ternarylogic_epi32(a, b, c, 0xf8);
}

/* Row pointers of a tile. */
typedef struct tile_rows {
    const int8_t *q[CPU_AVX512_MR];
    const float *d[CPU_AVX512_MR];
    const int32_t *aux[CPU_AVX512_MR];
    const float *x[CPU_AVX512_MR];
} tile_rows;

/* quant: the kernel reads the quantized rows (else the f32 rows). */
AI void tile_rows_init(tile_rows *t, const cpu_act *a, int r0, int R, int quant) {
    for (int r = 0; r < R; r++) {
        int64_t row = r0 + r;
        if (quant) {
            t->q[r] = a->q + row * a->ld_q;
            t->d[r] = a->d + row * a->ld_d;
            t->aux[r] = a->aux + row * a->ld_aux;
        } else {
            t->x[r] = a->x + row * a->n_in;
        }
    }
}

AI void store_rows(float *y, int ld_y, __mmask16 mask, const __m512 *acc, int R) {
#pragma GCC unroll 8
    for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (int64_t)r * ld_y, mask, acc[r]);
}

/* ---- Q4_0 and Q8_0: 32-input blocks ---------------------------------------- */

AI void tile_q4_0(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                  __mmask16 mask, const int R) {
    tile_rows t;
    tile_rows_init(&t, a, r0, R, 1);
    __m512 acc[CPU_AVX512_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    int64_t nb = a->n_in / 32;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * 288;
        prefetch_ahead(pb, 288, R);
        /* two sums per row (low and high nibbles) halve the vpdpbusd
         * dependency chain, which bounds the one-row case */
        __m512i s[CPU_AVX512_MR], s2[CPU_AVX512_MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            s[r] = _mm512_set1_epi32(t.aux[r][b]);
            s2[r] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) {
            __m512i p = loadv(pb + 32 + 64 * v);
            __m512i lo = _mm512_and_si512(p, m4),
                    hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) {
                s[r] = dpbusd(s[r], lo, bcast4(t.q[r] + 32 * b + 4 * v));
                s2[r] = dpbusd(s2[r], hi, bcast4(t.q[r] + 32 * b + 16 + 4 * v));
            }
        }
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) s[r] = _mm512_add_epi32(s[r], s2[r]);
        __m512 dw = load_f16x16(pb);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(t.d[r][b])), acc[r]);
    }
    store_rows(y, ld_y, mask, acc, R);
}

AI void tile_q8_0(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                  __mmask16 mask, const int R) {
    tile_rows t;
    tile_rows_init(&t, a, r0, R, 1);
    __m512 acc[CPU_AVX512_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    int64_t nb = a->n_in / 32;
    for (int64_t b = 0; b < nb; b++) {
        const uint8_t *pb = panel + b * 544;
        prefetch_ahead(pb, 544, R);
        __m512i s[CPU_AVX512_MR];
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) s[r] = _mm512_set1_epi32(t.aux[r][b]);
#pragma GCC unroll 8
        for (int g = 0; g < 8; g++) {
            __m512i w = loadv(pb + 32 + 64 * g);
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) s[r] = dpbusd(s[r], w, bcast4(t.q[r] + 32 * b + 4 * g));
        }
        __m512 dw = load_f16x16(pb);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++)
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]),
                                     _mm512_mul_ps(dw, _mm512_set1_ps(t.d[r][b])), acc[r]);
    }
    store_rows(y, ld_y, mask, acc, R);
}

/* ---- Q4_K and Q5_K: 256-input super-blocks, sub-blocks in pairs ---------- */

AI void tile_q45_k(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                   __mmask16 mask, const int R, const int q5) {
    const int pbytes = q5 ? 2816 : 2304;
    tile_rows t;
    tile_rows_init(&t, a, r0, R, 1);
    const float *dsa[CPU_AVX512_MR];
    for (int r = 0; r < R; r++) dsa[r] = cpu_act_auxf(a, r0 + r);
    __m512 acc[CPU_AVX512_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), m10 = _mm512_set1_epi8(0x10);
    int64_t nsb = a->n_in / 256;
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = panel + sb * pbytes;
        prefetch_ahead(pb, pbytes, R);
        __m512 dw = load_f16x16(pb), dmin = load_f16x16(pb + 32);
#pragma GCC unroll 4
        for (int c = 0; c < 4; c++) {
            __m512i slo[CPU_AVX512_MR], shi[CPU_AVX512_MR];
#pragma GCC unroll 8
            for (int r = 0; r < R; r++) slo[r] = shi[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
            for (int v = 0; v < 8; v++) {
                __m512i p = loadv(pb + CPU_QK_QS + (c * 8 + v) * 64);
                __m512i lo = _mm512_and_si512(p, m4),
                        hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                if (q5) {
                    __m512i h = loadv(pb + CPU_QK_QH + v * 64);
                    __m512i hl = bit_to_4(h, 2 * c), hh = bit_to_4(h, 2 * c + 1);
                    lo = or_and(lo, hl, m10);
                    hi = or_and(hi, hh, m10);
                }
                const int64_t k = 256 * sb + 64 * c + 4 * v;
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    slo[r] = dpbusd(slo[r], lo, bcast4(t.q[r] + k));
                    shi[r] = dpbusd(shi[r], hi, bcast4(t.q[r] + k + 32));
                }
            }
#pragma GCC unroll 2
            for (int half = 0; half < 2; half++) {
                int s = 2 * c + half;
                int64_t b = sb * 8 + s;
                __m128i scu, mnu;
                cpu_k_scale_min16(pb + CPU_QK_PLANES, s, &scu, &mnu);
                __m512 sc = _mm512_mul_ps(dw, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(scu)));
                __m512 mn = _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(mnu)));
#pragma GCC unroll 8
                for (int r = 0; r < R; r++) {
                    __m512i sum = half ? shi[r] : slo[r];
                    acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sum),
                                             _mm512_mul_ps(sc, _mm512_set1_ps(t.d[r][b])), acc[r]);
                    acc[r] = _mm512_fnmadd_ps(mn, _mm512_set1_ps(dsa[r][b]), acc[r]);
                }
            }
        }
    }
    store_rows(y, ld_y, mask, acc, R);
}

/* ---- Q6_K: 256-input super-blocks, scales per 16 ----------------------------- */

AI void tile_q6_k(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                  __mmask16 mask, const int R) {
    tile_rows t;
    tile_rows_init(&t, a, r0, R, 1);
    __m512 acc[CPU_AVX512_MR];
    for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30);
    int64_t nsb = a->n_in / 256;
    for (int64_t sb = 0; sb < nsb; sb++) {
        const uint8_t *pb = panel + sb * 3360;
        prefetch_ahead(pb, 3360, R);
        __m512 dw = load_f16x16(pb);
#pragma GCC unroll 1
        for (int nh = 0; nh < 4; nh++) {
            const int n = nh >> 1, h = nh & 1;
            __m512i s[4][CPU_AVX512_MR];
#pragma GCC unroll 4
            for (int tt = 0; tt < 4; tt++)
#pragma GCC unroll 8
                for (int r = 0; r < R; r++)
                    s[tt][r] = _mm512_set1_epi32(t.aux[r][sb * 16 + 8 * n + 2 * tt + h]);
#pragma GCC unroll 4
            for (int l = 4 * h; l < 4 * h + 4; l++) {
                __m512i qa = loadv(pb + 288 + (16 * n + l) * 64);
                __m512i qb = loadv(pb + 288 + (16 * n + 8 + l) * 64);
                __m512i qh = loadv(pb + 2336 + (8 * n + l) * 64);
                __m512i g[4];
                g[0] = or_and(_mm512_and_si512(qa, m4), _mm512_slli_epi16(qh, 4), m30);
                g[1] = or_and(_mm512_and_si512(qb, m4), _mm512_slli_epi16(qh, 2), m30);
                g[2] = or_and(_mm512_and_si512(_mm512_srli_epi16(qa, 4), m4), qh, m30);
                g[3] = or_and(_mm512_and_si512(_mm512_srli_epi16(qb, 4), m4),
                              _mm512_srli_epi16(qh, 2), m30);
                const int64_t k = 256 * sb + 128 * n + 4 * l;
#pragma GCC unroll 4
                for (int tt = 0; tt < 4; tt++)
#pragma GCC unroll 8
                    for (int r = 0; r < R; r++)
                        s[tt][r] = dpbusd(s[tt][r], g[tt], bcast4(t.q[r] + k + 32 * tt));
            }
#pragma GCC unroll 4
            for (int tt = 0; tt < 4; tt++) {
                int g16 = 8 * n + 2 * tt + h;
                __m512 sc = _mm512_mul_ps(dw, load_i8x16(pb + 32 + 16 * g16));
#pragma GCC unroll 8
                for (int r = 0; r < R; r++)
                    acc[r] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(s[tt][r]),
                        _mm512_mul_ps(sc, _mm512_set1_ps(t.d[r][sb * 8 + g16 / 2])), acc[r]);
            }
        }
    }
    store_rows(y, ld_y, mask, acc, R);
}

/* ---- f32 / f16 / bf16 weights --------------------------------------------- */

AI __m512 load_wf(const uint8_t *p, int kind) {
    if (kind == CPU_W_F32) return _mm512_loadu_ps((const void *)p);
    if (kind == CPU_W_F16) return load_f16x16(p);
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(const void *)p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
}

AI void tile_float(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                   __mmask16 mask, const int R, const int kind) {
    const int step = kind == CPU_W_F32 ? 64 : 32;
    tile_rows t;
    tile_rows_init(&t, a, r0, R, 0);
    __m512 acc[CPU_AVX512_MR];
    int64_t n = a->n_in, i = 0;
    if (R == 1) {
        /* one row: four chains hide the FMA latency */
        __m512 c0 = _mm512_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
        for (; i + 4 <= n; i += 4) {
            const uint8_t *p = panel + i * step;
            c0 = _mm512_fmadd_ps(_mm512_set1_ps(t.x[0][i]), load_wf(p, kind), c0);
            c1 = _mm512_fmadd_ps(_mm512_set1_ps(t.x[0][i + 1]), load_wf(p + step, kind), c1);
            c2 = _mm512_fmadd_ps(_mm512_set1_ps(t.x[0][i + 2]), load_wf(p + 2 * step, kind), c2);
            c3 = _mm512_fmadd_ps(_mm512_set1_ps(t.x[0][i + 3]), load_wf(p + 3 * step, kind), c3);
        }
        acc[0] = _mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3));
    } else {
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
    }
    for (; i < n; i++) {
        __m512 w = load_wf(panel + i * step, kind);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(t.x[r][i]), w, acc[r]);
    }
    store_rows(y, ld_y, mask, acc, R);
}

/* ---- drivers ----------------------------------------------------------------- */

typedef void (*tile_fn)(const uint8_t *panel, const cpu_act *a, int r0, float *y, int ld_y,
                        __mmask16 mask);

#define TILE_SET(name, call)                                                                       \
    static void name##_1(const uint8_t *p, const cpu_act *a, int r0, float *y, int ld,             \
                         __mmask16 m) {                                                            \
        call(p, a, r0, y, ld, m, 1);                                                               \
    }                                                                                              \
    static void name##_2(const uint8_t *p, const cpu_act *a, int r0, float *y, int ld,             \
                         __mmask16 m) {                                                            \
        call(p, a, r0, y, ld, m, 2);                                                               \
    }                                                                                              \
    static void name##_3(const uint8_t *p, const cpu_act *a, int r0, float *y, int ld,             \
                         __mmask16 m) {                                                            \
        call(p, a, r0, y, ld, m, 3);                                                               \
    }                                                                                              \
    static void name##_4(const uint8_t *p, const cpu_act *a, int r0, float *y, int ld,             \
                         __mmask16 m) {                                                            \
        call(p, a, r0, y, ld, m, 4);                                                               \
    }                                                                                              \
    static const tile_fn name##_fns[CPU_AVX512_MR] = {name##_1, name##_2, name##_3, name##_4};

#define CALL_Q4_K(p, a, r0, y, ld, m, R) tile_q45_k(p, a, r0, y, ld, m, R, 0)
#define CALL_Q5_K(p, a, r0, y, ld, m, R) tile_q45_k(p, a, r0, y, ld, m, R, 1)
#define CALL_F32(p, a, r0, y, ld, m, R)  tile_float(p, a, r0, y, ld, m, R, CPU_W_F32)
#define CALL_F16(p, a, r0, y, ld, m, R)  tile_float(p, a, r0, y, ld, m, R, CPU_W_F16)
#define CALL_BF16(p, a, r0, y, ld, m, R) tile_float(p, a, r0, y, ld, m, R, CPU_W_BF16)

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

int cpu_rect_avx512(const cpu_rect *j) {
    const tile_fn *fns = tiles_for(j->kind);
    if (!fns) return 0;
    const cpu_wformat *f = &cpu_wformats[j->kind];
    size_t panel_bytes = (size_t)(j->w->n_in / f->kb) * f->pb;
    for (int64_t p = j->p0; p < j->p1; p++) {
        const uint8_t *panel = (const uint8_t *)j->w->data + (size_t)p * panel_bytes;
        int64_t left = j->w->n_out - p * CPU_NR;
        __mmask16 mask = left >= CPU_NR ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1);
        for (int r = j->r0; r < j->r1; r += CPU_AVX512_MR) {
            int nr = j->r1 - r < CPU_AVX512_MR ? j->r1 - r : CPU_AVX512_MR;
            fns[nr - 1](panel, j->act, r, j->y + (int64_t)r * j->ld_y + p * CPU_NR, j->ld_y, mask);
        }
    }
    return 1;
}

/* ---- activation quantization ----------------------------------------------- */

void cpu_quantize_row_avx512(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16) {
    const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
    for (int64_t b = 0; b < n / 32; b++) {
        __m512 x0 = _mm512_loadu_ps(x + 32 * b), x1 = _mm512_loadu_ps(x + 32 * b + 16);
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
        float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(x0, vid));
        __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(x1, vid));
        i0 = _mm512_max_epi32(_mm512_min_epi32(i0, hi), lo);
        i1 = _mm512_max_epi32(_mm512_min_epi32(i1, hi), lo);
        _mm_storeu_si128((__m128i *)(void *)(q + 32 * b), _mm512_cvtepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(void *)(q + 32 * b + 16), _mm512_cvtepi32_epi8(i1));
        sum16[2 * b] = _mm512_reduce_add_epi32(i0);
        sum16[2 * b + 1] = _mm512_reduce_add_epi32(i1);
    }
}

#else
typedef int cpu_matmul_avx512_unused; /* ISO C wants a declaration */
#endif
