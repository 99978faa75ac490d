/*
 * Decode matmul (GEMV) for up to CU_MAX_ROWS activation rows: one warp
 * computes P output rows (P = 2 for the paired roles: a RoPE pair of the
 * QKV projection, or gate row i with up row i), its lanes striding over
 * the row's granules (an x-block of 32 inputs for the quantized types, a
 * 16-byte unit of 8 inputs for F16 / BF16).
 *
 * Bytes: every weight byte of the matrix once (the floor); activations
 * come from shared memory, quantized to int8 per x-block once per block
 * (pack.cuh), so the weight decode is a mask, a shift and one dp4a per 4
 * weights for the 4/5/6-bit types.
 *
 * Latency: a warp's rows are a pipeline of chunks (U granules per lane of
 * each of its P rows, ~30 registers of fragments). The loads of chunks
 * c + 1 and c + 2 are in flight while chunk c's arithmetic, warp reduction
 * and epilogue run, and a warp's first two chunks are issued before the
 * activation pack is built (gemv_items' prologue), so that the pack's L2
 * round trip and barriers, and each item's reduction, hide under DRAM
 * latency instead of adding to it. 12 warps x two chunks (~3.5 KB each
 * for Q4_0 pairs) in flight per SM is ~80 KB: Little's law at 3 TB/s
 * (23 GB/s an SM) covers ~3 us of loaded latency, about what a dependent
 * round trip measured in the decode step (zt_cuda_timeline). The weight
 * phases' 16-warp blocks keep half-size chunks (NTH, chunk_u): fewer
 * bytes in flight a warp, more warps issuing, which is what the phases
 * were short of (2026-11-29-cuda-h200-4.md, -5).
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
    float *red;  /* [CU_DEC_WARPS_MAX][CU_MAX_ROWS][2] scratch */
    float *rstd; /* [CU_MAX_ROWS] */
    int XB;      /* x-blocks per row of the pack (allocation stride) */
    /* the step's per-row data the epilogues read, copied from the host's
     * step before the wait (rows_fill), so that no item pays a dependent
     * global load in its epilogue */
    float2 *rope; /* [rows][rope_half] (cos, sin) */
    int *kv_at;   /* [CU_MAX_ROWS] page * ZT_KV_PAGE_CU + slot of the row's new K/V */
    int *info;    /* n_rows, n_out, want_logits */
    /* the stash [rows][cu_model.stash_ld] from the block's first item h0:
     * gate|up's h values (h_pack_build), qkv's pairs' dot products
     * (qkv_finish) */
    float *hs;
    int h0;
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
template <> struct frag<CW_F16> { uint4 w; };
template <> struct frag<CW_BF16> { uint4 w; };

template <int WT> __host__ __device__ constexpr bool is_float_wt() {
    return WT == CW_F16 || WT == CW_BF16;
}
/* Inputs per granule. */
template <int WT> __host__ __device__ constexpr int granule_inputs() {
    return is_float_wt<WT>() ? 8 : 32;
}
/* Granules per lane per chunk for P rows: about 30 registers of fragments,
 * three chunks in registers (two in flight while one is consumed), so
 * that the phase kernels stay within 168 registers; half that from 4
 * rows, whose accumulators and activation reads need the room. A chunk of
 * 96 x-blocks (3 per lane) is a whole 3072-wide row. Blocks of more than
 * CU_DEC_THREADS threads (CU_PROJ_THREADS: 128 registers) take half (a
 * pair of rows (u + 1) / 2 at one row), and a quarter from 4 rows. */
template <int WT, int P, int NR, int NTH = CU_DEC_THREADS>
__host__ __device__ constexpr int chunk_u() {
    constexpr int u = WT == CW_Q4_0                    ? (P == 2 ? 3 : 4)
                      : WT == CW_Q8_0 || WT == CW_Q5_K ? (P == 2 ? 2 : 3)
                      : WT == CW_Q4_K || WT == CW_Q6_K ? (P == 2 ? 2 : 4)
                                                       : 8 / P;
    if constexpr (NTH <= CU_DEC_THREADS) return NR >= 4 && u > 1 ? u / 2 : u;
    constexpr int v = NR >= 4 ? u / 4 : NR == 1 && P == 2 ? (u + 1) / 2 : u / 2;
    return v > 1 ? v : 1;
}

/* A row's stream pointers, advanced to this lane's first x-block, so that
 * x-block (lane + 32 u) sits at a compile-time offset (fewer registers
 * than one 64-bit address per load). */
struct row_ptrs {
    const uint8_t *q, *a1, *a2, *a3;
};

template <int WT>
__device__ __forceinline__ row_ptrs row_start(const cu_mat &m, int row, int lane) {
    if constexpr (is_float_wt<WT>()) {
        row_ptrs p = {m.q + ((size_t)row * (m.n_in / 8) + lane) * 16, nullptr, nullptr, nullptr};
        return p;
    }
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

/* Loads granule xb = lane + k of the row (k a multiple of 32). */
template <int WT>
__device__ __forceinline__ void frag_load(frag<WT> &f, const row_ptrs &p, int k, int xb) {
    if constexpr (is_float_wt<WT>()) {
        f.w = ld_weight16(p.q + (size_t)k * 16);
    } else if constexpr (WT == CW_Q4_0) {
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

/* A float unit's 8 weights (unit_floats) times 8 inputs, a the first four
 * and b the last, summed in one order: the GEMV and the fused attention +
 * wo's projection (attn_wo.cuh) both take it, so their roundings agree. */
__device__ __forceinline__ float unit_dot8(const float w[8], float4 a, float4 b) {
    return w[0] * a.x + w[1] * a.y + w[2] * a.z + w[3] * a.w + w[4] * b.x + w[5] * b.y +
           w[6] * b.z + w[7] * b.w;
}

/* acc[p][r] += granule g of row p (fragment f[p][u]) . activation row r. */
template <int WT, int NR, int P, int U>
__device__ __forceinline__ void granule_dot(const frag<WT> (&f)[P][U], int u, int g,
                                            const cu_pack &pk, float (&acc)[P][NR]) {
    if constexpr (is_float_wt<WT>()) {
        const int plane = pk.XB * 4;
        float wv[P][8];
#pragma unroll
        for (int p = 0; p < P; p++) unit_floats<WT>(f[p][u].w, wv[p]);
#pragma unroll
        for (int r = 0; r < NR; r++) {
            float4 a = pk.xf[(r * 2) * plane + g], b = pk.xf[(r * 2 + 1) * plane + g];
#pragma unroll
            for (int p = 0; p < P; p++) acc[p][r] += unit_dot8(wv[p], a, b);
        }
    } else {
#pragma unroll
        for (int r = 0; r < NR; r++) {
            uint4 lo = pk.xlo[r * pk.XB + g], hi = pk.xhi[r * pk.XB + g];
            float4 xm = pk.xm[r * pk.XB + g];
            const uint32_t x[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
            int s0 = __float_as_int(xm.y), s1 = __float_as_int(xm.z);
#pragma unroll
            for (int p = 0; p < P; p++) acc[p][r] += frag_dot<WT>(f[p][u], g, x, xm.x, s0, s1);
        }
    }
}

/* The loads of chunk c (granules 32 U c + 32 u + lane) of the P rows. */
template <int WT, int P, int U>
__device__ __forceinline__ void chunk_load(frag<WT> (&f)[P][U], const row_ptrs (&rp)[P], int c,
                                           int ng, int lane) {
#pragma unroll
    for (int u = 0; u < U; u++) {
        const int k = (c * U + u) * 32;
        if (k + lane < ng) {
#pragma unroll
            for (int p = 0; p < P; p++) frag_load<WT>(f[p][u], rp[p], k, k + lane);
        }
    }
}

/* What gemv_items passes its prologue: whether it runs before the warp's
 * first loads (early) or after them, as a type, so that a prologue can
 * keep code that needs many registers out of the late call, where the
 * first chunks' fragments are live (qkv's embedding lookup at layer 0). */
template <bool B> struct prologue_when { static constexpr bool early = B; };

/* A warp's items it0, it0 + stride, ... (< it1) of one weight type, each
 * P rows of n_in inputs against the pack's NR activation rows, pipelined
 * by chunks (see the header):
 *   rows_of(it, mm, rows)   the matrices and rows of item it
 *   prologue(when)          called once by every thread of the block after
 *                           the warp's first loads are issued: waits for
 *                           the previous kernel and builds the pack (its
 *                           barriers are why every warp must call it);
 *                           when: prologue_when<prologue_first>
 *   epilogue(it, acc)       acc[p][r] reduced across the warp (every lane
 *                           holds every value)
 * prologue_first: the prologue before the first loads instead (its own
 * loads then do not queue behind the weights'; tuning, cu_model.pack_first).
 * Each lane sums its granules lane, lane + 32, ... in that order whatever
 * U is, so results do not depend on the chunking. All three slots are
 * named arrays (shifted by moves, or the loop unrolled by three), so no
 * slot is indexed at run time (which would put them in local memory). */
template <int WT, int NR, int P, int NTH = CU_DEC_THREADS, bool ROTATE = true, class RowsOf,
          class Prologue, class Epilogue>
__device__ __forceinline__ void gemv_items(int n_in, int it0, int it1, int stride,
                                           const cu_pack &pk, RowsOf rows_of, Prologue prologue,
                                           Epilogue epilogue, bool prologue_first = false) {
    constexpr int U = chunk_u<WT, P, NR, NTH>();
    const int lane = threadIdx.x % CU_WARP, ng = n_in / granule_inputs<WT>();
    const int cpi = (ng + 32 * U - 1) / (32 * U); /* chunks per item */
    /* the next chunk to load: item it, chunk c, the item's row pointers */
    int ld_it = it0, ld_c = 0;
    row_ptrs rp[P];
    auto start = [&]() {
        const cu_mat *mm[P];
        int rows[P];
        rows_of(ld_it, mm, rows);
#pragma unroll
        for (int p = 0; p < P; p++) rp[p] = row_start<WT>(*mm[p], rows[p], lane);
    };
    auto load_next = [&](frag<WT>(&f)[P][U]) {
        if (ld_it >= it1) return;
        if (ld_c == 0) start();
        chunk_load<WT, P, U>(f, rp, ld_c, ng, lane);
        if (++ld_c == cpi) ld_c = 0, ld_it += stride;
    };
    /* the chunk being consumed */
    int it = it0, c = 0;
    float acc[P][NR];
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int r = 0; r < NR; r++) acc[p][r] = 0.0f;
    auto consume = [&](const frag<WT>(&f)[P][U]) {
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int g = (c * U + u) * 32 + lane;
            if (g < ng) granule_dot<WT, NR, P, U>(f, u, g, pk, acc);
        }
        if (c == cpi - 1) {
#pragma unroll
            for (int p = 0; p < P; p++)
#pragma unroll
                for (int r = 0; r < NR; r++) acc[p][r] = warp_sum(acc[p][r]);
            epilogue(it, acc);
#pragma unroll
            for (int p = 0; p < P; p++)
#pragma unroll
                for (int r = 0; r < NR; r++) acc[p][r] = 0.0f;
        }
        if (++c == cpi) c = 0, it += stride;
    };
    /* three register slots: loads run two chunks ahead of the arithmetic.
     * ROTATE: one copy of the loop body, the slots shifted by register
     * moves after each chunk. A warp runs only a few chunks a launch at one
     * row, so its loop body runs about once and is fetched cold every launch
     * (a layer's kernels do not fit the SMs' instruction caches together);
     * unrolled by three, so that chunk k sits in slot k mod 3 without moves,
     * the body is three times the code to fetch. The one-row projections
     * (wo, down: one row an item, down's long rows) and the float weights
     * (larger fragments: more moves) lose more to the moves than they gain
     * (2026-11-29-cuda-h200-8.md), so they keep the three (rows_loop). */
    frag<WT> f0[P][U], f1[P][U], f2[P][U];
    if (prologue_first) prologue(prologue_when<true>{});
    load_next(f0);
    load_next(f1);
    if (!prologue_first) prologue(prologue_when<false>{});
    if constexpr (ROTATE) {
        while (it < it1) {
            load_next(f2);
            consume(f0);
#pragma unroll
            for (int p = 0; p < P; p++)
#pragma unroll
                for (int u = 0; u < U; u++) f0[p][u] = f1[p][u], f1[p][u] = f2[p][u];
        }
    } else {
        while (it < it1) {
            load_next(f2);
            consume(f0);
            if (it >= it1) break;
            load_next(f0);
            consume(f1);
            if (it >= it1) break;
            load_next(f1);
            consume(f2);
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
