/*
 * The GPU weight layouts and the arithmetic on one 32-input unit of one
 * weight row: dot products (matvec.glsl) and plain values (embed.comp).
 *
 * Layouts (weights.c writes them): every row is KU units of 32 inputs,
 * padded with zeros to a whole unit; wq is a uvec4 stream, ws a stream of
 * f16 values packed in pairs.
 *   F32    8 uvec4 per unit (the floats)
 *   F16    4 uvec4 per unit;  BF16 likewise
 *   Q8_0   2 uvec4 per unit (codes 0-15, 16-31); ws: the unit's f16 scale
 *   Q4_0   1 uvec4 per unit: byte i holds input i (low nibble) and i + 16
 *          (high nibble), as the file does; ws: the f16 scale
 *   Q4_K   per 256-input super-block 9 uvec4: 8 units in Q4_0's nibble
 *          order (the file interleaves pairs of units), then the 8 units'
 *          6-bit scales and 8 mins a byte each; ws: (d, dmin) as an f16
 *          pair per super-block
 *   Q6_K   per super-block 13 uvec4: 8 units of low nibbles (Q4_0 order),
 *          4 uvec4 of top bits (two units each, see q6_codes), 1 uvec4 of the
 *          16 int8 scales; ws: the f16 super-block scale
 */

/* The ids below are the matvecs'; a shader whose own constants and
 * bindings take those numbers (attention.comp's Wo build) moves them by
 * defining these before including this file. */
#ifndef ZT_W_SPEC_TYPE
#define ZT_W_SPEC_TYPE 1
#define ZT_W_SPEC_KU 2
#define ZT_W_BIND_Q 0
#define ZT_W_BIND_S 1
#endif

layout(constant_id = ZT_W_SPEC_TYPE) const uint WTYPE = 2u; /* weight type (T_*) */
layout(constant_id = ZT_W_SPEC_KU) const uint KU = 1u;      /* 32-input units per row */
const bool QUANT = WTYPE == T_Q4_0 || WTYPE == T_Q8_0 || WTYPE == T_Q4_K || WTYPE == T_Q6_K;

layout(binding = ZT_W_BIND_Q) readonly buffer WeightQ { uvec4 wq[]; }; /* [N][row units] */
layout(binding = ZT_W_BIND_S) readonly buffer WeightS { uint ws[]; };  /* f16 scales, in pairs */

/* f32 activations, float weights. */
float unit_dot_f(uint row, uint u, vec4 x[8]) {
    float s = 0.0;
    if (WTYPE == T_F32) {
        uint base = (row * KU + u) * 8u;
        [[unroll]] for (uint i = 0u; i < 8u; i++) s += dot(uintBitsToFloat(wq[base + i]), x[i]);
    } else if (WTYPE == T_F16) {
        uint base = (row * KU + u) * 4u;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uvec4 w = wq[base + c];
            s += dot(vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)), x[2u * c]);
            s += dot(vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w)), x[2u * c + 1u]);
        }
    } else if (WTYPE == T_BF16) {
        uint base = (row * KU + u) * 4u;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uvec4 w = wq[base + c];
            s += dot(vec4(bf16x2_to_vec2(w.x), bf16x2_to_vec2(w.y)), x[2u * c]);
            s += dot(vec4(bf16x2_to_vec2(w.z), bf16x2_to_vec2(w.w)), x[2u * c + 1u]);
        }
    }
    return s;
}

/* The 6-bit codes of inputs 4w..4w+3 (lo) and 16+4w..16+4w+3 (hi) of a Q6_K
 * unit: low nibbles from word w of the unit's nibble uvec4, top bits from
 * hb (inputs 0-15) and hb2 (16-31), where input 4w + k keeps its two bits at
 * bit 8k + 2w. */
uvec2 q6_codes(uint nib, uint hb, uint hb2, uint w) {
    uint lo = (nib & 0x0f0f0f0fu) | ((hb >> (2u * w)) & 0x03030303u) << 4;
    uint hi = ((nib >> 4) & 0x0f0f0f0fu) | ((hb2 >> (2u * w)) & 0x03030303u) << 4;
    return uvec2(lo, hi);
}

/* The weight words of one 32-input unit of a quantized row, loaded by
 * unit_fetch and consumed by frag_dot_q: split so that a matvec can issue
 * its loads before the activations they meet are ready (matvec.glsl's
 * staged path). Words a type does not use stay constant zeros, which the
 * compiler drops.
 *   Q4_0  a = the nibbles,             c.x = the scale pair word
 *   Q8_0  a, b = the codes,            c.x = the scale pair word
 *   Q4_K  a = the nibbles, b.x / b.y = the words that hold its scale /
 *         min byte, c.x = the super-block's (d, dmin) pair word
 *   Q6_K  a = the low nibbles, b = the top-bit uvec4, c = (int8 scale
 *         pair word, f16 super-block scale pair word) */
struct wfrag {
    uvec4 a, b;
    uvec2 c;
};

wfrag unit_fetch(uint row, uint u) {
    wfrag f = wfrag(uvec4(0u), uvec4(0u), uvec2(0u));
    if (WTYPE == T_Q4_0) {
        uint h = row * KU + u;
        f.a = wq[h];
        f.c.x = ws[h >> 1];
    } else if (WTYPE == T_Q8_0) {
        uint h = row * KU + u;
        f.a = wq[2u * h];
        f.b = wq[2u * h + 1u];
        f.c.x = ws[h >> 1];
    } else if (WTYPE == T_Q4_K) {
        uint sb = row * (KU / 8u) + (u >> 3), base = sb * 9u, j = u & 7u;
        f.a = wq[base + j];
        f.b.x = wq[base + 8u][j >> 2];      /* the unit's scale byte among 4 */
        f.b.y = wq[base + 8u][2u + (j >> 2)]; /* and its min byte */
        f.c.x = ws[sb];                      /* (d, dmin) */
    } else if (WTYPE == T_Q6_K) {
        uint sb = row * (KU / 8u) + (u >> 3), base = sb * 13u, j = u & 7u;
        f.a = wq[base + j];
        f.b = wq[base + 8u + (j >> 1)];
        f.c = uvec2(wq[base + 12u][j >> 1], ws[sb >> 1]);
    }
    return f;
}

/* The dot product of unit u of `row` (its words in f) with int8 activation
 * codes xq (byte k of xq[i] = input 4i + k), their scale dx and the sums of
 * the codes of inputs 0-15 (s0) and 16-31 (s1). */
float frag_dot_q(wfrag f, uint row, uint u, uint xq[8], float dx, int s0, int s1) {
    if (WTYPE == T_Q4_0) {
        int d = 0;
        [[unroll]] for (uint i = 0u; i < 4u; i++)
            d += sudot4(xq[i], f.a[i] & 0x0f0f0f0fu) + sudot4(xq[4u + i], (f.a[i] >> 4) & 0x0f0f0f0fu);
        d -= 8 * (s0 + s1);
        return float(d) * (half_at(row * KU + u, f.c.x) * dx);
    } else if (WTYPE == T_Q8_0) {
        int d = 0;
        [[unroll]] for (uint i = 0u; i < 4u; i++) d += sdot4(xq[i], f.a[i]) + sdot4(xq[4u + i], f.b[i]);
        return float(d) * (half_at(row * KU + u, f.c.x) * dx);
    } else if (WTYPE == T_Q4_K) {
        int d = 0;
        [[unroll]] for (uint i = 0u; i < 4u; i++)
            d += sudot4(xq[i], f.a[i] & 0x0f0f0f0fu) + sudot4(xq[4u + i], (f.a[i] >> 4) & 0x0f0f0f0fu);
        vec2 dm = unpackHalf2x16(f.c.x);
        int k = int(8u * (u & 3u));
        float sc = dm.x * float(bitfieldExtract(f.b.x, k, 8)),
              mn = dm.y * float(bitfieldExtract(f.b.y, k, 8));
        return float(d) * (sc * dx) - mn * (dx * float(s0 + s1));
    } else if (WTYPE == T_Q6_K) {
        uint sb = row * (KU / 8u) + (u >> 3), j = u & 7u;
        uvec2 hb = (j & 1u) != 0u ? f.b.zw : f.b.xy;
        int d0 = 0, d1 = 0;
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uvec2 c = q6_codes(f.a[i], hb.x, hb.y, i);
            d0 += sudot4(xq[i], c.x);
            d1 += sudot4(xq[4u + i], c.y);
        }
        d0 -= 32 * s0;
        d1 -= 32 * s1;
        /* the int8 scales of groups 2j and 2j + 1 */
        float sc0 = float(bitfieldExtract(int(f.c.x), int(16u * (j & 1u)), 8));
        float sc1 = float(bitfieldExtract(int(f.c.x), int(16u * (j & 1u) + 8u), 8));
        float dw = half_at(sb, f.c.y);
        return float(d0) * (dw * sc0 * dx) + float(d1) * (dw * sc1 * dx);
    }
    return 0.0;
}

float unit_dot_q(uint row, uint u, uint xq[8], float dx, int s0, int s1) {
    return frag_dot_q(unit_fetch(row, u), row, u, xq, dx, s0, s1);
}

/* The 32 values of unit u of row `row`, as the reference dequantizers give
 * them (quant_dequant_row): v[i] = inputs 4i .. 4i+3. */
void unit_values(uint row, uint u, out vec4 v[8]) {
    if (WTYPE == T_F32) {
        uint base = (row * KU + u) * 8u;
        [[unroll]] for (uint i = 0u; i < 8u; i++) v[i] = uintBitsToFloat(wq[base + i]);
    } else if (WTYPE == T_F16 || WTYPE == T_BF16) {
        uint base = (row * KU + u) * 4u;
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
            uvec4 w = wq[base + c];
            if (WTYPE == T_F16) {
                v[2u * c] = vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y));
                v[2u * c + 1u] = vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
            } else {
                v[2u * c] = vec4(bf16x2_to_vec2(w.x), bf16x2_to_vec2(w.y));
                v[2u * c + 1u] = vec4(bf16x2_to_vec2(w.z), bf16x2_to_vec2(w.w));
            }
        }
    } else if (WTYPE == T_Q4_0) {
        uint h = row * KU + u;
        uvec4 w = wq[h];
        float d = half_at(h, ws[h >> 1]);
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            v[i] = (vec4(uvec4(w[i], w[i] >> 8, w[i] >> 16, w[i] >> 24) & 15u) - 8.0) * d;
            v[4u + i] = (vec4(uvec4(w[i] >> 4, w[i] >> 12, w[i] >> 20, w[i] >> 28) & 15u) - 8.0) * d;
        }
    } else if (WTYPE == T_Q8_0) {
        uint h = row * KU + u;
        float d = half_at(h, ws[h >> 1]);
        [[unroll]] for (uint c = 0u; c < 2u; c++) {
            uvec4 w = wq[2u * h + c];
            [[unroll]] for (uint i = 0u; i < 4u; i++)
                v[4u * c + i] = vec4(bitfieldExtract(int(w[i]), 0, 8), bitfieldExtract(int(w[i]), 8, 8),
                                     bitfieldExtract(int(w[i]), 16, 8), bitfieldExtract(int(w[i]), 24, 8)) * d;
        }
    } else if (WTYPE == T_Q4_K) {
        uint sb = row * (KU / 8u) + (u >> 3), base = sb * 9u, j = u & 7u;
        uvec4 w = wq[base + j], scm = wq[base + 8u];
        vec2 dm = unpackHalf2x16(ws[sb]);
        int k = int(8u * (j & 3u));
        float dl = dm.x * float(bitfieldExtract(scm[j >> 2], k, 8)),
              ml = dm.y * float(bitfieldExtract(scm[2u + (j >> 2)], k, 8));
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            v[i] = dl * vec4(uvec4(w[i], w[i] >> 8, w[i] >> 16, w[i] >> 24) & 15u) - ml;
            v[4u + i] = dl * vec4(uvec4(w[i] >> 4, w[i] >> 12, w[i] >> 20, w[i] >> 28) & 15u) - ml;
        }
    } else if (WTYPE == T_Q6_K) {
        uint sb = row * (KU / 8u) + (u >> 3), base = sb * 13u, j = u & 7u;
        uvec4 nib = wq[base + j], hb4 = wq[base + 8u + (j >> 1)], scw = wq[base + 12u];
        uvec2 hb = (j & 1u) != 0u ? hb4.zw : hb4.xy;
        uint sw = scw[j >> 1];
        float dw = half_at(sb, ws[sb >> 1]);
        float d0 = dw * float(bitfieldExtract(int(sw), int(16u * (j & 1u)), 8));
        float d1 = dw * float(bitfieldExtract(int(sw), int(16u * (j & 1u) + 8u), 8));
        [[unroll]] for (uint i = 0u; i < 4u; i++) {
            uvec2 c = q6_codes(nib[i], hb.x, hb.y, i);
            v[i] = d0 * (vec4(uvec4(c.x, c.x >> 8, c.x >> 16, c.x >> 24) & 255u) - 32.0);
            v[4u + i] = d1 * (vec4(uvec4(c.y, c.y >> 8, c.y >> 16, c.y >> 24) & 255u) - 32.0);
        }
    }
}
