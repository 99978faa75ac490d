/*
 * Private to the CPU matmul: the repacked weight layouts, the quantized
 * activations, and the per-ISA entry points that matmul.c dispatches to.
 *
 * Weights: cpu_matrix_init cuts a matrix into panels of CPU_NR = 16
 * consecutive output rows and stores each panel contiguously, block after
 * block along the input dimension. Inside a panel block the 16 rows are
 * interleaved "4 inputs per lane": the 64-byte vector that holds group g
 * has, at byte 4*o + j, the code of weight (row o, input 4g + j). That is
 * the operand layout of one VNNI vpdpbusd (16 int32 lanes, each summing
 * 4 u8 x s8 products) and of an AMX B tile row, so one load feeds 16
 * outputs and a panel streams from memory front to back. Rows past n_out
 * in the last panel are zero.
 *
 * Panel blocks (CPU_NR = 16 rows; "codes" are the unsigned integers the
 * file stores; byte offsets from the block start):
 *
 *   F32   one input:  f32 w[16]                                    64 B
 *   F16   one input:  f16 w[16]                                    32 B
 *   BF16  one input:  bf16 w[16]                                   32 B
 *   Q8_0  32 inputs:  @0 f16 d[16]; @32 u8 q[8][64], q = w + 128   544 B
 *   Q4_0  32 inputs:  @0 f16 d[16]; @32 u8 q[4][64]                288 B
 *         vector v holds group v in its low nibbles and group v + 4 in
 *         its high nibbles: byte 4o + j of vector v is byte 4v + j of
 *         row o's file block, unchanged.
 *   Q4_K  256 inputs: @0 f16 d[16]; @32 f16 dmin[16];
 *         @64 u8 scales[12][16]: byte plane i holds file byte scales[i]
 *         of each row (the packed 6-bit sub-block scales and mins);
 *         @256 u8 q[4][8][64]: pair c (sub-blocks 2c, 2c + 1), vector v:
 *         byte 4o + j = file byte qs[32c + 4v + j] of row o, i.e. low
 *         nibble = input 64c + 4v + j, high nibble = input 64c + 32 + 4v + j
 *                                                                  2304 B
 *   Q5_K  Q4_K's 2304 bytes, then @2304 u8 h[8][64]: byte 4o + j of
 *         vector v = file qh[4v + j] of row o (bit 2c / 2c + 1 is the
 *         fifth bit of the low / high nibble of pair c, vector v)  2816 B
 *   Q6_K  256 inputs: @0 f16 d[16]; @32 i8 sc[16][16] ([group of 16][o]);
 *         @288 u8 ql[32][64]: byte 4o + j of vector v = file ql[4v + j];
 *         @2336 u8 qh[16][64]: byte 4o + j of vector u = file qh[4u + j].
 *         For half n, 4-input group l (l < 8) and t < 4, input
 *         128n + 32t + 4l + j has its low 4 bits in vector 16n + 8(t & 1)
 *         + l (low nibble for t < 2, high for t >= 2) and its top 2 bits
 *         at bits 2t of qh vector 8n + l                       3360 B
 *
 * Every other type keeps its file layout (CPU_W_GENERIC) and is
 * dequantized a row at a time.
 *
 * Activations: quant kinds quantize each activation row once per call to
 * int8 with one f32 scale per 32 inputs (rounded half to even, as
 * ggml's q8_0), plus a per-kind auxiliary word that folds the weight
 * code offset into the integer accumulator:
 *   Q4_0: aux[b]  = -8 * sum(q over block b)    (int32; codes are w + 8)
 *   Q8_0: aux[b]  = -128 * sum(q over block b)  (int32; codes are w + 128)
 *   Q4_K, Q5_K: aux[b] = d[b] * sum(q over b)   (f32; for the mins)
 *   Q6_K: aux[g]  = -32 * sum(q over 16-group g) (int32; codes are w + 32)
 * The AMX path (matmul_amx.c) uses bf16 activations of its own layout.
 */
#ifndef ZT_BACKEND_CPU_MATMUL_IMPL_H
#define ZT_BACKEND_CPU_MATMUL_IMPL_H

#include "backend/cpu/kernels.h"

#include <stddef.h>
#include <stdint.h>

#define CPU_NR 16 /* output rows per panel */

/* How cpu_matrix.data is laid out, from its type. */
enum cpu_wkind {
    CPU_W_F32,
    CPU_W_F16,
    CPU_W_BF16,
    CPU_W_Q8_0,
    CPU_W_Q4_0,
    CPU_W_Q4_K,
    CPU_W_Q5_K,
    CPU_W_Q6_K,
    CPU_W_GENERIC, /* file layout, dequantized per row */
    CPU_W_COUNT
};

enum cpu_isa { CPU_ISA_SCALAR, CPU_ISA_AVX2, CPU_ISA_AVX512, CPU_ISA_AMX, CPU_ISA_COUNT };

/* Byte offsets inside a Q4_K / Q5_K panel block. */
#define CPU_QK_PLANES 64   /* u8 [12][16] scale byte planes */
#define CPU_QK_QS     256  /* u8 [4][8][64] nibbles */
#define CPU_QK_QH     2304 /* Q5_K: u8 [8][64] fifth bits */

/* Panel-block geometry of a kind: inputs and bytes per block. */
typedef struct cpu_wformat {
    int kb;    /* inputs per panel block */
    int pb;    /* bytes per panel block */
    int quant; /* 1: activations are quantized (see above) */
} cpu_wformat;

extern const cpu_wformat cpu_wformats[CPU_W_COUNT];

int cpu_wkind_of(int type);

/* Quantized activation rows. */
typedef struct cpu_act {
    const float *x; /* [n_rows][n_in] the caller's f32 rows */
    int64_t n_in;
    int8_t *q;    /* [rows][ld_q] int8 */
    float *d;     /* [rows][ld_d] scale per 32 inputs */
    int32_t *aux; /* [rows][ld_aux] per-kind word, int32 or f32 bits */
    int64_t ld_q, ld_d, ld_aux;
} cpu_act;

static inline const float *cpu_act_auxf(const cpu_act *a, int r) {
    return (const float *)(const void *)(a->aux + (int64_t)r * a->ld_aux);
}

/* A rectangle of work: panels [p0, p1) times activation rows [r0, r1)
 * of act (rows of the current chunk); y is the output of act's row 0. */
typedef struct cpu_rect {
    const cpu_matrix *w;
    int kind; /* enum cpu_wkind */
    const cpu_act *act;
    int64_t p0, p1;
    int r0, r1;
    float *y;
    int ld_y;
} cpu_rect;

/* Per-thread scratch of the generic path: one dequantized f32 row. */
#define CPU_THREAD_SCRATCH(n_in) ((size_t)(n_in)*4 + 64)

/* Per ISA: quantize one activation row (q, d per 32, int sums per 16),
 * and run a rectangle of any repacked kind (0 for CPU_W_GENERIC, which
 * matmul.c handles itself). */
void cpu_quantize_row_scalar(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16);
int cpu_rect_scalar(const cpu_rect *j);
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define CPU_HAVE_AVX2 1
void cpu_quantize_row_avx2(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16);
int cpu_rect_avx2(const cpu_rect *j);
#endif
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) &&                      \
    defined(__AVX512DQ__) && defined(CPU_HAVE_AVX2)
#define CPU_HAVE_AVX512 1
void cpu_quantize_row_avx512(const float *x, int64_t n, int8_t *q, float *d, int32_t *sum16);
int cpu_rect_avx512(const cpu_rect *j);
#endif
#if defined(CPU_HAVE_AVX512) && defined(__AVX512BF16__) && defined(__AMX_TILE__) &&                \
    defined(__AMX_BF16__) && defined(__linux__)
#define CPU_HAVE_AMX 1
/* 0 unless the kernel granted this process the AMX tile state. */
int cpu_amx_available(void);
/* The whole matmul on the AMX path (its own work split; see
 * matmul_amx.c); 0 when it cannot take the kind or has no memory. */
int cpu_amx_matmul(cpu_pool *pool, const cpu_matrix *w, int kind, const float *x, int n_rows,
                   float *y, int ld_y);
/* Fewest activation rows for which the AMX path beats AVX-512: below it
 * the panel dequantization is spread over too few rows (one core, 3072 x
 * 3072 q4_0: 16 rows 106 vs 148 GMAC/s, 24 rows even, 32 rows 195 vs 141). */
#define CPU_AMX_MIN_ROWS 24
#endif

#ifdef CPU_HAVE_AVX2
#include <immintrin.h>

/* The 6-bit scale and min of sub-block j of the 16 rows of a Q4_K/Q5_K
 * panel block, from its scale planes (quant_k_scale_min, 16 rows at once):
 * j < 4: low 6 bits of bytes j and j + 4; j >= 4: the nibbles of byte
 * j + 4 with the top 2 bits of bytes j - 4 (scale) and j (min) above. */
static inline void cpu_k_scale_min16(const uint8_t *planes, int j, __m128i *sc, __m128i *mn) {
    const __m128i m63 = _mm_set1_epi8(63), m15 = _mm_set1_epi8(15), m30 = _mm_set1_epi8(0x30);
#define CPU_PLANE(i) _mm_loadu_si128((const __m128i *)(const void *)(planes + 16 * (i)))
    if (j < 4) {
        *sc = _mm_and_si128(CPU_PLANE(j), m63);
        *mn = _mm_and_si128(CPU_PLANE(j + 4), m63);
    } else {
        __m128i lo4 = CPU_PLANE(j + 4);
        *sc = _mm_or_si128(_mm_and_si128(lo4, m15),
                           _mm_and_si128(_mm_srli_epi16(CPU_PLANE(j - 4), 2), m30));
        *mn = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(lo4, 4), m15),
                           _mm_and_si128(_mm_srli_epi16(CPU_PLANE(j), 2), m30));
    }
#undef CPU_PLANE
}
#endif

/* Best ISA compiled in and usable on this CPU. */
int cpu_best_isa(void);
/* Whether isa is compiled in and usable. */
int cpu_isa_usable(int isa);

/* cpu_matmul with the kernels of a given ISA (tests compare ISAs). */
void cpu_matmul_isa(cpu_pool *pool, const cpu_matrix *w, const float *x, int n_rows, float *y,
                    int ld_y, int isa);

/* The pool's scratch buffer, grown to at least `bytes` (64-aligned; valid
 * until the next call); NULL when pool is NULL or allocation fails. */
void *cpu_pool_scratch(cpu_pool *pool, size_t bytes);

#endif
