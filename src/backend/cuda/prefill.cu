/*
 * Row-parallel kernels of the batched (prefill) path: one block per row,
 * each a single pass over its row.
 *
 *   embed    role embed: dequantize the token's row of the table
 *   rmsnorm  role add_rmsnorm (the add happened in the GEMM epilogue):
 *            f16 output, the tensor-core GEMM's A operand
 *   rope_kv  role qkv's tail: bias + RoPE on the GEMM's f32 output, q to
 *            f16, K/V into the paged cache (int8 with a per-(position,
 *            head) scale when the cache is q8: role kv_quant)
 *   silu     role ffn's tail: silu(gate) * up -> f16, where the gate|up
 *            GEMM could not do it in its epilogue (split K, or gate and
 *            up of different types)
 *   argmax   role sample: greedy token of each logits row
 *
 * Bytes: each reads and writes its rows once; all are small next to the
 * GEMMs (a 512-row layer of Phi-3-mini on the H100: rope_kv 19 us, the
 * two rmsnorms 6 us each, against ~0.5 ms of GEMM; ncu, bench/results/
 * 2026-11-27-cuda-h100-4.md).
 */
#include "backend/cuda/attention.cuh"
#include "backend/cuda/kernels.h"

__device__ __forceinline__ float block_sum(float v, float *red) {
    v = warp_sum(v);
    if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
    __syncthreads();
    float t = 0.0f;
    for (int w = 0; w < (int)(blockDim.x >> 5); w++) t += red[w];
    __syncthreads();
    return t;
}

__global__ void cu_embed_kernel(cu_model M, const int *token, float *x) {
    const int r = blockIdx.x;
    const cu_streams s = {M.embd.wt, M.embd.n_in, M.embd.q, M.embd.a1, M.embd.a2, M.embd.a3};
    for (int k = threadIdx.x; k < M.dim; k += blockDim.x)
        x[(size_t)r * M.dim + k] = cu_dequant_elem(&s, token[r], k);
}

cudaError_t cu_embed_launch(const cu_model &M, int n, const int *token, float *x, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    cu_embed_kernel<<<n, 256, 0, s>>>(M, token, x);
    return cudaGetLastError();
}

/* One pass: the row stays in registers between the sum of squares and the
 * scaling (RN_PER float4s a thread: rows up to 4 RN_PER x 256 inputs; the
 * rest of a longer row is read again, from L2). */
#define RN_PER 4
__global__ void cu_rmsnorm_kernel(cu_model M, const float *x, const int *row_map,
                                  const float *gamma, __half *y) {
    __shared__ float red[32];
    const int r = blockIdx.x, src = row_map ? row_map[r] : r, n4 = M.dim / 4;
    const float *xr = x + (size_t)src * M.dim;
    const float4 *x4 = reinterpret_cast<const float4 *>(xr);
    const bool vec = (M.dim & 3) == 0; /* rows 16-byte aligned, whole float4s */
    float4 v[RN_PER];
    float ss = 0.0f;
#pragma unroll
    for (int i = 0; i < RN_PER; i++) {
        const int k4 = threadIdx.x + i * blockDim.x;
        v[i] = vec && k4 < n4 ? x4[k4] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        ss += v[i].x * v[i].x + v[i].y * v[i].y + v[i].z * v[i].z + v[i].w * v[i].w;
    }
    const int done = vec ? min(n4, RN_PER * (int)blockDim.x) * 4 : 0;
    for (int k = done + threadIdx.x; k < M.dim; k += blockDim.x) ss += xr[k] * xr[k];
    const float rstd = 1.0f / sqrtf(block_sum(ss, red) / (float)M.dim + M.eps);
    __half *yr = y + (size_t)r * M.dim_p;
#pragma unroll
    for (int i = 0; i < RN_PER; i++) {
        const int k = (threadIdx.x + i * blockDim.x) * 4;
        if (k >= done) break;
        const float4 g = *reinterpret_cast<const float4 *>(gamma + k);
        __half2 *o = reinterpret_cast<__half2 *>(yr + k);
        o[0] = __floats2half2_rn(v[i].x * rstd * g.x, v[i].y * rstd * g.y);
        o[1] = __floats2half2_rn(v[i].z * rstd * g.z, v[i].w * rstd * g.w);
    }
    for (int k = done + threadIdx.x; k < M.dim; k += blockDim.x)
        yr[k] = __float2half(xr[k] * rstd * gamma[k]);
}

cudaError_t cu_rmsnorm_launch(const cu_model &M, int n, const float *x, const int *row_map,
                              const float *gamma, __half *y, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    cu_rmsnorm_kernel<<<n, 256, 0, s>>>(M, x, row_map, gamma, y);
    return cudaGetLastError();
}

/* Block per row: the row's rotations, then bias + RoPE on its QKV sums,
 * q out as f16, K and V through shared memory; then each warp takes
 * (kv head, K or V) vectors and writes them to the cache. The sums are
 * read once and not written back (nothing reads them again): 4 qkv_dim
 * bytes in, 2 q_dim plus the cache's bytes out a row (writing them back
 * in place and reading K and V again moved 2.1x that: 28 us a 512-row
 * layer of Phi-3-mini on the H100, 22 us without it; 19 with the
 * rotations once a row). */
__global__ void cu_rope_kv_kernel(cu_model M, int layer, const float *qkv, const float *bias,
                                  __half *q16) {
    extern __shared__ float kv[];                /* [2][kv_dim]: roped K, then V; then rot */
    float2 *rot = (float2 *)(kv + 2 * M.kv_dim); /* [rope_half] (cos, sin) of this row */
    const int r = blockIdx.x;
    const cu_step &st = *M.step;
    const int pos = st.pos[r];
    const float *row = qkv + (size_t)r * M.qkv_dim;
    /* the row's rotations once (every rotated head shares them): rope_half
     * sincosf a row instead of one a pair, 64x fewer for Phi-3 */
    for (int j = threadIdx.x; j < M.rope_half; j += blockDim.x) {
        float sn, cs;
        sincosf((float)pos * M.inv_freq[j], &sn, &cs);
        rot[j] = make_float2(cs, sn);
    }
    __syncthreads();
    /* RU pairs a thread loaded before any of their stores: the compiler
     * cannot move a load above a store to q16 (it may alias the sums), so
     * a pair at a time was one L2 round trip each, 18 a row for Phi-3's
     * 4,608 pairs: 14.6 us a layer for a 32-row decode batch (ncu, H200) */
    constexpr int RU = 6;
    const int n_pairs = M.qkv_dim / 2;
    for (int p0 = threadIdx.x; p0 < n_pairs; p0 += RU * blockDim.x) {
        int a[RU], b[RU], j[RU];
        float va[RU], vb[RU];
#pragma unroll
        for (int u = 0; u < RU; u++) {
            const int p = p0 + u * blockDim.x;
            a[u] = b[u] = 0, j[u] = -1, va[u] = vb[u] = 0.0f;
            if (p < n_pairs) {
                qkv_pair(M, p, a[u], b[u], j[u]);
                va[u] = row[a[u]], vb[u] = row[b[u]];
                if (bias) va[u] += bias[a[u]], vb[u] += bias[b[u]];
            }
        }
#pragma unroll
        for (int u = 0; u < RU; u++) {
            if (p0 + u * blockDim.x >= n_pairs) break;
            if (j[u] >= 0) {
                const float2 cs = rot[j[u]];
                const float x0 = va[u], x1 = vb[u];
                va[u] = x0 * cs.x - x1 * cs.y;
                vb[u] = x0 * cs.y + x1 * cs.x;
            }
            if (a[u] < M.q_dim) {
                q16[(size_t)r * M.q_dim + a[u]] = __float2half(va[u]);
                q16[(size_t)r * M.q_dim + b[u]] = __float2half(vb[u]);
            } else {
                kv[a[u] - M.q_dim] = va[u], kv[b[u] - M.q_dim] = vb[u];
            }
        }
    }
    __syncthreads();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    const int page = st.pt[(size_t)st.cseq[r] * st.pt_stride + pos / ZT_KV_PAGE_CU];
    const int slot = pos % ZT_KV_PAGE_CU;
    for (int it = warp; it < 2 * M.n_kv; it += nw) {
        int which = it / M.n_kv, kvh = it % M.n_kv;
        const float *src = kv + which * M.kv_dim + kvh * M.hd;
        size_t off = kv_offset(M, layer, page, kvh, slot);
        if (M.kv_type == CU_KV_Q8) {
            float amax = 0.0f;
            for (int d = lane; d < M.hd; d += 32) amax = fmaxf(amax, fabsf(src[d]));
            amax = warp_max(amax);
            float id = amax > 0.0f ? 127.0f / amax : 0.0f;
            int8_t *dst = (int8_t *)(which ? M.vc : M.kc) + off;
            for (int d = lane; d < M.hd; d += 32) dst[d] = (int8_t)__float2int_rn(src[d] * id);
            if (lane == 0)
                (which ? M.vs : M.ks)[kv_scale_offset(M, layer, page, kvh, slot)] = amax / 127.0f;
        } else {
            __half *dst = (__half *)(which ? M.vc : M.kc) + off;
            for (int d = lane; d < M.hd; d += 32) dst[d] = __float2half(src[d]);
        }
    }
}

cudaError_t cu_rope_kv_launch(const cu_model &M, int layer, int n, float *qkv, const float *bias,
                              __half *q16, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    const size_t smem = sizeof(float) * 2 * M.kv_dim + sizeof(float2) * M.rope_half;
    if (smem > 48 * 1024) { /* past the default (kv_dim > ~6,000) */
        cudaError_t e = cudaFuncSetAttribute(
            cu_rope_kv_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
        if (e != cudaSuccess) return e;
    }
    cu_rope_kv_kernel<<<n, 256, smem, s>>>(M, layer, qkv, bias, q16);
    return cudaGetLastError();
}

__global__ void cu_silu_kernel(cu_model M, const float *gu, __half *h) {
    const int r = blockIdx.y;
    const float *g = gu + (size_t)r * 2 * M.ffn, *u = g + M.ffn;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < M.ffn; i += gridDim.x * blockDim.x)
        h[(size_t)r * M.ffn_p + i] = __float2half(silu_f(g[i]) * u[i]);
}

cudaError_t cu_silu_launch(const cu_model &M, int n, const float *gu, __half *h, cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    /* an element a thread: with a loop, each load waited for the previous
     * element's store (h may alias gu for the compiler) */
    dim3 grid((M.ffn + 255) / 256, n);
    cu_silu_kernel<<<grid, 256, 0, s>>>(M, gu, h);
    return cudaGetLastError();
}

__global__ void cu_argmax_kernel(cu_model M, const float *logits, int *out) {
    __shared__ float sv[32];
    __shared__ int si[32];
    const int r = blockIdx.x;
    const float *row = logits + (size_t)r * M.vocab;
    float best = -INFINITY;
    int bi = 0x7fffffff;
    for (int v = threadIdx.x; v < M.vocab; v += blockDim.x) argmax_merge(best, bi, row[v], v);
    for (int o = 16; o > 0; o >>= 1) {
        float v2 = __shfl_xor_sync(0xffffffffu, best, o);
        int i2 = __shfl_xor_sync(0xffffffffu, bi, o);
        argmax_merge(best, bi, v2, i2);
    }
    if ((threadIdx.x & 31) == 0) sv[threadIdx.x >> 5] = best, si[threadIdx.x >> 5] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) argmax_merge(best, bi, sv[w], si[w]);
        out[r] = bi == 0x7fffffff ? 0 : bi;
    }
}

cudaError_t cu_argmax_launch(const cu_model &M, int n, const float *logits, int *out,
                             cudaStream_t s) {
    if (n <= 0) return cudaSuccess;
    cu_argmax_kernel<<<n, 512, 0, s>>>(M, logits, out);
    return cudaGetLastError();
}
