#version 450
/*
 * attention_merge: combines the key splits of attention.comp —
 *   out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s,  M = max_s m_s
 * (splits that saw no key have l_s = 0 and m_s = -1e30 and drop out).
 * Mapping: workgroup (h, r) = query head h of row r; thread t owns dim t.
 * Bytes: the partials once; att once.
 */
#include "common.glsl"

layout(constant_id = 1) const uint HD = 2u;
layout(constant_id = 2) const uint NH = 1u;   /* query heads */
layout(constant_id = 3) const uint QS = 32u;  /* row stride of att */

layout(binding = 0) readonly buffer Part { float part[]; }; /* [rows][NH][splits][HD + 2] */
layout(binding = 1) writeonly buffer Att { float att[]; };  /* [rows][QS] */

layout(push_constant) uniform Push { uint n_rows; uint n_splits; } pc;

void main() {
    uint h = gl_WorkGroupID.x, row = gl_WorkGroupID.y;
    if (row >= pc.n_rows) return;
    uint base = (row * NH + h) * pc.n_splits * (HD + 2u);
    float m = ZT_NEG_BIG;
    for (uint s = 0u; s < pc.n_splits; s++) m = max(m, part[base + s * (HD + 2u) + HD]);
    float l = 0.0;
    for (uint s = 0u; s < pc.n_splits; s++) {
        uint b = base + s * (HD + 2u);
        l += exp(part[b + HD] - m) * part[b + HD + 1u];
    }
    for (uint d = gl_LocalInvocationID.x; d < HD; d += gl_WorkGroupSize.x) {
        float o = 0.0;
        for (uint s = 0u; s < pc.n_splits; s++) {
            uint b = base + s * (HD + 2u);
            o += exp(part[b + HD] - m) * part[b + d];
        }
        att[row * QS + h * HD + d] = o / l;
    }
}
