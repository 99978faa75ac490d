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
 * The including shader defines, before including this file:
 *   uint mv_row(uint r);      weight row of local row r (< N)
 *   uint mv_act_row(uint b);  activation row of local column b
 * and reads mv_acc (times mv_rms_scale(b) with NORM) after mv_compute().
 */
#include "weights.glsl"

layout(constant_id = 3) const uint N = 1u;      /* weight rows */
layout(constant_id = 4) const uint R = 1u;      /* weight rows per workgroup */
layout(constant_id = 5) const uint NB = 1u;     /* activation rows per workgroup */
layout(constant_id = 6) const uint MAX_SG = 1u; /* subgroups per workgroup, at most */
layout(constant_id = 7) const bool NORM = false;
layout(constant_id = 8) const float EPS = 1e-5; /* RMSNorm epsilon (NORM) */
layout(constant_id = 9) const uint DIM = 32u;   /* unpadded row length (NORM) */

layout(binding = 2) readonly buffer Act { vec4 act[]; };        /* [rows][KU * 8] */
layout(binding = 3) readonly buffer Gamma { vec4 gamma[]; };    /* [KU * 8] (NORM) */

float mv_acc[R * NB]; /* [r][b] */
float mv_ss[NB];      /* sum of x^2 per activation row (NORM) */

uint mv_row(uint r);
uint mv_act_row(uint b);

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

/* The RMS scale of activation row b after mv_compute (NORM). */
float mv_rms_scale(uint b) { return 1.0 / sqrt(mv_ss[b] / float(DIM) + EPS); }

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
