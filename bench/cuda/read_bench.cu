/*
 * read_bench: how fast can a block per SM read a matrix's rows with the
 * decode kernels' mapping, by the path the bytes take to the warp?
 *
 *   read_bench [repeats]          (a line a variant)
 *
 * Why: the backend's weight phases stream their items at ~2.9 TB/s (72% of
 * the copy ceiling) with two chunks a warp in flight in registers (~80 KB
 * an SM), and persist_bench's lean kernels at ~36 KB an SM do about as
 * well, so registers in flight do not seem to set the rate; tilting the
 * blocks' shares (cuda-notes "2026-11-29 (13)") showed a block's time
 * growing with its share, so something per SM does. This separates the
 * candidates on a plain read with a little arithmetic: loads into
 * registers D rows ahead (five load instructions), a per-warp ring of S
 * rows in shared memory filled by cp.async (16 bytes a lane, through L2
 * only), the same ring filled by one bulk copy (TMA) a row, completing on
 * an mbarrier; the register form and the cp.async ring with unused shared
 * memory beside them (less L1 for the SM), and with a 2-byte scale a
 * 16-byte piece from a stream of its own into registers (the backend's
 * Q4_0 layout).
 *
 * Mapping (every variant): a block per SM, 12 warps; a kernel's rows are
 * cut into one contiguous range a block, its warps take rows round robin;
 * a row is 1,536 bytes (a Q4_0 row of 3,072 inputs without its scales),
 * 48 bytes a lane (3 x 16), 24 dp4a a lane against fixed codes, a warp
 * reduction, lane 0 stores the row's sum (every variant of a kind, with
 * or without the scales, stores the same sums: checked).
 *
 * Shapes: (a) gate|up's rows (16,384: 25.2 MB) as 32 kernels one after
 * another in a graph, each on its own slice of an 805 MB buffer (so no
 * kernel finds its rows in the 50 MB L2): the time a kernel, ramp
 * included, as the decode step sees it; (c) the same with down's count of
 * rows (3,072: ~2 rows a warp, the decode phases' short pipelines); (b)
 * one kernel over all 524,288 rows: the steady rate. Results:
 * bench/results/2026-11-29-cuda-h200-2.md.
 */
#define BENCH_NAME "read_bench"
#include "bench_util.cuh"

#define WARPS      12
#define THREADS    (WARPS * 32)
#define ROW_BYTES  1536
#define ROW_U4     (ROW_BYTES / 16) /* 96: 3 a lane */
#define KROWS      16384            /* gate|up's rows */
#define KERNELS    32
#define SHORT_ROWS 3072 /* down's rows: ~23 a block */
#define NROWS      (KROWS * KERNELS)

/* MODE: a register form's load (LD_*, below), or a ring */
enum { CPASYNC = 16, BULK = 17 };

struct job {
    const uint4 *w;     /* [rows][ROW_U4] */
    const uint16_t *sc; /* [rows][ROW_U4] a 2-byte scale a 16-byte piece (the SC variants) */
    int rows;
    int *y; /* [rows] the rows' sums */
};

/* A lane's 48 bytes of a row against fixed codes, summed over the warp;
 * lane 0 stores it. */
__device__ __forceinline__ void consume(const uint4 (&v)[3], int row, int lane, int *y,
                                        const uint16_t (&d)[3]) {
    int acc = d[0] + d[1] + d[2];
#pragma unroll
    for (int i = 0; i < 3; i++) {
        const unsigned q[4] = {v[i].x, v[i].y, v[i].z, v[i].w};
#pragma unroll
        for (int j = 0; j < 4; j++) {
            acc = __dp4a((int)(q[j] & 0x0f0f0f0fu), 0x01020304 + lane, acc);
            acc = __dp4a((int)((q[j] >> 4) & 0x0f0f0f0fu), 0x05060708 - lane, acc);
        }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
    if (lane == 0) y[row] = acc;
}

/* SC: the row's scales of this lane, as the backend's Q4_0 items load
 * theirs (a stream of its own, ld.global.nc.L1::no_allocate.u16). */
template <bool SC>
__device__ __forceinline__ void scales(const job &j, int row, int lane, uint16_t (&d)[3]) {
#pragma unroll
    for (int i = 0; i < 3; i++) {
        d[i] = 0;
        if constexpr (SC)
            asm volatile("ld.global.nc.L1::no_allocate.u16 %0, [%1];"
                         : "=h"(d[i])
                         : "l"(j.sc + (size_t)row * ROW_U4 + lane + 32 * i));
    }
}

__device__ __forceinline__ void block_rows(int n, int &r0, int &r1) {
    r0 = (int)((long long)n * blockIdx.x / gridDim.x);
    r1 = (int)((long long)n * (blockIdx.x + 1) / gridDim.x);
}

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* The register form's load instruction (LD): ld.global.cs (__ldcs), the
 * backend's ld.global.nc.L1::no_allocate, ld.global.cg (L2 only), the
 * backend's with an evict-first L2 policy, and with a 256-byte L2
 * prefetch hint. */
enum { LD_CS, LD_NC_NA, LD_CG, LD_NC_NA_EF, LD_NC_NA_256 };

template <int LD> __device__ __forceinline__ uint4 load16(const uint4 *p) {
    uint4 v;
    if constexpr (LD == LD_CS)
        v = __ldcs(p);
    else if constexpr (LD == LD_CG)
        v = __ldcg(p);
    else if constexpr (LD == LD_NC_NA)
        asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "l"(p));
    else if constexpr (LD == LD_NC_NA_256)
        asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "l"(p));
    else {
        uint64_t pol;
        asm("createpolicy.fractional.L2::evict_first.b64 %0, 1.0;" : "=l"(pol));
        asm volatile("ld.global.nc.L1::no_allocate.L2::cache_hint.v4.u32 {%0,%1,%2,%3}, [%4], %5;"
                     : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                     : "l"(p), "l"(pol));
    }
    return v;
}

/* Registers: the warp's next D rows in flight while it sums one. */
template <int D, int LD, bool SC>
__device__ void rows_reg(const job &j, int r0, int r1, int warp, int lane) {
    uint4 ring[D + 1][3];
    uint16_t d[D + 1][3];
#pragma unroll
    for (int s = 0; s < D; s++) {
        const int row = r0 + warp + s * WARPS;
        if (row < r1) {
#pragma unroll
            for (int i = 0; i < 3; i++)
                ring[s][i] = load16<LD>(j.w + (size_t)row * ROW_U4 + lane + 32 * i);
            scales<SC>(j, row, lane, d[s]);
        }
    }
    for (int row = r0 + warp; row < r1; row += WARPS) {
        const int ahead = row + D * WARPS;
        if (ahead < r1) {
#pragma unroll
            for (int i = 0; i < 3; i++)
                ring[D][i] = load16<LD>(j.w + (size_t)ahead * ROW_U4 + lane + 32 * i);
            scales<SC>(j, ahead, lane, d[D]);
        }
        consume(ring[0], row, lane, j.y, d[0]);
#pragma unroll
        for (int s = 0; s < D; s++)
#pragma unroll
            for (int i = 0; i < 3; i++) ring[s][i] = ring[s + 1][i], d[s][i] = d[s + 1][i];
    }
}

/* cp.async: a ring of S rows a warp; each lane copies and later reads the
 * same 48 bytes, so no lane waits for another's. One commit group a row
 * (empty past the range), so wait_group S - 1 means row k has landed. */
template <int S, bool SC>
__device__ void rows_cpasync(const job &j, int r0, int r1, int warp, int lane, uint4 *ring) {
    uint16_t d[S][3]; /* row k's scales in d[0] when it is consumed (SC) */
    /* the warp's k-th row into stage k % S */
    auto issue = [&](int k) {
        const int row = r0 + warp + k * WARPS;
        if (row < r1) {
            uint4 *dst = ring + (k % S) * ROW_U4 + lane;
            const uint4 *src = j.w + (size_t)row * ROW_U4 + lane;
#pragma unroll
            for (int i = 0; i < 3; i++)
                asm volatile(
                    "cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(smem_addr(dst + 32 * i)),
                    "l"(src + 32 * i)
                    : "memory");
        }
        asm volatile("cp.async.commit_group;" ::: "memory");
    };
#pragma unroll
    for (int k = 0; k < S - 1; k++) {
        issue(k);
        const int row = r0 + warp + k * WARPS;
        if (row < r1) scales<SC>(j, row, lane, d[k]);
    }
    int k = 0;
    for (int row = r0 + warp; row < r1; row += WARPS, k++) {
        issue(k + S - 1);
        if (row + (S - 1) * WARPS < r1) scales<SC>(j, row + (S - 1) * WARPS, lane, d[S - 1]);
        asm volatile("cp.async.wait_group %0;" ::"n"(S - 1) : "memory");
        uint4 v[3];
        const uint4 *src = ring + (k % S) * ROW_U4 + lane;
#pragma unroll
        for (int i = 0; i < 3; i++) v[i] = src[32 * i];
        consume(v, row, lane, j.y, d[0]);
#pragma unroll
        for (int s = 0; s + 1 < S; s++)
#pragma unroll
            for (int i = 0; i < 3; i++) d[s][i] = d[s + 1][i];
    }
    asm volatile("cp.async.wait_all;" ::: "memory");
}

/* Bulk copies: lane 0 copies a whole row into stage k % S with one TMA
 * copy that completes on the stage's mbarrier; every lane waits on it. */
template <int S>
__device__ void rows_bulk(const job &j, int r0, int r1, int warp, int lane, uint4 *ring,
                          uint64_t *bar) {
    if (lane == 0)
        for (int s = 0; s < S; s++)
            asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(smem_addr(bar + s))
                         : "memory");
    __syncwarp();
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
    auto issue = [&](int k) {
        const int row = r0 + warp + k * WARPS;
        if (lane != 0 || row >= r1) return;
        uint64_t *b = bar + k % S;
        asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(b)),
                     "r"(ROW_BYTES)
                     : "memory");
        asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes"
                     " [%0], [%1], %2, [%3];" ::"r"(smem_addr(ring + (k % S) * ROW_U4)),
                     "l"(j.w + (size_t)row * ROW_U4), "r"(ROW_BYTES), "r"(smem_addr(b))
                     : "memory");
    };
#pragma unroll
    for (int k = 0; k < S; k++) issue(k);
    int k = 0;
    for (int row = r0 + warp; row < r1; row += WARPS, k++) {
        const unsigned parity = (unsigned)(k / S) & 1u;
        uint32_t done = 0;
        while (!done)
            asm volatile("{\n .reg .pred p;\n"
                         " mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                         " selp.u32 %0, 1, 0, p;\n}"
                         : "=r"(done)
                         : "r"(smem_addr(bar + k % S)), "r"(parity)
                         : "memory");
        uint4 v[3];
        const uint4 *src = ring + (k % S) * ROW_U4 + lane;
#pragma unroll
        for (int i = 0; i < 3; i++) v[i] = src[32 * i];
        __syncwarp(); /* every lane's reads of the stage before it is refilled */
        if (lane == 0) asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
        issue(k + S);
        const uint16_t d[3] = {0, 0, 0};
        consume(v, row, lane, j.y, d);
    }
}

template <int MODE, int D, bool SC>
__global__ void __launch_bounds__(THREADS, 1) read_kernel(const job j) {
    extern __shared__ __align__(128) uint8_t smem[];
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int r0, r1;
    block_rows(j.rows, r0, r1);
    uint4 *ring = (uint4 *)smem + (size_t)warp * D * ROW_U4;
    if constexpr (MODE < CPASYNC)
        rows_reg<D, MODE, SC>(j, r0, r1, warp, lane);
    else if constexpr (MODE == CPASYNC)
        rows_cpasync<D, SC>(j, r0, r1, warp, lane, ring);
    else
        rows_bulk<D>(j, r0, r1, warp, lane, ring,
                     (uint64_t *)(smem + (size_t)WARPS * D * ROW_BYTES) + warp * D);
}

struct variant {
    const char *name;
    void (*fn)(const job);
    size_t smem;
    bool sc; /* reads the scales too (its sums differ from the others') */
};

/* pad: dynamic shared memory requested beyond the ring and unused, which
 * leaves the SM less L1 data cache beside it (a function's variants are
 * made in increasing pads: the attribute keeps the largest) */
template <int MODE, int D, bool SC = false> static variant make(const char *name, size_t pad = 0) {
    size_t smem =
        (MODE < CPASYNC ? 0 : (size_t)WARPS * D * ROW_BYTES + (MODE == BULK ? WARPS * D * 8 : 0)) +
        pad;
    if (smem > 48 * 1024)
        CHECK(cudaFuncSetAttribute(read_kernel<MODE, D, SC>,
                                   cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    return {name, read_kernel<MODE, D, SC>, smem, SC};
}

int main(int argc, char **argv) {
    const int reps = argc > 1 ? atoi(argv[1]) : 15;
    if (reps < 3 || reps > 1000) {
        fprintf(stderr, "read_bench: repeats must be 3..1000\n");
        return 2;
    }
    int sms;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    cudaDeviceProp prop;
    CHECK(cudaGetDeviceProperties(&prop, 0));
    const size_t bytes = (size_t)NROWS * ROW_BYTES;
    printf("read_bench: %s, %d SMs; rows of %d bytes, %d warps a block, a block an SM\n", prop.name,
           sms, ROW_BYTES, WARPS);
    uint4 *w;
    int *y, *ref = (int *)malloc(sizeof(int) * NROWS), *got = (int *)malloc(sizeof(int) * NROWS),
            *ref_sc = (int *)malloc(sizeof(int) * NROWS);
    uint16_t *sc;
    CHECK(cudaMalloc(&w, bytes));
    CHECK(cudaMalloc(&sc, bytes / 8));
    CHECK(cudaMalloc(&y, sizeof(int) * NROWS));
    fill_kernel<<<1024, 256>>>((uint32_t *)w, bytes / 4);
    fill_kernel<<<1024, 256>>>((uint32_t *)sc, bytes / 32);
    CHECK(cudaDeviceSynchronize());
    const variant vs[] = {
        make<LD_CS, 2>("ld.cs, 2 rows ahead"),
        make<LD_CS, 4>("ld.cs, 4 rows ahead"),
        make<LD_NC_NA, 1>("ld.nc.na, 1 row ahead"),
        make<LD_NC_NA, 2>("ld.nc.na, 2 rows ahead"),
        make<LD_NC_NA, 4>("ld.nc.na, 4 rows ahead"),
        make<LD_CG, 2>("ld.cg, 2 rows ahead"),
        make<LD_NC_NA_EF, 2>("ld.nc.na evict-first, 2"),
        make<LD_NC_NA_256, 2>("ld.nc.na L2::256B, 2"),
        make<LD_NC_NA_256, 4>("ld.nc.na L2::256B, 4"),
        make<CPASYNC, 2>("cp.async ring, 2 rows"),
        make<CPASYNC, 3>("cp.async ring, 3 rows"),
        make<CPASYNC, 4>("cp.async ring, 4 rows"),
        make<CPASYNC, 6>("cp.async ring, 6 rows"),
        make<BULK, 2>("bulk ring, 2 rows"),
        make<BULK, 3>("bulk ring, 3 rows"),
        make<BULK, 4>("bulk ring, 4 rows"),
        make<LD_NC_NA, 2>("ld.nc.na 2, +100 KB smem", 100 << 10),
        make<LD_NC_NA, 2>("ld.nc.na 2, +200 KB smem", 200 << 10),
        make<CPASYNC, 3>("cp.async 3, +100 KB smem", 100 << 10),
        make<CPASYNC, 3>("cp.async 3, +160 KB smem", 160 << 10),
        make<BULK, 3>("bulk 3, +160 KB smem", 160 << 10),
        make<LD_NC_NA, 2, true>("ld.nc.na 2, scales"),
        make<CPASYNC, 3, true>("cp.async 3, scales"),
    };
    const int nv = (int)(sizeof vs / sizeof vs[0]);
    cudaStream_t st;
    CHECK(cudaStreamCreate(&st));
    cudaEvent_t e0, e1;
    CHECK(cudaEventCreate(&e0));
    CHECK(cudaEventCreate(&e1));
    double *t = (double *)malloc(sizeof(double) * reps);
    printf("%-28s %11s %6s %11s %6s %12s %6s  %s\n", "variant", "(a) a kernel", "GB/s",
           "(c) a kernel", "GB/s", "(b) one", "GB/s", "sums");
    for (int v = 0; v < nv; v++) {
        /* (a) 32 kernels of gate|up's rows (and (c) of down's count of
         * rows: a short pipeline, ~2 rows a warp), each its own slice of
         * the buffer, in a graph */
        double per[2];
        for (int sh = 0; sh < 2; sh++) {
            const int kr = sh == 0 ? KROWS : SHORT_ROWS;
            cudaGraph_t g;
            cudaGraphExec_t ge;
            CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeGlobal));
            for (int k = 0; k < KERNELS; k++) {
                job j = {w + (size_t)k * KROWS * ROW_U4, sc + (size_t)k * KROWS * ROW_U4, kr,
                         y + (size_t)k * KROWS};
                vs[v].fn<<<sms, THREADS, vs[v].smem, st>>>(j);
            }
            CHECK(cudaStreamEndCapture(st, &g));
            CHECK(cudaGraphInstantiate(&ge, g, 0));
            for (int r = 0; r < reps; r++) {
                CHECK(cudaEventRecord(e0, st));
                CHECK(cudaGraphLaunch(ge, st));
                CHECK(cudaEventRecord(e1, st));
                CHECK(cudaEventSynchronize(e1));
                float ms;
                CHECK(cudaEventElapsedTime(&ms, e0, e1));
                t[r] = ms * 1e3 / KERNELS;
            }
            per[sh] = median(t, reps);
            CHECK(cudaGraphExecDestroy(ge));
            CHECK(cudaGraphDestroy(g));
        }
        /* (b) one kernel over every row */
        job all = {w, sc, NROWS, y};
        for (int r = 0; r < reps; r++) {
            CHECK(cudaEventRecord(e0, st));
            vs[v].fn<<<sms, THREADS, vs[v].smem, st>>>(all);
            CHECK(cudaEventRecord(e1, st));
            CHECK(cudaEventSynchronize(e1));
            float ms;
            CHECK(cudaEventElapsedTime(&ms, e0, e1));
            t[r] = ms * 1e3;
        }
        CHECK(cudaGetLastError());
        const double one = median(t, reps);
        CHECK(cudaMemcpy(got, y, sizeof(int) * NROWS, cudaMemcpyDeviceToHost));
        /* the first variant of each kind (with or without scales) is the
         * reference of the later ones */
        int bad = 0, first = v == 0 || (vs[v].sc && !vs[v - 1].sc);
        int *r = vs[v].sc ? ref_sc : ref;
        for (int i = 0; i < NROWS; i++) {
            if (first) r[i] = got[i];
            bad += got[i] != r[i];
        }
        const double bps = vs[v].sc ? 1.125 : 1.0; /* the scales' bytes too */
        printf("%-28s %8.2f us %6.0f %8.2f us %6.0f %9.1f us %6.0f  %s\n", vs[v].name, per[0],
               bps * KROWS * ROW_BYTES / per[0] / 1e3, per[1],
               bps * SHORT_ROWS * ROW_BYTES / per[1] / 1e3, one, bps * bytes / one / 1e3,
               first ? "reference"
               : bad ? "DIFFER"
                     : "equal");
        if (bad) return 1;
    }
    return 0;
}
