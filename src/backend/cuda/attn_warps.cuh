/*
 * Role attention, decode form, warp-parallel (tune.attn_mma = 2; f16
 * cache, head_dim 32, 64, 96 or 128): attention.cuh's item without its ring
 * and its block barriers.
 *
 * Why. With the scores and PV on tensor cores, the ring item at depth
 * 2048 is bound by its rounds, not by arithmetic or bytes in flight: each
 * 12 KB tile is a cp.async wait, a block barrier, a short compute and a
 * barrier (ncu: 30% of a warp's time at barriers; a 96 KB ring with 7
 * tiles in flight lost 1%; bench/results/2026-11-28-cuda-h100-3.md).
 * Here every warp streams its own keys straight into registers and keeps
 * its own online softmax, flash-decoding style inside the block; the
 * warps meet once, at the end.
 *
 * Mapping: the split's positions in 16-position chunks; key group w (one
 * of CU_ATTN_KW warps, whatever NTH is, so that the sums' order and the
 * logits do not depend on the caller) takes chunks w, w + KW, ... A chunk
 * is two m16n8k16 HMMA tiles per step:
 *
 *   S^T = Q K^T: A = the group's queries (rows = heads g < GQ, rows g + 8
 *         zero), B = K (n = the chunk's 8 positions a tile). The k index
 *         is a permutation of the dims that keeps each lane's loads
 *         contiguous: lane (g, t) = (lane / 4, lane % 4) loads position
 *         g's dims [D t, D t + D) (D = hd / 4, 16-byte words), and k-step
 *         s's columns 2t, 2t+1 | 2t+8, 2t+9 are dims D t + 4s + 0, 1 | 2, 3,
 *         for the queries (A) as for the keys (B).
 *   softmax: S^T's accumulator holds, per lane, head g at positions 2t,
 *         2t + 1 (tile 0) and 8 + 2t, 9 + 2t (tile 1): exactly the A
 *         layout of one k16 step over the chunk's positions, so P stays in
 *         registers; the running max and sum per head (rows) need
 *         shuffles over the 4 lanes of a row only.
 *   O^T += V^T P: A = V^T (m = 16 dims a tile, k = the chunk's
 *         positions), B = P (n = heads), whose fragment is that same
 *         accumulator layout again (lane (g, t): head g at positions 2t,
 *         2t+1 | 2t+8, 2t+9). Lane (g, t) loads positions 2t, 2t+1, 2t+8,
 *         2t+9 at two runs of NS = hd / 16 dims, [NS g, NS g + NS) and
 *         [NS (g + 8), ...) (4-byte words), so m-tile mt's rows g, g + 8
 *         are dims NS g + mt, NS (g + 8) + mt; the accumulator's columns
 *         are heads 2t, 2t + 1, each rescaled by its head's running max
 *         (two shuffles a chunk).
 *
 * Queries and probabilities as f16 hi + lo parts (two HMMAs each, as the
 * ring item's). Then each group's (max, sum, o) through shared memory, a
 * fixed-order merge, and attention.cuh's attn_finish (store, or the
 * split's partials).
 *
 * Bytes: the K and V rows of the split once, from global memory straight
 * to registers (6 KB a chunk at hd 96, up to KW chunks in flight an SM).
 * One instantiation a head size (NS = hd / 16), so that hd 128's 8
 * m-tiles (~24 more registers a thread than hd 96's) cost nothing to the
 * others' code; the phase attention kernel takes 158 registers with all
 * four (154 with three), no spills.
 *
 * Measured (H200, Phi-3-mini, against the ring item with the same tensor
 * cores, interleaved in one process; bench/results/2026-11-28-cuda-h200.md):
 * decode after 8 positions +5.3% Q4_0, +7% Q4_K_M (fused with wo); after
 * 512 +4.5%, after 2048 +11.6% / +9.5%. Tried beside it and dropped:
 * each key group's first chunk loaded before the wait on QKV (the
 * positions earlier steps wrote): -3 to -4% at depth and in the fused
 * kernel, +0.9% after 8 positions (against the neighbouring calls); and
 * each key group's chunk prefetched into L2 one or two rounds ahead: -2.5
 * to -3% after 2,048 positions. This form (an instantiation a head size,
 * the static scratch shared with the ring item's) against the one loop
 * sized for hd 96 it replaced: Q4_0 +1.2 / +1.9 / +2.2% after 160 / 512 /
 * 2,048 positions, Q4_K_M +0.7 / +1.2 / +2.1%, even after 8
 * (2026-11-28-cuda-h200-2.md).
 *
 * The ring form (STAGES > 0; decode.cu's kernel of its own, steps where a
 * row sees 256 positions or more, or the rows tune.ring_keys together):
 * each warp copies its chunks' K and V rows into a ring of its own in
 * shared memory, two chunks ahead (one at hd 128, where two would leave
 * one block an SM), and reads each into the same registers the loads
 * above fill, so the results are the same bit for bit. Measured (its
 * copies then by cp.async) against the register form (H200, Phi-3-mini,
 * one process; bench/results/2026-11-29-cuda-h200.md): after 2,048
 * positions Q4_0 +2.8-3.4%, F16 +6.3-6.7%, Q4_K_M even; 8 sequences after
 * 512 +2.0%. Not as predicted: the timeline puts the key loop itself
 * 0.8 us slower (9.0 -> 9.8 us a layer) and the gain in the weight phases
 * after it (F16 qkv 25.9 -> 22.3 us, gate|up 31.4 -> 29.8, down 19.4 ->
 * 18.2), whose blocks start earlier in their predecessors' tails: the
 * ring's kernel (its footprint: the register form asking the same shared
 * memory did the same) has its blocks end more spread out (Q4_0: wo's
 * first block starts 11.5-13.3 us before the attention's last block ends,
 * against 7.9-10.7), and each launch after it inherits the spread through
 * programmatic dependent launch (without it for wo the gain goes). The
 * record's calls 8-11.
 *
 * The ring's copies: one bulk copy (TMA) a K or V row, completing on the
 * stage's mbarrier, evict-first in L2 (tune.kv_evict): read once a step,
 * the cache should not push out of L2 what the phases after the attention
 * reread (at 2,048 positions a layer's K/V is ~25 MB, half the L2). Those
 * phases got their position-64 times back (Q4_K_M qkv 15.8 -> 12.4 us a
 * layer, down 12.1 -> 9.9); the steps, against the same copies at the
 * default policy: after 2,048 positions Q4_0 +4.7%, F16 +6.9%, Q4_K_M
 * +11.6%; 8 sequences after 512 +18.7% / +24.1% (Q4_0 / Q4_K_M;
 * bench/results/2026-11-29-cuda-h200-3.md). Why bulk copies: the
 * same policy on the cp.async copies (LDGSTS) this ring had built to an
 * illegal instruction at head size 64 (ptxas 13 put the policy's
 * descriptor in an odd uniform register; 2026-11-29-cuda-h200-2.md
 * section 5); at the default policy the two kinds of copy time the same.
 */
#ifndef ZT_BACKEND_CUDA_ATTN_WARPS_CUH
#define ZT_BACKEND_CUDA_ATTN_WARPS_CUH

#ifndef ZT_BACKEND_CUDA_ATTENTION_CUH /* its middle: after attn_finish, before attn_item */
#error "attn_warps.cuh is part of attention.cuh: include that"
#endif

#define CU_ATTN_NS_MAX 8 /* k-steps of 16 dims: head_dim up to 128 */
/* the item's scratch (each group's o, the merged o, the groups' max and
 * sum, the queries' fragments) fits where the ring item keeps its ring */
static_assert((CU_ATTN_KW + 1) * CU_ATTN_GQ_MAX * 16 * CU_ATTN_NS_MAX +
                      2 * CU_ATTN_KW * CU_ATTN_GQ_MAX + CU_ATTN_NS_MAX * 32 * 4 <=
                  CU_ATTN_RING_BYTES / 4,
              "attn_item_warps' scratch in the attention's shared memory");

/* Bytes of that scratch for gq heads of hd dims (a kernel that runs only
 * this form needs no more shared memory than this). */
__host__ __device__ __forceinline__ size_t cu_attn_warps_smem_bytes(int gq, int hd) {
    return ((size_t)(CU_ATTN_KW + 1) * gq * hd + 2 * CU_ATTN_KW * CU_ATTN_GQ_MAX) * 4 +
           (size_t)(hd / 16) * 32 * 16;
}

/* The per-warp K/V ring (STAGES > 0; decode.cu's cu_attn_decode_kernel
 * with tune.attn_decode = 2): a stage is one chunk, its 16 K rows of hd
 * halfs, then its 16 V rows padded by 16 bytes. Why the pad: lane (g, t)
 * reads V at rows 2t, 2t+1, 2t+8, 2t+9 and words NS g; at hd 96 an
 * unpadded row (48 words) puts the four t of a g in one bank, a padded one
 * (52) spreads the warp over all 32; the K reads (rows g, 16-byte words
 * 3t at hd 96) are conflict-free unpadded. */
__host__ __device__ constexpr int cu_ring_k_stride(int hd) { return 2 * hd; }
__host__ __device__ constexpr int cu_ring_v_stride(int hd) { return 2 * hd + 16; }
__host__ __device__ constexpr int cu_ring_stage_bytes(int hd) {
    return 16 * (cu_ring_k_stride(hd) + cu_ring_v_stride(hd));
}
/* Stages a head size's ring holds: two, except at hd 128, where two (17 KB
 * a warp) would leave one block an SM. */
__host__ __device__ constexpr int cu_ring_stages(int ns) { return ns >= 8 ? 1 : 2; }
__host__ __device__ inline size_t cu_attn_ring_bytes(int hd) {
    return (size_t)CU_ATTN_KW * cu_ring_stages(hd / 16) * cu_ring_stage_bytes(hd);
}

/* The decode attention kernel's per-warp K/V rings (STAGES > 0): the
 * bytes (cu_attn_ring_bytes), a barrier per warp and stage on which the
 * stage's bulk copies complete, and the chunks each warp has taken through
 * its ring so far in this block (the barriers' phases run on across the
 * block's items). */
struct cu_kv_ring {
    uint8_t *bytes;
    uint64_t *full; /* [CU_ATTN_KW][STAGES] */
    unsigned *used; /* [CU_ATTN_KW] */
};

/* (half j % 2 of lo_word, half j % 2 of hi_word): one f16 pair of an
 * HMMA fragment from two rows' words */
__device__ __forceinline__ uint32_t pair_of(uint32_t lo_word, uint32_t hi_word, int j) {
    return __byte_perm(lo_word, hi_word, (j & 1) ? 0x7632 : 0x5410);
}

/* NS: head_dim / 16, a template argument so that every fragment array has
 * its exact size (hd 128's 8 m-tiles would not fit the registers of a
 * loop sized for the largest). STAGES: 0, each chunk's K/V loaded from
 * global memory into registers; else the warp's chunks through its ring
 * of that many stages at ring (cu_attn_ring_bytes), the next ones in
 * flight while it computes one. Same values in the same registers either
 * way, so the results are bit for bit the same. */
template <int NS, int NTH, int STAGES = 0, class Ready>
__device__ __forceinline__ void attn_item_warps(const cu_model &M, const cu_step &st, int layer,
                                                const attn_args &A, int i, int hg, int c, float *sm,
                                                Ready ready, cu_kv_ring R = {}) {
    static_assert(NTH >= CU_ATTN_KW * 32, "one warp a key group");
    float *s_m = s_attn.m, *s_l = s_attn.l;
    int *s_pt = s_attn.pt;
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int hd = M.hd, GQ = M.gq, h0 = hg * GQ, kvh = h0 / (M.n_heads / M.n_kv);
    int r, pos;
    const int *pt;
    attn_row(st, A, i, r, pos, pt);
    const int lo = M.window > 0 ? max(0, pos - M.window + 1) : 0;
    const int t0 = lo + c * A.chunk, t1 = min(pos + 1, t0 + A.chunk), n = max(0, t1 - t0);
    const int pg0 = t0 / ZT_KV_PAGE_CU, n_pg = n > 0 ? (t1 - 1) / ZT_KV_PAGE_CU - pg0 + 1 : 0;
    CU_COLD_LOOP
    for (int e = tid; e < n_pg; e += NTH) s_pt[e] = pt[pg0 + e];
    ready();

    static_assert(NS >= 2 && NS <= CU_ATTN_NS_MAX && NS % 2 == 0, "head_dim 32, 64, 96 or 128");
    const int g = lane >> 2, t = lane & 3;
    constexpr int D = 4 * NS;               /* dims a lane's K run holds: hd / 4 */
    float *wo = sm;                         /* [KW][GQ][hd] each group's o */
    float *red = wo + CU_ATTN_KW * GQ * hd; /* [GQ][hd] the merged o */
    float *wm = red + GQ * hd, *wl = wm + CU_ATTN_KW * CU_ATTN_GQ_MAX; /* [KW][8] */
    uint4 *qa = (uint4 *)(wl + CU_ATTN_KW * CU_ATTN_GQ_MAX);           /* [NS][32] */
    /* the queries' A fragments, shared by the key groups: lane (g, t)'s
     * rows g < GQ at k-step s = dims D t + 4s .. +3, hi and lo */
    CU_COLD_LOOP
    for (int e = tid; e < NS * 32; e += NTH) {
        const int eg = (e % 32) >> 2, et = e & 3, s = e / 32;
        float x[4] = {0.0f, 0.0f, 0.0f, 0.0f};
        if (eg < GQ) {
            const size_t qi = (size_t)r * A.q_ld + (size_t)(h0 + eg) * hd + D * et + 4 * s;
#pragma unroll
            for (int k = 0; k < 4; k++)
                x[k] =
                    (A.q32 ? __ldcg(A.q32 + qi + k) : __half2float(A.q16[qi + k])) * M.attn_scale;
        }
        qa[e] = frag_hilo(x);
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 3);
    float mrun = -INFINITY, lrun = 0.0f;
    float o[NS][4]; /* O^T's m-tiles of 16 dims */
#pragma unroll
    for (int j = 0; j < NS; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) o[j][e] = 0.0f;

    if (warp < CU_ATTN_KW) {
        /* element offset of position p's row in the cache (p in the split) */
        auto row_of = [&](int p) {
            return kv_offset(M, layer, s_pt[p / ZT_KV_PAGE_CU - pg0], kvh, p % ZT_KV_PAGE_CU);
        };
        const int n_chunks = (n + 15) / 16;
        constexpr int KS = cu_ring_k_stride(16 * NS), VS = cu_ring_v_stride(16 * NS);
        uint8_t *wring = R.bytes + (size_t)warp * STAGES * cu_ring_stage_bytes(16 * NS);
        const unsigned used0 = STAGES > 0 ? R.used[warp] : 0;
        auto stage_of = [&](int k) { return (int)((used0 + k) % (STAGES > 0 ? STAGES : 1)); };
        const uint64_t pol = M.kv_evict ? evict_first_policy() : normal_policy();
        /* this warp's chunk k (chunk ch of the split) into its stage: one
         * bulk copy a lane, K rows from lanes 0-15, V rows from 16-31;
         * rows past the split copy the last row again (their scores are
         * masked, so its V meets probabilities of 0, as zeros would) */
        auto issue = [&](int ch, int k) {
            if (STAGES > 0 && ch < n_chunks) {
                const int s = stage_of(k);
                uint8_t *dst = wring + s * cu_ring_stage_bytes(16 * NS);
                uint64_t *bar = R.full + warp * STAGES + s;
                if (lane == 0) mbar_expect_tx(bar, 2 * 16 * 32 * NS);
                const int rr = lane & 15, p = min(t0 + ch * 16 + rr, t1 - 1);
                const bool v = lane >= 16;
                bulk_copy_policy(dst + (v ? 16 * KS + rr * VS : rr * KS),
                                 (v ? M.vc : M.kc) + row_of(p) * 2, 32 * NS, bar, pol);
            }
        };
#pragma unroll
        for (int s = 0; s < STAGES; s++) issue(warp + s * CU_ATTN_KW, s);
        for (int ch = warp, k = 0; ch < n_chunks; ch += CU_ATTN_KW, k++) {
            const int p0 = t0 + ch * 16;
            /* this lane's K words (positions p0 + 8 nt + g) and V words
             * (positions p0 + 2t, 2t+1, 2t+8, 2t+9, dims runs g and g + 8),
             * all loads in flight at once; past the split: zeros */
            uint4 kq[2][NS / 2];
            uint32_t vq[4][2][NS / 2];
            if constexpr (STAGES == 0) {
#pragma unroll
                for (int nt = 0; nt < 2; nt++) {
                    const int p = p0 + nt * 8 + g;
                    const uint4 *src = (const uint4 *)(M.kc + (row_of(min(p, t1 - 1)) + D * t) * 2);
#pragma unroll
                    for (int u = 0; u < D / 8; u++)
                        kq[nt][u] = p < t1 ? __ldcg(src + u) : make_uint4(0, 0, 0, 0);
                }
#pragma unroll
                for (int ri = 0; ri < 4; ri++) {
                    const int p = p0 + 2 * t + (ri & 1) + (ri >> 1) * 8;
                    const uint8_t *row = M.vc + row_of(min(p, t1 - 1)) * 2;
#pragma unroll
                    for (int run = 0; run < 2; run++) {
                        const uint32_t *src = (const uint32_t *)(row + NS * (g + 8 * run) * 2);
#pragma unroll
                        for (int u = 0; u < NS / 2; u++)
                            vq[ri][run][u] = p < t1 ? __ldcg(src + u) : 0u;
                    }
                }
            } else {
                /* chunk k of this warp has landed: its stage's barrier
                 * completed its phase for the (used0 + k) / STAGES-th time */
                mbar_wait(R.full + warp * STAGES + stage_of(k), (used0 + k) / STAGES & 1);
                const uint8_t *stage = wring + stage_of(k) * cu_ring_stage_bytes(16 * NS);
#pragma unroll
                for (int nt = 0; nt < 2; nt++)
#pragma unroll
                    for (int u = 0; u < D / 8; u++)
                        kq[nt][u] =
                            *(const uint4 *)(stage + (nt * 8 + g) * KS + D * t * 2 + u * 16);
#pragma unroll
                for (int ri = 0; ri < 4; ri++)
#pragma unroll
                    for (int run = 0; run < 2; run++)
#pragma unroll
                        for (int u = 0; u < NS / 2; u++)
                            vq[ri][run][u] =
                                *(const uint32_t *)(stage + 16 * KS +
                                                    (2 * t + (ri & 1) + (ri >> 1) * 8) * VS +
                                                    NS * (g + 8 * run) * 2 + u * 4);
            }
            /* S^T = Q K^T: two n-tiles (two chains), hi and lo queries */
            float sh[2][4] = {};
#pragma unroll
            for (int s = 0; s < NS; s++)
#pragma unroll
                for (int nt = 0; nt < 2; nt++) {
                    const uint4 w = kq[nt][s >> 1], q = qa[s * 32 + lane];
                    const uint32_t b0 = (s & 1) ? w.z : w.x, b1 = (s & 1) ? w.w : w.y;
                    const uint32_t ahi[4] = {q.x, 0u, q.y, 0u}, alo[4] = {q.z, 0u, q.w, 0u};
                    mma_16816(sh[nt], ahi, b0, b1);
                    mma_16816(sh[nt], alo, b0, b1);
                }
            /* head g's scores at positions 2t, 2t+1 (tile 0), 8+2t, 9+2t (tile 1) */
            float sc[4];
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int nt = e >> 1, p = p0 + nt * 8 + 2 * t + (e & 1);
                sc[e] = p < t1 ? sh[nt][e & 1] : -INFINITY;
            }
            float mx = fmaxf(fmaxf(sc[0], sc[1]), fmaxf(sc[2], sc[3]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float mnew = fmaxf(mrun, mx); /* finite: p0 < t1 */
            const float alpha = expf(mrun - mnew);
            float pr[4];
#pragma unroll
            for (int e = 0; e < 4; e++) pr[e] = expf(sc[e] - mnew);
            lrun = lrun * alpha + ((pr[0] + pr[1]) + (pr[2] + pr[3]));
            mrun = mnew;
            /* O^T = O^T diag(alpha) + V^T P: the columns are heads 2t, 2t+1,
             * whose alphas the lanes of rows 2t, 2t+1 hold */
            const float a0 = __shfl_sync(0xffffffffu, alpha, 8 * t),
                        a1 = __shfl_sync(0xffffffffu, alpha, 8 * t + 4);
            const uint4 pf = frag_hilo(pr); /* B: (hi, hi) then (lo, lo) */
#pragma unroll
            for (int mt = 0; mt < NS; mt++) {
                const int w = mt >> 1;
                const uint32_t a[4] = {
                    pair_of(vq[0][0][w], vq[1][0][w], mt), pair_of(vq[0][1][w], vq[1][1][w], mt),
                    pair_of(vq[2][0][w], vq[3][0][w], mt), pair_of(vq[2][1][w], vq[3][1][w], mt)};
                o[mt][0] *= a0, o[mt][2] *= a0, o[mt][1] *= a1, o[mt][3] *= a1;
                mma_16816(o[mt], a, pf.x, pf.y);
                mma_16816(o[mt], a, pf.z, pf.w);
            }
            if constexpr (STAGES > 0) {
                /* every lane has read the stage: refill it (here, not
                 * before the compute, where its addresses would share
                 * the registers with this chunk's K/V) */
                __syncwarp();
                fence_proxy_async();
                issue(ch + STAGES * CU_ATTN_KW, k + STAGES);
            }
        }
        if (STAGES > 0) __syncwarp(); /* every lane has read used0 (none, without chunks) */
        if (STAGES > 0 && lane == 0)
            R.used[warp] = used0 + (n_chunks > warp ? (n_chunks - warp - 1) / CU_ATTN_KW + 1 : 0);
        lrun += __shfl_xor_sync(0xffffffffu, lrun, 1);
        lrun += __shfl_xor_sync(0xffffffffu, lrun, 2);
        /* this group's (max, sum, o) for the heads < GQ: m-tile mt's
         * (row g (+8), column 2t (+1)) is (dim NS g (+8 NS) + mt, head
         * 2t (+1)) */
        if (g < GQ && t == 0)
            wm[warp * CU_ATTN_GQ_MAX + g] = mrun, wl[warp * CU_ATTN_GQ_MAX + g] = lrun;
#pragma unroll
        for (int mt = 0; mt < NS; mt++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                const int h = 2 * t + (e & 1), d = NS * (g + 8 * (e >> 1)) + mt;
                if (h < GQ) wo[((size_t)warp * GQ + h) * hd + d] = o[mt][e];
            }
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 4);

    /* the groups merged in a fixed order (a group without positions has
     * max -inf and sum 0) */
    CU_COLD_LOOP
    for (int e = tid; e < GQ * hd; e += NTH) {
        const int hgi = cu_div_q(e, M.hd_div), d = e - hgi * hd;
        float mx = -INFINITY;
        for (int w = 0; w < CU_ATTN_KW; w++) mx = fmaxf(mx, wm[w * CU_ATTN_GQ_MAX + hgi]);
        float acc = 0.0f, l = 0.0f;
        for (int w = 0; w < CU_ATTN_KW; w++) {
            const float lw = wl[w * CU_ATTN_GQ_MAX + hgi];
            const float f = lw > 0.0f ? expf(wm[w * CU_ATTN_GQ_MAX + hgi] - mx) : 0.0f;
            acc += f * wo[((size_t)w * GQ + hgi) * hd + d];
            l += f * lw;
        }
        red[e] = acc;
        if (d == 0) s_m[hgi] = mx, s_l[hgi] = l;
    }
    cta_sync<NTH>();
    tl_mark(M, layer, CU_PH_ATTN_SLOT, 5);
    attn_finish<NTH>(M, A, i, hg, c, r, red, 1, s_m, s_l);
}

#endif
