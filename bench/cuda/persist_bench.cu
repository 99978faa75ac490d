/*
 * persist_bench: how close can one decode step's chain of dependent
 * matvecs get to the copy ceiling, as one kernel a phase (what the CUDA
 * backend does) against one persistent kernel that walks every phase?
 *
 *   persist_bench [tokens]        (prints one line a variant, then the ceiling)
 *
 * Why: on the H200 the backend's one-row step is 42.9 us a layer against
 * 15.1 us of weight bytes (cuda-notes "2026-11-28 (6)"); what remains is a
 * ramp of 2.5-3.8 us a phase. The loss-budget section of the notes points
 * at a persistent kernel whose blocks never stop streaming weights, but
 * the one built in the backend lost for other reasons (and was removed:
 * cuda-notes "2026-11-29 (15)"). This measures the
 * design alone, on a synthetic step with Phi-3-mini's shapes and nothing
 * else: 32 layers of four matvecs (qkv 9216 x 3072, wo 3072 x 3072,
 * gate|up 16384 x 3072, down 3072 x 8192) over 4-bit weights (16 bytes a
 * 32-input unit, no scales: 1.81 GB a token), each phase's input the int8
 * outputs of the one before (its first K outputs), so every phase waits
 * for all of the previous one.
 *
 * Mapping (all variants): a block per SM, 12 warps; a phase's rows are
 * cut into one contiguous range a block, its warps take rows round robin;
 * a lane takes units lane, lane + 32, ... of a row (3 for K = 3072, 8 for
 * K = 8192), 8 dp4a a unit against the input's int8 codes in shared
 * memory, a warp reduction, lane 0 stores the row's code. A warp keeps
 * its next rows' units in flight while it computes the current one (2
 * rows ahead for K = 3072, 1 for 8192: ~3 KB a warp, 36 KB an SM), and
 * the first of them are loaded before the phase waits for its input.
 *
 * Variants:
 *   phases   one kernel a phase, 128 a token in a CUDA graph, launched with
 *            programmatic dependent launch: a block loads its first row's
 *            units, then waits for the previous kernel (griddepcontrol.wait)
 *   persist  one kernel a token: a phase waits on a counter the previous
 *            phase's blocks increment (release / acquire), after loading
 *            its first row's units
 *   persist+l2  persist, and each block bulk-prefetches its next phase's
 *            rows into L2 before it waits (the DRAM streams during the wait)
 *   phases, Q4_0 form  phases with Q4_0's bytes and arithmetic: an f16
 *            scale a unit (2.04 GB a token) and, per unit, scale x input
 *            scale x (dot - 8 x the input codes' sum) in float
 *   scales in the row  the Q4_0 form with each row's scales right after
 *            its units (one stream, 18 bytes a unit) instead of a stream of
 *            their own (the backend's layout): what the 64-byte pieces of a
 *            separate scale stream cost (2026-11-28-cuda-h200-5.md: nothing)
 *   publishing  the Q4_0 form, each phase ending as the backend's down
 *            does with x_pack (a fenced count a 32-row unit, the last
 *            arriver requantizes the unit: publish_units)
 *   timeline  one token of phases (and of the Q4_0 form) with each block's
 *            start, wait passed, input loaded and last warp's end stamped
 *            (globaltimer) and its SM: per matrix, where a phase's time
 *            goes after the previous phase's last block ends
 *   input by TMA  the input into shared memory by bulk copies on an
 *            mbarrier instead of the threads' loads
 *   cold code  warp 0 of each phase block runs straight-line code twice
 *            before its wait (cold_code): what fetching code costs when
 *            the phases run four different bodies in turn, or one
 *   strided rows  block b takes rows b, b + 132, ... instead of a range
 *   block-major  the weights laid out so that a block's rows of every
 *            phase form one contiguous range a token (row_addr)
 *   ring, wring  the continuous-stream persistent kernels (ring_kernel: a
 *            producer warp bulk-copies the block's rows of every phase into
 *            a ring of shared-memory slots; wring_kernel: each warp its own
 *            ring of rows), with their flags (ring_shape): the input a lane
 *            at a time or once a block, the copies' L2 policy, the
 *            consumers idle (the stream alone), the counts a phase by
 *            release, no phase ends, the token's bytes as one range (flat)
 * then each matrix alone (32 kernels of one shape), in all three forms, and
 * gate|up in the Q4_0 form as the backend pairs it (a warp takes gate row
 * i and up row i, stores silu(g) * u: phase_pairs), the same building its
 * input pack itself from f32 x and gamma (build_x, as the backend's
 * gate|up does in fused steps). Then the fused ffn (ffn_kernel): gate|up
 * and a split-K down in one kernel a layer (96 a token, qkv building its
 * input from the f32 residual the split-K sums go to), down's slice in the
 * backend's row-major layout or pair-major, loaded when the kernel starts
 * or after its wait; against it the 128-kernel token with qkv building its
 * input too, and the ffn kernel alone. The persistent variants check
 * that their last phase's outputs equal the phases variant's (the same
 * sums in the same order: bit for bit).
 *
 * Build knobs (-D; bench/cuda/build.sh builds the defaults): WARPS warps a
 * block (12; 6 or 4 make blocks small enough that 12 / WARPS fit an SM at
 * the same registers, so the next phase's blocks can start beside the
 * current one's), DEPTH3 / DEPTH8 rows in flight a warp beyond its current
 * one for K = 3072 / 8192 (2 / 1, times 12 / WARPS below 12 warps), and
 * PAD_SMEM bytes of unused dynamic shared memory a phase block asks for
 * (more than half an SM's keeps a second block off its SM). H200, 2026-11-29
 * (bench/results/2026-11-29-cuda-h200-4.md): 16 warps 4-6% faster than 12
 * in both forms, 6 and 4 warps 33% and 74% slower, deeper rows slower, and
 * the padding even: more warps an SM, not more bytes in flight or a second
 * block beside the first, is what shortens the phases. RWARPS: the ring
 * kernels' consumer warps (15: with the producer warp 512 threads, 128
 * registers, no spills). The ring variants and the timeline:
 * bench/results/2026-11-29-cuda-h200-7.md. CODE_N: the cold-code probe's
 * size (CODE_N x 128 bytes a body; 80 / 160 / 320 in
 * bench/results/2026-11-29-cuda-h200-8.md).
 */
#define BENCH_NAME "persist_bench"
#include "backend/cuda/common.cuh" /* cp.async, mbarriers, bulk copies, L2 policies */
#include "bench_util.cuh"

#include <cuda_fp16.h>
#include <cuda_profiler_api.h>
#include <string.h>

#ifndef WARPS
#define WARPS 12
#endif
#define THREADS (WARPS * 32)
#define PER_SM  (WARPS < 12 ? 12 / WARPS : 1) /* phase blocks an SM can hold (registers) */
#ifndef PAD_SMEM
#define PAD_SMEM 0
#endif
#ifndef DEPTH3
#define DEPTH3 (2 * PER_SM)
#endif
#ifndef DEPTH8
#define DEPTH8 PER_SM
#endif
#define LAYERS 32
#define PHASES (4 * LAYERS)
#define KMAX   8192

struct phase {
    int n, k;           /* rows, inputs */
    const uint4 *w;     /* [n][k / 32] units */
    const uint16_t *sc; /* [n][k / 32] f16 scales of the units (the Q4_0 form) */
    const float *dx;    /* [k / 32] the input's scales (the Q4_0 form) */
    const int8_t *x;    /* [k] input codes */
    int8_t *y;          /* [min(n, next k)] output codes (rows past it dropped) */
    int pairs;          /* gate|up as the backend computes it: a warp takes rows i and
                         * i + n / 2 and stores silu(g) * u (phase_pairs) */
    const float *xf;    /* [k] f32 input and ... (the build variant: Q4_0 form only), */
    const float *gamma; /* ... its RMSNorm weights: the block quantizes it itself */
    unsigned *cnt;      /* [n / 32] counters (the publish variant), or NULL */
    int8_t *pub;        /* [n_out] codes requantized a 32-row unit (publish) */
    float *pub_dx;      /* [n_out / 32] their scales (publish) */
    int n_out;          /* rows whose codes are stored */
    int il;             /* the interleaved Q4_0 form: row r at w + 18 (k / 32) r bytes, its
                         * k / 32 units, then their k / 32 f16 scales (sc unused) */
    int strided;        /* block b takes rows b, b + G, b + 2 G, ... (G blocks) instead of a
                         * contiguous range: at any time the grid reads one region of the
                         * matrix, not G regions (phase_rows, first_rows) */
    const uint8_t *bm;  /* the block-major layout (lean and il forms, contiguous ranges): block
                         * b's rows of this phase at bm + b bm_stride + bm_off, right after its
                         * rows of the phase before, so that a block's bytes of a whole token
                         * are one contiguous range (NULL: row-major at w) */
    size_t bm_stride, bm_off;
    int xtma;               /* the input into shared memory by bulk copies (TMA) on an
                             * mbarrier instead of the threads' loads (phase kernels) */
    int code;               /* 1..4: before its wait, warp 0 runs one of four bodies of
                             * straight-line code (CODE_N x 128 bytes each) twice, and stamps
                             * each pass's clock cycles into code_ts (cold_code) */
    unsigned long long *code_ts; /* [blocks][2] */
    unsigned long long *ts; /* the timeline (phase kernels): [blocks][5] globaltimer ns of the
                             * block's start, its wait passed, its input loaded, its last warp
                             * done, and its SM (NULL: off) */
};

struct step {
    phase ph[PHASES];
    unsigned *done; /* [PHASES] blocks finished with phase p, over all tokens */
};

/* ---- the matvec of one phase for one block --------------------------------- */

__device__ __forceinline__ void block_rows(int n, int &r0, int &r1) {
    r0 = (int)((long long)n * blockIdx.x / gridDim.x);
    r1 = (int)((long long)n * (blockIdx.x + 1) / gridDim.x);
}

/* Where row `row` of p starts (its units, then with il their scales). */
__device__ __forceinline__ const uint8_t *row_addr(const phase &p, int row) {
    const size_t rb = (size_t)(p.k / 32) * (p.il ? 18 : 16);
    if (!p.bm) return (const uint8_t *)p.w + (size_t)row * rb;
    int r0, r1;
    block_rows(p.n, r0, r1);
    return p.bm + blockIdx.x * p.bm_stride + p.bm_off + (size_t)(row - r0) * rb;
}

/* Units of a row a lane holds: K / 32 / 32 (3 or 8). */
template <int U> struct row_regs {
    uint4 u[U];
    uint16_t d[U]; /* the units' f16 scales (SC) */
};

template <int U, bool SC = false>
__device__ __forceinline__ void row_load(const phase &p, int row, int lane, row_regs<U> &r) {
    const size_t nxb = p.k / 32;
    const uint8_t *rb = row_addr(p, row);
    const uint4 *w = (const uint4 *)rb + lane;
#pragma unroll
    for (int i = 0; i < U; i++) r.u[i] = __ldcs(w + 32 * i); /* streamed: evict first */
    if constexpr (SC) {
        const unsigned short *d =
            (p.il ? (const unsigned short *)(rb + nxb * 16) : p.sc + (size_t)row * nxb) + lane;
#pragma unroll
        for (int i = 0; i < U; i++) r.d[i] = __ldcs(d + 32 * i);
    }
}

/* acc plus one unit's dot product with its 32 input codes (lo: the first
 * 16, hi: the rest): the low nibbles of the unit's 16 bytes against lo,
 * the high ones against hi (Q4_0's order). */
__device__ __forceinline__ int unit_dot_x(const uint4 &w, const uint4 &lo, const uint4 &hi,
                                          int acc) {
    const unsigned q[4] = {w.x, w.y, w.z, w.w};
    const int xl[4] = {(int)lo.x, (int)lo.y, (int)lo.z, (int)lo.w},
              xh[4] = {(int)hi.x, (int)hi.y, (int)hi.z, (int)hi.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = __dp4a((int)(q[j] & 0x0f0f0f0fu), xl[j], acc);
        acc = __dp4a((int)((q[j] >> 4) & 0x0f0f0f0fu), xh[j], acc);
    }
    return acc;
}
/* The same with the codes in shared memory (x 16-byte aligned). */
__device__ __forceinline__ int unit_dot(const uint4 &w, const int8_t *x, int acc) {
    const uint4 *xv = (const uint4 *)x;
    return unit_dot_x(w, xv[0], xv[1], acc);
}

/* The row's dot product with the codes in shared memory (unit j against
 * inputs 32 j .. 32 j + 31). */
template <int U>
__device__ __forceinline__ int row_dot(const row_regs<U> &r, const int8_t *xs, int lane) {
    int acc = 0;
#pragma unroll
    for (int i = 0; i < U; i++) acc = unit_dot(r.u[i], xs + 32 * (lane + 32 * i), acc);
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

/* The Q4_0 form (SC): per unit, the f16 weight scale times the input
 * scale times (dot - 8 x the input codes' sum), as the backend's Q4_0
 * items compute it; sums of the codes per unit in shared memory (xsum). */
template <int U>
__device__ __forceinline__ float row_dot_q4_0(const row_regs<U> &r, const int8_t *xs,
                                              const float *dxs, const int *xsum, int lane) {
    float acc = 0;
#pragma unroll
    for (int i = 0; i < U; i++) {
        const int u = lane + 32 * i, dot = unit_dot(r.u[i], xs + 32 * u, 0);
        __half_raw hr;
        hr.x = r.d[i];
        acc += __half2float(__half(hr)) * dxs[u] * (float)(dot - 8 * xsum[u]);
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    return acc;
}

/* Rows in flight a warp beyond the one it computes: ~3 KB of units a warp
 * either way by default (2 rows of 1.5 KB for K = 3072, 1 of 4 KB for
 * 8192; DEPTH3, DEPTH8). */
template <int U> __host__ __device__ constexpr int depth() { return U <= 3 ? DEPTH3 : DEPTH8; }

/* This block's rows of p: how many, and the j-th (r0, r1: block_rows'). */
__device__ __forceinline__ int block_nrows(const phase &p, int r0, int r1) {
    return p.strided ? (p.n - (int)blockIdx.x + (int)gridDim.x - 1) / (int)gridDim.x : r1 - r0;
}
__device__ __forceinline__ int block_row(const phase &p, int r0, int j) {
    return p.strided ? (int)blockIdx.x + (int)gridDim.x * j : r0 + j;
}

/* This block's rows of phase p (block_row); xs holds the phase's input.
 * ring[0 .. D) hold the warp's first D rows, loaded before the wait. */
template <int U, int D, bool SC = false>
__device__ void phase_rows(const phase &p, int r0, int r1, const int8_t *xs,
                           row_regs<U> (&ring)[D + 1]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nj = block_nrows(p, r0, r1);
    const float *dxs = (const float *)(xs + KMAX);
    const int *xsum = (const int *)(dxs + KMAX / 32);
    for (int j = warp; j < nj; j += WARPS) {
        const int row = block_row(p, r0, j);
        if (j + D * WARPS < nj) row_load<U, SC>(p, block_row(p, r0, j + D * WARPS), lane, ring[D]);
        int s;
        if constexpr (SC)
            s = (int)(row_dot_q4_0<U>(ring[0], xs, dxs, xsum, lane) * 30.0f);
        else
            s = row_dot<U>(ring[0], xs, lane) >> 9;
        if (lane == 0 && row < p.n_out) p.y[row] = (int8_t)max(-127, min(127, s));
#pragma unroll
        for (int i = 0; i < D; i++) ring[i] = ring[i + 1];
    }
}

/* The build variant: the block quantizes the f32 input times gamma itself,
 * as the backend's gate|up does in fused steps (pack_build): a warp a
 * unit at a time, a lane an input, the unit's largest by shuffles, then
 * codes, the unit's scale and code sum, and the RMS scale from the sum
 * of squares (after the codes; phase_pairs applies it). */
__device__ void build_x(const phase &p, int8_t *xs) {
    float *dxs = (float *)(xs + KMAX);
    int *xsum = (int *)(dxs + KMAX / 32);
    __shared__ float ss_w[WARPS];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float ss = 0;
    for (int u = warp; u < p.k / 32; u += WARPS) {
        float v = __ldcg(p.xf + 32 * u + lane);
        ss += v * v;
        v *= __ldg(p.gamma + 32 * u + lane);
        float amax = fabsf(v);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        float dx = amax / 127.0f, id = dx != 0 ? 1.0f / dx : 0;
        int q = __float2int_rn(v * id), sum = q;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        xs[32 * u + lane] = (int8_t)q;
        if (lane == 0) dxs[u] = dx, xsum[u] = sum;
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if (lane == 0) ss_w[warp] = ss;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0;
        for (int w = 0; w < WARPS; w++) t += ss_w[w];
        *(float *)(xs + KMAX + KMAX / 32 * 8) = rsqrtf(t / (float)p.k + 1e-5f);
    }
    __syncthreads();
}

/* The input codes into shared memory (after the wait; with bar, by bulk
 * copies completing on it: the xtma variant); with SC also the input's
 * unit scales and the codes' sums a unit (which the backend's producers
 * publish beside the codes); the build variant's block makes them itself
 * (build_x). */
template <bool SC = false>
__device__ __forceinline__ void load_x(const phase &p, int8_t *xs, uint64_t *bar = NULL) {
    if (SC && p.xf) return build_x(p, xs);
    float *dxs = (float *)(xs + KMAX);
    if (bar) { /* xtma: codes (and scales) by bulk copies */
        if (threadIdx.x == 0) {
            const uint64_t pol = normal_policy();
            mbar_expect_tx(bar, p.k + (SC ? p.k / 8 : 0));
            bulk_copy_policy(xs, p.x, p.k, bar, pol);
            if (SC) bulk_copy_policy(dxs, p.dx, p.k / 8, bar, pol);
        }
        mbar_wait(bar, 0);
    } else {
        for (int i = threadIdx.x * 16; i < p.k; i += THREADS * 16)
            *(uint4 *)(xs + i) = __ldcg((const uint4 *)(p.x + i));
        if (SC)
            for (int u = threadIdx.x; u < p.k / 32; u += THREADS) dxs[u] = __ldg(p.dx + u);
        __syncthreads();
    }
    if constexpr (SC) { /* the codes' sums a unit */
        int *xsum = (int *)(dxs + KMAX / 32);
        for (int u = threadIdx.x; u < p.k / 32; u += THREADS) {
            int sum = 0;
            for (int j = 0; j < 8; j++)
                sum = __dp4a(((const int *)(xs + 32 * u))[j], 0x01010101, sum);
            xsum[u] = sum;
        }
        __syncthreads();
    }
}

/* The warp's first D rows of phase p (the block's range), before the wait. */
template <int U, int D, bool SC = false>
__device__ __forceinline__ void first_rows(const phase &p, row_regs<U> (&ring)[D + 1], int &r0,
                                           int &r1) {
    block_rows(p.n, r0, r1);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nj = block_nrows(p, r0, r1);
#pragma unroll
    for (int i = 0; i < D; i++)
        if (warp + i * WARPS < nj)
            row_load<U, SC>(p, block_row(p, r0, warp + i * WARPS), lane, ring[i]);
}

/* The publish variant: the backend's x_pack at the end of every phase.
 * Rows [r0, r1) of the block are stored; each 32-row unit they touch
 * gets their count (after a fence), and the block whose count completes a
 * unit reads its 32 codes back, requantizes them to the unit's largest
 * and stores the codes and the scale (then clears the counter). */
__device__ void publish_units(const phase &p, int r0, int r1) {
    __threadfence();
    __syncthreads();
    r1 = min(r1, p.n_out);
    if (r1 <= r0) return;
    const int u = r0 / 32 + (int)threadIdx.x, last = (r1 - 1) / 32;
    if (u > last) return;
    const int lo = max(r0, 32 * u), hi = min(r1, 32 * u + 32), full = min(32, p.n_out - 32 * u);
    if (atomicAdd(p.cnt + u, (unsigned)(hi - lo)) + (unsigned)(hi - lo) != (unsigned)full) return;
    __threadfence();
    int8_t v[32];
    *(uint4 *)v = __ldcg((const uint4 *)(p.y + 32 * u));
    *(uint4 *)(v + 16) = __ldcg((const uint4 *)(p.y + 32 * u + 16));
    int amax = 1;
    for (int i = 0; i < 32; i++) amax = max(amax, abs((int)v[i]));
    for (int i = 0; i < 32; i++) v[i] = (int8_t)(v[i] * 127 / amax);
    *(uint4 *)(p.pub + 32 * u) = *(const uint4 *)v;
    *(uint4 *)(p.pub + 32 * u + 16) = *(const uint4 *)(v + 16);
    p.pub_dx[u] = (float)amax / 127.0f;
    p.cnt[u] = 0;
}

/* The paired form (Q4_0 only, gate|up's K): item i is gate row i and up
 * row i + n / 2 in one warp, h = silu(g) * u, one item ahead (the same
 * bytes in flight as two rows ahead). */
template <int U> __device__ void phase_pairs(const phase &p, int8_t *xs) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, half = p.n / 2;
    int i0, i1;
    block_rows(half, i0, i1);
    row_regs<U> g[2] = {}, u[2] = {};
    if (i0 + warp < i1) {
        row_load<U, true>(p, i0 + warp, lane, g[0]);
        row_load<U, true>(p, i0 + warp + half, lane, u[0]);
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");
    load_x<true>(p, xs);
    const float *dxs = (const float *)(xs + KMAX);
    const int *xsum = (const int *)(dxs + KMAX / 32);
    for (int i = i0 + warp; i < i1; i += WARPS) {
        if (i + WARPS < i1) {
            row_load<U, true>(p, i + WARPS, lane, g[1]);
            row_load<U, true>(p, i + WARPS + half, lane, u[1]);
        }
        float gv = row_dot_q4_0<U>(g[0], xs, dxs, xsum, lane),
              uv = row_dot_q4_0<U>(u[0], xs, dxs, xsum, lane);
        if (p.xf) { /* the built pack's RMS scale */
            const float rstd = *(const float *)(xs + KMAX + KMAX / 32 * 8);
            gv *= rstd, uv *= rstd;
        }
        float h = gv / (1.0f + __expf(-gv)) * uv;
        if (lane == 0 && i < p.n_out) p.y[i] = (int8_t)max(-127, min(127, (int)(h * 30.0f)));
        g[0] = g[1], u[0] = u[1];
    }
}

/* The cold-code probe: what fetching instructions costs a phase kernel.
 * CODE_N / 2 rounds of two dependent integer operations in each of 8
 * chains, nonlinear so that no compiler folds them (CODE_N x 128 bytes of
 * SASS a body, counted from the cubin: 40 KB at the default 320), V
 * changing the constants so that the four bodies are four separate pieces
 * of code. The first pass fetches the code (cold, if the four bodies, used
 * by phases in turn, do not fit the SM's instruction caches together), the
 * second runs it from the cache: the difference is the fetch. */
#ifndef CODE_N
#define CODE_N 320
#endif
template <int V> __device__ __forceinline__ void cold_code(const phase &p, unsigned seed) {
    unsigned a[8], b[8];
#pragma unroll
    for (int k = 0; k < 8; k++) a[k] = seed + k, b[k] = seed * (k + 3) + V;
    long long first = 0, second = 0;
#pragma unroll 1
    for (int rep = 0; rep < 2; rep++) {
        const long long t0 = clock64();
#pragma unroll
        for (int i = 0; i < CODE_N / 2; i++)
#pragma unroll
            for (int k = 0; k < 8; k++) {
                a[k] += b[k] ^ (unsigned)(0x9e3779b9u * (i + 1) + V * 77 + k);
                b[k] ^= a[k] << ((i + k + V) % 31 + 1);
            }
        (rep ? second : first) = clock64() - t0;
    }
    unsigned x = 0;
#pragma unroll
    for (int k = 0; k < 8; k++) x ^= a[k] + b[k];
    if (threadIdx.x == 0) {
        p.code_ts[2 * blockIdx.x] = (unsigned long long)first;
        p.code_ts[2 * blockIdx.x + 1] = (unsigned long long)second;
        if (x == 0x12345u && p.n < 0) p.code_ts[0] = x; /* keeps the chains alive */
    }
}

/* Timeline field f of this block (thread 0), when on. */
__device__ __forceinline__ void ts_mark(const phase &p, int f) {
    if (p.ts && threadIdx.x == 0) p.ts[5 * blockIdx.x + f] = globaltimer_ns();
    if (p.ts && threadIdx.x == 0 && f == 0) {
        unsigned sm;
        asm("mov.u32 %0, %%smid;" : "=r"(sm));
        p.ts[5 * blockIdx.x + 4] = sm;
    }
}

template <int U, bool SC> __device__ void phase_body_pdl(const phase &p, int8_t *xs) {
    constexpr int D = depth<U>();
    row_regs<U> ring[D + 1] = {};
    int r0, r1;
    __shared__ uint64_t xbar;
    ts_mark(p, 0);
    if (p.xtma) {
        if (threadIdx.x == 0) {
            mbar_init(&xbar, 1);
            asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
        }
        __syncthreads();
    }
    first_rows<U, D, SC>(p, ring, r0, r1);
    if (!SC && p.code && threadIdx.x < 32) { /* the lean form only (no registers to spare) */
        const unsigned seed = (unsigned)clock();
        switch (p.code) {
        case 1:
            cold_code<1>(p, seed);
            break;
        case 2:
            cold_code<2>(p, seed);
            break;
        case 3:
            cold_code<3>(p, seed);
            break;
        default:
            cold_code<4>(p, seed);
            break;
        }
    }
    asm volatile("griddepcontrol.wait;" ::: "memory");
    ts_mark(p, 1);
    load_x<SC>(p, xs, p.xtma ? &xbar : NULL);
    ts_mark(p, 2);
    phase_rows<U, D, SC>(p, r0, r1, xs, ring);
    if (p.ts && threadIdx.x % 32 == 0) atomicMax(p.ts + 5 * blockIdx.x + 3, globaltimer_ns());
    if (p.cnt) publish_units(p, r0, r1);
}

/* codes [KMAX], then (SC) unit scales and sums [KMAX / 32] each, then the
 * built pack's RMS scale */
#define XS_BYTES (KMAX + KMAX / 32 * 8 + 16)

template <bool SC> __global__ void __launch_bounds__(THREADS, PER_SM) phase_kernel(const phase p) {
    __shared__ __align__(16) int8_t xs[XS_BYTES];
    asm volatile("griddepcontrol.launch_dependents;");
    if (p.k == 8192)
        phase_body_pdl<8, SC>(p, xs);
    else if (SC && p.pairs)
        phase_pairs<3>(p, xs);
    else
        phase_body_pdl<3, SC>(p, xs);
}

/* ---- the fused ffn: gate|up and a split-K down in one kernel ---------------- */

/* A block takes a pair of h's x-blocks (64 hidden units; 128 pairs, blocks
 * past them idle): gate|up's items for those units (paired as phase_pairs,
 * h kept in f32), quantized to int8 per x-block in shared memory, then
 * down's 3,072 rows against those 64 inputs only (a split-K slice: two
 * units a row), the partial sums added into xacc with vector atomics (4
 * rows an add). The down phase and its boundary disappear; the next qkv
 * then builds its input from the f32 sums (xf = xacc). Down's slice comes
 * into shared memory by cp.async, when the kernel starts (early) or after
 * the wait; grouped: down's units and scales stored pair-major
 * ([pair][row][2]) so that the slice is contiguous, else row-major as the
 * backend stores them (a 32-byte piece a row). */
struct ffn_args {
    phase g;     /* gate|up: Q4_0 form, n 16384 (gate rows then up), k 3072 */
    phase d;     /* down: Q4_0 form, n 3072, k 8192 */
    float *xacc; /* [3072] the residual the partial sums go to */
    int grouped, early;
};

#define FFN_SMEM (3072 * 2 * 16 + 3072 * 4 + 64 * 4 + 64 + 16)

/* Down's slice of pair xp: units [row][2] into du, the two f16 scales a row into ds. */
__device__ __forceinline__ void ffn_down_slice(const ffn_args &a, int xp, uint4 *du, uint32_t *ds) {
    const uint4 *w = a.d.w;
    const uint16_t *sc = a.d.sc;
    for (int i = threadIdx.x; i < 3072 * 2; i += THREADS) {
        const int r = i / 2, j = i % 2;
        cp_async16(du + i,
                   a.grouped ? w + (size_t)xp * 6144 + i : w + (size_t)r * 256 + 2 * xp + j);
    }
    for (int r = threadIdx.x; r < 3072; r += THREADS)
        cp_async_small<4>(ds + r, a.grouped ? sc + (size_t)xp * 6144 + 2 * r
                                            : sc + (size_t)r * 256 + 2 * xp);
    cp_async_commit();
}

__global__ void __launch_bounds__(THREADS, 1) ffn_kernel(const __grid_constant__ ffn_args a) {
    __shared__ __align__(16) int8_t xs[XS_BYTES];
    extern __shared__ __align__(16) uint8_t dyn[];
    uint4 *du = (uint4 *)dyn;
    uint32_t *ds = (uint32_t *)(du + 3072 * 2);
    float *hs = (float *)(ds + 3072);
    int8_t *hq = (int8_t *)(hs + 64);
    float *hdx = (float *)(hq + 64);
    int *hsum = (int *)(hdx + 2);
    asm volatile("griddepcontrol.launch_dependents;");
    const int xp = blockIdx.x;
    if (xp >= 128) return; /* 8,192 hidden units: 128 pairs */
    const phase &p = a.g;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, half = p.n / 2;
    const int i0 = 64 * xp, i1 = i0 + 64;
    if (a.early) ffn_down_slice(a, xp, du, ds);
    row_regs<3> g[2] = {}, u[2] = {};
    row_load<3, true>(p, i0 + warp, lane, g[0]);
    row_load<3, true>(p, i0 + warp + half, lane, u[0]);
    asm volatile("griddepcontrol.wait;" ::: "memory");
    load_x<true>(p, xs);
    if (!a.early) ffn_down_slice(a, xp, du, ds);
    const float *dxs = (const float *)(xs + KMAX);
    const int *xsum = (const int *)(dxs + KMAX / 32);
    for (int i = i0 + warp; i < i1; i += WARPS) {
        if (i + WARPS < i1) {
            row_load<3, true>(p, i + WARPS, lane, g[1]);
            row_load<3, true>(p, i + WARPS + half, lane, u[1]);
        }
        float gv = row_dot_q4_0<3>(g[0], xs, dxs, xsum, lane),
              uv = row_dot_q4_0<3>(u[0], xs, dxs, xsum, lane);
        if (lane == 0) hs[i - i0] = gv / (1.0f + __expf(-gv)) * uv;
        g[0] = g[1], u[0] = u[1];
    }
    __syncthreads();
    if (warp < 2) { /* h's two x-blocks to int8, as the backend's h_pack_build */
        const float v = hs[32 * warp + lane];
        float amax = fabsf(v);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
        const float dx = amax / 127.0f, id = dx != 0 ? 1.0f / dx : 0;
        int q = __float2int_rn(v * id), sum = q;
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        hq[32 * warp + lane] = (int8_t)q;
        if (lane == 0) hdx[warp] = dx, hsum[warp] = sum;
    }
    cp_async_wait_all();
    __syncthreads();
    for (int t = threadIdx.x; t < 768; t += THREADS) { /* 4 rows a thread */
        float acc[4];
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const int r = 4 * t + k;
            const uint32_t s2 = ds[r];
            float v = 0;
#pragma unroll
            for (int j = 0; j < 2; j++) {
                __half_raw hr;
                hr.x = (unsigned short)(j ? s2 >> 16 : s2 & 0xffffu);
                const int dot = unit_dot(du[2 * r + j], hq + 32 * j, 0);
                v += __half2float(__half(hr)) * hdx[j] * (float)(dot - 8 * hsum[j]);
            }
            acc[k] = v * 1e-3f;
        }
        atomicAdd((float4 *)(a.xacc + 4 * t), make_float4(acc[0], acc[1], acc[2], acc[3]));
    }
}

/* ---- the persistent kernel ------------------------------------------------ */

/* Waits until every block finished phase q of token t. */
__device__ __forceinline__ void wait_phase(const step &s, int q, unsigned target) {
    if (threadIdx.x == 0) {
        unsigned v;
        do {
            asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(s.done + q));
        } while (v < target);
    }
    __syncthreads();
}

/* L2 prefetch of rows [r0, r1) of p (bulk, 64 KB pieces over the block's threads). */
__device__ __forceinline__ void prefetch_rows(const phase &p, int r0, int r1) {
    const char *b = (const char *)(p.w + (size_t)r0 * (p.k / 32));
    size_t bytes = (size_t)(r1 - r0) * (p.k / 32) * 16;
    for (size_t off = (size_t)threadIdx.x * 65536; off < bytes; off += (size_t)THREADS * 65536) {
        unsigned len = (unsigned)min((size_t)65536, bytes - off);
        asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(b + off), "r"(len)
                     : "memory");
    }
}

template <int U>
__device__ void persist_phase(const step &s, int q, unsigned token, int8_t *xs, bool l2) {
    const phase &p = s.ph[q];
    constexpr int D = depth<U>();
    row_regs<U> ring[D + 1] = {};
    int r0, r1;
    first_rows<U, D>(p, ring, r0, r1);
    if (q > 0) wait_phase(s, q - 1, gridDim.x * (token + 1));
    load_x(p, xs);
    phase_rows<U, D>(p, r0, r1, xs, ring);
    __syncthreads();
    if (threadIdx.x == 0) {
        __threadfence();
        atomicAdd(s.done + q, 1u);
    }
    if (l2 && q + 1 < PHASES) { /* the next phase's rows, while this block waits for it */
        int n0, n1;
        block_rows(s.ph[q + 1].n, n0, n1);
        prefetch_rows(s.ph[q + 1], n0, n1);
    }
}

__global__ void __launch_bounds__(THREADS, 1)
    persist_kernel(const __grid_constant__ step s, unsigned token, int l2) {
    __shared__ __align__(16) int8_t xs[KMAX];
    for (int q = 0; q < PHASES; q++) {
        if (s.ph[q].k == 8192)
            persist_phase<8>(s, q, token, xs, l2 != 0);
        else
            persist_phase<3>(s, q, token, xs, l2 != 0);
    }
}

/* ---- the ring kernel: a producer warp streams every phase's weights -------- */

/* One persistent block an SM: RWARPS consumer warps and a producer warp
 * whose one thread copies the block's slice of every phase, in order,
 * into a ring of shared-memory slots (bulk copies, evict-first, a slot
 * a whole number of rows), waiting only for a slot to be free. Weights
 * never depend on activations, so the stream need not stop at a phase
 * boundary: while the consumers wait for the previous phase (a counter,
 * as persist), the ring fills with the next phase's rows (up to the ring's
 * size ahead: 192 KB, ~6 us of an SM's share of DRAM on the H200). The
 * consumers hold the phase's input codes in registers (a lane's units
 * are the same in every row), take the block's rows round robin (row j
 * of the block's range to warp j % RWARPS) and compute them from shared
 * memory, each row as phase_rows does (bit for bit the same codes). A
 * slot is free when every consumer warp has passed it. This is the
 * design of the loss-budget section (cuda-notes 2026-11-27) without the
 * per-chunk readiness: what continuous streaming alone is worth. */
#ifndef RWARPS
#define RWARPS 15
#endif
#define RTHREADS ((RWARPS + 1) * 32)
#define RING_MAX 64

/* A plain arrival on an mbarrier (common.cuh's arrive with a transaction count). */
__device__ __forceinline__ void mbar_arrive(uint64_t *b) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_u32(b)) : "memory");
}

/* The consumer warps' barrier (the producer warp is not in it). */
__device__ __forceinline__ void consumers_sync() {
    asm volatile("bar.sync 1, %0;" ::"n"(RWARPS * 32) : "memory");
}

struct ring_args {
    step s;
    unsigned token;
    int slots, slot_bytes; /* the ring: slots x slot_bytes of dynamic shared memory */
    int waits;             /* 0: no waits for the previous phase (the stream alone; wrong codes) */
    int sc;                /* the interleaved Q4_0 form (a row: its units, then their f16 scales) */
    int split;             /* the producer warp's lanes copy a row each (else one copy a slot) */
    int lone;              /* a consumer warp's lane 0 alone waits for a slot, then __syncwarp */
    int spin;              /* waits spin on test_wait (else try_wait, which may suspend) */
    int own;               /* wring_kernel: each warp copies its own rows (slots a warp) */
    int pol;               /* the copies' L2 policy: 0 evict-first, 1 evict-normal */
    int xonce;             /* the block copies the input into shared memory once a phase and
                            * the lanes take theirs from there (else each lane from L2) */
    int idle;              /* the consumers only pass the slots (the stream alone; no codes) */
    size_t flat;           /* > 0: the stream alone over one contiguous range of flat bytes from
                            * the first phase's rows, cut evenly over the blocks (no phases) */
    int rel;               /* a phase's count by red.release (else __threadfence + atomicAdd) */
    int nodone;            /* no count, no barriers at a phase's end (with waits 0 only) */
};

/* Until phase parity of b completes: try_wait (common.cuh) or a test_wait spin. */
__device__ __forceinline__ void ring_wait(const ring_args &a, uint64_t *b, unsigned parity) {
    if (!a.spin) return mbar_wait(b, parity);
    uint32_t done;
    do {
        asm volatile("{\n .reg .pred p;\n"
                     " mbarrier.test_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     " selp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(smem_u32(b)), "r"(parity)
                     : "memory");
    } while (!done);
}

/* Phase p for this block: rows [r0, r1), rb bytes a row, rpc rows a slot. */
struct ring_geom {
    int r0, r1, rb, rpc;
    __device__ ring_geom(const ring_args &a, const phase &p) {
        block_rows(p.n, r0, r1);
        rb = p.k / 32 * (a.sc ? 18 : 16);
        rpc = a.slot_bytes / rb;
    }
};

/* The producer warp (lane 0 alone unless split). */
__device__ void ring_produce(const ring_args &a, uint8_t *ring, uint64_t *full, uint64_t *empty) {
    const uint64_t pol = a.pol ? normal_policy() : evict_first_policy();
    const int lane = threadIdx.x % 32;
    int i = 0; /* slots filled so far */
    for (int q = 0; q < PHASES; q++) {
        const phase &p = a.s.ph[q];
        const ring_geom g(a, p);
        const uint8_t *src = row_addr(p, g.r0);
        for (int r = g.r0; r < g.r1; r += g.rpc, i++) {
            const int slot = i % a.slots, n = min(g.rpc, g.r1 - r);
            uint8_t *dst = ring + (size_t)slot * a.slot_bytes;
            const uint8_t *from = src + (size_t)(r - g.r0) * g.rb;
            if (lane == 0) {
                if (i >= a.slots) ring_wait(a, empty + slot, (i / a.slots - 1) & 1);
                mbar_expect_tx(full + slot, (unsigned)(n * g.rb));
                if (!a.split) bulk_copy_policy(dst, from, (unsigned)(n * g.rb), full + slot, pol);
            }
            if (a.split) {
                __syncwarp();
                if (lane < n)
                    bulk_copy_policy(dst + (size_t)lane * g.rb, from + (size_t)lane * g.rb,
                                     (unsigned)g.rb, full + slot, pol);
            }
        }
    }
}

/* A lane's input for a phase, in registers: the codes of its units
 * lane + 32 j (the same units in every row) and, SC, their scales and
 * the codes' sums. */
template <int U, bool SC> struct lane_x {
    uint4 c[U][2];
    float d[U];
    int sum[U];
    /* from xs in shared memory, or (xs NULL) from p.x */
    __device__ __forceinline__ lane_x(const phase &p, int lane, const int8_t *xs) {
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int o = 32 * (lane + 32 * j);
            if (xs) {
                c[j][0] = *(const uint4 *)(xs + o);
                c[j][1] = *(const uint4 *)(xs + o + 16);
            } else {
                c[j][0] = __ldcg((const uint4 *)(p.x + o));
                c[j][1] = __ldcg((const uint4 *)(p.x + o + 16));
            }
            if constexpr (SC) {
                const unsigned ones = 0x11111111u; /* a unit of all-one nibbles: the codes' sum */
                d[j] = __ldg(p.dx + lane + 32 * j);
                sum[j] = unit_dot_x(make_uint4(ones, ones, ones, ones), c[j][0], c[j][1], 0);
            }
        }
    }
};

/* Row `row` of phase p from its bytes in shared memory (rb), as phase_rows
 * computes it from registers: the same code. */
template <int U, bool SC>
__device__ __forceinline__ void smem_row(const phase &p, const lane_x<U, SC> &x, const uint8_t *rb,
                                         int row, int lane) {
    int s;
    if constexpr (SC) {
        float acc = 0;
#pragma unroll
        for (int j = 0; j < U; j++) {
            const int u = lane + 32 * j;
            const int dot = unit_dot_x(*(const uint4 *)(rb + 16 * u), x.c[j][0], x.c[j][1], 0);
            __half_raw hr;
            hr.x = *(const unsigned short *)(rb + 16 * (p.k / 32) + 2 * u);
            acc += __half2float(__half(hr)) * x.d[j] * (float)(dot - 8 * x.sum[j]);
        }
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        s = (int)(acc * 30.0f);
    } else {
        int acc = 0;
#pragma unroll
        for (int j = 0; j < U; j++)
            acc =
                unit_dot_x(*(const uint4 *)(rb + 16 * (lane + 32 * j)), x.c[j][0], x.c[j][1], acc);
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        s = acc >> 9;
    }
    if (lane == 0 && row < p.n_out) p.y[row] = (int8_t)max(-127, min(127, s));
}

/* xonce: phase p's input codes into xs by the consumer threads. */
__device__ __forceinline__ const int8_t *ring_x(const ring_args &a, const phase &p, int8_t *xs) {
    if (!a.xonce) return NULL;
    for (int i = threadIdx.x * 16; i < p.k; i += RWARPS * 32 * 16)
        *(uint4 *)(xs + i) = __ldcg((const uint4 *)(p.x + i));
    consumers_sync();
    return xs;
}

/* A consumer warp's rows of phase p; i counts the slots passed. */
template <int U, bool SC>
__device__ void ring_rows(const ring_args &a, const phase &p, int &i, const uint8_t *ring,
                          uint64_t *full, uint64_t *empty, int8_t *xs) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const ring_geom g(a, p);
    if (a.idle) { /* pass the slots only */
        for (int r = g.r0; r < g.r1; r += g.rpc, i++) {
            ring_wait(a, full + i % a.slots, (i / a.slots) & 1);
            __syncwarp();
            if (lane == 0) mbar_arrive(empty + i % a.slots);
        }
        return;
    }
    const lane_x<U, SC> x(p, lane, ring_x(a, p, xs));
    for (int r = g.r0; r < g.r1; r += g.rpc, i++) {
        const int slot = i % a.slots, n = min(g.rpc, g.r1 - r);
        if (!a.lone || lane == 0) ring_wait(a, full + slot, (i / a.slots) & 1);
        if (a.lone) __syncwarp();
        const uint8_t *base = ring + (size_t)slot * a.slot_bytes;
        for (int t = ((warp - (r - g.r0)) % RWARPS + RWARPS) % RWARPS; t < n; t += RWARPS)
            smem_row<U, SC>(p, x, base + (size_t)t * g.rb, r + t, lane);
        __syncwarp();
        if (lane == 0) mbar_arrive(empty + slot);
    }
}

/* The end of phase q: every consumer done, the block counted, and (waits)
 * every block's count awaited. */
__device__ __forceinline__ void ring_phase_done(const ring_args &a, int q) {
    if (a.nodone) return;
    consumers_sync();
    if (threadIdx.x == 0) {
        if (a.rel)
            asm volatile("red.release.gpu.global.add.u32 [%0], 1;" ::"l"(a.s.done + q) : "memory");
        else {
            __threadfence();
            atomicAdd(a.s.done + q, 1u);
        }
        const unsigned target = gridDim.x * (a.token + 1);
        unsigned v;
        if (a.waits) do {
                asm volatile("ld.acquire.gpu.global.u32 %0, [%1];" : "=r"(v) : "l"(a.s.done + q));
            } while (v < target);
    }
    consumers_sync();
}

/* The flat stream: the block's share of a.flat bytes, slot by slot; the
 * consumer warps pass the slots (read_bench's steady shape, by the ring). */
__device__ void ring_flat(const ring_args &a, uint8_t *ring, uint64_t *full, uint64_t *empty) {
    const size_t b0 = a.flat / gridDim.x * blockIdx.x / 16 * 16,
                 b1 = a.flat / gridDim.x * (blockIdx.x + 1) / 16 * 16;
    const uint8_t *src = (const uint8_t *)a.s.ph[0].w;
    int i = 0;
    if (threadIdx.x / 32 == RWARPS) {
        if (threadIdx.x % 32) return;
        const uint64_t pol = a.pol ? normal_policy() : evict_first_policy();
        for (size_t o = b0; o < b1; o += a.slot_bytes, i++) {
            const int slot = i % a.slots;
            const unsigned n = (unsigned)min((size_t)a.slot_bytes, b1 - o);
            if (i >= a.slots) mbar_wait(empty + slot, (i / a.slots - 1) & 1);
            mbar_expect_tx(full + slot, n);
            bulk_copy_policy(ring + (size_t)slot * a.slot_bytes, src + o, n, full + slot, pol);
        }
        return;
    }
    for (size_t o = b0; o < b1; o += a.slot_bytes, i++) {
        const int slot = i % a.slots;
        mbar_wait(full + slot, (i / a.slots) & 1);
        __syncwarp();
        if (threadIdx.x % 32 == 0) mbar_arrive(empty + slot);
    }
}

__global__ void __launch_bounds__(RTHREADS, 1) ring_kernel(const __grid_constant__ ring_args a) {
    extern __shared__ __align__(128) uint8_t ring[];
    __shared__ uint64_t full[RING_MAX], empty[RING_MAX];
    __shared__ __align__(16) int8_t xs[KMAX];
    if (threadIdx.x == 0) {
        for (int s = 0; s < a.slots; s++) {
            mbar_init(full + s, 1);
            mbar_init(empty + s, RWARPS);
        }
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncthreads();
    if (a.flat) return ring_flat(a, ring, full, empty);
    if (threadIdx.x / 32 == RWARPS) { /* the producer warp */
        if (a.split || threadIdx.x % 32 == 0) ring_produce(a, ring, full, empty);
        return;
    }
    int i = 0;
    for (int q = 0; q < PHASES; q++) {
        const phase &p = a.s.ph[q];
        if (p.k == 8192)
            a.sc ? ring_rows<8, true>(a, p, i, ring, full, empty, xs)
                 : ring_rows<8, false>(a, p, i, ring, full, empty, xs);
        else
            a.sc ? ring_rows<3, true>(a, p, i, ring, full, empty, xs)
                 : ring_rows<3, false>(a, p, i, ring, full, empty, xs);
        ring_phase_done(a, q);
    }
}

/* ---- the per-warp ring: each warp streams its own rows across phases -------- */

/* read_bench's bulk ring (4.1 TB/s in steady state there) made persistent:
 * RWARPS warps, no producer; a warp takes the block's rows round robin in
 * every phase and keeps its next a.slots rows in flight, one bulk copy a
 * row into a slot of its own (a.slot_bytes, the longest row), whichever
 * phase they belong to: across a boundary the copies of the next phase's
 * first rows are in flight while the warp waits for its input. */
struct wcursor { /* a warp's next row to copy: row r of phase q (q == PHASES: none) */
    int q, r, r1;
    __device__ void next(const ring_args &a, int warp) {
        r += RWARPS;
        while (r >= r1 && ++q < PHASES) {
            int r0;
            block_rows(a.s.ph[q].n, r0, r1);
            r = r0 + warp;
        }
    }
};

/* The warp's slot buf (read) refilled with its next row, if any (lane 0). */
__device__ __forceinline__ void wring_refill(const ring_args &a, uint8_t *buf, uint64_t *bar,
                                             wcursor &c, uint64_t pol) {
    if ((threadIdx.x & 31) == 0 && c.q < PHASES) {
        const phase &n = a.s.ph[c.q];
        const unsigned rb = (unsigned)(n.k / 32 * (a.sc ? 18 : 16));
        fence_proxy_async();
        mbar_expect_tx(bar, rb);
        bulk_copy_policy(buf, row_addr(n, c.r), rb, bar, pol);
    }
    c.next(a, threadIdx.x / 32);
}

template <int U, bool SC>
__device__ void wring_rows(const ring_args &a, const phase &p, int &k, uint8_t *ring,
                           uint64_t *full, wcursor &c, uint64_t pol, int8_t *xs) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, D = a.slots;
    int r0, r1;
    block_rows(p.n, r0, r1);
    if (a.idle) { /* no input, no arithmetic: the copies alone */
        for (int r = r0 + warp; r < r1; r += RWARPS, k++) {
            const int slot = warp * D + k % D;
            ring_wait(a, full + slot, (k / D) & 1);
            __syncwarp();
            wring_refill(a, ring + (size_t)slot * a.slot_bytes, full + slot, c, pol);
        }
        return;
    }
    const lane_x<U, SC> x(p, lane, ring_x(a, p, xs));
    for (int r = r0 + warp; r < r1; r += RWARPS, k++) {
        const int slot = warp * D + k % D;
        uint8_t *buf = ring + (size_t)slot * a.slot_bytes;
        ring_wait(a, full + slot, (k / D) & 1);
        smem_row<U, SC>(p, x, buf, r, lane);
        __syncwarp();
        wring_refill(a, buf, full + slot, c, pol);
    }
}

__global__ void __launch_bounds__(RWARPS * 32, 1)
    wring_kernel(const __grid_constant__ ring_args a) {
    extern __shared__ __align__(128) uint8_t ring[];
    __shared__ uint64_t full[RING_MAX];
    __shared__ __align__(16) int8_t xs[KMAX];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, D = a.slots;
    const uint64_t pol = a.pol ? normal_policy() : evict_first_policy();
    if (lane == 0) {
        for (int d = 0; d < D; d++) mbar_init(full + warp * D + d, 1);
        asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
    }
    __syncwarp();
    wcursor c = {-1, 0, 0};
    c.next(a, warp);
    for (int d = 0; d < D; d++) /* the first D rows */
        wring_refill(a, ring + (size_t)(warp * D + d) * a.slot_bytes, full + warp * D + d, c, pol);
    int k = 0;
    for (int q = 0; q < PHASES; q++) {
        const phase &p = a.s.ph[q];
        if (p.k == 8192)
            a.sc ? wring_rows<8, true>(a, p, k, ring, full, c, pol, xs)
                 : wring_rows<8, false>(a, p, k, ring, full, c, pol, xs);
        else
            a.sc ? wring_rows<3, true>(a, p, k, ring, full, c, pol, xs)
                 : wring_rows<3, false>(a, p, k, ring, full, c, pol, xs);
        ring_phase_done(a, q);
    }
}

/* ---- host ------------------------------------------------------------------- */

/* Weights: bench_util.cuh's fill_kernel. Unit scales: finite f16 values in [2^-8, 2^-7). */
__global__ void fill_scales_kernel(uint16_t *d, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        d[i] = (uint16_t)(0x1c00u | (((uint32_t)i * 2654435761u) >> 22));
}

/* The interleaved form's scales (after each row's units), as fill_scales_kernel's. */
__global__ void fill_il_scales_kernel(uint8_t *w, int n, int k) {
    const int nxb = k / 32;
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (size_t)n * nxb;
         i += (size_t)gridDim.x * blockDim.x) {
        uint16_t *d = (uint16_t *)(w + (i / nxb) * nxb * 18 + (size_t)nxb * 16);
        d[i % nxb] = (uint16_t)(0x1c00u | (((uint32_t)i * 2654435761u) >> 22));
    }
}

/* A simple copy kernel: the ceiling's reference (bytes read + written). */
__global__ void copy_kernel(const uint4 *a, uint4 *b, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        b[i] = __ldcs(a + i);
}

/* A launch with programmatic dependent launch after the one before. */
static cudaLaunchConfig_t pdl_config(int sms, size_t smem, cudaStream_t st,
                                     cudaLaunchAttribute *attr) {
    cudaLaunchConfig_t cfg = {};
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = 1;
    cfg.gridDim = dim3(sms);
    cfg.blockDim = dim3(THREADS);
    cfg.dynamicSmemBytes = smem;
    cfg.stream = st;
    cfg.attrs = attr;
    cfg.numAttrs = 1;
    return cfg;
}

/* Phase p's kernel (the Q4_0 form's when it has scales), launched so. */
static void launch_phase(const phase &p, int sms, cudaStream_t st) {
    cudaLaunchAttribute attr;
    cudaLaunchConfig_t cfg = pdl_config(sms, PAD_SMEM, st, &attr);
    if (p.sc)
        CHECK(cudaLaunchKernelEx(&cfg, phase_kernel<true>, p));
    else
        CHECK(cudaLaunchKernelEx(&cfg, phase_kernel<false>, p));
}

/* The graph of what was launched on st since cudaStreamBeginCapture. */
static cudaGraphExec_t end_capture(cudaStream_t st) {
    cudaGraph_t g;
    cudaGraphExec_t exec;
    CHECK(cudaStreamEndCapture(st, &g));
    CHECK(cudaGraphInstantiate(&exec, g, 0));
    CHECK(cudaGraphDestroy(g));
    return exec;
}

/* A graph of n phase kernels, each launched with programmatic dependent
 * launch after the one before. */
static cudaGraphExec_t phase_graph(const phase *ph, int n, int sms, cudaStream_t st) {
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int q = 0; q < n; q++) launch_phase(ph[q], sms, st);
    return end_capture(st);
}

/* The fused-ffn token (Q4_0 form phases q40): per layer qkv (building its
 * input from the f32 residual xacc and gamma), wo, then the fused ffn; or
 * (ffn_only) the 32 fused ffn kernels alone. */
static cudaGraphExec_t ffn_graph(const phase *q40, int sms, float *xacc, const float *gamma,
                                 int grouped, int early, int ffn_only, cudaStream_t st) {
    CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
    for (int l = 0; l < LAYERS; l++) {
        if (!ffn_only) {
            phase q = q40[4 * l];
            q.xf = xacc, q.gamma = gamma;
            launch_phase(q, sms, st);
            launch_phase(q40[4 * l + 1], sms, st);
        }
        ffn_args a = {q40[4 * l + 2], q40[4 * l + 3], xacc, grouped, early};
        a.g.pairs = 1;
        cudaLaunchAttribute attr;
        cudaLaunchConfig_t cfg = pdl_config(sms, FFN_SMEM, st, &attr);
        CHECK(cudaLaunchKernelEx(&cfg, ffn_kernel, a));
    }
    return end_capture(st);
}

static double elapsed_us(cudaEvent_t a, cudaEvent_t b) {
    float ms;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    return ms * 1e3;
}

/* Median of t[1 .. n) (t[0]: the warm-up), sorting it. */
static double median_after_first(double *t, int n) { return median(t + 1, n - 1); }

/* Where the timings go: a launch a token, timed by events around it. */
struct timer {
    cudaStream_t st;
    cudaEvent_t e0, e1;
    double *t; /* [tokens] */
    int tokens;
};

/* The median time of graph ge, launched once a token, divided by per. */
static double time_graph(const timer &tm, cudaGraphExec_t ge, int per) {
    for (int i = 0; i < tm.tokens; i++) {
        CHECK(cudaEventRecord(tm.e0, tm.st));
        CHECK(cudaGraphLaunch(ge, tm.st));
        CHECK(cudaEventRecord(tm.e1, tm.st));
        CHECK(cudaEventSynchronize(tm.e1));
        tm.t[i] = elapsed_us(tm.e0, tm.e1) / per;
    }
    return median_after_first(tm.t, tm.tokens);
}

/* The last phase's 3,072 output codes into got; how many are nonzero. */
static int last_outputs(const int8_t *acts, int8_t *got) {
    CHECK(cudaMemcpy(got, acts + (size_t)PHASES * KMAX, KMAX, cudaMemcpyDeviceToHost));
    int nz = 0;
    for (int i = 0; i < 3072; i++) nz += got[i] != 0;
    return nz;
}

/* A token of Q4_0-form phases ph (a graph of PHASES kernels), timed and
 * printed under name with its bytes (bytes: the 4-bit units' of a token,
 * plus an f16 scale a unit) and its last phase's nonzero outputs. */
static void time_q4_form(const timer &tm, const phase *ph, int sms, size_t bytes,
                         const int8_t *acts, int8_t *got, const char *name) {
    cudaGraphExec_t ge = phase_graph(ph, PHASES, sms, tm.st);
    double med = time_graph(tm, ge, 1), qb = bytes * 1.125;
    int nz = last_outputs(acts, got);
    printf("%-38s %8.1f us a token  %7.1f tok/s  %6.0f GB/s  (%.3f GB), %d of 3072 nonzero\n", name,
           med, 1e6 / med, qb / med / 1e3, qb / 1e9, nz);
    CHECK(cudaGraphExecDestroy(ge));
}

/* A token of phases ph (a graph), timed and printed under name with its
 * bytes (b) and its last outputs checked against want. */
static void time_checked(const timer &tm, const phase *ph, int sms, double b, const int8_t *acts,
                         int8_t *got, const int8_t *want, const char *name) {
    cudaGraphExec_t ge = phase_graph(ph, PHASES, sms, tm.st);
    const double med = time_graph(tm, ge, 1);
    const int nz = last_outputs(acts, got);
    printf("%-38s %8.1f us a token  %7.1f tok/s  %6.0f GB/s  out %s, %d of 3072 nonzero\n", name,
           med, 1e6 / med, b / med / 1e3, memcmp(got, want, 3072) ? "DIFFERS" : "equal", nz);
    CHECK(cudaGraphExecDestroy(ge));
}

/* One token of phases ph (a graph) with the timeline on, after a warm-up
 * token; per matrix (qkv, wo, gate|up, down: the mean over the layers
 * but the first), us: the phase from the previous phase's last block end
 * to its own; its blocks' starts, waits passed and inputs loaded after
 * that end (median / last); its blocks' ends after their inputs (median),
 * the spread of its ends (last - first) and its last end after the median
 * one; then how far each SM's ends sit from the median on average (a slow
 * SM) against their scatter from phase to phase (noise). */
static void timeline(const char *name, const phase *ph_in, int sms, cudaStream_t st) {
    typedef unsigned long long u64;
    const size_t per = (size_t)sms * 5;
    u64 *ts, *h = (u64 *)malloc(sizeof(u64) * per * PHASES);
    CHECK(cudaMalloc(&ts, sizeof(u64) * per * PHASES));
    static phase ph[PHASES];
    for (int q = 0; q < PHASES; q++) ph[q] = ph_in[q], ph[q].ts = ts + per * q;
    cudaGraphExec_t ge = phase_graph(ph, PHASES, sms, st);
    CHECK(cudaGraphLaunch(ge, st));
    CHECK(cudaMemsetAsync(ts, 0, sizeof(u64) * per * PHASES, st));
    CHECK(cudaGraphLaunch(ge, st));
    CHECK(cudaStreamSynchronize(st));
    CHECK(cudaMemcpy(h, ts, sizeof(u64) * per * PHASES, cudaMemcpyDeviceToHost));
    /* per matrix: phase, start med / max, wait med / max, input med / max, rows med, spread,
     * last end - median end; per SM: its ends' offsets from each phase's median end */
    double acc[4][10] = {}, v[4][1024], sm_sum[1024] = {}, sm_sq[1024] = {};
    int sm_n[1024] = {};
    for (int q = 4; q < PHASES; q++) {
        const u64 *t = h + per * q, *pt = h + per * (q - 1);
        u64 prev = 0, hi = 0, lo = ~0ull;
        for (int b = 0; b < sms; b++) prev = pt[5 * b + 3] > prev ? pt[5 * b + 3] : prev;
        for (int b = 0; b < sms; b++) {
            for (int f = 0; f < 3; f++) v[f][b] = ((double)t[5 * b + f] - (double)prev) / 1e3;
            v[3][b] = ((double)t[5 * b + 3] - (double)t[5 * b + 2]) / 1e3;
            hi = t[5 * b + 3] > hi ? t[5 * b + 3] : hi;
            lo = t[5 * b + 3] < lo ? t[5 * b + 3] : lo;
        }
        double *a = acc[q % 4];
        a[0] += ((double)hi - (double)prev) / 1e3;
        for (int f = 0; f < 3; f++) {
            double mx = v[f][0];
            for (int b = 1; b < sms; b++) mx = v[f][b] > mx ? v[f][b] : mx;
            a[1 + 2 * f] += median(v[f], sms);
            a[2 + 2 * f] += mx;
        }
        a[7] += median(v[3], sms);
        a[8] += ((double)hi - (double)lo) / 1e3;
        double e[1024];
        for (int b = 0; b < sms; b++) e[b] = (double)t[5 * b + 3] / 1e3;
        double ec[1024];
        memcpy(ec, e, sizeof(double) * sms);
        const double me = median(ec, sms);
        a[9] += (double)hi / 1e3 - me;
        for (int b = 0; b < sms; b++) {
            const int sm = (int)t[5 * b + 4] & 1023;
            sm_sum[sm] += e[b] - me, sm_sq[sm] += (e[b] - me) * (e[b] - me), sm_n[sm]++;
        }
    }
    const char *mats[4] = {"qkv", "wo", "gate|up", "down"};
    printf("timeline, %s (us, mean over layers 2-%d; from the previous phase's last block end):\n",
           name, LAYERS);
    printf("  %-8s %6s %13s %13s %13s %8s %7s %9s\n", "matrix", "phase", "start med/max",
           "wait med/max", "input med/max", "rows med", "spread", "last-med");
    for (int m = 0; m < 4; m++) {
        const double *a = acc[m], n = LAYERS - 1;
        printf("  %-8s %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %6.2f %8.2f %7.2f %9.2f\n", mats[m],
               a[0] / n, a[1] / n, a[2] / n, a[3] / n, a[4] / n, a[5] / n, a[6] / n, a[7] / n,
               a[8] / n, a[9] / n);
    }
    /* an SM's mean offset (its bias) against the spread of its offsets (noise) */
    double mean[1024], sd = 0;
    int nsm = 0;
    for (int sm = 0; sm < 1024; sm++)
        if (sm_n[sm] > 1) {
            const double m = sm_sum[sm] / sm_n[sm];
            mean[nsm++] = m;
            sd += sm_sq[sm] / sm_n[sm] - m * m;
        }
    if (nsm) {
        double sorted[1024];
        memcpy(sorted, mean, sizeof(double) * nsm);
        qsort(sorted, nsm, sizeof(double), cmp_double);
        printf("  SMs' mean end offsets from the median end (%d SMs): min %.2f, 10%% %.2f, median "
               "%.2f, 90%% %.2f, max %.2f us; within an SM, sd %.2f us\n",
               nsm, sorted[0], sorted[nsm / 10], sorted[nsm / 2], sorted[nsm * 9 / 10],
               sorted[nsm - 1], sqrt(sd / nsm));
    }
    free(h);
    CHECK(cudaGraphExecDestroy(ge));
    CHECK(cudaFree(ts));
}

/* Phases ph copied into the block-major layout for a grid of g blocks
 * (row_addr): block b's rows of phase q after its rows of phase q - 1,
 * each block's share padded to the most rows a block has, so that every
 * block's stride is the same. The copies' arena is allocated here. */
static void block_major(phase *ph, int g) {
    size_t stride = 0, off[PHASES];
    for (int q = 0; q < PHASES; q++) {
        const size_t rb = (size_t)(ph[q].k / 32) * (ph[q].il ? 18 : 16);
        off[q] = stride;
        stride += (size_t)((ph[q].n + g - 1) / g) * rb;
    }
    stride = (stride + 255) / 256 * 256;
    uint8_t *arena;
    CHECK(cudaMalloc(&arena, stride * g));
    for (int q = 0; q < PHASES; q++) {
        const size_t rb = (size_t)(ph[q].k / 32) * (ph[q].il ? 18 : 16);
        for (int b = 0; b < g; b++) {
            const int r0 = (int)((long long)ph[q].n * b / g),
                      r1 = (int)((long long)ph[q].n * (b + 1) / g);
            CHECK(cudaMemcpy(arena + b * stride + off[q], (const uint8_t *)ph[q].w + r0 * rb,
                             (r1 - r0) * rb, cudaMemcpyDeviceToDevice));
        }
        ph[q].bm = arena, ph[q].bm_stride = stride, ph[q].bm_off = off[q];
    }
}

/* A ring variant: slots x slot_bytes, and how, a list of ring_args' flags
 * by name ("waits,xonce,release"; "own": wring_kernel, slots a warp;
 * "flat": the stream alone over the token's bytes as one range). */
struct ring_shape {
    int slots, slot_bytes;
    const char *how;
};
static int has(const char *how, const char *flag) {
    const size_t n = strlen(flag);
    for (const char *p = how; (p = strstr(p, flag)) != NULL; p += n)
        if ((p == how || p[-1] == ',') && (p[n] == ',' || p[n] == 0)) return 1;
    return 0;
}

/* The ring kernel over phases s (sc: the interleaved Q4_0 form), a
 * cooperative launch a token; its last outputs against want (waits only). */
static void time_ring(const timer &tm, const step &s, int sc, const ring_shape &r, int sms,
                      size_t bytes, const int8_t *acts, int8_t *got, const int8_t *want) {
    static ring_args a; /* ~14 KB: not on the stack */
    a.s = s;
    a.sc = sc, a.slots = r.slots, a.slot_bytes = r.slot_bytes;
    a.waits = has(r.how, "waits"), a.split = has(r.how, "split"), a.lone = has(r.how, "lone");
    a.spin = has(r.how, "spin"), a.own = has(r.how, "own"), a.pol = has(r.how, "normal");
    a.xonce = has(r.how, "xonce"), a.idle = has(r.how, "idle"), a.rel = has(r.how, "release");
    a.nodone = has(r.how, "noends"), a.flat = has(r.how, "flat") ? bytes : 0;
    const void *kern = a.own ? (const void *)wring_kernel : (const void *)ring_kernel;
    const int threads = a.own ? RWARPS * 32 : RTHREADS;
    const size_t smem = (size_t)r.slots * r.slot_bytes * (a.own ? RWARPS : 1);
    CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    int per_sm = 0;
    CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, threads, smem));
    if (per_sm < 1) {
        printf("ring %d x %d: does not fit an SM\n", r.slots, r.slot_bytes);
        return;
    }
    CHECK(cudaMemset(s.done, 0, sizeof(unsigned) * PHASES));
    for (int i = 0; i < tm.tokens; i++) {
        a.token = (unsigned)i;
        void *args[] = {&a};
        CHECK(cudaEventRecord(tm.e0, tm.st));
        CHECK(cudaLaunchCooperativeKernel(kern, dim3(sms), dim3(threads), args, smem, tm.st));
        CHECK(cudaEventRecord(tm.e1, tm.st));
        CHECK(cudaEventSynchronize(tm.e1));
        CHECK(cudaGetLastError());
        tm.t[i] = elapsed_us(tm.e0, tm.e1);
    }
    const double med = median_after_first(tm.t, tm.tokens),
                 b = a.flat ? (double)a.flat : bytes * (sc ? 1.125 : 1.0);
    last_outputs(acts, got);
    char name[160];
    snprintf(name, sizeof name, "%s%s %d x %d KB, %d warps: %s", a.own ? "wring" : "ring",
             sc ? " Q4_0 il" : "", r.slots, r.slot_bytes / 1024, RWARPS, r.how);
    printf("%-52s %7.1f us a token  %7.1f tok/s  %5.0f GB/s  out %s\n", name, med, 1e6 / med,
           b / med / 1e3,
           !a.waits || a.idle || a.flat ? "(not checked)"
           : memcmp(got, want, 3072)    ? "DIFFERS"
                                        : "equal");
}

int main(int argc, char **argv) {
    int tokens = argc > 1 ? atoi(argv[1]) : 64;
    if (tokens < 3 || tokens > 100000) {
        fprintf(stderr, "persist_bench: tokens must be 3..100000\n");
        return 2;
    }
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));

    /* weights: one allocation, a hash pattern (the values do not matter to
     * the timing; the check compares the variants with each other) */
    const int shapes[4][2] = {{9216, 3072}, {3072, 3072}, {16384, 3072}, {3072, 8192}};
    size_t bytes = 0;
    for (int q = 0; q < PHASES; q++) bytes += (size_t)shapes[q % 4][0] * shapes[q % 4][1] / 2;
    uint8_t *w;
    int8_t *acts;
    CHECK(cudaMalloc(&w, bytes));
    fill_kernel<<<sms * 8, 512>>>((uint32_t *)w, bytes / 4);
    CHECK(cudaGetLastError());
    CHECK(cudaMalloc(&acts, (size_t)(PHASES + 1) * KMAX));
    int8_t *x0 = (int8_t *)malloc(KMAX);
    for (int i = 0; i < KMAX; i++) x0[i] = (int8_t)((i * 37) % 255 - 127);
    CHECK(cudaMemcpy(acts, x0, KMAX, cudaMemcpyHostToDevice));

    /* the Q4_0 form's streams: a f16 scale a unit, the inputs' unit scales */
    uint16_t *sc;
    float *dx, dx_host[KMAX / 32];
    CHECK(cudaMalloc(&sc, bytes / 8));
    fill_scales_kernel<<<sms * 8, 512>>>(sc, bytes / 16);
    CHECK(cudaGetLastError());
    for (int i = 0; i < KMAX / 32; i++) dx_host[i] = 0.01f + 0.0001f * (float)(i % 17);
    CHECK(cudaMalloc(&dx, sizeof dx_host));
    CHECK(cudaMemcpy(dx, dx_host, sizeof dx_host, cudaMemcpyHostToDevice));

    step s;
    CHECK(cudaMalloc(&s.done, sizeof(unsigned) * PHASES));
    size_t off = 0;
    for (int q = 0; q < PHASES; q++) {
        phase &p = s.ph[q];
        p.n = shapes[q % 4][0];
        p.k = shapes[q % 4][1];
        p.w = (const uint4 *)(w + off);
        p.sc = NULL;
        p.dx = dx;
        p.pairs = 0;
        p.xf = NULL;
        p.gamma = NULL;
        p.cnt = NULL;
        p.pub = NULL;
        p.pub_dx = NULL;
        p.il = 0;
        p.strided = 0;
        p.bm = NULL;
        p.bm_stride = p.bm_off = 0;
        p.ts = NULL;
        p.xtma = 0;
        p.code = 0;
        p.code_ts = NULL;
        off += (size_t)p.n * p.k / 2;
        p.x = acts + (size_t)q * KMAX;
        p.y = acts + (size_t)(q + 1) * KMAX;
        int next_k = shapes[(q + 1) % 4][1];
        p.n_out = p.n < next_k ? p.n : next_k;
    }
    printf("persist_bench: %s, %d SMs; %d phases a token, %.3f GB of weights a token\n", prop.name,
           sms, PHASES, bytes / 1e9);

    cudaStream_t st;
    CHECK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    double *t = (double *)malloc(sizeof(double) * tokens);
    int8_t *want = (int8_t *)malloc(KMAX), *got = (int8_t *)malloc(KMAX);

    const timer tm = {st, e0, e1, t, tokens};
    if (PAD_SMEM > 0) {
        CHECK(cudaFuncSetAttribute(phase_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   PAD_SMEM));
        CHECK(cudaFuncSetAttribute(phase_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   PAD_SMEM));
    }

    /* phases: a graph of 128 kernels with programmatic dependent launch */
    cudaGraphExec_t exec = phase_graph(s.ph, PHASES, sms, st);
    const char *names[3] = {"phases (128 kernels, graph, PDL)", "persist (counters)",
                            "persist+l2 (next phase prefetched)"};
    for (int v = 0; v < 3; v++) {
        CHECK(cudaMemset(s.done, 0, sizeof(unsigned) * PHASES));
        for (int i = 0; i < tokens; i++) {
            CHECK(cudaEventRecord(e0, st));
            if (v == 0)
                CHECK(cudaGraphLaunch(exec, st));
            else { /* cooperative: every block resident, or an error (the counters'
                    * waits need it) */
                unsigned token = (unsigned)i;
                int l2 = v == 2;
                void *args[] = {&s, &token, &l2};
                CHECK(cudaLaunchCooperativeKernel((void *)persist_kernel, dim3(sms), dim3(THREADS),
                                                  args, 0, st));
            }
            CHECK(cudaEventRecord(e1, st));
            CHECK(cudaEventSynchronize(e1));
            CHECK(cudaGetLastError());
            t[i] = elapsed_us(e0, e1);
        }
        int nz = last_outputs(acts, got);
        if (v == 0) memcpy(want, got, KMAX);
        double med = median_after_first(t, tokens);
        printf("%-38s %8.1f us a token  %7.1f tok/s  %6.0f GB/s  (min %.1f)  out %s, %d of 3072 "
               "nonzero\n",
               names[v], med, 1e6 / med, bytes / med / 1e3, t[1],
               memcmp(got, want, 3072) ? "DIFFERS" : "equal", nz);
    }

    timeline("phases", s.ph, sms, st);
    /* one token of phases inside cudaProfilerStart / Stop: for ncu --profile-from-start off
     * --graph-profiling graph (the Q4_0 form's token is the second such range) */
    CHECK(cudaProfilerStart());
    CHECK(cudaGraphLaunch(exec, st));
    CHECK(cudaStreamSynchronize(st));
    CHECK(cudaProfilerStop());
    {
        phase xt[PHASES];
        for (int q = 0; q < PHASES; q++) xt[q] = s.ph[q], xt[q].xtma = 1;
        time_checked(tm, xt, sms, bytes, acts, got, want, "phases, input by TMA");
        timeline("phases, input by TMA", xt, sms, st);
    }

    /* the cold-code probe: four bodies in turn, then one body in every phase */
    for (int bodies = 4; bodies >= 1; bodies -= 3) {
        unsigned long long *cts,
            *h = (unsigned long long *)malloc(sizeof(unsigned long long) * 2 * sms * PHASES);
        CHECK(cudaMalloc(&cts, sizeof(unsigned long long) * 2 * sms * PHASES));
        phase cp[PHASES];
        for (int q = 0; q < PHASES; q++)
            cp[q] = s.ph[q], cp[q].code = 1 + q % bodies, cp[q].code_ts = cts + (size_t)2 * sms * q;
        cudaGraphExec_t ge = phase_graph(cp, PHASES, sms, tm.st);
        const double med = time_graph(tm, ge, 1);
        CHECK(cudaMemcpy(h, cts, sizeof(unsigned long long) * 2 * sms * PHASES,
                         cudaMemcpyDeviceToHost));
        double c1[132 * PHASES], c2[132 * PHASES];
        int n = 0;
        for (int q = 4; q < PHASES; q++)
            for (int b = 0; b < sms && b < 132; b++, n++)
                c1[n] = (double)h[2 * (sms * q + b)], c2[n] = (double)h[2 * (sms * q + b) + 1];
        printf("phases, cold code (%d bodies of %d KB) %8.1f us a token  %7.1f tok/s; "
               "warp 0's passes: first %.0f, second %.0f cycles (medians)\n",
               bodies, CODE_N * 8 * 16 / 1024, med, 1e6 / med, median(c1, n), median(c2, n));
        CHECK(cudaGraphExecDestroy(ge));
        CHECK(cudaFree(cts));
        free(h);
    }

    /* the rows of a block strided over the matrix instead of a contiguous range */
    {
        phase sr[PHASES];
        for (int q = 0; q < PHASES; q++) sr[q] = s.ph[q], sr[q].strided = 1;
        time_checked(tm, sr, sms, bytes, acts, got, want, "phases, strided rows");
    }

    /* the block-major layout: a block's bytes of a token in one range */
    step sb = s;
    block_major(sb.ph, sms);
    time_checked(tm, sb.ph, sms, bytes, acts, got, want, "phases, block-major");

    /* the ring kernel: the stream of weights never stops at a boundary */
    /* bytes: a slot's; flags: ring_args' (has); 2026-11-29-cuda-h200-7.md */
    const ring_shape rings[] = {
        /* the first form: each lane loads its input from L2, evict-first copies */
        {16, 12288, "waits"},
        {8, 24576, "waits"},
        {32, 6144, "waits"},
        {16, 12288, "waits,split"},
        {16, 12288, "waits,lone"},
        {16, 12288, "waits,spin"},
        /* the input copied once a phase by the block, then from shared memory */
        {16, 12288, "waits,xonce"},
        {16, 12288, "waits,xonce,normal"},
        {16, 12288, "waits,xonce,release"},
        {8, 24576, "waits,xonce,release"},
        {4, 24576, "waits,xonce,release"},
        {4, 12288, "waits,xonce,release"},
        {6, 8192, "waits,xonce,release"},
        {8, 6144, "waits,xonce,release"},
        /* no arithmetic: the consumers pass the slots */
        {16, 12288, "waits,idle,release"},
        {8, 12288, "waits,idle,release"},
        {4, 12288, "waits,idle,release"},
        {16, 12288, "idle"},
        {16, 12288, "idle,release"},
        {16, 12288, "idle,noends"},
        {4, 12288, "idle,release"},
        /* the stream alone over the token's bytes as one range a block */
        {16, 12288, "flat"},
        {16, 12288, "flat,normal"},
        {8, 24576, "flat,normal"},
        {4, 49152, "flat,normal"},
        {4, 12288, "flat,normal"},
        {32, 6144, "flat,normal"},
        {48, 4096, "flat,normal"},
        /* each warp its own ring (slots a warp, of the longest row) */
        {2, 4608, "own,waits"},
        {3, 4608, "own,waits"},
        {1, 4608, "own,waits,xonce,release"},
        {2, 4608, "own,waits,xonce,release"},
        {3, 4608, "own,waits,xonce,release"},
        {3, 4608, "own,idle,release"},
    };
    for (const auto &r : rings) time_ring(tm, s, 0, r, sms, bytes, acts, got, want);

    /* the Q4_0 form: the same phases with a f16 scale a unit (the bytes
     * Q4_0 moves) and the per-unit float arithmetic of the backend's items */
    phase q40[PHASES];
    {
        size_t so = 0;
        for (int q = 0; q < PHASES; q++) {
            q40[q] = s.ph[q];
            q40[q].sc = sc + so;
            so += (size_t)q40[q].n * q40[q].k / 32;
        }
        time_q4_form(tm, q40, sms, bytes, acts, got, "phases, Q4_0 form (scales, float sums)");
        timeline("phases, Q4_0 form", q40, sms, st);
        {
            cudaGraphExec_t ge = phase_graph(q40, PHASES, sms, st);
            CHECK(cudaGraphLaunch(ge, st));
            CHECK(cudaProfilerStart());
            CHECK(cudaGraphLaunch(ge, st));
            CHECK(cudaStreamSynchronize(st));
            CHECK(cudaProfilerStop());
            CHECK(cudaGraphExecDestroy(ge));
        }
        phase xt[PHASES];
        for (int q = 0; q < PHASES; q++) xt[q] = q40[q], xt[q].xtma = 1;
        time_q4_form(tm, xt, sms, bytes, acts, got, "phases, Q4_0 form, input by TMA");
        timeline("phases, Q4_0 form, input by TMA", xt, sms, st);
        phase sr[PHASES];
        for (int q = 0; q < PHASES; q++) sr[q] = q40[q], sr[q].strided = 1;
        time_q4_form(tm, sr, sms, bytes, acts, got, "phases, Q4_0 form, strided rows");
    }

    /* the Q4_0 form with each row's scales after its units: one stream, a
     * row 18 bytes a unit contiguous (the backend reads two: units and
     * scales), to see what the separate scale stream's 64-byte pieces cost */
    phase q4i[PHASES];
    {
        const size_t ib = bytes / 8 * 9;
        uint8_t *wi;
        CHECK(cudaMalloc(&wi, ib));
        fill_kernel<<<sms * 8, 512>>>((uint32_t *)wi, ib / 4);
        size_t o = 0;
        for (int q = 0; q < PHASES; q++) {
            q4i[q] = q40[q];
            q4i[q].w = (const uint4 *)(wi + o);
            q4i[q].il = 1;
            fill_il_scales_kernel<<<sms * 4, 256>>>(wi + o, q4i[q].n, q4i[q].k);
            o += (size_t)q4i[q].n * q4i[q].k / 32 * 18;
        }
        CHECK(cudaGetLastError());
        time_q4_form(tm, q4i, sms, bytes, acts, got, "phases, Q4_0 form, scales in the row");
        step si = s;
        memcpy(si.ph, q4i, sizeof q4i);
        memcpy(want, got, KMAX);
        for (const auto &r : rings)
            if (!has(r.how, "flat")) time_ring(tm, si, 1, r, sms, bytes, acts, got, want);
        step sib = si;
        block_major(sib.ph, sms);
        time_checked(tm, sib.ph, sms, bytes * 1.125, acts, got, want,
                     "phases, Q4_0 il, block-major");
    }

    /* the Q4_0 form with every phase publishing its output (x_pack's
     * last-arriver quantization a 32-row unit) */
    {
        unsigned *cnt;
        int8_t *pub;
        float *pub_dx;
        CHECK(cudaMalloc(&cnt, sizeof(unsigned) * PHASES * (KMAX * 2 / 32)));
        CHECK(cudaMemset(cnt, 0, sizeof(unsigned) * PHASES * (KMAX * 2 / 32)));
        CHECK(cudaMalloc(&pub, KMAX));
        CHECK(cudaMalloc(&pub_dx, sizeof(float) * KMAX / 32));
        phase pq[PHASES];
        for (int q = 0; q < PHASES; q++) {
            pq[q] = q40[q];
            pq[q].cnt = cnt + (size_t)q * (KMAX * 2 / 32);
            pq[q].pub = pub;
            pq[q].pub_dx = pub_dx;
        }
        cudaGraphExec_t ge = phase_graph(pq, PHASES, sms, st);
        double med = time_graph(tm, ge, 1), qb = bytes * 1.125;
        unsigned left = 0, *hc = (unsigned *)malloc(sizeof(unsigned) * PHASES * (KMAX * 2 / 32));
        CHECK(cudaMemcpy(hc, cnt, sizeof(unsigned) * PHASES * (KMAX * 2 / 32),
                         cudaMemcpyDeviceToHost));
        for (int i = 0; i < PHASES * (KMAX * 2 / 32); i++) left += hc[i] != 0;
        printf("%-38s %8.1f us a token  %7.1f tok/s  %6.0f GB/s  counters left nonzero: %u\n",
               "phases, Q4_0 form, each publishing", med, 1e6 / med, qb / med / 1e3, left);
        free(hc);
        CHECK(cudaGraphExecDestroy(ge));
    }

    /* each phase alone: 32 kernels of one shape (each layer's weights of
     * that matrix), chained through the same buffers, per kernel; both forms */
    const char *mats[4] = {"qkv 9216 x 3072", "wo 3072 x 3072", "gate|up 16384 x 3072",
                           "down 3072 x 8192"};
    float *xf, *gamma; /* the build variant's input and norm weights */
    {
        float h[3072];
        for (int i = 0; i < 3072; i++) h[i] = 0.5f + 0.001f * (float)(i % 1000) - (float)(i & 1);
        CHECK(cudaMalloc(&xf, sizeof h));
        CHECK(cudaMalloc(&gamma, sizeof h));
        CHECK(cudaMemcpy(xf, h, sizeof h, cudaMemcpyHostToDevice));
        CHECK(cudaMemcpy(gamma, h, sizeof h, cudaMemcpyHostToDevice));
    }
    /* each matrix alone: the lean form, the Q4_0 form, gate|up paired and
     * paired building its input, then the Q4_0 form with the scales in the
     * row (gate|up paired as the backend runs it) */
    const struct {
        const phase *src; /* the token's phases of that form */
        int mat;          /* 0..3: qkv, wo, gate|up, down */
        int pairs, build;
        const char *form;
    } alone[14] = {
        {s.ph, 0, 0, 0, ""},     {s.ph, 1, 0, 0, ""},    {s.ph, 2, 0, 0, ""},
        {s.ph, 3, 0, 0, ""},     {q40, 0, 0, 0, "Q4_0"}, {q40, 1, 0, 0, "Q4_0"},
        {q40, 2, 0, 0, "Q4_0"},  {q40, 3, 0, 0, "Q4_0"}, {q40, 2, 1, 0, "pairs"},
        {q40, 2, 1, 1, "build"}, {q4i, 0, 0, 0, "il"},   {q4i, 1, 0, 0, "il"},
        {q4i, 2, 1, 0, "il+p"},  {q4i, 3, 0, 0, "il"},
    };
    for (const auto &v : alone) {
        phase one[LAYERS];
        for (int l = 0; l < LAYERS; l++) {
            one[l] = v.src[4 * l + v.mat];
            one[l].x = acts + (size_t)l * KMAX;
            one[l].y = acts + (size_t)(l + 1) * KMAX;
            one[l].n_out = one[l].n < KMAX ? one[l].n : KMAX;
            one[l].pairs = v.pairs;
            one[l].xf = v.build ? xf : NULL;
            one[l].gamma = v.build ? gamma : NULL;
        }
        cudaGraphExec_t ge = phase_graph(one, LAYERS, sms, st);
        double med = time_graph(tm, ge, LAYERS);
        double mb = (double)one[0].n * one[0].k / 2 / 1e6 * (v.src == s.ph ? 1.0 : 1.125);
        printf("  phase kernel, %-22s %-5s %6.2f us each  %5.2f MB  %6.0f GB/s\n", mats[v.mat],
               v.form, med, mb, mb / med * 1e3);
        CHECK(cudaGraphExecDestroy(ge));
    }

    /* the fused ffn (gate|up + a split-K down, ffn_kernel): the token with
     * the 96 kernels (qkv building from the f32 residual), and the ffn
     * kernel alone (32 in a graph), for down's two layouts and the two
     * times its slice is loaded; against them, the 128-kernel token with
     * qkv building its input too */
    {
        float *xacc;
        CHECK(cudaMalloc(&xacc, sizeof(float) * 3072));
        CHECK(cudaMemcpy(xacc, xf, sizeof(float) * 3072, cudaMemcpyDeviceToDevice));
        CHECK(cudaFuncSetAttribute(ffn_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                   FFN_SMEM));
        phase qb[PHASES];
        for (int q = 0; q < PHASES; q++) {
            qb[q] = q40[q];
            if (q % 4 == 0) qb[q].xf = xacc, qb[q].gamma = gamma;
            if (q % 4 == 2) qb[q].pairs = 1;
        }
        time_q4_form(tm, qb, sms, bytes, acts, got, "phases, Q4_0 form, qkv builds, pairs");
        for (int v = 0; v < 4; v++) {
            const int grouped = v & 1, early = v >> 1;
            char name[64];
            snprintf(name, sizeof name, "fused ffn, %s, slice %s",
                     grouped ? "grouped" : "row-major", early ? "early" : "after wait");
            cudaGraphExec_t ge = ffn_graph(q40, sms, xacc, gamma, grouped, early, 0, st);
            double med = time_graph(tm, ge, 1), qbytes = bytes * 1.125;
            CHECK(cudaGetLastError());
            printf("%-38s %8.1f us a token  %7.1f tok/s  %6.0f GB/s\n", name, med, 1e6 / med,
                   qbytes / med / 1e3);
            CHECK(cudaGraphExecDestroy(ge));
            ge = ffn_graph(q40, sms, xacc, gamma, grouped, early, 1, st);
            med = time_graph(tm, ge, LAYERS);
            const double mb = (16384.0 * 3072 + 3072.0 * 8192) / 2 / 1e6 * 1.125;
            printf("  ffn kernel alone %6.2f us each  %5.2f MB  %6.0f GB/s\n", med, mb,
                   mb / med * 1e3);
            CHECK(cudaGraphExecDestroy(ge));
        }
        float xh[4];
        CHECK(cudaMemcpy(xh, xacc, sizeof xh, cudaMemcpyDeviceToHost));
        printf("  residual after the runs: %g %g %g %g\n", xh[0], xh[1], xh[2], xh[3]);
        CHECK(cudaFree(xacc));
    }

    /* the ceiling: a copy of 2 GB (read + write counted) */
    {
        size_t n = (size_t)1 << 27; /* uint4s: 2 GB each way */
        uint4 *a, *b;
        CHECK(cudaMalloc(&a, n * 16));
        CHECK(cudaMalloc(&b, n * 16));
        CHECK(cudaMemset(a, 1, n * 16));
        double best = 1e30;
        for (int i = 0; i < 5; i++) {
            CHECK(cudaEventRecord(e0, st));
            copy_kernel<<<sms * 8, 512, 0, st>>>(a, b, n);
            CHECK(cudaEventRecord(e1, st));
            CHECK(cudaEventSynchronize(e1));
            double us = elapsed_us(e0, e1);
            if (us < best) best = us;
        }
        printf("%-38s %8.0f GB/s (2 x %.1f GB in %.0f us; the floor for %.3f GB: %.1f tok/s)\n",
               "copy ceiling", 2.0 * n * 16 / best / 1e3, n * 16 / 1e9, best, bytes / 1e9,
               2.0 * n * 16 / best / 1e3 * 1e9 / bytes);
        CHECK(cudaFree(a));
        CHECK(cudaFree(b));
    }
    return 0;
}
