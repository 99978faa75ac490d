/*
 * The CPU matmul: y[r][o] = sum_i W[o][i] x[r][i] for f32 activation rows x
 * and weights in any block format. This file holds the parts every ISA
 * shares: the weight repack (layouts in matmul_impl.h), the activation
 * quantization, the work split over the thread pool, the portable scalar
 * kernels (the semantics the SIMD kernels reproduce) and the generic path
 * for block types without a repacked layout.
 *
 * Method (as llama.cpp does it): the activation rows are quantized once per
 * call to int8 with one scale per 32 inputs, and each kernel takes integer
 * dot products of weight codes with them, then applies the two scales in
 * f32. The integer part is exact, so scalar and SIMD kernels agree to the
 * last bit whenever they apply the f32 scales in the same order (they do;
 * the tests check it). F32/F16/BF16 weights use the f32 activations as
 * they are.
 *
 * Work split: output panels (16 rows of W) are divided among the threads,
 * so each thread streams its part of W once per chunk of activation rows;
 * with one chunk (decode, small batches) the threads take runs of panels
 * from a shared counter, so one slowed by the memory system or the OS is
 * not left holding a fixed half. Activation rows are processed in chunks of
 * about CPU_ACT_CHUNK_BYTES of quantized data, which stay in L2 while a
 * thread sweeps its panels; each weight panel is used for every row of
 * the chunk while it is in L1/L2. With fewer panels than threads the rows
 * are split instead. Decode (one row) is a pure weight stream; prefill is
 * compute-bound, and where AMX exists larger batches go to matmul_amx.c, which
 * has its own split.
 *
 * Bytes moved per call: the weights once per chunk (decode: once), the
 * activations once per thread, y once.
 */
#include "backend/cpu/kernels.h"
#include "backend/cpu/matmul_impl.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/f16.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Quantized activation bytes per chunk of rows (fits L2 beside a panel). */
#define CPU_ACT_CHUNK_BYTES (1536 * 1024)
/* Rows of a chunk (and of a thread's share, when the threads split rows)
 * are a multiple of this. */
#define CPU_ROW_TILE 16
/* Up to this many activation elements the caller's thread quantizes them
 * once, before waking the pool; above, each thread quantizes the rows it
 * needs (see mm_worker). */
#define CPU_QUANT_INLINE_MAX 16384

const cpu_wformat cpu_wformats[CPU_W_COUNT] = {
    [CPU_W_F32] = {1, 64, 0},      [CPU_W_F16] = {1, 32, 0},      [CPU_W_BF16] = {1, 32, 0},
    [CPU_W_Q8_0] = {32, 544, 1},   [CPU_W_Q4_0] = {32, 288, 1},   [CPU_W_Q4_K] = {256, 2304, 1},
    [CPU_W_Q5_K] = {256, 2816, 1}, [CPU_W_Q6_K] = {256, 3360, 1}, [CPU_W_GENERIC] = {1, 0, 0},
};

int cpu_wkind_of(int type) {
    switch (type) {
    case ZT_F32:
        return CPU_W_F32;
    case ZT_F16:
        return CPU_W_F16;
    case ZT_BF16:
        return CPU_W_BF16;
    case ZT_Q8_0:
        return CPU_W_Q8_0;
    case ZT_Q4_0:
        return CPU_W_Q4_0;
    case ZT_Q4_K:
        return CPU_W_Q4_K;
    case ZT_Q5_K:
        return CPU_W_Q5_K;
    case ZT_Q6_K:
        return CPU_W_Q6_K;
    default:
        return CPU_W_GENERIC;
    }
}

static inline uint16_t rd16(const uint8_t *p) {
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}

/* ---- repack ------------------------------------------------------------ */

/* Row o of the source matrix, or NULL past n_out (the panel's zero rows). */
static const uint8_t *src_row(const cpu_matrix *m, const uint8_t *src, size_t row_bytes,
                              int64_t o) {
    return o < m->n_out ? src + (size_t)o * row_bytes : NULL;
}

/* Float kinds: panel block = one input, 16 rows side by side. */
static void repack_float(const cpu_matrix *m, const uint8_t *src, uint8_t *dst, int elem) {
    size_t row_bytes = (size_t)m->n_in * elem;
    int64_t n_panels = (m->n_out + CPU_NR - 1) / CPU_NR;
    for (int64_t p = 0; p < n_panels; p++) {
        uint8_t *panel = dst + (size_t)p * m->n_in * CPU_NR * elem;
        for (int o = 0; o < CPU_NR; o++) {
            const uint8_t *row = src_row(m, src, row_bytes, p * CPU_NR + o);
            for (int64_t i = 0; i < m->n_in; i++) {
                uint8_t *out = panel + ((size_t)i * CPU_NR + o) * elem;
                if (row)
                    memcpy(out, row + (size_t)i * elem, elem);
                else
                    memset(out, 0, elem);
            }
        }
    }
}

/* Block kinds: fill one panel block from the 16 rows' file blocks (NULL
 * for a padding row). */
static void pack_q8_0(uint8_t *pb, const uint8_t *const blk[CPU_NR]) {
    for (int o = 0; o < CPU_NR; o++) {
        const uint8_t *b = blk[o]; /* block_q8_0: d, qs[32] */
        uint16_t d = b ? rd16(b) : 0;
        memcpy(pb + 2 * o, &d, 2);
        for (int g = 0; g < 8; g++)
            for (int j = 0; j < 4; j++)
                pb[32 + g * 64 + 4 * o + j] = b ? (uint8_t)(b[2 + 4 * g + j] ^ 0x80) : 0x80;
    }
}

static void pack_q4_0(uint8_t *pb, const uint8_t *const blk[CPU_NR]) {
    for (int o = 0; o < CPU_NR; o++) {
        const uint8_t *b = blk[o]; /* block_q4_0: d, qs[16] */
        uint16_t d = b ? rd16(b) : 0;
        memcpy(pb + 2 * o, &d, 2);
        for (int v = 0; v < 4; v++) {
            if (b)
                memcpy(pb + 32 + v * 64 + 4 * o, b + 2 + 4 * v, 4);
            else
                memset(pb + 32 + v * 64 + 4 * o, 0x88, 4);
        }
    }
}

/* Q4_K and Q5_K (with_qh): the scale bytes as 12 planes, nibbles and fifth
 * bits gathered 4 bytes at a time. */
static void pack_q45_k(uint8_t *pb, const uint8_t *const blk[CPU_NR], int with_qh) {
    for (int o = 0; o < CPU_NR; o++) {
        const uint8_t *b = blk[o]; /* d, dmin, scales[12], (qh[32]), qs[128] */
        uint16_t d = b ? rd16(b) : 0, dmin = b ? rd16(b + 2) : 0;
        memcpy(pb + 2 * o, &d, 2);
        memcpy(pb + 32 + 2 * o, &dmin, 2);
        for (int i = 0; i < 12; i++) pb[CPU_QK_PLANES + 16 * i + o] = b ? b[4 + i] : 0;
        const uint8_t *qs = b ? b + 16 + (with_qh ? 32 : 0) : NULL;
        for (int c = 0; c < 4; c++)
            for (int v = 0; v < 8; v++) {
                uint8_t *out = pb + CPU_QK_QS + (c * 8 + v) * 64 + 4 * o;
                if (qs)
                    memcpy(out, qs + 32 * c + 4 * v, 4);
                else
                    memset(out, 0, 4);
            }
        if (with_qh)
            for (int v = 0; v < 8; v++) {
                uint8_t *out = pb + CPU_QK_QH + v * 64 + 4 * o;
                if (b)
                    memcpy(out, b + 16 + 4 * v, 4);
                else
                    memset(out, 0, 4);
            }
    }
}

static void pack_q6_k(uint8_t *pb, const uint8_t *const blk[CPU_NR]) {
    for (int o = 0; o < CPU_NR; o++) {
        const uint8_t *b = blk[o]; /* ql[128], qh[64], scales[16], d */
        uint16_t d = b ? rd16(b + 208) : 0;
        memcpy(pb + 2 * o, &d, 2);
        for (int g = 0; g < 16; g++) pb[32 + g * 16 + o] = b ? b[192 + g] : 0;
        for (int v = 0; v < 32; v++) {
            uint8_t *out = pb + 288 + v * 64 + 4 * o;
            if (b)
                memcpy(out, b + 4 * v, 4);
            else
                memset(out, 0, 4);
        }
        for (int u = 0; u < 16; u++) {
            uint8_t *out = pb + 2336 + u * 64 + 4 * o;
            if (b)
                memcpy(out, b + 128 + 4 * u, 4);
            else
                memset(out, 0, 4);
        }
    }
}

static void repack_blocks(const cpu_matrix *m, int kind, const uint8_t *src, uint8_t *dst,
                          int block_bytes) {
    const cpu_wformat *f = &cpu_wformats[kind];
    int64_t nb = m->n_in / f->kb;
    size_t row_bytes = (size_t)nb * block_bytes;
    int64_t n_panels = (m->n_out + CPU_NR - 1) / CPU_NR;
    for (int64_t p = 0; p < n_panels; p++) {
        const uint8_t *rows[CPU_NR];
        for (int o = 0; o < CPU_NR; o++) rows[o] = src_row(m, src, row_bytes, p * CPU_NR + o);
        for (int64_t b = 0; b < nb; b++) {
            const uint8_t *blk[CPU_NR];
            for (int o = 0; o < CPU_NR; o++) blk[o] = rows[o] ? rows[o] + b * block_bytes : NULL;
            uint8_t *pb = dst + ((size_t)p * nb + b) * f->pb;
            switch (kind) {
            case CPU_W_Q8_0:
                pack_q8_0(pb, blk);
                break;
            case CPU_W_Q4_0:
                pack_q4_0(pb, blk);
                break;
            case CPU_W_Q4_K:
                pack_q45_k(pb, blk, 0);
                break;
            case CPU_W_Q5_K:
                pack_q45_k(pb, blk, 1);
                break;
            case CPU_W_Q6_K:
                pack_q6_k(pb, blk);
                break;
            }
        }
    }
}

/* Repacked weights: 2 MB aligned and, where the kernel offers it, backed
 * by transparent huge pages, because decode streams gigabytes of them and
 * 4 KB pages would cost a TLB miss every 4 KB. */
static uint8_t *weights_alloc(size_t bytes) {
    const size_t huge = (size_t)2 << 20;
    if (bytes < huge) return aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    size_t size = (bytes + huge - 1) & ~(huge - 1);
    uint8_t *p = aligned_alloc(huge, size);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, size, MADV_HUGEPAGE); /* advice only: failure is fine */
#endif
    return p;
}

int cpu_matrix_init(cpu_matrix *mat, const zt_tensor *t, zt_error *err) {
    memset(mat, 0, sizeof *mat);
    if (!t) return zt_fail(err, ZT_EINVAL, "matmul weight: no tensor");
    const zt_type_info *info = quant_type_info(t->type);
    if (!info || !info->can_dequant)
        return zt_fail(err, ZT_EUNSUP, "%s: weight type %d cannot be used by the CPU matmul",
                       t->name, t->type);
    if (t->n_dims < 1 || t->n_dims > ZT_MAX_DIMS)
        return zt_fail(err, ZT_EINVAL, "%s: %d dimensions", t->name, t->n_dims);
    for (int i = 2; i < t->n_dims; i++)
        if (t->ne[i] != 1)
            return zt_fail(err, ZT_EINVAL, "%s: a matmul weight must be 2-D, dim %d is %lld",
                           t->name, i, (long long)t->ne[i]);
    int64_t n_in = t->ne[0], n_out = t->n_dims >= 2 ? t->ne[1] : 1;
    if (n_in <= 0 || n_out <= 0 || n_in > ((int64_t)1 << 30) || n_out > ((int64_t)1 << 30))
        return zt_fail(err, ZT_EINVAL, "%s: bad matmul shape [%lld x %lld]", t->name,
                       (long long)n_out, (long long)n_in);
    size_t row_bytes = quant_row_bytes(t->type, n_in);
    if (row_bytes == 0)
        return zt_fail(err, ZT_EINVAL, "%s: row length %lld is not a multiple of the %s block (%d)",
                       t->name, (long long)n_in, info->name, info->block_elems);
    if (!t->data || t->nbytes < row_bytes * (size_t)n_out)
        return zt_fail(err, ZT_EFORMAT, "%s: %zu bytes of data, [%lld x %lld] %s needs %zu",
                       t->name, t->data ? t->nbytes : 0, (long long)n_out, (long long)n_in,
                       info->name, row_bytes * (size_t)n_out);
    int kind = cpu_wkind_of(t->type);
    const cpu_wformat *f = &cpu_wformats[kind];
    if (kind != CPU_W_GENERIC && n_in % f->kb != 0) kind = CPU_W_GENERIC;
    mat->type = t->type;
    mat->n_in = n_in;
    mat->n_out = n_out;
    if (kind == CPU_W_GENERIC) {
        mat->data = t->data;
        return ZT_OK;
    }
    f = &cpu_wformats[kind];
    int64_t n_panels = (n_out + CPU_NR - 1) / CPU_NR;
    size_t bytes = (size_t)n_panels * (size_t)(n_in / f->kb) * (size_t)f->pb;
    uint8_t *dst = weights_alloc(bytes);
    if (!dst)
        return zt_fail(err, ZT_ENOMEM, "%s: cannot allocate %zu bytes for the repacked weights",
                       t->name, bytes);
    if (kind == CPU_W_F32)
        repack_float(mat, t->data, dst, 4);
    else if (kind == CPU_W_F16 || kind == CPU_W_BF16)
        repack_float(mat, t->data, dst, 2);
    else
        repack_blocks(mat, kind, t->data, dst, info->block_bytes);
    mat->data = dst;
    mat->owned = dst;
    return ZT_OK;
}

void cpu_matrix_free(cpu_matrix *mat) {
    if (!mat) return;
    free(mat->owned);
    memset(mat, 0, sizeof *mat);
}

/* ---- activation quantization -------------------------------------------- */

static inline int8_t round_code(float v) {
    float r = nearbyintf(v);
    if (!(r >= -127.0f)) return -127; /* also NaN */
    if (r > 127.0f) return 127;
    return (int8_t)r;
}

void cpu_quantize_row_scalar(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + 32 * b;
        float amax = 0.0f;
        for (int i = 0; i < 32; i++) amax = fmaxf(amax, fabsf(xb[i]));
        float db = amax / 127.0f, id = db != 0.0f ? 1.0f / db : 0.0f;
        d[b] = db;
        for (int h = 0; h < 2; h++) {
            int32_t s = 0;
            for (int i = 16 * h; i < 16 * h + 16; i++) {
                q[32 * b + i] = round_code(xb[i] * id);
                s += q[32 * b + i];
            }
            sum16[2 * b + h] = s;
        }
    }
}

/* Quantizes rows [r0, r1) of x into act (row i of act = row i of x) and
 * turns the per-16 sums into the per-kind aux words. */
static void quantize_rows(const cpu_act *a, int kind, int isa, int r0, int r1) {
    for (int r = r0; r < r1; r++) {
        const float *x = a->x + (int64_t)r * a->n_in;
        int8_t *q = a->q + (int64_t)r * a->ld_q;
        float *d = a->d + (int64_t)r * a->ld_d;
        int32_t *aux = a->aux + (int64_t)r * a->ld_aux;
        switch (isa) {
#ifdef CPU_HAVE_AVX512
        case CPU_ISA_AVX512:
            cpu_quantize_row_avx512(x, a->n_in, q, d, aux);
            break;
#endif
#ifdef CPU_HAVE_AVX2
        case CPU_ISA_AVX2:
            cpu_quantize_row_avx2(x, a->n_in, q, d, aux);
            break;
#endif
        default:
            cpu_quantize_row_scalar(x, a->n_in, q, d, aux);
            break;
        }
        int64_t n32 = a->n_in / 32, n16 = a->n_in / 16;
        float *auxf = (float *)(void *)aux;
        switch (kind) {
        case CPU_W_Q4_0:
            for (int64_t b = 0; b < n32; b++) aux[b] = -8 * (aux[2 * b] + aux[2 * b + 1]);
            break;
        case CPU_W_Q8_0:
            for (int64_t b = 0; b < n32; b++) aux[b] = -128 * (aux[2 * b] + aux[2 * b + 1]);
            break;
        case CPU_W_Q4_K:
        case CPU_W_Q5_K:
            for (int64_t b = 0; b < n32; b++) auxf[b] = d[b] * (float)(aux[2 * b] + aux[2 * b + 1]);
            break;
        case CPU_W_Q6_K:
            for (int64_t g = 0; g < n16; g++) aux[g] *= -32;
            break;
        }
    }
}

/* ---- scalar kernels ------------------------------------------------------ */

static void store_row(float *y, const float *acc, int n_valid) {
    for (int o = 0; o < n_valid; o++) y[o] = acc[o];
}

static void scalar_float(const cpu_rect *j, const uint8_t *panel, int r, float *acc) {
    const float *x = j->act->x + (int64_t)r * j->act->n_in;
    for (int64_t i = 0; i < j->act->n_in; i++) {
        const uint8_t *w = panel + (size_t)i * CPU_NR * (j->kind == CPU_W_F32 ? 4 : 2);
        for (int o = 0; o < CPU_NR; o++) {
            float wf;
            if (j->kind == CPU_W_F32)
                memcpy(&wf, w + 4 * o, 4);
            else if (j->kind == CPU_W_F16)
                wf = zt_f16_to_f32(rd16(w + 2 * o));
            else
                wf = zt_bf16_to_f32(rd16(w + 2 * o));
            acc[o] = fmaf(wf, x[i], acc[o]);
        }
    }
}

static void scalar_q8_0_q4_0(const cpu_rect *j, const uint8_t *panel, int r, float *acc) {
    const cpu_act *a = j->act;
    const int8_t *q = a->q + (int64_t)r * a->ld_q;
    const float *d = a->d + (int64_t)r * a->ld_d;
    const int32_t *aux = a->aux + (int64_t)r * a->ld_aux;
    int pb = cpu_wformats[j->kind].pb;
    for (int64_t b = 0; b < a->n_in / 32; b++) {
        const uint8_t *blk = panel + (size_t)b * pb;
        const int8_t *qb = q + 32 * b;
        for (int o = 0; o < CPU_NR; o++) {
            int32_t dot = aux[b];
            for (int jj = 0; jj < 4; jj++) {
                if (j->kind == CPU_W_Q8_0) {
                    for (int g = 0; g < 8; g++)
                        dot += blk[32 + g * 64 + 4 * o + jj] * qb[4 * g + jj];
                } else {
                    for (int v = 0; v < 4; v++) {
                        uint8_t byte = blk[32 + v * 64 + 4 * o + jj];
                        dot += (byte & 15) * qb[4 * v + jj] + (byte >> 4) * qb[16 + 4 * v + jj];
                    }
                }
            }
            float dw = zt_f16_to_f32(rd16(blk + 2 * o));
            acc[o] = fmaf((float)dot, dw * d[b], acc[o]);
        }
    }
}

static void scalar_q45_k(const cpu_rect *j, const uint8_t *panel, int r, float *acc) {
    const cpu_act *a = j->act;
    const int8_t *q = a->q + (int64_t)r * a->ld_q;
    const float *d = a->d + (int64_t)r * a->ld_d;
    const float *dsa = cpu_act_auxf(a, r);
    int q5 = j->kind == CPU_W_Q5_K;
    int pb = cpu_wformats[j->kind].pb;
    for (int64_t sb = 0; sb < a->n_in / 256; sb++) {
        const uint8_t *blk = panel + (size_t)sb * pb;
        const int8_t *qs = q + 256 * sb;
        for (int o = 0; o < CPU_NR; o++) {
            float dw = zt_f16_to_f32(rd16(blk + 2 * o));
            float dmin = zt_f16_to_f32(rd16(blk + 32 + 2 * o));
            uint8_t scales[12];
            for (int i = 0; i < 12; i++) scales[i] = blk[CPU_QK_PLANES + 16 * i + o];
            for (int s = 0; s < 8; s++) {
                int c = s / 2, hi = s & 1;
                int32_t dot = 0;
                for (int v = 0; v < 8; v++)
                    for (int jj = 0; jj < 4; jj++) {
                        uint8_t byte = blk[CPU_QK_QS + (c * 8 + v) * 64 + 4 * o + jj];
                        int code = hi ? byte >> 4 : byte & 15;
                        if (q5) code |= ((blk[CPU_QK_QH + v * 64 + 4 * o + jj] >> s) & 1) << 4;
                        dot += code * qs[64 * c + 32 * hi + 4 * v + jj];
                    }
                uint8_t scu, mnu;
                quant_k_scale_min(s, scales, &scu, &mnu);
                int64_t b = sb * 8 + s;
                float sc = dw * (float)scu, mn = dmin * (float)mnu;
                acc[o] = fmaf((float)dot, sc * d[b], acc[o]);
                acc[o] = fmaf(-mn, dsa[b], acc[o]);
            }
        }
    }
}

/* Q6_K groups of 16 are applied in the order the SIMD kernels finish them:
 * for each half n and each half h of a 32-input run, t = 0..3. */
static void scalar_q6_k(const cpu_rect *j, const uint8_t *panel, int r, float *acc) {
    const cpu_act *a = j->act;
    const int8_t *q = a->q + (int64_t)r * a->ld_q;
    const float *d = a->d + (int64_t)r * a->ld_d;
    const int32_t *aux = a->aux + (int64_t)r * a->ld_aux;
    for (int64_t sb = 0; sb < a->n_in / 256; sb++) {
        const uint8_t *blk = panel + (size_t)sb * 3360;
        const int8_t *qs = q + 256 * sb;
        for (int o = 0; o < CPU_NR; o++) {
            float dw = zt_f16_to_f32(rd16(blk + 2 * o));
            for (int n = 0; n < 2; n++)
                for (int h = 0; h < 2; h++)
                    for (int t = 0; t < 4; t++) {
                        int g16 = 8 * n + 2 * t + h;
                        int32_t dot = aux[sb * 16 + g16];
                        for (int l = 4 * h; l < 4 * h + 4; l++)
                            for (int jj = 0; jj < 4; jj++) {
                                uint8_t lo =
                                    blk[288 + (16 * n + 8 * (t & 1) + l) * 64 + 4 * o + jj];
                                uint8_t hb = blk[2336 + (8 * n + l) * 64 + 4 * o + jj];
                                int code = (t < 2 ? lo & 15 : lo >> 4) | ((hb >> (2 * t)) & 3) << 4;
                                dot += code * qs[128 * n + 32 * t + 4 * l + jj];
                            }
                        float sc = dw * (float)(int8_t)blk[32 + g16 * 16 + o];
                        acc[o] = fmaf((float)dot, sc * d[sb * 8 + g16 / 2], acc[o]);
                    }
        }
    }
}

int cpu_rect_scalar(const cpu_rect *j) {
    const cpu_wformat *f = &cpu_wformats[j->kind];
    size_t panel_bytes = (size_t)(j->w->n_in / f->kb) * f->pb;
    for (int64_t p = j->p0; p < j->p1; p++) {
        const uint8_t *panel = (const uint8_t *)j->w->data + (size_t)p * panel_bytes;
        int64_t left = j->w->n_out - p * CPU_NR;
        int n_valid = left < CPU_NR ? (int)left : CPU_NR;
        for (int r = j->r0; r < j->r1; r++) {
            float acc[CPU_NR] = {0};
            switch (j->kind) {
            case CPU_W_F32:
            case CPU_W_F16:
            case CPU_W_BF16:
                scalar_float(j, panel, r, acc);
                break;
            case CPU_W_Q8_0:
            case CPU_W_Q4_0:
                scalar_q8_0_q4_0(j, panel, r, acc);
                break;
            case CPU_W_Q4_K:
            case CPU_W_Q5_K:
                scalar_q45_k(j, panel, r, acc);
                break;
            case CPU_W_Q6_K:
                scalar_q6_k(j, panel, r, acc);
                break;
            default:
                return 0;
            }
            store_row(j->y + (int64_t)r * j->ld_y + p * CPU_NR, acc, n_valid);
        }
    }
    return 1;
}

/* ---- generic types: dequantize a row, f32 dot products ------------------- */

static float dot_f32(const float *a, const float *b, int64_t n) {
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int k = 0; k < 8; k++) s[k] = fmaf(a[i + k], b[i + k], s[k]);
    for (; i < n; i++) s[0] = fmaf(a[i], b[i], s[0]);
    return ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

/* Output rows [o0, o1) for activation rows [r0, r1); wrow holds n_in f32. */
static void generic_rows(const cpu_matrix *w, const float *x, int r0, int r1, float *y, int ld_y,
                         int64_t o0, int64_t o1, float *wrow) {
    size_t row_bytes = quant_row_bytes(w->type, w->n_in);
    for (int64_t o = o0; o < o1; o++) {
        quant_dequant_row(w->type, (const uint8_t *)w->data + (size_t)o * row_bytes, wrow, w->n_in);
        for (int r = r0; r < r1; r++)
            y[(int64_t)r * ld_y + o] = dot_f32(wrow, x + (int64_t)r * w->n_in, w->n_in);
    }
}

/* ---- ISA selection ------------------------------------------------------- */

int cpu_isa_usable(int isa) {
    switch (isa) {
    case CPU_ISA_SCALAR:
        return 1;
#ifdef CPU_HAVE_AVX2
    case CPU_ISA_AVX2:
        return 1;
#endif
#ifdef CPU_HAVE_AVX512
    case CPU_ISA_AVX512:
        return 1;
#endif
#ifdef CPU_HAVE_AMX
    case CPU_ISA_AMX:
        return cpu_amx_available();
#endif
    default:
        return 0;
    }
}

int cpu_best_isa(void) {
    for (int isa = CPU_ISA_COUNT - 1; isa > 0; isa--)
        if (cpu_isa_usable(isa)) return isa;
    return CPU_ISA_SCALAR;
}

static int rect_run(int isa, const cpu_rect *j) {
    switch (isa) {
#ifdef CPU_HAVE_AVX512
    case CPU_ISA_AVX512:
        return cpu_rect_avx512(j);
#endif
#ifdef CPU_HAVE_AVX2
    case CPU_ISA_AVX2:
        return cpu_rect_avx2(j);
#endif
    default:
        return cpu_rect_scalar(j);
    }
}

/* ---- the job ------------------------------------------------------------- */

typedef struct mm_job {
    const cpu_matrix *w;
    int kind, isa;
    const float *x; /* [n_rows][n_in] */
    float *y;       /* [n_rows][ld_y] */
    int ld_y, n_rows;
    int chunk_rows;          /* rows per chunk (all rows when one chunk) */
    int rows_alloc;          /* act rows per buffer (chunk_rows rounded up to a tile) */
    int quant_shared;        /* act was quantized once by the caller */
    atomic_llong next_panel; /* dynamic split: first panel not yet taken */
    cpu_act act;             /* shape and strides; buffers when quant_shared */
    size_t act_bytes;        /* of one act buffer */
    uint8_t *thread_mem;     /* nth x thread_bytes: [own act buffer] + kernel scratch */
    size_t thread_bytes;
} mm_job;

/* Share ith of n items in contiguous ranges. */
static void share(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

/* Points a's buffers into buf (act_bytes long). */
static void act_place(cpu_act *a, uint8_t *buf, int rows_alloc) {
    a->q = (int8_t *)buf;
    a->d = (float *)(void *)(buf + (size_t)a->ld_q * rows_alloc);
    a->aux = (int32_t *)(void *)((uint8_t *)a->d + 4 * (size_t)a->ld_d * rows_alloc);
}

/* Each thread takes a range of output panels (or, with fewer panels than
 * threads, of row tiles) and, unless the caller already did, quantizes the
 * activation rows it needs into its own buffer: with the panel split every
 * thread quantizes the whole chunk, which costs a few percent of a prefill
 * but needs no barrier, so a thread that the OS preempts delays nobody. */
static void mm_worker(void *ctx, int ith, int nth) {
    mm_job *job = ctx;
    const cpu_matrix *w = job->w;
    int64_t n_panels = (w->n_out + CPU_NR - 1) / CPU_NR;
    uint8_t *mine = job->thread_mem + (size_t)ith * job->thread_bytes;
    cpu_act act = job->act;
    void *scratch = mine;
    if (!job->quant_shared && cpu_wformats[job->kind].quant) {
        act_place(&act, mine, job->rows_alloc);
        scratch = mine + job->act_bytes;
    }
    for (int c0 = 0; c0 < job->n_rows; c0 += job->chunk_rows) {
        int rows = job->n_rows - c0 < job->chunk_rows ? job->n_rows - c0 : job->chunk_rows;
        act.x = job->x + (int64_t)c0 * w->n_in;
        float *y = job->y + (int64_t)c0 * job->ld_y;
        if (job->kind == CPU_W_GENERIC) {
            int64_t o0, o1;
            share(w->n_out, ith, nth, &o0, &o1);
            generic_rows(w, act.x, 0, rows, y, job->ld_y, o0, o1, scratch);
            continue;
        }
        cpu_rect rect = {.w = w, .kind = job->kind, .act = &act, .y = y, .ld_y = job->ld_y};
        if (job->chunk_rows >= job->n_rows && n_panels >= 4 * nth) {
            /* One chunk: threads take runs of panels as they finish, so a
             * thread slowed by the memory system (or the OS) is not left
             * with a fixed half. Runs stay long enough to stream well. */
            int64_t grain = n_panels / (8 * nth) > 0 ? n_panels / (8 * nth) : 1;
            rect.r0 = 0;
            rect.r1 = rows;
            if (!job->quant_shared && cpu_wformats[job->kind].quant)
                quantize_rows(&act, job->kind, job->isa, 0, rows);
            for (;;) {
                rect.p0 = atomic_fetch_add(&job->next_panel, grain);
                if (rect.p0 >= n_panels) break;
                rect.p1 = rect.p0 + grain < n_panels ? rect.p0 + grain : n_panels;
                rect_run(job->isa, &rect);
            }
            continue;
        }
        if (n_panels >= nth || rows < 2 * CPU_ROW_TILE) {
            share(n_panels, ith, nth, &rect.p0, &rect.p1);
            rect.r0 = 0;
            rect.r1 = rows;
        } else {
            int64_t t0, t1, tiles = (rows + CPU_ROW_TILE - 1) / CPU_ROW_TILE;
            share(tiles, ith, nth, &t0, &t1);
            rect.p0 = 0;
            rect.p1 = n_panels;
            rect.r0 = (int)(t0 * CPU_ROW_TILE);
            rect.r1 = (int)(t1 * CPU_ROW_TILE < rows ? t1 * CPU_ROW_TILE : rows);
        }
        if (rect.p0 >= rect.p1 || rect.r0 >= rect.r1) continue;
        if (!job->quant_shared && cpu_wformats[job->kind].quant)
            quantize_rows(&act, job->kind, job->isa, rect.r0, rect.r1);
        rect_run(job->isa, &rect);
    }
}

static size_t align64(size_t n) { return (n + 63) & ~(size_t)63; }

void cpu_matmul_isa(cpu_pool *pool, const cpu_matrix *w, const float *x, int n_rows, float *y,
                    int ld_y, int isa) {
    if (n_rows <= 0 || !w->data) return;
    int kind = cpu_wkind_of(w->type);
    if (kind != CPU_W_GENERIC && (!w->owned || w->n_in % cpu_wformats[kind].kb))
        kind = CPU_W_GENERIC;
    if (!cpu_isa_usable(isa)) isa = cpu_best_isa();
    const cpu_wformat *f = &cpu_wformats[kind];
#ifdef CPU_HAVE_AMX
    if (isa == CPU_ISA_AMX && f->quant && n_rows >= CPU_AMX_MIN_ROWS &&
        cpu_amx_matmul(pool, w, kind, x, n_rows, y, ld_y))
        return;
#endif
    if (isa == CPU_ISA_AMX) isa = CPU_ISA_AVX512;
    int nth = cpu_pool_size(pool);
    int64_t n_in = w->n_in;
    mm_job job = {.w = w,
                  .kind = kind,
                  .isa = isa,
                  .x = x,
                  .y = y,
                  .ld_y = ld_y,
                  .n_rows = n_rows,
                  .chunk_rows = n_rows};
    atomic_init(&job.next_panel, 0);
    cpu_act *a = &job.act;
    a->x = x;
    a->n_in = n_in;
    if (f->quant) {
        a->ld_q = (int64_t)align64((size_t)n_in);
        a->ld_d = (int64_t)align64((size_t)(n_in / 32) * 4) / 4;
        a->ld_aux = (int64_t)align64((size_t)(n_in / 16) * 4) / 4;
        size_t row_bytes = (size_t)a->ld_q + 4 * (size_t)(a->ld_d + a->ld_aux);
        size_t chunk_bytes = CPU_ACT_CHUNK_BYTES;
        int chunk = (int)(chunk_bytes / row_bytes) / CPU_ROW_TILE * CPU_ROW_TILE;
        if (chunk < CPU_ROW_TILE) chunk = CPU_ROW_TILE;
        if (chunk < n_rows) job.chunk_rows = chunk;
        job.rows_alloc = (job.chunk_rows + CPU_ROW_TILE - 1) / CPU_ROW_TILE * CPU_ROW_TILE;
        job.act_bytes = align64(row_bytes * (size_t)job.rows_alloc);
        job.quant_shared = (int64_t)n_rows * n_in <= CPU_QUANT_INLINE_MAX;
    }
    /* [shared act] then per thread [own act] [kernel scratch] */
    size_t shared_bytes = job.quant_shared ? job.act_bytes : 0;
    job.thread_bytes = align64(CPU_THREAD_SCRATCH(n_in));
    if (f->quant && !job.quant_shared) job.thread_bytes += job.act_bytes;
    size_t total = shared_bytes + job.thread_bytes * (size_t)nth;
    void *own = NULL;
    uint8_t *buf = pool ? cpu_pool_scratch(pool, total) : NULL;
    if (!buf) buf = own = aligned_alloc(64, align64(total));
    if (!buf) {
        /* No memory for scratch: say so loudly in the output rather than
         * leave stale values (cpu_matmul has no error return). */
        for (int r = 0; r < n_rows; r++)
            for (int64_t o = 0; o < w->n_out; o++) y[(int64_t)r * ld_y + o] = NAN;
        return;
    }
    if (job.quant_shared) {
        act_place(a, buf, job.rows_alloc);
        quantize_rows(a, kind, isa, 0, n_rows);
    }
    job.thread_mem = buf + shared_bytes;
    cpu_pool_run(pool, mm_worker, &job);
    free(own);
}

void cpu_matmul(cpu_pool *pool, const cpu_matrix *w, const float *x, int n_rows, float *y,
                int ld_y) {
    cpu_matmul_isa(pool, w, x, n_rows, y, ld_y, cpu_best_isa());
}
