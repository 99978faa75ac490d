/*
 * The CUDA backend: upload (repack) the weights once, then one forward
 * pass per batch of rows, with every launch named here.
 *
 * Two paths, chosen per call by the number of rows:
 *
 * decode (rows <= max_decode_rows: 8 by default, at most CU_MAX_ROWS):
 *   memory-bound; the step is decode.cuh's phase kernels (the plan,
 *   make_plan), replayed as ONE CUDA graph launch with programmatic
 *   dependent launch between them (L2 prefetch is a tuning option, off:
 *   slower when measured), each building its activation pack after its
 *   first weight loads as tune.pack_first says (by default every phase).
 *   Steps whose context reaches tune.long_from positions (off by default)
 *   are "long" ones (step_variant): a graph of their own, the packs before
 *   the first weight loads as tune.long_pack says. (A
 *   persistent kernel streaming every weight through shared memory while
 *   its phases met at grid barriers, and weight phases staged that way one
 *   launch each, were measured and removed: cuda-notes "2026-11-29 (15)".)
 *     upload step (rows, compact page table)          1 H2D copy
 *     per layer: qkv (1 launch per weight type, usually 1), [kvq], attn,
 *                wo, gu, down; then lm (+ per-block argmax), argmax
 *                                                      5 x layers + 2 kernels
 *     argmax (and logits only when asked)             1-2 D2H copies
 *   With tune.fuse_wo (the default), a step of one row in one key split
 *   (f16 cache, a Wo slice that fits shared memory) launches attention and
 *   wo as one kernel (attn_wo.cuh; fold_step): 4 x layers + 2. Where the
 *   attention runs apart, it takes a kernel of its own at two blocks an
 *   SM (tune.attn_decode; decode.cu's cu_attn_decode_kernel).
 *
 * batched / prefill (more rows): compute-bound; row chunks of up to
 *   chunk_rows, each:
 *     embed
 *     per layer: rmsnorm -> gemm qkv -> rope_kv (K/V into the cache)
 *                -> attention (tensor-core tiles for runs of one sequence,
 *                   the split-K row kernel for the rest)
 *                -> gemm wo (+= x) -> rmsnorm -> gemm gate|up with silu
 *                   in its epilogue (or gemm, then silu) -> gemm down (+= x)
 *     rmsnorm(out rows) -> gemm lm_head -> argmax
 *
 * The KV cache is n_pages pages per layer of 16 positions x n_kv heads x
 * head_dim, f16 or int8 with a float scale per (position, head).
 */
#include "backend/cuda/attention.cuh"
#include "backend/cuda/kernels.h"

#include <cuda_runtime.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "backend/backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/repack.h"
#include "quant/quant.h"
#include "util/error.h"
}

static_assert(ZT_KV_PAGE == ZT_KV_PAGE_CU, "page size");
static_assert(ZT_CUDA_N_PHASES == CU_PH_COUNT, "phase count");

#define CU_CHUNK_ROWS       512 /* rows per batched-path chunk (scratch is sized by it) */
#define CU_TILE_MIN_RUN     8   /* runs of at least this many rows use the attention tiles */
#define CU_DEC_ROWS_DEFAULT 8   /* rows up to which a step takes the decode GEMV path */
/* decode graphs: 4 row templates x lm_head or not x short/long x attention and wo fused or not
 * x the attention's K/V rings or not */
#define CU_GRAPHS            64
#define CU_LONG_FROM_DEFAULT 0 /* tune.long_from's default: no step is a long one */

struct zt_backend {
    const zt_model *model;
    zt_backend_opts o;
    cu_model M;            /* device descriptors */
    cu_layer *layers_host; /* [n_layers] the same, host copy */
    cudaStream_t stream;
    int n_sm, grid, chunk_rows, max_splits, cap_row_splits;
    size_t dec_smem;
    zt_cuda_tuning tune;

    void **allocs; /* every cudaMalloc, freed by destroy */
    int n_allocs, cap_allocs;

    /* step upload: [cu_step | token | pos | cseq | out_row | pt | tiles | rows] */
    uint8_t *step_host, *step_dev;
    size_t step_cap;

    /* batched path scratch, chunk_rows rows */
    float *p_resid;  /* [C][dim] residual stream */
    __half *p_xn;    /* [C][dim_p] rmsnorm output (GEMM A) */
    float *p_qkv;    /* [C][qkv_dim] */
    __half *p_q16;   /* [C][q_dim] roped queries */
    __half *p_att;   /* [C][q_dim_p] attention output (GEMM A) */
    float *p_gu;     /* [C][2 ffn] gate | up */
    __half *p_h;     /* [C][ffn_p] silu(gate) * up (GEMM A) */
    float *p_logits; /* [C][vocab] */
    int *p_argmax;   /* [C] */

    int fold_ok;            /* the fused attention + wo kernel takes this model (f16 cache,
                               every layer's Wo slice fits its shared memory) */
    size_t smem_optin;      /* the device's per-block shared memory limit */
    unsigned long long *tl; /* the phase timeline's device buffer (allocated on first use) */
    /* decode graphs: nr = 1, 2, 4, 8; with, without lm_head; short, long
     * contexts (step_variant); attention and wo fused or not (fold_step) */
    cudaGraphExec_t graph[CU_GRAPHS];
    int launches;    /* kernel launches (graph nodes included) of the last forward */
    cu_launch *plan; /* [n_plan] the decode step's launches; the last two: lm, argmax */
    int n_plan;
};

/* ---- errors and memory ------------------------------------------------- */

/* Whether every layer's Wo, in `slices` slices a head group, has a fused
 * attention + wo kernel and fits its shared memory (optin: the device's
 * per-block limit, less 2 KB for the attention's static shared memory). */
static bool wo_slices_fit(const cu_model &M, const cu_layer *layers, size_t dec_smem, int slices,
                          size_t optin) {
    for (int l = 0; l < M.n_layers; l++)
        if (!cu_attn_wo_supported(layers[l].wo.wt) ||
            cu_attn_wo_smem(M, layers[l], dec_smem, slices) + 2048 > optin)
            return false;
    return true;
}

static int cu_err(zt_error *err, cudaError_t e, const char *what) {
    return zt_fail(err, ZT_EBACKEND, "cuda: %s: %s", what, cudaGetErrorString(e));
}
#define CU_TRY(call, what)                                                                         \
    do {                                                                                           \
        cudaError_t e_ = (call);                                                                   \
        if (e_ != cudaSuccess) return cu_err(err, e_, what);                                       \
    } while (0)

/* cudaMalloc with 256 bytes of slack (the L2 prefetch rounds ranges out). */
static void *dev_alloc(zt_backend *b, size_t bytes) {
    if (b->n_allocs == b->cap_allocs) {
        int cap = b->cap_allocs ? 2 * b->cap_allocs : 64;
        void **p = (void **)realloc(b->allocs, sizeof(void *) * cap);
        if (!p) return NULL;
        b->allocs = p, b->cap_allocs = cap;
    }
    void *d = NULL;
    if (cudaMalloc(&d, bytes + 256) != cudaSuccess) return NULL;
    b->allocs[b->n_allocs++] = d;
    return d;
}

/* ---- weights ----------------------------------------------------------- */

typedef struct upload_job {
    const zt_tensor *t;
    int force_float;
    cu_mat *dst;
} upload_job;

typedef struct upload_ctx {
    zt_backend *b;
    upload_job *jobs;
    int n_jobs, next, failed;
    pthread_mutex_t lock;
    zt_error err;
} upload_ctx;

/* Repacks and uploads one matrix (host streams freed after the copy). */
static int upload_matrix(zt_backend *b, pthread_mutex_t *lock, const zt_tensor *t, int force_float,
                         cu_mat *dst, zt_error *err) {
    cuda_host_mat h;
    int rc = cuda_repack(t, force_float, &h, err);
    if (rc) return rc;
    uint8_t *src[4] = {h.q, h.a1, h.a2, h.a3};
    size_t len[4] = {h.q_bytes, h.a1_bytes, h.a2_bytes, h.a3_bytes};
    uint8_t *dev[4] = {NULL, NULL, NULL, NULL};
    for (int s = 0; s < 4; s++) {
        if (!len[s]) continue;
        pthread_mutex_lock(lock);
        dev[s] = (uint8_t *)dev_alloc(b, len[s]);
        pthread_mutex_unlock(lock);
        cudaError_t e = dev[s] ? cudaMemcpy(dev[s], src[s], len[s], cudaMemcpyHostToDevice)
                               : cudaErrorMemoryAllocation;
        if (e != cudaSuccess) {
            cuda_host_mat_free(&h);
            return zt_fail(err, ZT_EBACKEND, "cuda: uploading %s (%zu bytes): %s", t->name, len[s],
                           cudaGetErrorString(e));
        }
    }
    dst->wt = h.wt, dst->n_in = h.n_in, dst->n_out = h.n_out;
    dst->q = dev[0], dst->a1 = dev[1], dst->a2 = dev[2], dst->a3 = dev[3];
    cuda_host_mat_free(&h);
    return ZT_OK;
}

static void *upload_worker(void *arg) {
    upload_ctx *u = (upload_ctx *)arg;
    for (;;) {
        pthread_mutex_lock(&u->lock);
        int i = u->failed ? u->n_jobs : u->next++;
        pthread_mutex_unlock(&u->lock);
        if (i >= u->n_jobs) return NULL;
        zt_error e = {0, {0}};
        if (upload_matrix(u->b, &u->lock, u->jobs[i].t, u->jobs[i].force_float, u->jobs[i].dst,
                          &e)) {
            pthread_mutex_lock(&u->lock);
            if (!u->failed) u->err = e;
            u->failed = 1;
            pthread_mutex_unlock(&u->lock);
        }
    }
}

/* A norm / bias vector as f32 on the device. */
static float *upload_vec(zt_backend *b, const zt_tensor *t, int n, zt_error *err) {
    float *h = (float *)malloc(sizeof(float) * n);
    if (!h) return NULL;
    quant_dequant_row(t->type, t->data, h, n);
    float *d = (float *)dev_alloc(b, sizeof(float) * n);
    if (d && cudaMemcpy(d, h, sizeof(float) * n, cudaMemcpyHostToDevice) != cudaSuccess) d = NULL;
    free(h);
    if (!d) zt_fail(err, ZT_EBACKEND, "cuda: uploading %s failed", t->name);
    return d;
}

static int upload_weights(zt_backend *b, zt_error *err) {
    const zt_model *m = b->model;
    const zt_config *c = &m->cfg;
    cu_model &M = b->M;
    int nl = c->n_layers;
    upload_job *jobs = (upload_job *)calloc((size_t)nl * 8 + 2, sizeof(upload_job));
    if (!jobs) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int nj = 0;
    for (int l = 0; l < nl; l++) {
        const zt_layer_weights *W = &m->w.layers[l];
        cu_layer *L = &b->layers_host[l];
        if (W->wqkv) {
            jobs[nj++] = {W->wqkv, 0, &L->mq};
            L->oq = 0, L->ok = M.q_dim, L->ov = M.q_dim + M.kv_dim;
        } else {
            jobs[nj++] = {W->wq, 0, &L->mq};
            jobs[nj++] = {W->wk, 0, &L->mk};
            jobs[nj++] = {W->wv, 0, &L->mv};
        }
        if (W->w_gate_up) {
            jobs[nj++] = {W->w_gate_up, 0, &L->mg};
            L->og = 0, L->ou = M.ffn;
        } else {
            /* one warp reads a gate row and an up row: one weight type */
            int differ = cuda_wtype_for(W->w_gate->type) != cuda_wtype_for(W->w_up->type);
            jobs[nj++] = {W->w_gate, differ, &L->mg};
            jobs[nj++] = {W->w_up, differ, &L->mu};
        }
        jobs[nj++] = {W->wo, 0, &L->wo};
        jobs[nj++] = {W->w_down, 0, &L->down};
    }
    jobs[nj++] = {m->w.token_embd, 0, &M.embd};
    if (!c->tied_output) jobs[nj++] = {m->w.output, 0, &M.out};

    upload_ctx u;
    memset(&u, 0, sizeof u);
    u.b = b, u.jobs = jobs, u.n_jobs = nj;
    pthread_mutex_init(&u.lock, NULL);
    pthread_t th[8];
    int n_th = 0;
    for (; n_th < 8; n_th++)
        if (pthread_create(&th[n_th], NULL, upload_worker, &u)) break;
    if (n_th == 0) upload_worker(&u);
    for (int i = 0; i < n_th; i++) pthread_join(th[i], NULL);
    pthread_mutex_destroy(&u.lock);
    free(jobs);
    if (u.failed) {
        *err = u.err;
        return u.err.code ? u.err.code : ZT_EBACKEND;
    }
    if (c->tied_output) M.out = M.embd;
    for (int l = 0; l < nl; l++) {
        const zt_layer_weights *W = &m->w.layers[l];
        cu_layer *L = &b->layers_host[l];
        if (W->wqkv)
            L->mk = L->mv = L->mq;
        else
            L->oq = L->ok = L->ov = 0;
        if (W->w_gate_up)
            L->mu = L->mg;
        else
            L->og = L->ou = 0;
        if (!(L->attn_norm = upload_vec(b, W->attn_norm, M.dim, err)) ||
            !(L->ffn_norm = upload_vec(b, W->ffn_norm, M.dim, err)))
            return err->code;
        L->bias = NULL;
        if (W->bq || W->bk || W->bv) {
            float *h = (float *)calloc(M.qkv_dim, sizeof(float));
            if (!h) return zt_fail(err, ZT_ENOMEM, "out of memory");
            if (W->bq) quant_dequant_row(W->bq->type, W->bq->data, h, M.q_dim);
            if (W->bk) quant_dequant_row(W->bk->type, W->bk->data, h + M.q_dim, M.kv_dim);
            if (W->bv)
                quant_dequant_row(W->bv->type, W->bv->data, h + M.q_dim + M.kv_dim, M.kv_dim);
            float *d = (float *)dev_alloc(b, sizeof(float) * M.qkv_dim);
            cudaError_t e = d ? cudaMemcpy(d, h, sizeof(float) * M.qkv_dim, cudaMemcpyHostToDevice)
                              : cudaErrorMemoryAllocation;
            free(h);
            if (e != cudaSuccess) return cu_err(err, e, "uploading biases");
            L->bias = d;
        }
        /* the decode GEMV needs n_in % 32 (repack checked) and the QKV
         * pair rows inside one matrix (true by construction) */
        if (L->mg.wt != L->mu.wt)
            return zt_fail(err, ZT_EUNSUP, "cuda: layer %d: gate and up weight types differ", l);
    }
    if (!(M.out_norm = upload_vec(b, m->w.output_norm, M.dim, err))) return err->code;
    float *freq = (float *)dev_alloc(b, sizeof(float) * M.rope_half + 4);
    if (!freq) return zt_fail(err, ZT_ENOMEM, "cuda: out of device memory");
    CU_TRY(cudaMemcpy(freq, c->rope_inv_freq, sizeof(float) * M.rope_half, cudaMemcpyHostToDevice),
           "uploading RoPE frequencies");
    M.inv_freq = freq;
    for (int l = 0; l + 1 < nl; l++) b->layers_host[l].next_norm = b->layers_host[l + 1].attn_norm;
    cu_layer *ld = (cu_layer *)dev_alloc(b, sizeof(cu_layer) * nl);
    if (!ld) return zt_fail(err, ZT_ENOMEM, "cuda: out of device memory");
    CU_TRY(cudaMemcpy(ld, b->layers_host, sizeof(cu_layer) * nl, cudaMemcpyHostToDevice),
           "uploading layer table");
    M.layers = ld;
    return ZT_OK;
}

static int make_plan(zt_backend *b, zt_error *err);

/* ---- create / destroy -------------------------------------------------- */

static void cuda_destroy(zt_backend *b) {
    if (!b) return;
    for (int i = 0; i < CU_GRAPHS; i++)
        if (b->graph[i]) cudaGraphExecDestroy(b->graph[i]);
    for (int i = 0; i < b->n_allocs; i++) cudaFree(b->allocs[i]);
    free(b->allocs);
    if (b->step_host) cudaFreeHost(b->step_host);
    if (b->stream) cudaStreamDestroy(b->stream);
    free(b->layers_host);
    free(b->plan);
    free(b);
}

static int cuda_probe(zt_error *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) return cu_err(err, e, "no usable device");
    if (n == 0) return zt_fail(err, ZT_EBACKEND, "cuda: no device");
    cudaDeviceProp p;
    CU_TRY(cudaGetDeviceProperties(&p, 0), "device properties");
    if (p.major < 9)
        return zt_fail(err, ZT_EBACKEND,
                       "cuda: %s is compute capability %d.%d; this build needs 9.0", p.name,
                       p.major, p.minor);
    return ZT_OK;
}

/* Largest divisor of g that is at most CU_ATTN_GQ_MAX. */
static int head_group(int g) {
    for (int k = CU_ATTN_GQ_MAX; k > 1; k--)
        if (g % k == 0) return k;
    return 1;
}

static int cuda_create(const zt_model *m, const zt_backend_opts *o, zt_backend **out,
                       zt_error *err) {
    *out = NULL;
    const zt_config *c = &m->cfg;
    int rc = cuda_probe(err);
    if (rc) return rc;
    if (o->kv_type != ZT_KV_F16 && o->kv_type != ZT_KV_Q8)
        return zt_fail(err, ZT_EUNSUP, "cuda: KV cache type %d is not supported (f16 or q8)",
                       o->kv_type);
    int hd = c->head_dim;
    if (hd % 8 || hd > 256 || c->rope_dim / 2 > CU_ROPE_HALF_MAX || c->n_kv_heads <= 0 ||
        c->n_heads % c->n_kv_heads)
        return zt_fail(
            err, ZT_EUNSUP,
            "cuda: unsupported shape (head_dim %d, rope %d, heads %d/%d, dim %d, ffn %d)", hd,
            c->rope_dim, c->n_heads, c->n_kv_heads, c->dim, c->ffn_dim);
    if (o->n_pages <= 0 || o->max_batch <= 0 || o->n_seq <= 0 || o->max_pages_per_seq <= 0)
        return zt_fail(err, ZT_EINVAL, "cuda: bad backend options");

    zt_backend *b = (zt_backend *)calloc(1, sizeof *b);
    if (!b) return zt_fail(err, ZT_ENOMEM, "out of memory");
    b->model = m;
    b->o = *o;
    cu_model &M = b->M;
    M.dim = c->dim, M.ffn = c->ffn_dim, M.n_layers = c->n_layers, M.n_heads = c->n_heads;
    M.n_kv = c->n_kv_heads, M.hd = hd, M.q_dim = c->n_heads * hd, M.kv_dim = c->n_kv_heads * hd;
    /* matrices are padded to a multiple of 32 inputs (repack.c); their f16
     * inputs are laid out with these strides, the pad columns zero */
    M.dim_p = (M.dim + 31) & ~31, M.q_dim_p = (M.q_dim + 31) & ~31, M.ffn_p = (M.ffn + 31) & ~31;
    M.qkv_dim = M.q_dim + 2 * M.kv_dim, M.vocab = c->n_vocab;
    M.gq = head_group(c->n_heads / c->n_kv_heads);
    M.rope_half = c->rope_dim / 2, M.rope_interleaved = c->rope_interleaved;
    M.hd_div = cu_div_make((unsigned)hd);
    M.window = c->sliding_window, M.eps = c->rms_eps, M.attn_scale = 1.0f / sqrtf((float)hd);
    M.kv_type = o->kv_type == ZT_KV_Q8 ? CU_KV_Q8 : CU_KV_F16, M.n_pages = o->n_pages;

    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) {
        rc = zt_fail(err, ZT_EBACKEND, "cuda: cannot read the device properties");
        goto fail;
    }
    b->n_sm = p.multiProcessorCount;
    if (cudaStreamCreateWithFlags(&b->stream, cudaStreamNonBlocking) != cudaSuccess) {
        rc = zt_fail(err, ZT_EBACKEND, "cuda: cannot create a stream");
        goto fail;
    }
    if (!(b->layers_host = (cu_layer *)calloc(c->n_layers, sizeof(cu_layer)))) {
        rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = upload_weights(b, err)) || (rc = make_plan(b, err))) goto fail;

    {
        /* decode-path properties of the matrices */
        M.xb_max = (M.dim_p > M.q_dim_p ? (M.dim_p > M.ffn_p ? M.dim_p : M.ffn_p)
                                        : (M.q_dim_p > M.ffn_p ? M.q_dim_p : M.ffn_p)) /
                   32;
        int has_float = cu_is_float(M.out.wt), has_int = !has_float;
        for (int l = 0; l < c->n_layers; l++) {
            const cu_layer *L = &b->layers_host[l];
            const cu_mat *ms[6] = {&L->mq, &L->mk, &L->mv, &L->mg, &L->wo, &L->down};
            for (int i = 0; i < 6; i++)
                has_float |= cu_is_float(ms[i]->wt), has_int |= !cu_is_float(ms[i]->wt);
        }
        M.has_float = has_float ? (has_int ? 1 : 2) : 0;
        /* h_pack (tune.h_pack): gate|up's blocks own whole x-blocks of h,
         * at most h_rows rows each in a grid of n_sm blocks (b->grid,
         * below), and quantize them for down once; for
         * integer weights (float ones read f32 activations) whose down
         * matrices take h as it is (no padded inputs) */
        bool h_ok = !has_float && M.ffn % 32 == 0;
        for (int l = 0; l < c->n_layers; l++) h_ok = h_ok && b->layers_host[l].down.n_in == M.ffn;
        M.h_rows = h_ok ? 32 * ((M.ffn / 32 + b->n_sm - 1) / b->n_sm) : 0;
        /* the phase kernels' stash: the larger of gate|up's h rows and qkv's
         * dot products (two a pair), a multiple of 4 floats (float4 reads) */
        int qkv_ld = 2 * ((M.qkv_dim / 2 + b->n_sm - 1) / b->n_sm);
        M.stash_ld = ((M.h_rows > qkv_ld ? M.h_rows : qkv_ld) + 3) & ~3;
        M.h_pack = 0; /* per step variant (step_variant) */
        /* x_pack (tune.x_pack): down's blocks quantize the next qkv's
         * input; integer weights, x-blocks that are whole rows' inputs */
        M.x_ok = !has_float && M.dim % 32 == 0 && M.dim_p == M.dim;
        M.x_pack = M.g_pack = 0; /* per step variant */
        /* the largest row count whose activations fit in shared memory
         * (f32 activations of float weights take 4 bytes per input) */
        b->tune.max_decode_rows = 0;
        for (int r = CU_MAX_ROWS; r >= 1 && !b->tune.max_decode_rows; r /= 2) {
            M.pack_rows = r;
            b->dec_smem = cu_decode_smem(M);
            if (b->dec_smem + 4096 <= (size_t)p.sharedMemPerBlockOptin) b->tune.max_decode_rows = r;
        }
        /* the GEMV step's arithmetic grows with the rows (every row repeats
         * the unpack and dot of every weight), the tensor-core path's hardly
         * does; with the attention's items no more than the blocks (one
         * split per head at short contexts) the GEMV step stays ahead up to
         * 8 rows (H100, Q4_0 aggregate tok/s, GEMV vs GEMM: 2 rows 822 vs
         * 370, 4 rows 1,187 vs 736, 8 rows 1,779 vs 1,450; bench/results/
         * 2026-11-27-cuda-h100.md). Where the activations of 8 rows do not
         * fit shared memory (f32 ones of float weights) it stops earlier. */
        if (b->tune.max_decode_rows > CU_DEC_ROWS_DEFAULT)
            b->tune.max_decode_rows = CU_DEC_ROWS_DEFAULT;
        /* the fastest decode variant measured on the H100: the graph with
         * programmatic dependent launch for every kernel (a kernel's blocks
         * issue their first weight loads while the previous kernel
         * drains); no L2 prefetch; the pack after the first loads. With
         * wo launched without PDL (the default while the attention's
         * register loads suffered from wo's early ones) the same or up to
         * 2% slower: Q4_0 535-542 against 540-545 tok/s, Q4_K_M 480-487
         * against 487-497, in four runs; ~500 without PDL at all
         * (bench/results/2026-11-27-cuda-h100-2.md) */
        b->tune.decode_mode = ZT_CUDA_GRAPH;
        b->tune.pf_bytes = 0;
        b->tune.pf_mode = 0;
        b->tune.pdl = 1;
        /* splits of at least 128 positions: a split's fixed cost is a few
         * us of round trips (Q4_0 tg128 555.4 tok/s, 548.5 with 64, 531.5
         * with 16; same record) */
        b->tune.attn_min_chunk = 128;
        /* one wave of attention items: at depth 2048, 294-307 tok/s against
         * 273-286 with two items a block (bench/results/2026-11-27-cuda-h100.md) */
        b->tune.attn_items = 1;
        b->tune.pack_first = 0;
        b->tune.gemm_tail = 1;
        /* steps whose longest context reaches this many positions: the
         * pack before the first weight loads. On
         * the H100 that won at depth 2048 (+3-7%) and lost 1-3% up to 1,024
         * positions for Q4_0 and F16 (2026-11-27-cuda-h100-5.md and -6);
         * on the H200, with the warp-parallel attention, it wins at every
         * depth: Q4_0 +2.5% after 8 positions, +4% after 160, +2% after
         * 512, even at 2048; F16 +0.6 / +1.5 / +2% / even (bench/results/
         * 2026-11-28-cuda-h200.md), and every step was a long one. Each
         * phase's pack first but QKV's (long_pack): its pack after its
         * first weight loads adds +0.2-0.5% Q4_0, +0-0.3% Q4_K_M; the same
         * for gate|up or down loses 1.5-4% (same record, section 4).
         * With the packs' code shrunk (2026-11-29-cuda-h200-10.md) the
         * short steps win at every depth: one row Q4_0 +2.6 / +2.5 / +3.4
         * / +3.4% after 8 / 160 / 512 / 2,048 positions, Q4_K_M +1.8 to
         * +2.8%, F16 +1.5 to +2.6%; eight rows -0.2 to +1.2%. So no step
         * is a long one by default. */
        b->tune.long_from = CU_LONG_FROM_DEFAULT;
        b->tune.long_pack = CU_WEIGHT_PHASES & ~(1u << CU_PH_QKV);
        /* the attention and wo as one launch (attn_wo.cuh) where a step
         * allows it (one key split; one split up to 256
         * positions: fold_upto), 4 Wo slices a head group (Phi-3: 128
         * blocks, one wave; 8 slices, two waves: -9% on the H100). On the
         * H100 with the ring attention it paid for Q4_K files only
         * (2026-11-28-cuda-h100-2.md, -3); on the H200 with the
         * warp-parallel attention, against the phases apart, both long:
         * Q4_0 +0.9% after 8 positions, +0.7% after 160, Q4_K_M +2.6% and
         * +1.6% (the same record); F16, its later Wo batches after the
         * attention, +3.9% and +2.5% (2026-11-28-cuda-h200-5.md) */
        b->tune.fuse_wo = 1, b->tune.wo_slices = 4, b->tune.fold_upto = 256;
        /* ... for models whose Wo slices fit shared memory beside the
         * attention at that many slices (Phi-3-mini: 74 KB, F16 147 KB; a Llama-3-8B
         * head group's 16 x-blocks would take 512 KB, so its steps run
         * the phases apart) */
        b->fold_ok = M.kv_type == CU_KV_F16 && (M.gq * M.hd) % 32 == 0 &&
                     wo_slices_fit(M, b->layers_host, b->dec_smem, b->tune.wo_slices,
                                   p.sharedMemPerBlockOptin);
        /* the attention's scores and PV on tensor cores (attention.cuh;
         * H100, against the FMA form: depth 2048 +3.6% Q4_0, +2.2%
         * Q4_K_M, tg128 even; bench/results/2026-11-28-cuda-h100-3.md),
         * in the warp-parallel form (attn_warps.cuh; H200, against the
         * ring item on tensor cores, one process: after 8 positions +5.3%
         * Q4_0, +7% Q4_K_M; after 2048 +11.6% / +9.5%; 2026-11-28-cuda-
         * h200.md) where the head size allows, else the ring item */
        b->tune.attn_mma = 2;
        /* ... in a kernel of its own at two blocks an SM where the
         * attention runs apart from wo (steps past fold_upto positions),
         * its splits aiming at one item a block of that launch: H200,
         * against the phase kernel at one item a block, Q4_0 +3.1-3.4%
         * after 512 positions and +3.6-4.2% after 2,048, Q4_K_M +1.7% /
         * +2.0%, F16 +0.8%; 8 sequences a step +5-6%; short one-sequence
         * steps (the fused attention + wo) even (bench/results/
         * 2026-11-28-cuda-h200-7.md); and where a row sees 256 positions
         * or more, each warp's K/V through a ring of its own (its copies
         * then by cp.async): Q4_0 +2.8-3.1% after 2,048 positions, F16
         * +6.3-6.7% (+1.6% after 512), Q4_K_M even, 8 sequences +2% after
         * 512 (2026-11-29-cuda-h200.md) */
        b->tune.attn_decode = 2;
        /* ... the rings' copies evict-first in L2: at 2,048 positions the
         * step streams the whole cache (805 MB for Phi-3-mini, ~25 MB a
         * layer), which at the default policy pushes out of L2 what the
         * phases after it reread. H200, one process, against the ring's
         * cp.async copies it replaced (default policy): after 2,048
         * positions Q4_0 +5.0%, F16 +6.5%, Q4_K_M +10.6%; after 512 +1.3%
         * / +1.2% / +2.4%; shorter steps (no ring) even; 8 sequences after
         * 512, against the same bulk copies at the default policy, Q4_0
         * +18.7%, Q4_K_M +24.1% (bench/results/2026-11-29-cuda-h200-3.md) */
        b->tune.kv_evict = 1;
        /* ... and the rings wherever the step's rows see 1,024 keys
         * together (8 sequences from 128 positions): H200, one process, 8
         * sequences after 160 positions Q4_0 +0.7%, Q4_K_M +6.2%; after 8
         * and 512, and 2 or 4 sequences, even (256 keys: -0.5% Q4_0 after
         * 8; 2026-11-29-cuda-h200-3.md) */
        b->tune.ring_keys = 1024;
        /* down's input quantized once a step by gate|up's blocks instead of
         * by each of down's (decode.cuh's h_pack_build; integer weights).
         * H200, against each block building it (one process): Q4_0 +5.0%
         * after 8 positions, +4.2% after 2,048, Q4_K_M +4.3% / +3.1%; 2, 4
         * and 8 rows a step +7%, +11%, +14% (bench/results/2026-11-28-cuda-
         * h200-2.md) */
        b->tune.h_pack = 1;
        /* and qkv's input by down's blocks (decode.cuh's x_pack_publish).
         * H200, one process: +4.6% Q4_0 and +4.9% Q4_K_M after 8
         * positions, +4.4% / +4.6% after 2,048, 8 rows +8.1%
         * (bench/results/2026-11-28-cuda-h200-3.md) */
        b->tune.x_pack = 1;
        /* and gate|up's by wo's where wo is apart (decode steps of several
         * rows, or of one past one key split). H200, Q4_0, one process:
         * 2 / 8 rows +2.1% / +6.5% after 8 positions, +1.8% / +5.6% after
         * 512; one row even (2026-11-28-cuda-h200-3.md) */
        b->tune.g_pack = 1;
        /* batched decode (more rows than the decode step takes): two
         * k-steps of the GEMMs' loads in flight, and the attention rows in
         * the warp-parallel kernel at two blocks an SM. H200, Q4_0, 32
         * sequences after 128 positions: 5,950 tok/s against 5,040 with
         * neither (depth 3 and 4 lose to 2; an L2 prefetch of each block's
         * weights lost 5%); 16 / 64 sequences +14% / +19%, Q4_K_M +13%,
         * F16 +11% (same record) */
        b->tune.gemm_depth = 2;
        b->tune.attn_rows = 2;
        /* and their K splits by waves x k-steps: H200, 32 sequences after
         * 128 positions, Q4_0 6,112 vs 5,913 tok/s with splits doubled
         * until the grid fills the SMs, 16 / 64 sequences +2.8% / +10.3%,
         * Q4_K_M +6.2%, F16 +10.8% (same record) */
        b->tune.gemm_split = 1;
        M.pf_bytes = b->tune.pf_bytes, M.pf_mode = b->tune.pf_mode, M.pack_first = 0;
        M.attn_mma = b->tune.attn_mma;
        cudaError_t e = cudaSuccess;
        if (b->tune.max_decode_rows > 0 && (e = cu_decode_setup(b->dec_smem)) != cudaSuccess) {
            rc = cu_err(err, e, "decode kernel setup");
            goto fail;
        }
        if ((e = cu_gemm_setup()) != cudaSuccess || (e = cu_attn_tiles_setup()) != cudaSuccess) {
            rc = cu_err(err, e, "gemm / attention kernel setup");
            goto fail;
        }
        int per_sm = b->tune.max_decode_rows > 0 ? cu_decode_blocks_per_sm(b->dec_smem) : 1;
        if (per_sm < 1) {
            b->tune.max_decode_rows = 0;
            per_sm = 1;
        }
        /* one block per SM (168 registers x 384 threads fill its register
         * file; two blocks of 192 threads measured slower: 424 vs 482
         * tok/s, bench/results/2026-11-26-cuda-h100-3.md) */
        b->grid = b->n_sm;
        M.lm_blocks = b->grid;

        /* KV cache */
        size_t slots = (size_t)c->n_layers * o->n_pages * M.n_kv * ZT_KV_PAGE;
        size_t elem = M.kv_type == CU_KV_Q8 ? 1 : 2;
        M.kc = (uint8_t *)dev_alloc(b, slots * hd * elem);
        M.vc = (uint8_t *)dev_alloc(b, slots * hd * elem);
        if (M.kv_type == CU_KV_Q8) {
            M.ks = (float *)dev_alloc(b, slots * 4);
            M.vs = (float *)dev_alloc(b, slots * 4);
        }
        if (!M.kc || !M.vc || (M.kv_type == CU_KV_Q8 && (!M.ks || !M.vs))) {
            rc = zt_fail(err, ZT_ENOMEM, "cuda: out of device memory for the KV cache (%zu MiB)",
                         2 * slots * hd * elem >> 20);
            goto fail;
        }

        /* decode scratch */
        int R = CU_MAX_ROWS;
        b->chunk_rows = o->max_batch < CU_CHUNK_ROWS ? o->max_batch : CU_CHUNK_ROWS;
        int C = b->chunk_rows > R ? b->chunk_rows : R;
        int ctx = o->max_pages_per_seq * ZT_KV_PAGE;
        b->max_splits = (ctx + CU_ATTN_CHUNK_ROWS - 1) / CU_ATTN_CHUNK_ROWS;
        if (b->max_splits < 64) b->max_splits = 64;
        b->cap_row_splits = R * b->max_splits > 2 * C ? R * b->max_splits : 2 * C;
        M.max_splits = b->max_splits;
        M.resid = (float *)dev_alloc(b, sizeof(float) * R * M.dim);
        M.qbuf = (float *)dev_alloc(b, sizeof(float) * R * M.q_dim);
        M.kvstage = (float *)dev_alloc(b, sizeof(float) * R * 2 * M.kv_dim);
        M.attn = (float *)dev_alloc(b, sizeof(float) * R * M.q_dim);
        M.hbuf = (float *)dev_alloc(b, sizeof(float) * R * M.ffn);
        M.hq = M.h_rows ? (uint4 *)dev_alloc(b, (size_t)R * (M.ffn / 32) * 48) : NULL;
        M.xq = M.x_ok ? (uint4 *)dev_alloc(b, (size_t)R * (M.dim / 32) * 48) : NULL;
        M.xcnt = M.x_ok ? (unsigned *)dev_alloc(b, sizeof(unsigned) * (M.dim / 32)) : NULL;
        M.part_o = (float *)dev_alloc(b, sizeof(float) * b->cap_row_splits * M.n_heads * hd);
        M.part_ml = (float2 *)dev_alloc(b, sizeof(float2) * b->cap_row_splits * M.n_heads);
        M.attn_cnt = (unsigned *)dev_alloc(b, sizeof(unsigned) * C * M.n_heads);
        M.logits = (float *)dev_alloc(b, sizeof(float) * R * M.vocab);
        M.amax_part = (float2 *)dev_alloc(b, sizeof(float2) * b->grid * R);
        M.argmax = (int *)dev_alloc(b, sizeof(int) * R);

        /* batched path scratch */
        b->p_resid = (float *)dev_alloc(b, sizeof(float) * C * M.dim);
        b->p_xn = (__half *)dev_alloc(b, sizeof(__half) * C * M.dim_p);
        b->p_qkv = (float *)dev_alloc(b, sizeof(float) * C * M.qkv_dim);
        b->p_q16 = (__half *)dev_alloc(b, sizeof(__half) * C * M.q_dim);
        b->p_att = (__half *)dev_alloc(b, sizeof(__half) * C * M.q_dim_p);
        b->p_gu = (float *)dev_alloc(b, sizeof(float) * C * 2 * M.ffn);
        b->p_h = (__half *)dev_alloc(b, sizeof(__half) * C * M.ffn_p);
        b->p_logits = (float *)dev_alloc(b, sizeof(float) * C * M.vocab);
        b->p_argmax = (int *)dev_alloc(b, sizeof(int) * C);

        b->step_cap = sizeof(cu_step) + 64 +
                      sizeof(int) * ((size_t)C * 6 + (size_t)C * o->max_pages_per_seq) +
                      sizeof(cu_attn_tile) * C + sizeof(float) * 2 * CU_MAX_ROWS * M.rope_half +
                      256;
        b->step_dev = (uint8_t *)dev_alloc(b, b->step_cap);
        if (!M.resid || !M.qbuf || !M.kvstage || !M.attn || !M.hbuf || (M.h_rows && !M.hq) ||
            (M.x_ok && (!M.xq || !M.xcnt)) || !M.part_o || !M.part_ml || !M.attn_cnt || !M.logits ||
            !M.amax_part || !M.argmax || !b->p_resid || !b->p_xn || !b->p_qkv || !b->p_q16 ||
            !b->p_att || !b->p_gu || !b->p_h || !b->p_logits || !b->p_argmax || !b->step_dev ||
            cudaMallocHost((void **)&b->step_host, b->step_cap) != cudaSuccess) {
            rc = zt_fail(err, ZT_ENOMEM, "cuda: out of device memory for scratch");
            goto fail;
        }
        /* the GEMM inputs' pad columns are read as zeros and never written */
        if ((e = cudaMemset(M.attn_cnt, 0, sizeof(unsigned) * C * M.n_heads)) != cudaSuccess ||
            (M.xcnt &&
             (e = cudaMemset(M.xcnt, 0, sizeof(unsigned) * (M.dim / 32))) != cudaSuccess) ||
            (e = cudaMemset(b->p_xn, 0, sizeof(__half) * C * M.dim_p)) != cudaSuccess ||
            (e = cudaMemset(b->p_att, 0, sizeof(__half) * C * M.q_dim_p)) != cudaSuccess ||
            (e = cudaMemset(b->p_h, 0, sizeof(__half) * C * M.ffn_p)) != cudaSuccess ||
            (e = cudaDeviceSynchronize()) != cudaSuccess) {
            rc = cu_err(err, e, "initializing scratch");
            goto fail;
        }
        M.step = (const cu_step *)b->step_dev;
        M.step_rope = (const float2 *)(b->step_dev + ((sizeof(cu_step) + 15) & ~(size_t)15));

        b->smem_optin = p.sharedMemPerBlockOptin;
    }
    *out = b;
    return ZT_OK;
fail:
    cuda_destroy(b);
    return rc ? rc : ZT_EBACKEND;
}

/* ---- the step upload --------------------------------------------------- */

/* Validates rows [r0, r0 + n) of f and lays out their step in step_host;
 * returns the bytes to copy. The page table is compacted to the
 * sequences present and the pages their positions need. */
static int build_step(zt_backend *b, const zt_fwd *f, int r0, int n, int *n_out, int *out_first,
                      size_t *bytes, zt_error *err) {
    const zt_backend_opts *o = &b->o;
    uint8_t *base = b->step_host;
    cu_step *st = (cu_step *)base;
    size_t off = (sizeof(cu_step) + 15) & ~(size_t)15;
    /* decode steps: (cos, sin) of every row's rotation, at a fixed place
     * (cu_model.step_rope), filled below */
    float *rope = (float *)(base + off);
    const int rh = b->M.rope_half;
    off += sizeof(float) * 2 * CU_MAX_ROWS * (size_t)rh;
    int *token = (int *)(base + off);
    off += sizeof(int) * n;
    int *pos = (int *)(base + off);
    off += sizeof(int) * n;
    int *cseq = (int *)(base + off);
    off += sizeof(int) * n;
    int *out_row = (int *)(base + off);
    off += sizeof(int) * (n + 1);
    int max_page = 0;
    for (int i = 0; i < n; i++) {
        int r = r0 + i, t = f->tokens[r], p = f->pos[r], s = f->seq[r];
        if (t < 0 || t >= b->M.vocab)
            return zt_fail(err, ZT_EINVAL, "cuda: row %d: token %d outside the vocabulary (%d)", r,
                           t, b->M.vocab);
        if (s < 0 || s >= o->n_seq)
            return zt_fail(err, ZT_EINVAL, "cuda: row %d: sequence %d outside [0, %d)", r, s,
                           o->n_seq);
        if (p < 0 || p / ZT_KV_PAGE >= o->max_pages_per_seq)
            return zt_fail(err, ZT_EINVAL, "cuda: row %d: position %d outside the context", r, p);
        const int32_t *pages = f->page_table + (size_t)s * o->max_pages_per_seq;
        for (int k = 0; k <= p / ZT_KV_PAGE; k++)
            if (pages[k] < 0 || pages[k] >= o->n_pages)
                return zt_fail(err, ZT_EINVAL, "cuda: row %d: page %d of sequence %d is %d", r, k,
                               s, pages[k]);
        token[i] = t, pos[i] = p;
        if (p / ZT_KV_PAGE + 1 > max_page) max_page = p / ZT_KV_PAGE + 1;
    }
    /* compact sequence ids */
    int n_cs = 0;
    int *cs_of = (int *)(base + off); /* [n] the distinct sequences, in order of appearance */
    off += sizeof(int) * n;
    for (int i = 0; i < n; i++) {
        int s = f->seq[r0 + i], k = 0;
        while (k < n_cs && cs_of[k] != s) k++;
        if (k == n_cs) cs_of[n_cs++] = s;
        cseq[i] = k;
    }
    off = (off + 15) & ~(size_t)15;
    int *pt = (int *)(base + off);
    off += sizeof(int) * (size_t)n_cs * max_page;
    for (int k = 0; k < n_cs; k++)
        memcpy(pt + (size_t)k * max_page, f->page_table + (size_t)cs_of[k] * o->max_pages_per_seq,
               sizeof(int) * max_page);
    int no = 0, first = -1;
    for (int i = 0; i < f->n_out; i++) {
        int r = f->out_rows[i];
        if (r < 0 || r >= f->n_rows || (i > 0 && r <= f->out_rows[i - 1]))
            return zt_fail(err, ZT_EINVAL, "cuda: out_rows must be ascending rows of the batch");
        if (r >= r0 && r < r0 + n) {
            if (first < 0) first = i;
            out_row[no++] = r - r0;
        }
    }
    /* decode steps: the rotations as the CPU backend computes them (the
     * QKV epilogue reads them; the batched path's RoPE kernel computes its
     * own), and where each row's new K/V goes */
    if (off > b->step_cap)
        return zt_fail(err, ZT_EINVAL, "cuda: batch too large for the step buffer");
    const float *inv_freq = b->model->cfg.rope_inv_freq;
    for (int i = 0; i < n && n <= CU_MAX_ROWS; i++)
        for (int j = 0; j < rh; j++) {
            float angle = (float)pos[i] * inv_freq[j];
            rope[2 * (i * rh + j)] = cosf(angle), rope[2 * (i * rh + j) + 1] = sinf(angle);
        }
    for (int i = 0; i < n && n <= CU_MAX_ROWS; i++) {
        st->kv_at[i] =
            pt[(size_t)cseq[i] * max_page + pos[i] / ZT_KV_PAGE] * ZT_KV_PAGE + pos[i] % ZT_KV_PAGE;
        st->row_pos[i] = pos[i], st->row_pt[i] = cseq[i] * max_page;
    }
    uint8_t *dev = b->step_dev;
    st->n_rows = n, st->n_out = no, st->want_logits = f->logits != NULL;
    st->n_splits = 1, st->chunk = CU_ATTN_CHUNK_MAX;
    st->pt_stride = max_page;
    st->token = (const int *)(dev + ((uint8_t *)token - base));
    st->pos = (const int *)(dev + ((uint8_t *)pos - base));
    st->cseq = (const int *)(dev + ((uint8_t *)cseq - base));
    st->out_row = (const int *)(dev + ((uint8_t *)out_row - base));
    st->pt = (const int *)(dev + ((uint8_t *)pt - base));
    st->rope = n <= CU_MAX_ROWS ? (const float2 *)(dev + ((uint8_t *)rope - base)) : NULL;
    *n_out = no, *out_first = first < 0 ? 0 : first;
    *bytes = off;
    return ZT_OK;
}

/* The key positions a row at position p attends to (the sliding window's
 * or all before it). */
static int visible_keys(const cu_model &M, int p) {
    return M.window > 0 && p + 1 > M.window ? M.window : p + 1;
}

/* Whether the decode steps' attention, where it runs apart from wo, takes
 * its kernel of its own (tune.attn_decode; decode.cu's
 * cu_attn_decode_kernel), whose launch has CU_ATTN_DECODE_PER_SM blocks
 * an SM. */
static bool attn_apart_kernel(const zt_backend *b) {
    return b->tune.attn_decode && b->M.kv_type == CU_KV_F16 && b->tune.attn_mma == 2 &&
           cu_attn_decode_supported(b->M.hd);
}

/* The most positions a row of step f's rows [r0, r0 + n) sees (at least 1). */
static int most_keys(const cu_model &M, const zt_fwd *f, int r0, int n) {
    int lmax = 1;
    for (int i = 0; i < n; i++) {
        int v = visible_keys(M, f->pos[r0 + i]);
        if (v > lmax) lmax = v;
    }
    return lmax;
}

/* Splits and chunk of the split-K attention over rows of the step. */
static void attn_split(const zt_backend *b, const zt_fwd *f, int r0, int n, int want_items,
                       int min_chunk, int cap_row_splits, int *n_splits, int *chunk) {
    const int lmax = most_keys(b->M, f, r0, n);
    int n_hg = b->M.n_heads / b->M.gq;
    /* splits per (row, head group): no more items than wanted, so that a
     * whole number of waves of them covers the blocks */
    int want = want_items / (n * n_hg);
    if (want < 1) want = 1;
    int ch = (lmax + want - 1) / want;
    ch = (ch + 15) & ~15;
    if (ch < min_chunk) ch = min_chunk;
    if (ch > CU_ATTN_CHUNK_MAX) ch = CU_ATTN_CHUNK_MAX;
    int ns = (lmax + ch - 1) / ch;
    while (ns * n > cap_row_splits && ch < CU_ATTN_CHUNK_MAX) {
        ch += 16;
        ns = (lmax + ch - 1) / ch;
    }
    *n_splits = ns, *chunk = ch;
}

/* ---- decode path ------------------------------------------------------- */

static int row_template(int n) { return n <= 1 ? 1 : n <= 2 ? 2 : n <= 4 ? 4 : 8; }

/* The launches of a decode step: per layer the QKV pairs by runs of one
 * weight type, [kvq], attention, wo, gate|up, down; then lm, argmax. */
static int make_plan(zt_backend *b, zt_error *err) {
    const cu_model &M = b->M;
    b->plan = (cu_launch *)calloc((size_t)M.n_layers * 8 + 2, sizeof(cu_launch));
    if (!b->plan) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int n = 0;
    for (int l = 0; l < M.n_layers; l++) {
        const cu_layer &L = b->layers_host[l];
        const int seg[4] = {0, M.q_dim / 2, (M.q_dim + M.kv_dim) / 2, M.qkv_dim / 2};
        const int wt[3] = {L.mq.wt, L.mk.wt, L.mv.wt};
        for (int k = 0; k < 3;) {
            int j = k + 1;
            while (j < 3 && wt[j] == wt[k]) j++;
            b->plan[n++] = {CU_PH_QKV, l, wt[k], seg[k], seg[j]};
            k = j;
        }
        if (M.kv_type == CU_KV_Q8) b->plan[n++] = {CU_PH_KVQ, l, 0, 0, 0};
        b->plan[n++] = {CU_PH_ATTN, l, 0, 0, 0};
        b->plan[n++] = {CU_PH_WO, l, L.wo.wt, 0, 0};
        b->plan[n++] = {CU_PH_GU, l, L.mg.wt, 0, 0};
        b->plan[n++] = {CU_PH_DOWN, l, L.down.wt, 0, 0};
    }
    b->plan[n++] = {CU_PH_LM, M.n_layers - 1, M.out.wt, 0, 0};
    b->plan[n++] = {CU_PH_ARGMAX, M.n_layers - 1, 0, 0, 0};
    b->n_plan = n;
    return ZT_OK;
}

/* Uploads the step of a decode-sized batch; *n_out: its output rows. */
static int decode_prepare(zt_backend *b, const zt_fwd *f, int *n_out, zt_error *err) {
    int first;
    size_t bytes;
    int rc = build_step(b, f, 0, f->n_rows, n_out, &first, &bytes, err);
    if (rc) return rc;
    cu_step *st = (cu_step *)b->step_host;
    /* tune.attn_items a block of the attention's launch */
    const int attn_blocks = b->grid * (attn_apart_kernel(b) ? CU_ATTN_DECODE_PER_SM : 1);
    attn_split(b, f, 0, f->n_rows, b->tune.attn_items * attn_blocks, b->tune.attn_min_chunk,
               CU_MAX_ROWS * b->max_splits, &st->n_splits, &st->chunk);
    if (b->tune.fuse_wo && b->fold_ok && f->n_rows == 1 &&
        visible_keys(b->M, f->pos[0]) <= b->tune.fold_upto) /* tune.fold_upto */
        st->n_splits = 1, st->chunk = CU_ATTN_CHUNK_MAX;
    CU_TRY(cudaMemcpyAsync(b->step_dev, b->step_host, bytes, cudaMemcpyHostToDevice, b->stream),
           "step upload");
    return ZT_OK;
}

/* Whether step f is a long one: a row's context reaches tune.long_from. */
static bool long_step(const zt_backend *b, const zt_fwd *f) {
    for (int r = 0; b->tune.long_from > 0 && r < f->n_rows; r++)
        if (f->pos[r] + 1 >= b->tune.long_from) return true;
    return false;
}

/* The Wo slices of the fused attention + wo launch a decode step takes
 * (cu_decode_launch), 0 for the phases apart: tune.fuse_wo, a model the
 * kernel takes, one row, one key split (decode_prepare's; the step buffer
 * holds it). */
static int fold_step(const zt_backend *b, const zt_fwd *f) {
    const cu_step *st = (const cu_step *)b->step_host;
    return b->tune.fuse_wo && b->fold_ok && f->n_rows == 1 && st->n_splits == 1 ? b->tune.wo_slices
                                                                                : 0;
}

/* Whether decode step f's attention, in its kernel of its own, takes the
 * per-warp K/V rings (tune.attn_decode 2): where a row sees at least 256
 * positions, two chunks for each key-group warp of one split. Below that
 * the ring's trip through shared memory was all it added (its copies then
 * at the default L2 policy): 8 sequences after 8 positions -0.9%, after
 * 160 -0.3%; at 512, +2.0%; one sequence +2.8 to +6.7% after 2,048
 * (bench/results/2026-11-29-cuda-h200.md). And where the rows see
 * tune.ring_keys keys together: then the step streams enough K/V for the
 * rings' evict-first copies to pay (2026-11-29-cuda-h200-3.md). */
static bool ring_step(const zt_backend *b, const zt_fwd *f, int fold) {
    if (b->tune.attn_decode != 2 || fold) return false;
    int sum = 0;
    for (int i = 0; i < f->n_rows; i++) sum += visible_keys(b->M, f->pos[i]);
    return most_keys(b->M, f, 0, f->n_rows) >= 2 * 16 * CU_ATTN_KW ||
           (b->tune.ring_keys > 0 && sum >= b->tune.ring_keys);
}

/* The descriptor (into M) a decode step launches with: the tuning's, or
 * for a long step the activation packs built before the first weight
 * loads as tune.long_pack says, which wins there and loses at short
 * contexts (bench/results/2026-11-27-cuda-h100-5.md). fold: the step's
 * fold_step; ring: its ring_step. */
static void step_variant(const zt_backend *b, bool long_, int fold, bool ring, cu_model &M) {
    M = b->M;
    if (long_) M.pack_first = (int)b->tune.long_pack;
    /* h quantized once by gate|up's phase kernels for down's */
    M.h_pack = b->tune.h_pack && M.h_rows > 0;
    /* x quantized once by down's phase kernels for qkv's */
    M.x_pack = b->tune.x_pack && M.x_ok;
    /* and by wo's phase kernel for gate|up's (not the fused attention +
     * wo, where every head group adds into every element) */
    M.g_pack = b->tune.g_pack && M.x_ok && !fold;
    M.attn_decode = attn_apart_kernel(b) ? (ring ? 2 : 1) : 0;
    M.kv_evict = b->tune.kv_evict;
}

static int decode_forward(zt_backend *b, const zt_fwd *f, zt_error *err) {
    int n_out, rc = decode_prepare(b, f, &n_out, err);
    if (rc) return rc;
    /* no output rows (a short prompt chunk): stop before lm_head */
    const int nr = row_template(f->n_rows), steps = b->n_plan - (n_out > 0 ? 0 : 2);
    if (b->tune.decode_mode == ZT_CUDA_GRAPH) {
        const bool long_ = long_step(b, f);
        const int nri = nr == 1 ? 0 : nr == 2 ? 1 : nr == 4 ? 2 : 3, fold = fold_step(b, f);
        const bool ring = ring_step(b, f, fold);
        const int gi =
            nri + (n_out > 0 ? 0 : 4) + (long_ ? 8 : 0) + (fold ? 16 : 0) + (ring ? 32 : 0);
        if (!b->graph[gi]) { /* the variant's descriptor matters only to the capture */
            cu_model M;
            step_variant(b, long_, fold, ring, M);
            cudaGraph_t g;
            CU_TRY(cudaStreamBeginCapture(b->stream, cudaStreamCaptureModeThreadLocal),
                   "graph capture");
            cudaError_t e = cudaSuccess;
            for (int k = 0; k < steps && e == cudaSuccess; k++)
                e = cu_decode_launch(M, b->layers_host, nr, b->plan[k], b->grid, b->dec_smem,
                                     b->tune.pdl, fold, b->stream);
            cudaError_t e2 = cudaStreamEndCapture(b->stream, &g);
            if (e != cudaSuccess) return cu_err(err, e, "decode graph capture");
            if (e2 != cudaSuccess) return cu_err(err, e2, "decode graph capture");
            e = cudaGraphInstantiate(&b->graph[gi], g, 0);
            cudaGraphDestroy(g);
            if (e != cudaSuccess) return cu_err(err, e, "decode graph instantiate");
        }
        b->launches += steps - (fold ? b->M.n_layers : 0);
        CU_TRY(cudaGraphLaunch(b->graph[gi], b->stream), "decode graph");
    } else {
        cu_model M;
        const int fold = fold_step(b, f);
        /* one by one: phase kernels, its descriptor */
        step_variant(b, long_step(b, f), fold, ring_step(b, f, fold), M);
        for (int k = 0; k < steps; k++) {
            b->launches += !(fold && b->plan[k].ph == CU_PH_WO);
            CU_TRY(cu_decode_launch(M, b->layers_host, nr, b->plan[k], b->grid, b->dec_smem,
                                    b->tune.pdl, fold, b->stream),
                   "decode phase");
        }
    }
    if (n_out > 0 && f->logits)
        CU_TRY(cudaMemcpyAsync(f->logits, b->M.logits, sizeof(float) * n_out * b->M.vocab,
                               cudaMemcpyDeviceToHost, b->stream),
               "logits download");
    if (n_out > 0 && f->argmax)
        CU_TRY(cudaMemcpyAsync(f->argmax, b->M.argmax, sizeof(int) * n_out, cudaMemcpyDeviceToHost,
                               b->stream),
               "argmax download");
    CU_TRY(cudaStreamSynchronize(b->stream), "decode step");
    return ZT_OK;
}

/* ---- batched path ------------------------------------------------------ */

/* How a GEMM of M rows, N outputs and K inputs runs: outputs [0, n_main)
 * in `split` K splits, the rest (a tail, when n_main < N) in tail_split.
 *
 * Small M (batched decode): with tune.gemm_split, the split whose grid
 * takes the least time by a count of waves x (k-steps a block + 3, the
 * block's fixed costs: its ring's fill, its epilogue's atomics): a
 * 32-row qkv GEMM's 72 tiles in 4 splits made 288 blocks on 264 slots, a
 * second wave as long as the first, where 3 splits fit one; without it,
 * splits double until the grid fills the slots. Prefill-sized M
 * with fewer tiles than slots (two blocks an SM): the split that makes
 * the fewest waves of full-K work, the smaller on a tie, because every
 * split is an atomic pass over C: the 512-row wo and down GEMMs (96
 * tiles) take 2 splits in one wave, not 4 in two. (Splits that fill the
 * idle slots of that wave lose: wo in 5 and down in 8 splits, 25,802
 * tok/s pp512 against 26,432 with 2; bench/results/
 * 2026-11-27-cuda-h100-4.md.) More tiles than slots: whole waves unsplit;
 * if they leave at most half a wave behind (Phi-3's qkv at 512 rows: 288
 * tiles on 264 slots, a second wave of 24 tiles as long as the first:
 * 167 TFLOP/s against gate|up's 252), the tail's tiles split over K into
 * a wave of their own (tune.gemm_tail; their sums meet by atomics, in
 * any order, as every split GEMM's do). */
struct gemm_plan {
    int split, n_main, tail_split;
};
static gemm_plan gemm_plan_for(const zt_backend *b, int M, int N, int K) {
    const int bm = M <= 32 ? 32 : M <= 64 ? 64 : 128, mt = (M + bm - 1) / bm, nt = (N + 127) / 128;
    const int blocks = mt * nt, steps = (K / 32 + 1) / 2, slots = 2 * b->n_sm;
    gemm_plan p = {1, N, 1};
    if (bm < 128 && b->tune.gemm_split) {
        long best = -1;
        for (int s = 1; s == 1 || steps / s >= 4; s++) {
            const long waves = (blocks * (long)s + slots - 1) / slots,
                       t = waves * ((steps + s - 1) / s + 3);
            if (best < 0 || t < best) best = t, p.split = s;
        }
    } else if (bm < 128) {
        while (blocks * p.split < slots && steps / (2 * p.split) >= 4) p.split *= 2;
    } else if (blocks < slots) {
        double best = 1.0; /* one wave of full-K blocks */
        for (int s = 2; blocks * (s / 2) < slots && steps / (2 * s) >= 4; s *= 2) {
            double w = (double)((blocks * s + slots - 1) / slots) / s;
            if (w < best - 1e-9) best = w, p.split = s;
        }
    } else if (b->tune.gemm_tail) {
        const int main_nt = blocks / slots * slots / mt, tail = mt * (nt - main_nt);
        if (tail > 0 && 2 * tail <= slots && steps >= 8) {
            p.n_main = main_nt * 128;
            p.tail_split = slots / tail < steps / 4 ? slots / tail : steps / 4;
        }
    }
    return p;
}

/* C (=) A W^T over outputs [row0, row0 + n) of W, or C += A W^T when
 * accumulate, in K splits; a split store zeroes C first. */
static int gemm_run(zt_backend *b, const __half *A, int lda, int m, const cu_mat &W, int row0,
                    int n, float *C, int ldc, bool accumulate, int split, const char *what,
                    zt_error *err) {
    int mode = accumulate ? CU_GEMM_ADD : CU_GEMM_STORE;
    if (split > 1) {
        if (!accumulate) {
            b->launches++;
            CU_TRY(cudaMemset2DAsync(C, sizeof(float) * ldc, 0, sizeof(float) * n, m, b->stream),
                   what);
        }
        mode = CU_GEMM_ATOMIC;
    }
    b->launches++;
    CU_TRY(
        cu_gemm_launch(A, lda, m, W, row0, n, C, ldc, mode, split, b->tune.gemm_depth, b->stream),
        what);
    return ZT_OK;
}

/* C (=) A W^T, or C += A W^T when accumulate, as gemm_plan_for says. */
static int gemm(zt_backend *b, const __half *A, int lda, int m, const cu_mat &W, int row0, int n,
                float *C, int ldc, bool accumulate, const char *what, zt_error *err) {
    const gemm_plan p = gemm_plan_for(b, m, n, W.n_in);
    int rc = gemm_run(b, A, lda, m, W, row0, p.n_main, C, ldc, accumulate, p.split, what, err);
    if (rc || p.n_main == n) return rc;
    return gemm_run(b, A, lda, m, W, row0 + p.n_main, n - p.n_main, C + p.n_main, ldc, accumulate,
                    p.tail_split, what, err);
}

static int chunk_forward(zt_backend *b, const zt_fwd *f, int r0, int n, zt_error *err) {
    cu_model &M = b->M;
    int n_out, first, rc;
    size_t bytes;
    if ((rc = build_step(b, f, r0, n, &n_out, &first, &bytes, err))) return rc;
    /* attention: runs of one sequence at consecutive positions -> tiles;
     * the other rows -> the split-K row kernel */
    uint8_t *base = b->step_host;
    size_t off = (bytes + 15) & ~(size_t)15;
    cu_attn_tile *tiles = (cu_attn_tile *)(base + off);
    int n_tiles = 0;
    off += sizeof(cu_attn_tile) * n;
    int *rows = (int *)(base + off);
    int n_rows_list = 0;
    off += sizeof(int) * n;
    bool tiles_ok = cu_attn_tiles_supported(M.hd);
    for (int i = 0; i < n;) {
        int j = i + 1;
        while (j < n && f->seq[r0 + j] == f->seq[r0 + i] &&
               f->pos[r0 + j] == f->pos[r0 + j - 1] + 1)
            j++;
        if (tiles_ok && j - i >= CU_TILE_MIN_RUN) {
            for (int k = i; k < j; k += 64) tiles[n_tiles++] = {k, j - k < 64 ? j - k : 64};
        } else {
            for (int k = i; k < j; k++) rows[n_rows_list++] = k;
        }
        i = j;
    }
    if (off > b->step_cap)
        return zt_fail(err, ZT_EINVAL, "cuda: batch too large for the step buffer");
    CU_TRY(cudaMemcpyAsync(b->step_dev, base, off, cudaMemcpyHostToDevice, b->stream),
           "step upload");
    const cu_attn_tile *tiles_dev = (const cu_attn_tile *)(b->step_dev + ((uint8_t *)tiles - base));
    const int *rows_dev = (const int *)(b->step_dev + ((uint8_t *)rows - base));

    b->launches++;
    CU_TRY(cu_embed_launch(M, n, ((const cu_step *)base)->token, b->p_resid, b->stream), "embed");
    for (int l = 0; l < M.n_layers; l++) {
        const cu_layer &L = b->layers_host[l];
        b->launches++;
        CU_TRY(cu_rmsnorm_launch(M, n, b->p_resid, NULL, L.attn_norm, b->p_xn, b->stream),
               "rmsnorm");
        if (L.mq.q == L.mk.q) {
            if ((rc = gemm(b, b->p_xn, M.dim_p, n, L.mq, 0, M.qkv_dim, b->p_qkv, M.qkv_dim, false,
                           "gemm qkv", err)))
                return rc;
        } else if ((rc = gemm(b, b->p_xn, M.dim_p, n, L.mq, 0, M.q_dim, b->p_qkv, M.qkv_dim, false,
                              "gemm q", err)) ||
                   (rc = gemm(b, b->p_xn, M.dim_p, n, L.mk, 0, M.kv_dim, b->p_qkv + M.q_dim,
                              M.qkv_dim, false, "gemm k", err)) ||
                   (rc = gemm(b, b->p_xn, M.dim_p, n, L.mv, 0, M.kv_dim,
                              b->p_qkv + M.q_dim + M.kv_dim, M.qkv_dim, false, "gemm v", err))) {
            return rc;
        }
        b->launches++;
        CU_TRY(cu_rope_kv_launch(M, l, n, b->p_qkv, L.bias, b->p_q16, b->stream), "rope_kv");
        b->launches += n_tiles > 0;
        CU_TRY(cu_attn_tiles_launch(M, l, tiles_dev, n_tiles, b->p_q16, b->p_att, b->stream),
               "attention tiles");
        for (int k = 0; k < n_rows_list;) {
            attn_args A;
            memset(&A, 0, sizeof A);
            int cnt = n_rows_list - k, lmax = 1;
            for (int i = k; i < n_rows_list; i++) {
                int v = visible_keys(M, f->pos[r0 + rows[i]]);
                if (v > lmax) lmax = v;
            }
            int ch = CU_ATTN_CHUNK_ROWS, ns = (lmax + ch - 1) / ch;
            if (cnt * ns > b->cap_row_splits) cnt = b->cap_row_splits / ns;
            A.q16 = b->p_q16, A.q_ld = M.q_dim, A.out16 = b->p_att, A.out_ld = M.q_dim_p;
            A.rows = rows_dev + k, A.n_list = cnt, A.n_splits = ns, A.chunk = ch;
            A.part_o = M.part_o, A.part_ml = M.part_ml, A.cnt = M.attn_cnt;
            b->launches++;
            CU_TRY(cu_attn_rows_launch(M, l, A, b->tune.attn_mma == 2 ? b->tune.attn_rows : 0,
                                       b->stream),
                   "attention rows");
            k += cnt;
        }
        if ((rc = gemm(b, b->p_att, M.q_dim_p, n, L.wo, 0, M.dim, b->p_resid, M.dim, true,
                       "gemm wo", err)))
            return rc;
        b->launches++;
        CU_TRY(cu_rmsnorm_launch(M, n, b->p_resid, NULL, L.ffn_norm, b->p_xn, b->stream),
               "rmsnorm");
        if (L.mg.wt == L.mu.wt && gemm_plan_for(b, n, 2 * M.ffn, M.dim).split == 1) {
            /* gate|up with silu in the epilogue: h straight from the GEMM */
            b->launches++;
            CU_TRY(cu_gemm_silu_launch(b->p_xn, M.dim_p, n, L.mg, L.og, L.mu, L.ou, M.ffn, b->p_h,
                                       M.ffn_p, b->tune.gemm_depth, b->stream),
                   "gemm gate_up silu");
        } else {
            if (L.mg.q == L.mu.q) {
                if ((rc = gemm(b, b->p_xn, M.dim_p, n, L.mg, 0, 2 * M.ffn, b->p_gu, 2 * M.ffn,
                               false, "gemm gate_up", err)))
                    return rc;
            } else if ((rc = gemm(b, b->p_xn, M.dim_p, n, L.mg, 0, M.ffn, b->p_gu, 2 * M.ffn, false,
                                  "gemm gate", err)) ||
                       (rc = gemm(b, b->p_xn, M.dim_p, n, L.mu, 0, M.ffn, b->p_gu + M.ffn,
                                  2 * M.ffn, false, "gemm up", err))) {
                return rc;
            }
            b->launches++;
            CU_TRY(cu_silu_launch(M, n, b->p_gu, b->p_h, b->stream), "silu");
        }
        if ((rc = gemm(b, b->p_h, M.ffn_p, n, L.down, 0, M.dim, b->p_resid, M.dim, true,
                       "gemm down", err)))
            return rc;
    }
    if (n_out > 0) {
        const int *out_rows_dev = ((const cu_step *)base)->out_row;
        b->launches++;
        CU_TRY(
            cu_rmsnorm_launch(M, n_out, b->p_resid, out_rows_dev, M.out_norm, b->p_xn, b->stream),
            "rmsnorm out");
        if ((rc = gemm(b, b->p_xn, M.dim_p, n_out, M.out, 0, M.vocab, b->p_logits, M.vocab, false,
                       "gemm lm_head", err)))
            return rc;
        if (f->argmax) {
            b->launches++;
            CU_TRY(cu_argmax_launch(M, n_out, b->p_logits, b->p_argmax, b->stream), "argmax");
            CU_TRY(cudaMemcpyAsync(f->argmax + first, b->p_argmax, sizeof(int) * n_out,
                                   cudaMemcpyDeviceToHost, b->stream),
                   "argmax download");
        }
        if (f->logits)
            CU_TRY(cudaMemcpyAsync(f->logits + (size_t)first * M.vocab, b->p_logits,
                                   sizeof(float) * n_out * M.vocab, cudaMemcpyDeviceToHost,
                                   b->stream),
                   "logits download");
    }
    /* the step buffer is reused by the next chunk */
    CU_TRY(cudaStreamSynchronize(b->stream), "batched forward");
    return ZT_OK;
}

static int cuda_forward(zt_backend *b, const zt_fwd *f, zt_error *err) {
    if (f->n_rows < 0 || f->n_rows > b->o.max_batch)
        return zt_fail(err, ZT_EINVAL, "cuda: batch of %d rows (max %d)", f->n_rows,
                       b->o.max_batch);
    if (f->n_out < 0 || f->n_out > f->n_rows)
        return zt_fail(err, ZT_EINVAL, "cuda: %d output rows for %d rows", f->n_out, f->n_rows);
    b->launches = 0;
    if (f->n_rows == 0) return ZT_OK;
    if (f->n_rows <= b->tune.max_decode_rows) return decode_forward(b, f, err);
    for (int r0 = 0; r0 < f->n_rows; r0 += b->chunk_rows) {
        int n = f->n_rows - r0 < b->chunk_rows ? f->n_rows - r0 : b->chunk_rows;
        int rc = chunk_forward(b, f, r0, n, err);
        if (rc) return rc;
    }
    return ZT_OK;
}

/* ---- knobs, profiling -------------------------------------------------- */

extern "C" void zt_cuda_get_tuning(const zt_backend *b, zt_cuda_tuning *t) { *t = b->tune; }

extern "C" int zt_cuda_set_tuning(zt_backend *b, const zt_cuda_tuning *t, zt_error *err) {
    if (t->max_decode_rows < 0 || t->max_decode_rows > b->M.pack_rows || t->decode_mode < 0 ||
        t->decode_mode > ZT_CUDA_PHASES || t->pf_bytes < 0 || t->attn_min_chunk < 16 ||
        t->attn_min_chunk > CU_ATTN_CHUNK_MAX || t->attn_min_chunk % 16 || t->attn_items < 1 ||
        t->attn_items > 16 || t->pf_mode < 0 || t->pf_mode > 3 || t->gemm_tail < 0 ||
        t->gemm_tail > 1 || t->long_from < 0 || (t->long_pack & ~(int)CU_WEIGHT_PHASES) ||
        t->fuse_wo < 0 || t->fuse_wo > 1 || t->wo_slices < 1 || t->wo_slices > 16 ||
        t->fold_upto < 0 || t->fold_upto > CU_ATTN_CHUNK_MAX || t->attn_mma < 0 ||
        t->attn_mma > 2 || t->h_pack < 0 || t->h_pack > 1 || t->gemm_depth < 1 ||
        t->gemm_depth > CU_GEMM_DEPTH_MAX || t->attn_rows < 0 || t->attn_rows > 2 ||
        t->x_pack < 0 || t->x_pack > 1 || t->g_pack < 0 || t->g_pack > 1 || t->gemm_split < 0 ||
        t->gemm_split > 1 || t->attn_decode < 0 || t->attn_decode > 2 || t->kv_evict < 0 ||
        t->kv_evict > 1 || t->ring_keys < 0)
        return zt_fail(err, ZT_EINVAL, "cuda: bad tuning");
    if (t->max_decode_rows > 0 && b->dec_smem > 0 && cu_decode_blocks_per_sm(b->dec_smem) < 1)
        return zt_fail(err, ZT_EUNSUP, "cuda: the decode kernel does not fit this device");
    if (t->fuse_wo && b->fold_ok &&
        !wo_slices_fit(b->M, b->layers_host, b->dec_smem, t->wo_slices, b->smem_optin))
        return zt_fail(err, ZT_EINVAL,
                       "cuda: %d Wo slices leave a slice too large for shared memory",
                       t->wo_slices);
    b->tune = *t;
    b->M.pf_bytes = t->pf_bytes, b->M.pf_mode = t->pf_mode;
    b->M.pack_first = t->pack_first ? (int)CU_WEIGHT_PHASES : 0;
    b->M.attn_mma = t->attn_mma;
    for (int i = 0; i < CU_GRAPHS; i++)
        if (b->graph[i]) cudaGraphExecDestroy(b->graph[i]), b->graph[i] = NULL;
    return ZT_OK;
}

static int cuda_dispatches(const zt_backend *b) { return b->launches; }

extern "C" const char *zt_cuda_phase_name(int ph) {
    static const char *names[CU_PH_COUNT] = {"qkv",     "kvq",  "attn",    "wo",
                                             "gate_up", "down", "lm_head", "argmax"};
    return ph >= 0 && ph < CU_PH_COUNT ? names[ph] : "?";
}

extern "C" int zt_cuda_profile_decode(zt_backend *b, const zt_fwd *f, double ms[ZT_CUDA_N_PHASES],
                                      zt_error *err) {
    for (int i = 0; i < CU_PH_COUNT; i++) ms[i] = 0;
    if (f->n_rows > b->tune.max_decode_rows || f->n_rows <= 0)
        return zt_fail(err, ZT_EINVAL, "cuda: profile needs a decode-sized batch");
    int n_out, rc = decode_prepare(b, f, &n_out, err);
    if (rc) return rc;
    int steps = b->n_plan - (n_out > 0 ? 0 : 2), nr = row_template(f->n_rows);
    cu_model M;
    const int fold = fold_step(b, f);
    step_variant(b, long_step(b, f), fold, ring_step(b, f, fold), M);
    cudaEvent_t *ev = (cudaEvent_t *)calloc(steps + 1, sizeof(cudaEvent_t));
    if (!ev) return zt_fail(err, ZT_ENOMEM, "out of memory");
    cudaError_t e = cudaSuccess;
    for (int k = 0; k <= steps && e == cudaSuccess; k++) e = cudaEventCreate(&ev[k]);
    for (int k = 0; k < steps && e == cudaSuccess; k++) {
        e = cudaEventRecord(ev[k], b->stream);
        if (e == cudaSuccess)
            e = cu_decode_launch(M, b->layers_host, nr, b->plan[k], b->grid, b->dec_smem, 0,
                                 fold_step(b, f), b->stream);
    }
    if (e == cudaSuccess) e = cudaEventRecord(ev[steps], b->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(b->stream);
    for (int k = 0; k < steps && e == cudaSuccess; k++) {
        float t = 0;
        e = cudaEventElapsedTime(&t, ev[k], ev[k + 1]);
        ms[b->plan[k].ph] += t;
    }
    for (int k = 0; k <= steps; k++)
        if (ev[k]) cudaEventDestroy(ev[k]);
    free(ev);
    if (e != cudaSuccess) return cu_err(err, e, "profile");
    return ZT_OK;
}

extern "C" int zt_cuda_timeline(zt_backend *b, const zt_fwd *f, int cap, int *n, int *ph,
                                int *layer, double (*t)[ZT_CUDA_TL_FIELDS], zt_error *err) {
    *n = 0;
    if (f->n_rows > b->tune.max_decode_rows || f->n_rows <= 0 ||
        b->grid * CU_ATTN_DECODE_PER_SM > CU_TL_BLOCKS)
        return zt_fail(err, ZT_EINVAL, "cuda: the timeline needs a decode-sized batch");
    const size_t words = CU_TL_AT(b->M.n_layers, 0, 0);
    if (!b->tl) b->tl = (unsigned long long *)dev_alloc(b, words * 8);
    unsigned long long *h = b->tl ? (unsigned long long *)malloc(words * 8) : NULL;
    if (!h) return zt_fail(err, ZT_ENOMEM, "out of memory");
    /* the phase kernels take the descriptor by value: graphs captured
     * without the timeline go, and so do the ones captured with it */
    auto drop_graphs = [b]() {
        for (int i = 0; i < CU_GRAPHS; i++)
            if (b->graph[i]) cudaGraphExecDestroy(b->graph[i]), b->graph[i] = NULL;
    };
    cudaError_t e = cudaMemsetAsync(b->tl, 0, words * 8, b->stream);
    if (e != cudaSuccess) return free(h), cu_err(err, e, "timeline");
    drop_graphs();
    b->M.tl = b->tl;
    int rc = decode_forward(b, f, err);
    b->M.tl = NULL;
    drop_graphs();
    e = cudaMemcpyAsync(h, b->tl, words * 8, cudaMemcpyDeviceToHost, b->stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(b->stream);
    if (rc || e != cudaSuccess) return free(h), rc ? rc : cu_err(err, e, "timeline");
    /* a launch's slot is (layer, phase): a layer with two QKV launches (Q/K/V
     * of different types) shows the last one, once */
    unsigned long long t0 = ~0ull;
    for (int k = 0; k < b->n_plan; k++) {
        const unsigned long long *v = h + CU_TL_AT(b->plan[k].layer, b->plan[k].ph, 0);
        if (v[0] && v[0] < t0) t0 = v[0];
    }
    /* per SM (field 6), the previous launch's last block end there, to
     * see where a launch's blocks start against their SM's last one */
    enum { SMS = 256 };
    unsigned long long prev_end[SMS] = {0}, cur_end[SMS];
    for (int k = 0; k < b->n_plan && *n < cap; k++) {
        const cu_launch &L = b->plan[k];
        /* a second launch in the same slot (QKV of two weight types) would
         * read the same entries again, and against themselves */
        if (k > 0 && b->plan[k - 1].layer == L.layer && b->plan[k - 1].ph == L.ph) continue;
        /* the attention's kernel of its own has CU_ATTN_DECODE_PER_SM
         * blocks an SM; means over the blocks that ran */
        const int blocks = L.ph == CU_PH_ARGMAX ? 1
                           : L.ph == CU_PH_ATTN ? b->grid * CU_ATTN_DECODE_PER_SM
                                                : b->grid;
        const unsigned long long *v = h + CU_TL_AT(L.layer, L.ph, 0);
        unsigned long long first = ~0ull, waited = 0, last = 0, last_start = 0;
        double work = 0, to_wait = 0, mark[3] = {0, 0, 0}, after_sm = 0;
        int marked[3] = {0, 0, 0}, ran = 0, beside = 0, on_sm = 0;
        memset(cur_end, 0, sizeof cur_end);
        for (int i = 0; i < blocks; i++, v += CU_TL_FIELDS) {
            if (!v[0]) continue; /* not run (no output rows, or fewer blocks) */
            ran++;
            const unsigned sm = (unsigned)v[6];
            if (sm < SMS) {
                if (prev_end[sm]) { /* its start after the SM's previous block ended */
                    after_sm += (double)v[0] - (double)prev_end[sm], on_sm++;
                    beside += v[0] < prev_end[sm];
                }
                cur_end[sm] = v[2] > cur_end[sm] ? v[2] : cur_end[sm];
            }
            first = v[0] < first ? v[0] : first;
            last_start = v[0] > last_start ? v[0] : last_start;
            waited = v[1] > waited ? v[1] : waited;
            to_wait += (double)(v[1] - v[0]);
            last = v[2] > last ? v[2] : last;
            work += (double)(v[2] - v[1]);
            for (int m = 0; m < 3; m++) /* mark 3 + m after the previous mark */
                if (v[3 + m]) mark[m] += (double)(v[3 + m] - v[2 + m - (m == 0)]), marked[m]++;
        }
        if (!last) continue;
        to_wait /= ran, work /= ran;
        ph[*n] = L.ph, layer[*n] = L.layer;
        t[*n][0] = (first - t0) * 1e-3, t[*n][1] = (waited - t0) * 1e-3;
        t[*n][2] = (last - t0) * 1e-3, t[*n][3] = work * 1e-3;
        for (int m = 0; m < 3; m++) t[*n][4 + m] = marked[m] ? mark[m] / marked[m] * 1e-3 : 0;
        t[*n][7] = (last_start - t0) * 1e-3, t[*n][8] = to_wait * 1e-3;
        t[*n][9] = beside, t[*n][10] = on_sm ? after_sm / on_sm * 1e-3 : 0;
        memcpy(prev_end, cur_end, sizeof prev_end);
        (*n)++;
    }
    free(h);
    return ZT_OK;
}

extern "C" int zt_cuda_device_info(char *name, int cap, int *n_sm, size_t *mem_bytes) {
    cudaDeviceProp p;
    if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return ZT_EBACKEND;
    snprintf(name, cap, "%s", p.name);
    *n_sm = p.multiProcessorCount;
    *mem_bytes = p.totalGlobalMem;
    return ZT_OK;
}

extern "C" const zt_backend_ops zt_cuda_backend = {
    "cuda", cuda_probe, cuda_create, cuda_forward, cuda_destroy, cuda_dispatches,
};
