/*
 * AMX prefill kernel (Sapphire Rapids and later): bf16 tile products with
 * f32 accumulation, for CPU_AMX_MIN_ROWS or more activation rows of any
 * repacked quantized type.
 *
 * Why bf16 and not int8: the block formats scale every 32 (or 16) inputs,
 * so an int8 tile product must be stored and rescaled in AVX-512 after
 * every block; in a tile-loop microbenchmark on Sapphire Rapids that
 * epilogue capped the int8 path near 260 GMAC/s per core. In bf16 the
 * scales are applied once, when a panel is dequantized, and the tiles
 * accumulate in f32 across the input: the same microbenchmark ran
 * 550-650 GMAC/s per core with both operands in L2, 90 GMAC/s with the
 * activations in L3 (hence the slicing below). The cost is precision:
 * weights and activations are rounded to bf16 (8-bit mantissa, relative
 * error at most 2^-9 each), less than the int8 activation rounding of the
 * other paths.
 *
 * Mapping, per chunk of up to CPU_AMX_CHUNK_ROWS activation rows:
 *  1. the threads convert the rows to bf16 in the A-tile layout (per 16
 *     rows and 32 inputs, 1 KB contiguous), each a share of the row
 *     tiles, and meet at one barrier;
 *  2. each thread takes a range of output panels (16 rows of W) and walks
 *     the input in slices of kc inputs (the slice of every activation row
 *     stays in L2: rows x kc x 2 bytes <= CPU_AMX_SLICE_BYTES); for each
 *     pair of its panels it dequantizes the slice to bf16 in the B-tile
 *     layout (per 32 inputs: 16 input pairs x 16 outputs x 2, 1 KB), then
 *     sweeps the rows 32 at a time: tiles 0-3 accumulate (2 row tiles) x
 *     (2 panels), 4-5 hold activations, 6-7 weights, and per 32 inputs 4
 *     tile loads feed 4 TDPBF16PS. Between slices the accumulators wait in
 *     a per-thread f32 buffer (the thread's panels are taken in blocks of
 *     CPU_AMX_PANEL_BLOCK to bound it); after the last slice they go to y.
 * So every weight is dequantized exactly once per chunk, and both tile
 * operands come from L1/L2.
 */
#include "backend/cpu/matmul_impl.h"

#ifdef CPU_HAVE_AMX

#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA  18

static int amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

/* Linux hands out the 8 KB tile state only on request. */
static void amx_request(void) {
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

int cpu_amx_available(void) {
    pthread_once(&amx_once, amx_request);
    return amx_ok;
}

typedef struct amx_tilecfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_tilecfg;

/* Every tile: 16 rows x 64 bytes (C: 16 x 16 f32; A: 16 rows x 32 bf16;
 * B: 16 input pairs x 16 outputs x 2 bf16). */
static void amx_configure(void) {
    amx_tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
}

/* ---- activations: f32 rows -> bf16 A tiles ------------------------------------- */

/* Interleaves 16 + 16 bf16 (a0..a15, b0..b15) into pairs a0 b0 a1 b1 ... */
static inline __m512i pair_bf16(__m512 a, __m512 b) {
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24,
                                         8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    return _mm512_permutexvar_epi16(idx, (__m512i)_mm512_cvtne2ps_pbh(b, a));
}

/* Rows [r0, r1) of x (row stride n_in) into bf16 A tiles at act (tile
 * stride 32 n_in bytes); rows past n_rows of the last tile become zero. */
static void prepare_rows(const float *x, int64_t n_in, int n_rows, int r0, int r1, uint8_t *act) {
    int64_t steps = n_in / 32;
    for (int r = r0; r < r1; r++) {
        uint8_t *tile_row = act + (int64_t)(r / 16) * 32 * n_in + 64 * (r % 16);
        if (r >= n_rows) {
            for (int64_t s = 0; s < steps; s++)
                _mm512_store_si512((void *)(tile_row + 1024 * s), _mm512_setzero_si512());
            continue;
        }
        const float *xr = x + (int64_t)r * n_in;
        for (int64_t s = 0; s < steps; s++) {
            __m512 lo = _mm512_loadu_ps(xr + 32 * s), hi = _mm512_loadu_ps(xr + 32 * s + 16);
            _mm512_store_si512((void *)(tile_row + 1024 * s), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
        }
    }
}

/* ---- weights: one panel -> bf16 B tiles --------------------------------------------- */

static inline __m512 f16x16(const uint8_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)p));
}
static inline __m512 u8_to_ps(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
static inline __m512 i8x16(const uint8_t *p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)));
}
static inline __m512i v64(const uint8_t *p) { return _mm512_loadu_si512((const void *)p); }

/* One 4-input group: 16 outputs x 4 signed int8 codes (byte 4o + j) to
 * w = scale * code + bias, as two B rows (inputs 4G, 4G+1 and 4G+2, 4G+3). */
static inline void emit_group(uint8_t *out, __m512i codes, __m512 scale, __m512 bias) {
    __m512 w0 = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(codes, 24), 24)), scale, bias);
    __m512 w1 = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(codes, 16), 24)), scale, bias);
    __m512 w2 = _mm512_fmadd_ps(
        _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(codes, 8), 24)), scale, bias);
    __m512 w3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(codes, 24)), scale, bias);
    _mm512_store_si512((void *)out, pair_bf16(w0, w1));
    _mm512_store_si512((void *)(out + 64), pair_bf16(w2, w3));
}

/* Dequantizes inputs [k0, k1) of one panel (multiples of 256); input group
 * G (inputs 4G .. 4G + 3) lands at out + 128 (G - k0 / 4). */
static void unpack_panel(int kind, const uint8_t *panel, int64_t k0, int64_t k1, uint8_t *out) {
    const __m512i m4 = _mm512_set1_epi8(0x0f), m30 = _mm512_set1_epi8(0x30),
                  m10 = _mm512_set1_epi8(0x10);
    const __m512i b8 = _mm512_set1_epi8(8), b32 = _mm512_set1_epi8(32),
                  sign = _mm512_set1_epi8((char)0x80);
    const __m512 zero = _mm512_setzero_ps();
    switch (kind) {
    case CPU_W_Q4_0:
        for (int64_t b = k0 / 32; b < k1 / 32; b++) {
            const uint8_t *pb = panel + b * 288;
            uint8_t *ob = out + (b - k0 / 32) * 1024;
            __m512 d = f16x16(pb);
            for (int v = 0; v < 4; v++) {
                __m512i p = v64(pb + 32 + 64 * v);
                emit_group(ob + 128 * v, _mm512_sub_epi8(_mm512_and_si512(p, m4), b8), d, zero);
                emit_group(ob + 128 * (v + 4),
                           _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(p, 4), m4), b8), d,
                           zero);
            }
        }
        break;
    case CPU_W_Q8_0:
        for (int64_t b = k0 / 32; b < k1 / 32; b++) {
            const uint8_t *pb = panel + b * 544;
            __m512 d = f16x16(pb);
            for (int g = 0; g < 8; g++)
                emit_group(out + (b - k0 / 32) * 1024 + 128 * g,
                           _mm512_xor_si512(v64(pb + 32 + 64 * g), sign), d, zero);
        }
        break;
    case CPU_W_Q4_K:
    case CPU_W_Q5_K: {
        int q5 = kind == CPU_W_Q5_K, pbytes = q5 ? 2816 : 2304;
        for (int64_t sb = k0 / 256; sb < k1 / 256; sb++) {
            const uint8_t *pb = panel + sb * pbytes;
            uint8_t *osb = out + (sb - k0 / 256) * 8192;
            __m512 dw = f16x16(pb), dmin = f16x16(pb + 32);
            for (int c = 0; c < 4; c++) {
                int s0 = 2 * c, s1 = 2 * c + 1;
                __m128i scu0, mnu0, scu1, mnu1;
                cpu_k_scale_min16(pb + CPU_QK_PLANES, s0, &scu0, &mnu0);
                cpu_k_scale_min16(pb + CPU_QK_PLANES, s1, &scu1, &mnu1);
                __m512 sc0 = _mm512_mul_ps(dw, u8_to_ps(scu0)),
                       sc1 = _mm512_mul_ps(dw, u8_to_ps(scu1));
                __m512 mn0 = _mm512_sub_ps(zero, _mm512_mul_ps(dmin, u8_to_ps(mnu0)));
                __m512 mn1 = _mm512_sub_ps(zero, _mm512_mul_ps(dmin, u8_to_ps(mnu1)));
                uint8_t *o0 = osb + s0 * 1024, *o1 = osb + s1 * 1024;
                for (int v = 0; v < 8; v++) {
                    __m512i p = v64(pb + CPU_QK_QS + (c * 8 + v) * 64);
                    __m512i lo = _mm512_and_si512(p, m4),
                            hi = _mm512_and_si512(_mm512_srli_epi16(p, 4), m4);
                    if (q5) {
                        /* fifth bits: bit 2c (low) and 2c + 1 (high) of qh */
                        __m512i h = _mm512_srl_epi16(v64(pb + CPU_QK_QH + v * 64),
                                                     _mm_cvtsi32_si128(2 * c));
                        lo = _mm512_ternarylogic_epi32(lo, _mm512_slli_epi16(h, 4), m10, 0xf8);
                        hi = _mm512_ternarylogic_epi32(hi, _mm512_slli_epi16(h, 3), m10, 0xf8);
                    }
                    emit_group(o0 + 128 * v, lo, sc0, mn0);
                    emit_group(o1 + 128 * v, hi, sc1, mn1);
                }
            }
        }
        break;
    }
    case CPU_W_Q6_K:
        for (int64_t sb = k0 / 256; sb < k1 / 256; sb++) {
            const uint8_t *pb = panel + sb * 3360;
            uint8_t *osb = out + (sb - k0 / 256) * 8192;
            __m512 dw = f16x16(pb);
            for (int n = 0; n < 2; n++)
                for (int l = 0; l < 8; l++) {
                    __m512i qa = v64(pb + 288 + (16 * n + l) * 64);
                    __m512i qb = v64(pb + 288 + (16 * n + 8 + l) * 64);
                    __m512i qh = v64(pb + 2336 + (8 * n + l) * 64);
                    __m512i g[4];
                    g[0] = _mm512_ternarylogic_epi32(_mm512_and_si512(qa, m4),
                                                     _mm512_slli_epi16(qh, 4), m30, 0xf8);
                    g[1] = _mm512_ternarylogic_epi32(_mm512_and_si512(qb, m4),
                                                     _mm512_slli_epi16(qh, 2), m30, 0xf8);
                    g[2] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(qa, 4), m4),
                                                     qh, m30, 0xf8);
                    g[3] = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(qb, 4), m4),
                                                     _mm512_srli_epi16(qh, 2), m30, 0xf8);
                    /* input 128n + 32t + 4l + j is in 16-group 8n + 2t + l/4 */
                    for (int t = 0; t < 4; t++) {
                        int g16 = 8 * n + 2 * t + l / 4;
                        int group = 32 * n + 8 * t + l;
                        emit_group(osb + 128 * group, _mm512_sub_epi8(g[t], b32),
                                   _mm512_mul_ps(dw, i8x16(pb + 32 + 16 * g16)), zero);
                    }
                }
        }
        break;
    }
}

/* ---- the tile loop ------------------------------------------------------------------ */

/* Row tiles (rt, rt + 1 if two_rows) x panels (b0, b1 if two_panels) over
 * `steps` x 32 inputs. C starts at zero (c_in NULL) or from c_in[4][256]
 * and is stored to c_out[4][256]; tile i is (row tile i / 2, panel i % 2). */
static inline __attribute__((always_inline)) void
tile_block(const uint8_t *a0, int64_t ld_tile, const uint8_t *b0, const uint8_t *b1, int64_t steps,
           const float *c_in, float *c_out, const int two_rows, const int two_panels) {
    const uint8_t *a1 = a0 + ld_tile;
    if (c_in) {
        _tile_loadd(0, c_in, 64);
        if (two_panels) _tile_loadd(1, c_in + 256, 64);
        if (two_rows) _tile_loadd(2, c_in + 512, 64);
        if (two_rows && two_panels) _tile_loadd(3, c_in + 768, 64);
    } else {
        _tile_zero(0);
        if (two_panels) _tile_zero(1);
        if (two_rows) _tile_zero(2);
        if (two_rows && two_panels) _tile_zero(3);
    }
    for (int64_t s = 0; s < steps; s++) {
        _tile_loadd(4, a0 + 1024 * s, 64);
        _tile_loadd(6, b0 + 1024 * s, 64);
        _tile_dpbf16ps(0, 4, 6);
        if (two_panels) {
            _tile_loadd(7, b1 + 1024 * s, 64);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (two_rows) {
            _tile_loadd(5, a1 + 1024 * s, 64);
            _tile_dpbf16ps(2, 5, 6);
            if (two_panels) _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, c_out, 64);
    if (two_panels) _tile_stored(1, c_out + 256, 64);
    if (two_rows) _tile_stored(2, c_out + 512, 64);
    if (two_rows && two_panels) _tile_stored(3, c_out + 768, 64);
}

/* Copies the valid part of a 16 x 16 result to y. */
static void put_tile(const float *c, float *y, int ld_y, int n_rows, int n_valid) {
    __mmask16 mask = (__mmask16)((1u << n_valid) - 1);
    for (int r = 0; r < n_rows; r++)
        _mm512_mask_storeu_ps(y + (int64_t)r * ld_y, mask, _mm512_load_ps(c + 16 * r));
}

/* Activation rows per chunk, the L2 budget of one activation slice, and
 * the panels (even) whose accumulators wait between slices (64 KB each
 * for a 512-row chunk). */
#define CPU_AMX_CHUNK_ROWS  512
#define CPU_AMX_SLICE_BYTES (768 * 1024)
#define CPU_AMX_PANEL_BLOCK 32

typedef struct amx_job {
    const cpu_matrix *w;
    int kind;
    const float *x;
    float *y;
    int ld_y, n_rows;
    int64_t n_in, n_panels, kc;
    size_t panel_bytes;
    uint8_t *act;        /* [CPU_AMX_CHUNK_ROWS / 16][32 n_in] bf16 A tiles */
    uint8_t *thread_mem; /* nth x thread_bytes */
    size_t thread_bytes;
    atomic_int bar_count;
    atomic_uint bar_gen;
} amx_job;

/* All threads of the run meet here; a waiter that spins too long yields
 * its core (the machine may have fewer free cores than threads). */
static void amx_barrier(amx_job *j, int nth) {
    if (nth == 1) return;
    unsigned gen = atomic_load(&j->bar_gen);
    if (atomic_fetch_add(&j->bar_count, 1) == nth - 1) {
        atomic_store(&j->bar_count, 0);
        atomic_fetch_add(&j->bar_gen, 1);
        return;
    }
    for (int i = 0; atomic_load(&j->bar_gen) == gen; i++) {
        if (i < 4096)
            _mm_pause();
        else
            sched_yield();
    }
}

static void share(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    *lo = n * ith / nth;
    *hi = n * (ith + 1) / nth;
}

/* Per thread: C staging (4 KB), two dequantized panel slices, then the
 * accumulators of a panel block's pairs x row tile pairs (4 KB each) when
 * the input takes more than one slice. */
static size_t amx_thread_bytes(int64_t kc, int64_t n_in) {
    size_t bytes = 4096 + 2 * (size_t)kc * 32;
    if (kc < n_in) bytes += (size_t)(CPU_AMX_PANEL_BLOCK / 2) * (CPU_AMX_CHUNK_ROWS / 32) * 4096;
    return bytes;
}

static void amx_worker(void *ctx, int ith, int nth) {
    amx_job *j = ctx;
    uint8_t *mine = j->thread_mem + (size_t)ith * j->thread_bytes;
    float *stage = (float *)(void *)mine;
    uint8_t *up0 = mine + 4096, *up1 = up0 + 32 * j->kc;
    float *acc = (float *)(void *)(up1 + 32 * j->kc);
    int64_t p0, p1;
    share(j->n_panels, ith, nth, &p0, &p1);
    int configured = 0;
    for (int c0 = 0; c0 < j->n_rows; c0 += CPU_AMX_CHUNK_ROWS) {
        int rows = j->n_rows - c0 < CPU_AMX_CHUNK_ROWS ? j->n_rows - c0 : CPU_AMX_CHUNK_ROWS;
        int tiles = (rows + 15) / 16;
        if (c0 > 0) amx_barrier(j, nth); /* everyone is done with the last chunk */
        int64_t t0, t1;
        share(tiles, ith, nth, &t0, &t1);
        prepare_rows(j->x + (int64_t)c0 * j->n_in, j->n_in, rows, (int)t0 * 16, (int)t1 * 16,
                     j->act);
        amx_barrier(j, nth);
        if (p0 >= p1) continue;
        if (!configured) {
            amx_configure();
            configured = 1;
        }
        float *y = j->y + (int64_t)c0 * j->ld_y;
        int n_rtp = (tiles + 1) / 2;
        const uint8_t *wdata = j->w->data;
        /* panel blocks bound the accumulators kept between input slices */
        for (int64_t q0 = p0; q0 < p1; q0 += CPU_AMX_PANEL_BLOCK) {
            int64_t q1 = q0 + CPU_AMX_PANEL_BLOCK < p1 ? q0 + CPU_AMX_PANEL_BLOCK : p1;
            for (int64_t k0 = 0; k0 < j->n_in; k0 += j->kc) {
                int64_t k1 = k0 + j->kc < j->n_in ? k0 + j->kc : j->n_in, steps = (k1 - k0) / 32;
                int first = k0 == 0, last = k1 == j->n_in;
                for (int64_t p = q0; p < q1; p += 2) {
                    int two_panels = p + 1 < q1;
                    unpack_panel(j->kind, wdata + (size_t)p * j->panel_bytes, k0, k1, up0);
                    if (two_panels)
                        unpack_panel(j->kind, wdata + (size_t)(p + 1) * j->panel_bytes, k0, k1,
                                     up1);
                    for (int rtp = 0; rtp < n_rtp; rtp++) {
                        int two_rows = 2 * rtp + 1 < tiles;
                        const uint8_t *a0 =
                            j->act + (int64_t)(2 * rtp) * 32 * j->n_in + 1024 * (k0 / 32);
                        float *slot = acc + (((p - q0) / 2) * n_rtp + rtp) * 1024;
                        const float *c_in = first ? NULL : slot;
                        float *c_out = last ? stage : slot;
                        int64_t ld = 32 * j->n_in;
                        if (two_rows && two_panels)
                            tile_block(a0, ld, up0, up1, steps, c_in, c_out, 1, 1);
                        else if (two_rows)
                            tile_block(a0, ld, up0, up1, steps, c_in, c_out, 1, 0);
                        else if (two_panels)
                            tile_block(a0, ld, up0, up1, steps, c_in, c_out, 0, 1);
                        else
                            tile_block(a0, ld, up0, up1, steps, c_in, c_out, 0, 0);
                        if (!last) continue;
                        for (int rt = 0; rt < 1 + two_rows; rt++)
                            for (int pt = 0; pt < 1 + two_panels; pt++) {
                                int r = 32 * rtp + 16 * rt;
                                int64_t left = j->w->n_out - (p + pt) * CPU_NR;
                                put_tile(stage + 512 * rt + 256 * pt,
                                         y + (int64_t)r * j->ld_y + (p + pt) * CPU_NR, j->ld_y,
                                         rows - r < 16 ? rows - r : 16,
                                         left < CPU_NR ? (int)left : CPU_NR);
                            }
                    }
                }
            }
        }
    }
    if (configured) _tile_release();
}

int cpu_amx_matmul(cpu_pool *pool, const cpu_matrix *w, int kind, const float *x, int n_rows,
                   float *y, int ld_y) {
    if (kind != CPU_W_Q4_0 && kind != CPU_W_Q8_0 && kind != CPU_W_Q4_K && kind != CPU_W_Q5_K &&
        kind != CPU_W_Q6_K)
        return 0;
    int nth = cpu_pool_size(pool);
    const cpu_wformat *f = &cpu_wformats[kind];
    amx_job j = {.w = w,
                 .kind = kind,
                 .x = x,
                 .y = y,
                 .ld_y = ld_y,
                 .n_rows = n_rows,
                 .n_in = w->n_in,
                 .n_panels = (w->n_out + CPU_NR - 1) / CPU_NR};
    atomic_init(&j.bar_count, 0);
    atomic_init(&j.bar_gen, 0);
    j.panel_bytes = (size_t)(w->n_in / f->kb) * f->pb;
    /* the input slice: a multiple of 256 (the k-quant super-block) whose
     * bf16 activations for a full chunk fit the L2 budget */
    int chunk = n_rows < CPU_AMX_CHUNK_ROWS ? n_rows : CPU_AMX_CHUNK_ROWS;
    int64_t kc =
        (int64_t)(CPU_AMX_SLICE_BYTES / (2 * (size_t)((chunk + 15) / 16 * 16))) / 256 * 256;
    j.kc = kc < 256 ? 256 : kc > j.n_in ? j.n_in : kc;
    size_t act_bytes = (size_t)((chunk + 15) / 16) * 32 * (size_t)j.n_in;
    j.thread_bytes = amx_thread_bytes(j.kc, j.n_in);
    size_t total = act_bytes + j.thread_bytes * (size_t)nth;
    void *own = NULL;
    uint8_t *buf = pool ? cpu_pool_scratch(pool, total) : NULL;
    if (!buf) buf = own = aligned_alloc(64, (total + 63) & ~(size_t)63);
    if (!buf) return 0;
    j.act = buf;
    j.thread_mem = buf + act_bytes;
    cpu_pool_run(pool, amx_worker, &j);
    free(own);
    return 1;
}

#else
typedef int cpu_matmul_amx_unused; /* ISO C wants a declaration */
#endif
