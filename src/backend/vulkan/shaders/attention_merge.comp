#version 450
#ifndef ATT_WO
#define ATT_WO 0 /* the Wo build: the output projection fused (below) */
#endif
#if ATT_WO
#extension GL_EXT_shader_atomic_float : require
#endif
/*
 * attention_merge: combines the key splits of attention.comp —
 *   out = sum_s e^(m_s - M) o_s / sum_s e^(m_s - M) l_s,  M = max_s m_s
 * (splits that saw no key have l_s = 0 and m_s = -1e30 and drop out).
 * Mapping: workgroup (h, r) = query head h of row r; thread t owns dim t.
 * Bytes: the partials once; att once.
 *
 * Wo build (ATT_WO; one row, past one key split: the single-sequence
 * decode at long contexts): the output projection x += att @ Wo^T fused
 * (wo_fold.glsl), as attention.comp's Wo build does at one split.
 * Workgroup (h, 0, z) merges head h, then multiplies its HD outputs by
 * their HD / 32 units of Wo's row slice z, adding into x with float
 * atomics (NH additions an element, in no fixed order); its Wo units are
 * loaded before it reads the partials. Bytes: Wo once, the partials once
 * per slice (from L2).
 */
#include "common.glsl"

layout(constant_id = 1) const uint HD = 2u;
layout(constant_id = 2) const uint NH = 1u;   /* query heads */
layout(constant_id = 3) const uint QS = 32u;  /* row stride of att */

layout(binding = 0) readonly buffer Part { float part[]; }; /* [rows][NH][splits][HD + 2] */
layout(binding = 1) writeonly buffer Att { float att[]; };  /* [rows][QS] */

layout(push_constant) uniform Push { uint n_rows; uint n_splits; } pc;

#if ATT_WO
const uint WO_VALUES = HD; /* one head's outputs */
#define ZT_W_SPEC_TYPE 4
#define ZT_W_SPEC_KU 5
#define WO_SPEC_N 6
#define WO_SPEC_RPT 7
#define WO_BIND_X 2
#define ZT_W_BIND_Q 3
#define ZT_W_BIND_S 4
#include "wo_fold.glsl"
#endif

void main() {
    uint h = gl_WorkGroupID.x, row = ATT_WO != 0 ? 0u : gl_WorkGroupID.y;
    if (row >= pc.n_rows) return;
#if ATT_WO
    wfrag wpf[WO_PF]; /* this thread's Wo units, in flight while it merges */
    wo_prefetch(h * WU, wpf);
#endif
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
#if ATT_WO
        wo_a[d] = o / l;
#else
        att[row * QS + h * HD + d] = o / l;
#endif
    }
#if ATT_WO
    wo_project(h * WU, wpf);
#endif
}
