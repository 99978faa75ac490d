/*
 * The WebGPU backend's kernels as C sees them: which WGSL files make each
 * pipeline, the uniform structs that mirror each kernel's `struct P`, the
 * weight layouts uploaded for the matmuls, and the uniform slots of the
 * dispatches. Shared by the forward pass (webgpu.c) and the kernel tests
 * (selftest.c), which run each kernel alone against the scalar reference.
 *
 * A pipeline is the text prelude (enables, `override WG` / `SPLIT`, the KV
 * element type) + shaders/common.wgsl + one reduction flavour (subgroups
 * or workgroup memory) + for matmul and ffn the SPLIT reduction
 * (split_reduce.wgsl, or split_none.wgsl when one thread owns a row) + a
 * weight-format snippet (kernels that read weights) + the kernel. Every
 * shape is a uniform or an override constant.
 */
#ifndef ZT_BACKEND_WEBGPU_KERNELS_H
#define ZT_BACKEND_WEBGPU_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/webgpu/host.h"
#include "model/model.h"

/* Kernels (one .wgsl file each). */
enum wg_kernel {
    WG_EMBED,
    WG_ADD_RMSNORM,
    WG_MATMUL,
    WG_ROPE_KV,
    WG_ATTENTION,
    WG_FFN,
    WG_ARGMAX,
    WG_KERNEL_COUNT
};

/* Weight formats the matmul kernels read (how a wg_matrix is laid out). */
enum wg_format { WG_FMT_NONE, WG_FMT_F32, WG_FMT_F16, WG_FMT_Q8_0, WG_FMT_Q4_0, WG_FMT_COUNT };

/* Device choices fixed at create: they select the shader text. */
typedef struct wg_device {
    bool f16;       /* shader-f16: f16 loads of F16 weights, f16 KV storage */
    bool subgroups; /* subgroup reductions (else workgroup-memory trees) */
    bool kv_f16;    /* KV values rounded to f16 (stored as f16 on the f16 path) */
    int split;      /* matmul/ffn threads per output feature (SPLIT override) */
    int head_dim;   /* the attention kernel's HEAD_DIM override */
    uint32_t pipelines[WG_KERNEL_COUNT][WG_FMT_COUNT]; /* created on first use */
} wg_device;

/* Fills dev from the host's features; `allow_*` false forces the fallback
 * (tests run both paths). split 0: 1 on CPU adapters, else the matmul's
 * workgroup size. */
void wg_device_init(wg_device *dev, bool allow_f16, bool allow_subgroups, int split, bool kv_f16,
                    int head_dim);
/* Workgroups of a matmul/ffn step over n output features. */
uint32_t wg_feature_groups(const wg_device *dev, uint32_t n);
/* The pipeline of kernel k reading weights of format fmt (WG_FMT_NONE for
 * kernels without weights), created on first use. */
int wg_pipeline(wg_device *dev, int kernel, int fmt, uint32_t *out, zt_error *err);
/* What wg_pipeline compiles: the WGSL text (malloc'd; NULL when out of
 * memory), the override constants it sets (returns how many), its label. */
char *wg_shader_source(const wg_device *dev, int kernel, int fmt, size_t *len);
int wg_pipeline_constants(const wg_device *dev, int kernel, const char *names[2],
                          double values[2]);
void wg_pipeline_label(int kernel, int fmt, char *out, size_t cap);
/* Releases nothing on the GPU side (pipelines live as long as the page)
 * but forgets the ids. */
void wg_device_reset(wg_device *dev);
/* Workgroup size of each kernel (a power of two). */
uint32_t wg_workgroup_size(int kernel);

/* ---- uniforms (each mirrors the kernel's `struct P`, 16-byte aligned) -- */

typedef struct wg_p_embed { uint32_t dim, w_scales, pad0, pad1; } wg_p_embed;
typedef struct wg_p_norm { uint32_t dim; float eps; uint32_t add, gather; } wg_p_norm;
typedef struct wg_p_matmul {
    uint32_t n_in, n_out, ld_y, rows_word, has_bias, w_scales, pad0, pad1;
} wg_p_matmul;
typedef struct wg_p_rope {
    uint32_t head_dim, rope_dim, interleaved, q_dim, kv_dim, qkv_dim, pad0, pad1;
} wg_p_rope;
typedef struct wg_p_attention {
    uint32_t n_heads, n_kv_heads, head_dim, q_dim, kv_dim, window;
    float scale;
    uint32_t pad0;
} wg_p_attention;
typedef struct wg_p_ffn { uint32_t n_in, n_ff, w_scales, pad0; } wg_p_ffn;
typedef struct wg_p_argmax { uint32_t vocab, pad0, pad1, pad2; } wg_p_argmax;

/* Batch-buffer header words (shaders/common.wgsl). */
enum {
    WG_B_N_ROWS, WG_B_N_OUT, WG_B_TOKENS, WG_B_POS, WG_B_SEQ, WG_B_OUT_ROWS, WG_B_PAGE_TABLE,
    WG_B_ROPE, WG_B_PAGES_PER_SEQ, WG_B_PAGE_SIZE, WG_B_HEADER
};

/* ---- weights ------------------------------------------------------------ */

/* A weight matrix [n_out][n_in] on the GPU in one of wg_format's layouts
 * (see shaders/weights_*.wgsl); quantized formats keep the block codes
 * first and one f32 scale per block from word `scales_word` on. */
typedef struct wg_matrix {
    int fmt;
    int64_t n_in, n_out;
    uint32_t buf;
    uint32_t scales_word;
    size_t bytes;
} wg_matrix;

/* Uploads the concatenation (along n_out) of n_parts tensors with the same
 * n_in: the file's format when a kernel reads it (F32, F16, Q8_0, Q4_0) and
 * all parts share it, else F32 (exact) for F32/BF16 parts and F16 for the
 * rest, dequantized with the reference dequantizers. The layout is the
 * same on the f16 and f32 paths. */
int wg_matrix_upload(wg_matrix *m, const zt_tensor *const *parts, int n_parts, const char *label,
                     zt_error *err);
void wg_matrix_free(wg_matrix *m);
/* A vector of n f32 (norm gammas, biases) from any float tensor type;
 * parts are concatenated; a NULL part contributes n_zero[i] zeros. */
uint32_t wg_vector_upload(const zt_tensor *const *parts, const int *n_zero, int n_parts,
                          const char *label, size_t *bytes);

/* ---- uniforms ------------------------------------------------------------ */

#define WG_UNIFORM_SLOT 256 /* minUniformBufferOffsetAlignment */

/* Host copy of a uniform buffer cut in WG_UNIFORM_SLOT-byte slots, one per
 * dispatch (each holds that dispatch's `struct P`). */
typedef struct wg_uniforms {
    uint8_t *data; /* [n][WG_UNIFORM_SLOT] */
    int n, cap;
} wg_uniforms;

/* Appends a slot holding p (at most WG_UNIFORM_SLOT bytes); returns its
 * index or -1 when out of memory. */
int wg_uniforms_add(wg_uniforms *u, const void *p, size_t size);
void wg_uniforms_free(wg_uniforms *u);

/* Workgroup counts covering n items when x may not exceed 65535. */
void wg_grid_split(uint32_t n, uint32_t *x, uint32_t *y);

#endif
