/*
 * CUDA-only knobs beyond the backend contract, for the benchmark and the
 * CUDA tests: which decode variant runs, the L2 prefetch policy, and a
 * per-phase timing of one decode step. The defaults are the variant the
 * recorded benchmarks (bench/results) chose.
 */
#ifndef ZT_BACKEND_CUDA_CUDA_BACKEND_H
#define ZT_BACKEND_CUDA_CUDA_BACKEND_H

#include "backend/backend.h"

#ifdef __cplusplus
extern "C" {
#endif

enum zt_cuda_decode_mode {
    ZT_CUDA_GRAPH = 0, /* the step's phase kernels replayed from one CUDA graph */
    ZT_CUDA_PHASES = 1 /* the same kernels launched one by one */
};

typedef struct zt_cuda_tuning {
    int decode_mode;     /* enum zt_cuda_decode_mode */
    int pf_bytes;        /* L2 prefetch per block per phase, bytes (0 = none) */
    int pf_mode;         /* bit 0: the next phase's weights, after the wait;
                            bit 1: this phase's, before waiting on the previous */
    int max_decode_rows; /* rows up to which the GEMV decode step runs (0 = never) */
    int pdl;             /* phase kernels: programmatic dependent launch (1; 2: but not for
                            the launch after attention) */
    int attn_min_chunk;  /* decode attention: fewest positions per split (16..1024, by 16) */
    int attn_items;      /* decode attention: (row, head group, split) items per block of
                            its launch the splits aim at (1..16) */
    int pack_first;      /* phase kernels: build the activation pack before the first weight
                            loads (else after them, beside their latency) */
    int gemm_tail;       /* batched path: a GEMM's last, mostly empty wave of tiles split
                            over K into a wave of its own (1) or left as it is (0) */
    int long_from;       /* decode steps with a row at this many positions of context or more
                            are long ones (0: none; the others build their packs as
                            pack_first says) ... */
    int long_pack;       /* ... whose weight phases in this mask (bit 1 << zt_cuda_phase_name's
                            index) build their activation pack before their first weight
                            loads, the others after them */
    int fuse_wo;         /* single-sequence decode steps in one key split with the f16 cache:
                            the attention and wo as one launch (attn_wo.cuh) */
    int wo_slices;       /* ... its Wo slices per head group (1..16) */
    int fold_upto;       /* ... and up to this many positions of context such steps take one
                            key split whatever attn_min_chunk says (0: as it says) */
    int attn_mma;        /* decode attention: scores and PV on tensor cores (1) where the
                            cache is f16 and head_dim a multiple of 16 up to 128, else (0)
                            by FMAs; 2: the warp-parallel form (attn_warps.cuh) where
                            head_dim is 32, 64, 96 or 128, else as 1 */
    int h_pack;          /* phase kernels: gate|up quantizes h once for down (1), or each of
                            down's blocks does (0) */
    int gemm_depth;      /* batched path, GEMMs of up to 64 rows: k-steps of weights a
                            thread keeps in flight (1..4) */
    int attn_rows;       /* batched path, attention of rows outside tile runs, with attn_mma
                            2: the warp-parallel form in a kernel of its own compiled for 1
                            or 2 blocks an SM, or (0) the ring item */
    int x_pack;          /* phase kernels: down quantizes the next qkv's input once (1), or
                            each of qkv's blocks does (0) */
    int g_pack;          /* ... and the wo phase kernel gate|up's (where wo is not fused with
                            the attention) */
    int gemm_split;      /* batched path, GEMMs of up to 64 rows: K splits by a count of
                            waves and k-steps (1), or doubled until the grid fills the SMs */
    int attn_decode;     /* decode steps whose attention runs apart from wo, f16 cache, with
                            attn_mma 2: the warp-parallel form in a kernel of its own, two
                            blocks of 8 key-group warps an SM, each warp's K/V into its
                            registers (1), or through a ring of bulk copies of its own in steps
                            where a row sees 256 positions or more (2), or in the phase
                            kernel, one block (0) */
    int kv_evict;        /* ... its per-warp rings' copies of K/V evict first in L2 (1),
                            or take the default policy (0) */
    int ring_keys;       /* ... the rings also where the step's rows see this many keys
                            together (0: only by the 256 positions of one row) */
} zt_cuda_tuning;

void zt_cuda_get_tuning(const zt_backend *b, zt_cuda_tuning *t);
int zt_cuda_set_tuning(zt_backend *b, const zt_cuda_tuning *t, zt_error *err);

/* Runs f (which must take the decode path) phase by phase with events in
 * between; ms[ph] receives the summed milliseconds of each phase kind
 * (CU_PH_* order: qkv, kvq, attn, wo, gu, down, lm, argmax). */
#define ZT_CUDA_N_PHASES 8
int zt_cuda_profile_decode(zt_backend *b, const zt_fwd *f, double ms[ZT_CUDA_N_PHASES],
                           zt_error *err);
const char *zt_cuda_phase_name(int ph);

/* Runs f (a decode-sized batch) once through the phase kernels as the
 * tuning says (graph or one by one) with their %globaltimer timeline on.
 * For each launch k < *n of the step (at most cap): its phase (zt_cuda_
 * phase_name), its layer, and in microseconds from the step's first block
 * start: t[k][0] its first block's start, [1] when its last block got past
 * the wait on the previous kernel, [2] its last block's end, [3] the mean
 * over its blocks of (end - wait): the work a block does once it may;
 * [4..6] the mean, over the blocks that reached them, of the time from the
 * previous mark (the wait for [4]) to mark 3, 4, 5: weight phases prologue
 * (pack) done, items done; attention queries loaded, scores
 * done, PV done; [7] its last block's start; [8] the mean over its blocks
 * of start -> past the wait (a ramp is late blocks, or slow ones); [9] how
 * many of its blocks started on an SM before the previous launch's last
 * block there ended (beside it), [10] the mean over its blocks of start
 * minus that end (negative: beside it; positive: the SM idled between). */
#define ZT_CUDA_TL_FIELDS 11
int zt_cuda_timeline(zt_backend *b, const zt_fwd *f, int cap, int *n, int *ph, int *layer,
                     double (*t)[ZT_CUDA_TL_FIELDS], zt_error *err);

/* Test hook: y[r][o] = w[o] . x[r] (x: [n_rows][n_in] f32) through one
 * kernel family: path 0 the decode GEMV (n_rows <= 8), 1 the tensor-core
 * GEMM (x rounded to f16), 2 the GEMM split over K with atomics, 3 the
 * gate|up GEMM with silu in its epilogue: w's rows [0, n_out / 2) are the
 * gate, the rest the up rows, and y[r][o] = silu(gate_o . x) * (up_o . x)
 * for o < n_out / 2 (its f16 result; 0 for the other o); 4 the prefill
 * GEMMs' tail split (the first half of the 128-output tiles whole, the
 * rest split over K); 5 the GEMM split over K in 6 (fewer k-steps a split
 * than the deepest weight ring). Plus 10 x D: the GEMMs with
 * weight depth D (tune.gemm_depth; 0: 1). */
int zt_cuda_test_matmul(const zt_tensor *w, const float *x, int n_rows, int path, float *y,
                        zt_error *err);

/* Device description for reports: name, SM count, measured nothing. */
int zt_cuda_device_info(char *name, int cap, int *n_sm, size_t *mem_bytes);

#ifdef __cplusplus
}
#endif

#endif
