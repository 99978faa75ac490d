/*
 * The weight phases with their weights staged through shared memory, one
 * launch per phase (decode mode ZT_CUDA_STAGED; host side in decode.cu).
 *
 * Why. The phase kernels load weights into registers, a few chunks per
 * warp ahead of the arithmetic: each kernel starts with a ramp (its blocks
 * start as the previous kernel's leave, issue two chunks, then wait) and
 * the DRAM idles between phases (bench/results/2026-11-26-cuda-h100-3.md:
 * 59 us a layer against 21 us of DRAM time). Here a block is one producer
 * warp and CU_STREAM_WARPS consumer warps at half an SM (registers and
 * shared memory), so two launches' blocks share an SM: with programmatic
 * dependent launch the next phase's block is resident while this one
 * computes, and its producer copies its weight slice into its ring with
 * bulk copies (TMA, completion on mbarriers) without waiting for anything:
 * weights never depend on the activations. The consumers wait for the
 * previous kernel, build the activation pack and run the stream kernel's
 * tile consumers (stream.cuh: the same tiles, the same per-lane order,
 * bit-identical to the phase kernels) on stages that are, ideally,
 * already full.
 *
 * Mapping: grid = one block per SM (each block's item range as in the
 * phase kernels, block_range); block = CU_STREAM_WARPS consumer warps + 1
 * producer warp, CU_STREAM_THREADS threads, <= 112 registers each; shared
 * memory [pack (sg_head)][ring: sg_n stages of sg_bytes][full][empty],
 * at most half of an SM's. Attention, kvq and argmax stay phase kernels.
 *
 * Bytes: every weight byte once (plus <= 32 bytes of 16-byte rounding per
 * stream run of a tile); the activations from L2 once per block.
 *
 * Status: opt-in (zt_cuda_tuning.decode_mode), bit-identical to the phase
 * kernels, not the default: Phi-3-mini Q4_0 on the H100 at 459 tok/s
 * (wo without PDL) against the phase kernels' ~515. What it fixed: a
 * kernel's blocks are past the wait 0.4 us after the previous kernel ends
 * (the phase kernels: 3-5 us). What it costs: the activation pack takes
 * 6-7 us (phase kernels 2-4) and the attention after QKV waits for whole
 * SMs; bench/results/2026-11-26-cuda-h100-4.md has the timeline. Two
 * lessons on the way: a call frame in the tile loop is local memory, which
 * the ~28 KB of L1 left beside two rings could not hold (a 2x slowdown);
 * and weights copied with the default L2 policy evicted what the next
 * kernels needed (evict-first: 351 -> 436 tok/s).
 */
#ifndef ZT_BACKEND_CUDA_STAGED_CUH
#define ZT_BACKEND_CUDA_STAGED_CUH

#include "backend/cuda/stream.cuh"

/* The stream kernel's phase index of weight phase PH. */
template <int PH> __host__ __device__ constexpr int staged_sp() {
    return PH == CU_PH_QKV    ? SP_QKV
           : PH == CU_PH_WO   ? SP_WO
           : PH == CU_PH_GU   ? SP_GU
           : PH == CU_PH_DOWN ? SP_DOWN
                              : SP_LM;
}

template <int NR, int PH, int WT>
__global__ void __launch_bounds__(CU_STREAM_THREADS, 2)
    cu_staged_kernel(const __grid_constant__ cu_model Mv, const __grid_constant__ cu_layer Lv,
                     int l, int i0, int i1) {
    const cu_model &M = Mv;
    const cu_layer &L = Lv; /* by value: see cu_phase_kernel */
    extern __shared__ __align__(16) uint8_t smem[];
    __shared__ int s_rows[CU_MAX_ROWS]; /* lm_head: the output rows */
    const unsigned long long t_start = M.tl ? globaltimer_ns() : 0;
    const int ri = nr_index(NR);
    const ring_geom rg = {M.sg_n[ri], M.sg_bytes};
    uint8_t *ring = smem + M.sg_head[ri];
    uint64_t *full = (uint64_t *)(ring + (size_t)rg.n * rg.bytes), *empty = full + rg.n;
    if (threadIdx.x == 0) {
        for (int s = 0; s < rg.n; s++) {
            mbar_init(&full[s], 1);
            mbar_init(&empty[s], CU_STREAM_WARPS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    asm volatile("griddepcontrol.launch_dependents;");
    constexpr int SP = staged_sp<PH>();
    /* the launch's items: QKV pairs [i0, i1) of weight type WT (as in the
     * phase kernels), else the whole phase */
    const int n0 = PH == CU_PH_QKV ? i0 : 0, n1 = PH == CU_PH_QKV ? i1 : phase_count(M, SP);
    if (threadIdx.x >= CU_STREAM_CONSUMERS) { /* the producer: weights only, no wait */
        if (threadIdx.x == CU_STREAM_CONSUMERS) {
            unsigned t = 0;
            /* sg_early > 0: that many tiles, then the rest after the
             * previous kernel is done (its loads keep the memory system) */
            produce_phase(M, L, SP, n0, n1, rg, ring, full, empty, t,
                          M.sg_early > 0 ? (unsigned)M.sg_early : ~0u);
        }
        return;
    }
    /* the consumers: the host's step data first (no wait needed) */
    const cu_step &st = *M.step;
    cu_pack pk = pack_carve(smem, M, NR);
    rows_fill(M, st, pk, NR, CU_STREAM_CONSUMERS);
    const int n_rows = st.n_rows, n_out = st.n_out;
    pack_src s = {SRC_PLAIN, nullptr, 0, nullptr, nullptr, nullptr, nullptr};
    int K = M.dim_p;
    if constexpr (PH == CU_PH_QKV) {
        s = {l == 0 ? SRC_EMBED : SRC_RESID, M.resid, M.dim, nullptr, L.attn_norm, st.token,
             l == 0 ? M.resid : nullptr};
    } else if constexpr (PH == CU_PH_WO) {
        s = {SRC_PLAIN, M.attn, M.q_dim, nullptr, nullptr, nullptr, nullptr};
        K = L.wo.n_in;
    } else if constexpr (PH == CU_PH_GU) {
        s = {SRC_RESID, M.resid, M.dim, nullptr, L.ffn_norm, nullptr, nullptr};
    } else if constexpr (PH == CU_PH_DOWN) {
        s = {SRC_PLAIN, M.hbuf, M.ffn, nullptr, nullptr, nullptr, nullptr};
        K = L.down.n_in;
    } else {
        if ((int)threadIdx.x < n_out) s_rows[threadIdx.x] = st.out_row[threadIdx.x];
        s = {SRC_RESID, M.resid, M.dim, s_rows, M.out_norm, nullptr, nullptr};
    }
    phase_wait(M, PH, PH == CU_PH_LM ? M.n_layers : l);
    if constexpr (PH == CU_PH_LM) cta_sync<CU_STREAM_CONSUMERS>(); /* s_rows */
    pack_build<NR, CU_STREAM_WARPS>(M, s, K, PH == CU_PH_LM ? n_out : n_rows, pk);
    tl_mark(M, l, PH, 3);
    constexpr int EPI = PH == CU_PH_QKV  ? EPI_QKV
                        : PH == CU_PH_GU ? EPI_GU
                        : PH == CU_PH_LM ? EPI_LM
                                         : EPI_PROJ;
    float best = EPI == EPI_LM ? -INFINITY : 0.0f;
    int best_i = EPI == EPI_LM ? 0x7fffffff : 0;
    unsigned t = 0;
    unsigned long long waited = 0;
    consume_phase<NR, EPI, WT>(M, L, l, SP, n0, n1, pk, rg, ring, full, empty, t, best, best_i,
                               M.tl && threadIdx.x == 0 ? &waited : nullptr);
    if (M.tl && threadIdx.x == 0) { /* mark 5: items done + the time spent waiting for stages */
        const unsigned long long t4 = globaltimer_ns();
        M.tl[CU_TL_AT(l, PH, blockIdx.x) + 4] = t4;
        M.tl[CU_TL_AT(l, PH, blockIdx.x) + 5] = t4 + waited;
    }
    if constexpr (PH == CU_PH_LM) lm_block_winner<CU_STREAM_WARPS>(M, pk, best, best_i);
    tl_start(M, l, PH, t_start);
    tl_mark(M, l, PH, 2);
}

/* The staged kernels as a family for decode.cuh's kernel_of. */
struct staged_family {
    template <int NR, int PH, int WT> static void *fn() {
        return (void *)cu_staged_kernel<NR, PH, WT>;
    }
};

/* Dynamic shared bytes of the staged kernels for row template nr. */
__host__ __device__ __forceinline__ size_t cu_staged_smem(const cu_model &M, int nr) {
    int i = nr_index(nr);
    return (size_t)M.sg_head[i] + (size_t)M.sg_n[i] * M.sg_bytes + (size_t)M.sg_n[i] * 16;
}

#endif
