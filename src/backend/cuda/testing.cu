/*
 * Test entry points (C-callable) that run one kernel family on a single
 * matrix, so tests/cuda can check the decode GEMV and the batched GEMM of
 * every weight type against a float reference without building a model.
 * They run the same device functions as the forward pass (pack_build and
 * gemv_items; cu_gemm_launch).
 */
#include "backend/cuda/kernels.h"
#include "backend/cuda/pack.cuh"

#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/repack.h"
#include "util/error.h"
}

/* y[r][o] = W[o] . x[r] for r < n_rows, through the decode pack + the
 * pipelined GEMV (the type switch outside the row loop, as in decode.cuh). */
template <int WT, int NR>
__device__ __forceinline__ void test_rows(const cu_model &M, const cu_mat &W, const float *x,
                                          const cu_pack &pk, int n_rows, float *y) {
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    int i0 = (int)((long long)W.n_out * blockIdx.x / gridDim.x);
    int i1 = (int)((long long)W.n_out * (blockIdx.x + 1) / gridDim.x);
    pack_src s = {SRC_PLAIN, x, W.n_in, nullptr, nullptr, nullptr, nullptr};
    gemv_items<WT, NR, 1>(
        W.n_in, i0 + warp, i1, CU_DEC_WARPS, pk,
        [&](int o, const cu_mat **mm, int *rows) { mm[0] = &W, rows[0] = o; },
        [&](auto) { pack_build<NR, WT>(M, s, W.n_in, n_rows, pk); },
        [&](int o, const float(&acc)[1][NR]) {
            if (lane < n_rows) y[(size_t)lane * W.n_out + o] = acc_of_lane<NR, 1>(acc, 0, lane);
        });
}

template <int NR>
__global__ void __launch_bounds__(CU_DEC_THREADS, 1)
    test_gemv_kernel(cu_model M, cu_mat W, const float *x, int n_rows, float *y) {
    extern __shared__ __align__(16) uint8_t smem[];
    cu_pack pk = pack_carve(smem, M, M.pack_rows);
    switch (W.wt) {
    case CW_Q4_0:
        test_rows<CW_Q4_0, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_Q8_0:
        test_rows<CW_Q8_0, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_Q4_K:
        test_rows<CW_Q4_K, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_Q5_K:
        test_rows<CW_Q5_K, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_Q6_K:
        test_rows<CW_Q6_K, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_F16:
        test_rows<CW_F16, NR>(M, W, x, pk, n_rows, y);
        break;
    case CW_BF16:
        test_rows<CW_BF16, NR>(M, W, x, pk, n_rows, y);
        break;
    default:
        break;
    }
}

template <int NR> static void *gemv_fn() { return (void *)test_gemv_kernel<NR>; }

#define T_TRY(call, what)                                                                          \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) {                                                                   \
            rc = zt_fail(err, ZT_EBACKEND, "cuda test: %s: %s", what, cudaGetErrorString(e_));     \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

extern "C" int zt_cuda_test_matmul(const zt_tensor *w, const float *x, int n_rows, int path,
                                   float *y, zt_error *err) {
    const int depth = path / 10 > 0 ? path / 10 : 1;
    path %= 10;
    cuda_host_mat h;
    int rc = cuda_repack(w, 0, &h, err);
    if (rc) return rc;
    cu_mat W;
    memset(&W, 0, sizeof W);
    W.wt = h.wt, W.n_in = h.n_in, W.n_out = h.n_out;
    uint8_t *dev[4] = {NULL, NULL, NULL, NULL};
    uint8_t *src[4] = {h.q, h.a1, h.a2, h.a3};
    size_t len[4] = {h.q_bytes, h.a1_bytes, h.a2_bytes, h.a3_bytes};
    float *dx = NULL, *dy = NULL;
    __half *dxh = NULL;
    __half *hx = NULL, *dh = NULL, *hh = NULL;
    size_t ny = (size_t)n_rows * W.n_out;
    for (int s = 0; s < 4; s++) {
        if (!len[s]) continue;
        T_TRY(cudaMalloc((void **)&dev[s], len[s] + 256), "alloc");
        T_TRY(cudaMemcpy(dev[s], src[s], len[s], cudaMemcpyHostToDevice), "upload");
    }
    W.q = dev[0], W.a1 = dev[1], W.a2 = dev[2], W.a3 = dev[3];
    T_TRY(cudaMalloc((void **)&dy, ny * sizeof(float)), "alloc");
    /* poison: every output must be written */
    T_TRY(cudaMemset(dy, 0xff, ny * sizeof(float)), "poison");
    if (path == 0) {
        if (n_rows < 1 || n_rows > CU_MAX_ROWS) {
            rc = zt_fail(err, ZT_EINVAL, "cuda test: 1..%d rows for the GEMV", CU_MAX_ROWS);
            goto done;
        }
        T_TRY(cudaMalloc((void **)&dx, (size_t)n_rows * W.n_in * sizeof(float)), "alloc");
        T_TRY(cudaMemcpy(dx, x, (size_t)n_rows * W.n_in * sizeof(float), cudaMemcpyHostToDevice),
              "upload x");
        cu_model M;
        memset(&M, 0, sizeof M);
        M.xb_max = W.n_in / 32, M.has_float = cu_is_float(W.wt), M.eps = 1e-5f;
        M.pack_rows = CU_MAX_ROWS;
        size_t smem = cu_pack_bytes(M, M.pack_rows);
        int nr = n_rows <= 1 ? 1 : n_rows <= 2 ? 2 : n_rows <= 4 ? 4 : 8;
        void *fn = nr == 1   ? gemv_fn<1>()
                   : nr == 2 ? gemv_fn<2>()
                   : nr == 4 ? gemv_fn<4>()
                             : gemv_fn<8>();
        T_TRY(cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem),
              "smem attribute");
        void *args[] = {(void *)&M, (void *)&W, (void *)&dx, (void *)&n_rows, (void *)&dy};
        T_TRY(cudaLaunchKernel(fn, dim3(37), dim3(CU_DEC_THREADS), args, smem, 0), "gemv launch");
    } else {
        hx = (__half *)malloc((size_t)n_rows * W.n_in * sizeof(__half));
        if (!hx) {
            rc = zt_fail(err, ZT_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < (size_t)n_rows * W.n_in; i++) hx[i] = __float2half(x[i]);
        T_TRY(cudaMalloc((void **)&dxh, (size_t)n_rows * W.n_in * sizeof(__half)), "alloc");
        T_TRY(cudaMemcpy(dxh, hx, (size_t)n_rows * W.n_in * sizeof(__half), cudaMemcpyHostToDevice),
              "upload x");
        T_TRY(cu_gemm_setup(), "gemm setup");
        if (path == 3) { /* rows [0, half) gate, [half, 2 half) up -> f16 h */
            const int half = W.n_out / 2;
            const size_t nh = (size_t)n_rows * half;
            T_TRY(cudaMalloc((void **)&dh, nh * sizeof(__half)), "alloc");
            T_TRY(cudaMemset(dh, 0xff, nh * sizeof(__half)), "poison");
            T_TRY(cu_gemm_silu_launch(dxh, W.n_in, n_rows, W, 0, W, half, half, dh, half, depth, 0),
                  "gemm silu launch");
            T_TRY(cudaDeviceSynchronize(), "kernel");
            hh = (__half *)malloc(nh * sizeof(__half));
            if (!hh) {
                rc = zt_fail(err, ZT_ENOMEM, "out of memory");
                goto done;
            }
            T_TRY(cudaMemcpy(hh, dh, nh * sizeof(__half), cudaMemcpyDeviceToHost), "download");
            for (int r = 0; r < n_rows; r++)
                for (int o = 0; o < W.n_out; o++)
                    y[(size_t)r * W.n_out + o] =
                        o < half ? __half2float(hh[(size_t)r * half + o]) : 0.0f;
            goto done;
        }
        if (path == 4) { /* the tail split as forward.cu's gemm() runs it: the first N
                            tiles whole, the rest in 3 K splits with atomics onto zeroed
                            outputs (the launches' row and column offsets under test) */
            const int n_main = ((W.n_out + 127) / 128 / 2) * 128, n_tail = W.n_out - n_main;
            T_TRY(cudaMemset2D(dy + n_main, sizeof(float) * W.n_out, 0, sizeof(float) * n_tail,
                               n_rows),
                  "zero");
            T_TRY(cu_gemm_launch(dxh, W.n_in, n_rows, W, 0, n_main, dy, W.n_out, CU_GEMM_STORE, 1,
                                 depth, 0),
                  "gemm launch");
            T_TRY(cu_gemm_launch(dxh, W.n_in, n_rows, W, n_main, n_tail, dy + n_main, W.n_out,
                                 CU_GEMM_ATOMIC, 3, depth, 0),
                  "gemm tail launch");
            T_TRY(cudaDeviceSynchronize(), "kernel");
            T_TRY(cudaMemcpy(y, dy, ny * sizeof(float), cudaMemcpyDeviceToHost), "download");
            goto done;
        }
        int split = path == 2 ? 3 : path == 5 ? 6 : 1;
        if (split > 1) T_TRY(cudaMemset(dy, 0, ny * sizeof(float)), "zero");
        T_TRY(cu_gemm_launch(dxh, W.n_in, n_rows, W, 0, W.n_out, dy, W.n_out,
                             split > 1 ? CU_GEMM_ATOMIC : CU_GEMM_STORE, split, depth, 0),
              "gemm launch");
    }
    T_TRY(cudaDeviceSynchronize(), "kernel");
    T_TRY(cudaMemcpy(y, dy, ny * sizeof(float), cudaMemcpyDeviceToHost), "download");
done:
    for (int s = 0; s < 4; s++) cudaFree(dev[s]);
    cudaFree(dx), cudaFree(dy), cudaFree(dxh), cudaFree(dh);
    free(hx), free(hh);
    cuda_host_mat_free(&h);
    return rc;
}
