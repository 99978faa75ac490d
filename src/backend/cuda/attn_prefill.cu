/*
 * Role attention, prefill form: causal attention of a tile of up to 64
 * consecutive positions of one sequence against its paged K/V, on tensor
 * cores, flash style (online softmax, nothing of size tile x context is
 * ever stored, so scratch does not grow with the prompt).
 *
 * Block = (tile, query head), 4 warps; warp w owns query rows 16w..16w+15.
 * Per key tile of 64 positions: K [64][hd] and V^T [hd][64] go to shared
 * memory (f16; int8 caches are dequantized on the way), S = Q K^T with
 * m16n8k16 HMMA in f32, causal / sliding-window mask, online softmax in
 * registers, then the probabilities are reused directly as the A operand
 * of O += P V (the accumulator layout of two n8 tiles is the A layout of
 * one k16 step).
 *
 * Bytes: K and V of the visible positions once per (tile, head) from L2;
 * FLOPs 4 * tile * keys * hd per head (half of it masked on the diagonal).
 */
#include "backend/cuda/attention.cuh"
#include "backend/cuda/kernels.h"

#define AT_Q 64 /* query rows per tile */
#define AT_K 64 /* keys per step */

__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<uint32_t *>(&h);
}

__device__ __forceinline__ void mma16816(float c[4], const uint32_t a[4], uint32_t b0,
                                         uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int HD, int KV>
__global__ void __launch_bounds__(128)
    cu_attn_tile_kernel(cu_model M, int layer, const cu_attn_tile *tiles, const __half *q16,
                        __half *out16) {
    constexpr int KS = HD + 8, VS = AT_K + 8, NKK = HD / 16, NDT = HD / 8;
    __shared__ __align__(16) __half Ks[AT_K][KS];
    __shared__ __align__(16) __half Vt[HD][VS];

    const cu_step &st = *M.step;
    const cu_attn_tile tile = tiles[blockIdx.x];
    const int h = blockIdx.y, kvh = h / (M.n_heads / M.n_kv);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int p0 = st.pos[tile.row0], n = tile.n;
    const int *pt = st.pt + (size_t)st.cseq[tile.row0] * st.pt_stride;
    const int hi = p0 + n - 1;
    const int lo = M.window > 0 ? max(0, p0 - M.window + 1) : 0;
    const float sl2 = M.attn_scale * 1.4426950408889634f; /* scores in log2 units */

    /* Q fragments of this warp's 16 rows (rows past the tile are zero) */
    uint32_t qa[NKK][4];
    {
        const int r0 = warp * 16 + g, r1 = r0 + 8;
        const uint32_t *q0 = (const uint32_t *)(q16 + (size_t)(tile.row0 + r0) * M.q_dim + h * HD);
        const uint32_t *q1 = (const uint32_t *)(q16 + (size_t)(tile.row0 + r1) * M.q_dim + h * HD);
#pragma unroll
        for (int kk = 0; kk < NKK; kk++) {
            qa[kk][0] = r0 < n ? q0[kk * 8 + t] : 0u;
            qa[kk][1] = r1 < n ? q1[kk * 8 + t] : 0u;
            qa[kk][2] = r0 < n ? q0[kk * 8 + t + 4] : 0u;
            qa[kk][3] = r1 < n ? q1[kk * 8 + t + 4] : 0u;
        }
    }
    float o[NDT][4];
#pragma unroll
    for (int i = 0; i < NDT; i++) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    float mrow[2] = {-INFINITY, -INFINITY}, lrow[2] = {0.0f, 0.0f};
    const int qpos[2] = {p0 + warp * 16 + g, p0 + warp * 16 + g + 8};
    const bool qok[2] = {warp * 16 + g < n, warp * 16 + g + 8 < n};

    for (int kb = (lo / AT_K) * AT_K; kb <= hi; kb += AT_K) {
        /* K and V^T tiles; positions past hi are zero */
        for (int c = tid; c < AT_K * (HD / 8); c += 128) {
            int row = c / (HD / 8), ch = c % (HD / 8), tpos = kb + row;
            float v8[8], k8[8];
            if (tpos <= hi) {
                int page = pt[tpos / ZT_KV_PAGE_CU], slot = tpos % ZT_KV_PAGE_CU;
                size_t off = kv_offset(M, layer, page, kvh, slot) + ch * 8;
                size_t soff = kv_scale_offset(M, layer, page, kvh, slot);
                kv_load8<KV>(M.kc, M.ks, off, soff, k8);
                kv_load8<KV>(M.vc, M.vs, off, soff, v8);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) k8[e] = v8[e] = 0.0f;
            }
            uint4 kw = make_uint4(pack_half2(k8[0], k8[1]), pack_half2(k8[2], k8[3]),
                                  pack_half2(k8[4], k8[5]), pack_half2(k8[6], k8[7]));
            *reinterpret_cast<uint4 *>(&Ks[row][ch * 8]) = kw;
#pragma unroll
            for (int e = 0; e < 8; e++) Vt[ch * 8 + e][row] = __float2half(v8[e]);
        }
        __syncthreads();

        /* S = Q K^T for 16 rows x 64 keys */
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < NKK; kk++)
#pragma unroll
            for (int j = 0; j < 8; j++) {
                uint32_t b0 = *reinterpret_cast<const uint32_t *>(&Ks[j * 8 + g][kk * 16 + 2 * t]);
                uint32_t b1 =
                    *reinterpret_cast<const uint32_t *>(&Ks[j * 8 + g][kk * 16 + 2 * t + 8]);
                mma16816(s[j], qa[kk], b0, b1);
            }

        /* mask, online softmax */
        float mnew[2] = {mrow[0], mrow[1]};
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int half = e >> 1, key = kb + j * 8 + 2 * t + (e & 1);
                bool ok = qok[half] && key <= qpos[half] && key >= lo &&
                          (M.window <= 0 || qpos[half] - key < M.window);
                s[j][e] = ok ? s[j][e] * sl2 : -INFINITY;
                mnew[half] = fmaxf(mnew[half], s[j][e]);
            }
        float alpha[2];
#pragma unroll
        for (int hh = 0; hh < 2; hh++) {
            mnew[hh] = fmaxf(mnew[hh], __shfl_xor_sync(0xffffffffu, mnew[hh], 1));
            mnew[hh] = fmaxf(mnew[hh], __shfl_xor_sync(0xffffffffu, mnew[hh], 2));
            alpha[hh] = mnew[hh] == -INFINITY ? 1.0f : exp2f(mrow[hh] - mnew[hh]);
            mrow[hh] = mnew[hh];
            lrow[hh] *= alpha[hh];
        }
#pragma unroll
        for (int j = 0; j < 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int hh = e >> 1;
                float p = mrow[hh] == -INFINITY ? 0.0f : exp2f(s[j][e] - mrow[hh]);
                s[j][e] = p;
                lrow[hh] += p;
            }
#pragma unroll
        for (int i = 0; i < NDT; i++) {
            o[i][0] *= alpha[0], o[i][1] *= alpha[0];
            o[i][2] *= alpha[1], o[i][3] *= alpha[1];
        }

        /* O += P V */
#pragma unroll
        for (int kk = 0; kk < AT_K / 16; kk++) {
            uint32_t pa[4] = {pack_half2(s[2 * kk][0], s[2 * kk][1]),
                              pack_half2(s[2 * kk][2], s[2 * kk][3]),
                              pack_half2(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack_half2(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
            for (int i = 0; i < NDT; i++) {
                uint32_t b0 = *reinterpret_cast<const uint32_t *>(&Vt[i * 8 + g][kk * 16 + 2 * t]);
                uint32_t b1 =
                    *reinterpret_cast<const uint32_t *>(&Vt[i * 8 + g][kk * 16 + 2 * t + 8]);
                mma16816(o[i], pa, b0, b1);
            }
        }
        __syncthreads();
    }

    /* the row sums live spread over the quad */
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        lrow[hh] += __shfl_xor_sync(0xffffffffu, lrow[hh], 1);
        lrow[hh] += __shfl_xor_sync(0xffffffffu, lrow[hh], 2);
    }
#pragma unroll
    for (int hh = 0; hh < 2; hh++) {
        if (!qok[hh]) continue;
        float inv = lrow[hh] > 0.0f ? 1.0f / lrow[hh] : 0.0f;
        int r = tile.row0 + warp * 16 + g + hh * 8;
        __half *dst = out16 + (size_t)r * M.q_dim_p + h * HD;
#pragma unroll
        for (int i = 0; i < NDT; i++)
            *reinterpret_cast<__half2 *>(dst + i * 8 + 2 * t) =
                __floats2half2_rn(o[i][2 * hh] * inv, o[i][2 * hh + 1] * inv);
    }
}

bool cu_attn_tiles_supported(int hd) { return hd == 64 || hd == 80 || hd == 96 || hd == 128; }

template <int HD>
static cudaError_t launch_hd(const cu_model &M, int layer, const cu_attn_tile *tiles, int n_tiles,
                             const __half *q16, __half *out16, cudaStream_t s) {
    dim3 grid(n_tiles, M.n_heads);
    if (M.kv_type == CU_KV_Q8)
        cu_attn_tile_kernel<HD, CU_KV_Q8><<<grid, 128, 0, s>>>(M, layer, tiles, q16, out16);
    else
        cu_attn_tile_kernel<HD, CU_KV_F16><<<grid, 128, 0, s>>>(M, layer, tiles, q16, out16);
    return cudaGetLastError();
}

cudaError_t cu_attn_tiles_launch(const cu_model &M, int layer, const cu_attn_tile *tiles,
                                 int n_tiles, const __half *q16, __half *out16, cudaStream_t s) {
    if (n_tiles <= 0) return cudaSuccess;
    switch (M.hd) {
    case 64:
        return launch_hd<64>(M, layer, tiles, n_tiles, q16, out16, s);
    case 80:
        return launch_hd<80>(M, layer, tiles, n_tiles, q16, out16, s);
    case 96:
        return launch_hd<96>(M, layer, tiles, n_tiles, q16, out16, s);
    case 128:
        return launch_hd<128>(M, layer, tiles, n_tiles, q16, out16, s);
    default:
        return cudaErrorInvalidValue;
    }
}
