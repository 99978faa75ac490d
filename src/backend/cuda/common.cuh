/*
 * What every CUDA file of the backend shares: the device-side model and
 * step descriptors, memory access helpers that say which cache they go
 * through, and warp reductions.
 *
 * Cache discipline. Weights never change while a kernel runs: they are
 * read with ld.global.nc and L1::no_allocate (streamed once per token).
 * What one block writes and another reads within a kernel (attention
 * partials) or across overlapping kernels (programmatic dependent launch:
 * residual, q, K/V cache, activations) is read with ld.global.cg, which
 * skips the non-coherent L1.
 */
#ifndef ZT_BACKEND_CUDA_COMMON_CUH
#define ZT_BACKEND_CUDA_COMMON_CUH

#include "backend/cuda/units.h"

#include <cuda_fp16.h>
#include <stdint.h>

#define CU_WARP          32
#define CU_MAX_ROWS      8   /* rows of one decode-kernel step */
#define CU_DEC_THREADS   384 /* threads per block of the phase kernels (168 registers each) */
#define CU_DEC_WARPS     (CU_DEC_THREADS / CU_WARP)
#define CU_PROJ_THREADS  512 /* ... but the weight phases' (128 each; cu_phase_threads) */
#define CU_DEC_WARPS_MAX (CU_PROJ_THREADS / CU_WARP)
#define CU_ROPE_HALF_MAX 128 /* rope_dim / 2 <= 128 (head_dim <= 256) */
#define ZT_KV_PAGE_CU    16  /* == ZT_KV_PAGE (checked in forward.cu) */

/* Before a loop that a thread runs a few times a launch (a block's share
 * of a row's worth of work: the packs, the epilogues, the attention's
 * merge): one copy of its body. Left alone, nvcc unrolls a loop of
 * unknown trip count by 4 or 16 with remainder loops, and a launch fetches
 * all that code cold for one or two passes (the phase kernels' code does
 * not stay in the SM's instruction caches from one launch to the next:
 * 2026-11-29-cuda-h200-8.md; the copies: -9). */
#define CU_COLD_LOOP _Pragma("unroll 1")

/* Division by a divisor fixed for the model (head_dim, the QKV
 * epilogue's), as a multiply-high and a shift instead of a run-time
 * integer division's ~20 instructions, code the phase kernels fetch cold
 * every launch (2026-11-29-cuda-h200-9.md). For n < 2^31, with l =
 * ceil(log2 d) and m = 2^32 (2^l - d) / d + 1: n / d = (umulhi(n, m) + n)
 * >> l (the round-up method of Granlund and Montgomery; umulhi(n, m) < n
 * keeps the sum in 32 bits). */
struct cu_div {
    unsigned m;
    int l;
};
static inline cu_div cu_div_make(unsigned d) {
    cu_div v = {0, 0};
    while ((1ull << v.l) < d) v.l++;
    v.m = (unsigned)((((unsigned long long)1 << 32) * ((1ull << v.l) - d)) / d + 1);
    return v;
}
__device__ __forceinline__ int cu_div_q(int n, const cu_div &v) {
    return (int)((__umulhi((unsigned)n, v.m) + (unsigned)n) >> v.l);
}

/* The row of entry i of a block's flat range over rows of `per` entries
 * (i / per): at one row (NR == 1) every entry in range is row 0, so the
 * one-row kernels divide nothing (a run-time division is ~20 instructions
 * that those kernels run once a launch, fetched cold:
 * 2026-11-29-cuda-h200-9.md). Callers check the range themselves. */
template <int NR> __device__ __forceinline__ int row_of_entry(int i, int per) {
    return NR == 1 ? 0 : i / per;
}

/* ---- device descriptors ---------------------------------------------- */

struct cu_mat {
    int wt, n_in, n_out;             /* enum cuda_wtype; n_in % 32 == 0 (zero-padded) */
    const uint8_t *q, *a1, *a2, *a3; /* streams, units.h */
};

struct cu_layer {
    cu_mat mq, mk, mv; /* Q, K, V rows: row oq + i of mq, ... (one fused matrix or three) */
    int oq, ok, ov;
    cu_mat mg, mu; /* gate row og + i of mg, up row ou + i of mu */
    int og, ou;
    cu_mat wo, down;
    const float *attn_norm, *ffn_norm; /* [dim] */
    const float *bias;                 /* [qkv_dim] q|k|v bias, or NULL */
    const float *next_norm;            /* the next layer's attn_norm, or NULL (the last) */
};

/* One forward call's rows, in device memory (one upload per call). */
struct cu_step {
    int n_rows, n_out, want_logits;
    int n_splits, chunk;           /* decode attention: splits per row, positions per split */
    int pt_stride;                 /* pages per row of pt */
    const int *token, *pos, *cseq; /* [n_rows]; cseq indexes pt */
    const int *out_row;            /* [n_out] */
    const int *pt;                 /* [n_cseq][pt_stride] physical pages */
    const float2 *rope;            /* decode steps: [n_rows][rope_half] (cos, sin); always
                                      at cu_model.step_rope, right after this header */
    int kv_at[CU_MAX_ROWS];        /* decode steps: where row r's new K/V goes, page *
                                      ZT_KV_PAGE_CU + slot (the host walked the page table) */
    int row_pos[CU_MAX_ROWS];      /* decode steps: pos[r] (attention.cuh's attn_row) */
    int row_pt[CU_MAX_ROWS];       /* decode steps: row r's pages at pt + row_pt[r] */
};

enum { CU_KV_F16 = 0, CU_KV_Q8 = 1 };

struct cu_model {
    int dim, ffn, n_layers, n_heads, n_kv, hd, q_dim, kv_dim, qkv_dim, vocab;
    int dim_p, q_dim_p, ffn_p; /* dim, q_dim, ffn rounded up to 32: the n_in of the matrices
                                  that read them and the row stride of their f16 copies */
    int gq;                    /* query heads per attention item (divides n_heads / n_kv) */
    int rope_half, rope_interleaved, window; /* window 0 = full */
    cu_div hd_div;                           /* by hd (cu_div_q) */
    float eps, attn_scale;
    const float *inv_freq;  /* [rope_half] */
    const cu_layer *layers; /* [n_layers] */
    cu_mat embd, out;
    const float *out_norm; /* [dim] */

    int kv_type, n_pages;
    uint8_t *kc, *vc; /* [n_layers][n_pages][n_kv][16][hd] f16 or int8 */
    float *ks, *vs;   /* q8: [n_layers][n_pages][n_kv][16] scales */

    /* decode scratch, CU_MAX_ROWS rows */
    float *resid;       /* [R][dim] residual stream */
    float *qbuf;        /* [R][q_dim] roped queries */
    float *kvstage;     /* [R][2][kv_dim] new K, V before int8 quantization */
    float *attn;        /* [R][q_dim] attention output */
    float *hbuf;        /* [R][ffn] silu(gate) * up */
    float *part_o;      /* [R][n_heads][max_splits][hd] unnormalized split outputs */
    float2 *part_ml;    /* [R][n_heads][max_splits] (max, sum) */
    unsigned *attn_cnt; /* [R][n_kv] splits finished */
    float *logits;      /* [R][vocab] */
    float2 *amax_part;  /* [grid][R] (value, index) */
    int *argmax;        /* [R] */
    int max_splits;
    int xb_max;     /* max n_in / 32 over decode matmuls */
    int has_float;  /* some matmul has float weights: f32 activations in smem (2: every
                       matmul has, so the packs need no int8 codes) */
    int pack_rows;  /* rows the shared-memory pack holds (<= CU_MAX_ROWS) */
    int pf_bytes;   /* L2 prefetch budget per block per phase (0: none) */
    int pf_mode;    /* bit 0: next phase's weights after the wait; bit 1: own, before it */
    int pack_first; /* the weight phases (bit 1 << ph) that build the pack before their first
                       weight loads */
    int attn_mma;   /* attention scores and PV on tensor cores where they can be */
    int h_pack;     /* gate|up's phase kernels quantize h once (into hq, hbuf unwritten) and
                       down's copy it (decode.cuh's h_pack_build); set per step variant */
    int h_rows;     /* ... the most h rows a gate|up block owns (0: the model cannot) */
    int stash_ld;   /* floats a step row of the phase kernels' stash (pack.cuh): gate|up's h
                       (h_rows) or qkv's dot products (2 x the most pairs a block owns) */
    uint4 *hq;      /* ... h's pack: int8 lo [R][ffn / 32], hi, then float4 (dx, s0, s1) */
    int x_pack;     /* down's phase kernels quantize the next qkv's input once (into xq) and
                       qkv's copy it (decode.cuh's x_pack_publish); set per step variant */
    int g_pack;     /* ... the same from wo's phase kernels for gate|up's (its norm: ffn_norm) */
    int x_ok;       /* ... the model can (integer weights, dim a multiple of 32) */
    uint4 *xq;      /* ... x's pack: int8 lo [R][dim / 32], hi, then float4 (dx, s0, s1, the
                       x-block's sum of squares) */
    unsigned *xcnt; /* ... [dim / 32] rows of each x-block down has added (its last block
                       quantizes it and sets it back to 0) */
    int lm_blocks;  /* blocks of the lm phase (argmax merges that many) */
    int kv_evict;   /* the decode attention's K/V ring copies: evict-first in L2 (1) or
                       the default policy (0) (tune.kv_evict) */
    int attn_decode; /* the decode steps' attention apart from wo: the warp-parallel form in a
                        kernel of its own at two blocks an SM, K/V into registers (1) or
                        through a per-warp ring (2; tune.attn_decode), or the phase kernel
                        (0) */
    unsigned long long *tl;   /* phase kernels' timeline, or NULL: CU_TL_AT(l, ph, block) holds
                                 CU_TL_FIELDS %globaltimer ns of the block: its start, when its
                                 wait on the previous kernel returned, its end, and marks 3..5
                                 (tl_mark: weight phases prologue done / items done; attention
                                 queries loaded / scores / PV done); then its SM (tl_start) */
    const cu_step *step;
    const float2 *step_rope; /* the step's rope table (cu_step.rope): a kernel reads it without
                                reading the step first */
};

#define CU_PH_SLOTS      8    /* == CU_PH_COUNT (kernels.h) */
#define CU_TL_BLOCKS     1024 /* blocks a phase kernel may have, for the timeline's stride */
#define CU_TL_FIELDS     7
#define CU_TL_AT(l, ph, blk)                                                                       \
    ((((size_t)(l)*CU_PH_SLOTS + (ph)) * CU_TL_BLOCKS + (blk)) * CU_TL_FIELDS)

__device__ __forceinline__ unsigned long long globaltimer_ns() {
    unsigned long long t;
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    return t;
}

/* Field f of this block's timeline entry for (layer l, phase ph), when on. */
__device__ __forceinline__ void tl_mark(const cu_model &M, int l, int ph, int f) {
    if (M.tl && threadIdx.x == 0) M.tl[CU_TL_AT(l, ph, blockIdx.x) + f] = globaltimer_ns();
}

/* The block's start (field 0, read at its start as t_start) and its SM
 * (field 6), written at its end, when the timeline is on. */
__device__ __forceinline__ void tl_start(const cu_model &M, int l, int ph,
                                         unsigned long long t_start) {
    if (M.tl && threadIdx.x == 0) {
        unsigned sm;
        asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
        M.tl[CU_TL_AT(l, ph, blockIdx.x)] = t_start;
        M.tl[CU_TL_AT(l, ph, blockIdx.x) + 6] = sm;
    }
}

/* Rows (a, b) of the fused-QKV row space forming pair p, and its RoPE
 * frequency index j (-1: not rotated). Heads are hd rows: Q heads, then
 * K heads, then V heads; Q/K dims below rope_dim pair as the model's
 * convention says, every other dim pairs with its neighbour. */
__device__ __forceinline__ void qkv_pair(const cu_model &M, int p, int &a, int &b, int &j) {
    /* p / (hd / 2) as 2p / hd: hd is even (forward.cu checks hd % 8) */
    const int hp = M.hd / 2, hh = cu_div_q(2 * p, M.hd_div), i = p - hh * hp, base = hh * M.hd;
    bool rot = hh < M.n_heads + M.n_kv;
    if (rot && i < M.rope_half) {
        j = i;
        a = base + (M.rope_interleaved ? 2 * i : i);
        b = M.rope_interleaved ? a + 1 : a + M.rope_half;
    } else {
        j = -1;
        a = base + (rot ? 2 * M.rope_half + 2 * (i - M.rope_half) : 2 * i);
        b = a + 1;
    }
}

/* ---- loads ------------------------------------------------------------ */

/* Weights go through L1 unallocated (they are read once per token). */
__device__ __forceinline__ uint4 ld_weight16(const void *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}
__device__ __forceinline__ uint32_t ld_weight4(const void *p) {
    uint32_t v;
    asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
    return v;
}
__device__ __forceinline__ uint2 ld_weight8(const void *p) {
    uint2 v;
    asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];"
                 : "=r"(v.x), "=r"(v.y)
                 : "l"(p));
    return v;
}
__device__ __forceinline__ uint16_t ld_weight2(const void *p) {
    uint16_t v;
    asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];" : "=h"(v) : "l"(p));
    return v;
}

/* The evict-first L2 policy as a cache-hint operand, for bytes read once a
 * step that should not push out of L2 what the step reads again soon
 * (activations, the kernels' code): the decode attention's K/V ring copies
 * (tune.kv_evict; +5-11% after 2,048 positions, 2026-11-29-cuda-h200-3.md).
 * For weights it paid only where they went through shared memory (the
 * staged kernels, since removed: 351 -> 436 tok/s); the phase kernels'
 * register loads lost with it, 526 -> 514 (2026-11-26-cuda-h100-4.md). */
__device__ __forceinline__ uint64_t evict_first_policy() {
    uint64_t pol;
    asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
    return pol;
}

/* The default (evict-normal) L2 policy as a cache-hint operand. */
__device__ __forceinline__ uint64_t normal_policy() {
    uint64_t pol;
    asm("createpolicy.fractional.L2::evict_normal.b64 %0, 1.0;" : "=l"(pol));
    return pol;
}

/* L2 prefetch of [p, p + bytes) (p 16-aligned, bytes a multiple of 16). */
__device__ __forceinline__ void prefetch_l2(const void *p, unsigned bytes) {
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

/* ---- asynchronous copies into shared memory (cp.async) ----------------- */

/* 16 bytes, L2 only (.cg), of which src_bytes are read and the rest zeroed. */
__device__ __forceinline__ void cp_async16(void *smem, const void *gmem, int src_bytes = 16) {
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(s), "l"(gmem), "r"(src_bytes)
                 : "memory");
}
/* 4 or 8 bytes (.ca: the only form for copies under 16 bytes). */
template <int BYTES> __device__ __forceinline__ void cp_async_small(void *smem, const void *gmem) {
    static_assert(BYTES == 4 || BYTES == 8, "cp.async.ca copies 4, 8 or 16 bytes");
    unsigned s = (unsigned)__cvta_generic_to_shared(smem);
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2;" ::"r"(s), "l"(gmem), "n"(BYTES)
                 : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;" ::: "memory");
}
/* This thread's copies, all but the N most recent groups, have landed. */
template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory");
}
__device__ __forceinline__ void cp_async_wait_all() {
    asm volatile("cp.async.wait_all;" ::: "memory");
}

/* ---- mbarriers and bulk copies (TMA, sm_90) ---------------------------- */

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}
__device__ __forceinline__ void mbar_init(uint64_t *b, unsigned count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_u32(b)), "r"(count)
                 : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t *b, unsigned bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_u32(b)),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *b, unsigned parity) {
    uint32_t done;
    do {
        asm volatile("{\n .reg .pred p;\n"
                     " mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     " selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(smem_u32(b)), "r"(parity)
                     : "memory");
    } while (!done);
}
/* This thread's shared-memory accesses so far ordered before its later
 * bulk copies' writes (the async proxy): a stage read, then refilled. */
__device__ __forceinline__ void fence_proxy_async() {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
/* dst, src 16-byte aligned, bytes a multiple of 16; completes on bar
 * (its transaction count), with L2 cache policy pol (evict_first_policy
 * for data read once a step). */
__device__ __forceinline__ void bulk_copy_policy(void *dst, const void *src, unsigned bytes,
                                                 uint64_t *bar, uint64_t pol) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
                 " [%0], [%1], %2, [%3], %4;" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(bytes), "r"(smem_u32(bar)), "l"(pol)
                 : "memory");
}

/* ---- tensor cores (the GEMM and the prefill attention) ----------------- */

/* (a, b) rounded to f16, a in the low half: one register of a fragment. */
__device__ __forceinline__ uint32_t pack_half2(float a, float b) {
    __half2 h = __floats2half2_rn(a, b);
    return *reinterpret_cast<uint32_t *>(&h);
}

/* c += a . b: one m16n8k16 HMMA, f16 operands, f32 accumulators. */
__device__ __forceinline__ void mma_16816(float c[4], const uint32_t a[4], uint32_t b0,
                                          uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

/* Four 8x8 f16 matrices from shared memory: lane l gives the address of
 * row l % 8 of matrix l / 8; r[m] receives this lane's pair of matrix m
 * (row lane / 4, columns 2 (lane % 4), +1): an mma fragment. */
__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *smem_row) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* As ldsm_x4, each matrix transposed: r[m] holds rows 2 (lane % 4), +1 of
 * column lane / 4 (the B fragment of a row-major [k][n] tile). */
__device__ __forceinline__ void ldsm_x4_trans(uint32_t r[4], const void *smem_row) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(smem_row);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

/* ---- barriers ---------------------------------------------------------- */

/* A barrier over the first NTH threads of the block (named barrier 1),
 * called with the whole block (phase kernels: NTH = cu_phase_threads; the
 * attention kernels: 256): __syncthreads with the count in the code, so a
 * helper shared by kernels of several block sizes says which it expects. */
template <int NTH> __device__ __forceinline__ void cta_sync() {
    asm volatile("bar.sync 1, %0;" ::"n"(NTH) : "memory");
}

/* ---- reductions ------------------------------------------------------- */

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* (value, index) max with the smaller index winning ties; NaN loses. */
__device__ __forceinline__ void argmax_merge(float &v, int &i, float v2, int i2) {
    if (v2 > v || (v2 == v && i2 < i) || (v != v && v2 == v2)) {
        v = v2;
        i = i2;
    }
}

__device__ __forceinline__ float silu_f(float x) { return x / (1.0f + __expf(-x)); }

#endif
