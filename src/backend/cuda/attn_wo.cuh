/*
 * The single-sequence decode's attention with the output projection fused
 * (roles attention and matmul wo in one launch; host side in decode.cu,
 * chosen per step by forward.cu's fold_step).
 *
 * Why. Per layer the attention and wo phases took 10.2 + 6.5 us against
 * 9.8 for the Vulkan backend's fused dispatch (bench/results/cuda-notes.md,
 * "2026-11-28"): wo's own launch pays a ramp, an activation pack and a
 * DRAM stream on its own, behind an attention that keeps 32 SMs busy.
 * Here each attention block multiplies its own heads' outputs by its slice
 * of Wo and adds the products into the residual, so no launch separates
 * the two and the Wo bytes stream while the attention runs.
 *
 * Mapping: block (hg, z) of n_hg x Z (Z = tune.wo_slices; one wave: at
 * ~155 registers a block has its SM alone, so n_hg Z should stay within
 * the SMs) computes head group hg's attention (attn_item, one split, the
 * f16 cache; every z recomputes it, the keys from L2), quantizes its GQ hd
 * outputs per x-block into the pack (pack_quant4, the rule of the wo
 * phase's pack), then takes Wo rows [z N / Z, (z + 1) N / Z) one a thread
 * against those x-blocks: x[row] += sum over the group's x-blocks,
 * atomicAdd into M.resid (n_hg additions an element, in no fixed order:
 * not bit-identical to the wo phase, whose one writer per element adds a
 * whole row's sum).
 *
 * Bytes: Wo once (the slice's rows x the group's x-blocks; sent to L2 with
 * bulk prefetches before the wait, so that its loads after the attention
 * are L2 hits), the attention's K and V Z times from L2 (once from DRAM).
 * Quantized Wo only (the float types keep the wo phase).
 */
#ifndef ZT_BACKEND_CUDA_ATTN_WO_CUH
#define ZT_BACKEND_CUDA_ATTN_WO_CUH

#include "backend/cuda/decode.cuh"

#define CU_WO_XB 4 /* x-blocks of a row whose loads a thread issues together */

/* L2 prefetch of bytes [b0, b0 + n) of a stream, rounded out to 16 (the
 * streams have 256 bytes of slack, forward.cu). */
__device__ __forceinline__ void prefetch_piece(const uint8_t *base, size_t b0, size_t n) {
    size_t a = b0 & ~(size_t)15, e = (b0 + n + 15) & ~(size_t)15;
    prefetch_l2(base + a, (unsigned)(e - a));
}

/* Rows [r0, r1) x x-blocks [xb0, xb0 + nx) of m into L2, a row a thread. */
template <int WT>
__device__ __forceinline__ void wo_slice_prefetch(const cu_mat &m, int r0, int r1, int xb0,
                                                  int nx) {
    const int nxb = m.n_in / 32, nsb = nxb / 8, sb0 = xb0 / 8, nsbs = (xb0 + nx + 7) / 8 - sb0;
    for (int row = r0 + threadIdx.x; row < r1; row += blockDim.x) {
        const size_t bi = (size_t)row * nxb + xb0;
        prefetch_piece(m.q, bi * 16 * cu_units_per_xb(WT), (size_t)nx * 16 * cu_units_per_xb(WT));
        if constexpr (WT == CW_Q4_0 || WT == CW_Q8_0) prefetch_piece(m.a1, bi * 2, (size_t)nx * 2);
        if constexpr (WT == CW_Q4_K || WT == CW_Q5_K)
            prefetch_piece(m.a1, ((size_t)row * nsb + sb0) * 16, (size_t)nsbs * 16);
        if constexpr (WT == CW_Q5_K) prefetch_piece(m.a2, bi * 4, (size_t)nx * 4);
        if constexpr (WT == CW_Q6_K) {
            prefetch_piece(m.a1, bi * 8, (size_t)nx * 8);
            prefetch_piece(m.a2, bi * 2, (size_t)nx * 2);
            prefetch_piece(m.a3, ((size_t)row * nsb + sb0) * 2, (size_t)nsbs * 2);
        }
    }
}

template <int WT>
__global__ void __launch_bounds__(CU_DEC_THREADS, 1)
    cu_attn_wo_kernel(const __grid_constant__ cu_model Mv, const __grid_constant__ cu_layer Lv,
                      int l, int n_z) {
    const cu_model &M = Mv;
    const cu_layer &L = Lv; /* by value: see cu_phase_kernel */
    extern __shared__ __align__(16) uint8_t smem[];
    const unsigned long long t_start = M.tl ? globaltimer_ns() : 0;
    asm volatile("griddepcontrol.launch_dependents;");
    const cu_mat &wo = L.wo;
    const int hg = blockIdx.x / n_z, z = blockIdx.x % n_z;
    const int nx = M.gq * M.hd / 32, xb0 = hg * nx; /* the group's x-blocks of Wo's input */
    const int r0 = (int)((long long)wo.n_out * z / n_z), r1 = (int)((long long)wo.n_out * (z + 1) / n_z);
    wo_slice_prefetch<WT>(wo, r0, r1, xb0, nx); /* weights: no wait needed */

    const cu_step &st = *M.step;
    attn_args A = decode_attn_args(M, st);
    auto wait = [&] { phase_wait(M, CU_PH_ATTN, l); };
    attn_item<CU_KV_F16, CU_DEC_THREADS>(M, st, l, A, 0, hg, 0, (float *)smem, wait);

    /* the group's outputs (this block's own stores to M.attn, visible
     * after attn_item's closing barrier; every z stores the same values)
     * as int8 x-blocks: 8 lanes an x-block, 4 x-blocks a warp */
    cu_pack pk = pack_carve(smem, M, 1);
    const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
    if (warp < (nx + 3) / 4) { /* warp-uniform: pack_quant4 shuffles */
        const int k = warp * 128 + lane * 4, xb = k / 32;
        float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        if (xb < nx) y = __ldcg((const float4 *)(M.attn + (size_t)xb0 * 32 + k));
        pack_quant4(M, pk, 0, xb, y, xb < nx);
    }
    cta_sync<CU_DEC_THREADS>();

    /* a row a thread: the row's x-blocks CU_WO_XB at a time, their loads
     * (L2 hits, prefetched above) issued together */
    for (int row = r0 + threadIdx.x; row < r1; row += blockDim.x) {
        const row_ptrs p = row_start<WT>(wo, row, xb0);
        float acc = 0.0f;
        for (int j0 = 0; j0 < nx; j0 += CU_WO_XB) {
            frag<WT> f[CU_WO_XB];
#pragma unroll
            for (int j = 0; j < CU_WO_XB; j++)
                if (j0 + j < nx) frag_load<WT>(f[j], p, j0 + j, xb0 + j0 + j);
#pragma unroll
            for (int j = 0; j < CU_WO_XB; j++)
                if (j0 + j < nx) {
                    const uint4 lo = pk.xlo[j0 + j], hi = pk.xhi[j0 + j];
                    const float4 xm = pk.xm[j0 + j];
                    const uint32_t x[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
                    acc += frag_dot<WT>(f[j], xb0 + j0 + j, x, xm.x, __float_as_int(xm.y),
                                        __float_as_int(xm.z));
                }
        }
        atomicAdd(M.resid + row, acc);
    }
    if (M.tl && threadIdx.x == 0) M.tl[CU_TL_AT(l, CU_PH_ATTN, blockIdx.x)] = t_start;
    tl_mark(M, l, CU_PH_ATTN, 2);
}

#endif
