#version 450
/*
 * embed: x[r] = row tokens[r] of the token table, dequantized to f32 — the
 * residual stream's start. Mapping: workgroup (g, r), thread t writes unit
 * g*WG + t (32 values) of row r. Bytes: one table row per row, x once.
 */
#include "common.glsl"
#include "weights.glsl"

layout(constant_id = 3) const uint XS = 32u; /* row stride of x (floats, = 32 KU) */
layout(constant_id = 4) const uint MB = 1u;  /* step buffer: rows per section */

layout(binding = 2) readonly buffer Step { int step[]; };
layout(binding = 3) writeonly buffer X { vec4 x[]; }; /* [rows][XS / 4] */

layout(push_constant) uniform Push { uint n_rows; } pc;

void main() {
    uint u = gl_GlobalInvocationID.x, row = gl_WorkGroupID.y;
    if (u >= KU || row >= pc.n_rows) return;
    vec4 v[8];
    unit_values(uint(step[row]), u, v);
    [[unroll]] for (uint i = 0u; i < 8u; i++) x[(row * XS + 32u * u) / 4u + i] = v[i];
}
