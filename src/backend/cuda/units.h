/*
 * The CUDA backend's weight layouts and the arithmetic on them, written
 * once for the host (C, tested on the CPU in tests/cuda/test_cuda_units.c)
 * and the device (included by the .cu files).
 *
 * Why repack. GGUF blocks are 18 (Q4_0), 34 (Q8_0), 144, 176 or 210 bytes:
 * not multiples of 16, so a thread cannot fetch one with a single aligned
 * 16-byte load. At upload every matrix is split into streams:
 *
 *   q   [n_out][units_per_row] 16-byte units, the bulk of the bytes; a
 *       warp reading consecutive units of a row reads 512 contiguous bytes;
 *   a1..a3  small side streams (scales, high bits), row-major too.
 *
 * The byte count stays that of the GGUF tensor (no inflated scales); only
 * the order changes. Per type (an "x-block" is 32 consecutive inputs):
 *
 *   CW_Q4_0  unit = one x-block: byte i, low nibble = element i, high
 *            nibble = element i + 16 (exactly GGUF's qs);
 *            a1 = f16 d [n_out][n_in/32].
 *   CW_Q4_K  unit = one 32-element sub-block, nibbles as Q4_0;
 *            a1 = 16-byte header per super-block [n_out][n_in/256]:
 *              w0 = d | dmin << 16 (f16 bits)
 *              w1, w2 = byte j (sub-block j, then j + 4): sc | (m & 3) << 6
 *              w3 = nibble j: m >> 2         (sc, m: the 6-bit codes)
 *   CW_Q5_K  as Q4_K, plus a2 = u32 per x-block [n_out][n_in/32] with the
 *            5th bits: bit 8b + 4h + k is element 16h + 4k + b.
 *   CW_Q6_K  unit = low 4 bits as Q4_0 (codes 0..63, value code - 32);
 *            a1 = two u32 per x-block [n_out][n_in/32][2]: word h holds the
 *              top 2 bits of elements 16h..16h+15, element 16h + 4k + b at
 *              bits 8b + 2k;
 *            a2 = int8 scale per 16 elements [n_out][n_in/16];
 *            a3 = f16 d per super-block [n_out][n_in/256].
 *   CW_Q8_0  two units per x-block (int8 elements 0-15, 16-31);
 *            a1 = f16 d [n_out][n_in/32].
 *   CW_F16, CW_BF16  four units per x-block (8 values each); no side data.
 *
 * These arrangements make the 4-bit-family decode a mask and a shift per
 * 4 weights: byte lane b of (word k & 0x0F0F0F0F) is element 4k + b and of
 * ((word k >> 4) & 0x0F0F0F0F) element 16 + 4k + b, which are bytes of the
 * int8 activation words x[k] and x[k + 4]: one dp4a per 4 weights.
 *
 * Activations for the integer path are quantized per x-block to int8 with
 * a float scale dx and the two half-sums s0, s1 of the int8 values
 * (cu_act_quant_block), as llama.cpp's q8_1 does.
 */
#ifndef ZT_BACKEND_CUDA_UNITS_H
#define ZT_BACKEND_CUDA_UNITS_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifdef __CUDACC__
#include <cuda_fp16.h>
#define CU_HD __host__ __device__ __forceinline__
#else
#define CU_HD static inline
#endif

enum cuda_wtype { CW_Q4_0, CW_Q8_0, CW_Q4_K, CW_Q5_K, CW_Q6_K, CW_F16, CW_BF16, CW_COUNT };

/* 16-byte units in one row of n_in inputs. */
CU_HD int cu_units_per_row(int wt, int n_in) {
    return wt == CW_Q8_0 ? n_in / 16 : (wt == CW_F16 || wt == CW_BF16) ? n_in / 8 : n_in / 32;
}
/* 16-byte units per x-block (32 inputs). */
CU_HD int cu_units_per_xb(int wt) {
    return wt == CW_Q8_0 ? 2 : (wt == CW_F16 || wt == CW_BF16) ? 4 : 1;
}
CU_HD int cu_is_float(int wt) { return wt == CW_F16 || wt == CW_BF16; }

/* ---- scalar helpers ---------------------------------------------------- */

CU_HD float cu_h2f(uint16_t h) {
#ifdef __CUDA_ARCH__
    return __half2float(__ushort_as_half(h));
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, u;
    if (exp == 0x1f)
        u = sign | 0x7f800000u | (mant << 13);
    else if (exp == 0) {
        if (!mant)
            u = sign;
        else {
            float v = (float)mant * (1.0f / 16777216.0f);
            return sign ? -v : v;
        }
    } else
        u = sign | ((exp + 112) << 23) | (mant << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

CU_HD float cu_bf2f(uint16_t b) {
#ifdef __CUDA_ARCH__
    return __uint_as_float((uint32_t)b << 16);
#else
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* Four signed byte products added to c (the dp4a instruction). */
CU_HD int cu_dp4a(uint32_t a, uint32_t b, int c) {
#ifdef __CUDA_ARCH__
    return __dp4a((int)a, (int)b, c);
#else
    for (int k = 0; k < 4; k++) c += (int8_t)(a >> (8 * k)) * (int8_t)(b >> (8 * k));
    return c;
#endif
}

/* The (scale, min) codes of sub-block j from a repacked Q4_K/Q5_K header. */
CU_HD void cu_k_scale_min(const uint32_t h[4], int j, int *sc, int *m) {
    uint32_t w = j < 4 ? h[1] : h[2];
    uint32_t b = (w >> (8 * (j & 3))) & 0xff;
    *sc = (int)(b & 63);
    *m = (int)((b >> 6) | (((h[3] >> (4 * j)) & 15) << 2));
}

/* ---- int8 activations -------------------------------------------------- */

/* Quantizes 32 floats: q[i] = round(v[i] / dx), dx = max|v| / 127. */
CU_HD void cu_act_quant_block(const float v[32], int8_t q[32], float *dx, int *s0, int *s1) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) {
        float a = v[i] < 0 ? -v[i] : v[i];
        amax = a > amax ? a : amax;
    }
    float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int a = 0, b = 0;
    for (int i = 0; i < 32; i++) {
#ifdef __CUDA_ARCH__
        int qi = __float2int_rn(v[i] * id);
#else
        int qi = (int)rintf(v[i] * id); /* half to even, as cvt.rni */
#endif
        q[i] = (int8_t)qi;
        if (i < 16)
            a += qi;
        else
            b += qi;
    }
    *dx = d;
    *s0 = a;
    *s1 = b;
}

/* ---- dot products of one x-block: weights . int8 activations ----------
 * x[0..7]: the 32 int8 activations as words (x[k] = elements 4k..4k+3).
 * Each returns sum_i w_i * dx * xq_i for the 32 weights of x-block xb of
 * one row; the caller passes that row's stream pointers. */

CU_HD float cu_dot_q4_0(const uint32_t q[4], uint16_t d, const uint32_t x[8], float dx, int s0,
                        int s1) {
    int s = 0;
    for (int k = 0; k < 4; k++) {
        s = cu_dp4a(q[k] & 0x0F0F0F0Fu, x[k], s);
        s = cu_dp4a((q[k] >> 4) & 0x0F0F0F0Fu, x[k + 4], s);
    }
    return cu_h2f(d) * dx * (float)(s - 8 * (s0 + s1));
}

CU_HD float cu_dot_q8_0(const uint32_t q0[4], const uint32_t q1[4], uint16_t d, const uint32_t x[8],
                        float dx) {
    int s = 0;
    for (int k = 0; k < 4; k++) {
        s = cu_dp4a(q0[k], x[k], s);
        s = cu_dp4a(q1[k], x[k + 4], s);
    }
    return cu_h2f(d) * dx * (float)s;
}

/* Q4_K / Q5_K: sub-block j = xb % 8 of the super-block whose header is h;
 * qh is the Q5_K 5th-bit word (0 for Q4_K). */
CU_HD float cu_dot_q45_k(const uint32_t q[4], const uint32_t h[4], int j, uint32_t qh,
                         const uint32_t x[8], float dx, int s0, int s1) {
    int s = 0;
    for (int k = 0; k < 4; k++) {
        uint32_t lo = (q[k] & 0x0F0F0F0Fu) | (((qh >> k) & 0x01010101u) << 4);
        uint32_t hi = ((q[k] >> 4) & 0x0F0F0F0Fu) | (((qh >> (k + 4)) & 0x01010101u) << 4);
        s = cu_dp4a(lo, x[k], s);
        s = cu_dp4a(hi, x[k + 4], s);
    }
    int sc, m;
    cu_k_scale_min(h, j, &sc, &m);
    float d = cu_h2f((uint16_t)(h[0] & 0xffff)), dmin = cu_h2f((uint16_t)(h[0] >> 16));
    return dx * (d * (float)sc * (float)s - dmin * (float)m * (float)(s0 + s1));
}

/* Q6_K: qh[2] the top-bit words, sc the two int8 scales packed in a u16
 * (elements 0-15 low byte), d the super-block scale. */
CU_HD float cu_dot_q6_k(const uint32_t q[4], const uint32_t qh[2], uint16_t sc, uint16_t d,
                        const uint32_t x[8], float dx, int s0, int s1) {
    int sa = 0, sb = 0;
    for (int k = 0; k < 4; k++) {
        uint32_t lo = (q[k] & 0x0F0F0F0Fu) | (((qh[0] >> (2 * k)) & 0x03030303u) << 4);
        uint32_t hi = ((q[k] >> 4) & 0x0F0F0F0Fu) | (((qh[1] >> (2 * k)) & 0x03030303u) << 4);
        sa = cu_dp4a(lo, x[k], sa);
        sb = cu_dp4a(hi, x[k + 4], sb);
    }
    float sca = (float)(int8_t)(sc & 0xff), scb = (float)(int8_t)(sc >> 8);
    return cu_h2f(d) * dx * (sca * (float)(sa - 32 * s0) + scb * (float)(sb - 32 * s1));
}

/* ---- dequantization of one x-block (GEMM tiles, tests) ------------------
 * Word-level: the same registers the kernels load. */

CU_HD void cu_deq_q4_0(const uint32_t q[4], uint16_t d16, float out[32]) {
    float d = cu_h2f(d16);
    for (int i = 0; i < 16; i++) {
        uint32_t byte = (q[i / 4] >> (8 * (i % 4))) & 0xff;
        out[i] = d * (float)((int)(byte & 15) - 8);
        out[i + 16] = d * (float)((int)(byte >> 4) - 8);
    }
}

CU_HD void cu_deq_q8_0(const uint32_t q0[4], const uint32_t q1[4], uint16_t d16, float out[32]) {
    float d = cu_h2f(d16);
    for (int i = 0; i < 16; i++) {
        out[i] = d * (float)(int8_t)(q0[i / 4] >> (8 * (i % 4)));
        out[i + 16] = d * (float)(int8_t)(q1[i / 4] >> (8 * (i % 4)));
    }
}

CU_HD void cu_deq_q45_k(const uint32_t q[4], const uint32_t h[4], int j, uint32_t qh,
                        float out[32]) {
    int sc, m;
    cu_k_scale_min(h, j, &sc, &m);
    float d = cu_h2f((uint16_t)(h[0] & 0xffff)) * (float)sc;
    float mn = cu_h2f((uint16_t)(h[0] >> 16)) * (float)m;
    for (int i = 0; i < 16; i++) {
        int k = i / 4, b = i % 4;
        uint32_t byte = (q[k] >> (8 * b)) & 0xff;
        int lo = (int)(byte & 15) | (int)(((qh >> (8 * b + k)) & 1) << 4);
        int hi = (int)(byte >> 4) | (int)(((qh >> (8 * b + 4 + k)) & 1) << 4);
        out[i] = d * (float)lo - mn;
        out[i + 16] = d * (float)hi - mn;
    }
}

CU_HD void cu_deq_q6_k(const uint32_t q[4], const uint32_t qh[2], uint16_t sc, uint16_t d16,
                       float out[32]) {
    float d = cu_h2f(d16);
    float da = d * (float)(int8_t)(sc & 0xff), db = d * (float)(int8_t)(sc >> 8);
    for (int i = 0; i < 16; i++) {
        int k = i / 4, b = i % 4;
        uint32_t byte = (q[k] >> (8 * b)) & 0xff;
        int lo = (int)(byte & 15) | (int)(((qh[0] >> (8 * b + 2 * k)) & 3) << 4);
        int hi = (int)(byte >> 4) | (int)(((qh[1] >> (8 * b + 2 * k)) & 3) << 4);
        out[i] = da * (float)(lo - 32);
        out[i + 16] = db * (float)(hi - 32);
    }
}

/* Stream pointers of one matrix (row and xb select the block). */
typedef struct cu_streams {
    int wt, n_in;
    const uint8_t *q, *a1, *a2, *a3;
} cu_streams;

CU_HD void cu_dequant_xb(const cu_streams *s, int64_t row, int xb, float out[32]) {
    int upr = cu_units_per_row(s->wt, s->n_in), nxb = s->n_in / 32;
    const uint32_t *u =
        (const uint32_t *)(s->q + ((size_t)row * upr + (size_t)xb * cu_units_per_xb(s->wt)) * 16);
    size_t bi = (size_t)row * nxb + xb; /* x-block index in per-x-block streams */
    switch (s->wt) {
    case CW_Q4_0:
        cu_deq_q4_0(u, ((const uint16_t *)s->a1)[bi], out);
        break;
    case CW_Q8_0:
        cu_deq_q8_0(u, u + 4, ((const uint16_t *)s->a1)[bi], out);
        break;
    case CW_Q4_K:
    case CW_Q5_K: {
        const uint32_t *h = (const uint32_t *)(s->a1 + ((size_t)row * (nxb / 8) + xb / 8) * 16);
        uint32_t qh = s->wt == CW_Q5_K ? ((const uint32_t *)s->a2)[bi] : 0;
        cu_deq_q45_k(u, h, xb % 8, qh, out);
        break;
    }
    case CW_Q6_K:
        cu_deq_q6_k(u, (const uint32_t *)s->a1 + bi * 2, ((const uint16_t *)s->a2)[bi],
                    ((const uint16_t *)s->a3)[(size_t)row * (nxb / 8) + xb / 8], out);
        break;
    case CW_F16:
    case CW_BF16: {
        const uint16_t *h = (const uint16_t *)u;
        for (int i = 0; i < 32; i++) out[i] = s->wt == CW_F16 ? cu_h2f(h[i]) : cu_bf2f(h[i]);
        break;
    }
    default:
        for (int i = 0; i < 32; i++) out[i] = 0.0f;
    }
}

/* Element k of a row: the embedding lookup, one element per thread. */
CU_HD float cu_dequant_elem(const cu_streams *s, int64_t row, int k) {
    int upr = cu_units_per_row(s->wt, s->n_in), nxb = s->n_in / 32, xb = k / 32, i = k % 32;
    const uint8_t *u = s->q + ((size_t)row * upr + (size_t)xb * cu_units_per_xb(s->wt)) * 16;
    size_t bi = (size_t)row * nxb + xb;
    int h = i / 16, k4 = (i % 16) / 4, b = i % 4;
    int nib = h ? u[i % 16] >> 4 : u[i % 16] & 15;
    switch (s->wt) {
    case CW_Q4_0:
        return cu_h2f(((const uint16_t *)s->a1)[bi]) * (float)(nib - 8);
    case CW_Q8_0:
        return cu_h2f(((const uint16_t *)s->a1)[bi]) * (float)(int8_t)u[i];
    case CW_Q4_K:
    case CW_Q5_K: {
        const uint32_t *hd = (const uint32_t *)(s->a1 + ((size_t)row * (nxb / 8) + xb / 8) * 16);
        if (s->wt == CW_Q5_K)
            nib |= (int)((((const uint32_t *)s->a2)[bi] >> (8 * b + 4 * h + k4)) & 1) << 4;
        int sc, m;
        cu_k_scale_min(hd, xb % 8, &sc, &m);
        float d = cu_h2f((uint16_t)(hd[0] & 0xffff)) * (float)sc;
        float mn = cu_h2f((uint16_t)(hd[0] >> 16)) * (float)m;
        return d * (float)nib - mn;
    }
    case CW_Q6_K: {
        uint32_t w = ((const uint32_t *)s->a1)[bi * 2 + h];
        int code = nib | (int)((w >> (8 * b + 2 * k4)) & 3) << 4;
        float d = cu_h2f(((const uint16_t *)s->a3)[(size_t)row * (nxb / 8) + xb / 8]);
        return d * (float)((const int8_t *)s->a2)[bi * 2 + h] * (float)(code - 32);
    }
    case CW_F16:
        return cu_h2f(((const uint16_t *)u)[i]);
    case CW_BF16:
        return cu_bf2f(((const uint16_t *)u)[i]);
    default:
        return 0.0f;
    }
}

/* sum_i w_i * dx * xq_i over x-block xb of a row, reading the streams
 * through pointers: the host's reference for the device GEMV, which loads
 * the same words into registers and calls the same cu_dot_* functions. */
CU_HD float cu_dot_xb(const cu_streams *s, int64_t row, int xb, const uint32_t x[8], float dx,
                      int s0, int s1) {
    int upr = cu_units_per_row(s->wt, s->n_in), nxb = s->n_in / 32;
    const uint32_t *u =
        (const uint32_t *)(s->q + ((size_t)row * upr + (size_t)xb * cu_units_per_xb(s->wt)) * 16);
    size_t bi = (size_t)row * nxb + xb;
    switch (s->wt) {
    case CW_Q4_0:
        return cu_dot_q4_0(u, ((const uint16_t *)s->a1)[bi], x, dx, s0, s1);
    case CW_Q8_0:
        return cu_dot_q8_0(u, u + 4, ((const uint16_t *)s->a1)[bi], x, dx);
    case CW_Q4_K:
    case CW_Q5_K: {
        const uint32_t *h = (const uint32_t *)(s->a1 + ((size_t)row * (nxb / 8) + xb / 8) * 16);
        uint32_t qh = s->wt == CW_Q5_K ? ((const uint32_t *)s->a2)[bi] : 0;
        return cu_dot_q45_k(u, h, xb % 8, qh, x, dx, s0, s1);
    }
    case CW_Q6_K: {
        uint16_t sc = ((const uint16_t *)s->a2)[bi];
        uint16_t d = ((const uint16_t *)s->a3)[(size_t)row * (nxb / 8) + xb / 8];
        return cu_dot_q6_k(u, (const uint32_t *)s->a1 + bi * 2, sc, d, x, dx, s0, s1);
    }
    default:
        return 0.0f; /* float types take the f32 path */
    }
}

#endif
