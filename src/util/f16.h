/* IEEE half and bfloat16 <-> float, exact (round-to-nearest-even on the
 * way down, NaN and infinities preserved). Header-only: these sit in the
 * inner loops of the reference dequantizers. */
#ifndef ZT_UTIL_F16_H
#define ZT_UTIL_F16_H

#include <stdint.h>
#include <string.h>

static inline float zt_bits_to_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint32_t zt_f32_to_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static inline float zt_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0x1f) return zt_bits_to_f32(sign | 0x7f800000u | (mant << 13));
    if (exp == 0) {
        if (mant == 0) return zt_bits_to_f32(sign);
        /* subnormal: value = mant * 2^-24 */
        float v = (float)mant * (1.0f / 16777216.0f);
        return sign ? -v : v;
    }
    return zt_bits_to_f32(sign | ((exp + 112) << 23) | (mant << 13));
}

static inline uint16_t zt_f32_to_f16(float f) {
    uint32_t x = zt_f32_to_bits(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0));
    if (absx >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to inf */
    if (absx < 0x38800000u) {                                   /* subnormal or zero */
        /* round(|f| * 2^24) with ties to even, done in float: exact because
         * |f| < 2^-14 so the product is < 2^10 with the sticky bits kept. */
        float v = zt_bits_to_f32(absx) * 16777216.0f;
        uint32_t m = (uint32_t)v;
        float frac = v - (float)m;
        if (frac > 0.5f || (frac == 0.5f && (m & 1))) m++;
        return (uint16_t)(sign | m);
    }
    uint32_t exp = (absx >> 23) - 112, mant = absx & 0x7fffff;
    uint32_t h = (exp << 10) | (mant >> 13);
    uint32_t rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

static inline float zt_bf16_to_f32(uint16_t b) { return zt_bits_to_f32((uint32_t)b << 16); }

static inline uint16_t zt_f32_to_bf16(float f) {
    uint32_t x = zt_f32_to_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet nan */
    x += 0x7fff + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

#endif
