#version 450
#ifndef ATT_WO
#define ATT_WO 0 /* the Wo build: the output projection fused (below) */
#endif
#if ATT_WO
#extension GL_EXT_shader_atomic_float : require
#endif
/*
 * attention: paged causal attention of query rows against the KV cache,
 * for decode (one row per sequence) and prefill (many rows of a sequence)
 * alike, split along the keys (split-K) so that long contexts still spread
 * over many workgroups.
 *
 * Mapping: workgroup (s, h, r) = key split s (SPLIT positions) of KV head h
 * for query row r; it serves the G query heads that share KV head h (GQA),
 * so each key and value is read once per group. Three passes over the
 * split, each spread over all WG threads:
 *   1. scores: thread t takes positions t, t + WG, ...: one dot product
 *      with each of the G queries (16-byte loads of the key row), kept in
 *      shared memory, with a running max;
 *   2. softmax: each thread's max and sum of exp(score - max), kept while
 *      it scores, combined over the workgroup (wg_softmax);
 *   3. values: the threads form NG groups of DS = HD / DPT threads; thread
 *      (group, d) sums exp(score - max) * V over every NG-th position for
 *      dims DPT*d .. DPT*d + DPT - 1 (one 32-bit load per position:
 *      coalesced across d; VU positions' loads at a time), and the groups'
 *      sums meet in shared memory.
 * Visible keys: positions max(0, pos - WINDOW + 1) .. pos (WINDOW = 0: all),
 * as the CPU reference. With one split the normalized output goes straight
 * to att; with several, each split writes (unnormalized out, max, sum) and
 * attention_merge.comp combines them.
 * Bytes: per row and KV head, the visible keys and values once.
 *
 * Wo build (ATT_WO; one row, one split: the single-sequence decode at
 * contexts of up to SPLIT positions): the output projection x += att @ Wo^T
 * fused (wo_fold.glsl), so that no dispatch (and no barrier between
 * dispatches) separates the attention from it. Workgroup (0, h, z) attends
 * as above, then multiplies its G heads' outputs by their WU = G * HD / 32
 * units of Wo's row slice z, adding into x with float atomics (N_KV
 * additions an element, in no fixed order); its Wo units are loaded before
 * it attends. So the attention is computed WO_N / (RPT * WG) times per KV
 * head, from L2. Bytes: Wo once, besides the attention's.
 *
 * KV cache layout: [page][slot][KV_DIM] per layer (16 positions per page,
 * page from the sequence's page table row); the int8 cache keeps one f32
 * scale per (page, slot, KV head). Each type is read as raw 32-bit words.
 */
#include "common.glsl"
#include "timeline.glsl"

layout(constant_id = 1) const uint HD = 2u;       /* head_dim */
layout(constant_id = 2) const uint G = 1u;        /* query heads per KV head */
layout(constant_id = 3) const uint N_KV = 1u;     /* KV heads */
layout(constant_id = 4) const uint QS = 32u;      /* row stride of q and att (floats) */
layout(constant_id = 5) const uint MB = 1u;       /* step buffer: rows per section */
layout(constant_id = 6) const uint MPPS = 1u;     /* page table row length */
layout(constant_id = 7) const uint SPLIT = 64u;   /* positions per split */
layout(constant_id = 8) const uint WINDOW = 0u;   /* sliding window, 0 = none */
layout(constant_id = 9) const float SCALE = 1.0;  /* 1 / sqrt(head_dim) */
layout(constant_id = 10) const uint MAX_SG = 1u;  /* subgroups per workgroup, at most */
layout(constant_id = 11) const uint VU = 16u;     /* pass 3: positions in flight per thread */

#if ATT_WO
#define WO_VALUES (G * HD) /* the group's heads' outputs */
#define ZT_W_SPEC_TYPE 12
#define ZT_W_SPEC_KU 13
#define WO_SPEC_N 14
#define WO_SPEC_RPT 15
#define WO_BIND_X 7
#define ZT_W_BIND_Q 8
#define ZT_W_BIND_S 9
#include "wo_fold.glsl"
#endif

const uint KV_DIM = N_KV * HD;
#if KV_Q8
const uint DPT = 4u; /* values per 32-bit word */
#elif KV_F16
const uint DPT = 2u;
#else
const uint DPT = 1u;
#endif
const uint DS = HD / DPT;                    /* words per head row */
const uint NG = gl_WorkGroupSize.x / DS;     /* position groups of pass 3 */
const bool WIDE = DS % 4u == 0u;             /* rows readable as uvec4 */

layout(binding = 0) readonly buffer Step { int step[]; };
layout(binding = 1) readonly buffer Q { float q[]; };            /* [rows][QS] */
layout(binding = 2) readonly buffer KCache { uint k_cache[]; };
layout(binding = 2) readonly buffer KCache4 { uvec4 k_cache4[]; };
layout(binding = 3) readonly buffer VCache { uint v_cache[]; };
layout(binding = 4) readonly buffer KScale { float k_scale[]; }; /* [page][slot][N_KV] (q8) */
layout(binding = 5) readonly buffer VScale { float v_scale[]; };
layout(binding = 6) writeonly buffer Out { float out_[]; };      /* att, or split partials */

layout(push_constant) uniform Push { uint n_rows, n_splits, unused, tl_slot; } pc;

shared float q_s[G * HD];         /* the group's queries, times SCALE */
shared float p_s[G * SPLIT];      /* scores */
shared uint slot_s[SPLIT];        /* page * 16 + slot of each position */
shared float acc_s[NG * G * HD];  /* pass 3: the groups' sums */
#if ZT_FAST
shared float red_s[G * MAX_SG];
#else
shared float red_s[gl_WorkGroupSize.x];
#endif

/* The DPT values of 32-bit word w of a cache row. */
vec4 kv_word(uint w) {
#if KV_Q8
    return vec4(bitfieldExtract(int(w), 0, 8), bitfieldExtract(int(w), 8, 8),
                bitfieldExtract(int(w), 16, 8), bitfieldExtract(int(w), 24, 8));
#elif KV_F16
    return vec4(unpackHalf2x16(w), 0.0, 0.0);
#else
    return vec4(uintBitsToFloat(w), 0.0, 0.0, 0.0);
#endif
}

/* dot of query g with the key row starting at word `base`. */
float key_dot(uint g, uint base) {
    float s = 0.0;
    if (WIDE) {
        for (uint i = 0u; i < DS / 4u; i++) {
            uvec4 w = k_cache4[base / 4u + i];
            [[unroll]] for (uint c = 0u; c < 4u; c++) {
                vec4 k = kv_word(w[c]);
                uint e = (4u * i + c) * DPT;
                [[unroll]] for (uint j = 0u; j < DPT; j++) s += k[j] * q_s[g * HD + e + j];
            }
        }
    } else {
        for (uint i = 0u; i < DS; i++) {
            vec4 k = kv_word(k_cache[base + i]);
            [[unroll]] for (uint j = 0u; j < DPT; j++) s += k[j] * q_s[g * HD + i * DPT + j];
        }
    }
    return s;
}

/* The softmax statistics over the workgroup, in every thread: from each
 * thread's max m[g] of its scores and sum l[g] of exp(score - m[g]), the
 * workgroup's max and its sum of exp(score - max). Fast build: subgroup
 * max and sum, one exchange through shared memory, one barrier (which also
 * publishes pass 1's scores); portable: two tree reductions. */
#if ZT_FAST
shared float red_l[G * MAX_SG];

void wg_softmax(inout float m[G], inout float l[G]) {
    [[unroll]] for (uint g = 0u; g < G; g++) {
        float mx = subgroupMax(m[g]);
        l[g] = subgroupAdd(l[g] * exp(m[g] - mx));
        m[g] = mx;
    }
    if (subgroupElect())
        [[unroll]] for (uint g = 0u; g < G; g++) {
            red_s[g * MAX_SG + gl_SubgroupID] = m[g];
            red_l[g * MAX_SG + gl_SubgroupID] = l[g];
        }
    barrier();
    [[unroll]] for (uint g = 0u; g < G; g++) {
        float mx = red_s[g * MAX_SG];
        for (uint i = 1u; i < gl_NumSubgroups; i++) mx = max(mx, red_s[g * MAX_SG + i]);
        float sum = 0.0;
        for (uint i = 0u; i < gl_NumSubgroups; i++)
            sum += red_l[g * MAX_SG + i] * exp(red_s[g * MAX_SG + i] - mx);
        m[g] = mx;
        l[g] = sum;
    }
}
#else
/* v[g] reduced over the workgroup (max or sum), in every thread. */
void wg_reduce(inout float v[G], bool is_max) {
    uint t = gl_LocalInvocationID.x, n = gl_WorkGroupSize.x;
    [[unroll]] for (uint g = 0u; g < G; g++) {
        red_s[t] = v[g];
        barrier();
        for (uint s = tree_start(n); s > 0u; s >>= 1) {
            if (t < s && t + s < n)
                red_s[t] = is_max ? max(red_s[t], red_s[t + s]) : red_s[t] + red_s[t + s];
            barrier();
        }
        v[g] = red_s[0];
        barrier();
    }
}

void wg_softmax(inout float m[G], inout float l[G]) {
    float mt[G];
    [[unroll]] for (uint g = 0u; g < G; g++) mt[g] = m[g];
    wg_reduce(m, true);
    [[unroll]] for (uint g = 0u; g < G; g++) l[g] *= exp(mt[g] - m[g]);
    wg_reduce(l, false);
}
#endif

void attend() {
    const uint WG = gl_WorkGroupSize.x;
    uint split = gl_WorkGroupID.x, kvh = gl_WorkGroupID.y, row = ATT_WO != 0 ? 0u : gl_WorkGroupID.z;
    uint t = gl_LocalInvocationID.x;
    if (row >= pc.n_rows) return;
#if ATT_WO
    /* this thread's Wo units, in flight while it attends */
    wfrag wpf[WO_PF];
    if (QUANT)
        [[unroll]] for (uint i = 0u; i < WO_PF; i++)
            wpf[i] = unit_fetch(min(wo_row(i / WU), WO_N - 1u), kvh * WU + i % WU);
#endif
    uint pos = uint(step[MB + row]), seq = uint(step[2u * MB + row]);
    uint lo = WINDOW > 0u && pos + 1u > WINDOW ? pos + 1u - WINDOW : 0u;
    uint start = max(lo, split * SPLIT), end = min(pos + 1u, (split + 1u) * SPLIT);
    uint n = end > start ? end - start : 0u;

    for (uint i = t; i < G * HD; i += WG) q_s[i] = q[row * QS + kvh * G * HD + i] * SCALE;
    barrier();

    /* 1. scores, each thread's max and sum of exp(score - max) */
    float m[G], l[G];
    [[unroll]] for (uint g = 0u; g < G; g++) m[g] = ZT_NEG_BIG, l[g] = 0.0;
    for (uint i = t; i < n; i += WG) {
        uint p = start + i;
        uint slot = uint(step[4u * MB + seq * MPPS + p / 16u]) * 16u + p % 16u;
        slot_s[i] = slot;
        uint base = (slot * KV_DIM + kvh * HD) / DPT;
        float ks = 1.0;
#if KV_Q8
        ks = k_scale[slot * N_KV + kvh];
#endif
        [[unroll]] for (uint g = 0u; g < G; g++) {
            float s = key_dot(g, base) * ks, mx = max(m[g], s);
            p_s[g * SPLIT + i] = s;
            l[g] = l[g] * exp(m[g] - mx) + exp(s - mx);
            m[g] = mx;
        }
    }
    tl_mark(pc.tl_slot, 1u);
    /* 2. softmax statistics (p_s keeps the scores: pass 3 takes exp(s - m)) */
    wg_softmax(m, l);

    /* 3. values */
    uint d = t % DS, grp = t / DS;
    float acc[G * DPT];
    [[unroll]] for (uint i = 0u; i < G * DPT; i++) acc[i] = 0.0;
    if (grp < NG) {
        /* VU positions a step, their loads issued together: each is an L2
         * round trip, and a decode split is one workgroup's whole work */
        for (uint i0 = grp; i0 < n; i0 += VU * NG) {
            vec4 v[VU];
            [[unroll]] for (uint k = 0u; k < VU; k++) {
                uint slot = slot_s[min(i0 + k * NG, n - 1u)];
                v[k] = kv_word(v_cache[(slot * KV_DIM + kvh * HD) / DPT + d]);
#if KV_Q8
                v[k] *= v_scale[slot * N_KV + kvh];
#endif
            }
            [[unroll]] for (uint k = 0u; k < VU; k++) {
                uint i = i0 + k * NG;
                if (i < n)
                    [[unroll]] for (uint g = 0u; g < G; g++)
                        [[unroll]] for (uint j = 0u; j < DPT; j++)
                            acc[g * DPT + j] += exp(p_s[g * SPLIT + i] - m[g]) * v[k][j];
            }
        }
        [[unroll]] for (uint g = 0u; g < G; g++)
            [[unroll]] for (uint j = 0u; j < DPT; j++) acc_s[(grp * G + g) * HD + d * DPT + j] = acc[g * DPT + j];
    }
    barrier();
    for (uint i = t; i < G * HD; i += WG) {
        uint g = i / HD, e = i % HD;
        float o = 0.0;
        for (uint k = 0u; k < NG; k++) o += acc_s[(k * G + g) * HD + e];
        uint h = kvh * G + g;
#if ATT_WO
        wo_a[i] = o / l[g];
#else
        if (pc.n_splits == 1u) {
            out_[row * QS + h * HD + e] = o / l[g];
        } else { /* partial [row][head][split][HD + 2]: out, max, sum */
            uint base = ((row * N_KV * G + h) * pc.n_splits + split) * (HD + 2u);
            out_[base + e] = o;
            if (e == 0u) {
                out_[base + HD] = m[g];
                out_[base + HD + 1u] = l[g];
            }
        }
#endif
    }
#if ATT_WO
    wo_project(kvh * WU, wpf);
#endif
}

void main() {
    tl_mark(pc.tl_slot, 0u);
    attend();
    tl_mark(pc.tl_slot, 2u);
}
