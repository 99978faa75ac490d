/*
 * The output projection folded into the dispatch that finishes the
 * attention's output for one row (attention.comp's Wo build at one key
 * split, attention_merge.comp's past one): x += a @ Wo^T, where a is this
 * workgroup's WO_VALUES outputs (whole 32-input units of Wo, from unit
 * u0), for Wo rows z * RPT * WG .. + RPT * WG - 1 (z = gl_WorkGroupID.z;
 * thread t: rows t, t + WG, ...). Each row's sum goes into x with one
 * float atomic (GL_EXT_shader_atomic_float, which the including shader
 * enables), so x's elements take their additions in no fixed order.
 *
 * The Wo units are loaded (wo_prefetch) before the work that produces a,
 * since weights wait on nothing; a is rounded to int8 codes per 32 as
 * matvec.glsl's staging rounds activations (8 threads a unit, subgroup
 * shuffles: subgroups of 8 or more, which the host checks).
 * Bytes: Wo once.
 *
 * The including shader defines before including this file: WO_VALUES (a
 * constant expression; attention.comp's a macro, so that its SPIR-V keeps
 * main's instructions), the constant ids WO_SPEC_N and WO_SPEC_RPT, the binding
 * WO_BIND_X, and weights.glsl's ids (ZT_W_SPEC_TYPE, ZT_W_SPEC_KU,
 * ZT_W_BIND_Q, ZT_W_BIND_S); it writes a into wo_a and calls wo_project.
 */
#include "weights.glsl"

layout(constant_id = WO_SPEC_N) const uint WO_N = 1u;     /* Wo rows (the model's dim) */
layout(constant_id = WO_SPEC_RPT) const uint WO_RPT = 1u; /* Wo rows per thread */
layout(binding = WO_BIND_X) buffer Residual { float x_res[]; };

const uint WU = WO_VALUES / 32u;   /* Wo units of the outputs */
const uint WO_ITEMS = WO_RPT * WU; /* a thread's Wo units */
/* the units a thread loads ahead: all, up to 8 (registers) */
const uint WO_PF = QUANT ? (WO_ITEMS < 8u ? WO_ITEMS : 8u) : 1u;
shared float wo_a[WO_VALUES]; /* the outputs a, normalized */
shared uint wo_xq[WU * 8u];   /* their int8 codes, 4 a word */
shared float wo_dx[WU];       /* a unit's scale */
shared int wo_sum[WU * 2u];   /* a unit's code sums, inputs 0-15 and 16-31 */

/* The Wo row of a thread's rr-th row; may be past WO_N in the last slice */
uint wo_row(uint rr) {
    return (gl_WorkGroupID.z * WO_RPT + rr) * gl_WorkGroupSize.x + gl_LocalInvocationID.x;
}

/* This thread's first WO_PF Wo units (of units u0 ..), in flight while
 * the including shader computes a. */
void wo_prefetch(uint u0, out wfrag wpf[WO_PF]) {
    [[unroll]] for (uint i = 0u; i < WO_PF; i++)
        wpf[i] = QUANT ? unit_fetch(min(wo_row(i / WU), WO_N - 1u), u0 + i % WU)
                       : wfrag(uvec4(0u), uvec4(0u), uvec2(0u));
}

/* x += this workgroup's share of a @ Wo^T, a in wo_a (all threads call
 * it: it has barriers). */
void wo_project(uint u0, wfrag wpf[WO_PF]) {
    uint t = gl_LocalInvocationID.x;
    barrier();
    if (QUANT) {
        if (t < WU * 8u) {
            vec4 a = vec4(wo_a[4u * t], wo_a[4u * t + 1u], wo_a[4u * t + 2u], wo_a[4u * t + 3u]);
            vec4 m = abs(a);
            float amax = max(max(m.x, m.y), max(m.z, m.w));
            amax = max(amax, subgroupShuffleXor(amax, 1u));
            amax = max(amax, subgroupShuffleXor(amax, 2u));
            amax = max(amax, subgroupShuffleXor(amax, 4u));
            float dx = amax / 127.0, id = dx != 0.0 ? 1.0 / dx : 0.0;
            int sum = 0;
            wo_xq[t] = pack_codes(a * id, sum);
            sum += subgroupShuffleXor(sum, 1u);
            sum += subgroupShuffleXor(sum, 2u);
            uint w = t & 7u, u = t >> 3;
            if (w == 0u) wo_dx[u] = dx;
            if ((w & 3u) == 0u) wo_sum[2u * u + (w >> 2)] = sum;
        }
        barrier();
    }
    [[unroll]] for (uint rr = 0u; rr < WO_RPT; rr++) {
        /* past WO_N a thread computes row WO_N - 1 again and drops it */
        uint r = min(wo_row(rr), WO_N - 1u);
        float acc = 0.0;
        [[unroll]] for (uint j = 0u; j < WU; j++) {
            uint i = rr * WU + j, u = u0 + j;
            if (QUANT) {
                wfrag f = i < WO_PF ? wpf[min(i, WO_PF - 1u)] : unit_fetch(r, u);
                uint xq[8];
                [[unroll]] for (uint k = 0u; k < 8u; k++) xq[k] = wo_xq[8u * j + k];
                acc += frag_dot_q(f, r, u, xq, wo_dx[j], wo_sum[2u * j], wo_sum[2u * j + 1u]);
            } else {
                vec4 xa[8];
                [[unroll]] for (uint k = 0u; k < 8u; k++)
                    xa[k] = vec4(wo_a[32u * j + 4u * k], wo_a[32u * j + 4u * k + 1u],
                                 wo_a[32u * j + 4u * k + 2u], wo_a[32u * j + 4u * k + 3u]);
                acc += unit_dot_f(r, u, xa);
            }
        }
        if (wo_row(rr) < WO_N) atomicAdd(x_res[wo_row(rr)], acc);
    }
}
