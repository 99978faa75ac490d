/*
 * Decode matmul (GEMV) for up to CU_MAX_ROWS activation rows: one warp
 * computes P output rows (P = 2 for the paired roles: a RoPE pair of the
 * QKV projection, or gate row i with up row i), its lanes striding over
 * the row's x-blocks (32 inputs each).
 *
 * Bytes: every weight byte of the matrix once (the floor); activations
 * come from shared memory, quantized to int8 per x-block once per block
 * (pack.cuh), so the weight decode is a mask, a shift and one dp4a per 4
 * weights for the 4/5/6-bit types.
 *
 * Loads in flight: a lane issues the loads of U x-blocks of each of its P
 * rows (16 bytes of quants plus side data each) before any arithmetic; 16
 * warps per SM keep ~32-64 KB of requests outstanding per SM, about what
 * Little's law asks for at 3 TB/s and ~1 us of latency across 132 SMs.
 */
#ifndef ZT_BACKEND_CUDA_GEMV_CUH
#define ZT_BACKEND_CUDA_GEMV_CUH

#include "backend/cuda/common.cuh"

/* The activation pack in shared memory (pack.cuh fills it). Row r's
 * x-block xb: int8 elements 0-15 in xlo[r * XB + xb], 16-31 in xhi,
 * (dx, s0, s1) in xm; f32 values (float weights only) in two planes so
 * that lanes reading consecutive 8-value units hit consecutive banks:
 * xf[(r * 2 + plane) * XB * 4 + unit] holds values 8 unit + 4 plane .. +3. */
struct cu_pack {
    uint4 *xlo, *xhi;
    float4 *xm, *xf;
    float *red;   /* [CU_DEC_WARPS][CU_MAX_ROWS][2] scratch */
    float *rstd;  /* [CU_MAX_ROWS] */
    float2 *rope; /* [CU_MAX_ROWS][CU_ROPE_HALF_MAX] (cos, sin) of the qkv phase */
    int XB;       /* x-blocks per row of the pack (allocation stride) */
};

/* ---- per-type fragments: the registers of one x-block ----------------- */

template <int WT> struct frag;
template <> struct frag<CW_Q4_0> {
    uint4 q;
    uint16_t d;
};
template <> struct frag<CW_Q8_0> {
    uint4 q0, q1;
    uint16_t d;
};
template <> struct frag<CW_Q4_K> { uint4 q, h; };
template <> struct frag<CW_Q5_K> {
    uint4 q, h;
    uint32_t qh;
};
template <> struct frag<CW_Q6_K> {
    uint4 q;
    uint2 qh;
    uint16_t sc, d;
};

/* A row's stream pointers, advanced to this lane's first x-block, so that
 * x-block (lane + 32 u) sits at a compile-time offset (fewer registers
 * than one 64-bit address per load). */
struct row_ptrs {
    const uint8_t *q, *a1, *a2, *a3;
};

template <int WT>
__device__ __forceinline__ row_ptrs row_start(const cu_mat &m, int row, int lane) {
    const int nxb = m.n_in / 32, nsb = nxb / 8;
    const size_t bi = (size_t)row * nxb + lane;
    row_ptrs p;
    p.q = m.q + bi * 16 * cu_units_per_xb(WT);
    p.a1 = p.a2 = p.a3 = nullptr;
    if constexpr (WT == CW_Q4_0 || WT == CW_Q8_0) p.a1 = m.a1 + bi * 2;
    if constexpr (WT == CW_Q4_K || WT == CW_Q5_K) p.a1 = m.a1 + (size_t)row * nsb * 16;
    if constexpr (WT == CW_Q5_K) p.a2 = m.a2 + bi * 4;
    if constexpr (WT == CW_Q6_K) {
        p.a1 = m.a1 + bi * 8;
        p.a2 = m.a2 + bi * 2;
        p.a3 = m.a3 + (size_t)row * nsb * 2;
    }
    return p;
}

/* Loads x-block xb = lane + k of the row (k a multiple of 32). */
template <int WT>
__device__ __forceinline__ void frag_load(frag<WT> &f, const row_ptrs &p, int k, int xb) {
    if constexpr (WT == CW_Q4_0) {
        f.q = ld_weight16(p.q + (size_t)k * 16);
        f.d = ld_weight2(p.a1 + (size_t)k * 2);
    } else if constexpr (WT == CW_Q8_0) {
        f.q0 = ld_weight16(p.q + (size_t)k * 32);
        f.q1 = ld_weight16(p.q + (size_t)k * 32 + 16);
        f.d = ld_weight2(p.a1 + (size_t)k * 2);
    } else if constexpr (WT == CW_Q4_K || WT == CW_Q5_K) {
        f.q = ld_weight16(p.q + (size_t)k * 16);
        f.h = ld_weight16(p.a1 + (size_t)(xb >> 3) * 16);
        if constexpr (WT == CW_Q5_K) f.qh = ld_weight4(p.a2 + (size_t)k * 4);
    } else if constexpr (WT == CW_Q6_K) {
        f.q = ld_weight16(p.q + (size_t)k * 16);
        f.qh = ld_weight8(p.a1 + (size_t)k * 8);
        f.sc = ld_weight2(p.a2 + (size_t)k * 2);
        f.d = ld_weight2(p.a3 + (size_t)(xb >> 3) * 2);
    }
}

template <int WT>
__device__ __forceinline__ float frag_dot(const frag<WT> &f, int xb, const uint32_t x[8], float dx,
                                          int s0, int s1) {
    if constexpr (WT == CW_Q4_0) {
        const uint32_t q[4] = {f.q.x, f.q.y, f.q.z, f.q.w};
        return cu_dot_q4_0(q, f.d, x, dx, s0, s1);
    } else if constexpr (WT == CW_Q8_0) {
        const uint32_t q0[4] = {f.q0.x, f.q0.y, f.q0.z, f.q0.w};
        const uint32_t q1[4] = {f.q1.x, f.q1.y, f.q1.z, f.q1.w};
        return cu_dot_q8_0(q0, q1, f.d, x, dx);
    } else if constexpr (WT == CW_Q4_K || WT == CW_Q5_K) {
        const uint32_t q[4] = {f.q.x, f.q.y, f.q.z, f.q.w};
        const uint32_t h[4] = {f.h.x, f.h.y, f.h.z, f.h.w};
        uint32_t qh = 0;
        if constexpr (WT == CW_Q5_K) qh = f.qh;
        return cu_dot_q45_k(q, h, xb & 7, qh, x, dx, s0, s1);
    } else {
        const uint32_t q[4] = {f.q.x, f.q.y, f.q.z, f.q.w};
        const uint32_t qh[2] = {f.qh.x, f.qh.y};
        return cu_dot_q6_k(q, qh, f.sc, f.d, x, dx, s0, s1);
    }
}

/* acc[p][r] += row rows[p] of *m[p] . activation row r, partial per lane
 * (the caller reduces across the warp). Integer path. */
template <int WT, int NR, int P>
__device__ __forceinline__ void gemv_q(const cu_mat *const m[P], const int rows[P],
                                       const cu_pack &pk, int lane, float acc[P][NR]) {
    constexpr int U = P == 1 ? 8 : 4;
    const int nxb = m[0]->n_in / 32;
    row_ptrs rp[P];
#pragma unroll
    for (int p = 0; p < P; p++) rp[p] = row_start<WT>(*m[p], rows[p], lane);
    for (int base = 0; base < nxb; base += 32 * U) {
        frag<WT> f[P][U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int xb = base + u * 32 + lane;
            if (xb < nxb) {
#pragma unroll
                for (int p = 0; p < P; p++) frag_load<WT>(f[p][u], rp[p], base + u * 32, xb);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            int xb = base + u * 32 + lane;
            if (xb < nxb) {
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    uint4 lo = pk.xlo[r * pk.XB + xb], hi = pk.xhi[r * pk.XB + xb];
                    float4 xm = pk.xm[r * pk.XB + xb];
                    const uint32_t x[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
                    int s0 = __float_as_int(xm.y), s1 = __float_as_int(xm.z);
#pragma unroll
                    for (int p = 0; p < P; p++)
                        acc[p][r] += frag_dot<WT>(f[p][u], xb, x, xm.x, s0, s1);
                }
            }
        }
    }
}

/* 8 weights of a float unit as floats. */
template <int WT> __device__ __forceinline__ void unit_floats(uint4 w, float v[8]) {
    const uint32_t a[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        if constexpr (WT == CW_F16) {
            float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&a[i]));
            v[2 * i] = f.x, v[2 * i + 1] = f.y;
        } else {
            v[2 * i] = __uint_as_float(a[i] << 16);
            v[2 * i + 1] = __uint_as_float(a[i] & 0xffff0000u);
        }
    }
}

/* Float weights (F16 / BF16) against the f32 activations of the pack. */
template <int WT, int NR, int P>
__device__ __forceinline__ void gemv_f(const cu_mat *const m[P], const int rows[P],
                                       const cu_pack &pk, int lane, float acc[P][NR]) {
    constexpr int U = P == 1 ? 4 : 2;
    const int nu = m[0]->n_in / 8, plane = pk.XB * 4;
    const uint8_t *rq[P];
#pragma unroll
    for (int p = 0; p < P; p++) rq[p] = m[p]->q + ((size_t)rows[p] * nu + lane) * 16;
    for (int base = 0; base < nu; base += 32 * U) {
        uint4 w[P][U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int j = base + u * 32 + lane;
            if (j < nu) {
#pragma unroll
                for (int p = 0; p < P; p++)
                    w[p][u] = ld_weight16(rq[p] + (size_t)(base + u * 32) * 16);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            int j = base + u * 32 + lane;
            if (j < nu) {
                float wv[P][8];
#pragma unroll
                for (int p = 0; p < P; p++) unit_floats<WT>(w[p][u], wv[p]);
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    float4 a = pk.xf[(r * 2) * plane + j], b = pk.xf[(r * 2 + 1) * plane + j];
#pragma unroll
                    for (int p = 0; p < P; p++)
                        acc[p][r] += wv[p][0] * a.x + wv[p][1] * a.y + wv[p][2] * a.z +
                                     wv[p][3] * a.w + wv[p][4] * b.x + wv[p][5] * b.y +
                                     wv[p][6] * b.z + wv[p][7] * b.w;
                }
            }
        }
    }
}

/* acc[p][r] of lane r (r < NR) without a run-time register index. */
template <int NR, int P>
__device__ __forceinline__ float acc_of_lane(const float acc[P][NR], int p, int lane) {
    float v = 0.0f;
#pragma unroll
    for (int r = 0; r < NR; r++)
        if (lane == r) v = acc[p][r];
    return v;
}

#endif
