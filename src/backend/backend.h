/*
 * The backend contract (DESIGN.md): create (upload and repack weights,
 * allocate the KV page pool), forward(batch), destroy. A batch is a list of
 * (sequence, position, token) rows, so one call serves prefill, decode and
 * any mix. The engine owns the page table; the backend owns the pages.
 */
#ifndef ZT_BACKEND_BACKEND_H
#define ZT_BACKEND_BACKEND_H

#include <stdint.h>

#include "model/model.h"

#define ZT_KV_PAGE 16 /* positions per KV page */

/* KV cache element type. F32 exists so that the CPU reference can be
 * checked against float32 HF logits at 1e-4 without KV rounding. */
enum zt_kv_type { ZT_KV_F16 = 0, ZT_KV_Q8 = 1, ZT_KV_F32 = 2 };

typedef struct zt_backend_opts {
    int n_threads;         /* CPU threads (0 = all cores) */
    int n_pages;           /* KV pool size in pages (per layer) */
    int n_seq;             /* sequence slots */
    int max_pages_per_seq; /* row length of the page table */
    int max_batch;         /* rows per forward */
    int kv_type;           /* enum zt_kv_type */
} zt_backend_opts;

typedef struct zt_fwd {
    int n_rows;
    const int32_t *tokens; /* [n_rows] */
    const int32_t *pos;    /* [n_rows] position within its sequence */
    const int32_t *seq;    /* [n_rows] sequence slot */
    /* [n_seq][max_pages_per_seq]: physical page of logical page p of a
     * sequence; position t lives in page t / ZT_KV_PAGE, slot t % ZT_KV_PAGE. */
    const int32_t *page_table;
    int n_out;
    const int32_t *out_rows; /* [n_out] rows whose logits are wanted, ascending */
    float *logits;           /* [n_out][vocab] f32, or NULL */
    int32_t *argmax;         /* [n_out], or NULL */
} zt_fwd;

typedef struct zt_backend zt_backend;

typedef struct zt_backend_ops {
    const char *name;
    /* 0 when usable on this machine (a device is present), else an error. */
    int (*probe)(zt_error *err);
    int (*create)(const zt_model *m, const zt_backend_opts *o, zt_backend **out, zt_error *err);
    /* Rows of one sequence come in position order; K/V of every row is
     * written before any row attends, so a row sees earlier rows of the
     * same batch. */
    int (*forward)(zt_backend *b, const zt_fwd *f, zt_error *err);
    void (*destroy)(zt_backend *b);
    /* Kernel launches / dispatches of the last forward call; NULL when the
     * backend does not count them (the CPU has none). */
    int (*dispatches)(const zt_backend *b);
} zt_backend_ops;

extern const zt_backend_ops zt_cpu_backend;
#ifdef ZT_HAVE_CUDA
extern const zt_backend_ops zt_cuda_backend;
#endif
#ifdef ZT_HAVE_VULKAN
extern const zt_backend_ops zt_vulkan_backend;
#endif
#ifdef ZT_HAVE_WEBGPU
extern const zt_backend_ops zt_webgpu_backend;
#endif

#endif
