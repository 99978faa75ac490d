/*
 * The decode step as ONE persistent kernel that never stops streaming
 * weights (decode mode ZT_CUDA_STREAM; host side in decode.cu).
 *
 * Why. The phase kernels (decode.cuh) stream every weight phase at a
 * third of the copy bandwidth: each phase has a ramp and a tail, and the
 * DRAM idles while a phase waits on the previous one's results. But the
 * weights never depend on the activations, and their order is fixed: the
 * step reads layer 0's QKV, wo, gate|up, down, layer 1's, ..., lm_head.
 * So one producer warp per SM copies its SM's share of that sequence into
 * a ring of shared-memory stages with bulk async copies (TMA, completion
 * on an mbarrier), as far ahead as the ring allows, while the consumer
 * warps wait on grid barriers between phases. The ring (~190 KB per SM,
 * ~25 MB over 132 SMs, ~8 us of DRAM time) absorbs the barriers, the
 * attention phase and the activation packs; the DRAM keeps streaming.
 *
 * Mapping: grid = one block per SM (cooperative launch: grid barriers need
 * every block resident); block = CU_STREAM_WARPS consumer warps + 1 producer
 * warp. A weight phase's items (QKV pairs, rows, gate|up row pairs) are
 * split across blocks as in the phase kernels (block_range); a block's
 * range is cut into tiles of at most one stage (QKV tiles stay within a
 * head's rotated or unrotated pairs, so that a tile is one or two row runs
 * of one matrix). Producer and consumers walk the same tile sequence
 * (seg_at, seg_place); item k of a phase goes to consumer warp k mod warps, which
 * runs the same per-lane dot products as gemv_items on the stage
 * instead of global memory (the same order: bit-identical logits).
 *
 *   per layer:  [sync] pack(rmsnorm x | embed) ; QKV tiles -> q, K/V cache
 *               [sync] kvq (int8 cache only)
 *               [sync] attention (split-K, decode.cuh's phase_attn)
 *               [sync] pack(attn) ; wo tiles ; x += out
 *               [sync] pack(rmsnorm x) ; gate|up tiles ; h = silu(g) * u
 *               [sync] pack(h) ; down tiles ; x += out
 *   then:       [sync] pack(rmsnorm x[out rows]) ; lm tiles -> logits,
 *               block argmax ; [sync] block 0 merges the argmax
 *
 * Bytes: every weight byte once (plus <= 32 bytes of 16-byte rounding per
 * stream run of a tile), the activations from L2 once per block per phase.
 *
 * Status: opt-in (zt_cuda_tuning.decode_mode), not the default. On the
 * H100 it decodes Phi-3-mini Q4_0 at 362-368 tok/s (271 before its copies
 * took the evict-first L2 policy) against the phase graph's 528: the ring
 * is full most of the time, so the consumers are the limit, mostly the
 * activation packs (~7 us each while the copies saturate the memory
 * system) and the grid barriers (bench/results/2026-11-26-cuda-h100-2.md
 * has the timeline, -4.md the latest numbers). The tile machinery below
 * (schedule, producer, consumers) is shared with the staged kernels
 * (staged.cuh), which run it one phase per launch.
 */
#ifndef ZT_BACKEND_CUDA_STREAM_CUH
#define ZT_BACKEND_CUDA_STREAM_CUH

#include "backend/cuda/decode.cuh"

#define CU_STREAM_WARPS      8 /* consumer warps: 9 warps leave 168 registers a thread */
#define CU_STREAM_CONSUMERS  (CU_STREAM_WARPS * CU_WARP)
#define CU_STREAM_THREADS    (CU_STREAM_CONSUMERS + CU_WARP) /* consumers + the producer warp */
#define CU_STREAM_STAGES_MAX 32
#define CU_STREAM_SLACK      256 /* per tile: 16-byte rounding of <= 8 stream runs */

enum { SP_QKV, SP_WO, SP_GU, SP_DOWN, SP_LM };

/* The profile's events (M.prof, common.cuh). */
__device__ __forceinline__ void prof_mark(const cu_model &M, int l, int e) {
    if (M.prof && blockIdx.x == 0 && threadIdx.x == 0) M.prof[CU_PROF_AT(l, e)] = clock64();
}

/* mbar_wait; when thread `who` of block 0 waits, its cycles go to M.prof[slot]. */
__device__ __forceinline__ void mbar_wait_prof(const cu_model &M, uint64_t *b, unsigned parity,
                                               int slot, int who) {
    if (!M.prof || blockIdx.x != 0 || threadIdx.x != who) return mbar_wait(b, parity);
    long long t0 = clock64();
    mbar_wait(b, parity);
    M.prof[slot] += clock64() - t0;
}

/* dst, src 16-byte aligned, bytes a multiple of 16; completes on bar.
 * The source is weights: evict-first in L2 (weight_policy). */
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, unsigned bytes,
                                          uint64_t *bar) {
    bulk_copy_policy(dst, src, bytes, bar, weight_policy());
}

/* Every consumer of every block arrives, then all continue: writes before
 * the barrier are visible after it (to ld.cg reads). *target counts the
 * arrivals this block has waited for so far. */
__device__ __forceinline__ void grid_sync(const cu_model &M, unsigned &target) {
    target += gridDim.x;
    cta_sync<CU_STREAM_CONSUMERS>();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(M.grid_bar, 1u);
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(M.grid_bar));
        } while (v < target);
        __threadfence();
    }
    cta_sync<CU_STREAM_CONSUMERS>();
}

/* ---- the tile schedule ------------------------------------------------- */

__host__ __device__ __forceinline__ size_t mat_row_bytes(const cu_mat &m) {
    size_t b = 0;
    for (int s = 0; s < 4; s++) b += stream_row_bytes(m, s);
    return b;
}

/* The items of phase ph: QKV pairs, gate|up pairs, output rows. */
__device__ __forceinline__ int phase_count(const cu_model &M, int ph) {
    return ph == SP_QKV ? M.qkv_dim / 2 : ph == SP_GU ? M.ffn : ph == SP_LM ? M.vocab : M.dim;
}

/* The block's share [i0, i1) of a launch's items [n0, n1) (the whole
 * phase, or a staged QKV launch's pairs of one weight type). */
__device__ __forceinline__ void launch_items(int n0, int n1, int &i0, int &i1) {
    block_range(n1 - n0, i0, i1);
    i0 += n0, i1 += n0;
}

/* A run [s0, s1) of a phase's items with one layout, worked out once so
 * that each tile costs a few multiplies: region g's first row of item it
 * is r0[g] + (it - s0) * step (step 2: a QKV pair of row neighbours, both
 * in region 0; otherwise one row per region: gate and up, or the rotate-
 * half pair's two rows). Stream k of region g starts at base[g][k] with
 * rb[g][k] bytes per row (0: absent). A tile is at most nmax items. */
struct st_seg {
    int s0, s1, nreg, step, nmax, wt, n_in;
    int r0[2];
    const uint8_t *base[2][4];
    unsigned rb[2][4];
};

__device__ __forceinline__ void seg_mat(st_seg &s, int g, const cu_mat &m) {
    const uint8_t *b[4] = {m.q, m.a1, m.a2, m.a3};
#pragma unroll
    for (int k = 0; k < 4; k++) {
        s.base[g][k] = b[k];
        s.rb[g][k] = b[k] ? (unsigned)stream_row_bytes(m, k) : 0u;
    }
}

/* A ring of n stages of `bytes` each, in shared memory. */
struct ring_geom {
    int n, bytes;
};

/* The run of phase ph (layer L) that starts at item it, ending by i1, in
 * tiles of at most one stage of `stage` bytes. QKV runs stay within one
 * head's rotated (or unrotated) pairs. */
__device__ __forceinline__ void seg_at(const cu_model &M, const cu_layer &L, int ph, int it, int i1,
                                       st_seg &s, int stage) {
    const cu_mat *m0, *m1 = nullptr;
    s.s0 = it, s.s1 = i1, s.nreg = 1, s.step = 1;
    if (ph == SP_QKV) {
        int hp = M.hd / 2, hh = it / hp, i = it % hp, a, b, j, la, lb;
        bool lo = hh < M.n_heads + M.n_kv && i < M.rope_half;
        s.s1 = min(i1, hh * hp + (lo ? M.rope_half : hp));
        qkv_pair(M, it, a, b, j);
        m0 = qkv_mat(M, L, a, la);
        qkv_mat(M, L, b, lb);
        if (lo && !M.rope_interleaved) {
            s.nreg = 2, m1 = m0;
            s.r0[0] = la, s.r0[1] = lb;
        } else {
            s.step = 2, s.r0[0] = la;
        }
    } else if (ph == SP_GU) {
        s.nreg = 2, m0 = &L.mg, m1 = &L.mu;
        s.r0[0] = L.og + it, s.r0[1] = L.ou + it;
    } else {
        m0 = ph == SP_WO ? &L.wo : ph == SP_DOWN ? &L.down : &M.out;
        s.r0[0] = it;
    }
    seg_mat(s, 0, *m0);
    if (m1) seg_mat(s, 1, *m1);
    s.wt = m0->wt, s.n_in = m0->n_in;
    unsigned item = 0;
#pragma unroll
    for (int g = 0; g < 2; g++)
#pragma unroll
        for (int k = 0; k < 4; k++)
            if (g < s.nreg) item += s.rb[g][k] * s.step;
    s.nmax = max(1, (stage - CU_STREAM_SLACK) / (int)item);
}

/* Lays tile [it, it + n) of run s out in a stage: each (region, stream)
 * run of rows as the 16-byte aligned global range that holds it (streams
 * carry 256 bytes of slack, forward.cu), back to back. sp[g][k]: the
 * shared-window address of the tile's first row of stream k of region g
 * (32-bit: consumers read the stage with ld.shared on 32-bit addresses,
 * which keeps the item loops' registers down). ISSUE: also start the
 * copies, completing on bar. Returns the bytes. */
template <bool ISSUE>
__device__ __forceinline__ unsigned seg_place(const st_seg &s, int it, int n, uint8_t *stage,
                                              uint32_t sp[2][4], uint64_t *bar) {
    unsigned off = 0;
    const uint32_t base = smem_u32(stage);
#pragma unroll
    for (int g = 0; g < 2; g++) {
#pragma unroll
        for (int k = 0; k < 4; k++) {
            sp[g][k] = 0;
            const unsigned rb = s.rb[g][k];
            if (g >= s.nreg || !rb) continue;
            size_t b0 = (size_t)(s.r0[g] + (it - s.s0) * s.step) * rb;
            size_t b1 = b0 + (size_t)n * s.step * rb;
            size_t lo = b0 & ~(size_t)15, hi = (b1 + 15) & ~(size_t)15;
            sp[g][k] = base + off + (unsigned)(b0 - lo);
            if (ISSUE) bulk_copy(stage + off, s.base[g][k] + lo, (unsigned)(hi - lo), bar);
            off += (unsigned)(hi - lo);
        }
    }
    return off;
}

/* ---- consumers: dot products on a stage -------------------------------- */

/* ld.shared of 16, 8, 4, 2 bytes at a shared-window address (volatile:
 * never hoisted above the mbarrier wait that made the stage valid). */
__device__ __forceinline__ uint4 lds16(uint32_t a) {
    uint4 v;
    asm volatile("ld.shared.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "r"(a));
    return v;
}
__device__ __forceinline__ uint2 lds8(uint32_t a) {
    uint2 v;
    asm volatile("ld.shared.v2.u32 {%0,%1}, [%2];" : "=r"(v.x), "=r"(v.y) : "r"(a));
    return v;
}
__device__ __forceinline__ uint32_t lds4(uint32_t a) {
    uint32_t v;
    asm volatile("ld.shared.u32 %0, [%1];" : "=r"(v) : "r"(a));
    return v;
}
__device__ __forceinline__ uint16_t lds2(uint32_t a) {
    uint16_t v;
    asm volatile("ld.shared.u16 %0, [%1];" : "=h"(v) : "r"(a));
    return v;
}

/* The registers of granule xb of a row whose streams start at the shared
 * addresses p[0..3] (the same fields as frag_load's). */
template <int WT>
__device__ __forceinline__ void sfrag_load(frag<WT> &f, const uint32_t p[4], int xb) {
    if constexpr (is_float_wt<WT>()) {
        f.w = lds16(p[0] + xb * 16);
    } else if constexpr (WT == CW_Q4_0) {
        f.q = lds16(p[0] + xb * 16);
        f.d = lds2(p[1] + xb * 2);
    } else if constexpr (WT == CW_Q8_0) {
        f.q0 = lds16(p[0] + xb * 32);
        f.q1 = lds16(p[0] + xb * 32 + 16);
        f.d = lds2(p[1] + xb * 2);
    } else if constexpr (WT == CW_Q4_K || WT == CW_Q5_K) {
        f.q = lds16(p[0] + xb * 16);
        f.h = lds16(p[1] + (xb >> 3) * 16);
        if constexpr (WT == CW_Q5_K) f.qh = lds4(p[2] + xb * 4);
    } else if constexpr (WT == CW_Q6_K) {
        f.q = lds16(p[0] + xb * 16);
        f.qh = lds8(p[1] + xb * 8);
        f.sc = lds2(p[2] + xb * 2);
        f.d = lds2(p[3] + (xb >> 3) * 2);
    }
}

/* acc[p][r] += row p . activation row r, per lane: gemv_items' granule_dot
 * on fragments from the stage instead of registers loaded from global
 * memory, granules lane, lane + 32, ... in the same order (bit-identical
 * sums). U granules per trip: their shared-memory loads are issued
 * together, so a trip waits for one load latency, not U (the staged
 * kernels take the GEMV's chunk; the stream kernel's calls 1, which keeps
 * their frames small). */
template <int WT, int NR, int P, int U>
__device__ __forceinline__ void sdot(const uint32_t rp[P][4], int n_in, const cu_pack &pk, int lane,
                                     float (&acc)[P][NR]) {
    const int ng = n_in / granule_inputs<WT>();
    for (int g0 = lane; g0 < ng; g0 += 32 * U) {
        frag<WT> f[P][U];
#pragma unroll
        for (int u = 0; u < U; u++)
            if (g0 + 32 * u < ng) {
#pragma unroll
                for (int p = 0; p < P; p++) sfrag_load<WT>(f[p][u], rp[p], g0 + 32 * u);
            }
#pragma unroll
        for (int u = 0; u < U; u++)
            if (g0 + 32 * u < ng) granule_dot<WT, NR, P, U>(f, u, g0 + 32 * u, pk, acc);
    }
}

/* Item k of the tile that starts at phase item it0 (run s, laid out at
 * sp), by this warp, epilogue included; U granules per trip (sdot). */
template <int WT, int NR, int EPI, int U>
__device__ __forceinline__ void
tile_item(const cu_model &M, const cu_layer &L, int l, const cu_pack &pk, const st_seg &s,
          const uint32_t (&sp)[2][4], int it0, int k, int lane, float &best, int &best_i) {
    constexpr int P = (EPI == EPI_QKV || EPI == EPI_GU) ? 2 : 1;
    const int it = it0 + k;
    /* item k's rows: region p's row k (two regions) or the row neighbours
     * k * step, k * step + 1 of region 0 (selects, no indexed arrays) */
    const bool two = s.nreg == 2;
    uint32_t rp[P][4];
#pragma unroll
    for (int q = 0; q < 4; q++) {
        rp[0][q] = sp[0][q] + (uint32_t)(k * s.step) * s.rb[0][q];
        if constexpr (P == 2)
            rp[1][q] = two ? sp[1][q] + (uint32_t)k * s.rb[1][q]
                           : sp[0][q] + (uint32_t)(k * s.step + 1) * s.rb[0][q];
    }
    float acc[P][NR];
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int r = 0; r < NR; r++) acc[p][r] = 0.0f;
    sdot<WT, NR, P, U>(rp, s.n_in, pk, lane, acc);
#pragma unroll
    for (int p = 0; p < P; p++)
#pragma unroll
        for (int r = 0; r < NR; r++) acc[p][r] = warp_sum(acc[p][r]);
    item_finish<EPI, NR, P>(M, L, l, pk, lane, it, acc, best, best_i);
}

/* tile_item as a call of its own, for the stream kernel, which holds every
 * type's loops: inlined there, they spilled. (A call's frame is local
 * memory; the staged kernels, one weight type each, inline tile_item.) */
template <int WT, int NR, int EPI>
__device__ __noinline__ void
stream_item(const cu_model &M, const cu_layer &L, int l, const cu_pack &pk, const st_seg &s,
            const uint32_t (&sp)[2][4], int it0, int k, int lane, float &best, int &best_i) {
    tile_item<WT, NR, EPI, 1>(M, L, l, pk, s, sp, it0, k, lane, best, best_i);
}

/* The block's tiles of weight phase ph, items [n0, n1) (the pack is
 * built): wait for each stage, compute this warp's items, release the
 * stage. t: tile counter. WT: the launch's one weight type (the staged
 * kernels), or -1: a switch per item on the tile's type. waited: if not
 * NULL, gets the nanoseconds this thread waited for full stages. */
template <int NR, int EPI, int WT = -1>
__device__ __forceinline__ void consume_phase(const cu_model &M, const cu_layer &L, int l, int ph,
                                              int n0, int n1, const cu_pack &pk,
                                              const ring_geom &rg, uint8_t *ring, uint64_t *full,
                                              uint64_t *empty, unsigned &t, float &best,
                                              int &best_i, unsigned long long *waited = nullptr) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    int i0, i1;
    launch_items(n0, n1, i0, i1);
    for (int it = i0; it < i1;) {
        st_seg sg;
        seg_at(M, L, ph, it, i1, sg, rg.bytes);
        for (; it < sg.s1; t++) {
            const int n = min(sg.s1 - it, sg.nmax);
            const unsigned stg = t % rg.n;
            uint32_t sp[2][4];
            seg_place<false>(sg, it, n, ring + (size_t)stg * rg.bytes, sp, nullptr);
            const unsigned long long w0 = waited ? globaltimer_ns() : 0;
            mbar_wait_prof(M, &full[stg], (t / rg.n) & 1, 1, 0);
            if (waited) *waited += globaltimer_ns() - w0;
            int k = ((warp - (it - i0)) % CU_STREAM_WARPS + CU_STREAM_WARPS) % CU_STREAM_WARPS;
            for (; k < n; k += CU_STREAM_WARPS) {
                if constexpr (WT >= 0) {
                    constexpr int P = (EPI == EPI_QKV || EPI == EPI_GU) ? 2 : 1;
                    tile_item<WT, NR, EPI, chunk_u<WT, P, NR>()>(M, L, l, pk, sg, sp, it, k, lane,
                                                                 best, best_i);
                } else {
#define ZT_STREAM_ITEM(W) stream_item<W, NR, EPI>(M, L, l, pk, sg, sp, it, k, lane, best, best_i)
                    switch (sg.wt) {
                    case CW_Q4_0:
                        ZT_STREAM_ITEM(CW_Q4_0);
                        break;
                    case CW_Q8_0:
                        ZT_STREAM_ITEM(CW_Q8_0);
                        break;
                    case CW_Q4_K:
                        ZT_STREAM_ITEM(CW_Q4_K);
                        break;
                    case CW_Q5_K:
                        ZT_STREAM_ITEM(CW_Q5_K);
                        break;
                    case CW_Q6_K:
                        ZT_STREAM_ITEM(CW_Q6_K);
                        break;
                    case CW_F16:
                        ZT_STREAM_ITEM(CW_F16);
                        break;
                    default:
                        ZT_STREAM_ITEM(CW_BF16);
                        break;
                    }
#undef ZT_STREAM_ITEM
                }
            }
            __syncwarp();
            if (lane == 0) mbar_arrive(&empty[stg]);
            it += n;
        }
    }
}

/* The consumer warps: the whole step. */
template <int NR>
__device__ __forceinline__ void stream_consume(const cu_model &M, uint8_t *smem, uint8_t *ring,
                                               uint64_t *full, uint64_t *empty, int do_lm) {
    const cu_step &st = *M.step;
    const ring_geom rg = {M.st_n[0], M.st_bytes};
    cu_pack pk = pack_carve(smem, M, NR);
    rows_fill(M, st, pk, NR, CU_STREAM_CONSUMERS);
    unsigned t = 0, target = 0;
    float best = 0.0f;
    int best_i = 0;
    for (int l = 0; l < M.n_layers; l++) {
        const cu_layer &L = M.layers[l];
        if (l > 0) grid_sync(M, target);
        prof_mark(M, l, 0);
        pack_src sq = {
            l == 0 ? SRC_EMBED : SRC_RESID, M.resid, M.dim, nullptr, L.attn_norm, st.token,
            l == 0 ? M.resid : nullptr};
        pack_build<NR, CU_STREAM_WARPS>(M, sq, M.dim_p, st.n_rows, pk);
        prof_mark(M, l, 1);
        consume_phase<NR, EPI_QKV>(M, L, l, SP_QKV, 0, phase_count(M, SP_QKV), pk, rg, ring, full,
                                   empty, t, best, best_i);
        prof_mark(M, l, 2);
        if (M.kv_type == CU_KV_Q8) {
            grid_sync(M, target);
            phase_kvq<CU_STREAM_WARPS>(M, l);
        }
        grid_sync(M, target);
        prof_mark(M, l, 3);
        phase_attn<CU_STREAM_CONSUMERS>(M, l, (float *)smem);
        prof_mark(M, l, 4);
        grid_sync(M, target);
        prof_mark(M, l, 5);
        rows_fill(M, st, pk, NR, CU_STREAM_CONSUMERS); /* attention's scratch overlaid it */
        pack_src sa = {SRC_PLAIN, M.attn, M.q_dim, nullptr, nullptr, nullptr, nullptr};
        pack_build<NR, CU_STREAM_WARPS>(M, sa, L.wo.n_in, st.n_rows, pk);
        prof_mark(M, l, 6);
        consume_phase<NR, EPI_PROJ>(M, L, l, SP_WO, 0, phase_count(M, SP_WO), pk, rg, ring, full,
                                    empty, t, best, best_i);
        prof_mark(M, l, 7);
        grid_sync(M, target);
        prof_mark(M, l, 8);
        pack_src sg = {SRC_RESID, M.resid, M.dim, nullptr, L.ffn_norm, nullptr, nullptr};
        pack_build<NR, CU_STREAM_WARPS>(M, sg, M.dim_p, st.n_rows, pk);
        prof_mark(M, l, 9);
        consume_phase<NR, EPI_GU>(M, L, l, SP_GU, 0, phase_count(M, SP_GU), pk, rg, ring, full,
                                  empty, t, best, best_i);
        prof_mark(M, l, 10);
        grid_sync(M, target);
        prof_mark(M, l, 11);
        pack_src sd = {SRC_PLAIN, M.hbuf, M.ffn, nullptr, nullptr, nullptr, nullptr};
        pack_build<NR, CU_STREAM_WARPS>(M, sd, L.down.n_in, st.n_rows, pk);
        prof_mark(M, l, 12);
        consume_phase<NR, EPI_PROJ>(M, L, l, SP_DOWN, 0, phase_count(M, SP_DOWN), pk, rg, ring,
                                    full, empty, t, best, best_i);
        prof_mark(M, l, 13);
    }
    if (!do_lm) return;
    grid_sync(M, target);
    prof_mark(M, M.n_layers, 0);
    pack_src so = {SRC_RESID, M.resid, M.dim, st.out_row, M.out_norm, nullptr, nullptr};
    pack_build<NR, CU_STREAM_WARPS>(M, so, M.dim_p, st.n_out, pk);
    prof_mark(M, M.n_layers, 1);
    best = -INFINITY, best_i = 0x7fffffff;
    consume_phase<NR, EPI_LM>(M, M.layers[M.n_layers - 1], M.n_layers - 1, SP_LM, 0, M.vocab, pk,
                              rg, ring, full, empty, t, best, best_i);
    lm_block_winner<CU_STREAM_WARPS>(M, pk, best, best_i);
    grid_sync(M, target);
    if (blockIdx.x == 0) phase_argmax<CU_STREAM_WARPS>(M, gridDim.x);
    prof_mark(M, M.n_layers, 2);
}

/* ---- the producer ------------------------------------------------------ */

__device__ __forceinline__ void produce_phase(const cu_model &M, const cu_layer &L, int ph, int n0,
                                              int n1, const ring_geom &rg, uint8_t *ring,
                                              uint64_t *full, uint64_t *empty, unsigned &t,
                                              unsigned early = ~0u) {
    int i0, i1;
    launch_items(n0, n1, i0, i1);
    for (int it = i0; it < i1;) {
        st_seg sg;
        seg_at(M, L, ph, it, i1, sg, rg.bytes);
        for (; it < sg.s1; t++) {
            const int n = min(sg.s1 - it, sg.nmax);
            const unsigned stg = t % rg.n;
            if (t == early) asm volatile("griddepcontrol.wait;" ::: "memory");
            if (t >= (unsigned)rg.n)
                mbar_wait_prof(M, &empty[stg], ((t / rg.n) + 1) & 1, 0, CU_STREAM_CONSUMERS);
            uint8_t *stage = ring + (size_t)stg * rg.bytes;
            uint32_t sp[2][4];
            mbar_expect_tx(&full[stg], seg_place<false>(sg, it, n, stage, sp, nullptr));
            seg_place<true>(sg, it, n, stage, sp, &full[stg]);
            it += n;
        }
    }
}

/* One thread of the producer warp walks the whole step's tiles. */
__device__ __forceinline__ void stream_produce(const cu_model &M, uint8_t *ring, uint64_t *full,
                                               uint64_t *empty, int do_lm) {
    if (threadIdx.x % CU_WARP) return;
    const ring_geom rg = {M.st_n[0], M.st_bytes};
    unsigned t = 0;
    for (int l = 0; l < M.n_layers; l++)
        for (int ph = SP_QKV; ph <= SP_DOWN; ph++)
            produce_phase(M, M.layers[l], ph, 0, phase_count(M, ph), rg, ring, full, empty, t);
    if (do_lm)
        produce_phase(M, M.layers[M.n_layers - 1], SP_LM, 0, M.vocab, rg, ring, full, empty, t);
}

/* The index of row template nr in cu_model's st_head / st_n. */
__host__ __device__ __forceinline__ int nr_index(int nr) {
    return nr <= 1 ? 0 : nr <= 2 ? 1 : nr <= 4 ? 2 : 3;
}

/* Shared memory: [st_head: pack | attention scratch][ring][full][empty].
 * The descriptor is copied to shared memory with this row template's
 * head and stage count moved to index 0, where everything below reads
 * them. */
template <int NR>
__global__ void __launch_bounds__(CU_STREAM_THREADS, 1)
    cu_stream_kernel(const cu_model *Mp, int do_lm) {
    __shared__ cu_model Ms; /* the descriptor, read at every tile: from shared memory */
    extern __shared__ __align__(16) uint8_t smem[];
    if (threadIdx.x == 0) {
        Ms = *Mp;
        Ms.st_n[0] = Ms.st_n[nr_index(NR)], Ms.st_head[0] = Ms.st_head[nr_index(NR)];
    }
    __syncthreads();
    const cu_model &M = Ms;
    uint8_t *ring = smem + M.st_head[0];
    const int st_n = M.st_n[0];
    uint64_t *full = (uint64_t *)(ring + (size_t)st_n * M.st_bytes), *empty = full + st_n;
    if (threadIdx.x == 0) {
        for (int s = 0; s < st_n; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], CU_STREAM_WARPS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (threadIdx.x >= CU_STREAM_CONSUMERS)
        stream_produce(M, ring, full, empty, do_lm);
    else
        stream_consume<NR>(M, smem, ring, full, empty, do_lm);
}

/* Dynamic shared bytes of the stream kernel for row template nr. */
__host__ __device__ __forceinline__ size_t cu_stream_smem(const cu_model &M, int nr) {
    int i = nr_index(nr);
    return (size_t)M.st_head[i] + (size_t)M.st_n[i] * M.st_bytes + (size_t)M.st_n[i] * 16;
}

#endif
