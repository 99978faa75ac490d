/*
 * Role attention, decode form: one query row against its sequence's paged
 * K/V, split over positions (split-K) so that short batches still fill
 * the GPU, with the splits merged by whichever block finishes last.
 *
 * Item = (row i of the list, head group hg, split c); one block per item.
 * A head group is GQ query heads sharing one KV head (all of them when
 * n_heads / n_kv <= 8), so each K/V row is read once for the group.
 *
 *   pages:  the split's page-table entries into shared memory first;
 *   tiles:  then K and V stream through a ring of shared-memory tiles
 *           filled with cp.async (K tiles of the split, then its V tiles),
 *           up to three tiles in flight while one is computed: the loads
 *           hold no registers, so many are in flight per SM (with
 *           register loads, 4 positions a lane, an item took one memory
 *           round trip per 96 positions: 40 us for 528 positions);
 *           the first tiles travel with the queries;
 *   scores: f16 caches with hd a multiple of 16 on tensor cores: S = K q
 *           as m16n8k16 HMMA, 16 positions (ldmatrix from the K tile) by
 *           the group's heads (n = GQ <= 8), the queries split into f16
 *           hi + lo parts (two HMMAs a step, so the scores keep f32's
 *           precision); otherwise LP lanes per position (LP = hd/8 rounded
 *           up to a power of 2), 16 bytes of the K tile per lane, 3
 *           positions a lane at once, shuffles within the LP lanes;
 *   softmax: the warps split over the heads, over the split's positions;
 *   PV:     tensor cores as the scores: O^T += V^T P, warp (mb, kg) owns
 *           dims 16 mb.. and every KG-th 16 positions of a tile (V by
 *           ldmatrix.trans, P as hi + lo f16), then a fixed-order sum
 *           over kg; otherwise thread (pg, dc) sums a V tile's positions
 *           pg, pg + PG, ... for 8 dims dc, then a fixed-order sum over
 *           pg (deterministic either way);
 *   merge:  partial (o unnormalized, max, sum) per split; an atomic
 *           counter per (row, head group) elects the last block, which
 *           combines the splits and writes the row's output.
 *
 * With tune.attn_mma = 2 (the default) an f16 item of head_dim 32, 64,
 * 96 or 128 runs attn_warps.cuh's form instead: the same item and merge,
 * its key loop in registers without the ring or block barriers. The tiles
 * above serve the int8 cache, other head sizes and the prefill path's row
 * kernel.
 *
 * Bytes: the K and V rows of the visible positions once (plus the
 * partials, n_splits * (hd + 2) floats per head, via L2).
 */
#ifndef ZT_BACKEND_CUDA_ATTENTION_CUH
#define ZT_BACKEND_CUDA_ATTENTION_CUH

#include "backend/cuda/common.cuh"

/* Positions per split, at most: long splits let a deep context fill the
 * GPU in one wave of items (at 2,100 positions, 32 heads x 4 splits of
 * 528 on 132 SMs; with splits of at most 256 the 288 items took three
 * waves and attention 71 us a layer, bench/results/2026-11-27-cuda-h100.md). The
 * row-list kernel (prefill) keeps splits of CU_ATTN_CHUNK_ROWS. */
#define CU_ATTN_CHUNK_MAX  1024
#define CU_ATTN_CHUNK_ROWS 256
#define CU_ATTN_GQ_MAX     8    /* query heads per item */
#define CU_ATTN_KW         8    /* attn_warps.cuh: key groups an item */
#define CU_ATTN_RED_FLOATS 8192 /* PV reduction scratch (in the ring) */
#define CU_PH_ATTN_SLOT    2    /* == CU_PH_ATTN (kernels.h), the timeline's slot */
/* The K/V tile ring: CU_ATTN_RING_SLOTS slots of CU_ATTN_SLOT_BYTES, each
 * cu_attn_tile_len(hd) positions of f16 rows (or int8 rows, then their f32
 * scales at a 16-byte boundary). 48 KB, three tiles (36 KB at hd 96) in
 * flight per SM: at depth 2048 an item still waits ~1 us a tile, but a
 * 96 KB ring with seven in flight was no faster (attention 29.1 us a
 * layer against 27.5; bench/results/2026-11-27-cuda-h100-2.md). PV's
 * partial sums reuse the ring once the V tiles are done. */
#ifndef CU_ATTN_RING_BYTES /* a variant build may set both (bench/cuda/build.sh NVCC_EXTRA) */
#define CU_ATTN_RING_BYTES (48 * 1024)
#define CU_ATTN_RING_SLOTS 4
#endif
#define CU_ATTN_SLOT_BYTES (CU_ATTN_RING_BYTES / CU_ATTN_RING_SLOTS)

struct attn_args {
    const float *q32;  /* queries [rows][q_ld] f32, or */
    const __half *q16; /* f16 */
    int q_ld;
    float *out32;  /* output [rows][out_ld] f32, or */
    __half *out16; /* f16 */
    int out_ld;
    const int *rows; /* list -> batch row, or NULL for i -> i */
    int n_list, n_splits, chunk;
    float *part_o;   /* [n_list][n_heads][n_splits][hd] */
    float2 *part_ml; /* [n_list][n_heads][n_splits] */
    unsigned *cnt;   /* [n_list][n_heads / gq] */
    float *out_sm;   /* one split: the item's [gq][hd] outputs into shared memory instead
                        of out32 / out16 (the fused attention + wo), or NULL */
};

/* Row r of list entry i, its position and its page list: a decode step's
 * rows (A.rows NULL) from the step header (cu_step.row_pos, row_pt), one
 * load from the header's fixed address; the batched path's from the
 * step's arrays, whose addresses are a load of their own. The page walk
 * after this is an item's last load before its wait on the QKV kernel,
 * and in the fused attention + wo it queues behind the Wo slice's loads:
 * each dependent round trip there is the step's. */
__device__ __forceinline__ void attn_row(const cu_step &st, const attn_args &A, int i, int &r,
                                         int &pos, const int *&pt) {
    if (!A.rows) {
        r = i, pos = st.row_pos[i], pt = st.pt + st.row_pt[i];
        return;
    }
    r = A.rows[i], pos = st.pos[r], pt = st.pt + (size_t)st.cseq[r] * st.pt_stride;
}

/* Positions per ring tile. f16: 2 hd bytes a row, a multiple of 16
 * positions (the tensor cores' row blocks; 64 at hd 96, the whole slot);
 * int8: room for 2 hd bytes of row and 4 of scale each, with 48 bytes of
 * the slot kept for rounding the scales up to 16 bytes. */
__host__ __device__ __forceinline__ int cu_attn_tile_len(int hd, int kv) {
    return kv == CU_KV_F16 ? CU_ATTN_SLOT_BYTES / (2 * hd) / 16 * 16
                           : (CU_ATTN_SLOT_BYTES - 48) / (2 * hd + 4);
}

/* Shared floats an item needs (the ring first: 16-byte aligned), with
 * the queries' tensor-core fragments (8 hd floats) after the ring. */
__host__ __device__ __forceinline__ size_t cu_attn_smem_floats(int gq, int hd, int chunk) {
    static_assert(CU_ATTN_RED_FLOATS * 4 <= CU_ATTN_RING_BYTES, "PV's sums live in the ring");
    return CU_ATTN_RING_BYTES / 4 + (size_t)8 * hd + (size_t)gq * hd + (size_t)gq * chunk +
           2 * CU_ATTN_GQ_MAX;
}

/* Element offset of (layer, page, kv head, slot, dim 0) in the cache. */
__device__ __forceinline__ size_t kv_offset(const cu_model &M, int layer, int page, int kvh,
                                            int slot) {
    return ((((size_t)layer * M.n_pages + page) * M.n_kv + kvh) * ZT_KV_PAGE_CU + slot) * M.hd;
}
__device__ __forceinline__ size_t kv_scale_offset(const cu_model &M, int layer, int page, int kvh,
                                                  int slot) {
    return (((size_t)layer * M.n_pages + page) * M.n_kv + kvh) * ZT_KV_PAGE_CU + slot;
}

/* 8 cache values from their raw words: f16 (16 bytes), or int8 (8 bytes)
 * times the position's scale. Shared by the global loads below and the
 * attention's shared-memory tiles. */
__device__ __forceinline__ void kv_unpack8(uint4 w, float v[8]) {
    const uint32_t a[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&a[i]));
        v[2 * i] = f.x, v[2 * i + 1] = f.y;
    }
}
__device__ __forceinline__ void kv_unpack8(uint2 w, float s, float v[8]) {
    const uint32_t a[2] = {w.x, w.y};
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = s * (float)(int8_t)(a[i / 4] >> (8 * (i % 4)));
}

/* 8 cache values starting at element offset `off` (a multiple of 8). */
template <int KV>
__device__ __forceinline__ void kv_load8(const uint8_t *cache, const float *scales, size_t off,
                                         size_t soff, float v[8]) {
    if constexpr (KV == CU_KV_F16)
        kv_unpack8(__ldcg((const uint4 *)(cache + off * 2)), v);
    else
        kv_unpack8(__ldcg((const uint2 *)(cache + off)), __ldcg(scales + soff), v);
}

/* ---- the tensor-core forms of the scores and PV (f16 caches) ---------- */

/* x[0..3] as two B-fragment register pairs: f16 hi parts, then the f16 lo
 * parts (x - hi), so that two HMMAs into one f32 accumulator multiply by
 * x to ~22 bits, not f16's 11. */
__device__ __forceinline__ uint4 frag_hilo(const float x[4]) {
    const uint32_t h01 = pack_half2(x[0], x[1]), h23 = pack_half2(x[2], x[3]);
    const float2 f0 = __half22float2(*reinterpret_cast<const __half2 *>(&h01));
    const float2 f1 = __half22float2(*reinterpret_cast<const __half2 *>(&h23));
    return make_uint4(h01, h23, pack_half2(x[0] - f0.x, x[1] - f0.y),
                      pack_half2(x[2] - f1.x, x[3] - f1.y));
}

/* Scores of one K tile (kt: [TP][hd] f16, tn valid rows): S = K Q^T, warp
 * w taking 16-position row blocks w, w + nwarp, ...; the m16n8 result's
 * column g is head g of the group. sct = the scores at the tile's first
 * position ([GQ] rows of stride chunk). */
__device__ __forceinline__ void scores_mma(const __half *kt, const uint4 *qf, int hd, int tn,
                                           int GQ, float *sct, int chunk, int warp, int nwarp,
                                           int lane) {
    for (int rb = warp; rb * 16 < tn; rb += nwarp) {
        /* four independent accumulator chains (even / odd steps, hi / lo):
         * at short contexts a tile is one or two row blocks, so the
         * scores' time is this chain's latency */
        float c[4][4] = {};
        const __half *row = kt + (size_t)(rb * 16 + (lane & 7) + (lane & 8)) * hd + (lane >> 4) * 8;
        for (int kk = 0; kk < hd / 16; kk += 2)
#pragma unroll
            for (int u = 0; u < 2; u++)
                if (kk + u < hd / 16) {
                    uint32_t a[4];
                    ldsm_x4(a, row + (kk + u) * 16);
                    const uint4 b = qf[(kk + u) * 32 + lane];
                    mma_16816(c[2 * u], a, b.x, b.y);
                    mma_16816(c[2 * u + 1], a, b.z, b.w);
                }
        const int g = 2 * (lane & 3), t = rb * 16 + (lane >> 2);
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const int ge = g + (e & 1), te = t + (e >> 1) * 8;
            if (ge < GQ && te < tn)
                sct[ge * chunk + te] = (c[0][e] + c[1][e]) + (c[2][e] + c[3][e]);
        }
    }
}

/* O^T += V^T P for one V tile (vt: [TP][hd] f16, rows past tn zeros):
 * this warp's 16 dims mb and the tile's 16-position steps kg, kg + KG, ...
 * (V^T by ldmatrix.trans; P from the probabilities, hi + lo). oc: two
 * m16n8 accumulators, dims by heads, of the hi and the lo parts (two
 * chains); the output is their sum. pt = probabilities at the tile's
 * first position. */
__device__ __forceinline__ void pv_mma(float oc[8], const __half *vt, const float *pt, int chunk,
                                       int hd, int tn, int GQ, int mb, int kg, int KG, int lane) {
    const int g = lane >> 2, t2 = 2 * (lane & 3);
    for (int ks = kg; ks * 16 < tn; ks += KG) {
        uint32_t a[4];
        ldsm_x4_trans(a, vt + (size_t)(ks * 16 + (lane & 7) + ((lane & 16) >> 1)) * hd + mb * 16 +
                             (lane & 8));
        float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (g < GQ)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int t = ks * 16 + t2 + (e & 1) + (e >> 1) * 8;
                x[e] = t < tn ? pt[g * chunk + t] : 0.0f;
            }
        const uint4 b = frag_hilo(x);
        mma_16816(oc, a, b.x, b.y);
        mma_16816(oc + 4, a, b.z, b.w);
    }
}

/* An item's end: red holds PG partial sums of its unnormalized outputs
 * ([PG][GQ][hd]), s_m / s_l each head's max and sum of exponentials.
 * One split: normalize and store; else the split's partials to global
 * memory, and the last split of (row, head group) merges them. */
template <int NTH>
__device__ __forceinline__ void attn_finish(const cu_model &M, const attn_args &A, int i, int hg,
                                            int c, int r, const float *red, int PG,
                                            const float *s_m, const float *s_l) {
    __shared__ int s_last;
    const int tid = threadIdx.x, nth = NTH, hd = M.hd, GQ = M.gq, h0 = hg * GQ;
    const int n_hg = M.n_heads / GQ;
    if (A.n_splits == 1) { /* one split: normalize and store, no partials to merge */
        CU_COLD_LOOP
        for (int e = tid; e < GQ * hd; e += nth) {
            const int g = cu_div_q(e, M.hd_div), d = e - g * hd;
            float acc = 0.0f;
            for (int p = 0; p < PG; p++) acc += red[((size_t)p * GQ + g) * hd + d];
            float l = s_l[g], out = l > 0.0f ? acc / l : 0.0f;
            size_t oi = (size_t)r * A.out_ld + (size_t)(h0 + g) * hd + d;
            if (A.out_sm)
                A.out_sm[e] = out;
            else if (A.out32)
                A.out32[oi] = out;
            else
                A.out16[oi] = __float2half(out);
        }
        cta_sync<NTH>(); /* the next item reuses the shared scratch */
        return;
    }
    const size_t part = ((size_t)i * M.n_heads + h0) * A.n_splits + c; /* head h0, split c */
    CU_COLD_LOOP
    for (int e = tid; e < GQ * hd; e += nth) {
        const int g = cu_div_q(e, M.hd_div), d = e - g * hd;
        float acc = 0.0f;
        for (int p = 0; p < PG; p++) acc += red[((size_t)p * GQ + g) * hd + d];
        A.part_o[(part + (size_t)g * A.n_splits) * hd + d] = acc;
    }
    if (tid < GQ) A.part_ml[part + (size_t)tid * A.n_splits] = make_float2(s_m[tid], s_l[tid]);

    /* the last split of (row, head group) merges */
    __threadfence();
    cta_sync<NTH>();
    if (tid == 0) s_last = atomicAdd(&A.cnt[(size_t)i * n_hg + hg], 1u) == (unsigned)A.n_splits - 1;
    cta_sync<NTH>();
    if (s_last) {
        __threadfence();
        CU_COLD_LOOP
        for (int e = tid; e < GQ * hd; e += nth) {
            const int g = cu_div_q(e, M.hd_div), d = e - g * hd, h = h0 + g;
            const float2 *ml = A.part_ml + ((size_t)i * M.n_heads + h) * A.n_splits;
            const float *po = A.part_o + ((size_t)i * M.n_heads + h) * A.n_splits * hd + d;
            float mx = -INFINITY;
            for (int s = 0; s < A.n_splits; s++) mx = fmaxf(mx, __ldcg(ml + s).x);
            float l = 0.0f, acc = 0.0f;
            for (int s = 0; s < A.n_splits; s++) {
                float2 v = __ldcg(ml + s);
                float w = v.y > 0.0f ? expf(v.x - mx) : 0.0f;
                l += w * v.y;
                acc += w * __ldcg(po + (size_t)s * hd);
            }
            float out = l > 0.0f ? acc / l : 0.0f;
            size_t oi = (size_t)r * A.out_ld + (size_t)h * hd + d;
            if (A.out32)
                A.out32[oi] = out;
            else
                A.out16[oi] = __float2half(out);
        }
        if (tid == 0) A.cnt[(size_t)i * n_hg + hg] = 0;
    }
    cta_sync<NTH>();
}

struct attn_no_wait {
    __device__ void operator()() const {}
};

/* An item's static scratch: the head group's running max and sum, the
 * split's page numbers. At file scope so that a kernel holds one copy
 * whichever forms and head sizes it instantiates: as function-local
 * arrays each instantiation had its own (four head sizes of the
 * warp-parallel form: four copies). */
struct attn_static {
    float m[CU_ATTN_GQ_MAX], l[CU_ATTN_GQ_MAX];
    int pt[CU_ATTN_CHUNK_MAX / ZT_KV_PAGE_CU + 1];
};
static __shared__ attn_static s_attn;

/* the warp-parallel form (tune.attn_mma = 2): it ends with attn_finish
 * above, and attn_item below hands it its items */
#include "backend/cuda/attn_warps.cuh"

/* NTH: the threads that run the item (the block; at least 256). ready():
 * called once the
 * item's page walk is done and before anything the previous kernel wrote
 * is read (the decode step waits on it there: the walk reads only the
 * host's step). WARPS: whether tune.attn_mma = 2 takes attn_item_warps
 * here (the prefill path's rows kernel keeps the ring: its registers). */
template <int KV, int NTH, class Ready = attn_no_wait, bool WARPS = true>
__device__ __forceinline__ void attn_item(const cu_model &M, const cu_step &st, int layer,
                                          const attn_args &A, int i, int hg, int c, float *sm,
                                          Ready ready = Ready()) {
    static_assert(NTH >= 256, "PV's 256-thread mapping needs 256 threads");
    if constexpr (KV == CU_KV_F16 && WARPS)
        if (M.attn_mma == 2) switch (M.hd) { /* one instantiation a head size */
            case 32:
                return attn_item_warps<2, NTH>(M, st, layer, A, i, hg, c, sm, ready);
            case 64:
                return attn_item_warps<4, NTH>(M, st, layer, A, i, hg, c, sm, ready);
            case 96:
                return attn_item_warps<6, NTH>(M, st, layer, A, i, hg, c, sm, ready);
            case 128:
                return attn_item_warps<8, NTH>(M, st, layer, A, i, hg, c, sm, ready);
            }
    float *s_m = s_attn.m, *s_l = s_attn.l;
    int *s_pt = s_attn.pt;
    const int tid = threadIdx.x, nth = NTH, lane = tid & 31, warp = tid >> 5;
    const int nwarp = nth >> 5, hd = M.hd, GQ = M.gq, h0 = hg * GQ;
    const int kvh = h0 / (M.n_heads / M.n_kv);
    int r, pos;
    const int *pt;
    attn_row(st, A, i, r, pos, pt);
    const int lo = M.window > 0 ? max(0, pos - M.window + 1) : 0;
    const int t0 = lo + c * A.chunk, t1 = min(pos + 1, t0 + A.chunk), n = max(0, t1 - t0);
    uint8_t *ring = (uint8_t *)sm;                      /* [slots] K or V tiles */
    uint4 *qf = (uint4 *)(sm + CU_ATTN_RING_BYTES / 4); /* [hd / 16][32] queries' fragments */
    float *qs = sm + CU_ATTN_RING_BYTES / 4 + 8 * hd;   /* [GQ][hd] scaled queries */
    float *sc = qs + GQ * hd;                           /* [GQ][chunk] scores, then probabilities */
    float *red = sm; /* [PG][GQ][hd] PV partial sums, after the ring */
    /* tensor cores for the scores and PV: f16 tiles whose rows are whole
     * 16-dim steps, and one of 8 warps (the fewest NTH has) for each 16
     * dims of the PV output */
    const bool mma = KV == CU_KV_F16 && M.attn_mma != 0 && hd % 16 == 0 && hd <= 128;

    /* the split's pages (at most chunk / 16 + 1) first, so that no copy
     * waits on a page-table load of its own */
    const int pg0 = t0 / ZT_KV_PAGE_CU, n_pg = n > 0 ? (t1 - 1) / ZT_KV_PAGE_CU - pg0 + 1 : 0;
    for (int e = tid; e < n_pg; e += nth) s_pt[e] = pt[pg0 + e];
    ready();
    cta_sync<NTH>();

    /* The ring: tile q < nK holds K of positions t0 + q TP .. (TP of them),
     * tile nK + q the same positions' V. Thread tid copies piece c_sub of
     * positions c_tl, c_tl + c_step, ... of a tile (8 values: 16 bytes of
     * f16, 8 of int8, and an int8 cache's scales), with cp.async; the
     * mapping is fixed per thread, so a copy costs no division. */
    const int nsub = hd / 8, TP = cu_attn_tile_len(hd, KV), nK = (n + TP - 1) / TP, nT = 2 * nK;
    const size_t scale_at = ((size_t)TP * hd * 2 + 15) & ~(size_t)15; /* int8: scales' bytes */
    const int c_step = nth / nsub, c_tl = tid < c_step * nsub ? tid / nsub : TP, c_sub = tid % nsub;
    auto slot_of = [&](int q) { return ring + (q % CU_ATTN_RING_SLOTS) * CU_ATTN_SLOT_BYTES; };
    /* position t's scale index; its row's element offset is hd times it */
    auto at_of = [&](int t) {
        return kv_scale_offset(M, layer, s_pt[t / ZT_KV_PAGE_CU - pg0], kvh, t % ZT_KV_PAGE_CU);
    };
    auto issue = [&](int q) {
        if (q < nT) {
            const bool is_v = q >= nK;
            const int ts = t0 + (is_v ? q - nK : q) * TP, tn = min(TP, t1 - ts);
            const uint8_t *cache = is_v ? M.vc : M.kc;
            uint8_t *dst = slot_of(q);
            /* the tensor cores read whole 16-position blocks: the rows past
             * the split are zeros (a stale NaN times a zero probability
             * would still be NaN) */
            const int fill = mma ? min(TP, (tn + 15) & ~15) : tn;
            for (int tl = c_tl; tl < fill; tl += c_step) {
                const int e = tl * nsub + c_sub;
                if constexpr (KV == CU_KV_F16) {
                    if (tl < tn)
                        cp_async16(dst + (size_t)e * 16,
                                   cache + (at_of(ts + tl) * hd + c_sub * 8) * 2);
                    else
                        cp_async16(dst + (size_t)e * 16, cache, 0);
                } else {
                    cp_async_small<8>(dst + (size_t)e * 8, cache + at_of(ts + tl) * hd + c_sub * 8);
                }
            }
            if constexpr (KV == CU_KV_Q8) {
                const float *scales = is_v ? M.vs : M.ks;
                for (int e = tid; e < tn; e += nth)
                    cp_async_small<4>(dst + scale_at + (size_t)e * 4, scales + at_of(ts + e));
            }
        }
        cp_async_commit(); /* an empty group past the end keeps the count uniform */
    };
    /* 8 values of position tl of a tile, piece sub */
    auto tile8 = [&](const uint8_t *src, int tl, int sub, float v[8]) {
        if constexpr (KV == CU_KV_F16)
            kv_unpack8(*(const uint4 *)(src + ((size_t)tl * hd + sub * 8) * 2), v);
        else
            kv_unpack8(*(const uint2 *)(src + (size_t)tl * hd + sub * 8),
                       ((const float *)(src + scale_at))[tl], v);
    };
    /* tile q has landed (every thread's copies) once this returns */
    auto next = [&](int q) {
        issue(q + CU_ATTN_RING_SLOTS - 1);
        cp_async_wait<CU_ATTN_RING_SLOTS - 1>();
        cta_sync<NTH>();
    };

    /* the first tiles (K, and V when the split is short) travel with the
     * queries: one round trip before any arithmetic */
    for (int q = 0; q < CU_ATTN_RING_SLOTS - 1; q++) issue(q);
    auto q_at = [&](int e) { /* scaled query element e of the group */
                             const size_t qi = (size_t)r * A.q_ld + (size_t)h0 * hd + e;
                             return (A.q32 ? __ldcg(A.q32 + qi) : __half2float(A.q16[qi])) *
                                    M.attn_scale;
    };
    if (mma) /* thread e: lane e % 32's B fragments of step e / 32 */
        for (int e = tid; e < hd / 16 * 32; e += nth) {
            const int g = (e % 32) / 4, d = e / 32 * 16 + 2 * (e % 4);
            float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            if (g < GQ)
                x[0] = q_at(g * hd + d), x[1] = q_at(g * hd + d + 1), x[2] = q_at(g * hd + d + 8),
                x[3] = q_at(g * hd + d + 9);
            qf[e] = frag_hilo(x);
        }
    else
        for (int e = tid; e < GQ * hd; e += nth) qs[e] = q_at(e);
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 3);

    /* scores: LP lanes per position (8 dims a lane), ppw positions per
     * warp, SP positions a lane per pass so that their loads, FMA chains
     * and shuffles interleave (the item is bound by instruction latency,
     * 3 warps a scheduler: ncu, bench/results/2026-11-27-cuda-h100-2.md) */
    constexpr int SP = 3;
    const int LP = nsub <= 8 ? 8 : nsub <= 16 ? 16 : 32, ppw = 32 / LP;
    const int li = lane % LP, pi = lane / LP, tstride = nwarp * ppw;
    for (int q = 0; q < nK; q++) {
        next(q);
        const uint8_t *src = slot_of(q);
        const int ts = t0 + q * TP, tn = min(TP, t1 - ts);
        if (mma)
            scores_mma((const __half *)src, qf, hd, tn, GQ, sc + (ts - t0), A.chunk, warp, nwarp,
                       lane);
        else
            for (int tb = warp * ppw; tb < tn; tb += SP * tstride) {
                /* tb, the warp's first position, is uniform over it (the shuffles) */
                float k[SP][8];
#pragma unroll
                for (int u = 0; u < SP; u++) {
                    const int tl = tb + pi + u * tstride;
                    if (tl < tn && li < nsub)
                        tile8(src, tl, li, k[u]);
                    else
#pragma unroll
                        for (int e = 0; e < 8; e++) k[u][e] = 0.0f;
                }
                for (int g = 0; g < GQ; g++) {
                    const float4 *qv = (const float4 *)(qs + g * hd + (li < nsub ? li : 0) * 8);
                    const float4 a = qv[0], b = qv[1];
                    float sg[SP];
#pragma unroll
                    for (int u = 0; u < SP; u++) /* two chains of four */
                        sg[u] = (k[u][0] * a.x + k[u][1] * a.y + k[u][2] * a.z + k[u][3] * a.w) +
                                (k[u][4] * b.x + k[u][5] * b.y + k[u][6] * b.z + k[u][7] * b.w);
#pragma unroll
                    for (int o = 16; o > 0; o >>= 1)
                        if (o < LP)
#pragma unroll
                            for (int u = 0; u < SP; u++)
                                sg[u] += __shfl_xor_sync(0xffffffffu, sg[u], o);
#pragma unroll
                    for (int u = 0; u < SP; u++) {
                        const int tl = tb + pi + u * tstride;
                        if (li == 0 && tl < tn) sc[g * A.chunk + (ts - t0 + tl)] = sg[u];
                    }
                }
            }
        cta_sync<NTH>(); /* slot q is refilled by the next tile's issue */
    }

    /* softmax within the split, nwarp / GQ warps a head (every score is in sc) */
    {
        __shared__ float s_red[32];
        const int wph = max(1, nwarp / GQ), g = warp / wph, wi = warp % wph;
        const bool on = g < GQ;
        float mx = -INFINITY;
        if (on)
            for (int t = wi * 32 + lane; t < n; t += wph * 32) mx = fmaxf(mx, sc[g * A.chunk + t]);
        mx = warp_max(mx);
        if (lane == 0) s_red[warp] = mx;
        cta_sync<NTH>();
        if (on)
            for (int w = 0; w < wph; w++) mx = fmaxf(mx, s_red[g * wph + w]);
        cta_sync<NTH>(); /* s_red is reused for the sums */
        float sum = 0.0f;
        if (on)
            for (int t = wi * 32 + lane; t < n; t += wph * 32) {
                float p = expf(sc[g * A.chunk + t] - mx);
                sc[g * A.chunk + t] = p;
                sum += p;
            }
        sum = warp_sum(sum);
        if (lane == 0) s_red[warp] = sum;
        cta_sync<NTH>();
        if (on && wi == 0 && lane == 0) {
            float l = 0.0f;
            for (int w = 0; w < wph; w++) l += s_red[g * wph + w]; /* fixed order */
            s_m[g] = mx, s_l[g] = l;
        }
        cta_sync<NTH>();
        tl_mark(M, layer, CU_PH_ATTN_SLOT, 4);
    }

    /* PV: thread (pg, dc) sums a tile's positions pg, pg + PG, ... for 8
     * dims dc (SP of them loaded before their FMAs); PG groups of 256 /
     * nsub threads whatever NTH is, so that the sum order, and the logits,
     * do not depend on the caller; on tensor cores, warp (mb, kg) as
     * pv_mma says, PG = KG groups of a tile's 16-position steps, KG = 8 /
     * MB whatever NTH is (1 at hd 96 and 128, 2 at 64) */
    const int MB = hd / 16, KG = mma ? 8 / MB : 0, mb = warp % max(MB, 1), kg = warp / max(MB, 1);
    int PG = mma ? KG : 256 / nsub;
    if (!mma && PG * GQ * hd > CU_ATTN_RED_FLOATS) PG = CU_ATTN_RED_FLOATS / (GQ * hd);
    const int pg = tid / nsub, dc = tid % nsub;
    float o[CU_ATTN_GQ_MAX][8]; /* o[0]: pv_mma's accumulators */
#pragma unroll
    for (int g = 0; g < CU_ATTN_GQ_MAX; g++)
#pragma unroll
        for (int e = 0; e < 8; e++) o[g][e] = 0.0f;
    for (int q = nK; q < nT; q++) {
        next(q);
        const uint8_t *src = slot_of(q);
        const int ts = t0 + (q - nK) * TP, tn = min(TP, t1 - ts);
        if (mma) {
            if (kg < KG)
                pv_mma(o[0], (const __half *)src, sc + (ts - t0), A.chunk, hd, tn, GQ, mb, kg, KG,
                       lane);
        } else
            for (int tb = pg; pg < PG && tb < tn; tb += SP * PG) {
                float v[SP][8];
#pragma unroll
                for (int u = 0; u < SP; u++) {
                    if (tb + u * PG < tn)
                        tile8(src, tb + u * PG, dc, v[u]);
                    else
#pragma unroll
                        for (int e = 0; e < 8; e++) v[u][e] = 0.0f;
                }
#pragma unroll
                for (int u = 0; u < SP; u++)
#pragma unroll
                    for (int g = 0; g < CU_ATTN_GQ_MAX; g++)
                        if (g < GQ) {
                            const int tl = tb + u * PG;
                            const float pr = tl < tn ? sc[g * A.chunk + (ts - t0 + tl)] : 0.0f;
#pragma unroll
                            for (int e = 0; e < 8; e++) o[g][e] += pr * v[u][e];
                        }
            }
        cta_sync<NTH>(); /* slot q is refilled by the next tile's issue */
    }
    cp_async_wait_all(); /* the empty groups */
    if (mma) {
        if (kg < KG)
#pragma unroll
            for (int e = 0; e < 4; e++) { /* (dim 16 mb + g (+8), head 2 (lane % 4) (+1)) */
                const int h = 2 * (lane & 3) + (e & 1), d = mb * 16 + (lane >> 2) + (e >> 1) * 8;
                if (h < GQ) red[((size_t)kg * GQ + h) * hd + d] = o[0][e] + o[0][4 + e];
            }
    } else if (pg < PG)
#pragma unroll
        for (int g = 0; g < CU_ATTN_GQ_MAX; g++)
            if (g < GQ)
#pragma unroll
                for (int e = 0; e < 8; e++) red[((size_t)pg * GQ + g) * hd + dc * 8 + e] = o[g][e];
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 5);
    attn_finish<NTH>(M, A, i, hg, c, r, red, PG, s_m, s_l);
}

#endif
