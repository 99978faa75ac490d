/*
 * Role matmul, batched form: C (op)= A . W^T on tensor cores, for prefill
 * and for decode batches too large for the GEMV (more than CU_MAX_ROWS
 * rows). A is f16 activations [M][K]; W is any repacked weight type,
 * dequantized tile by tile into shared memory as f16 (mma.sync on
 * dequantized tiles; no cuBLAS).
 *
 * Tile: BM x 128 outputs, K in steps of 64 (two x-blocks), 256 threads =
 * 8 warps as 2 (M) x 4 (N), each warp BM/2 x 32 with m16n8k16 HMMA and
 * f32 accumulators. Per k-step each thread fetches one x-block of one
 * weight row into registers (16-byte loads) while the tensor cores work
 * on the previous step, then dequantizes it into the other smem buffer;
 * A goes through cp.async. Two buffers, one barrier per step.
 *
 * BM is 32, 64 or 128 by M, so a 32-row decode batch does not pay for 128.
 * Grid: (M tiles, N tiles, split); M tiles vary fastest so the blocks that
 * share a weight tile run together and it is read from DRAM about once.
 * split > 1 cuts K (for short-M shapes that would leave SMs idle); partial
 * sums then meet in C through atomicAdd.
 *
 * Bytes: W once (per M tile, mostly from L2), A once per N tile (L2),
 * C once. FLOPs 2 M N K.
 */
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernels.h"

#define G_BN      128
#define G_BK      64
#define G_LDS     (G_BK + 8) /* halves per smem row: 144 bytes, conflict-free fragments */
#define G_THREADS 256

template <int WT> struct gfrag { frag<WT> f; };
template <> struct gfrag<CW_F16> { uint4 w[4]; };
template <> struct gfrag<CW_BF16> { uint4 w[4]; };

template <int WT>
__device__ __forceinline__ void gfrag_load(gfrag<WT> &g, const cu_mat &m, int row, int xb) {
    const int nxb = m.n_in / 32;
    const size_t bi = (size_t)row * nxb + xb;
    if constexpr (WT == CW_F16 || WT == CW_BF16) {
#pragma unroll
        for (int i = 0; i < 4; i++) g.w[i] = ld_weight16(m.q + bi * 64 + 16 * i);
    } else {
        row_ptrs p = row_start<WT>(m, row, 0);
        frag_load<WT>(g.f, p, xb, xb);
    }
}

/* 32 dequantized weights as 16 half2. */
template <int WT>
__device__ __forceinline__ void gfrag_halves(const gfrag<WT> &g, int xb, __half2 out[16]) {
    if constexpr (WT == CW_F16) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t a[4] = {g.w[i].x, g.w[i].y, g.w[i].z, g.w[i].w};
#pragma unroll
            for (int k = 0; k < 4; k++) out[4 * i + k] = *reinterpret_cast<const __half2 *>(&a[k]);
        }
    } else {
        float v[32];
        if constexpr (WT == CW_BF16) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint32_t a[4] = {g.w[i].x, g.w[i].y, g.w[i].z, g.w[i].w};
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    v[8 * i + 2 * k] = __uint_as_float(a[k] << 16);
                    v[8 * i + 2 * k + 1] = __uint_as_float(a[k] & 0xffff0000u);
                }
            }
        } else if constexpr (WT == CW_Q4_0) {
            const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
            cu_deq_q4_0(q, g.f.d, v);
        } else if constexpr (WT == CW_Q8_0) {
            const uint32_t q0[4] = {g.f.q0.x, g.f.q0.y, g.f.q0.z, g.f.q0.w};
            const uint32_t q1[4] = {g.f.q1.x, g.f.q1.y, g.f.q1.z, g.f.q1.w};
            cu_deq_q8_0(q0, q1, g.f.d, v);
        } else if constexpr (WT == CW_Q4_K || WT == CW_Q5_K) {
            const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
            const uint32_t h[4] = {g.f.h.x, g.f.h.y, g.f.h.z, g.f.h.w};
            uint32_t qh = 0;
            if constexpr (WT == CW_Q5_K) qh = g.f.qh;
            cu_deq_q45_k(q, h, xb & 7, qh, v);
        } else {
            const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
            const uint32_t qh[2] = {g.f.qh.x, g.f.qh.y};
            cu_deq_q6_k(q, qh, g.f.sc, g.f.d, v);
        }
#pragma unroll
        for (int i = 0; i < 16; i++) out[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    }
}

__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], const uint32_t b[2]) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int WT, int BM>
__global__ void __launch_bounds__(G_THREADS)
    cu_gemm_kernel(const __half *__restrict__ A, int lda, int M, cu_mat W, int row0, int N,
                   float *C, int ldc, int mode, int steps_per_split) {
    constexpr int WM = BM / 2, MT = WM / 16, NT = 4;
    extern __shared__ __align__(16) uint8_t smem[];
    __half(*As)[BM][G_LDS] = reinterpret_cast<__half(*)[BM][G_LDS]>(smem);
    __half(*Bs)[G_BN][G_LDS] =
        reinterpret_cast<__half(*)[G_BN][G_LDS]>(smem + 2 * BM * G_LDS * sizeof(__half));

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int wm0 = (warp >> 2) * WM, wn0 = (warp & 3) * 32;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * G_BN;
    const int K = W.n_in, nxb = K / 32, nsteps = (nxb + 1) / 2;
    const int s_begin = blockIdx.z * steps_per_split;
    const int s_end = min(nsteps, s_begin + steps_per_split);
    if (s_begin >= s_end) return;

    /* this thread's weight x-block in every step: row n0 + bn, x-block 2 s + bx */
    const int bn = tid >> 1, bx = tid & 1;
    const bool brow_ok = n0 + bn < N;
    gfrag<WT> bf;

    auto load_a = [&](int s, int buf) {
        for (int c = tid; c < BM * 8; c += G_THREADS) {
            int m = c >> 3, ch = c & 7, gm = m0 + m, gk = s * G_BK + ch * 8;
            bool ok = gm < M && gk < K;
            cp_async16(&As[buf][m][ch * 8], ok ? A + (size_t)gm * lda + gk : A, ok ? 16 : 0);
        }
        cp_async_commit();
    };
    auto fetch_b = [&](int s) {
        int xb = 2 * s + bx;
        if (brow_ok && xb < nxb) gfrag_load<WT>(bf, W, row0 + n0 + bn, xb);
    };
    auto store_b = [&](int s, int buf) {
        int xb = 2 * s + bx;
        __half2 h[16];
        if (brow_ok && xb < nxb) {
            gfrag_halves<WT>(bf, xb, h);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) h[i] = __floats2half2_rn(0.0f, 0.0f);
        }
        uint4 *dst = reinterpret_cast<uint4 *>(&Bs[buf][bn][bx * 32]);
#pragma unroll
        for (int i = 0; i < 4; i++) dst[i] = *reinterpret_cast<const uint4 *>(&h[4 * i]);
    };

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) acc[i][j][k] = 0.0f;

    load_a(s_begin, 0);
    fetch_b(s_begin);
    store_b(s_begin, 0);
    cp_async_wait_all();
    __syncthreads();

    for (int s = s_begin; s < s_end; s++) {
        const int buf = (s - s_begin) & 1;
        const bool more = s + 1 < s_end;
        if (more) {
            load_a(s + 1, buf ^ 1);
            fetch_b(s + 1);
        }
#pragma unroll
        for (int kk = 0; kk < G_BK; kk += 16) {
            uint32_t a[MT][4], b[NT][2];
#pragma unroll
            for (int i = 0; i < MT; i++) {
                const int r = wm0 + i * 16 + g;
                a[i][0] = *reinterpret_cast<const uint32_t *>(&As[buf][r][kk + 2 * t]);
                a[i][1] = *reinterpret_cast<const uint32_t *>(&As[buf][r + 8][kk + 2 * t]);
                a[i][2] = *reinterpret_cast<const uint32_t *>(&As[buf][r][kk + 2 * t + 8]);
                a[i][3] = *reinterpret_cast<const uint32_t *>(&As[buf][r + 8][kk + 2 * t + 8]);
            }
#pragma unroll
            for (int j = 0; j < NT; j++) {
                const int c = wn0 + j * 8 + g;
                b[j][0] = *reinterpret_cast<const uint32_t *>(&Bs[buf][c][kk + 2 * t]);
                b[j][1] = *reinterpret_cast<const uint32_t *>(&Bs[buf][c][kk + 2 * t + 8]);
            }
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < NT; j++) mma_16816(acc[i][j], a[i], b[j]);
        }
        if (more) {
            store_b(s + 1, buf ^ 1);
            cp_async_wait_all();
        }
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int m = m0 + wm0 + i * 16 + g + (k >> 1) * 8;
                int n = n0 + wn0 + j * 8 + 2 * t + (k & 1);
                if (m >= M || n >= N) continue;
                float *dst = C + (size_t)m * ldc + n;
                if (mode == CU_GEMM_ATOMIC)
                    atomicAdd(dst, acc[i][j][k]);
                else if (mode == CU_GEMM_ADD)
                    *dst += acc[i][j][k];
                else
                    *dst = acc[i][j][k];
            }
}

template <int BM> static size_t gemm_smem() {
    return 2 * (size_t)(BM + G_BN) * G_LDS * sizeof(__half);
}

template <int WT> static void *gemm_fn(int bm) {
    return bm == 32   ? (void *)cu_gemm_kernel<WT, 32>
           : bm == 64 ? (void *)cu_gemm_kernel<WT, 64>
                      : (void *)cu_gemm_kernel<WT, 128>;
}

static void *gemm_kernel_for(int wt, int bm) {
    switch (wt) {
    case CW_Q4_0:
        return gemm_fn<CW_Q4_0>(bm);
    case CW_Q8_0:
        return gemm_fn<CW_Q8_0>(bm);
    case CW_Q4_K:
        return gemm_fn<CW_Q4_K>(bm);
    case CW_Q5_K:
        return gemm_fn<CW_Q5_K>(bm);
    case CW_Q6_K:
        return gemm_fn<CW_Q6_K>(bm);
    case CW_F16:
        return gemm_fn<CW_F16>(bm);
    case CW_BF16:
        return gemm_fn<CW_BF16>(bm);
    default:
        return nullptr;
    }
}

static size_t gemm_smem_for(int bm) {
    return bm == 32 ? gemm_smem<32>() : bm == 64 ? gemm_smem<64>() : gemm_smem<128>();
}

cudaError_t cu_gemm_setup(void) {
    for (int wt = 0; wt < CW_COUNT; wt++)
        for (int bm = 32; bm <= 128; bm *= 2) {
            cudaError_t e = cudaFuncSetAttribute(gemm_kernel_for(wt, bm),
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                 (int)gemm_smem_for(bm));
            if (e != cudaSuccess) return e;
        }
    return cudaSuccess;
}

cudaError_t cu_gemm_launch(const __half *A, int lda, int M, const cu_mat &W, int row0, int N,
                           float *C, int ldc, int mode, int split, cudaStream_t s) {
    if (M <= 0 || N <= 0) return cudaSuccess;
    int bm = M <= 32 ? 32 : M <= 64 ? 64 : 128;
    int nsteps = (W.n_in / 32 + 1) / 2;
    if (split < 1) split = 1;
    if (split > nsteps) split = nsteps;
    int per = (nsteps + split - 1) / split;
    split = (nsteps + per - 1) / per;
    dim3 grid((M + bm - 1) / bm, (N + G_BN - 1) / G_BN, split);
    void *fn = gemm_kernel_for(W.wt, bm);
    if (!fn) return cudaErrorInvalidValue;
    cu_mat Wc = W;
    void *args[] = {(void *)&A, (void *)&lda, (void *)&M,   (void *)&Wc,   (void *)&row0,
                    (void *)&N, (void *)&C,   (void *)&ldc, (void *)&mode, (void *)&per};
    return cudaLaunchKernel(fn, grid, dim3(G_THREADS), args, gemm_smem_for(bm), s);
}
