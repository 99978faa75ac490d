/*
 * The type table and the simple formats: f32, f16, bf16 and the 32-element
 * blocks with one scale each (q4_0, q4_1, q5_0, q5_1, q8_0, q8_1). The
 * k-quants (256-element super-blocks) live in quant_k.c.
 *
 * These are the scalar references every backend kernel is tested against,
 * so each dequantizer evaluates the formula in the same order as ggml's
 * (scale times quant, then the offset) and the q4_0/q8_0 quantizers round
 * exactly as ggml's reference does: a file zt writes holds the same bytes
 * llama.cpp would write for it.
 */
#include "quant/quant.h"

#include "quant/quant_impl.h"
#include "util/f16.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ---- blocks quant.h does not need to publish ------------------------- */

typedef struct {
    uint16_t d, m;  /* f16 scale and offset */
    uint8_t qs[16]; /* x[i] = nibble * d + m; low nibbles: i < 16 */
} block_q4_1;

typedef struct {
    uint16_t d;     /* f16 scale */
    uint8_t qh[4];  /* 5th bits, little-endian u32: bit i is element i */
    uint8_t qs[16]; /* low 4 bits, as q4_0; x[i] = (q - 16) * d */
} block_q5_0;

typedef struct {
    uint16_t d, m; /* f16 scale and offset */
    uint8_t qh[4];
    uint8_t qs[16]; /* x[i] = q * d + m */
} block_q5_1;

typedef struct {
    uint16_t d, s; /* f16 scale; s = d * sum(qs), for dot products */
    int8_t qs[32];
} block_q8_1;

_Static_assert(sizeof(block_q4_0) == 18, "block_q4_0 must be 18 bytes");
_Static_assert(sizeof(block_q4_1) == 20, "block_q4_1 must be 20 bytes");
_Static_assert(sizeof(block_q5_0) == 22, "block_q5_0 must be 22 bytes");
_Static_assert(sizeof(block_q5_1) == 24, "block_q5_1 must be 24 bytes");
_Static_assert(sizeof(block_q8_0) == 34, "block_q8_0 must be 34 bytes");
_Static_assert(sizeof(block_q8_1) == 36, "block_q8_1 must be 36 bytes");

/* ---- float types ----------------------------------------------------- */

static void dequant_f32(const uint8_t *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void quantize_f32(const float *src, uint8_t *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}

static void dequant_f16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = zt_f16_to_f32(h);
    }
}
static void quantize_f16(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = zt_f32_to_f16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}

static void dequant_bf16(const uint8_t *src, float *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = zt_bf16_to_f32(h);
    }
}
static void quantize_bf16(const float *src, uint8_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = zt_f32_to_bf16(src[i]);
        memcpy(dst + 2 * i, &h, 2);
    }
}

/* ---- 32-element blocks ----------------------------------------------- */

/* Largest magnitude of x[0..n) and the signed value that has it (the first
 * one on ties), as ggml's reference quantizers find it. */
static float signed_absmax(const float *x, int n, float *amax_out) {
    float amax = 0.0f, max = 0.0f;
    for (int i = 0; i < n; i++) {
        if (amax < fabsf(x[i])) {
            amax = fabsf(x[i]);
            max = x[i];
        }
    }
    if (amax_out) *amax_out = amax;
    return max;
}

static void min_max(const float *x, int n, float *lo, float *hi) {
    *lo = INFINITY;
    *hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (x[i] < *lo) *lo = x[i];
        if (x[i] > *hi) *hi = x[i];
    }
    if (!(*lo <= *hi)) *lo = *hi = 0.0f; /* all NaN */
}

static void dequant_q4_0(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q4_0 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int i = 0; i < 16; i++) {
            dst[i] = (float)((blk.qs[i] & 0xf) - 8) * d;
            dst[i + 16] = (float)((blk.qs[i] >> 4) - 8) * d;
        }
    }
}

/* ggml's reference: the value of largest magnitude maps to -8 exactly, the
 * rest round half up onto the 16 levels (the +8.5 then truncate). */
static void quantize_q4_0(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q4_0 blk;
        float d = signed_absmax(src, 32, NULL) / -8.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk.d = zt_f32_to_f16(d);
        for (int i = 0; i < 16; i++) {
            int lo = quant_clamp_int(floorf(src[i] * id + 8.5f), 0, 15);
            int hi = quant_clamp_int(floorf(src[i + 16] * id + 8.5f), 0, 15);
            blk.qs[i] = (uint8_t)(lo | hi << 4);
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

static void dequant_q4_1(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q4_1 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d), m = zt_f16_to_f32(blk.m);
        for (int i = 0; i < 16; i++) {
            dst[i] = (float)(blk.qs[i] & 0xf) * d + m;
            dst[i + 16] = (float)(blk.qs[i] >> 4) * d + m;
        }
    }
}

static void quantize_q4_1(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q4_1 blk;
        float lo, hi;
        min_max(src, 32, &lo, &hi);
        float d = (hi - lo) / 15.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk.d = zt_f32_to_f16(d);
        blk.m = zt_f32_to_f16(lo);
        for (int i = 0; i < 16; i++) {
            int q0 = quant_clamp_int(floorf((src[i] - lo) * id + 0.5f), 0, 15);
            int q1 = quant_clamp_int(floorf((src[i + 16] - lo) * id + 0.5f), 0, 15);
            blk.qs[i] = (uint8_t)(q0 | q1 << 4);
        }
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

/* The 5-bit quant i of a q5_0/q5_1 block: low 4 bits from qs, bit 4 from
 * the little-endian 32-bit mask qh. */
static int q5_get(const uint8_t qs[16], const uint8_t qh[4], int i) {
    uint32_t h =
        (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24;
    int low = i < 16 ? qs[i] & 0xf : qs[i - 16] >> 4;
    return low | (int)((h >> i) & 1) << 4;
}

static void q5_put(uint8_t qs[16], uint8_t qh[4], const int q[32]) {
    uint32_t h = 0;
    for (int i = 0; i < 16; i++) qs[i] = (uint8_t)((q[i] & 0xf) | (q[i + 16] & 0xf) << 4);
    for (int i = 0; i < 32; i++) h |= (uint32_t)(q[i] >> 4 & 1) << i;
    for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> 8 * k);
}

static void dequant_q5_0(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q5_0 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int i = 0; i < 32; i++) dst[i] = (float)(q5_get(blk.qs, blk.qh, i) - 16) * d;
    }
}

/* As q4_0 with 32 levels: the largest magnitude maps to -16. */
static void quantize_q5_0(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q5_0 blk;
        int q[32];
        float d = signed_absmax(src, 32, NULL) / -16.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk.d = zt_f32_to_f16(d);
        for (int i = 0; i < 32; i++) q[i] = quant_clamp_int(floorf(src[i] * id + 16.5f), 0, 31);
        q5_put(blk.qs, blk.qh, q);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

static void dequant_q5_1(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q5_1 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d), m = zt_f16_to_f32(blk.m);
        for (int i = 0; i < 32; i++) dst[i] = (float)q5_get(blk.qs, blk.qh, i) * d + m;
    }
}

static void quantize_q5_1(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q5_1 blk;
        int q[32];
        float lo, hi;
        min_max(src, 32, &lo, &hi);
        float d = (hi - lo) / 31.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk.d = zt_f32_to_f16(d);
        blk.m = zt_f32_to_f16(lo);
        for (int i = 0; i < 32; i++)
            q[i] = quant_clamp_int(floorf((src[i] - lo) * id + 0.5f), 0, 31);
        q5_put(blk.qs, blk.qh, q);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

static void dequant_q8_0(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q8_0 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int i = 0; i < 32; i++) dst[i] = (float)blk.qs[i] * d;
    }
}

/* ggml's reference: d = absmax / 127, quants round half away from zero
 * against the unrounded f32 scale. */
static void quantize_q8_0(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q8_0 blk;
        float amax;
        signed_absmax(src, 32, &amax);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        blk.d = zt_f32_to_f16(d);
        for (int i = 0; i < 32; i++)
            blk.qs[i] = (int8_t)quant_clamp_int(roundf(src[i] * id), -127, 127);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

static void dequant_q8_1(const uint8_t *src, float *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, dst += 32) {
        block_q8_1 blk;
        memcpy(&blk, src + b * sizeof blk, sizeof blk);
        float d = zt_f16_to_f32(blk.d);
        for (int i = 0; i < 32; i++) dst[i] = (float)blk.qs[i] * d;
    }
}

static void quantize_q8_1(const float *src, uint8_t *dst, int64_t n_blocks) {
    for (int64_t b = 0; b < n_blocks; b++, src += 32) {
        block_q8_1 blk;
        float amax;
        signed_absmax(src, 32, &amax);
        float d = amax / 127.0f;
        float id = d != 0.0f ? 1.0f / d : 0.0f;
        int sum = 0;
        for (int i = 0; i < 32; i++) {
            blk.qs[i] = (int8_t)quant_clamp_int(roundf(src[i] * id), -127, 127);
            sum += blk.qs[i];
        }
        blk.d = zt_f32_to_f16(d);
        blk.s = zt_f32_to_f16((float)sum * d);
        memcpy(dst + b * sizeof blk, &blk, sizeof blk);
    }
}

/* ---- the table ------------------------------------------------------- */

typedef struct quant_format {
    zt_type_info info;
    /* n_blocks whole blocks (elements, for the float types) */
    void (*dequant)(const uint8_t *src, float *dst, int64_t n_blocks);
    void (*quantize)(const float *src, uint8_t *dst, int64_t n_blocks);
} quant_format;

/* Block geometry from the GGUF specification (ggml's type_traits). */
static const quant_format quant_formats[ZT_TYPE_LIMIT] = {
    [ZT_F32] = {{"f32", 1, 4, true, true}, dequant_f32, quantize_f32},
    [ZT_F16] = {{"f16", 1, 2, true, true}, dequant_f16, quantize_f16},
    [ZT_BF16] = {{"bf16", 1, 2, true, true}, dequant_bf16, quantize_bf16},
    [ZT_Q4_0] = {{"q4_0", 32, 18, true, true}, dequant_q4_0, quantize_q4_0},
    [ZT_Q4_1] = {{"q4_1", 32, 20, true, true}, dequant_q4_1, quantize_q4_1},
    [ZT_Q5_0] = {{"q5_0", 32, 22, true, true}, dequant_q5_0, quantize_q5_0},
    [ZT_Q5_1] = {{"q5_1", 32, 24, true, true}, dequant_q5_1, quantize_q5_1},
    [ZT_Q8_0] = {{"q8_0", 32, 34, true, true}, dequant_q8_0, quantize_q8_0},
    [ZT_Q8_1] = {{"q8_1", 32, 36, true, true}, dequant_q8_1, quantize_q8_1},
    [ZT_Q2_K] = {{"q2_K", 256, 84, true, true}, quant_dequant_q2_k, quant_quantize_q2_k},
    [ZT_Q3_K] = {{"q3_K", 256, 110, true, true}, quant_dequant_q3_k, quant_quantize_q3_k},
    [ZT_Q4_K] = {{"q4_K", 256, 144, true, true}, quant_dequant_q4_k, quant_quantize_q4_k},
    [ZT_Q5_K] = {{"q5_K", 256, 176, true, true}, quant_dequant_q5_k, quant_quantize_q5_k},
    [ZT_Q6_K] = {{"q6_K", 256, 210, true, true}, quant_dequant_q6_k, quant_quantize_q6_k},
    [ZT_Q8_K] = {{"q8_K", 256, 292, true, true}, quant_dequant_q8_k, quant_quantize_q8_k},
};

static const quant_format *quant_format_of(int type) {
    if (type < 0 || type >= ZT_TYPE_LIMIT || !quant_formats[type].info.name) return NULL;
    return &quant_formats[type];
}

const zt_type_info *quant_type_info(int type) {
    const quant_format *f = quant_format_of(type);
    return f ? &f->info : NULL;
}

int quant_type_from_name(const char *name) {
    if (!name) return -1;
    for (int t = 0; t < ZT_TYPE_LIMIT; t++)
        if (quant_formats[t].info.name && strcasecmp(name, quant_formats[t].info.name) == 0)
            return t;
    return -1;
}

size_t quant_row_bytes(int type, int64_t n) {
    const quant_format *f = quant_format_of(type);
    if (!f || n < 0 || n % f->info.block_elems != 0) return 0;
    return (size_t)(n / f->info.block_elems) * (size_t)f->info.block_bytes;
}

/* With no error path in this signature, misuse (a type without a
 * dequantizer, n not a whole number of blocks) must still be loud: the
 * elements that cannot be produced are NaN, which no test or logit
 * comparison mistakes for a result. Callers check can_dequant first. */
void quant_dequant_row(int type, const void *src, float *dst, int64_t n) {
    const quant_format *f = quant_format_of(type);
    if (n <= 0) return;
    int64_t n_blocks = f && f->dequant ? n / f->info.block_elems : 0;
    if (n_blocks > 0) f->dequant((const uint8_t *)src, dst, n_blocks);
    for (int64_t i = f ? n_blocks * f->info.block_elems : 0; i < n; i++) dst[i] = NAN;
}

/* Whole blocks only; a type without a quantizer writes nothing. */
void quant_quantize_row(int type, const float *src, void *dst, int64_t n) {
    const quant_format *f = quant_format_of(type);
    if (!f || !f->quantize || n <= 0) return;
    int64_t n_blocks = n / f->info.block_elems;
    if (n_blocks > 0) f->quantize(src, (uint8_t *)dst, n_blocks);
}

void quant_k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m) {
    /* 8 pairs of 6 bits in 12 bytes: pairs 0-3 sit whole in the low 6 bits
     * of bytes 0-3 (scale) and 4-7 (min); pairs 4-7 keep their low 4 bits
     * in the nibbles of bytes 8-11 and their top 2 bits in the spare top
     * bits of bytes 0-3 (scale) and 4-7 (min). */
    if (j < 4) {
        *sc = scales[j] & 63;
        *m = scales[j + 4] & 63;
    } else {
        *sc = (uint8_t)((scales[j + 4] & 0xf) | (scales[j - 4] >> 6) << 4);
        *m = (uint8_t)((scales[j + 4] >> 4) | (scales[j] >> 6) << 4);
    }
}
