/*
 * Role matmul, batched form: C (op)= A . W^T on tensor cores, for prefill
 * and for decode batches too large for the GEMV (more than CU_MAX_ROWS
 * rows). A is f16 activations [M][K]; W is any repacked weight type,
 * dequantized tile by tile into shared memory as f16 (mma.sync on
 * dequantized tiles; no cuBLAS).
 *
 * Tile: BM x 128 outputs, K in steps of 64 (two x-blocks), 256 threads =
 * 8 warps as 2 (M) x 4 (N), each warp BM/2 x 32 with m16n8k16 HMMA and
 * f32 accumulators, fragments by ldmatrix (one instruction per 16 x 16
 * of A or of two n8 tiles of W, where 32-bit shared loads took four).
 * Per k-step each thread fetches one x-block of one weight row into
 * registers (16-byte loads) while the tensor cores work on the previous
 * step, then dequantizes it (in half2 arithmetic: gfrag_halves) into the
 * other smem buffer; A goes through cp.async. Two buffers, one barrier
 * per step; at most 128 registers, so two blocks share an SM (the K-quant
 * tiles took 162 and ran one a SM: pp512 Q4_K_M 19.1k against 22.5k).
 *
 * Depth D (tune.gemm_depth, BM 32 and 64): the next D steps are in
 * flight, A's tiles in a ring of D + 1 shared-memory buffers (cp.async
 * groups), the weight x-blocks in a ring of D register sets (D = 1: the
 * next step's only, the two-buffer form). A small-M tile does little
 * arithmetic a step, so one step ahead each step waits out a whole round
 * trip, A's from L2 as much as the weights' from DRAM: a 32-row decode
 * batch's gate|up took ~1.6 us a k-step (ncu's kernel time over its 24
 * steps). Depth 2: +4% at 32 rows (Q4_0, H200); 3 and 4 lose
 * (bench/results/2026-11-28-cuda-h200-3.md).
 *
 * BM is 32, 64 or 128 by M, so a 32-row decode batch does not pay for 128.
 * Grid: (M tiles, N tiles, split); M tiles vary fastest so the blocks that
 * share a weight tile run together and it is read from DRAM about once.
 * split > 1 cuts K (for short-M shapes that would leave SMs idle); partial
 * sums then meet in C through atomicAdd. Mode CU_GEMM_SILU fuses role
 * ffn's tail: gate and up rows share a tile and the epilogue writes
 * silu(gate) * up in f16 (gemm_silu).
 *
 * Bytes: W once (per M tile, mostly from L2), A once per N tile (L2),
 * C once (gate|up: h, in f16, instead of gate and up in f32). FLOPs
 * 2 M N K. Measured (ncu, Phi-3-mini Q4_0, 512 rows, H100): 160-250
 * TFLOP/s by shape (bench/results/2026-11-27-cuda-h100-3.md).
 */
#include "backend/cuda/gemv.cuh"
#include "backend/cuda/kernels.h"

#include <string.h>

#define G_BN      128
#define G_BK      64
#define G_LDS     (G_BK + 8) /* halves per smem row: 144 bytes, conflict-free fragments */
#define G_THREADS 256

template <int WT> struct gfrag { frag<WT> f; };
template <> struct gfrag<CW_F16> { uint4 w[4]; };
template <> struct gfrag<CW_BF16> { uint4 w[4]; };

template <int WT>
__device__ __forceinline__ void gfrag_load(gfrag<WT> &g, const cu_mat &m, int row, int xb) {
    const int nxb = m.n_in / 32;
    const size_t bi = (size_t)row * nxb + xb;
    if constexpr (WT == CW_F16 || WT == CW_BF16) {
#pragma unroll
        for (int i = 0; i < 4; i++) g.w[i] = ld_weight16(m.q + bi * 64 + 16 * i);
    } else {
        row_ptrs p = row_start<WT>(m, row, 0);
        frag_load<WT>(g.f, p, xb, xb);
    }
}

/* Bytes 0 and 1 (sel 0x4140) or 2 and 3 (0x4342) of w into the low bytes
 * of the two halves of a half2 word, the high bytes `fill`. */
__device__ __forceinline__ uint32_t spread2(uint32_t w, uint32_t fill, uint32_t sel) {
    return __byte_perm(w, fill, sel);
}
__device__ __forceinline__ __half2 as_h2(uint32_t u) { return *reinterpret_cast<__half2 *>(&u); }
/* The low nibbles of a spread2 word as the half2 (1024 + code); the high
 * nibbles: nib_h2(p >> 4). */
__device__ __forceinline__ __half2 nib_h2(uint32_t p) {
    return as_h2((p & 0x000F000Fu) | 0x64006400u);
}

/* 32 dequantized weights as 16 half2 (out[i] = elements 2i, 2i + 1), in
 * half2 arithmetic: a code c in the low byte of a half whose high byte is
 * 0x64 reads 1024 + c exactly, so subtracting the offset gives the signed
 * value exactly. Q4_0 and Q8_0 then take one multiply by d: the exact
 * product rounded once, the same half as rounding d * value computed in
 * f32, at a third of the instructions. Q4_K and Q6_K round their
 * sub-block scale (d * sc, dmin * m: exact in f32) to f16 first, one
 * more rounding than the f32 path (relative 2^-11 of a weight). Q5_K and
 * BF16 go through f32. */
template <int WT>
__device__ __forceinline__ void gfrag_halves(const gfrag<WT> &g, int xb, __half2 out[16]) {
    if constexpr (WT == CW_F16) {
#pragma unroll
        for (int i = 0; i < 4; i++) {
            const uint32_t a[4] = {g.w[i].x, g.w[i].y, g.w[i].z, g.w[i].w};
#pragma unroll
            for (int k = 0; k < 4; k++) out[4 * i + k] = *reinterpret_cast<const __half2 *>(&a[k]);
        }
    } else if constexpr (WT == CW_Q4_0) {
        const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
        const __half2 d = __half2half2(__ushort_as_half(g.f.d)), off = __float2half2_rn(1032.0f);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const uint32_t p01 = spread2(q[k], 0, 0x4140), p23 = spread2(q[k], 0, 0x4342);
            /* low nibbles: elements 4k ..; high nibbles: elements 16 + 4k .. */
            out[2 * k] = __hmul2(__hsub2(nib_h2(p01), off), d);
            out[2 * k + 1] = __hmul2(__hsub2(nib_h2(p23), off), d);
            out[8 + 2 * k] = __hmul2(__hsub2(nib_h2(p01 >> 4), off), d);
            out[9 + 2 * k] = __hmul2(__hsub2(nib_h2(p23 >> 4), off), d);
        }
    } else if constexpr (WT == CW_Q8_0) {
        const uint32_t q[8] = {g.f.q0.x, g.f.q0.y, g.f.q0.z, g.f.q0.w,
                               g.f.q1.x, g.f.q1.y, g.f.q1.z, g.f.q1.w};
        const __half2 d = __half2half2(__ushort_as_half(g.f.d)), off = __float2half2_rn(1152.0f);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            const uint32_t u = q[k] ^ 0x80808080u; /* int8 c -> c + 128 */
            out[2 * k] = __hmul2(__hsub2(as_h2(spread2(u, 0x64646464u, 0x4140)), off), d);
            out[2 * k + 1] = __hmul2(__hsub2(as_h2(spread2(u, 0x64646464u, 0x4342)), off), d);
        }
    } else if constexpr (WT == CW_Q4_K) {
        const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
        const uint32_t h[4] = {g.f.h.x, g.f.h.y, g.f.h.z, g.f.h.w};
        int sc, m;
        cu_k_scale_min(h, xb & 7, &sc, &m);
        const __half2 d = __float2half2_rn(cu_h2f((uint16_t)(h[0] & 0xffff)) * (float)sc);
        const __half2 mn = __float2half2_rn(-cu_h2f((uint16_t)(h[0] >> 16)) * (float)m);
        const __half2 off = __float2half2_rn(1024.0f);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const uint32_t p01 = spread2(q[k], 0, 0x4140), p23 = spread2(q[k], 0, 0x4342);
            out[2 * k] = __hfma2(__hsub2(nib_h2(p01), off), d, mn);
            out[2 * k + 1] = __hfma2(__hsub2(nib_h2(p23), off), d, mn);
            out[8 + 2 * k] = __hfma2(__hsub2(nib_h2(p01 >> 4), off), d, mn);
            out[9 + 2 * k] = __hfma2(__hsub2(nib_h2(p23 >> 4), off), d, mn);
        }
    } else if constexpr (WT == CW_Q6_K) {
        /* code = low nibble | 2 high bits << 4 (qh word 0: elements 0-15,
         * word 1: 16-31; element 16 w + 4k + b at bit 8b + 2k) */
        const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
        const float d = cu_h2f(g.f.d);
        const __half2 da = __float2half2_rn(d * (float)(int8_t)(g.f.sc & 0xff));
        const __half2 db = __float2half2_rn(d * (float)(int8_t)(g.f.sc >> 8));
        const __half2 off = __float2half2_rn(1056.0f);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            const uint32_t ha = (g.f.qh.x >> (2 * k)) & 0x03030303u,
                           hb = (g.f.qh.y >> (2 * k)) & 0x03030303u;
#pragma unroll
            for (int s2 = 0; s2 < 2; s2++) {
                const uint32_t sel = s2 ? 0x4342 : 0x4140, p = spread2(q[k], 0, sel);
                const uint32_t lo = (p & 0x000F000Fu) | (spread2(ha, 0, sel) << 4),
                               hi = ((p >> 4) & 0x000F000Fu) | (spread2(hb, 0, sel) << 4);
                out[2 * k + s2] = __hmul2(__hsub2(as_h2(lo | 0x64006400u), off), da);
                out[8 + 2 * k + s2] = __hmul2(__hsub2(as_h2(hi | 0x64006400u), off), db);
            }
        }
    } else {
        float v[32];
        if constexpr (WT == CW_BF16) {
#pragma unroll
            for (int i = 0; i < 4; i++) {
                const uint32_t a[4] = {g.w[i].x, g.w[i].y, g.w[i].z, g.w[i].w};
#pragma unroll
                for (int k = 0; k < 4; k++) {
                    v[8 * i + 2 * k] = __uint_as_float(a[k] << 16);
                    v[8 * i + 2 * k + 1] = __uint_as_float(a[k] & 0xffff0000u);
                }
            }
        } else {
            const uint32_t q[4] = {g.f.q.x, g.f.q.y, g.f.q.z, g.f.q.w};
            const uint32_t h[4] = {g.f.h.x, g.f.h.y, g.f.h.z, g.f.h.w};
            cu_deq_q45_k(q, h, xb & 7, g.f.qh, v); /* Q5_K */
        }
#pragma unroll
        for (int i = 0; i < 16; i++) out[i] = __floats2half2_rn(v[2 * i], v[2 * i + 1]);
    }
}

/* The gate|up form (mode CU_GEMM_SILU, one K split): a block's 128 weight
 * rows are gate rows row0 + c and up rows up_row0 + c of up (c: the 64
 * outputs n0 / 2 ..), so that the epilogue can write h = silu(gate) * up
 * in f16 (the down GEMM's A) without the f32 gate|up round trip through
 * memory and the separate silu kernel. N counts h's columns. */
struct gemm_silu {
    cu_mat up;
    int up_row0;
    __half *h;
    int ldh;
};

template <int WT, int BM, int D>
__global__ void __launch_bounds__(G_THREADS, 2)
    cu_gemm_kernel(const __half *__restrict__ A, int lda, int M, cu_mat W, int row0, int N,
                   float *C, int ldc, int mode, int steps_per_split, gemm_silu su) {
    constexpr int WM = BM / 2, MT = WM / 16, NT = 4, NA = D + 1;
    extern __shared__ __align__(16) uint8_t smem[];
    __half(*As)[BM][G_LDS] = reinterpret_cast<__half(*)[BM][G_LDS]>(smem); /* [NA] */
    __half(*Bs)[G_BN][G_LDS] =
        reinterpret_cast<__half(*)[G_BN][G_LDS]>(smem + NA * BM * G_LDS * sizeof(__half));

    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3, lr = lane & 7, lm = lane >> 3;
    const int wm0 = (warp >> 2) * WM, wn0 = (warp & 3) * 32;
    const int m0 = blockIdx.x * BM, n0 = blockIdx.y * G_BN;
    const bool silu = mode == CU_GEMM_SILU;
    const int K = W.n_in, nxb = K / 32, nsteps = (nxb + 1) / 2;
    const int s_begin = blockIdx.z * steps_per_split;
    const int s_end = min(nsteps, s_begin + steps_per_split);
    if (s_begin >= s_end) return;

    /* this thread's weight x-block in every step: row n0 + bn (gate|up:
     * gate or up row n0 / 2 + bn % 64), x-block 2 s + bx */
    const int bn = tid >> 1, bx = tid & 1;
    const bool b_up = silu && bn >= 64;
    const int b_col = silu ? n0 / 2 + (bn & 63) : n0 + bn;
    const bool brow_ok = b_col < N;
    const cu_mat Wb = b_up ? su.up : W;
    const int b_row = (b_up ? su.up_row0 : row0) + b_col;
    gfrag<WT> bf[D]; /* step s's x-block in bf[(s - s_begin) % D] */

    /* one cp.async group a step, empty past the split's end, so that the
     * groups still in flight are always the next D - 1 steps' */
    auto load_a = [&](int s, int buf) {
        for (int c = tid; c < BM * 8 && s < s_end; c += G_THREADS) {
            int m = c >> 3, ch = c & 7, gm = m0 + m, gk = s * G_BK + ch * 8;
            bool ok = gm < M && gk < K;
            cp_async16(&As[buf][m][ch * 8], ok ? A + (size_t)gm * lda + gk : A, ok ? 16 : 0);
        }
        cp_async_commit();
    };
    auto fetch_b = [&](int s, gfrag<WT> &f) {
        int xb = 2 * s + bx;
        if (brow_ok && xb < nxb && s < s_end) gfrag_load<WT>(f, Wb, b_row, xb);
    };
    auto store_b = [&](int s, int buf, const gfrag<WT> &f) {
        int xb = 2 * s + bx;
        __half2 h[16];
        if (brow_ok && xb < nxb) {
            gfrag_halves<WT>(f, xb, h);
        } else {
#pragma unroll
            for (int i = 0; i < 16; i++) h[i] = __floats2half2_rn(0.0f, 0.0f);
        }
        uint4 *dst = reinterpret_cast<uint4 *>(&Bs[buf][bn][bx * 32]);
#pragma unroll
        for (int i = 0; i < 4; i++) dst[i] = *reinterpret_cast<const uint4 *>(&h[4 * i]);
    };

    float acc[MT][NT][4];
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) acc[i][j][k] = 0.0f;

#pragma unroll
    for (int u = 0; u < D; u++) load_a(s_begin + u, u), fetch_b(s_begin + u, bf[u]);
    store_b(s_begin, 0, bf[0]);
    cp_async_wait<D - 1>();
    __syncthreads();

    /* step s's A tile in As[(s - s_begin) % NA] (abuf), its weights in
     * bf[(s - s_begin) % D], then dequantized into Bs[(s - s_begin) % 2] */
    int abuf = 0;
    /* steps in groups of D, so that each one's register slot is a constant */
    for (int s0 = s_begin; s0 < s_end; s0 += D) {
#pragma unroll
        for (int u = 0; u < D; u++) {
            const int s = s0 + u;
            if (s >= s_end) break;
            const int buf = (s - s_begin) & 1;
            const bool more = s + 1 < s_end;
            /* step s + D's A into step s - 1's buffer, its weights into
             * step s's registers (both consumed before the last barrier) */
            load_a(s + D, abuf == 0 ? NA - 1 : abuf - 1);
            fetch_b(s + D, bf[u]);
#pragma unroll
            for (int kk = 0; kk < G_BK; kk += 16) {
                /* ldmatrix: lane -> row lr of matrix lm; A's matrices are (rows
                 * 0-7 | 8-15) x (k 0-7 | 8-15) in fragment order, B's (k 0-7 |
                 * 8-15) of n 0-7, then of n 8-15: two n8 tiles per load */
                uint32_t a[MT][4], b[NT][2];
#pragma unroll
                for (int i = 0; i < MT; i++)
                    ldsm_x4(a[i], &As[abuf][wm0 + i * 16 + (lm & 1) * 8 + lr][kk + (lm >> 1) * 8]);
#pragma unroll
                for (int j = 0; j < NT; j += 2) {
                    uint32_t r[4];
                    ldsm_x4(r, &Bs[buf][wn0 + j * 8 + (lm >> 1) * 8 + lr][kk + (lm & 1) * 8]);
                    b[j][0] = r[0], b[j][1] = r[1], b[j + 1][0] = r[2], b[j + 1][1] = r[3];
                }
#pragma unroll
                for (int i = 0; i < MT; i++)
#pragma unroll
                    for (int j = 0; j < NT; j++) mma_16816(acc[i][j], a[i], b[j][0], b[j][1]);
            }
            if (more) {
                store_b(s + 1, buf ^ 1, bf[(u + 1) % D]);
                cp_async_wait<D - 1>(); /* step s + 1's A */
            }
            __syncthreads();
            abuf = abuf + 1 == NA ? 0 : abuf + 1;
        }
    }

    if (silu) {
        /* the up warps (columns 64..127) hand their sums to the gate warps
         * through the (now free) tile memory; same (i, j, k) = same row,
         * column - 64 */
        constexpr int US = 64 + 8;
        float(*U)[US] = reinterpret_cast<float(*)[US]>(smem);
        const bool up_warp = wn0 >= 64;
        /* f(v0, v1, m, c) for each accumulator pair: tile row m, columns
         * c, c + 1 of the gate (or up) half */
        auto each_pair = [&](auto f) {
#pragma unroll
            for (int i = 0; i < MT; i++)
#pragma unroll
                for (int j = 0; j < NT; j++)
#pragma unroll
                    for (int k = 0; k < 4; k += 2)
                        f(acc[i][j][k], acc[i][j][k + 1], wm0 + i * 16 + g + (k >> 1) * 8,
                          (wn0 & 63) + j * 8 + 2 * t);
        };
        if (up_warp)
            each_pair([&](float v0, float v1, int m, int c) {
                *reinterpret_cast<float2 *>(&U[m][c]) = make_float2(v0, v1);
            });
        __syncthreads();
        if (up_warp) return;
        each_pair([&](float v0, float v1, int m, int c) {
            const int n = n0 / 2 + c;
            if (m0 + m >= M || n >= N) return;
            const float2 u = *reinterpret_cast<const float2 *>(&U[m][c]);
            const float h0 = silu_f(v0) * u.x, h1 = silu_f(v1) * u.y;
            __half *dst = su.h + (size_t)(m0 + m) * su.ldh + n;
            if (n + 1 < N)
                *reinterpret_cast<__half2 *>(dst) = __floats2half2_rn(h0, h1);
            else
                dst[0] = __float2half(h0);
        });
        return;
    }
#pragma unroll
    for (int i = 0; i < MT; i++)
#pragma unroll
        for (int j = 0; j < NT; j++)
#pragma unroll
            for (int k = 0; k < 4; k++) {
                int m = m0 + wm0 + i * 16 + g + (k >> 1) * 8;
                int n = n0 + wn0 + j * 8 + 2 * t + (k & 1);
                if (m >= M || n >= N) continue;
                float *dst = C + (size_t)m * ldc + n;
                if (mode == CU_GEMM_ATOMIC)
                    atomicAdd(dst, acc[i][j][k]);
                else if (mode == CU_GEMM_ADD)
                    *dst += acc[i][j][k];
                else
                    *dst = acc[i][j][k];
            }
}

/* A's ring of D + 1 tiles, B's two */
static size_t gemm_smem_for(int bm, int depth) {
    const int d = bm == 128 ? 1 : depth;
    return ((size_t)(d + 1) * bm + 2 * G_BN) * G_LDS * sizeof(__half);
}

/* Depths 1-4 for the small-M tiles; BM 128 (prefill) keeps one step ahead
 * (its 64 accumulators a thread leave no room for a ring under 128
 * registers). */
template <int WT, int BM> static void *gemm_fn_d(int depth) {
    if constexpr (BM == 128) {
        return (void *)cu_gemm_kernel<WT, BM, 1>;
    } else {
        return depth >= 4   ? (void *)cu_gemm_kernel<WT, BM, 4>
               : depth == 3 ? (void *)cu_gemm_kernel<WT, BM, 3>
               : depth == 2 ? (void *)cu_gemm_kernel<WT, BM, 2>
                            : (void *)cu_gemm_kernel<WT, BM, 1>;
    }
}

template <int WT> static void *gemm_fn(int bm, int depth) {
    return bm == 32   ? gemm_fn_d<WT, 32>(depth)
           : bm == 64 ? gemm_fn_d<WT, 64>(depth)
                      : gemm_fn_d<WT, 128>(depth);
}

static void *gemm_kernel_for(int wt, int bm, int depth) {
    switch (wt) {
    case CW_Q4_0:
        return gemm_fn<CW_Q4_0>(bm, depth);
    case CW_Q8_0:
        return gemm_fn<CW_Q8_0>(bm, depth);
    case CW_Q4_K:
        return gemm_fn<CW_Q4_K>(bm, depth);
    case CW_Q5_K:
        return gemm_fn<CW_Q5_K>(bm, depth);
    case CW_Q6_K:
        return gemm_fn<CW_Q6_K>(bm, depth);
    case CW_F16:
        return gemm_fn<CW_F16>(bm, depth);
    case CW_BF16:
        return gemm_fn<CW_BF16>(bm, depth);
    default:
        return nullptr;
    }
}

cudaError_t cu_gemm_setup(void) {
    for (int wt = 0; wt < CW_COUNT; wt++)
        for (int bm = 32; bm <= 128; bm *= 2)
            for (int d = 1; d <= CU_GEMM_DEPTH_MAX; d++) {
                cudaError_t e = cudaFuncSetAttribute(gemm_kernel_for(wt, bm, d),
                                                     cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                     (int)gemm_smem_for(bm, d));
                if (e != cudaSuccess) return e;
            }
    return cudaSuccess;
}

static cudaError_t launch(const __half *A, int lda, int M, const cu_mat &W, int row0, int N,
                          int grid_n, float *C, int ldc, int mode, int split, int depth,
                          const gemm_silu &su, cudaStream_t s) {
    if (M <= 0 || N <= 0) return cudaSuccess;
    int bm = M <= 32 ? 32 : M <= 64 ? 64 : 128;
    depth = depth < 1 ? 1 : depth > CU_GEMM_DEPTH_MAX ? CU_GEMM_DEPTH_MAX : depth;
    int nsteps = (W.n_in / 32 + 1) / 2;
    if (split < 1) split = 1;
    if (split > nsteps) split = nsteps;
    int per = (nsteps + split - 1) / split;
    split = (nsteps + per - 1) / per;
    dim3 grid((M + bm - 1) / bm, grid_n, split);
    void *fn = gemm_kernel_for(W.wt, bm, depth);
    if (!fn) return cudaErrorInvalidValue;
    cu_mat Wc = W;
    gemm_silu suc = su;
    void *args[] = {(void *)&A,    (void *)&lda, (void *)&M,  (void *)&Wc,
                    (void *)&row0, (void *)&N,   (void *)&C,  (void *)&ldc,
                    (void *)&mode, (void *)&per, (void *)&suc};
    return cudaLaunchKernel(fn, grid, dim3(G_THREADS), args, gemm_smem_for(bm, depth), s);
}

cudaError_t cu_gemm_launch(const __half *A, int lda, int M, const cu_mat &W, int row0, int N,
                           float *C, int ldc, int mode, int split, int depth, cudaStream_t s) {
    gemm_silu none;
    memset(&none, 0, sizeof none);
    return launch(A, lda, M, W, row0, N, (N + G_BN - 1) / G_BN, C, ldc, mode, split, depth, none,
                  s);
}

cudaError_t cu_gemm_silu_launch(const __half *A, int lda, int M, const cu_mat &gate, int gate_row0,
                                const cu_mat &up, int up_row0, int N, __half *h, int ldh, int depth,
                                cudaStream_t s) {
    if (gate.wt != up.wt || gate.n_in != up.n_in) return cudaErrorInvalidValue;
    gemm_silu su = {up, up_row0, h, ldh};
    return launch(A, lda, M, gate, gate_row0, N, (N + G_BN / 2 - 1) / (G_BN / 2), nullptr, 0,
                  CU_GEMM_SILU, 1, depth, su, s);
}
