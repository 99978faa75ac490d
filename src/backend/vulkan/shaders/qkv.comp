#version 450
/*
 * qkv: the attention half of a layer up to the cache —
 *   y = rmsnorm(x[b]) . Wqkv (+ bias); RoPE on the q and k parts;
 *   q -> the q buffer (f32), k and v -> the paged KV cache at the row's
 *   position (f16, or f32; with the int8 cache, to an f32 staging buffer
 *   that kv_quant.comp rounds into the cache).
 *
 * Mapping: the output rows come in quads (a, a+1, b, b+1) listed in the
 * items table, which the host builds so that every RoPE pair lies inside
 * one quad and every store is a whole pair of neighbouring values:
 *   mode 0: no rotation (v rows, and dims past rope_dim);
 *   mode 1: rotate-half pairs (a, b) and (a+1, b+1), frequencies f, f+1;
 *   mode 2: interleaved pairs (a, a+1) and (b, b+1), frequencies f, f+1;
 *   +4:     (b, b+1) is absent (b == a).
 * A row group (matvec.glsl's mv_run) is QPW quads (R = 4 QPW rows), for
 * NB activation rows.
 * Rows are rows of this dispatch's matrix; ROW_BASE places them in the
 * fused [q | k | v] space (one dispatch per matrix when a model's q, k, v
 * tensors have different types).
 * Bytes: the matrix once per NB rows; per row q_dim + 2 kv_dim values out.
 */
#include "common.glsl"
#include "timeline.glsl"
#include "matvec.glsl"

layout(constant_id = 10) const uint MB = 1u;        /* step buffer: rows per section */
layout(constant_id = 11) const uint MPPS = 1u;      /* page table row length */
layout(constant_id = 12) const uint Q_DIM = 2u;
layout(constant_id = 13) const uint KV_DIM = 2u;
layout(constant_id = 14) const uint QS = 32u;       /* row stride of the q buffer */
layout(constant_id = 15) const uint ROPE_HALF = 1u; /* rope_dim / 2 */
layout(constant_id = 16) const uint QPW = 1u;       /* quads per workgroup (R = 4 QPW) */
layout(constant_id = 17) const uint N_ITEMS = 1u;
layout(constant_id = 18) const uint ROW_BASE = 0u;
layout(constant_id = 19) const bool KV_STAGE = false; /* k, v to the f32 staging buffer */

layout(binding = 4) readonly buffer Bias { float bias[]; };     /* [q_dim + 2 kv_dim] */
layout(binding = 5) writeonly buffer Q { vec2 q_out[]; };       /* [rows][QS / 2] */
layout(binding = 6) readonly buffer Step { int step[]; };
#if KV_F16 && ZT_FAST
layout(binding = 7) writeonly buffer KCache { f16vec2 k_cache[]; };
layout(binding = 8) writeonly buffer VCache { f16vec2 v_cache[]; };
#elif KV_F16
layout(binding = 7) writeonly buffer KCache { uint k_cache[]; };
layout(binding = 8) writeonly buffer VCache { uint v_cache[]; };
#else
/* f32 cache, or the staging buffer [rows][2 KV_DIM] (k then v) */
layout(binding = 7) writeonly buffer KCache { vec2 k_cache[]; };
layout(binding = 8) writeonly buffer VCache { vec2 v_cache[]; };
#endif
layout(binding = 9) readonly buffer Rope { vec2 rope[]; };      /* [pos][ROPE_HALF] cos, sin */
layout(binding = 10) readonly buffer Items { uvec4 items[]; };  /* [N_ITEMS] a, b, f, mode */

layout(push_constant) uniform Push { uint n_rows, unused1, unused2, tl_slot; } pc;

uvec4 item(uint qi) { return items[min(mv_group * QPW + qi, N_ITEMS - 1u)]; }
uint mv_row(uint r) {
    uvec4 it = item(r / 4u);
    uint k = r % 4u;
    return k < 2u ? it.x + k : it.y + k - 2u;
}
uint mv_act_row(uint b) { return min(gl_WorkGroupID.z * NB + b, pc.n_rows - 1u); }
uint mv_groups() { return (N_ITEMS + QPW - 1u) / QPW; }

vec2 rotate(vec2 v, vec2 cs) { return vec2(v.x * cs.x - v.y * cs.y, v.x * cs.y + v.y * cs.x); }

/* Stores values (e, e+1) of [q | k | v] for activation row `row`. */
void store_pair(uint e, vec2 v, uint row, uint pos, uint seq) {
    if (e < Q_DIM) {
        q_out[(row * QS + e) / 2u] = v;
        return;
    }
    bool is_k = e < Q_DIM + KV_DIM;
    uint ek = is_k ? e - Q_DIM : e - Q_DIM - KV_DIM;
    uint idx;
    if (KV_STAGE) {
        idx = (row * 2u * KV_DIM + (is_k ? 0u : KV_DIM) + ek) / 2u;
    } else {
        uint page = uint(step[4u * MB + seq * MPPS + pos / 16u]);
        idx = ((page * 16u + pos % 16u) * KV_DIM + ek) / 2u;
    }
#if KV_F16 && ZT_FAST
    if (is_k) k_cache[idx] = f16vec2(round_to_f16(v));
    else v_cache[idx] = f16vec2(round_to_f16(v));
#elif KV_F16
    if (is_k) k_cache[idx] = packHalf2x16(round_to_f16(v));
    else v_cache[idx] = packHalf2x16(round_to_f16(v));
#else
    if (is_k) k_cache[idx] = v;
    else v_cache[idx] = v;
#endif
}

/* The epilogue: thread t < QPW NB finishes quad t / NB of row t % NB. */
void store_quads() {
    uint t = gl_LocalInvocationID.x;
    if (t >= QPW * NB) return;
    uint qi = t / NB, b = t % NB;
    uint row = gl_WorkGroupID.z * NB + b;
    if (mv_group * QPW + qi >= N_ITEMS || row >= pc.n_rows) return;
    uvec4 it = item(qi);
    uint pos = uint(step[MB + row]), seq = uint(step[2u * MB + row]);
    uint ea = ROW_BASE + it.x, eb = ROW_BASE + it.y;
    float scale = mv_rms_scale(b);
    vec2 va = vec2(mv_result((4u * qi) * NB + b), mv_result((4u * qi + 1u) * NB + b)) * scale;
    vec2 vb = vec2(mv_result((4u * qi + 2u) * NB + b), mv_result((4u * qi + 3u) * NB + b)) * scale;
    va += vec2(bias[ea], bias[ea + 1u]);
    vb += vec2(bias[eb], bias[eb + 1u]);
    uint mode = it.w & 3u;
    if (mode == 1u) { /* rotate-half: (a, b) and (a+1, b+1) */
        vec2 p0 = rotate(vec2(va.x, vb.x), rope[pos * ROPE_HALF + it.z]);
        vec2 p1 = rotate(vec2(va.y, vb.y), rope[pos * ROPE_HALF + it.z + 1u]);
        va = vec2(p0.x, p1.x);
        vb = vec2(p0.y, p1.y);
    } else if (mode == 2u) { /* interleaved: (a, a+1) and (b, b+1) */
        va = rotate(va, rope[pos * ROPE_HALF + it.z]);
        vb = rotate(vb, rope[pos * ROPE_HALF + it.z + 1u]);
    }
    store_pair(ea, va, row, pos, seq);
    if ((it.w & 4u) == 0u) store_pair(eb, vb, row, pos, seq);
}

void mv_epilogue() {
    tl_mark(pc.tl_slot, 1u);
    store_quads();
}

void main() {
    tl_mark(pc.tl_slot, 0u);
    mv_run(pc.tl_slot);
    tl_mark(pc.tl_slot, 2u);
}
