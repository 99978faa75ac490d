/*
 * Host side of the weight upload: a GGUF-typed tensor -> the CUDA
 * backend's stream layout (units.h). Plain C, so the layouts are tested
 * on machines without a GPU.
 */
#ifndef ZT_BACKEND_CUDA_REPACK_H
#define ZT_BACKEND_CUDA_REPACK_H

#include "model/model.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_host_mat {
    int wt; /* enum cuda_wtype */
    int n_in, n_out;
    uint8_t *q, *a1, *a2, *a3; /* malloc'd streams (NULL when unused) */
    size_t q_bytes, a1_bytes, a2_bytes, a3_bytes;
} cuda_host_mat;

/* The stream type a tensor of GGUF type `type` is stored as (F32 and the
 * types without a kernel become F16 or BF16). */
int cuda_wtype_for(int type);

/* Repacks rows [0, n_out) of a 2-D tensor. force_float: store as F16
 * whatever the type (used when two matrices read by one kernel differ).
 * Rows of float types whose length is not a multiple of 32 are zero-padded
 * to one (out->n_in is the padded length). Fails with a message for types
 * that cannot be dequantized. */
int cuda_repack(const zt_tensor *t, int force_float, cuda_host_mat *out, zt_error *err);
void cuda_host_mat_free(cuda_host_mat *m);

#ifdef __cplusplus
}
#endif

#endif
