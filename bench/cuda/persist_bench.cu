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
 * block beside the first, is what shortens the phases.
 */
#define BENCH_NAME "persist_bench"
#include "bench_util.cuh"

#include <cuda_fp16.h>
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
};

struct step {
    phase ph[PHASES];
    unsigned *done; /* [PHASES] blocks finished with phase p, over all tokens */
};

/* ---- the matvec of one phase for one block --------------------------------- */

/* Units of a row a lane holds: K / 32 / 32 (3 or 8). */
template <int U> struct row_regs {
    uint4 u[U];
    uint16_t d[U]; /* the units' f16 scales (SC) */
};

template <int U, bool SC = false>
__device__ __forceinline__ void row_load(const phase &p, int row, int lane, row_regs<U> &r) {
    const size_t nxb = p.k / 32;
    const uint8_t *rb = (const uint8_t *)p.w + (size_t)row * nxb * 18; /* the interleaved row */
    const uint4 *w = (p.il ? (const uint4 *)rb : p.w + (size_t)row * nxb) + lane;
#pragma unroll
    for (int i = 0; i < U; i++) r.u[i] = __ldcs(w + 32 * i); /* streamed: evict first */
    if constexpr (SC) {
        const unsigned short *d =
            (p.il ? (const unsigned short *)(rb + nxb * 16) : p.sc + (size_t)row * nxb) + lane;
#pragma unroll
        for (int i = 0; i < U; i++) r.d[i] = __ldcs(d + 32 * i);
    }
}

/* acc plus one unit's dot product with its 32 input codes x: the low
 * nibbles of the unit's 16 bytes against x[0 .. 15], the high ones
 * against x[16 .. 31] (Q4_0's order). */
__device__ __forceinline__ int unit_dot(const uint4 &w, const int8_t *x, int acc) {
    const int *xv = (const int *)x;
    const unsigned q[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        acc = __dp4a((int)(q[j] & 0x0f0f0f0fu), xv[j], acc);
        acc = __dp4a((int)((q[j] >> 4) & 0x0f0f0f0fu), xv[4 + j], acc);
    }
    return acc;
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

/* Rows [r0, r1) of phase p, this block's; xs holds the phase's input.
 * ring[0 .. D) hold the warp's first D rows, loaded before the wait. */
template <int U, int D, bool SC = false>
__device__ void phase_rows(const phase &p, int r0, int r1, const int8_t *xs,
                           row_regs<U> (&ring)[D + 1]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const float *dxs = (const float *)(xs + KMAX);
    const int *xsum = (const int *)(dxs + KMAX / 32);
    for (int row = r0 + warp; row < r1; row += WARPS) {
        if (row + D * WARPS < r1) row_load<U, SC>(p, row + D * WARPS, lane, ring[D]);
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

__device__ __forceinline__ void block_rows(int n, int &r0, int &r1) {
    r0 = (int)((long long)n * blockIdx.x / gridDim.x);
    r1 = (int)((long long)n * (blockIdx.x + 1) / gridDim.x);
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

/* The input codes into shared memory (after the wait); with SC also the
 * input's unit scales and the codes' sums a unit (which the backend's
 * producers publish beside the codes); the build variant's block makes
 * them itself (build_x). */
template <bool SC = false> __device__ __forceinline__ void load_x(const phase &p, int8_t *xs) {
    if (SC && p.xf) return build_x(p, xs);
    for (int i = threadIdx.x * 16; i < p.k; i += THREADS * 16)
        *(uint4 *)(xs + i) = __ldcg((const uint4 *)(p.x + i));
    if constexpr (SC) {
        float *dxs = (float *)(xs + KMAX);
        for (int u = threadIdx.x; u < p.k / 32; u += THREADS) dxs[u] = __ldg(p.dx + u);
        __syncthreads();
        int *xsum = (int *)(dxs + KMAX / 32);
        for (int u = threadIdx.x; u < p.k / 32; u += THREADS) {
            int sum = 0;
            for (int j = 0; j < 8; j++)
                sum = __dp4a(((const int *)(xs + 32 * u))[j], 0x01010101, sum);
            xsum[u] = sum;
        }
    }
    __syncthreads();
}

/* The warp's first D rows of phase p (the block's range), before the wait. */
template <int U, int D, bool SC = false>
__device__ __forceinline__ void first_rows(const phase &p, row_regs<U> (&ring)[D + 1], int &r0,
                                           int &r1) {
    block_rows(p.n, r0, r1);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
#pragma unroll
    for (int i = 0; i < D; i++)
        if (r0 + warp + i * WARPS < r1) row_load<U, SC>(p, r0 + warp + i * WARPS, lane, ring[i]);
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

template <int U, bool SC> __device__ void phase_body_pdl(const phase &p, int8_t *xs) {
    constexpr int D = depth<U>();
    row_regs<U> ring[D + 1] = {};
    int r0, r1;
    first_rows<U, D, SC>(p, ring, r0, r1);
    asm volatile("griddepcontrol.wait;" ::: "memory");
    load_x<SC>(p, xs);
    phase_rows<U, D, SC>(p, r0, r1, xs, ring);
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

__device__ __forceinline__ void cp_async16(void *dst, const void *src) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(s), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async4(void *dst, const void *src) {
    unsigned s = (unsigned)__cvta_generic_to_shared(dst);
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;" ::"r"(s), "l"(src) : "memory");
}

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
        cp_async4(ds + r,
                  a.grouped ? sc + (size_t)xp * 6144 + 2 * r : sc + (size_t)r * 256 + 2 * xp);
    asm volatile("cp.async.commit_group;" ::: "memory");
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
    asm volatile("cp.async.wait_all;" ::: "memory");
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
