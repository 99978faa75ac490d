#version 450
/*
 * sample: greedy decoding on the device — argmax[i] = the first index of
 * the largest logit of wanted row i (NaN never wins, as the CPU's strict >),
 * so a decode step copies 4 bytes back instead of the vocabulary.
 * Mapping: one workgroup per row; threads stride the vocabulary, then a
 * workgroup reduction of (value, index) pairs. Bytes: the logits once.
 */
#include "common.glsl"

layout(constant_id = 1) const uint VOCAB = 1u;

layout(binding = 0) readonly buffer Logits { float logits[]; }; /* [n_out][VOCAB] */
layout(binding = 1) writeonly buffer Argmax { int argmax[]; };  /* [n_out] */

layout(push_constant) uniform Push { uint n_out; } pc;

shared float val_s[gl_WorkGroupSize.x];
shared uint idx_s[gl_WorkGroupSize.x];

/* (a, ia) beats (b, ib): larger, or equal and earlier; NaN never beats. */
bool beats(float a, uint ia, float b, uint ib) { return a > b || (a == b && ia < ib); }

void main() {
    uint row = gl_WorkGroupID.x, t = gl_LocalInvocationID.x;
    if (row >= pc.n_out) return;
    float best = ZT_NEG_BIG;
    uint bi = 0xffffffffu;
    for (uint v = t; v < VOCAB; v += gl_WorkGroupSize.x) {
        float x = logits[row * VOCAB + v];
        if (bi == 0xffffffffu ? !isnan(x) : x > best) {
            best = x;
            bi = v;
        }
    }
    if (bi == 0xffffffffu) best = ZT_NEG_BIG;
#if ZT_FAST
    float m = subgroupMax(best);
    uint mi = subgroupMin(best == m ? bi : 0xffffffffu);
    if (subgroupElect()) {
        val_s[gl_SubgroupID] = m;
        idx_s[gl_SubgroupID] = mi;
    }
    barrier();
    if (t == 0u) {
        for (uint i = 1u; i < gl_NumSubgroups; i++)
            if (beats(val_s[i], idx_s[i], val_s[0], idx_s[0])) {
                val_s[0] = val_s[i];
                idx_s[0] = idx_s[i];
            }
        argmax[row] = idx_s[0] == 0xffffffffu ? 0 : int(idx_s[0]);
    }
#else
    val_s[t] = best;
    idx_s[t] = bi;
    barrier();
    uint n = gl_WorkGroupSize.x;
    for (uint s = tree_start(n); s > 0u; s >>= 1) {
        if (t < s && t + s < n && beats(val_s[t + s], idx_s[t + s], val_s[t], idx_s[t])) {
            val_s[t] = val_s[t + s];
            idx_s[t] = idx_s[t + s];
        }
        barrier();
    }
    if (t == 0u) argmax[row] = idx_s[0] == 0xffffffffu ? 0 : int(idx_s[0]);
#endif
}
