/*
 * Host side of the decode step (decode.cuh, attn_wo.cuh): launch
 * configuration, the variants' launches, and the split-K row attention
 * kernel the batched path uses for short runs.
 */
#include "backend/cuda/attn_wo.cuh"
#include "backend/cuda/decode.cuh"

#include <type_traits>

/* decode_rN.cu */
void *cu_phase_kernel_r1(int ph, int wt);
void *cu_phase_kernel_r2(int ph, int wt);
void *cu_phase_kernel_r4(int ph, int wt);
void *cu_phase_kernel_r8(int ph, int wt);

/* ---- host side -------------------------------------------------------- */

static void *attn_decode_fn(int hd, int form); /* below, with its kernel */

/* of(ns) for the warp-parallel attention's head sizes (ns: NS = hd / 16 as
 * a std::integral_constant, so that of can name a kernel template by it),
 * or NULL for another head size. */
template <class Of> static void *by_head_size(int hd, Of of) {
    switch (hd) {
    case 32:
        return of(std::integral_constant<int, 2>());
    case 64:
        return of(std::integral_constant<int, 4>());
    case 96:
        return of(std::integral_constant<int, 6>());
    case 128:
        return of(std::integral_constant<int, 8>());
    default:
        return nullptr;
    }
}

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

/* The fused attention + wo kernel for Wo of type wt and the bytes of one
 * of its shared-memory fragments ({NULL, 0}: a float type, which keeps the
 * wo phase). */
struct attn_wo_entry {
    void *fn;
    size_t frag;
};
template <int WT> static attn_wo_entry attn_wo_of() {
    return {(void *)cu_attn_wo_kernel<WT>, sizeof(frag<WT>)};
}
static attn_wo_entry attn_wo(int wt) {
    switch (wt) {
    case CW_Q4_0:
        return attn_wo_of<CW_Q4_0>();
    case CW_Q8_0:
        return attn_wo_of<CW_Q8_0>();
    case CW_Q4_K:
        return attn_wo_of<CW_Q4_K>();
    case CW_Q5_K:
        return attn_wo_of<CW_Q5_K>();
    case CW_Q6_K:
        return attn_wo_of<CW_Q6_K>();
    case CW_F16:
        return attn_wo_of<CW_F16>();
    case CW_BF16:
        return attn_wo_of<CW_BF16>();
    default:
        return {nullptr, 0};
    }
}

bool cu_attn_wo_supported(int wt) { return attn_wo(wt).fn != nullptr; }

static size_t frag_offset(size_t smem) { return (smem + 127) & ~(size_t)127; }

/* Where the fused kernel's Wo fragments start: after the phase kernels'
 * shared memory (smem: the int8 pack, which the projection reuses), or for
 * float Wo, which needs no pack, after the attention's scratch. */
static size_t wo_frag_base(const cu_model &M, const cu_layer &L, size_t smem) {
    if (!cu_is_float(L.wo.wt)) return frag_offset(smem);
    return frag_offset(cu_attn_smem_floats(M.gq, M.hd, CU_ATTN_CHUNK_MAX) * 4);
}

size_t cu_attn_wo_smem(const cu_model &M, const cu_layer &L, size_t smem, int slices) {
    const size_t gi = cu_is_float(L.wo.wt) ? 8 : 32; /* a granule's inputs */
    size_t rows = ((size_t)L.wo.n_out + slices - 1) / slices, nx = (size_t)M.gq * M.hd / gi;
    return wo_frag_base(M, L, smem) + rows * nx * attn_wo(L.wo.wt).frag +
           (size_t)M.gq * M.hd * 4; /* + the outputs */
}

size_t cu_decode_smem(const cu_model &M) {
    /* the pack, then the stash (gate|up's h, qkv's dot products) */
    size_t pack = cu_stash_at(M, M.pack_rows) + cu_stash_bytes(M, M.pack_rows);
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
    /* the fused kernel: the attention's, then the Wo slice's, up to what
     * the device allows beside its static shared memory */
    int dev = 0, optin = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess)
        e = cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    auto allow_optin = [&](void *fn) {
        cudaFuncAttributes fa;
        if (fn && e == cudaSuccess && (e = cudaFuncGetAttributes(&fa, fn)) == cudaSuccess)
            e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     optin - (int)fa.sharedSizeBytes);
    };
    for (int wt = 0; wt < CW_COUNT; wt++) allow_optin(attn_wo(wt).fn);
    /* and the decode attention's with its K/V ring, whose size depends on
     * the head size and group */
    for (int hd = 32; hd <= 128; hd += 32) allow_optin(attn_decode_fn(hd, 2));
    return e;
}

int cu_decode_blocks_per_sm(size_t smem) {
    int n = 0, m = 0; /* a projection's block size and qkv's */
    if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &n, phase_fn(CU_MAX_ROWS, CU_PH_GU, CW_Q4_K),
            cu_phase_threads(CU_PH_GU, CU_MAX_ROWS, CW_Q4_K), smem) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(
            &m, phase_fn(CU_MAX_ROWS, CU_PH_QKV, CW_Q4_K),
            cu_phase_threads(CU_PH_QKV, CU_MAX_ROWS, CW_Q4_K), smem) != cudaSuccess)
        return 0;
    return n < m ? n : m;
}

/* ---- the decode attention in a kernel of its own ------------------------ */

/* Where the attention's per-warp ring starts: after the item's scratch. */
__host__ __device__ static size_t ring_offset(const cu_model &M) {
    return (cu_attn_warps_smem_bytes(M.gq, M.hd) + 127) & ~(size_t)127;
}

/* The single-row (and few-row) decode's attention where it runs apart from
 * wo (cu_model.attn_decode): the warp-parallel form (attn_warps.cuh) at
 * 256 threads, two blocks an SM, over the step's items as phase_attn
 * (decode_attn_items), waiting as the phase kernels do (phase_wait). Why:
 * in the phase kernel (384 threads, one block an SM) an SM runs one item
 * at a time, its 8 key-group warps each walking chunks one after another
 * (load, wait, compute): at 2,048 positions the key loop streams K/V at
 * ~2.2 TB/s (cuda-notes "2026-11-28 (4)"). Two blocks an SM keep twice the
 * chunks in flight. STAGES > 0: each warp's chunks through its ring of
 * bulk copies (attn_warps.cuh; forward.cu's ring_step says which steps),
 * after the item's scratch in the dynamic shared memory, its barriers in
 * the static one. */
template <int NS, int STAGES>
__global__ void __launch_bounds__(256, CU_ATTN_DECODE_PER_SM)
    cu_attn_decode_kernel(const __grid_constant__ cu_model Mv, int l) {
    const cu_model &M = Mv;
    extern __shared__ __align__(16) uint8_t smem[];
    const unsigned long long t_start = M.tl ? globaltimer_ns() : 0;
    asm volatile("griddepcontrol.launch_dependents;");
    __shared__ uint64_t full[CU_ATTN_KW * (STAGES > 0 ? STAGES : 1)];
    __shared__ unsigned used[CU_ATTN_KW];
    if constexpr (STAGES > 0) {
        if (threadIdx.x < CU_ATTN_KW * STAGES) mbar_init(&full[threadIdx.x], 1);
        if (threadIdx.x < CU_ATTN_KW) used[threadIdx.x] = 0;
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        __syncthreads();
    }
    const cu_kv_ring ring = {smem + ring_offset(M), full, used};
    decode_attn_items(
        M, l, [&](const cu_step &st, const attn_args &A, int i, int hg, int c, auto wait) {
            attn_item_warps<NS, 256, STAGES>(M, st, l, A, i, hg, c, (float *)smem, wait, ring);
        });
    tl_start(M, l, CU_PH_ATTN, t_start);
    tl_mark(M, l, CU_PH_ATTN, 2);
}

/* The kernel for head size hd, form 1 (K/V into registers) or 2 (through
 * the per-warp ring). */
static void *attn_decode_fn(int hd, int form) {
    return by_head_size(hd, [form](auto ns) {
        constexpr int NS = decltype(ns)::value;
        return form == 2 ? (void *)cu_attn_decode_kernel<NS, cu_ring_stages(NS)>
                         : (void *)cu_attn_decode_kernel<NS, 0>;
    });
}

bool cu_attn_decode_supported(int hd) { return attn_decode_fn(hd, 1) != nullptr; }

static size_t attn_decode_smem(const cu_model &M) {
    return ring_offset(M) + (M.attn_decode == 2 ? cu_attn_ring_bytes(M.hd) : 0);
}

cudaError_t cu_decode_launch(const cu_model &M, const cu_layer *layers_host, int nr,
                             const cu_launch &L, int grid, size_t smem, int pdl, int wo_slices,
                             cudaStream_t s) {
    if (wo_slices > 0 && L.ph == CU_PH_WO) return cudaSuccess; /* in the attention's launch */
    int l = L.layer, i0 = L.i0, i1 = L.i1;
    void *args[] = {(void *)&M, (void *)&layers_host[l], (void *)&l, (void *)&i0, (void *)&i1};
    void *dargs[] = {(void *)&M, (void *)&l}, **kargs = args;
    cudaLaunchConfig_t cfg = {};
    cfg.gridDim = dim3(L.ph == CU_PH_ARGMAX ? 1 : grid);
    cfg.blockDim = dim3(cu_phase_threads(L.ph, nr, L.wt));
    cfg.dynamicSmemBytes = smem;
    cfg.stream = s;
    void *fn = phase_fn(nr, L.ph, L.wt);
    int frag_off = (int)wo_frag_base(M, layers_host[l], smem);
    if (wo_slices > 0 && L.ph == CU_PH_ATTN) { /* attn_wo.cuh: (head group, Wo slice) blocks */
        fn = attn_wo(layers_host[l].wo.wt).fn;
        cfg.gridDim = dim3(M.n_heads / M.gq * wo_slices);
        cfg.dynamicSmemBytes = cu_attn_wo_smem(M, layers_host[l], smem, wo_slices);
        args[3] = (void *)&wo_slices, args[4] = (void *)&frag_off;
    }
    if (wo_slices == 0 && L.ph == CU_PH_ATTN && M.attn_decode) { /* two blocks an SM */
        fn = attn_decode_fn(M.hd, M.attn_decode);
        cfg.gridDim = dim3(CU_ATTN_DECODE_PER_SM * grid);
        cfg.blockDim = dim3(256);
        cfg.dynamicSmemBytes = attn_decode_smem(M);
        kargs = dargs; /* (M, l) */
    }
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    /* pdl 2: not for wo, so that the attention before it has the memory
     * system to itself instead of wo's early weight loads queued ahead */
    attr.val.programmaticStreamSerializationAllowed = pdl == 1 || (pdl == 2 && L.ph != CU_PH_WO);
    cfg.attrs = &attr;
    cfg.numAttrs = 1;
    if (!fn) return cudaErrorInvalidValue;
    return cudaLaunchKernelExC(&cfg, fn, kargs);
}

/* ---- attention over a list of rows (prefill path, short runs) --------- */

__global__ void __launch_bounds__(256) cu_attn_rows_kernel(cu_model M, int layer, attn_args A) {
    extern __shared__ __align__(16) uint8_t smem[];
    const cu_step &st = *M.step;
    int n_hg = M.n_heads / M.gq, per_row = n_hg * A.n_splits;
    int it = blockIdx.x;
    int i = it / per_row, hg = (it % per_row) / A.n_splits, c = it % A.n_splits;
    if (M.kv_type == CU_KV_Q8)
        attn_item<CU_KV_Q8, 256>(M, st, layer, A, i, hg, c, (float *)smem);
    else
        attn_item<CU_KV_F16, 256, attn_no_wait, false>(M, st, layer, A, i, hg, c,
                                                       (float *)smem); /* keeps its registers */
}

/* The warp-parallel form alone (f16 cache; tune.attn_rows), one
 * instantiation a head size, MINB blocks an SM. The kernel above holds the
 * ring item's registers and shared memory, so one block an SM runs, and an
 * item at a short context is a chain of round trips with little work: a
 * 32-sequence decode step after 128 positions spent 52 us a layer in it
 * (ncu, H200), ~4x its K/V bytes' time. */
template <int NS, int MINB>
__global__ void __launch_bounds__(256, MINB)
    cu_attn_rows_warps_kernel(cu_model M, int layer, attn_args A) {
    extern __shared__ __align__(16) uint8_t smem[];
    const cu_step &st = *M.step;
    int n_hg = M.n_heads / M.gq, per_row = n_hg * A.n_splits;
    int it = blockIdx.x;
    int i = it / per_row, hg = (it % per_row) / A.n_splits, c = it % A.n_splits;
    attn_item_warps<NS, 256>(M, st, layer, A, i, hg, c, (float *)smem, attn_no_wait());
}

template <int MINB> static void *attn_rows_warps_fn(int hd) {
    return by_head_size(
        hd, [](auto ns) { return (void *)cu_attn_rows_warps_kernel<decltype(ns)::value, MINB>; });
}

cudaError_t cu_attn_rows_launch(const cu_model &M, int layer, const attn_args &A, int form,
                                cudaStream_t s) {
    int n_items = A.n_list * (M.n_heads / M.gq) * A.n_splits;
    if (n_items == 0) return cudaSuccess;
    void *wf = form == 1   ? attn_rows_warps_fn<1>(M.hd)
               : form == 2 ? attn_rows_warps_fn<2>(M.hd)
                           : nullptr;
    if (wf && M.kv_type == CU_KV_F16) {
        cu_model Mc = M;
        attn_args Ac = A;
        void *args[] = {(void *)&Mc, (void *)&layer, (void *)&Ac};
        return cudaLaunchKernel(wf, dim3(n_items), dim3(256), args,
                                cu_attn_warps_smem_bytes(M.gq, M.hd), s);
    }
    size_t smem = cu_attn_smem_floats(M.gq, M.hd, A.chunk) * 4;
    static bool configured = false;
    if (!configured) {
        cudaError_t e = cudaFuncSetAttribute(
            cu_attn_rows_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
            (int)(cu_attn_smem_floats(CU_ATTN_GQ_MAX, 256, CU_ATTN_CHUNK_MAX) * 4));
        if (e != cudaSuccess) return e;
        configured = true;
    }
    cu_attn_rows_kernel<<<n_items, 256, smem, s>>>(M, layer, A);
    return cudaGetLastError();
}
