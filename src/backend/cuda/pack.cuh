/*
 * Role add_rmsnorm's second half and the activation quantizer: builds a
 * decode matmul's input in shared memory, once per block per phase.
 *
 *   norm sources: x = residual row (or, in layer 0, the token's embedding
 *     row dequantized from the repacked table), y = x * gamma, and rstd
 *     per row into pk.rstd, which the consumer applies to its finished dot
 *     products (see pack_build: one L2 round trip instead of two)
 *   plain sources: y = a f32 buffer row (attention output, silu * up)
 *
 * then each x-block of y is quantized to int8 (cu_act_quant_block's rule)
 * and, when the model has float weights, also kept as f32 (only kept, when
 * every matmul is float: cu_model.has_float 2). The residual
 * add itself happened in the producing matmul's epilogue, so add_rmsnorm
 * costs no launch and no extra pass over memory: each block rereads the
 * residual (dim floats) from L2.
 *
 * Mapping: a task is 256 inputs (8 x-blocks) of one row (512 for plain
 * sources), a lane holds 4 consecutive inputs of each of its float4s, so
 * an x-block is 8 lanes and its reductions are 3 shuffles; the warps
 * stride over tasks, loading 1 or 2 tasks before any arithmetic
 * (pack_tasks_ahead), so at one row the pack costs one L2 round trip for
 * rows up to 4096 inputs (8192 plain) at 16 warps, 6144 (12288) with
 * float weights. Rows >= n_rows are packed as zeros.
 *
 * Three inputs are not built here by each block: with tune.h_pack, down's h
 * is quantized once by gate|up's blocks (decode.cuh's h_pack_build, with
 * pack_quant4 below) and each of down's blocks copies that pack
 * (pack_copy); every block reading every row of h from L2 had made down's
 * pack grow ~2 us a row (2026-11-28-cuda-h200-2.md). With tune.x_pack and
 * tune.g_pack, qkv's and gate|up's normalized x likewise, by down's and
 * wo's phase kernels (x_pack_publish), and their consumers take rstd from
 * the copied sums of squares (pack_rstd).
 */
#ifndef ZT_BACKEND_CUDA_PACK_CUH
#define ZT_BACKEND_CUDA_PACK_CUH

#include "backend/cuda/gemv.cuh"

enum { SRC_RESID = 0, SRC_EMBED = 1, SRC_PLAIN = 2 };

struct pack_src {
    int kind;
    const float *buf;   /* SRC_RESID / SRC_PLAIN: row r at buf + map(r) * ld */
    int ld;             /* also the row's length: inputs past it (a matrix padded to
                           a multiple of 32 inputs) pack as zeros */
    const int *row_map; /* row r reads row row_map[r] (lm_head's out rows), or NULL */
    const float *gamma; /* norm weight [K], or NULL for plain sources */
    const int *token;   /* SRC_EMBED */
    float *resid_out;   /* SRC_EMBED: where block 0 stores the embedding rows */
};

/* Element k of row `row` of a repacked matrix (the embedding table). */
__device__ __forceinline__ float embed_elem(const cu_mat &m, int row, int k) {
    const cu_streams s = {m.wt, m.n_in, m.q, m.a1, m.a2, m.a3};
    return cu_dequant_elem(&s, row, k);
}

__device__ __forceinline__ float pack_value(const cu_mat &embd, const pack_src &s, int r, int k) {
    if (s.kind == SRC_EMBED) return embed_elem(embd, s.token[r], k);
    int row = s.row_map ? s.row_map[r] : r;
    return __ldcg(s.buf + (size_t)row * s.ld + k);
}

__host__ __device__ __forceinline__ size_t cu_pack_bytes(const cu_model &M, int rows);

/* Where the stash starts (after the pack, 16-byte aligned), and its
 * bytes: a weight phase's per-item results kept for a pass after its
 * items (gate|up's h for h_pack_build, qkv's dot products for
 * qkv_finish). The phase kernels' dynamic shared memory has room for both
 * (cu_decode_smem). */
__host__ __device__ __forceinline__ size_t cu_stash_at(const cu_model &M, int rows) {
    return (cu_pack_bytes(M, rows) + 15) & ~(size_t)15;
}
__host__ __device__ __forceinline__ size_t cu_stash_bytes(const cu_model &M, int rows) {
    return (size_t)rows * M.stash_ld * 4;
}

/* Carves the pack out of the dynamic shared memory (sizes: cu_pack_bytes). */
__device__ __forceinline__ cu_pack pack_carve(uint8_t *smem, const cu_model &M, int rows) {
    cu_pack pk;
    pk.XB = M.xb_max;
    size_t n = (size_t)rows * M.xb_max;
    pk.xlo = (uint4 *)smem;
    pk.xhi = pk.xlo + n;
    pk.xm = (float4 *)(pk.xhi + n);
    pk.xf = pk.xm + n;
    float *f = (float *)(pk.xf + (M.has_float ? n * 8 : 0));
    pk.red = f;
    pk.rstd = f + CU_DEC_WARPS_MAX * CU_MAX_ROWS * 2;
    pk.rope = (float2 *)(pk.rstd + CU_MAX_ROWS);
    pk.kv_at = (int *)(pk.rope + (size_t)rows * M.rope_half);
    pk.info = pk.kv_at + CU_MAX_ROWS;
    pk.hs = (float *)(smem + cu_stash_at(M, rows)); /* the phase kernels' only */
    pk.h0 = 0;
    return pk;
}

/* Bytes pack_carve needs for `rows` rows (host and device agree on this). */
__host__ __device__ __forceinline__ size_t cu_pack_bytes(const cu_model &M, int rows) {
    size_t n = (size_t)rows * M.xb_max;
    return n * 48 + (M.has_float ? n * 128 : 0) +
           (CU_DEC_WARPS_MAX * CU_MAX_ROWS * 2 + CU_MAX_ROWS) * 4 + (size_t)rows * M.rope_half * 8 +
           (CU_MAX_ROWS + 4) * 4;
}

/* The step's per-row data into the pack's row area (see cu_pack), by
 * threads 0 .. nthreads - 1: the host wrote it before the step, so this
 * runs before the wait on the previous kernel, and every load's address
 * is known without a load (one round trip). Readers come after a barrier
 * (pack_build has them). */
__device__ __forceinline__ void rows_fill(const cu_model &M, const cu_step &st, const cu_pack &pk,
                                          int rows, int nthreads) {
    if (threadIdx.x == 0)
        pk.info[0] = st.n_rows, pk.info[1] = st.n_out, pk.info[2] = st.want_logits;
    CU_COLD_LOOP
    for (int i = threadIdx.x; i < rows * M.rope_half; i += nthreads) pk.rope[i] = M.step_rope[i];
    if ((int)threadIdx.x < rows) pk.kv_at[threadIdx.x] = st.kv_at[threadIdx.x];
}

/* Inputs k .. k + 3 of row r of the source (zeros past its length s.ld). */
__device__ __forceinline__ float4 pack_value4(const cu_mat &embd, const pack_src &s, int r, int k) {
    if (s.kind != SRC_EMBED && (s.ld & 3) == 0 && k + 4 <= s.ld) {
        int row = s.row_map ? s.row_map[r] : r;
        return __ldcg((const float4 *)(s.buf + (size_t)row * s.ld + k));
    }
    float v[4];
#pragma unroll
    for (int i = 0; i < 4; i++) v[i] = k + i < s.ld ? pack_value(embd, s, r, k + i) : 0.0f;
    return make_float4(v[0], v[1], v[2], v[3]);
}

__device__ __forceinline__ float4 gamma4(const float *g, int k, int ld) {
    if (((uintptr_t)g & 15) == 0 && k + 4 <= ld) return __ldg((const float4 *)(g + k));
    float v[4];
#pragma unroll
    for (int i = 0; i < 4; i++) v[i] = k + i < ld ? __ldg(g + k + i) : 0.0f;
    return make_float4(v[0], v[1], v[2], v[3]);
}

/* This lane's part of an x-block's sum of squares (one expression, so that
 * every builder of a pack rounds it alike). */
__device__ __forceinline__ float sumsq4(float4 x) {
    return x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w;
}

/* Sum over the 8 lanes of an x-block (lane groups 0-7, 8-15, ...). */
__device__ __forceinline__ float xb_sum(float v) {
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

/* Quantizes this lane's 4 inputs y of x-block xb of row r into the pack
 * (cu_act_quant_block's rule; the 8 lanes of the x-block cooperate), after
 * storing them as f32 for a model with float weights. Every lane of the
 * warp calls it; `store` false only skips the stores. */
__device__ __forceinline__ void pack_quant4(const cu_model &M, const cu_pack &pk, int r, int xb,
                                            float4 y, bool store) {
    const int lane = threadIdx.x % CU_WARP, sub = lane & 7;
    if (M.has_float && store) pk.xf[((size_t)r * 2 + (sub & 1)) * pk.XB * 4 + xb * 4 + sub / 2] = y;
    if (M.has_float == 2) return; /* every matmul reads the f32 copy: no codes, no shuffles */
    float amax = fmaxf(fmaxf(fabsf(y.x), fabsf(y.y)), fmaxf(fabsf(y.z), fabsf(y.w)));
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    const float id = amax > 0.0f ? 127.0f / amax : 0.0f;
    const int q0 = __float2int_rn(y.x * id), q1 = __float2int_rn(y.y * id),
              q2 = __float2int_rn(y.z * id), q3 = __float2int_rn(y.w * id);
    int hs = q0 + q1 + q2 + q3; /* then the sum over inputs 0-15 or 16-31 of the block */
    hs += __shfl_xor_sync(0xffffffffu, hs, 1);
    hs += __shfl_xor_sync(0xffffffffu, hs, 2);
    const int s1 = __shfl_sync(0xffffffffu, hs, (lane + 4) & 31);
    if (!store) return;
    const size_t at = (size_t)r * pk.XB + xb;
    const uint32_t w = ((uint32_t)q0 & 0xffu) | ((uint32_t)q1 & 0xffu) << 8 |
                       ((uint32_t)q2 & 0xffu) << 16 | ((uint32_t)q3 & 0xffu) << 24;
    ((uint32_t *)(sub < 4 ? &pk.xlo[at] : &pk.xhi[at]))[sub & 3] = w;
    if (sub == 0) { /* .w: the norm's partial sum of squares (pack_build) */
        float4 *m = &pk.xm[at];
        m->x = amax / 127.0f, m->y = __int_as_float(hs), m->z = __int_as_float(s1);
    }
}

/* Tasks a warp of pack_tasks loads before any arithmetic, for a matmul of
 * weight type WT: at one row a row is at most one task a warp (12 tasks at
 * 3072 inputs, 16 at 8192 plain), so a second would be code that never
 * runs. Float weights keep two there: their pack is a store a float4, and
 * with one ptxas gave F16's gate|up kernel 98 registers instead of 118 and
 * it took 1.2-1.5 us a layer longer (2026-11-29-cuda-h200-10.md). */
template <int NR, int WT> __host__ __device__ constexpr int pack_tasks_ahead() {
    return NR == 1 && !is_float_wt<WT>() ? 1 : 2;
}

/* K: the inputs the matmul reads (its n_in, a multiple of 32; s.ld of them
 * are real). NW: the warps that build it (thread ids 0 .. 32 NW - 1;
 * NW <= CU_DEC_WARPS_MAX).
 *
 * RMSNorm in one pass: what is quantized is x * gamma, not x * rstd *
 * gamma, and the consumer multiplies its finished dot products by
 * pk.rstd[r] (item_epilogue). The int8 codes are the same either way up
 * to float rounding (the quantizer is scale-invariant and rstd is one
 * number per row), and the pack costs one L2 round trip instead of two:
 * it would otherwise wait for the row's sum of squares before quantizing. */
/* pack_build's tasks with V float4s per lane (128 V inputs of one row a
 * task), TM a warp at once; NORM: the source is normalized (gamma loads,
 * partial sums). The arithmetic pass over a task's V float4s is one rolled
 * body, the float4s shifted down a slot each pass: every copy of
 * pack_quant4 is code that each launch fetches cold (cuda-notes (20)), and
 * one body runs the same instructions in the same order. */
template <int V, bool NORM, int NR, int NW, int TM>
__device__ __forceinline__ void pack_tasks(const cu_model &M, const pack_src &s, int K, int n_rows,
                                           const cu_pack &pk) {
    constexpr int TI = 32 * 4 * V;
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP, nxb = K / 32;
    const int tpr = (K + TI - 1) / TI, n_tasks = NR * tpr;
    CU_COLD_LOOP
    for (int t0 = warp; t0 < n_tasks; t0 += TM * NW) {
        float4 v[TM][V], g[TM][V];
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int t = t0 + i * NW, r = row_of_entry<NR>(t, tpr);
            const int k0 = (t - r * tpr) * TI + lane * 4;
            const bool live = t < n_tasks && r < n_rows; /* warp-uniform */
#pragma unroll
            for (int u = 0; u < V; u++) {
                const int k = k0 + 128 * u;
                v[i][u] = g[i][u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
                if (live && k < K) {
                    v[i][u] = pack_value4(M.embd, s, r, k);
                    if (NORM) g[i][u] = gamma4(s.gamma, k, s.ld);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < TM; i++) {
            const int t = t0 + i * NW, r = row_of_entry<NR>(t, tpr);
            const int k0 = (t - r * tpr) * TI + lane * 4;
            if (t >= n_tasks) break; /* warp-uniform */
            const bool live = r < n_rows;
            CU_COLD_LOOP
            for (int u = 0; u < V; u++) {
                const int k = k0 + 128 * u, xb = k / 32;
                const float4 x = v[i][0], gm = g[i][0];
#pragma unroll
                for (int j = 0; j + 1 < V; j++) v[i][j] = v[i][j + 1], g[i][j] = g[i][j + 1];
                float4 y = x;
                if (NORM) {
                    /* the x-block's sum of squares, into xm[].w (a fixed-order
                     * tree of 8 lanes: the same whatever NW is) */
                    float sq = xb_sum(sumsq4(x));
                    if (live && xb < nxb && (lane & 7) == 0) pk.xm[(size_t)r * pk.XB + xb].w = sq;
                    if (s.resid_out && blockIdx.x == 0 && live && xb < nxb) {
                        const float e[4] = {x.x, x.y, x.z, x.w};
#pragma unroll
                        for (int j = 0; j < 4; j++)
                            if (k + j < s.ld) s.resid_out[(size_t)r * s.ld + k + j] = e[j];
                    }
                    y = make_float4(x.x * gm.x, x.y * gm.y, x.z * gm.z, x.w * gm.w);
                }
                pack_quant4(M, pk, r, xb, y, xb < nxb);
            }
        }
    }
}

/* rstd of rows < n_rows from the x-blocks' sums of squares in xm[].w (nxb
 * of them, ld real inputs): warp r sums row r's partials, lane-strided,
 * then the warp tree (a fixed order, whoever wrote the sums). Ends with a
 * barrier. */
template <int NW>
__device__ __forceinline__ void pack_rstd(const cu_model &M, const cu_pack &pk, int nxb, int ld,
                                          int n_rows) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    CU_COLD_LOOP
    for (int r = warp; r < n_rows; r += NW) {
        float t = 0.0f;
        CU_COLD_LOOP
        for (int xb = lane; xb < nxb; xb += 32) t += pk.xm[(size_t)r * pk.XB + xb].w;
        t = warp_sum(t);
        if (lane == 0) pk.rstd[r] = 1.0f / sqrtf(t / (float)ld + M.eps);
    }
    cta_sync<NW * CU_WARP>();
}

/* A pack quantized once a step into global memory (cu_model.hq, xq:
 * int8 lo [CU_MAX_ROWS][XB], hi, then float4 xm), as a cu_pack that
 * pack_quant4 writes and pack_copy reads (integer weights only: no f32
 * copies, no row data). */
__device__ __forceinline__ cu_pack pack_global(uint4 *base, int XB) {
    cu_pack g = {};
    g.XB = XB;
    g.xlo = base;
    g.xhi = base + (size_t)CU_MAX_ROWS * XB;
    g.xm = (float4 *)(base + (size_t)2 * CU_MAX_ROWS * XB);
    return g;
}

/* The block's pack from a global one (pack_global): rows < n_rows copied,
 * the others up to NR as zeros, by the block's NTH threads, U entries a
 * thread a pass (all their loads before any store). At one row a thread
 * has at most one entry (dim / 32 and ffn / 32 are below NTH for the
 * models we run), so U is 1 there: the second entry's code would never
 * run but would sit in the fetched lines. Ends with a barrier. */
template <int NR, int NTH>
__device__ __forceinline__ void pack_copy(const cu_pack &src, int n_rows, const cu_pack &pk) {
    constexpr int U = NR == 1 ? 1 : 2;
    const int XBs = src.XB, n = NR * XBs;
    const uint4 *lo = src.xlo, *hi = src.xhi;
    const float4 *m = src.xm;
    CU_COLD_LOOP
    for (int i0 = threadIdx.x; i0 < n; i0 += U * NTH) {
        uint4 a[U], b[U];
        float4 c[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int i = i0 + u * NTH, r = row_of_entry<NR>(i, XBs);
            a[u] = b[u] = make_uint4(0, 0, 0, 0);
            c[u] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (i < n && r < n_rows)
                a[u] = __ldcg(lo + i), b[u] = __ldcg(hi + i), c[u] = __ldcg(m + i);
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int i = i0 + u * NTH, r = row_of_entry<NR>(i, XBs), xb = i - r * XBs;
            if (i < n) {
                const size_t at = (size_t)r * pk.XB + xb;
                pk.xlo[at] = a[u], pk.xhi[at] = b[u], pk.xm[at] = c[u];
            }
        }
    }
    cta_sync<NTH>();
}

template <int NR, int WT, int NW = CU_DEC_WARPS>
__device__ __forceinline__ void pack_build(const cu_model &M, const pack_src &s, int K, int n_rows,
                                           const cu_pack &pk) {
    /* Small tasks spread the quantization's shuffle chains over every warp
     * (a 3072-wide normalized row is 12 tasks); a warp loads at most 2
     * tasks before any arithmetic, which keeps the pack's registers (the
     * GEMV's first chunks are live across it) from spilling. Plain sources (no gamma to
     * load) take tasks twice as long, so that the 8192-wide down input is
     * one round trip too. */
    const int nxb = K / 32;
    const bool norm = s.gamma != nullptr;
    if (norm)
        pack_tasks<2, true, NR, NW, pack_tasks_ahead<NR, WT>()>(M, s, K, n_rows, pk);
    else
        pack_tasks<4, false, NR, NW, pack_tasks_ahead<NR, WT>()>(M, s, K, n_rows, pk);
    cta_sync<NW * CU_WARP>();
    if (norm) pack_rstd<NW>(M, pk, nxb, s.ld, n_rows);
}

#endif
