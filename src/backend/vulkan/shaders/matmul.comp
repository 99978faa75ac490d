#version 450
/*
 * matmul: x[b][o] += sum_k W[o][k] * a[b][k] — the attention output
 * projection (a = attention output) and the FFN down projection (a = the
 * SiLU-gated hidden state), with the residual add fused into the store.
 *
 * Mapping: block g of weight rows g*R .. g*R+R-1 for activation rows
 * c*NB .. c*NB+NB-1 on workgroup (g mod groups, -, c) (matvec.glsl); x has
 * its own row stride (XS floats) because a and x may be of different widths.
 * Bytes: the weights once per NB activation rows; x read and written once.
 */
#include "common.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint XS = 32u; /* row stride of x in floats */

layout(binding = 5) ZT_DEP buffer Residual { float x[]; }; /* [rows][XS] */

layout(push_constant) uniform Push { uint n_rows, unused, chain_slot, chain_wait; } pc;

const uint GROUPS = (N + R - 1u) / R;

uint mv_row(uint r) { return min(mv_group * R + r, N - 1u); }
uint mv_act_row(uint b) { return min(gl_WorkGroupID.z * NB + b, pc.n_rows - 1u); }

void main() {
    mv_prefetch(GROUPS);
    chain_wait(pc.chain_slot, pc.chain_wait);
    mv_stage();
    for (mv_group = mv_first_group(); mv_group < GROUPS; mv_group += mv_group_stride()) {
        mv_compute();
        uint t = mv_lane();
        if (t < R * NB) {
            uint r = t / NB, b = t % NB;
            uint o = mv_group * R + r, row = gl_WorkGroupID.z * NB + b;
            if (o < N && row < pc.n_rows) x[row * XS + o] += mv_acc[t];
        }
    }
    chain_signal(pc.chain_slot);
}
