/*
 * Block formats: the GGUF ggml_type numbering, block geometry, scalar
 * reference dequantizers and quantizers. These are the oracle that every
 * backend kernel is tested against, so they favour clarity over speed.
 *
 * A row of n elements of a block type occupies n / block_elems blocks of
 * block_bytes each; n must be a multiple of block_elems.
 */
#ifndef ZT_QUANT_QUANT_H
#define ZT_QUANT_QUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum zt_type {
    ZT_F32 = 0,
    ZT_F16 = 1,
    ZT_Q4_0 = 2,
    ZT_Q4_1 = 3,
    ZT_Q5_0 = 6,
    ZT_Q5_1 = 7,
    ZT_Q8_0 = 8,
    ZT_Q8_1 = 9,
    ZT_Q2_K = 10,
    ZT_Q3_K = 11,
    ZT_Q4_K = 12,
    ZT_Q5_K = 13,
    ZT_Q6_K = 14,
    ZT_Q8_K = 15,
    ZT_BF16 = 30,
    ZT_TYPE_LIMIT = 40 /* type ids at or above this are unknown */
};

typedef struct zt_type_info {
    const char *name;  /* "q4_K", as GGUF tools print it */
    int block_elems;   /* elements per block (1 for float types) */
    int block_bytes;   /* bytes per block */
    bool can_dequant;  /* zt has a reference dequantizer */
    bool can_quantize; /* zt has a reference quantizer */
} zt_type_info;

/* NULL for a type id zt does not know at all. */
const zt_type_info *quant_type_info(int type);
/* Parses "f16", "q8_0", "q4_K", "Q4_K" ... ; -1 when unknown. */
int quant_type_from_name(const char *name);
/* Bytes of a row of n elements; 0 when n is not a multiple of the block. */
size_t quant_row_bytes(int type, int64_t n);

/* Reference conversions of one row of n elements. */
void quant_dequant_row(int type, const void *src, float *dst, int64_t n);
void quant_quantize_row(int type, const float *src, void *dst, int64_t n);

/* ---- block layouts (bit-exact with GGUF) ---------------------------- */

#define QK4_0        32
#define QK8_0        32
#define QK_K         256
#define K_SCALE_SIZE 12

typedef struct {
    uint16_t d;            /* f16 scale */
    uint8_t qs[QK4_0 / 2]; /* x[i] = (nibble - 8) * d; low nibbles: i < 16 */
} block_q4_0;

typedef struct {
    uint16_t d;       /* f16 scale */
    int8_t qs[QK8_0]; /* x[i] = qs[i] * d */
} block_q8_0;

typedef struct {
    uint16_t d, dmin;             /* f16 super-block scale for scales / mins */
    uint8_t scales[K_SCALE_SIZE]; /* 8 x (6-bit scale, 6-bit min) packed */
    uint8_t qs[QK_K / 2];         /* 4-bit quants */
} block_q4_K;

typedef struct {
    uint16_t d, dmin;
    uint8_t scales[K_SCALE_SIZE];
    uint8_t qh[QK_K / 8]; /* 5th bit */
    uint8_t qs[QK_K / 2]; /* low 4 bits */
} block_q5_K;

typedef struct {
    uint8_t ql[QK_K / 2];     /* low 4 bits */
    uint8_t qh[QK_K / 4];     /* high 2 bits */
    int8_t scales[QK_K / 16]; /* 8-bit scales of 16-element groups */
    uint16_t d;               /* f16 super-block scale */
} block_q6_K;

typedef struct {
    float d;
    int8_t qs[QK_K];
    int16_t bsums[QK_K / 16];
} block_q8_K;

/* The 6-bit (scale, min) pair j of a Q4_K/Q5_K block. */
void quant_k_scale_min(int j, const uint8_t *scales, uint8_t *sc, uint8_t *m);

#endif
