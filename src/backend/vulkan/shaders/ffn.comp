#version 450
/*
 * ffn: h[b][i] = silu(g) * u with g = rmsnorm(x[b]) . W[i] (gate row) and
 * u = rmsnorm(x[b]) . W[F + i] (up row): the FFN norm, the gate and up
 * matmuls and the SiLU gate in one pass over W = [gate rows; up rows].
 *
 * Mapping: row group g (matvec.glsl's mv_run) is P = R/2 consecutive
 * hidden units i and their gate and up rows (local rows 0..P-1 gate,
 * P..R-1 up), so the gate and the up value of a unit meet in one
 * workgroup; NB activation rows per workgroup.
 * Bytes: the gate/up matrix once per NB rows; writes h once.
 */
#include "common.glsl"
#include "timeline.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint F = 1u;      /* hidden units (N = 2F) */
layout(constant_id = 11) const uint HS = 32u;    /* row stride of h in floats */

layout(binding = 5) writeonly buffer Hidden { float h[]; }; /* [rows][HS] */

layout(push_constant) uniform Push { uint n_rows, unused1, unused2, tl_slot; } pc;

const uint P = R / 2u;

uint unit_of(uint r) { return mv_group * P + (r < P ? r : r - P); }
uint mv_row(uint r) { return min(unit_of(r), F - 1u) + (r < P ? 0u : F); }
uint mv_act_row(uint b) { return min(gl_WorkGroupID.z * NB + b, pc.n_rows - 1u); }
uint mv_groups() { return (F + P - 1u) / P; }

void mv_epilogue() {
    tl_mark(pc.tl_slot, 1u);
    uint t = gl_LocalInvocationID.x;
    if (t < P * NB) {
        uint r = t / NB, b = t % NB;
        uint i = unit_of(r), row = gl_WorkGroupID.z * NB + b;
        float scale = mv_rms_scale(b);
        float g = mv_result(r * NB + b) * scale, u = mv_result((r + P) * NB + b) * scale;
        if (i < F && row < pc.n_rows) h[row * HS + i] = g / (1.0 + exp(-g)) * u;
    }
}

void main() {
    tl_mark(pc.tl_slot, 0u);
    mv_run(pc.tl_slot);
    tl_mark(pc.tl_slot, 2u);
}
