#version 450
/*
 * matmul: x[b][o] += sum_k W[o][k] * a[b][k] — the attention output
 * projection (a = attention output) and the FFN down projection (a = the
 * SiLU-gated hidden state), with the residual add fused into the store.
 *
 * Mapping: workgroup (g, -, c) computes weight rows g*R .. g*R+R-1 for
 * activation rows c*NB .. c*NB+NB-1 (matvec.glsl); x has its own row
 * stride (XS floats) because a and x may be of different widths.
 * Bytes: the weights once per NB activation rows; x read and written once.
 */
#include "common.glsl"
#include "timeline.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint XS = 32u; /* row stride of x in floats */

layout(binding = 5) buffer Residual { float x[]; }; /* [rows][XS] */

layout(push_constant) uniform Push { uint n_rows, unused1, unused2, tl_slot; } pc;

uint group_index() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }
uint mv_row(uint r) { return min(group_index() * R + r, N - 1u); }
uint mv_act_row(uint b) { return min(gl_WorkGroupID.z * NB + b, pc.n_rows - 1u); }

void main() {
    tl_mark(pc.tl_slot, 0u);
    mv_compute();
    tl_mark(pc.tl_slot, 1u);
    uint t = gl_LocalInvocationID.x;
    if (t < R * NB) {
        uint r = t / NB, b = t % NB;
        uint o = group_index() * R + r, row = gl_WorkGroupID.z * NB + b;
        if (o < N && row < pc.n_rows) x[row * XS + o] += mv_acc[t];
    }
    tl_mark(pc.tl_slot, 2u);
}
