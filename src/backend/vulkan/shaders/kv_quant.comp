#version 450
/*
 * kv_quant: the int8 KV cache write. Rounds the k and v vectors of each
 * row's KV heads (staged in f32 by qkv.comp) to int8 codes with one f32
 * scale per (position, head) — d = amax / 127, code = round(x / d) half to
 * even — and stores them at the row's page and slot.
 * Mapping: workgroup (h, c, r) = KV head h of row r, c = 0 for k, 1 for v;
 * thread t rounds values 4t .. 4t+3 (one uint of codes).
 * Bytes: 2 kv_dim floats in, kv_dim bytes + 2 n_kv_heads scales out per row.
 */
#include "common.glsl"

layout(constant_id = 1) const uint HD = 4u;
layout(constant_id = 2) const uint N_KV = 1u;
layout(constant_id = 3) const uint MB = 1u;
layout(constant_id = 4) const uint MPPS = 1u;

const uint KV_DIM = N_KV * HD;

layout(binding = 0) readonly buffer Step { int step[]; };
layout(binding = 1) readonly buffer Stage { vec4 stage[]; };   /* [rows][2 KV_DIM] */
layout(binding = 2) writeonly buffer KCache { uint k_cache[]; };
layout(binding = 3) writeonly buffer VCache { uint v_cache[]; };
layout(binding = 4) writeonly buffer KScale { float k_scale[]; };
layout(binding = 5) writeonly buffer VScale { float v_scale[]; };

layout(push_constant) uniform Push { uint n_rows; } pc;

#if ZT_FAST
shared float red_s[gl_WorkGroupSize.x];
float wg_max(float v) {
    v = subgroupMax(v);
    if (subgroupElect()) red_s[gl_SubgroupID] = v;
    barrier();
    float m = 0.0;
    for (uint i = 0u; i < gl_NumSubgroups; i++) m = max(m, red_s[i]);
    return m;
}
#else
shared float red_s[gl_WorkGroupSize.x];
float wg_max(float v) {
    uint t = gl_LocalInvocationID.x, n = gl_WorkGroupSize.x;
    red_s[t] = v;
    barrier();
    for (uint s = tree_start(n); s > 0u; s >>= 1) {
        if (t < s && t + s < n) red_s[t] = max(red_s[t], red_s[t + s]);
        barrier();
    }
    return red_s[0];
}
#endif

void main() {
    uint h = gl_WorkGroupID.x, is_v = gl_WorkGroupID.y, row = gl_WorkGroupID.z;
    uint t = gl_LocalInvocationID.x;
    if (row >= pc.n_rows) return;
    uint src = (row * 2u * KV_DIM + is_v * KV_DIM + h * HD) / 4u;
    float amax = 0.0;
    for (uint i = t; i < HD / 4u; i += gl_WorkGroupSize.x) {
        vec4 a = abs(stage[src + i]);
        amax = max(amax, max(max(a.x, a.y), max(a.z, a.w)));
    }
    amax = wg_max(amax);
    float d = amax / 127.0, id = d != 0.0 ? 1.0 / d : 0.0;
    uint pos = uint(step[MB + row]), seq = uint(step[2u * MB + row]);
    uint page = uint(step[4u * MB + seq * MPPS + pos / 16u]);
    uint slot = page * 16u + pos % 16u;
    uint dst = (slot * KV_DIM + h * HD) / 4u;
    for (uint i = t; i < HD / 4u; i += gl_WorkGroupSize.x) {
        int unused = 0;
        uint codes = pack_codes(stage[src + i] * id, unused);
        if (is_v != 0u) v_cache[dst + i] = codes;
        else k_cache[dst + i] = codes;
    }
    if (t == 0u) {
        if (is_v != 0u) v_scale[slot * N_KV + h] = d;
        else k_scale[slot * N_KV + h] = d;
    }
}
