#version 450
/*
 * matmul: x[b][o] += sum_k W[o][k] * a[b][k] — the attention output
 * projection (a = attention output) and the FFN down projection (a = the
 * SiLU-gated hidden state), with the residual add fused into the store.
 *
 * Mapping: row group g (weight rows g*R .. g*R+R-1; workgroup (g, -, c),
 * or a workgroup looping over several: matvec.glsl's mv_run) for
 * activation rows c*NB .. c*NB+NB-1; x has its own row
 * stride (XS floats) because a and x may be of different widths.
 * Bytes: the weights once per NB activation rows; x read and written once.
 */
#include "common.glsl"
#include "timeline.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint XS = 32u; /* row stride of x in floats */

layout(binding = 5) buffer Residual { float x[]; }; /* [rows][XS] */

layout(push_constant) uniform Push { uint n_rows, unused1, unused2, tl_slot; } pc;

uint mv_row(uint r) { return min(mv_group * R + r, N - 1u); }
uint mv_act_row(uint b) { return min(gl_WorkGroupID.z * NB + b, pc.n_rows - 1u); }
uint mv_groups() { return (N + R - 1u) / R; }

void mv_epilogue() {
    tl_mark(pc.tl_slot, 1u);
    uint t = gl_LocalInvocationID.x;
    if (t < R * NB) {
        uint r = t / NB, b = t % NB;
        uint o = mv_group * R + r, row = gl_WorkGroupID.z * NB + b;
        if (o < N && row < pc.n_rows) x[row * XS + o] += mv_result(t);
    }
}

void main() {
    tl_mark(pc.tl_slot, 0u);
    mv_run(pc.tl_slot);
    tl_mark(pc.tl_slot, 2u);
}
