/*
 * Launchers of the CUDA kernels (C++, between the .cu files): forward.cu
 * calls these and nothing else. Each returns the launch's cudaError_t.
 */
#ifndef ZT_BACKEND_CUDA_KERNELS_H
#define ZT_BACKEND_CUDA_KERNELS_H

#include "backend/cuda/attention.cuh"

#include <cuda_runtime.h>

/* Decode phases (decode.cu). */
enum {
    CU_PH_QKV,
    CU_PH_KVQ,
    CU_PH_ATTN,
    CU_PH_WO,
    CU_PH_GU,
    CU_PH_DOWN,
    CU_PH_LM,
    CU_PH_ARGMAX,
    CU_PH_COUNT
};
static_assert(CU_PH_COUNT == CU_PH_SLOTS && CU_PH_ATTN == CU_PH_ATTN_SLOT, "the timeline's slots");

/* The threads of phase ph's blocks for row template nr and weight type
 * wt: the weight phases (qkv, wo, gate|up, down, lm_head) 16 warps at 128
 * registers, their GEMV chunks halved to fit (gemv.cuh's chunk_u; qkv's
 * RoPE and cache stores after its items, decode.cuh's qkv_finish); qkv
 * from 4 rows or with float weights, kvq, the attention and argmax 12
 * warps at 168. Why: a phase is bound by the warps issuing work on an SM
 * more than by the bytes each has in flight (2026-11-29-cuda-h200-4.md:
 * persist_bench at 16 warps 4-6% faster than at 12, at 6 warps 33%
 * slower); qkv's K-quant kernels from 4 rows spill at 128 registers and
 * lost 1% at 8 rows (2026-11-29-cuda-h200-5.md), and F16's qkv (long
 * rows, half the chunk a warp) decodes 0.8-1.8% faster at 12 warps
 * (2026-11-29-cuda-h200-6.md). */
__host__ __device__ constexpr int cu_phase_threads(int ph, int nr, int wt) {
    return (ph == CU_PH_QKV && nr < 4 && wt != CW_F16 && wt != CW_BF16) || ph == CU_PH_WO ||
                   ph == CU_PH_GU || ph == CU_PH_DOWN || ph == CU_PH_LM
               ? CU_PROJ_THREADS
               : CU_DEC_THREADS;
}

struct attn_args;

/* ---- decode.cu: the decode step ---- */
size_t cu_decode_smem(const cu_model &M);
cudaError_t cu_decode_setup(size_t smem);
int cu_decode_blocks_per_sm(size_t smem);
/* One launch of a decode step: phase ph of layer `layer`, for weight type
 * wt; QKV pairs [i0, i1) (a run of Q/K/V segments of type wt). */
struct cu_launch {
    int ph, layer, wt, i0, i1;
};
/* M: the descriptor, passed by value (a graph captured with it must be
 * rebuilt when it changes), and so is layer L.layer's (layers_host: the
 * host's copy of M.layers). nr: the row template (1, 2, 4, 8) >= the
 * step's n_rows. pdl: programmatic dependent launch (1), or for every
 * phase but wo (2). wo_slices > 0 (a step of one row, one key split, the
 * f16 cache): the attention launch is the fused attention + wo kernel
 * (attn_wo.cuh) with that many Wo slices a head group, and the wo launch
 * is none. */
cudaError_t cu_decode_launch(const cu_model &M, const cu_layer *layers_host, int nr,
                             const cu_launch &L, int grid, size_t smem, int pdl, int wo_slices,
                             cudaStream_t s);
/* Whether attn_wo.cuh has a kernel for Wo of weight type wt, and the
 * shared memory its launch for layer L takes (smem: the phase kernels'). */
bool cu_attn_wo_supported(int wt);
size_t cu_attn_wo_smem(const cu_model &M, const cu_layer &L, size_t smem, int slices);
/* Whether the decode attention's kernel of its own (cu_model.attn_decode)
 * takes heads of hd dims; its launch has this many blocks an SM. */
bool cu_attn_decode_supported(int hd);
#define CU_ATTN_DECODE_PER_SM 2
/* The weight phases (bit 1 << ph): cu_model.pack_first's and
 * tune.long_pack's mask. */
#define CU_WEIGHT_PHASES                                                                           \
    (1u << CU_PH_QKV | 1u << CU_PH_WO | 1u << CU_PH_GU | 1u << CU_PH_DOWN | 1u << CU_PH_LM)
/* Attention over a list of rows (the batched path's rows that are no
 * tile run); form 1 or 2: the warp-parallel form in a kernel of its own
 * compiled for that many blocks an SM (f16 cache, head_dim 32, 64, 96 or
 * 128), else (0) the ring item as the decode step takes it. */
cudaError_t cu_attn_rows_launch(const cu_model &M, int layer, const attn_args &A, int form,
                                cudaStream_t s);

/* ---- prefill.cu: row-parallel kernels of the batched path ---- */
/* x[r] = embedding row of token[r]                     x: [n][dim] f32 */
cudaError_t cu_embed_launch(const cu_model &M, int n, const int *token, float *x, cudaStream_t s);
/* y[r] = f16(x[map(r)] * rstd * gamma)   y: [n][dim_p] (pad columns untouched) */
cudaError_t cu_rmsnorm_launch(const cu_model &M, int n, const float *x, const int *row_map,
                              const float *gamma, __half *y, cudaStream_t s);
/* bias + RoPE on qkv [n][qkv_dim] (in place), q -> q16 [n][q_dim],
 * K/V -> paged cache (f16 or int8) for rows [0, n) of the step. */
cudaError_t cu_rope_kv_launch(const cu_model &M, int layer, int n, float *qkv, const float *bias,
                              __half *q16, cudaStream_t s);
/* h[r][i] = f16(silu(gu[r][i]) * gu[r][ffn + i])   h: [n][ffn_p] */
cudaError_t cu_silu_launch(const cu_model &M, int n, const float *gu, __half *h, cudaStream_t s);
/* out[r] = argmax of logits[r][0..vocab) */
cudaError_t cu_argmax_launch(const cu_model &M, int n, const float *logits, int *out,
                             cudaStream_t s);

/* ---- gemm.cu: tensor-core GEMM on dequantized weight tiles ---- */
enum { CU_GEMM_STORE = 0, CU_GEMM_ADD = 1, CU_GEMM_ATOMIC = 2, CU_GEMM_SILU = 3 };
#define CU_GEMM_DEPTH_MAX 4
cudaError_t cu_gemm_setup(void);
/* C[m][n] (op)= sum_k A[m][k] * W[row0 + n][k] for m < M, n < N.
 * A: [M][lda] f16. split > 1 divides K (mode must be ATOMIC). depth
 * (1..CU_GEMM_DEPTH_MAX, tune.gemm_depth): the k-steps a thread keeps in
 * flight when M <= 64 (the sums do not depend on it). */
cudaError_t cu_gemm_launch(const __half *A, int lda, int M, const cu_mat &W, int row0, int N,
                           float *C, int ldc, int mode, int split, int depth, cudaStream_t s);
/* h[m][c] = f16(silu(A . gate[gate_row0 + c]) * (A . up[up_row0 + c])) for
 * c < N, one launch (the weight types must match; no K split). */
cudaError_t cu_gemm_silu_launch(const __half *A, int lda, int M, const cu_mat &gate, int gate_row0,
                                const cu_mat &up, int up_row0, int N, __half *h, int ldh, int depth,
                                cudaStream_t s);

/* ---- attn_prefill.cu: causal tiled attention on tensor cores ---- */
struct cu_attn_tile {
    int row0, n; /* batch rows [row0, row0 + n): one sequence, consecutive positions */
};
bool cu_attn_tiles_supported(int hd);
cudaError_t cu_attn_tiles_setup(void); /* once: the kernels' shared memory limits */
cudaError_t cu_attn_tiles_launch(const cu_model &M, int layer, const cu_attn_tile *tiles,
                                 int n_tiles, const __half *q16, __half *out16, cudaStream_t s);

#endif
