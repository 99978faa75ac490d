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
 * Bytes: Wo once (the slice's rows x the group's x-blocks), its loads
 * issued before the wait on the QKV kernel (with programmatic dependent
 * launch the block starts while that kernel drains) and kept in shared
 * memory as fragments (frag<WT>, after the attention's scratch: ~74 KB a
 * block for Phi-3's Q4_0 at 4 slices), so that the projection after the
 * attention reads no DRAM; the attention's K and V Z times from L2 (once
 * from DRAM); its outputs stay in shared memory (attn_args.out_sm).
 *
 * Float Wo (F16, BF16): granules of 8 inputs instead of x-blocks, no int8
 * pack: a row's dot product takes the f32 outputs straight from shared
 * memory, and the fragments start after the attention's scratch rather
 * than after the phase kernels' pack (Phi-3's F16 slice: 147 KB at 4
 * slices; decode.cu's wo_frag_base).
 */
#ifndef ZT_BACKEND_CUDA_ATTN_WO_CUH
#define ZT_BACKEND_CUDA_ATTN_WO_CUH

#include "backend/cuda/decode.cuh"

#define CU_WO_ITEMS 8 /* Wo fragments a thread loads at once */

template <int WT>
__global__ void __launch_bounds__(CU_DEC_THREADS, 1)
    cu_attn_wo_kernel(const __grid_constant__ cu_model Mv, const __grid_constant__ cu_layer Lv,
                      int l, int n_z, int frag_off) {
    const cu_model &M = Mv;
    const cu_layer &L = Lv; /* by value: see cu_phase_kernel */
    extern __shared__ __align__(16) uint8_t smem[];
    const unsigned long long t_start = M.tl ? globaltimer_ns() : 0;
    asm volatile("griddepcontrol.launch_dependents;");
    const cu_mat &wo = L.wo;
    const int hg = blockIdx.x / n_z, z = blockIdx.x % n_z;
    constexpr int GI = granule_inputs<WT>();        /* 32: an x-block; float Wo: 8 */
    const int nx = M.gq * M.hd / GI, xb0 = hg * nx; /* the group's granules of Wo's input */
    int r0, r1;                                     /* the slice's Wo rows */
    part_range(wo.n_out, z, n_z, r0, r1);
    frag<WT> *sf = (frag<WT> *)(smem + frag_off); /* [row - r0][nx] */

    /* the slice's fragments into shared memory (weights do not depend on
     * the previous kernel): item i = (row r0 + i / nx, x-block i % nx),
     * CU_WO_ITEMS a thread at once. The first batch's loads go out as the
     * block starts and are stored after the wait on the QKV kernel, so
     * that their DRAM latency passes while that kernel drains (Phi-3's
     * 2,304 items a block are one batch). Measured against the two
     * neighbours (bench/results/2026-11-28-cuda-h100-2.md): stored before
     * the wait, they held the block there 2.4 us longer; issued after the
     * attention's page walk (whose loads otherwise queue behind them),
     * the stores after the wait waited for them instead. */
    const int n_items = (r1 - r0) * nx;
    frag<WT> f[CU_WO_ITEMS];
    /* item i's row and granule (i / nx, i % nx) stepped from the batch's
     * first by the block's threads: two divisions a thread, not two an item
     * (each ~20 instructions of straight-line code that runs once a launch,
     * fetched cold: 2026-11-29-cuda-h200-8.md) */
    const int q_step = (int)blockDim.x / nx, j_step = (int)blockDim.x % nx;
    auto load = [&](int i0) {
        int q = i0 / nx, j = i0 % nx;
#pragma unroll
        for (int k = 0; k < CU_WO_ITEMS; k++) {
            if (i0 + k * (int)blockDim.x < n_items)
                frag_load<WT>(f[k], row_start<WT>(wo, r0 + q, xb0), j, xb0 + j);
            q += q_step, j += j_step;
            if (j >= nx) j -= nx, q++;
        }
    };
    auto store = [&](int i0) {
#pragma unroll
        for (int k = 0; k < CU_WO_ITEMS; k++)
            if (i0 + k * (int)blockDim.x < n_items) sf[i0 + k * blockDim.x] = f[k];
    };
    load(threadIdx.x);

    float *out = (float *)(sf + (size_t)((wo.n_out + n_z - 1) / n_z) * nx); /* [gq hd] */
    const cu_step &st = *M.step;
    attn_args A = decode_attn_args(M, st);
    A.out_sm = out;
    /* the batches after the first: before the attention for quantized Wo
     * (Phi-3's slice is one batch), after it for float Wo, whose 98 KB a
     * block of them after the wait held the attention back 8 us (Phi-3
     * F16, 2026-11-28-cuda-h200-5.md) */
    auto rest = [&] {
        for (int i0 = threadIdx.x + CU_WO_ITEMS * blockDim.x; i0 < n_items;
             i0 += CU_WO_ITEMS * blockDim.x)
            load(i0), store(i0);
    };
    auto ready = [&] {
        phase_wait(M, CU_PH_ATTN, l);
        store(threadIdx.x);
        if constexpr (!is_float_wt<WT>()) rest();
    };
    attn_item<CU_KV_F16, CU_DEC_THREADS>(M, st, l, A, 0, hg, 0, (float *)smem, ready);

    if constexpr (is_float_wt<WT>()) {
        rest();
        cta_sync<CU_DEC_THREADS>(); /* every thread's fragments */
        /* a row a thread: x[row] += its granules against the outputs (out,
         * complete after attn_item's closing barrier), in f32 */
        CU_COLD_LOOP
        for (int row = r0 + threadIdx.x; row < r1; row += blockDim.x) {
            float acc = 0.0f;
            CU_COLD_LOOP
            for (int j = 0; j < nx; j++) {
                float v[8];
                unit_floats<WT>(sf[(size_t)(row - r0) * nx + j].w, v);
                acc += unit_dot8(v, *(const float4 *)(out + 8 * j),
                                 *(const float4 *)(out + 8 * j + 4));
            }
            atomicAdd(M.resid + row, acc);
        }
    } else {
        /* the group's outputs (out, after attn_item's closing barrier) as int8
         * x-blocks: 8 lanes an x-block, 4 x-blocks a warp */
        cu_pack pk = pack_carve(smem, M, 1);
        const int warp = threadIdx.x / CU_WARP, lane = threadIdx.x % CU_WARP;
        if (warp < (nx + 3) / 4) { /* warp-uniform: pack_quant4 shuffles */
            const int k = warp * 128 + lane * 4, xb = k / 32;
            float4 y = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            if (xb < nx) y = *(const float4 *)(out + k);
            pack_quant4(M, pk, 0, xb, y, xb < nx);
        }
        cta_sync<CU_DEC_THREADS>();

        /* a row a thread, from shared memory: x[row] += its dot products */
        CU_COLD_LOOP
        for (int row = r0 + threadIdx.x; row < r1; row += blockDim.x) {
            float acc = 0.0f;
            CU_COLD_LOOP
            for (int j = 0; j < nx; j++) {
                const uint4 lo = pk.xlo[j], hi = pk.xhi[j];
                const float4 xm = pk.xm[j];
                const uint32_t x[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
                acc += frag_dot<WT>(sf[(size_t)(row - r0) * nx + j], xb0 + j, x, xm.x,
                                    __float_as_int(xm.y), __float_as_int(xm.z));
            }
            atomicAdd(M.resid + row, acc);
        }
    }
    tl_start(M, l, CU_PH_ATTN, t_start);
    tl_mark(M, l, CU_PH_ATTN, 2);
}

#endif
