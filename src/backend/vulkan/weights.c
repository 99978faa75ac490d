/*
 * Weights into their GPU layouts (described in shaders/weights.glsl): the
 * block formats are split into a 16-byte-aligned stream of codes (read as
 * uvec4, one wide load per 32 inputs for the 4-bit formats) and a stream of
 * f16 scales, so no shader ever reads an unaligned 18-, 34- or 210-byte
 * block. Q4_K spends 4 bytes more per super-block (148 per 256 inputs):
 * the nibbles of each 32-input unit made contiguous, and the 6-bit scales
 * and mins unpacked into a byte each, so that a unit's decode reads its
 * two bytes instead of picking 6-bit fields out of the 12-byte packing;
 * Q6_K spends 2 bytes more per super-block (212) to align its units.
 *
 * Types the shaders do not read are dequantized with the reference
 * (quant_dequant_row) and stored as F16: their own quantization error is
 * far above f16 rounding.
 */
#include "backend/vulkan/vk.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/f16.h"

#include <stdlib.h>
#include <string.h>

int vk_layout_of(int file_type) {
    switch (file_type) {
    case ZT_F32:
    case ZT_F16:
    case ZT_BF16:
    case ZT_Q8_0:
    case ZT_Q4_0:
    case ZT_Q4_K:
    case ZT_Q6_K:
        return file_type;
    default:
        return ZT_F16;
    }
}

/* Bytes per row of the code stream, and f16 scales per row. */
static void row_geometry(int type, int64_t ku, size_t *q_row, int64_t *s_row) {
    *s_row = 0;
    switch (type) {
    case ZT_F32:
        *q_row = (size_t)ku * 128;
        break;
    case ZT_F16:
    case ZT_BF16:
        *q_row = (size_t)ku * 64;
        break;
    case ZT_Q8_0:
        *q_row = (size_t)ku * 32, *s_row = ku;
        break;
    case ZT_Q4_0:
        *q_row = (size_t)ku * 16, *s_row = ku;
        break;
    case ZT_Q4_K:
        *q_row = (size_t)ku / 8 * 144, *s_row = ku / 8 * 2; /* (d, dmin) a super-block */
        break;
    case ZT_Q6_K:
        *q_row = (size_t)ku / 8 * 208, *s_row = ku / 8;
        break;
    default:
        *q_row = 0;
    }
}

void vk_matrix_bytes(int type, int64_t n_in, int64_t n_out, size_t *q_bytes, size_t *s_bytes) {
    size_t q_row;
    int64_t s_row;
    row_geometry(type, (n_in + 31) / 32, &q_row, &s_row);
    *q_bytes = q_row * (size_t)n_out;
    *s_bytes = (size_t)((s_row * n_out + 1) / 2) * 4;
}

static uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

static void put_half(uint8_t *s, int64_t index, uint16_t h) { memcpy(s + 2 * index, &h, 2); }

/* Q4_K: the 4-bit code of input e (0..255) of a super-block's qs. */
static int q4k_code(const uint8_t *qs, int e) {
    uint8_t b = qs[32 * (e / 64) + e % 32];
    return e % 64 < 32 ? b & 15 : b >> 4;
}

/* Q6_K: the 6-bit code (0..63) of input e of a super-block. */
static int q6k_code(const uint8_t *ql, const uint8_t *qh, int e) {
    int h = e / 128, r = (e % 128) / 32, l = e % 32;
    uint8_t low = ql[64 * h + 32 * (r % 2) + l];
    return (r < 2 ? low & 15 : low >> 4) | (qh[32 * h + l] >> (2 * r) & 3) << 4;
}

/* One row: src in file layout, q and s (at scale index s0) in GPU layout. */
static void repack_row(int type, int file_type, const uint8_t *src, int64_t n_in, int64_t ku,
                       uint8_t *q, uint8_t *s, int64_t s0, float *tmp) {
    size_t q_row;
    int64_t s_row;
    row_geometry(type, ku, &q_row, &s_row);
    memset(q, 0, q_row);
    if (type != file_type) { /* F16 from a type the shaders do not read */
        quant_dequant_row(file_type, src, tmp, n_in);
        for (int64_t i = 0; i < n_in; i++) {
            uint16_t h = zt_f32_to_f16(tmp[i]);
            memcpy(q + 2 * i, &h, 2);
        }
        return;
    }
    switch (type) {
    case ZT_F32:
        memcpy(q, src, (size_t)n_in * 4);
        break;
    case ZT_F16:
    case ZT_BF16:
        memcpy(q, src, (size_t)n_in * 2);
        break;
    case ZT_Q8_0:
        for (int64_t b = 0; b < ku; b++) {
            put_half(s, s0 + b, rd16(src + 34 * b));
            memcpy(q + 32 * b, src + 34 * b + 2, 32);
        }
        break;
    case ZT_Q4_0:
        for (int64_t b = 0; b < ku; b++) {
            put_half(s, s0 + b, rd16(src + 18 * b));
            memcpy(q + 16 * b, src + 18 * b + 2, 16);
        }
        break;
    case ZT_Q4_K:
        for (int64_t sb = 0; sb < ku / 8; sb++) {
            const uint8_t *blk = src + 144 * sb, *qs = blk + 16;
            uint8_t *out = q + 144 * sb;
            put_half(s, s0 + 2 * sb, rd16(blk));         /* d */
            put_half(s, s0 + 2 * sb + 1, rd16(blk + 2)); /* dmin */
            for (int j = 0; j < 8; j++) {
                for (int i = 0; i < 16; i++)
                    out[16 * j + i] =
                        (uint8_t)(q4k_code(qs, 32 * j + i) | q4k_code(qs, 32 * j + i + 16) << 4);
                quant_k_scale_min(j, blk + 4, &out[128 + j], &out[136 + j]);
            }
        }
        break;
    case ZT_Q6_K:
        for (int64_t sb = 0; sb < ku / 8; sb++) {
            const uint8_t *blk = src + 210 * sb, *ql = blk, *qh = blk + 128, *sc = blk + 192;
            uint8_t *out = q + 208 * sb;
            put_half(s, s0 + sb, rd16(blk + 208));
            for (int j = 0; j < 8; j++) {
                uint32_t hb[2] = {0, 0}; /* inputs 0-15 and 16-31 of unit j */
                for (int i = 0; i < 16; i++) {
                    int lo = q6k_code(ql, qh, 32 * j + i), hi = q6k_code(ql, qh, 32 * j + i + 16);
                    out[16 * j + i] = (uint8_t)((lo & 15) | (hi & 15) << 4);
                    /* input 4w + k keeps its top two bits at bit 8k + 2w */
                    int w = i / 4, k = i % 4;
                    hb[0] |= (uint32_t)(lo >> 4) << (8 * k + 2 * w);
                    hb[1] |= (uint32_t)(hi >> 4) << (8 * k + 2 * w);
                }
                memcpy(out + 128 + 16 * (j / 2) + 8 * (j % 2), hb, 8);
            }
            memcpy(out + 192, sc, 16);
        }
        break;
    }
}

void vk_repack(int type, int file_type, const void *src, int64_t n_in, int64_t n_out, void *q,
               void *s, int64_t s_first) {
    int64_t ku = (n_in + 31) / 32;
    size_t q_row, file_row = quant_row_bytes(file_type, n_in);
    int64_t s_row;
    row_geometry(type, ku, &q_row, &s_row);
    float *tmp = type != file_type ? malloc(sizeof(float) * (size_t)n_in) : NULL;
    if (type != file_type && !tmp) return;
    for (int64_t r = 0; r < n_out; r++)
        repack_row(type, file_type, (const uint8_t *)src + (size_t)r * file_row, n_in, ku,
                   (uint8_t *)q + (size_t)r * q_row, s, s_first + r * s_row, tmp);
    free(tmp);
}

int vk_matrix_upload(vk_ctx *c, vk_matrix *m, const zt_tensor *const *parts, int n_parts, int type,
                     zt_error *err) {
    memset(m, 0, sizeof *m);
    if (type != -1 && type != ZT_F16)
        return zt_fail(err, ZT_EINVAL, "vulkan: weights convert to f16 only");
    const zt_tensor *t0 = parts[0];
    m->type = type >= 0 ? type : vk_layout_of(t0->type);
    m->n_in = (int)t0->ne[0];
    m->ku = (m->n_in + 31) / 32;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i]->type != t0->type) m->type = ZT_F16; /* mixed types: one layout */
        if (parts[i]->ne[0] != t0->ne[0])
            return zt_fail(err, ZT_EFORMAT, "vulkan: %s and %s have different row lengths",
                           t0->name, parts[i]->name);
        m->n_out += (int)parts[i]->ne[1];
    }
    if ((m->type == ZT_Q4_K || m->type == ZT_Q6_K) && m->ku % 8)
        return zt_fail(err, ZT_EFORMAT, "vulkan: %s: rows of %d are not whole super-blocks",
                       t0->name, m->n_in);
    size_t q_bytes, s_bytes;
    vk_matrix_bytes(m->type, m->n_in, m->n_out, &q_bytes, &s_bytes);
    uint8_t *q = malloc(q_bytes ? q_bytes : 1), *s = calloc(s_bytes ? s_bytes : 1, 1);
    int rc = ZT_OK;
    if (!q || !s) {
        rc = zt_fail(err, ZT_ENOMEM, "vulkan: out of host memory repacking %s", t0->name);
        goto done;
    }
    size_t q_row;
    int64_t s_row, row = 0;
    row_geometry(m->type, m->ku, &q_row, &s_row);
    for (int i = 0; i < n_parts; i++) {
        vk_repack(m->type, parts[i]->type, parts[i]->data, m->n_in, parts[i]->ne[1],
                  q + (size_t)row * q_row, s, row * s_row);
        row += parts[i]->ne[1];
    }
    if ((rc = vk_buf_create(c, &m->q, q_bytes, VK_MEM_DEVICE, t0->name, err)) ||
        (rc = vk_write(c, &m->q, 0, q, q_bytes, err)))
        goto done;
    if (s_bytes && ((rc = vk_buf_create(c, &m->s, s_bytes, VK_MEM_DEVICE, t0->name, err)) ||
                    (rc = vk_write(c, &m->s, 0, s, s_bytes, err))))
        goto done;
done:
    free(q);
    free(s);
    if (rc) vk_matrix_free(c, m);
    return rc;
}

void vk_matrix_free(vk_ctx *c, vk_matrix *m) {
    vk_buf_free(c, &m->q);
    vk_buf_free(c, &m->s);
}

int vk_vector_upload(vk_ctx *c, vk_buf *b, const zt_tensor *const *parts, const int *lens,
                     int n_parts, int n_pad, zt_error *err) {
    float *v = calloc((size_t)n_pad, sizeof *v);
    if (!v) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int at = 0;
    for (int i = 0; i < n_parts; i++) {
        if (parts[i]) quant_dequant_row(parts[i]->type, parts[i]->data, v + at, lens[i]);
        at += lens[i];
    }
    int rc = vk_buf_create(c, b, sizeof(float) * (size_t)n_pad, VK_MEM_DEVICE, "vector", err);
    if (!rc) rc = vk_write(c, b, 0, v, sizeof(float) * (size_t)n_pad, err);
    free(v);
    return rc;
}
