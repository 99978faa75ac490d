/*
 * Role attention, prefill form: causal attention of a tile of up to 64
 * consecutive positions of one sequence against its paged K/V, on tensor
 * cores, flash style (online softmax, nothing of size tile x context is
 * ever stored, so scratch does not grow with the prompt).
 *
 * Block = (tile, query head), 4 warps; warp w owns query rows 16w..16w+15;
 * the tiles with the most keys (the last of a causal prompt) are the first
 * blocks, so the longest blocks start first. Per key tile of 64 positions,
 * K and V [64][hd] go to shared memory as the cache stores them (f16:
 * cp.async into a double buffer, the next tile in flight while this one
 * is used; int8 caches are dequantized through registers), S = Q K^T with
 * m16n8k16 HMMA in f32 (K fragments by ldmatrix), causal / sliding-window
 * mask, online softmax in registers, then the probabilities are reused
 * directly as the A operand of O += P V (the accumulator layout of two n8
 * tiles is the A layout of one k16 step; V fragments by ldmatrix.trans).
 *
 * Bytes: K and V of the visible positions once per (tile, head) from L2;
 * FLOPs 4 * tile * keys * hd per head (half of it masked on the diagonal).
 */
#include "backend/cuda/attention.cuh"
#include "backend/cuda/kernels.h"

#define AT_Q 64 /* query rows per tile */
#define AT_K 64 /* keys per step */

/* Shared memory of one block: K and V, two buffers each. */
template <int HD> constexpr size_t at_smem_bytes() { return (size_t)4 * AT_K * (HD + 8) * 2; }

/* Positions [kb, kb + AT_K) of K and V into Ks, Vs (positions past hi as
 * zeros): f16 by cp.async (committed, not waited for), int8 dequantized. */
template <int HD, int KV>
__device__ __forceinline__ void at_load_kv(const cu_model &M, int layer, const int *pt, int kvh,
                                           int kb, int hi, __half (*Ks)[HD + 8],
                                           __half (*Vs)[HD + 8]) {
    for (int c = threadIdx.x; c < AT_K * (HD / 8); c += 128) {
        const int row = c / (HD / 8), ch = c % (HD / 8), tpos = kb + row;
        const bool ok = tpos <= hi;
        const int page = ok ? pt[tpos / ZT_KV_PAGE_CU] : 0, slot = tpos % ZT_KV_PAGE_CU;
        const size_t off = kv_offset(M, layer, page, kvh, slot) + ch * 8;
        if constexpr (KV == CU_KV_F16) {
            cp_async16(&Ks[row][ch * 8], M.kc + off * 2, ok ? 16 : 0);
            cp_async16(&Vs[row][ch * 8], M.vc + off * 2, ok ? 16 : 0);
        } else {
            float v8[8], k8[8];
            if (ok) {
                const size_t soff = kv_scale_offset(M, layer, page, kvh, slot);
                kv_load8<KV>(M.kc, M.ks, off, soff, k8);
                kv_load8<KV>(M.vc, M.vs, off, soff, v8);
            } else {
#pragma unroll
                for (int e = 0; e < 8; e++) k8[e] = v8[e] = 0.0f;
            }
            *reinterpret_cast<uint4 *>(&Ks[row][ch * 8]) =
                make_uint4(pack_half2(k8[0], k8[1]), pack_half2(k8[2], k8[3]),
                           pack_half2(k8[4], k8[5]), pack_half2(k8[6], k8[7]));
            *reinterpret_cast<uint4 *>(&Vs[row][ch * 8]) =
                make_uint4(pack_half2(v8[0], v8[1]), pack_half2(v8[2], v8[3]),
                           pack_half2(v8[4], v8[5]), pack_half2(v8[6], v8[7]));
        }
    }
    cp_async_commit();
}

template <int HD, int KV>
__global__ void __launch_bounds__(128)
    cu_attn_tile_kernel(cu_model M, int layer, const cu_attn_tile *tiles, const __half *q16,
                        __half *out16) {
    constexpr int KS = HD + 8, NKK = HD / 16, NDT = HD / 8;
    /* rows of 2 HD + 16 bytes: 8 consecutive rows fall in 8 distinct 16-byte
     * bank groups, so ldmatrix is conflict-free */
    extern __shared__ __align__(16) uint8_t at_smem[];
    __half(*Ks)[AT_K][KS] = reinterpret_cast<__half(*)[AT_K][KS]>(at_smem);
    __half(*Vs)[AT_K][KS] = reinterpret_cast<__half(*)[AT_K][KS]>(at_smem) + 2;

    const cu_step &st = *M.step;
    const cu_attn_tile tile = tiles[gridDim.x - 1 - blockIdx.x];
    const int h = blockIdx.y, kvh = h / (M.n_heads / M.n_kv);
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5, g = lane >> 2, t = lane & 3;
    const int lr = lane & 7, lm = lane >> 3;
    const int p0 = st.pos[tile.row0], n = tile.n;
    const int *pt = st.pt + (size_t)st.cseq[tile.row0] * st.pt_stride;
    const int hi = p0 + n - 1;
    const int lo = M.window > 0 ? max(0, p0 - M.window + 1) : 0;
    const float sl2 = M.attn_scale * 1.4426950408889634f; /* scores in log2 units */
    const int kb0 = (lo / AT_K) * AT_K;
    at_load_kv<HD, KV>(M, layer, pt, kvh, kb0, hi, Ks[0], Vs[0]);

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

    for (int kb = kb0, buf = 0; kb <= hi; kb += AT_K, buf ^= 1) {
        /* this tile's copies are done and every thread is past the last
         * use of the other buffer: refill that one while this is used */
        cp_async_wait_all();
        __syncthreads();
        if (kb + AT_K <= hi)
            at_load_kv<HD, KV>(M, layer, pt, kvh, kb + AT_K, hi, Ks[buf ^ 1], Vs[buf ^ 1]);

        /* S = Q K^T for 16 rows x 64 keys */
        float s[8][4];
#pragma unroll
        for (int j = 0; j < 8; j++) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.0f;
#pragma unroll
        for (int kk = 0; kk < NKK; kk++)
#pragma unroll
            for (int j = 0; j < 8; j += 2) {
                uint32_t r[4];
                ldsm_x4(r, &Ks[buf][j * 8 + (lm >> 1) * 8 + lr][kk * 16 + (lm & 1) * 8]);
                mma_16816(s[j], qa[kk], r[0], r[1]);
                mma_16816(s[j + 1], qa[kk], r[2], r[3]);
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
            for (int i = 0; i < NDT; i += 2) {
                uint32_t r[4];
                ldsm_x4_trans(r, &Vs[buf][kk * 16 + (lm & 1) * 8 + lr][i * 8 + (lm >> 1) * 8]);
                mma_16816(o[i], pa, r[0], r[1]);
                mma_16816(o[i + 1], pa, r[2], r[3]);
            }
        }
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

template <int HD> static void *tile_fn(int kv) {
    return kv == CU_KV_Q8 ? (void *)cu_attn_tile_kernel<HD, CU_KV_Q8>
                          : (void *)cu_attn_tile_kernel<HD, CU_KV_F16>;
}

/* The kernel and its shared memory for head size hd (nullptr: none). */
static void *tile_kernel(int hd, int kv, size_t *smem) {
    switch (hd) {
    case 64:
        return *smem = at_smem_bytes<64>(), tile_fn<64>(kv);
    case 80:
        return *smem = at_smem_bytes<80>(), tile_fn<80>(kv);
    case 96:
        return *smem = at_smem_bytes<96>(), tile_fn<96>(kv);
    case 128:
        return *smem = at_smem_bytes<128>(), tile_fn<128>(kv);
    default:
        return nullptr;
    }
}

cudaError_t cu_attn_tiles_setup(void) {
    const int hds[4] = {64, 80, 96, 128};
    for (int i = 0; i < 4; i++)
        for (int kv = 0; kv < 2; kv++) {
            size_t smem = 0;
            void *fn = tile_kernel(hds[i], kv == 0 ? CU_KV_F16 : CU_KV_Q8, &smem);
            cudaError_t e =
                cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
            if (e != cudaSuccess) return e;
        }
    return cudaSuccess;
}

cudaError_t cu_attn_tiles_launch(const cu_model &M, int layer, const cu_attn_tile *tiles,
                                 int n_tiles, const __half *q16, __half *out16, cudaStream_t s) {
    if (n_tiles <= 0) return cudaSuccess;
    size_t smem = 0;
    void *fn = tile_kernel(M.hd, M.kv_type, &smem);
    if (!fn) return cudaErrorInvalidValue;
    cu_model Mc = M;
    void *args[] = {(void *)&Mc, (void *)&layer, (void *)&tiles, (void *)&q16, (void *)&out16};
    return cudaLaunchKernel(fn, dim3(n_tiles, M.n_heads), dim3(128), args, smem, s);
}
