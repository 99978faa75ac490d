/*
 * Private to src/quant: what quant.c (the type table) and quant_k.c (the
 * k-quant formats, 256-element super-blocks) share. Each conversion
 * function handles n_blocks whole blocks; src and dst may have any
 * alignment, because a tensor in a mapped file need not be aligned for
 * the block struct, so blocks are copied in and out with memcpy.
 */
#ifndef ZT_QUANT_QUANT_IMPL_H
#define ZT_QUANT_QUANT_IMPL_H

#include <stdint.h>

/* v (already rounded to an integer value) clamped to [lo, hi]; NaN gives
 * lo. Converting an out-of-range or NaN float to int is undefined in C,
 * so every quantizer goes through here or through quant_round_clamp. */
static inline int quant_clamp_int(float v, int lo, int hi) {
    if (!(v >= (float)lo)) return lo;
    if (v >= (float)hi) return hi;
    return (int)v;
}

/* v rounded (half up) to an integer in [lo, hi]; NaN gives lo. Branch-free
 * (maxss/minss and a truncating convert), because the k-quant fits call
 * it a few hundred times per weight. */
static inline int quant_round_clamp(float v, int lo, int hi) {
    v = v > (float)lo ? v : (float)lo;
    v = v < (float)hi ? v : (float)hi;
    return (int)(v - (float)lo + 0.5f) + lo;
}

void quant_dequant_q2_k(const uint8_t *src, float *dst, int64_t n_blocks);
void quant_dequant_q3_k(const uint8_t *src, float *dst, int64_t n_blocks);
void quant_dequant_q4_k(const uint8_t *src, float *dst, int64_t n_blocks);
void quant_dequant_q5_k(const uint8_t *src, float *dst, int64_t n_blocks);
void quant_dequant_q6_k(const uint8_t *src, float *dst, int64_t n_blocks);
void quant_dequant_q8_k(const uint8_t *src, float *dst, int64_t n_blocks);

void quant_quantize_q2_k(const float *src, uint8_t *dst, int64_t n_blocks);
void quant_quantize_q3_k(const float *src, uint8_t *dst, int64_t n_blocks);
void quant_quantize_q4_k(const float *src, uint8_t *dst, int64_t n_blocks);
void quant_quantize_q5_k(const float *src, uint8_t *dst, int64_t n_blocks);
void quant_quantize_q6_k(const float *src, uint8_t *dst, int64_t n_blocks);
void quant_quantize_q8_k(const float *src, uint8_t *dst, int64_t n_blocks);

#endif
