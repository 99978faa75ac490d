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
 *   loads:  then the queries, the first 4 positions of K per score lane
 *           and of V per PV thread in one round trip (V does not depend
 *           on the scores);
 *   scores: LP lanes per position (LP = hd/8 rounded up to a power of 2),
 *           a 16-byte K load per lane, 4 positions' loads in flight per
 *           lane before the arithmetic, shuffles within the LP lanes;
 *   softmax: a warp per head over the split's positions (smem);
 *   PV:     thread (pg, dc) sums positions pg, pg + PG, ... for 8 dims dc
 *           (4 positions' loads in flight), then a fixed-order sum over pg
 *           (deterministic);
 *   merge:  partial (o unnormalized, max, sum) per split; an atomic
 *           counter per (row, head group) elects the last block, which
 *           combines the splits and writes the row's output.
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
#define CU_ATTN_RED_FLOATS 8192 /* PV reduction scratch */
#define CU_PH_ATTN_SLOT    2    /* == CU_PH_ATTN (kernels.h), the timeline's slot */

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
};

/* Shared floats an item needs. */
__host__ __device__ __forceinline__ size_t cu_attn_smem_floats(int gq, int hd, int chunk) {
    return (size_t)gq * hd + (size_t)gq * chunk + CU_ATTN_RED_FLOATS + 2 * CU_ATTN_GQ_MAX;
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

/* 8 cache values starting at element offset `off` (a multiple of 8). */
template <int KV>
__device__ __forceinline__ void kv_load8(const uint8_t *cache, const float *scales, size_t off,
                                         size_t soff, float v[8]) {
    if constexpr (KV == CU_KV_F16) {
        uint4 w = __ldcg((const uint4 *)(cache + off * 2));
        const uint32_t a[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&a[i]));
            v[2 * i] = f.x, v[2 * i + 1] = f.y;
        }
    } else {
        uint2 w = __ldcg((const uint2 *)(cache + off));
        float s = __ldcg(scales + soff);
        const uint32_t a[2] = {w.x, w.y};
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = s * (float)(int8_t)(a[i / 4] >> (8 * (i % 4)));
    }
}

struct attn_no_wait {
    __device__ void operator()() const {}
};

/* NTH: the threads that run the item (the block, or the stream kernel's
 * consumers; thread ids 0 .. NTH-1). ready(): called once the item's page
 * walk is done and before anything the previous kernel wrote is read (the
 * decode step waits on it there: the walk reads only the host's step). */
template <int KV, int NTH, class Ready = attn_no_wait>
__device__ __forceinline__ void attn_item(const cu_model &M, const cu_step &st, int layer,
                                          const attn_args &A, int i, int hg, int c, float *sm,
                                          Ready ready = Ready()) {
    __shared__ float s_m[CU_ATTN_GQ_MAX], s_l[CU_ATTN_GQ_MAX];
    __shared__ int s_last, s_pt[CU_ATTN_CHUNK_MAX / ZT_KV_PAGE_CU + 1];
    constexpr int AU = 4; /* positions a lane loads per trip */
    const int tid = threadIdx.x, nth = NTH, lane = tid & 31, warp = tid >> 5;
    const int nwarp = nth >> 5, hd = M.hd, GQ = M.gq, h0 = hg * GQ;
    const int kvh = h0 / (M.n_heads / M.n_kv), n_hg = M.n_heads / GQ;
    const int r = A.rows ? A.rows[i] : i;
    const int pos = st.pos[r];
    const int *pt = st.pt + (size_t)st.cseq[r] * st.pt_stride;
    const int lo = M.window > 0 ? max(0, pos - M.window + 1) : 0;
    const int t0 = lo + c * A.chunk, t1 = min(pos + 1, t0 + A.chunk), n = max(0, t1 - t0);
    float *qs = sm;                 /* [GQ][hd] scaled queries */
    float *sc = qs + GQ * hd;       /* [GQ][chunk] scores, then probabilities */
    float *red = sc + GQ * A.chunk; /* [PG][GQ][hd] PV partial sums */

    /* the split's pages (at most chunk / 16 + 1) first, so that no K or V
     * load waits on a page-table load of its own */
    const int pg0 = t0 / ZT_KV_PAGE_CU, n_pg = n > 0 ? (t1 - 1) / ZT_KV_PAGE_CU - pg0 + 1 : 0;
    for (int e = tid; e < n_pg; e += nth) s_pt[e] = pt[pg0 + e];
    ready();
    cta_sync<NTH>();

    /* then one round trip for the queries, the first trip of K (scores) and
     * the first trip of V (PV) together: V does not depend on the scores */
    const int nsub = hd / 8, LP = nsub <= 8 ? 8 : nsub <= 16 ? 16 : 32, ppw = 32 / LP;
    const int li = lane % LP, pi = lane / LP, tstride = nwarp * ppw;
    /* PV's mapping: PG position groups of 256 / nsub threads whatever NTH
     * is (>= 256), so that the sum order, and the logits, do not depend on
     * the caller */
    int PG = 256 / nsub;
    if (PG * GQ * hd > CU_ATTN_RED_FLOATS) PG = CU_ATTN_RED_FLOATS / (GQ * hd);
    const int pg = tid / nsub, dc = tid % nsub;
    float k[AU][8], v[AU][8];
    /* AU positions' K (V) rows of one lane, from position tb on, stride ts */
    auto load_kv = [&](const uint8_t *cache, const float *scales, float(&x)[AU][8], int tb, int ts,
                       int sub) {
#pragma unroll
        for (int u = 0; u < AU; u++) {
            const int t = tb + u * ts;
            if (t < t1) {
                int page = s_pt[t / ZT_KV_PAGE_CU - pg0], slot = t % ZT_KV_PAGE_CU;
                kv_load8<KV>(cache, scales, kv_offset(M, layer, page, kvh, slot) + sub * 8,
                             kv_scale_offset(M, layer, page, kvh, slot), x[u]);
            }
        }
    };
    int tb = t0 + warp * ppw + pi;
    if (li < nsub) load_kv(M.kc, M.ks, k, tb, tstride, li);
    if (pg < PG && pg < nth / nsub) load_kv(M.vc, M.vs, v, t0 + pg, PG, dc);
    for (int e = tid; e < GQ * hd; e += nth) {
        size_t qi = (size_t)r * A.q_ld + (size_t)h0 * hd + e;
        qs[e] = (A.q32 ? __ldcg(A.q32 + qi) : __half2float(A.q16[qi])) * M.attn_scale;
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 3);

    /* scores: AU positions per lane group per trip, their K loads issued
     * before any arithmetic (one memory round trip per trip; the first
     * trip's came with the queries) */
    for (bool first = true; tb - pi < t1; tb += AU * tstride, first = false) {
        if (!first && li < nsub) load_kv(M.kc, M.ks, k, tb, tstride, li);
#pragma unroll
        for (int u = 0; u < AU; u++) {
            const int t = tb + u * tstride;
            float s[CU_ATTN_GQ_MAX];
#pragma unroll
            for (int g = 0; g < CU_ATTN_GQ_MAX; g++) s[g] = 0.0f;
            if (t < t1 && li < nsub) {
#pragma unroll
                for (int g = 0; g < CU_ATTN_GQ_MAX; g++) {
                    if (g < GQ) {
                        const float4 *qv = (const float4 *)(qs + g * hd + li * 8);
                        float4 a = qv[0], b = qv[1];
                        s[g] = k[u][0] * a.x + k[u][1] * a.y + k[u][2] * a.z + k[u][3] * a.w +
                               k[u][4] * b.x + k[u][5] * b.y + k[u][6] * b.z + k[u][7] * b.w;
                    }
                }
            }
#pragma unroll
            for (int g = 0; g < CU_ATTN_GQ_MAX; g++) {
                if (g < GQ) {
                    for (int o = LP / 2; o > 0; o >>= 1)
                        s[g] += __shfl_xor_sync(0xffffffffu, s[g], o);
                    if (li == 0 && t < t1) sc[g * A.chunk + (t - t0)] = s[g];
                }
            }
        }
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 4);

    /* softmax within the split */
    for (int g = warp; g < GQ; g += nwarp) {
        float mx = -INFINITY;
        for (int t = lane; t < n; t += 32) mx = fmaxf(mx, sc[g * A.chunk + t]);
        mx = warp_max(mx);
        float sum = 0.0f;
        for (int t = lane; t < n; t += 32) {
            float p = expf(sc[g * A.chunk + t] - mx);
            sc[g * A.chunk + t] = p;
            sum += p;
        }
        sum = warp_sum(sum);
        if (lane == 0) s_m[g] = mx, s_l[g] = sum;
    }
    cta_sync<NTH>();

    /* PV: thread (pg, dc) over positions pg, pg + PG, ... (the first trip's
     * V rows are already in registers); with fewer than PG x nsub threads a
     * thread takes groups pg, pg + ng, ... */
    const int ng = nth / nsub; /* groups the threads cover at once */
    for (int pgx = pg; pgx < PG && pg < ng; pgx += ng) {
        float o[CU_ATTN_GQ_MAX][8];
#pragma unroll
        for (int g = 0; g < CU_ATTN_GQ_MAX; g++)
#pragma unroll
            for (int e = 0; e < 8; e++) o[g][e] = 0.0f;
        for (int tv = t0 + pgx; tv < t1; tv += AU * PG) {
            if (pgx != pg || tv != t0 + pg) load_kv(M.vc, M.vs, v, tv, PG, dc);
#pragma unroll
            for (int u = 0; u < AU; u++) {
                const int t = tv + u * PG;
                if (t >= t1) break;
#pragma unroll
                for (int g = 0; g < CU_ATTN_GQ_MAX; g++) {
                    if (g < GQ) {
                        float p = sc[g * A.chunk + (t - t0)];
#pragma unroll
                        for (int e = 0; e < 8; e++) o[g][e] += p * v[u][e];
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < CU_ATTN_GQ_MAX; g++)
            if (g < GQ)
#pragma unroll
                for (int e = 0; e < 8; e++) red[((size_t)pgx * GQ + g) * hd + dc * 8 + e] = o[g][e];
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 5);
    if (A.n_splits == 1) { /* one split: normalize and store, no partials to merge */
        for (int e = tid; e < GQ * hd; e += nth) {
            int g = e / hd, d = e % hd;
            float acc = 0.0f;
            for (int p = 0; p < PG; p++) acc += red[((size_t)p * GQ + g) * hd + d];
            float l = s_l[g], out = l > 0.0f ? acc / l : 0.0f;
            size_t oi = (size_t)r * A.out_ld + (size_t)(h0 + g) * hd + d;
            if (A.out32)
                A.out32[oi] = out;
            else
                A.out16[oi] = __float2half(out);
        }
        cta_sync<NTH>(); /* the next item reuses the shared scratch */
        return;
    }
    const size_t part = ((size_t)i * M.n_heads + h0) * A.n_splits + c; /* head h0, split c */
    for (int e = tid; e < GQ * hd; e += nth) {
        int g = e / hd, d = e % hd;
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
        for (int e = tid; e < GQ * hd; e += nth) {
            int g = e / hd, d = e % hd, h = h0 + g;
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

#endif
