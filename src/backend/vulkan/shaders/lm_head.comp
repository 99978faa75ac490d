#version 450
/*
 * lm_head: logits[i][v] = rmsnorm(x[out_rows[i]]) . W[v] for the rows whose
 * logits are wanted — the final norm fused into the vocabulary matmul
 * (matvec.glsl's NORM), gathering the wanted rows on the fly.
 *
 * Mapping: row group g (vocabulary rows g*R .. g*R+R-1; matvec.glsl's
 * mv_run) for wanted rows c*NB .. (workgroup (-, -, c)); bytes: the output
 * matrix once per NB wanted rows.
 */
#include "common.glsl"
#include "timeline.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint MB = 1u;      /* step buffer: rows per section */

layout(binding = 5) writeonly buffer Logits { float logits[]; }; /* [n_out][N] */
layout(binding = 6) readonly buffer Step { int step[]; };        /* see vulkan.c */

layout(push_constant) uniform Push { uint n_out; } pc;

uint mv_row(uint r) { return min(mv_group * R + r, N - 1u); }
uint mv_act_row(uint b) { return uint(step[3u * MB + min(gl_WorkGroupID.z * NB + b, pc.n_out - 1u)]); }
uint mv_groups() { return (N + R - 1u) / R; }

void mv_epilogue() {
    uint t = gl_LocalInvocationID.x;
    if (t < R * NB) {
        uint r = t / NB, b = t % NB;
        uint v = mv_group * R + r, i = gl_WorkGroupID.z * NB + b;
        if (v < N && i < pc.n_out) logits[i * N + v] = mv_result(t) * mv_rms_scale(b);
    }
}

void main() { mv_run(0u); /* no timeline build */ }
