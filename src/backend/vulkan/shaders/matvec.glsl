/*
 * The quantized matrix-vector core that matmul, qkv, ffn and lm_head share:
 * acc[r][b] = sum_k W[row(r)][k] * a[act_row(b)][k] for R weight rows and NB
 * activation rows per workgroup.
 *
 * Thread mapping: the WG threads of a workgroup split the row into 32-input
 * units round robin (thread t takes units t, t + WG, ...); for each unit a
 * thread loads the activations once (and, for quantized weights, rounds them
 * to int8 codes once), then takes the unit's dot product with all R weight
 * rows, so every activation load serves R rows and each thread keeps R
 * independent 16-byte weight loads in flight. One workgroup reduction at the
 * end (subgroupAdd, or a shared-memory tree in the portable build).
 *
 * Bytes moved: every weight byte once per group of NB activation rows (decode:
 * once); activations from L1/L2.
 *
 * Arithmetic, as the CPU reference (backend/cpu/matmul.c) defines it:
 *   - quantized weights: each 32-input unit of the activation row becomes
 *     int8 codes with one f32 scale dx = amax / 127; the unit's integer dot
 *     product with the weight codes is exact, then scaled in f32;
 *   - F32 / F16 / BF16 weights: f32 activations as they are.
 * With NORM (qkv, ffn, lm_head) the activations are the residual stream x
 * times gamma, and the RMS scale 1 / sqrt(mean(x^2) + eps) multiplies the
 * finished sums: RMSNorm fused into the matmul in one pass over x. The
 * int8 codes of x * gamma and of its normalized value are the same up to
 * float rounding, because the scale is one number per row. (Bit-exact
 * agreement with the CPU is out of reach anyway: sums run in another
 * order.)
 *
 * Staged path (STAGE: quantized weights; the host sets it where the
 * workgroup's shared memory holds the NB staged rows, KU * 36 bytes each,
 * 68 in the portable build): the per-thread activation loads above are
 * 8 x 16 bytes at a 128-byte stride, 32 cache lines per warp instruction,
 * and (with NORM) gamma's again, once per R rows and per activation row;
 * on the H100 that traffic, not DRAM, set the qkv and ffn dispatches' time.
 * So the workgroup reads each activation row once, coalesced, quantizes it
 * into shared memory (mv_stage: one barrier in the fast build), and teams
 * of TEAM lanes (a subgroup each in the fast build) take R / teams rows
 * each, the lanes striding over the units: the number of rows that share
 * one staged row no longer sets the registers a thread needs. With one
 * activation row, a lane issues the loads of its first PF units before
 * the staging (mv_prefetch, kept there by mv_pin), so that DRAM streams
 * while the row is staged.
 *
 * Row groups: a workgroup computes row groups first, first + stride, ...
 * (mv_run; first = its index, stride = the grid's size), so the host may
 * launch fewer workgroups than groups and each stages its rows once for
 * all of its groups.
 *
 * The including shader defines, before including this file:
 *   uint mv_row(uint r);      weight row of local row r of group mv_group
 *                             (< N)
 *   uint mv_act_row(uint b);  activation row of local column b
 *   uint mv_groups();         row groups of the matrix
 *   void mv_epilogue();       stores group mv_group's results:
 *                             mv_result(r * NB + b) (times
 *                             mv_rms_scale(b) with NORM)
 * and calls mv_run(its timeline slot), after including timeline.glsl.
 */
#include "weights.glsl"

layout(constant_id = 3) const uint N = 1u;      /* weight rows */
layout(constant_id = 4) const uint R = 1u;      /* weight rows per workgroup */
layout(constant_id = 5) const uint NB = 1u;     /* activation rows per workgroup */
layout(constant_id = 6) const uint MAX_SG = 1u; /* subgroups per workgroup, at most */
layout(constant_id = 7) const bool NORM = false;
layout(constant_id = 8) const float EPS = 1e-5; /* RMSNorm epsilon (NORM) */
layout(constant_id = 9) const uint DIM = 32u;   /* unpadded row length (NORM) */

layout(constant_id = 22) const bool STAGE = false; /* the staged path */
layout(constant_id = 23) const uint TEAM = 32u;     /* lanes per row team (STAGE) */
layout(constant_id = 21) const uint PF = 0u;        /* units a lane loads before the staging (STAGE) */

layout(binding = 2) readonly buffer Act { vec4 act[]; };        /* [rows][KU * 8] */
layout(binding = 3) readonly buffer Gamma { vec4 gamma[]; };    /* [KU * 8] (NORM) */

float mv_acc[R * NB]; /* [r][b] */
float mv_ss[NB];      /* sum of x^2 per activation row (NORM) */

uint mv_group;  /* the row group being computed */
uint mv_stride; /* row groups between a workgroup's consecutive ones */

uint mv_row(uint r);
uint mv_act_row(uint b);
uint mv_groups();
void mv_epilogue();

/* ---- the row loop ---------------------------------------------------------- */

/* Activations of unit u of row ar; with NORM, times gamma, and their
 * squares added to ss. */
void mv_load_x(uint ar, uint u, out vec4 x[8], inout float ss) {
    uint base = (ar * KU + u) * 8u;
    [[unroll]] for (uint i = 0u; i < 8u; i++) x[i] = act[base + i];
    if (NORM) {
        [[unroll]] for (uint i = 0u; i < 8u; i++) {
            ss += dot(x[i], x[i]);
            x[i] *= gamma[u * 8u + i];
        }
    }
}

#if ZT_FAST
shared float mv_red[(R * NB + NB) * MAX_SG]; /* [value][subgroup] */

/* Sums mv_acc (and mv_ss) over the workgroup; every thread gets the totals. */
void mv_reduce() {
    [[unroll]] for (uint i = 0u; i < R * NB; i++) mv_acc[i] = subgroupAdd(mv_acc[i]);
    if (NORM) [[unroll]] for (uint b = 0u; b < NB; b++) mv_ss[b] = subgroupAdd(mv_ss[b]);
    if (gl_NumSubgroups == 1u) return;
    if (subgroupElect()) {
        [[unroll]] for (uint i = 0u; i < R * NB; i++) mv_red[i * MAX_SG + gl_SubgroupID] = mv_acc[i];
        if (NORM)
            [[unroll]] for (uint b = 0u; b < NB; b++)
                mv_red[(R * NB + b) * MAX_SG + gl_SubgroupID] = mv_ss[b];
    }
    barrier();
    [[unroll]] for (uint i = 0u; i < R * NB + (NORM ? NB : 0u); i++) {
        float s = 0.0;
        for (uint g = 0u; g < gl_NumSubgroups; g++) s += mv_red[i * MAX_SG + g];
        if (i < R * NB) mv_acc[i] = s;
        else mv_ss[i - R * NB] = s;
    }
    barrier(); /* the workgroup's next row group writes mv_red again */
}
#else
shared float mv_red[gl_WorkGroupSize.x];

/* Tree sum of v over the workgroup; every thread gets the total. */
float mv_sum(float v) {
    uint t = gl_LocalInvocationID.x, n = gl_WorkGroupSize.x;
    mv_red[t] = v;
    barrier();
    for (uint s = tree_start(n); s > 0u; s >>= 1) {
        if (t < s && t + s < n) mv_red[t] += mv_red[t + s];
        barrier();
    }
    float total = mv_red[0];
    barrier();
    return total;
}

void mv_reduce() {
    [[unroll]] for (uint i = 0u; i < R * NB; i++) mv_acc[i] = mv_sum(mv_acc[i]);
    if (NORM) [[unroll]] for (uint b = 0u; b < NB; b++) mv_ss[b] = mv_sum(mv_ss[b]);
}
#endif

/* The staged fast path with several activation rows leaves the group's
 * R x NB sums in mv_red, which the epilogue reads there: copied into every
 * thread's mv_acc they would take R x NB registers a thread (or spill). */
const bool MV_RED_OUT = ZT_FAST != 0 && STAGE && NB > 1u;

/* Sum i (= r * NB + b) of the group just computed. */
float mv_result(uint i) {
#if ZT_FAST
    if (MV_RED_OUT) return mv_red[i];
#endif
    return mv_acc[i];
}

/* The RMS scale of activation row b after mv_compute (NORM). */
float mv_rms_scale(uint b) { return 1.0 / sqrt(mv_ss[b] / float(DIM) + EPS); }

/* ---- the staged path (STAGE) --------------------------------------------- */

const uint MV_SK = STAGE ? KU * NB : 1u;
shared uvec4 mv_xlo[MV_SK], mv_xhi[MV_SK]; /* [b][u]: codes of inputs 0-15, 16-31 */
shared float mv_xd[MV_SK];                 /* [b][u]: the unit's scale dx */
#if !ZT_FAST
shared float mv_pmax[STAGE ? KU * 8u : 1u]; /* amax of each 4 inputs of one row */
#endif

const uint MV_TEAMS = gl_WorkGroupSize.x / TEAM;
const uint MV_RT = STAGE ? R / MV_TEAMS : 1u; /* rows per team */
const uint MV_UPL = (KU + TEAM - 1u) / TEAM;  /* units per lane */
const uint MV_PF = STAGE ? (PF < MV_UPL ? PF : MV_UPL) : 0u;
const uint MV_PFN = MV_PF > 0u ? MV_PF * MV_RT : 1u; /* fragments loaded first */

/* Keeps the weight loads a lane issued before the staging (folded into
 * pin) ahead of its barrier: a shared store that depends on them, under a
 * condition no such dispatch meets (the host loads ahead only for one
 * activation row, so the grid is one row deep) but the compiler cannot
 * rule out. Without it NVIDIA's compiler sinks the loads past the barrier,
 * and DRAM idles while the row is staged. */
void mv_pin(uint pin) {
    if (MV_PF > 0u && gl_NumWorkGroups.z != 1u) mv_xd[0] = uintBitsToFloat(pin);
}

/* The NB activation rows (times gamma with NORM) as int8 codes in shared
 * memory, and their sums of squares in mv_ss (NORM). Thread t takes vec4
 * t, t + WG, ... of each row: unit u is vec4s 8u .. 8u + 7, held by 8
 * consecutive threads. pin: the words of the weights loaded before it
 * (mv_prefetch, mv_pin).
 *
 * Fast build: every vec4's loads are issued at once (a fixed count per
 * thread), the unit's amax meets over its 8 lanes by shuffles and the sum
 * of squares' subgroup parts go to shared memory beside the codes, so the
 * staging is one round trip and one barrier. Portable build: the amax goes
 * through shared memory (two barriers), the sum through mv_sum. */
#if ZT_FAST
const uint MV_SV = STAGE ? (KU * 8u + gl_WorkGroupSize.x - 1u) / gl_WorkGroupSize.x : 1u;

shared float mv_ssp[MAX_SG * NB]; /* [b][subgroup]: sums of squares */

/* Row b: its codes, and its subgroups' sums of squares in mv_ssp. */
void mv_stage_row(uint b) {
    uint t = gl_LocalInvocationID.x, n = KU * 8u;
    uint base = mv_act_row(b) * KU * 8u, xb = b * KU;
    vec4 x[MV_SV];
    /* past the row's end a thread loads its last vec4 again and drops it;
     * n and WG are multiples of 8, so a unit's lanes agree */
    [[unroll]] for (uint j = 0u; j < MV_SV; j++)
        x[j] = act[base + min(t + j * gl_WorkGroupSize.x, n - 1u)];
    float ss = 0.0;
    [[unroll]] for (uint j = 0u; j < MV_SV; j++) {
        uint v = t + j * gl_WorkGroupSize.x;
        if (NORM) {
            if (v < n) ss += dot(x[j], x[j]);
            x[j] *= gamma[min(v, n - 1u)];
        }
        vec4 a = abs(x[j]);
        float amax = max(max(a.x, a.y), max(a.z, a.w));
        amax = max(amax, subgroupShuffleXor(amax, 1u));
        amax = max(amax, subgroupShuffleXor(amax, 2u));
        amax = max(amax, subgroupShuffleXor(amax, 4u));
        float dx = amax / 127.0, id = dx != 0.0 ? 1.0 / dx : 0.0;
        int unused = 0;
        uint c = pack_codes(x[j] * id, unused), u = v >> 3, i = v & 7u;
        if (v < n) {
            if (i < 4u) mv_xlo[xb + u][i] = c;
            else mv_xhi[xb + u][i - 4u] = c;
            if (i == 0u) mv_xd[xb + u] = dx;
        }
    }
    if (NORM) {
        ss = subgroupAdd(ss);
        if (subgroupElect()) mv_ssp[b * MAX_SG + gl_SubgroupID] = ss;
    }
}

/* Row b's sum of squares, after the staging's barrier. */
float mv_ss_of(uint b) {
    float ss = 0.0;
    for (uint g = 0u; g < gl_NumSubgroups; g++) ss += mv_ssp[b * MAX_SG + g];
    return ss;
}

/* One row (decode) without a loop around it: the loop, though of one trip
 * once specialized, cost the H100's Q4_K_M decode 2-4% (482-490 tok/s
 * against 500-504 in interleaved rounds; unrolled, 495-503 against
 * 498-501), and unrolled for every NB it looked to cost the batches
 * instead (8 sequences 800 tok/s against 872-882 in another call;
 * bench/results/2026-11-27-vulkan-h100-5.md). */
void mv_stage(uint pin) {
    if (NB == 1u) mv_stage_row(0u);
    else for (uint b = 0u; b < NB; b++) mv_stage_row(b);
    mv_pin(pin);
    barrier();
    if (NORM) {
        if (NB == 1u) mv_ss[0] = mv_ss_of(0u);
        else for (uint b = 0u; b < NB; b++) mv_ss[b] = mv_ss_of(b);
    }
}
#else
void mv_stage(uint pin) {
    uint t = gl_LocalInvocationID.x, n = KU * 8u;
    for (uint b = 0u; b < NB; b++) {
        uint base = mv_act_row(b) * KU * 8u, xb = b * KU;
        float ss = 0.0;
        for (uint v = t; v < n; v += gl_WorkGroupSize.x) {
            vec4 x = act[base + v];
            if (NORM) {
                ss += dot(x, x);
                x *= gamma[v];
            }
            vec4 a = abs(x);
            mv_pmax[v] = max(max(a.x, a.y), max(a.z, a.w));
        }
        barrier();
        for (uint v = t; v < n; v += gl_WorkGroupSize.x) {
            vec4 x = act[base + v];
            if (NORM) x *= gamma[v];
            uint u = v >> 3, i = v & 7u;
            float amax = 0.0;
            [[unroll]] for (uint k = 0u; k < 8u; k++) amax = max(amax, mv_pmax[8u * u + k]);
            float dx = amax / 127.0, id = dx != 0.0 ? 1.0 / dx : 0.0;
            int unused = 0;
            uint c = pack_codes(x * id, unused);
            if (i < 4u) mv_xlo[xb + u][i] = c;
            else mv_xhi[xb + u][i - 4u] = c;
            if (i == 0u) mv_xd[xb + u] = dx;
        }
        mv_pin(pin);
        barrier(); /* the codes written, mv_pmax free for the next row */
        if (NORM) mv_ss[b] = mv_sum(ss);
    }
}
#endif

/* The staged path's team: a subgroup of TEAM lanes in the fast build,
 * TEAM consecutive threads in the portable one. */
uint mv_team() {
#if ZT_FAST
    return gl_SubgroupID;
#else
    return gl_LocalInvocationID.x / TEAM;
#endif
}
uint mv_lane() {
#if ZT_FAST
    return gl_SubgroupInvocationID;
#else
    return gl_LocalInvocationID.x % TEAM;
#endif
}

/* The lane's first MV_PF units of each of its rows in the current group,
 * their words folded into the returned pin (mv_pin). */
uint mv_prefetch(out wfrag pf[MV_PFN]) {
    uint team = mv_team(), lane = mv_lane(), pin = 0u;
    [[unroll]] for (uint k = 0u; k < MV_PF; k++)
        [[unroll]] for (uint j = 0u; j < MV_RT; j++) {
            wfrag f = unit_fetch(mv_row(team * MV_RT + j), min(lane + k * TEAM, KU - 1u));
            pf[k * MV_RT + j] = f;
            pin ^= f.a.x ^ f.a.y ^ f.a.z ^ f.a.w ^ f.b.x ^ f.b.y ^ f.b.z ^ f.b.w ^ f.c.x ^ f.c.y;
        }
    return pin;
}

/* Team k takes local rows k RT .. k RT + RT - 1, its lanes striding over
 * the units; all of a lane's loads are independent of one another and of
 * the shared codes, so they are in flight together. With `first`, the
 * lane's first MV_PF units were loaded into pf before the row was staged
 * (mv_run). */
void mv_compute_staged(bool first, wfrag pf[MV_PFN]) {
    uint team = mv_team(), lane = mv_lane();
    uint rows[MV_RT];
    float acc[MV_RT * NB]; /* [j][b] */
    [[unroll]] for (uint j = 0u; j < MV_RT; j++) rows[j] = mv_row(team * MV_RT + j);
    [[unroll]] for (uint i = 0u; i < MV_RT * NB; i++) acc[i] = 0.0;
    [[unroll]] for (uint k = 0u; k < MV_UPL; k++) {
        /* a lane past the row's end computes on unit KU - 1 and drops it,
         * so that no load sits behind a branch */
        uint u = lane + k * TEAM, uc = min(u, KU - 1u);
        wfrag f[MV_RT];
        [[unroll]] for (uint j = 0u; j < MV_RT; j++)
            f[j] = first && k < MV_PF ? pf[k * MV_RT + j] : unit_fetch(rows[j], uc);
        [[unroll]] for (uint b = 0u; b < NB; b++) {
            uvec4 lo = mv_xlo[b * KU + uc], hi = mv_xhi[b * KU + uc];
            uint xq[8] = uint[8](lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w);
            int s0 = 0, s1 = 0;
            [[unroll]] for (uint i = 0u; i < 4u; i++) {
                s0 += sdot4(xq[i], 0x01010101u);
                s1 += sdot4(xq[4u + i], 0x01010101u);
            }
            float dx = u < KU ? mv_xd[b * KU + uc] : 0.0;
            [[unroll]] for (uint j = 0u; j < MV_RT; j++)
                acc[j * NB + b] += frag_dot_q(f[j], rows[j], uc, xq, dx, s0, s1);
        }
    }
    /* mv_acc[r][b] of local row r = team * RT + j */
#if ZT_FAST
    /* a team is a subgroup: its sums, then every thread reads all R x NB */
    [[unroll]] for (uint i = 0u; i < MV_RT * NB; i++) acc[i] = subgroupAdd(acc[i]);
    if (lane == 0u) [[unroll]] for (uint i = 0u; i < MV_RT * NB; i++) mv_red[team * MV_RT * NB + i] = acc[i];
    barrier();
    if (!MV_RED_OUT) { /* else mv_result reads mv_red, until mv_run's barrier */
        [[unroll]] for (uint i = 0u; i < R * NB; i++) mv_acc[i] = mv_red[i];
        barrier();
    }
#else
    [[unroll]] for (uint i = 0u; i < R * NB; i++)
        mv_acc[i] = mv_sum(i / (MV_RT * NB) == team ? acc[i % (MV_RT * NB)] : 0.0);
#endif
}

void mv_compute() {
    [[unroll]] for (uint i = 0u; i < R * NB; i++) mv_acc[i] = 0.0;
    [[unroll]] for (uint b = 0u; b < NB; b++) mv_ss[b] = 0.0;
    uint rows[R];
    [[unroll]] for (uint r = 0u; r < R; r++) rows[r] = mv_row(r);

    for (uint u = gl_LocalInvocationID.x; u < KU; u += gl_WorkGroupSize.x) {
        [[unroll]] for (uint b = 0u; b < NB; b++) {
            vec4 x[8];
            mv_load_x(mv_act_row(b), u, x, mv_ss[b]);
            if (QUANT) {
                float amax = 0.0;
                [[unroll]] for (uint i = 0u; i < 8u; i++) {
                    vec4 a = abs(x[i]);
                    amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
                }
                float dx = amax / 127.0, id = dx != 0.0 ? 1.0 / dx : 0.0;
                uint xq[8];
                int s0 = 0, s1 = 0;
                [[unroll]] for (uint i = 0u; i < 4u; i++) xq[i] = pack_codes(x[i] * id, s0);
                [[unroll]] for (uint i = 4u; i < 8u; i++) xq[i] = pack_codes(x[i] * id, s1);
                [[unroll]] for (uint r = 0u; r < R; r++)
                    mv_acc[r * NB + b] += unit_dot_q(rows[r], u, xq, dx, s0, s1);
            } else {
                [[unroll]] for (uint r = 0u; r < R; r++)
                    mv_acc[r * NB + b] += unit_dot_f(rows[r], u, x);
            }
        }
    }
    mv_reduce();
}

/* Every row group of this workgroup: its dot products, then the shader's
 * epilogue. The staged path loads its first group's first units, stages
 * the row once for all of its groups (timeline mark 3), then runs them. */
void mv_run(uint tl_slot) {
    mv_group = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    mv_stride = gl_NumWorkGroups.x * gl_NumWorkGroups.y;
    if (!STAGE) {
        for (; mv_group < mv_groups(); mv_group += mv_stride) {
            mv_compute();
            mv_epilogue();
        }
        return;
    }
    if (mv_group >= mv_groups()) return; /* a folded grid's excess (fold_groups) */
    wfrag pf[MV_PFN];
    uint pin = mv_prefetch(pf);
    mv_stage(pin);
    tl_mark(tl_slot, 3u);
    mv_compute_staged(true, pf);
    mv_epilogue();
    if (MV_RED_OUT) barrier(); /* the epilogue read mv_red */
    for (mv_group += mv_stride; mv_group < mv_groups(); mv_group += mv_stride) {
        mv_compute_staged(false, pf);
        mv_epilogue();
        if (MV_RED_OUT) barrier();
    }
}
