/*
 * Role add_rmsnorm's second half and the activation quantizer: builds a
 * decode matmul's input in shared memory, once per block per phase.
 *
 *   norm sources: x = residual row (or, in layer 0, the token's embedding
 *     row dequantized from the repacked table), y = x * rstd * gamma
 *   plain sources: y = a f32 buffer row (attention output, silu * up)
 *
 * then each x-block of y is quantized to int8 (cu_act_quant_block's rule)
 * and, when the model has float weights, also kept as f32. The residual
 * add itself happened in the producing matmul's epilogue, so add_rmsnorm
 * costs no launch and no extra pass over memory: each block rereads the
 * residual (dim floats) from L2.
 *
 * Mapping: a warp per x-block, a lane per element; the block's 12 warps
 * stride over (row, x-block). Rows >= n_rows are packed as zeros.
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

/* Carves the pack out of the dynamic shared memory (sizes: cu_pack_bytes). */
__device__ __forceinline__ cu_pack pack_carve(uint8_t *smem, int XB, int has_float, int rows) {
    cu_pack pk;
    pk.XB = XB;
    size_t n = (size_t)rows * XB;
    pk.xlo = (uint4 *)smem;
    pk.xhi = pk.xlo + n;
    pk.xm = (float4 *)(pk.xhi + n);
    pk.xf = pk.xm + n;
    float *f = (float *)(pk.xf + (has_float ? n * 8 : 0));
    pk.red = f;
    pk.rstd = f + CU_DEC_WARPS * CU_MAX_ROWS * 2;
    pk.rope = (float2 *)(pk.rstd + CU_MAX_ROWS);
    return pk;
}

/* Bytes pack_carve needs for `rows` rows (host and device agree on this). */
__host__ __device__ __forceinline__ size_t cu_pack_bytes(int XB, int has_float, int rows) {
    size_t n = (size_t)rows * XB;
    return n * 48 + (has_float ? n * 128 : 0) + (CU_DEC_WARPS * CU_MAX_ROWS * 2 + CU_MAX_ROWS) * 4 +
           CU_MAX_ROWS * CU_ROPE_HALF_MAX * 8;
}

/* K: the inputs the matmul reads (its n_in, a multiple of 32; s.ld of them
 * are real). NW: the warps that build it (thread ids 0 .. 32 NW - 1;
 * NW <= CU_DEC_WARPS). */
template <int NR, int NW = CU_DEC_WARPS>
__device__ __forceinline__ void pack_build(const cu_model &M, const pack_src &s, int K, int n_rows,
                                           const cu_pack &pk) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP, nxb = K / 32;
    const bool norm = s.gamma != nullptr;
    /* Loads go out U x-blocks at a time per warp before any arithmetic:
     * the sources sit in L2, and one round trip per x-block made the pack
     * latency-bound (~10 us a phase for the 8192-wide down input). */
    constexpr int U = 4; /* 16 at one row measured slower (2.7 vs 1.6 ms of packs a step) */
    if (norm) {
        /* sum of squares: one partial per (row, x-block) in xm[].x (written
         * again below), then summed by warp r in an order fixed by nxb
         * alone, so that the result does not depend on NW (the phase and
         * stream kernels give bit-identical logits) */
        for (int xb0 = warp; xb0 < nxb; xb0 += U * NW) {
            float v[U][NR];
#pragma unroll
            for (int u = 0; u < U; u++) {
                int xb = xb0 + u * NW;
#pragma unroll
                for (int r = 0; r < NR; r++)
                    v[u][r] = xb < nxb && r < n_rows && xb * 32 + lane < s.ld
                                  ? pack_value(M.embd, s, r, xb * 32 + lane)
                                  : 0.0f;
            }
#pragma unroll
            for (int u = 0; u < U; u++) {
                int xb = xb0 + u * NW;
#pragma unroll
                for (int r = 0; r < NR; r++) {
                    float sq = warp_sum(v[u][r] * v[u][r]);
                    if (xb >= nxb || r >= n_rows) continue;
                    if (lane == 0) pk.xm[(size_t)r * pk.XB + xb].x = sq;
                    if (s.resid_out && blockIdx.x == 0 && xb * 32 + lane < s.ld)
                        s.resid_out[(size_t)r * s.ld + xb * 32 + lane] = v[u][r];
                }
            }
        }
        cta_sync<NW * CU_WARP>();
        /* warp r sums row r: lane-strided partials, then the warp tree */
        for (int r = warp; r < NR; r += NW) {
            float t = 0.0f;
            for (int xb = lane; xb < nxb; xb += 32) t += pk.xm[(size_t)r * pk.XB + xb].x;
            t = warp_sum(t);
            if (lane == 0) pk.rstd[r] = 1.0f / sqrtf(t / (float)s.ld + M.eps);
        }
        cta_sync<NW * CU_WARP>();
    }
    for (int task0 = warp; task0 < NR * nxb; task0 += U * NW) {
        float vu[U];
#pragma unroll
        for (int u = 0; u < U; u++) {
            int task = task0 + u * NW, r = task / nxb, k = (task % nxb) * 32 + lane;
            vu[u] = 0.0f;
            if (task < NR * nxb && r < n_rows && k < s.ld) {
                vu[u] = pack_value(M.embd, s, r, k);
                if (norm) vu[u] = vu[u] * pk.rstd[r] * __ldg(s.gamma + k);
            }
        }
#pragma unroll
        for (int u = 0; u < U; u++) {
            const int task = task0 + u * NW, r = task / nxb, xb = task % nxb;
            if (task >= NR * nxb) break;
            const float v = vu[u];
            float amax = warp_max(fabsf(v));
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            int q = __float2int_rn(v * id);
            int hs = q;
#pragma unroll
            for (int o = 8; o > 0; o >>= 1) hs += __shfl_xor_sync(0xffffffffu, hs, o);
            int s1 = __shfl_sync(0xffffffffu, hs, 16);
            uint32_t b = (uint32_t)q & 0xffu;
            uint32_t w = b | (__shfl_down_sync(0xffffffffu, b, 1) << 8) |
                         (__shfl_down_sync(0xffffffffu, b, 2) << 16) |
                         (__shfl_down_sync(0xffffffffu, b, 3) << 24);
            size_t at = (size_t)r * pk.XB + xb;
            if ((lane & 3) == 0) {
                uint32_t *dst = (uint32_t *)(lane < 16 ? &pk.xlo[at] : &pk.xhi[at]);
                dst[(lane & 15) >> 2] = w;
            }
            if (lane == 0)
                pk.xm[at] =
                    make_float4(amax / 127.0f, __int_as_float(hs), __int_as_float(s1), 0.0f);
            if (M.has_float) {
                int unit = xb * 4 + lane / 8, within = lane % 8;
                float *dst = (float *)&pk.xf[((size_t)r * 2 + within / 4) * pk.XB * 4 + unit];
                dst[within % 4] = v;
            }
        }
    }
    cta_sync<NW * CU_WARP>();
}

#endif
