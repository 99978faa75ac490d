/*
 * Host side of the decode step (decode.cuh): launch configuration, the
 * variants' launches, and the split-K row attention kernel the batched
 * path uses for short runs.
 */
#include "backend/cuda/decode.cuh"

#include <string.h>

/* decode_rN.cu */
void *cu_phase_kernel_r1(int ph, int wt);
void *cu_phase_kernel_r2(int ph, int wt);
void *cu_phase_kernel_r4(int ph, int wt);
void *cu_phase_kernel_r8(int ph, int wt);

/* ---- host side -------------------------------------------------------- */

/* The kernel of phase ph, weight type wt, row template nr. */
static void *phase_fn(int nr, int ph, int wt) {
    switch (ph) {
    case CU_PH_KVQ:
        return (void *)cu_phase_kernel<1, CU_PH_KVQ, 0>;
    case CU_PH_ATTN:
        return (void *)cu_phase_kernel<1, CU_PH_ATTN, 0>;
    case CU_PH_ARGMAX:
        return (void *)cu_phase_kernel<1, CU_PH_ARGMAX, 0>;
    default:
        break;
    }
    switch (nr) {
    case 1:
        return cu_phase_kernel_r1(ph, wt);
    case 2:
        return cu_phase_kernel_r2(ph, wt);
    case 4:
        return cu_phase_kernel_r4(ph, wt);
    default:
        return cu_phase_kernel_r8(ph, wt);
    }
}

size_t cu_decode_smem(const cu_model &M) {
    size_t pack = cu_pack_bytes(M.xb_max, M.has_float, M.pack_rows);
    size_t attn = cu_attn_smem_floats(M.gq, M.hd, CU_ATTN_CHUNK_MAX) * 4;
    return pack > attn ? pack : attn;
}

cudaError_t cu_decode_setup(size_t smem) {
    for (int nr = 1; nr <= CU_MAX_ROWS; nr *= 2)
        for (int ph = 0; ph < CU_PH_COUNT; ph++)
            for (int wt = 0; wt < CW_COUNT; wt++) {
                cudaError_t e = cudaFuncSetAttribute(
                    phase_fn(nr, ph, wt), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
                if (e != cudaSuccess) return e;
            }
    return cudaSuccess;
}

int cu_decode_blocks_per_sm(size_t smem) {
    int n = 0;
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, phase_fn(CU_MAX_ROWS, CU_PH_GU, CW_Q4_K),
                                                      CU_DEC_THREADS, smem) != cudaSuccess)
        return 0;
    return n;
}

cudaError_t cu_decode_launch(const cu_model *M_dev, int nr, const cu_launch &L, int grid,
                             size_t smem, int pdl, cudaStream_t s) {
    int l = L.layer, i0 = L.i0, i1 = L.i1;
    void *args[] = {(void *)&M_dev, (void *)&l, (void *)&i0, (void *)&i1};
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(L.ph == CU_PH_ARGMAX ? 1 : grid);
    cfg.blockDim = dim3(CU_DEC_THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = pdl ? 1 : 0;
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    void *fn = phase_fn(nr, L.ph, L.wt);
    if (!fn) return cudaErrorInvalidValue;
    return cudaLaunchKernelExC(&cfg, fn, args);
}

/* ---- attention over a list of rows (prefill path, short runs) --------- */

__global__ void __launch_bounds__(256) cu_attn_rows_kernel(cu_model M, int layer, attn_args A) {
    extern __shared__ __align__(16) uint8_t smem[];
    const cu_step &st = *M.step;
    int n_hg = M.n_heads / M.gq, per_row = n_hg * A.n_splits;
    int it = blockIdx.x;
    int i = it / per_row, hg = (it % per_row) / A.n_splits, c = it % A.n_splits;
    if (M.kv_type == CU_KV_Q8)
        attn_item<CU_KV_Q8>(M, st, layer, A, i, hg, c, (float *)smem);
    else
        attn_item<CU_KV_F16>(M, st, layer, A, i, hg, c, (float *)smem);
}

cudaError_t cu_attn_rows_launch(const cu_model &M, int layer, const attn_args &A, cudaStream_t s) {
    size_t smem = cu_attn_smem_floats(M.gq, M.hd, A.chunk) * 4;
    static bool configured = false;
    if (!configured) {
        cudaError_t e = cudaFuncSetAttribute(
            cu_attn_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
            (int)(cu_attn_smem_floats(CU_ATTN_GQ_MAX, 256, CU_ATTN_CHUNK_MAX) * 4));
        if (e != cudaSuccess) return e;
        configured = true;
    }
    int n_items = A.n_list * (M.n_heads / M.gq) * A.n_splits;
    if (n_items == 0) return cudaSuccess;
    cu_attn_rows_kernel<<<n_items, 256, smem, s>>>(M, layer, A);
    return cudaGetLastError();
}
