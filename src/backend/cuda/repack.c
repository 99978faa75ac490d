/*
 * GGUF blocks -> the CUDA stream layout described in units.h. Each GGUF
 * element's integer code is read with the same formulas as the reference
 * dequantizers (src/quant) and written to its new place; nothing is
 * requantized, so dequantizing the streams gives the reference's floats.
 * Types without a device kernel (q4_1, q5_0, q2_K, ...) and F32 become F16
 * (BF16 if a value is out of the f16 range).
 */
#include "backend/cuda/repack.h"

#include "backend/cuda/units.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/f16.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int cuda_wtype_for(int type) {
    switch (type) {
    case ZT_Q4_0:
        return CW_Q4_0;
    case ZT_Q8_0:
        return CW_Q8_0;
    case ZT_Q4_K:
        return CW_Q4_K;
    case ZT_Q5_K:
        return CW_Q5_K;
    case ZT_Q6_K:
        return CW_Q6_K;
    case ZT_BF16:
        return CW_BF16;
    default:
        return CW_F16;
    }
}

void cuda_host_mat_free(cuda_host_mat *m) {
    if (!m) return;
    free(m->q), free(m->a1), free(m->a2), free(m->a3);
    memset(m, 0, sizeof *m);
}

/* ---- per-block codes (the reference dequantizers' formulas) ----------- */

/* q4_K / q5_K low 4 bits of element e of a super-block. */
static int k_nibble(const uint8_t *qs, int e) {
    uint8_t byte = qs[32 * (e / 64) + e % 32];
    return e % 64 < 32 ? byte & 0xf : byte >> 4;
}

/* q6_K code 0..63 (value + 32) of element e. */
static int q6_code(const block_q6_K *b, int e) {
    int h = e / 128, r = (e % 128) / 32, l = e % 32;
    uint8_t lowbyte = b->ql[64 * h + 32 * (r % 2) + l];
    int low = r < 2 ? lowbyte & 0xf : lowbyte >> 4;
    int high = b->qh[32 * h + l] >> (2 * r) & 3;
    return low | high << 4;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* ---- one row of each type --------------------------------------------- */

static void row_q4_0(const uint8_t *src, int nxb, uint8_t *q, uint8_t *a1) {
    for (int b = 0; b < nxb; b++) {
        block_q4_0 blk;
        memcpy(&blk, src + (size_t)b * sizeof blk, sizeof blk);
        memcpy(q + (size_t)b * 16, blk.qs, 16);
        put16(a1 + (size_t)b * 2, blk.d);
    }
}

static void row_q8_0(const uint8_t *src, int nxb, uint8_t *q, uint8_t *a1) {
    for (int b = 0; b < nxb; b++) {
        block_q8_0 blk;
        memcpy(&blk, src + (size_t)b * sizeof blk, sizeof blk);
        memcpy(q + (size_t)b * 32, blk.qs, 32);
        put16(a1 + (size_t)b * 2, blk.d);
    }
}

/* The 16-byte header of units.h from a q4_K/q5_K super-block. */
static void k_header(uint16_t d, uint16_t dmin, const uint8_t scales[12], uint8_t out[16]) {
    uint32_t w[4] = {(uint32_t)d | (uint32_t)dmin << 16, 0, 0, 0};
    for (int j = 0; j < 8; j++) {
        uint8_t sc, m;
        quant_k_scale_min(j, scales, &sc, &m);
        w[1 + j / 4] |= (uint32_t)((sc & 63) | (m & 3) << 6) << (8 * (j % 4));
        w[3] |= (uint32_t)((m >> 2) & 15) << (4 * j);
    }
    memcpy(out, w, 16);
}

static void row_q45_k(int type, const uint8_t *src, int nsb, uint8_t *q, uint8_t *a1, uint8_t *a2) {
    for (int s = 0; s < nsb; s++) {
        const uint8_t *qs, *qh = NULL;
        block_q4_K b4;
        block_q5_K b5;
        if (type == ZT_Q4_K) {
            memcpy(&b4, src + (size_t)s * sizeof b4, sizeof b4);
            k_header(b4.d, b4.dmin, b4.scales, a1 + (size_t)s * 16);
            qs = b4.qs;
        } else {
            memcpy(&b5, src + (size_t)s * sizeof b5, sizeof b5);
            k_header(b5.d, b5.dmin, b5.scales, a1 + (size_t)s * 16);
            qs = b5.qs;
            qh = b5.qh;
        }
        for (int j = 0; j < 8; j++) {
            uint8_t *u = q + ((size_t)s * 8 + j) * 16;
            uint32_t hbits = 0;
            for (int i = 0; i < 16; i++) {
                int e0 = 32 * j + i, e1 = e0 + 16;
                u[i] = (uint8_t)(k_nibble(qs, e0) | k_nibble(qs, e1) << 4);
            }
            if (qh) {
                for (int i = 0; i < 32; i++) {
                    int e = 32 * j + i, bit = qh[e % 32] >> (e / 32) & 1;
                    int h = i / 16, k = (i % 16) / 4, b = i % 4;
                    hbits |= (uint32_t)bit << (8 * b + 4 * h + k);
                }
                put32(a2 + ((size_t)s * 8 + j) * 4, hbits);
            }
        }
    }
}

static void row_q6_k(const uint8_t *src, int nsb, uint8_t *q, uint8_t *a1, uint8_t *a2,
                     uint8_t *a3) {
    for (int s = 0; s < nsb; s++) {
        block_q6_K b;
        memcpy(&b, src + (size_t)s * sizeof b, sizeof b);
        put16(a3 + (size_t)s * 2, b.d);
        for (int j = 0; j < 8; j++) {
            size_t xb = (size_t)s * 8 + j;
            uint8_t *u = q + xb * 16;
            uint32_t hw[2] = {0, 0};
            for (int i = 0; i < 32; i++) {
                int code = q6_code(&b, 32 * j + i);
                int h = i / 16, k = (i % 16) / 4, bb = i % 4;
                if (h == 0)
                    u[i] = (uint8_t)(code & 15);
                else
                    u[i - 16] |= (uint8_t)((code & 15) << 4);
                hw[h] |= (uint32_t)(code >> 4) << (8 * bb + 2 * k);
            }
            memcpy(a1 + xb * 8, hw, 8);
            a2[xb * 2] = (uint8_t)b.scales[2 * j];
            a2[xb * 2 + 1] = (uint8_t)b.scales[2 * j + 1];
        }
    }
}

/* ---- the tensor ------------------------------------------------------- */

int cuda_repack(const zt_tensor *t, int force_float, cuda_host_mat *out, zt_error *err) {
    memset(out, 0, sizeof *out);
    const zt_type_info *ti = quant_type_info(t->type);
    if (!ti || !ti->can_dequant)
        return zt_fail(err, ZT_EUNSUP, "cuda: %s: tensor type %d has no dequantizer", t->name,
                       t->type);
    if (t->ne[2] != 1 || t->ne[3] != 1)
        return zt_fail(err, ZT_EFORMAT, "cuda: %s: expected a matrix", t->name);
    int64_t n_in = t->ne[0], n_out = t->ne[1];
    if (n_in <= 0 || n_out <= 0 || n_in > (1 << 30) || n_out > (1 << 30))
        return zt_fail(err, ZT_EFORMAT, "cuda: %s: a %lld x %lld matrix", t->name, (long long)n_out,
                       (long long)n_in);
    /* the kernels read rows in 32-input blocks: shorter rows of the float
     * types are zero-padded (the quantized types' blocks are 32 or 256) */
    const int64_t n_pad = (n_in + 31) & ~(int64_t)31;
    if (n_pad != n_in && ti->block_elems != 1)
        return zt_fail(err, ZT_EUNSUP,
                       "cuda: %s: rows of %lld elements (the CUDA kernels need a multiple of 32)",
                       t->name, (long long)n_in);
    size_t src_row = quant_row_bytes(t->type, n_in);
    if (src_row * (size_t)n_out > t->nbytes)
        return zt_fail(err, ZT_EFORMAT, "cuda: %s: %zu bytes of data for %lld x %lld", t->name,
                       t->nbytes, (long long)n_out, (long long)n_in);
    int wt = force_float ? CW_F16 : cuda_wtype_for(t->type);
    float *tmp = NULL;
    if (wt == CW_F16 && t->type != ZT_F16) {
        /* converted types: F16 unless a value does not fit, then BF16 */
        if (!(tmp = malloc(sizeof(float) * (size_t)n_in)))
            return zt_fail(err, ZT_ENOMEM, "cuda: out of memory repacking %s", t->name);
        for (int64_t r = 0; r < n_out && wt == CW_F16; r++) {
            quant_dequant_row(t->type, (const uint8_t *)t->data + (size_t)r * src_row, tmp, n_in);
            for (int64_t i = 0; i < n_in; i++)
                if (!(fabsf(tmp[i]) < 65504.0f) && !isnan(tmp[i])) {
                    wt = CW_BF16;
                    break;
                }
        }
    }
    int nxb = (int)(n_in / 32), nsb = (int)(n_in / 256);
    out->wt = wt;
    out->n_in = (int)n_pad;
    out->n_out = (int)n_out;
    out->q_bytes = (size_t)n_out * cu_units_per_row(wt, (int)n_pad) * 16;
    switch (wt) {
    case CW_Q4_0:
    case CW_Q8_0:
        out->a1_bytes = (size_t)n_out * nxb * 2;
        break;
    case CW_Q4_K:
        out->a1_bytes = (size_t)n_out * nsb * 16;
        break;
    case CW_Q5_K:
        out->a1_bytes = (size_t)n_out * nsb * 16;
        out->a2_bytes = (size_t)n_out * nxb * 4;
        break;
    case CW_Q6_K:
        out->a1_bytes = (size_t)n_out * nxb * 8;
        out->a2_bytes = (size_t)n_out * nxb * 2;
        out->a3_bytes = (size_t)n_out * nsb * 2;
        break;
    default:
        break;
    }
    out->q = calloc(1, out->q_bytes); /* zero: the pad of short rows */
    if (out->a1_bytes) out->a1 = malloc(out->a1_bytes);
    if (out->a2_bytes) out->a2 = malloc(out->a2_bytes);
    if (out->a3_bytes) out->a3 = malloc(out->a3_bytes);
    if (!out->q || (out->a1_bytes && !out->a1) || (out->a2_bytes && !out->a2) ||
        (out->a3_bytes && !out->a3) ||
        (wt == CW_BF16 && !tmp && t->type != ZT_BF16 &&
         !(tmp = malloc(sizeof(float) * (size_t)n_in)))) {
        free(tmp);
        cuda_host_mat_free(out);
        return zt_fail(err, ZT_ENOMEM, "cuda: out of memory repacking %s", t->name);
    }
    size_t qrow = out->q_bytes / (size_t)n_out;
    for (int64_t r = 0; r < n_out; r++) {
        const uint8_t *src = (const uint8_t *)t->data + (size_t)r * src_row;
        uint8_t *q = out->q + (size_t)r * qrow;
        switch (wt) {
        case CW_Q4_0:
            row_q4_0(src, nxb, q, out->a1 + (size_t)r * nxb * 2);
            break;
        case CW_Q8_0:
            row_q8_0(src, nxb, q, out->a1 + (size_t)r * nxb * 2);
            break;
        case CW_Q4_K:
        case CW_Q5_K:
            row_q45_k(t->type, src, nsb, q, out->a1 + (size_t)r * nsb * 16,
                      out->a2 ? out->a2 + (size_t)r * nxb * 4 : NULL);
            break;
        case CW_Q6_K:
            row_q6_k(src, nsb, q, out->a1 + (size_t)r * nxb * 8, out->a2 + (size_t)r * nxb * 2,
                     out->a3 + (size_t)r * nsb * 2);
            break;
        default:
            if ((wt == CW_F16 && t->type == ZT_F16) || (wt == CW_BF16 && t->type == ZT_BF16)) {
                memcpy(q, src, (size_t)n_in * 2);
            } else {
                uint16_t *h = (uint16_t *)q;
                quant_dequant_row(t->type, src, tmp, n_in);
                for (int64_t i = 0; i < n_in; i++)
                    h[i] = wt == CW_F16 ? zt_f32_to_f16(tmp[i]) : zt_f32_to_bf16(tmp[i]);
            }
        }
    }
    free(tmp);
    return ZT_OK;
}
