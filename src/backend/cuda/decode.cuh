/*
 * Device code of the decode step (host side in decode.cu; the kernels are
 * instantiated per row template in decode_rN.cu, which build in parallel).
 *
 * The decode step (up to CU_MAX_ROWS rows, typically one token of each of
 * a few sequences) is a sequence of phase kernels, each a grid of one
 * block per SM (512 threads for the weight phases but qkv from 4 rows or
 * with float weights, 384 for the others: cu_phase_threads), replayed
 * from one CUDA graph per step:
 *
 *   qkv     pack(rmsnorm(x) or embed) ; QKV GEMV on RoPE pairs ; then
 *           (qkv_finish) bias + RoPE + K/V write into the paged cache
 *                                                      (roles add_rmsnorm, qkv)
 *   kvq     int8 cache only: quantize the new K/V rows  (role kv_quant)
 *   attn    split-K paged attention, last split merges  (role attention)
 *   wo      pack(attention) ; GEMV ; x += out           (role matmul)
 *           (integer weights: then quantizes gate|up's input, x_pack_publish)
 *   gu      pack(rmsnorm(x)) ; gate|up GEMV ; silu*up   (roles add_rmsnorm, ffn)
 *   down    pack(h) ; GEMV ; x += out                   (role matmul)
 *           (integer weights: gu's blocks quantize h once, h_pack_build,
 *           and down's copy that pack instead of building one each; and
 *           down's quantize the next qkv's input, x_pack_publish)
 *   lm      pack(rmsnorm(x[out rows])) ; GEMV -> logits, per-block argmax  (lm_head)
 *   argmax  block 0 merges the per-block winners        (role sample)
 *
 * Launch gaps are hidden rather than avoided: with programmatic dependent
 * launch each kernel's blocks start while the previous kernel drains,
 * issue their first weight loads (and read the host's step data: row
 * counts, attention's page walk) before waiting on its results, so DRAM
 * keeps streaming across the phase boundary (what a persistent kernel's
 * grid barrier would give, without its register cost: see cu_phase_kernel).
 * wo launches without it by default: its early loads slowed the attention
 * before it more than they gained. Where the time still goes, kernel by
 * kernel: zt_cuda_timeline (bench/results/2026-11-26-cuda-h100-3.md).
 *
 * Work split: a weight phase's output rows (pairs for qkv and gu) are cut
 * into gridDim contiguous ranges, one per block (balanced to a row), and
 * the block's warps (16 or 12) take rows round-robin; the contiguous range
 * is what makes a single bulk L2 prefetch per stream possible.
 */
#ifndef ZT_BACKEND_CUDA_DECODE_CUH
#define ZT_BACKEND_CUDA_DECODE_CUH

#include "backend/cuda/attention.cuh"
#include "backend/cuda/kernels.h"
#include "backend/cuda/pack.cuh"

/* ---- helpers ---------------------------------------------------------- */

/* Items [i0, i1) of n for part k of `parts`. In 32-bit unsigned
 * arithmetic: n x parts stays under 2^32 for any row count here (n < 32 M
 * at 132 blocks), and a 64-bit division is a ~1.4 KB subroutine that every
 * phase kernel would call at its start, before its first loads, as cold
 * code (2026-11-29-cuda-h200-8.md). */
__device__ __forceinline__ void part_range(int n, unsigned k, unsigned parts, int &i0, int &i1) {
    i0 = (int)((unsigned)n * k / parts);
    i1 = (int)((unsigned)n * (k + 1) / parts);
}

/* Items [i0, i1) of n for this block. */
__device__ __forceinline__ void block_range(int n, int &i0, int &i1) {
    part_range(n, blockIdx.x, gridDim.x, i0, i1);
}

/* gate|up's range: whole x-blocks of h (32 rows) when the block quantizes
 * its own h (cu_model.h_pack), else as block_range. */
__device__ __forceinline__ void gu_range(const cu_model &M, int &i0, int &i1) {
    if (!M.h_pack) return block_range(M.ffn, i0, i1);
    block_range(M.ffn / 32, i0, i1);
    i0 *= 32, i1 *= 32;
}

/* Bytes per row of stream s (0 = q, 1..3 = a1..a3) of a matrix. */
__host__ __device__ __forceinline__ size_t stream_row_bytes(const cu_mat &m, int s) {
    int nxb = m.n_in / 32, nsb = m.n_in / 256;
    if (s == 0) return (size_t)cu_units_per_row(m.wt, m.n_in) * 16;
    switch (m.wt) {
    case CW_Q4_0:
    case CW_Q8_0:
        return s == 1 ? (size_t)nxb * 2 : 0;
    case CW_Q4_K:
        return s == 1 ? (size_t)nsb * 16 : 0;
    case CW_Q5_K:
        return s == 1 ? (size_t)nsb * 16 : s == 2 ? (size_t)nxb * 4 : 0;
    case CW_Q6_K:
        return s == 1 ? (size_t)nxb * 8 : s == 2 ? (size_t)nxb * 2 : (size_t)nsb * 2;
    default:
        return 0;
    }
}

/* L2 prefetch of rows [r0, r1) of m, at most `budget` bytes of q (side
 * streams in proportion). Pieces of 32 KB go to the block's threads.
 * Streams are allocated with 256 bytes of slack (forward.cu), so rounding
 * the range out to 16 bytes stays inside the allocation. */
__device__ __forceinline__ void prefetch_rows(const cu_mat &m, int r0, int r1, int budget) {
    if (budget <= 0 || r1 <= r0) return;
    size_t qrow = stream_row_bytes(m, 0);
    int n = r1 - r0;
    if ((size_t)n * qrow > (size_t)budget) n = max(1, (int)(budget / qrow));
    const uint8_t *base[4] = {m.q, m.a1, m.a2, m.a3};
    int piece = 0;
    for (int s = 0; s < 4; s++) {
        size_t rb = stream_row_bytes(m, s);
        if (!rb || !base[s]) continue;
        size_t b0 = ((size_t)r0 * rb) & ~(size_t)15,
               b1 = ((size_t)(r0 + n) * rb + 15) & ~(size_t)15;
        for (size_t b = b0; b < b1; b += 32768, piece++) {
            if (piece % blockDim.x != threadIdx.x) continue;
            size_t len = min((size_t)32768, b1 - b);
            prefetch_l2(base[s] + b, (unsigned)len);
        }
    }
}

/* The matrix and local row of fused-QKV row `row`. */
__device__ __forceinline__ const cu_mat *qkv_mat(const cu_model &M, const cu_layer &L, int row,
                                                 int &local) {
    if (row < M.q_dim) {
        local = L.oq + row;
        return &L.mq;
    }
    if (row < M.q_dim + M.kv_dim) {
        local = L.ok + row - M.q_dim;
        return &L.mk;
    }
    local = L.ov + row - M.q_dim - M.kv_dim;
    return &L.mv;
}

/* Writes fused-QKV outputs a and a + d (a pair: d = b - a) of batch row
 * r, v0 and v1: q to qbuf, k/v to the cache (f16; kv_at: the row's page *
 * ZT_KV_PAGE_CU + slot) or to the staging rows (int8 cache, quantized in
 * kvq). A pair lies within one head (qkv_pair), so both outputs go to the
 * same buffer and cache row, d elements apart: one address computation for
 * the two stores (each copy of it is code a launch fetches cold,
 * cuda-notes (20)). */
__device__ __forceinline__ void qkv_store(const cu_model &M, int layer, int r, int kv_at, int a,
                                          int d, float v0, float v1) {
    if (a < M.q_dim) {
        float *q = M.qbuf + (size_t)r * M.q_dim + a;
        q[0] = v0, q[d] = v1;
        return;
    }
    int f = a - M.q_dim, which = f >= M.kv_dim;
    if (which) f -= M.kv_dim;
    if (M.kv_type == CU_KV_Q8) {
        float *s = M.kvstage + ((size_t)r * 2 + which) * M.kv_dim + f;
        s[0] = v0, s[d] = v1;
        return;
    }
    const int h = cu_div_q(f, M.hd_div);
    __half *c = (__half *)(which ? M.vc : M.kc) +
                kv_offset(M, layer, kv_at / ZT_KV_PAGE_CU, h, kv_at % ZT_KV_PAGE_CU) + f -
                h * M.hd;
    c[0] = __float2half(v0), c[d] = __float2half(v1);
}

/* ---- weight phases ---------------------------------------------------- */

enum { EPI_QKV, EPI_PROJ, EPI_GU, EPI_LM };

/* The matrices and local rows of weight-phase item `it` (see rows_loop). */
template <int EPI>
__device__ __forceinline__ void item_rows(const cu_model &M, const cu_layer &L, const cu_mat &ma,
                                          const cu_mat &mb, int it, const cu_mat **mm, int *rows) {
    mm[0] = &ma, rows[0] = it;
    if constexpr (EPI == EPI_QKV) {
        /* a launch may span Q, K and V of one type in separate tensors */
        int a, b, j;
        qkv_pair(M, it, a, b, j);
        mm[0] = mm[1] = qkv_mat(M, L, a, rows[0]); /* a pair lies within one head */
        rows[1] = rows[0] + (b - a);
    } else if constexpr (EPI == EPI_GU) {
        mm[1] = &mb;
        rows[0] = L.og + it;
        rows[1] = L.ou + it;
    }
}

/* The end of fused-QKV pair `it` = rows (a, b) for batch row r, from its
 * dot products times rstd: the bias, RoPE (j >= 0: the pair's frequency in
 * the step's table, which the host computed) and the q / K / V stores. */
__device__ __forceinline__ void qkv_out(const cu_model &M, const cu_layer &L, int l,
                                        const cu_pack &pk, int r, int it, float v0, float v1) {
    int a, b, j;
    qkv_pair(M, it, a, b, j);
    if (L.bias) v0 += __ldg(L.bias + a), v1 += __ldg(L.bias + b);
    if (j >= 0) {
        const float2 cs = pk.rope[r * M.rope_half + j];
        float x0 = v0, x1 = v1;
        v0 = x0 * cs.x - x1 * cs.y;
        v1 = x0 * cs.y + x1 * cs.x;
    }
    qkv_store(M, l, r, pk.kv_at[r], a, b - a, v0, v1);
}

/* The epilogue of item `it` for batch row `lane` (< the step's rows):
 * v0, v1 are the dot products of its P rows (against x * gamma for the
 * normalized inputs of qkv, gate|up and lm_head: times rstd here). Its
 * only loads are shared memory (the pack's row data): a dependent global
 * load here would stall the warp once per item. qkv's pairs only go to
 * the stash (qkv_finish ends them after the items). */
template <int EPI>
__device__ __forceinline__ void item_epilogue(const cu_model &M, const cu_pack &pk, int lane,
                                              int it, float v0, float v1, float &best,
                                              int &best_i) {
    if constexpr (EPI != EPI_PROJ) { /* a normalized input: the pack holds x * gamma */
        const float rs = pk.rstd[lane];
        v0 *= rs, v1 *= rs;
    }
    if constexpr (EPI == EPI_QKV) {
        float *st = pk.hs + lane * M.stash_ld + 2 * (it - pk.h0);
        st[0] = v0, st[1] = v1;
    } else if constexpr (EPI == EPI_PROJ) {
        /* x += out without waiting for x: a reduction in L2 (one writer
         * per element, so the sum is the load-add-store's, bit for bit) */
        atomicAdd(M.resid + (size_t)lane * M.dim + it, v0);
    } else if constexpr (EPI == EPI_GU) {
        const float h = silu_f(v0) * v1;
        if (M.h_pack) /* for h_pack_build; nothing reads the f32 h then */
            pk.hs[lane * M.stash_ld + it - pk.h0] = h;
        else
            M.hbuf[(size_t)lane * M.ffn + it] = h;
    } else {
        if (pk.info[2]) M.logits[(size_t)lane * M.vocab + it] = v0;
        argmax_merge(best, best_i, v0, it);
    }
}

/* This block's slice of a weight phase's matrices, into L2. */
__device__ __forceinline__ void prefetch_phase(const cu_model &M, int ph, int l, int p0, int p1) {
    if (M.pf_bytes <= 0 || l >= M.n_layers) return;
    int i0, i1;
    if (ph == CU_PH_QKV) {
        const cu_layer &L = M.layers[l];
        block_range(p1 - p0, i0, i1);
        i0 += p0, i1 += p0;
        if (i1 <= i0) return;
        int hp = M.hd / 2, ra = (i0 / hp) * M.hd, rb = (((i1 - 1) / hp) + 1) * M.hd;
        int seg[4] = {0, M.q_dim, M.q_dim + M.kv_dim, M.qkv_dim};
        const cu_mat *mats[3] = {&L.mq, &L.mk, &L.mv};
        int offs[3] = {L.oq, L.ok, L.ov};
        int budget = M.pf_bytes;
        for (int s = 0; s < 3; s++) {
            int a = max(ra, seg[s]), b = min(rb, seg[s + 1]);
            if (a < b) prefetch_rows(*mats[s], offs[s] + a - seg[s], offs[s] + b - seg[s], budget);
        }
    } else if (ph == CU_PH_WO) {
        block_range(M.dim, i0, i1);
        prefetch_rows(M.layers[l].wo, i0, i1, M.pf_bytes);
    } else if (ph == CU_PH_GU) {
        const cu_layer &L = M.layers[l];
        gu_range(M, i0, i1);
        prefetch_rows(L.mg, L.og + i0, L.og + i1, M.pf_bytes / 2);
        prefetch_rows(L.mu, L.ou + i0, L.ou + i1, M.pf_bytes / 2);
    } else if (ph == CU_PH_DOWN) {
        block_range(M.dim, i0, i1);
        prefetch_rows(M.layers[l].down, i0, i1, M.pf_bytes);
    } else if (ph == CU_PH_LM) {
        block_range(M.vocab, i0, i1);
        prefetch_rows(M.out, i0, i1, M.pf_bytes);
    }
}

/* The weight phase that follows ph (for the one-ahead prefetch). */
__device__ __forceinline__ void prefetch_after(const cu_model &M, int ph, int l) {
    if (!(M.pf_mode & 1)) return;
    switch (ph) {
    case CU_PH_QKV:
        prefetch_phase(M, CU_PH_WO, l, 0, 0);
        break;
    case CU_PH_WO:
        prefetch_phase(M, CU_PH_GU, l, 0, 0);
        break;
    case CU_PH_GU:
        prefetch_phase(M, CU_PH_DOWN, l, 0, 0);
        break;
    case CU_PH_DOWN:
        if (l + 1 < M.n_layers)
            prefetch_phase(M, CU_PH_QKV, l + 1, 0, M.qkv_dim / 2);
        else
            prefetch_phase(M, CU_PH_LM, l, 0, 0);
        break;
    default:
        break;
    }
}

/* The end of item `it` for this lane, once acc is reduced across the warp:
 * batch row `lane` (if the step has it) takes its values to the epilogue
 * (rows_loop's). */
template <int EPI, int NR, int P>
__device__ __forceinline__ void item_finish(const cu_model &M, const cu_pack &pk, int lane, int it,
                                            const float (&acc)[P][NR], float &best, int &best_i) {
    const int n_valid = pk.info[EPI == EPI_LM ? 1 : 0];
    if (lane >= n_valid) return;
    float v0 = acc_of_lane<NR, P>(acc, 0, lane),
          v1 = P > 1 ? acc_of_lane<NR, P>(acc, P - 1, lane) : 0.0f;
    item_epilogue<EPI>(M, pk, lane, it, v0, v1, best, best_i);
}

/* Items [i0, i1) of a weight phase, one warp per item, all of weight type
 * WT (the type switch sits outside the loop, so each loop is register-
 * allocated for one type), pipelined by gemv_items; `prologue(when)`
 * (every thread, after the first weight loads are out unless
 * cu_model.pack_first says before, and before them for layer 0's qkv)
 * waits for the previous kernel and builds the pack. Item -> rows:
 *   EPI_QKV  pair `it` of the fused-QKV rows (qkv_pair), epilogue
 *            into the stash (qkv_finish: bias + RoPE + q / K / V stores)
 *   EPI_PROJ row `it` of ma, epilogue x += out (wo, down)
 *   EPI_GU   gate row og + it of ma, up row ou + it of mb, h = silu(g) * u
 *   EPI_LM   row `it` of the output matrix, logits and a running argmax
 * NTH: the block's threads (cu_phase_threads). */
template <int WT, int NR, int P, int EPI, int NTH, class Prologue>
__device__ __forceinline__ void
rows_loop(const cu_model &M, const cu_layer &L, int l, int ph, const cu_pack &pk, const cu_mat &ma,
          const cu_mat &mb, int i0, int i1, float &best, int &best_i, Prologue prologue) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    auto rows_of = [&](int it, const cu_mat **mm, int *rows) {
        item_rows<EPI>(M, L, ma, mb, it, mm, rows);
    };
    auto epilogue = [&](int it, const float(&acc)[P][NR]) {
        item_finish<EPI, NR, P>(M, pk, lane, it, acc, best, best_i);
    };
    auto prologue_marked = [&](auto when) {
        prologue(when);
        tl_mark(M, l, ph, 3);
    };
    const bool first = (M.pack_first >> ph & 1) != 0 || (EPI == EPI_QKV && l == 0);
    constexpr bool rotate = EPI != EPI_PROJ && !is_float_wt<WT>(); /* gemv_items' ROTATE */
    gemv_items<WT, NR, P, NTH, rotate>(ma.n_in, i0 + warp, i1, NTH / CU_WARP, pk, rows_of,
                                       prologue_marked, epilogue, first);
    tl_mark(M, l, ph, 4);
}

/* What every phase does before it reads the previous kernel's results:
 * wait for them (programmatic dependent launch; a no-op otherwise),
 * optionally prefetch the next phase's weights into L2. */
__device__ __forceinline__ void phase_wait(const cu_model &M, int ph, int l) {
    asm volatile("griddepcontrol.wait;" ::: "memory");
    tl_mark(M, min(l, M.n_layers - 1), ph, 1);
    if (M.pf_mode & 1) prefetch_after(M, ph, l);
}

/* A weight phase's prologue, once its first weight loads are out: the
 * step's row data into the pack (host data: before the wait), the wait. */
template <int NR, int NTH>
__device__ __forceinline__ void weight_wait(const cu_model &M, const cu_pack &pk, int ph, int l) {
    rows_fill(M, *M.step, pk, NR, NTH);
    phase_wait(M, ph, l);
}

/* The pack of a normalized input, rmsnorm(x) (qkv's, gate|up's): copied
 * from M.xq when the phase that wrote x quantized it there
 * (x_pack_publish; rstd from its sums of squares), else built here. */
template <int NR, int WT, int NTH>
__device__ __forceinline__ void pack_norm_x(const cu_model &M, bool published, const pack_src &s,
                                            int n_rows, const cu_pack &pk) {
    if (!published) return pack_build<NR, WT, NTH / CU_WARP>(M, s, M.dim_p, n_rows, pk);
    pack_copy<NR, NTH>(pack_global(M.xq, M.dim / 32), n_rows, pk);
    pack_rstd<NTH / CU_WARP>(M, pk, M.dim / 32, M.dim, n_rows);
}

/* The end of a qkv warp: its pairs it0, it0 + stride, ... (< i1; the
 * block's from pk.h0) of each step row, from the stash, through qkv_out, a
 * lane a (row, pair). Apart from the items so that their pipeline keeps
 * to 128 registers at 16 warps: with the cache addressing in the item
 * loop qkv's kernels needed ~168 and spilled at 128
 * (2026-11-29-cuda-h200-4.md, call 9). A warp ends its own pairs (no
 * block barrier: a warp that finishes early does not wait for the
 * slowest). The same arithmetic in the same order: the same values bit
 * for bit. */
template <int NR>
__device__ __forceinline__ void qkv_finish(const cu_model &M, const cu_layer &L, int l,
                                           const cu_pack &pk, int it0, int i1, int stride) {
    __syncwarp(); /* the warp's stash entries (lane r wrote row r's) */
    const int lane = threadIdx.x % CU_WARP, n_rows = pk.info[0];
    const int mine = it0 < i1 ? (i1 - it0 + stride - 1) / stride : 0;
    CU_COLD_LOOP
    for (int t = lane; t < n_rows * mine; t += CU_WARP) {
        const int r = row_of_entry<NR>(t, mine), it = it0 + (t - r * mine) * stride;
        const float *st = pk.hs + r * M.stash_ld + 2 * (it - pk.h0);
        qkv_out(M, L, l, pk, r, it, st[0], st[1]);
    }
}

/* Pairs [p0, p1) of the fused-QKV row space (one launch per run of Q/K/V
 * segments of one weight type; usually all of them). */
template <int NR, int WT, int NTH>
__device__ __forceinline__ void phase_qkv(const cu_model &M, const cu_layer &L, int l,
                                          const cu_pack &pk_in, int p0, int p1) {
    const cu_step &st = *M.step;
    const pack_src s = {
        l == 0 ? SRC_EMBED : SRC_RESID, M.resid, M.dim, nullptr, L.attn_norm, st.token,
        l == 0 ? M.resid : nullptr};
    const pack_src s_resid = {SRC_RESID, M.resid, M.dim, nullptr, L.attn_norm, nullptr, nullptr};
    int i0, i1;
    block_range(p1 - p0, i0, i1);
    i0 += p0, i1 += p0;
    cu_pack pk = pk_in;
    pk.h0 = i0;
    float best = 0.0f;
    int best_i = 0;
    const int n_rows = st.n_rows; /* the host's step: read before the wait */
    /* layer 0 embeds the step's tokens: rows_loop runs its prologue
     * early, so that the late one (its pack beside the first chunks'
     * fragments) needs no embedding code and no registers for it */
    auto prologue = [&](auto when) {
        weight_wait<NR, NTH>(M, pk, CU_PH_QKV, l);
        if constexpr (decltype(when)::early)
            pack_norm_x<NR, WT, NTH>(M, M.x_pack && l > 0, s, n_rows, pk); /* after a down */
        else
            pack_norm_x<NR, WT, NTH>(M, M.x_pack, s_resid, n_rows, pk);
    };
    rows_loop<WT, NR, 2, EPI_QKV, NTH>(M, L, l, CU_PH_QKV, pk, L.mq, L.mq, i0, i1, best, best_i,
                                       prologue);
    qkv_finish<NR>(M, L, l, pk, i0 + (int)threadIdx.x / CU_WARP, i1, NTH / CU_WARP);
}

/* int8 cache: a warp per (row, kv head, K or V). */
template <int NW = CU_DEC_WARPS>
__device__ __forceinline__ void phase_kvq(const cu_model &M, int l) {
    const cu_step &st = *M.step;
    const int lane = threadIdx.x % CU_WARP;
    const int gw = blockIdx.x * NW + threadIdx.x / CU_WARP;
    const int nw = gridDim.x * NW;
    for (int it = gw; it < st.n_rows * M.n_kv * 2; it += nw) {
        int r = it / (M.n_kv * 2), kvh = (it / 2) % M.n_kv, which = it % 2;
        const float *src = M.kvstage + ((size_t)r * 2 + which) * M.kv_dim + (size_t)kvh * M.hd;
        float amax = 0.0f;
        for (int d = lane; d < M.hd; d += 32) amax = fmaxf(amax, fabsf(__ldcg(src + d)));
        amax = warp_max(amax);
        float id = amax > 0.0f ? 127.0f / amax : 0.0f;
        int pos = st.pos[r], page = st.pt[(size_t)st.cseq[r] * st.pt_stride + pos / ZT_KV_PAGE_CU];
        int slot = pos % ZT_KV_PAGE_CU;
        int8_t *dst = (int8_t *)(which ? M.vc : M.kc) + kv_offset(M, l, page, kvh, slot);
        for (int d = lane; d < M.hd; d += 32) dst[d] = (int8_t)__float2int_rn(__ldcg(src + d) * id);
        if (lane == 0)
            (which ? M.vs : M.ks)[kv_scale_offset(M, l, page, kvh, slot)] = amax / 127.0f;
    }
}

__device__ __forceinline__ attn_args decode_attn_args(const cu_model &M, const cu_step &st) {
    attn_args A;
    A.q32 = M.qbuf, A.q16 = nullptr, A.q_ld = M.q_dim;
    A.out32 = M.attn, A.out16 = nullptr, A.out_ld = M.q_dim;
    A.rows = nullptr, A.n_list = st.n_rows, A.n_splits = st.n_splits, A.chunk = st.chunk;
    A.part_o = M.part_o, A.part_ml = M.part_ml, A.cnt = M.attn_cnt;
    A.out_sm = nullptr;
    return A;
}

/* The decode step's attention items of layer l (row i, head group hg,
 * split c), the block's every gridDim.x-th, each to item(st, A, i, hg, c,
 * wait), where wait() waits on the QKV kernel (phase_wait; the item calls
 * it after walking its page table); a block without an item still waits.
 * Shared by phase_attn and decode.cu's cu_attn_decode_kernel. */
template <class Item>
__device__ __forceinline__ void decode_attn_items(const cu_model &M, int l, Item item) {
    const cu_step &st = *M.step;
    const attn_args A = decode_attn_args(M, st);
    auto wait = [&] { phase_wait(M, CU_PH_ATTN, l); };
    const int per_row = M.n_heads / M.gq * A.n_splits, n_items = A.n_list * per_row;
    for (int it = blockIdx.x; it < n_items; it += gridDim.x)
        item(st, A, it / per_row, (it % per_row) / A.n_splits, it % A.n_splits, wait);
    if ((int)blockIdx.x >= n_items) wait(); /* no item: still ordered after QKV */
}

/* The decode attention phase. Its blocks walk their items' page tables
 * (the host's step data) before waiting on the QKV kernel, so that with
 * programmatic dependent launch the walk overlaps that kernel's tail. */
template <int NTH = CU_DEC_THREADS>
__device__ __forceinline__ void phase_attn(const cu_model &M, int l, float *sm) {
    decode_attn_items(M, l,
                      [&](const cu_step &st, const attn_args &A, int i, int hg, int c, auto wait) {
                          if (M.kv_type == CU_KV_Q8)
                              attn_item<CU_KV_Q8, NTH>(M, st, l, A, i, hg, c, sm, wait);
                          else
                              attn_item<CU_KV_F16, NTH>(M, st, l, A, i, hg, c, sm, wait);
                      });
}

/* The end of a gate|up block with cu_model.h_pack: its h rows [i0, i1)
 * (whole x-blocks) of each step row, from the stash, quantized once into
 * M.hq as pack_build would quantize them for down (pack_quant4, the same
 * lanes: bit for bit), so that down's 132 blocks copy 48 bytes an x-block
 * (pack_copy) instead of each reading and quantizing 128 bytes of f32:
 * at 8 rows down's pack took 16.8 us a layer (2026-11-28-cuda-h200-2.md). */
template <int NR, int NTH>
__device__ __forceinline__ void h_pack_build(const cu_model &M, const cu_pack &pk, int i0, int i1,
                                             int n_rows) {
    cta_sync<NTH>(); /* the stash is complete */
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    const int XBh = M.ffn / 32, nxb = (i1 - i0) / 32, nq = (nxb + 3) / 4;
    const cu_pack g = pack_global(M.hq, XBh);
    CU_COLD_LOOP
    for (int t = warp; t < n_rows * nq; t += NTH / CU_WARP) { /* 4 x-blocks a warp, 8 lanes each */
        const int r = row_of_entry<NR>(t, nq), xl = (t - r * nq) * 4 + lane / 8;
        const bool live = xl < nxb;
        float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (live) y = *(const float4 *)(pk.hs + r * M.stash_ld + xl * 32 + (lane & 7) * 4);
        pack_quant4(M, g, r, i0 / 32 + xl, y, live);
    }
}

/* The end of a down block with cu_model.x_pack (not the last layer; gamma:
 * the next layer's attn_norm), or of a wo block with cu_model.g_pack
 * (gamma: ffn_norm): the next phase's input, rmsnorm(x) quantized, built
 * once here instead of by each of its 132 blocks (at 8 rows qkv's pack took 11.8 us a layer,
 * 2026-11-28-cuda-h200-2.md). Down's row ranges (~23 rows a block) do not
 * align with x-blocks (32), so an x-block is quantized by the block whose
 * rows complete it: each block counts its rows of each x-block it touched
 * into M.xcnt, and the one that brings a count to 32 reads the x-block
 * back (every x += out is visible by then: each thread fenced its adds
 * before the count) and quantizes x * gamma as pack_build would (the same
 * lanes, sumsq4 and pack_quant4: the same codes and sums, bit for bit). */
template <int NR, int NTH>
__device__ __forceinline__ void x_pack_publish(const cu_model &M, const float *gamma, int i0,
                                               int i1, int n_rows) {
    __threadfence(); /* this thread's x += out, before any count */
    cta_sync<NTH>();
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    const int xb0 = i0 / 32, n_xb = i1 > i0 ? (i1 - 1) / 32 - xb0 + 1 : 0;
    CU_COLD_LOOP
    for (int w = warp; w < n_xb; w += NTH / CU_WARP) { /* a warp an x-block the block touched */
        const int xb = xb0 + w, mine = min(i1, xb * 32 + 32) - max(i0, xb * 32);
        unsigned before = 0;
        if (lane == 0) before = atomicAdd(M.xcnt + xb, (unsigned)mine);
        before = __shfl_sync(0xffffffffu, before, 0);
        if (before + mine != 32) continue; /* a later block completes it */
        __threadfence();                   /* the other blocks' adds, after their counts */
        if (lane == 0) M.xcnt[xb] = 0;     /* for the next publisher */
        const int XBx = M.dim / 32, sub = lane & 7;
        const cu_pack g = pack_global(M.xq, XBx);
        const int k = xb * 32 + sub * 4;
        const float4 gm = gamma4(gamma, k, M.dim);
        CU_COLD_LOOP
        for (int r0 = 0; r0 < n_rows; r0 += 4) { /* 4 rows a pass, 8 lanes a row */
            const int r = r0 + lane / 8;
            const bool live = r < n_rows;
            float4 x = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (live) x = __ldcg((const float4 *)(M.resid + (size_t)r * M.dim + k));
            const float sq = xb_sum(sumsq4(x));
            if (live && sub == 0) g.xm[(size_t)r * XBx + xb].w = sq;
            const float4 y = make_float4(x.x * gm.x, x.y * gm.y, x.z * gm.z, x.w * gm.w);
            pack_quant4(M, g, r, xb, y, live);
        }
    }
}

/* wo and down: out rows of w, x += out. */
template <int NR, int WT, int NTH>
__device__ __forceinline__ void phase_proj(const cu_model &M, const cu_layer &L, int l, int ph,
                                           const cu_mat &w, const float *in, int in_ld,
                                           const cu_pack &pk) {
    const cu_step &st = *M.step;
    pack_src s = {SRC_PLAIN, in, in_ld, nullptr, nullptr, nullptr, nullptr};
    int i0, i1;
    block_range(w.n_out, i0, i1);
    float best = 0.0f;
    int best_i = 0;
    const int n_rows = st.n_rows; /* the host's step: read before the wait */
    auto prologue = [&](auto) {
        weight_wait<NR, NTH>(M, pk, ph, l);
        if (ph == CU_PH_DOWN && M.h_pack)
            pack_copy<NR, NTH>(pack_global(M.hq, M.ffn / 32), n_rows, pk); /* h_pack_build's */
        else
            pack_build<NR, WT, NTH / CU_WARP>(M, s, w.n_in, n_rows, pk);
    };
    rows_loop<WT, NR, 1, EPI_PROJ, NTH>(M, L, l, ph, pk, w, w, i0, i1, best, best_i, prologue);
    if (ph == CU_PH_DOWN && M.x_pack && L.next_norm)
        x_pack_publish<NR, NTH>(M, L.next_norm, i0, i1, n_rows);
    else if (ph == CU_PH_WO && M.g_pack)
        x_pack_publish<NR, NTH>(M, L.ffn_norm, i0, i1, n_rows);
}

template <int NR, int WT, int NTH>
__device__ __forceinline__ void phase_gu(const cu_model &M, const cu_layer &L, int l,
                                         const cu_pack &pk_in) {
    const cu_step &st = *M.step;
    pack_src s = {SRC_RESID, M.resid, M.dim, nullptr, L.ffn_norm, nullptr, nullptr};
    int i0, i1;
    gu_range(M, i0, i1);
    cu_pack pk = pk_in;
    pk.h0 = i0;
    float best = 0.0f;
    int best_i = 0;
    const int n_rows = st.n_rows; /* the host's step: read before the wait */
    auto prologue = [&](auto) {
        weight_wait<NR, NTH>(M, pk, CU_PH_GU, l);
        pack_norm_x<NR, WT, NTH>(M, M.g_pack, s, n_rows, pk);
    };
    rows_loop<WT, NR, 2, EPI_GU, NTH>(M, L, l, CU_PH_GU, pk, L.mg, L.mu, i0, i1, best, best_i,
                                      prologue);
    if (M.h_pack) h_pack_build<NR, NTH>(M, pk, i0, i1, n_rows);
}

/* The block's (value, index) winner per output row, from each warp's
 * running best (lane r holds row r's), into amax_part[blockIdx.x]. */
template <int NW = CU_DEC_WARPS>
__device__ __forceinline__ void lm_block_winner(const cu_model &M, const cu_pack &pk, float best,
                                                int best_i) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    float2 *red = (float2 *)pk.red; /* [warps][CU_MAX_ROWS] */
    if (lane < CU_MAX_ROWS)
        red[warp * CU_MAX_ROWS + lane] = make_float2(best, __int_as_float(best_i));
    cta_sync<NW * CU_WARP>();
    if (threadIdx.x < CU_MAX_ROWS) {
        float b = -INFINITY;
        int bi = 0x7fffffff;
        for (int w = 0; w < NW; w++) {
            float2 v = red[w * CU_MAX_ROWS + threadIdx.x];
            argmax_merge(b, bi, v.x, __float_as_int(v.y));
        }
        M.amax_part[(size_t)blockIdx.x * CU_MAX_ROWS + threadIdx.x] =
            make_float2(b, __int_as_float(bi));
    }
}

template <int NR, int WT, int NTH>
__device__ __forceinline__ void phase_lm(const cu_model &M, const cu_layer &L, const cu_pack &pk) {
    __shared__ int s_rows[CU_MAX_ROWS]; /* the output rows, read before the wait */
    const cu_step &st = *M.step;
    const int n_out = st.n_out;
    if ((int)threadIdx.x < n_out) s_rows[threadIdx.x] = st.out_row[threadIdx.x];
    pack_src s = {SRC_RESID, M.resid, M.dim, s_rows, M.out_norm, nullptr, nullptr};
    int i0, i1;
    block_range(M.vocab, i0, i1);
    float best = -INFINITY;
    int best_i = 0x7fffffff;
    auto prologue = [&](auto) {
        weight_wait<NR, NTH>(M, pk, CU_PH_LM, M.n_layers);
        cta_sync<NTH>(); /* s_rows */
        pack_build<NR, WT, NTH / CU_WARP>(M, s, M.dim_p, n_out, pk);
    };
    rows_loop<WT, NR, 1, EPI_LM, NTH>(M, L, M.n_layers - 1, CU_PH_LM, pk, M.out, M.out, i0, i1,
                                      best, best_i, prologue);
    lm_block_winner<NTH / CU_WARP>(M, pk, best, best_i);
}

/* One block: the winners of every block of the lm phase, merged; the
 * threads split the blocks, then a warp tree and one thread per row merge
 * (argmax_merge's tie rule makes the order irrelevant). */
template <int NW = CU_DEC_WARPS>
__device__ __forceinline__ void phase_argmax(const cu_model &M, int n_blocks) {
    __shared__ float2 s_best[NW];
    const cu_step &st = *M.step;
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    for (int r = 0; r < st.n_out; r++) {
        float b = -INFINITY;
        int bi = 0x7fffffff;
        for (int k = threadIdx.x; k < n_blocks; k += NW * CU_WARP) {
            float2 v = __ldcg(M.amax_part + (size_t)k * CU_MAX_ROWS + r);
            argmax_merge(b, bi, v.x, __float_as_int(v.y));
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) {
            float v = __shfl_xor_sync(0xffffffffu, b, o);
            int vi = __shfl_xor_sync(0xffffffffu, bi, o);
            argmax_merge(b, bi, v, vi);
        }
        if (lane == 0) s_best[warp] = make_float2(b, __int_as_float(bi));
        cta_sync<NW * CU_WARP>();
        if (threadIdx.x == 0) {
            for (int w = 1; w < NW; w++)
                argmax_merge(b, bi, s_best[w].x, __float_as_int(s_best[w].y));
            M.argmax[r] = bi == 0x7fffffff ? 0 : bi;
        }
        cta_sync<NW * CU_WARP>();
    }
}

/* ---- kernels ---------------------------------------------------------- */

/* One phase per launch, its weight type a template argument as well, so
 * that a kernel holds one phase's code for one type and nothing is chosen
 * at run time in the loops. (A single persistent kernel holding the whole
 * step, with grid barriers between phases, was the first design: nvcc 13
 * spilled ~12 KB per thread in it, and ~4-9 KB in a QKV kernel that
 * switched on the type per segment; these kernels spill nothing at one
 * row, see decode_rN.cu.)
 *
 * Launched with programmatic dependent launch: a block starts as soon as
 * its SM is free, issues its first weight loads (weights do not depend on
 * the previous phase), and only then waits for the previous phase's
 * results. [i0, i1): the QKV pairs of this launch. */
template <int NR, int PH, int WT>
__global__ void __launch_bounds__(cu_phase_threads(PH, NR, WT), 1)
    cu_phase_kernel(const __grid_constant__ cu_model Mv, const __grid_constant__ cu_layer Lv, int l,
                    int i0, int i1) {
    /* the descriptors (the model's and layer l's) by value: their fields
     * come from the constant bank, not from a global load at the head of
     * every dependent chain (the first weight loads' addresses included) */
    const cu_model &M = Mv;
    const cu_layer &L = Lv;
    extern __shared__ __align__(16) uint8_t smem[];
    const unsigned long long t_start = M.tl ? globaltimer_ns() : 0;
    asm volatile("griddepcontrol.launch_dependents;");
    if (M.pf_mode & 2) prefetch_phase(M, PH, l, i0, i1);
    cu_pack pk = pack_carve(smem, M, M.pack_rows);
    /* weight phases wait in their prologue (rows_loop), after their first
     * weight loads; the others wait here */
    constexpr int NTH = cu_phase_threads(PH, NR, WT);
    if constexpr (PH == CU_PH_QKV)
        phase_qkv<NR, WT, NTH>(M, L, l, pk, i0, i1);
    else if constexpr (PH == CU_PH_WO)
        phase_proj<NR, WT, NTH>(M, L, l, PH, L.wo, M.attn, M.q_dim, pk);
    else if constexpr (PH == CU_PH_GU)
        phase_gu<NR, WT, NTH>(M, L, l, pk);
    else if constexpr (PH == CU_PH_DOWN)
        phase_proj<NR, WT, NTH>(M, L, l, PH, L.down, M.hbuf, M.ffn, pk);
    else if constexpr (PH == CU_PH_LM)
        phase_lm<NR, WT, NTH>(M, L, pk);
    else if constexpr (PH == CU_PH_ATTN)
        phase_attn(M, l, (float *)smem); /* waits inside, after its page walk */
    else {
        phase_wait(M, PH, l);
        if constexpr (PH == CU_PH_KVQ)
            phase_kvq(M, l);
        else if (blockIdx.x == 0)
            phase_argmax(M, M.lm_blocks);
    }
    tl_start(M, l, PH, t_start);
    tl_mark(M, l, PH, 2);
}

/* The phase kernel of weight phase PH for weight type wt, or NULL for a
 * type without one. */
template <int NR, int PH> void *kernel_by_type(int wt) {
    switch (wt) {
    case CW_Q4_0:
        return (void *)cu_phase_kernel<NR, PH, CW_Q4_0>;
    case CW_Q8_0:
        return (void *)cu_phase_kernel<NR, PH, CW_Q8_0>;
    case CW_Q4_K:
        return (void *)cu_phase_kernel<NR, PH, CW_Q4_K>;
    case CW_Q5_K:
        return (void *)cu_phase_kernel<NR, PH, CW_Q5_K>;
    case CW_Q6_K:
        return (void *)cu_phase_kernel<NR, PH, CW_Q6_K>;
    case CW_F16:
        return (void *)cu_phase_kernel<NR, PH, CW_F16>;
    case CW_BF16:
        return (void *)cu_phase_kernel<NR, PH, CW_BF16>;
    default:
        return nullptr;
    }
}

/* The kernel of weight phase ph and weight type wt for row template NR
 * (decode_rN.cu instantiates them), or NULL for the other phases. */
template <int NR> void *kernel_of(int ph, int wt) {
    switch (ph) {
    case CU_PH_QKV:
        return kernel_by_type<NR, CU_PH_QKV>(wt);
    case CU_PH_WO:
        return kernel_by_type<NR, CU_PH_WO>(wt);
    case CU_PH_GU:
        return kernel_by_type<NR, CU_PH_GU>(wt);
    case CU_PH_DOWN:
        return kernel_by_type<NR, CU_PH_DOWN>(wt);
    case CU_PH_LM:
        return kernel_by_type<NR, CU_PH_LM>(wt);
    default:
        return nullptr;
    }
}

#endif
