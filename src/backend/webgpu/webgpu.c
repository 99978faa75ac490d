/*
 * The WebGPU backend: the CPU reference's forward pass (cpu.c) as WGSL
 * compute dispatches, for the wasm32 build that runs inside a browser tab.
 *
 * create() uploads the weights (kernels.c: formats the kernels read stay as
 * they are, Q8_0/Q4_0 are repacked to aligned words, the rest become F16 or
 * F32), allocates the paged KV cache and the activations, and records the
 * whole forward pass once as a plan: every dispatch with its pipeline, its
 * bind group (buffers and a uniform slot of static shapes) and a rule for
 * its grid. forward() writes the batch (tokens, positions, sequences, the
 * page table, the RoPE cos/sin of each row) into one buffer, sizes the
 * grids, submits the plan as one compute pass and reads back the argmax
 * (and the logits when asked). One forward, L layers:
 *
 *   embed                          x = table[token]                  1
 *   per layer:
 *     add_rmsnorm   xn = norm(x (+= down of the previous layer))     1
 *     matmul (qkv)  qkv = xn @ Wqkv (+ bias)                         1
 *     rope_kv       q = rope(q); cache[page] = rope(k), v            1
 *     attention     att = softmax(q k^T / sqrt(d)) v over the pages  1
 *     matmul (wo)   tmp = att @ Wo                                   1
 *     add_rmsnorm   x += tmp; xn = norm(x)                           1
 *     ffn           h = silu(xn @ Wgate) * (xn @ Wup)                1
 *     matmul (down) tmp = h @ Wdown                                  1
 *   add_rmsnorm     xn[i] = norm(x + tmp)[out_rows[i]]              1
 *   lm_head         logits = xn @ Woutput                            1
 *   argmax          best[i] = argmax(logits[i])                      1
 *
 * 8 L + 4 dispatches per forward (52 for the 6-layer demo model); the last
 * three are skipped when no row wants logits.
 *
 * Readbacks are asynchronous in the browser; zt_gpu_read suspends the wasm
 * stack through JSPI, so this file is plain synchronous C.
 */
#include "backend/webgpu/webgpu.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/host.h"
#include "backend/webgpu/kernels.h"
#include "util/error.h"

/* How a step's workgroup grid follows the batch. */
enum wg_grid {
    GRID_ROWS,        /* (n_rows) */
    GRID_OUT,         /* (n_out) */
    GRID_MATMUL_ROWS, /* (groups of n features over x, y; row tiles of 4 over z) */
    GRID_MATMUL_OUT,  /* the same over the n_out gathered rows */
    GRID_HEADS        /* (n heads, n_rows) */
};

typedef struct wg_step {
    uint32_t pipeline, bind_group;
    int grid;
    uint32_t n; /* features or heads, for the grids that need it */
} wg_step;

typedef struct wg_layer {
    uint32_t attn_norm, ffn_norm; /* [dim] f32 */
    uint32_t bqkv;                /* [qkv_dim] f32, or 0 without biases */
    wg_matrix qkv, wo, gate_up, down;
    uint32_t k_cache, v_cache;    /* [n_pages * ZT_KV_PAGE][kv_dim] kv_t */
} wg_layer;

struct zt_backend {
    const zt_config *c;
    zt_backend_opts o;
    wg_device dev;
    int q_dim, kv_dim, qkv_dim, rope_half;

    wg_layer *layers;   /* [n_layers] */
    wg_matrix embd;     /* [vocab][dim] token table */
    wg_matrix output;   /* [vocab][dim]; unused (buf 0) when tied to embd */
    uint32_t out_norm;  /* [dim] f32 */

    /* activations, max_batch rows each */
    uint32_t x;      /* [B][dim] residual stream */
    uint32_t xn;     /* [B][dim] normalized */
    uint32_t qkv;    /* [B][qkv_dim] */
    uint32_t q;      /* [B][q_dim] rotated queries */
    uint32_t att;    /* [B][q_dim] attention output */
    uint32_t tmp;    /* [B][dim] matmul output before the residual add */
    uint32_t h;      /* [B][ffn_dim] silu(gate) * up */
    uint32_t logits; /* [B][vocab] f32 */
    uint32_t best;   /* [B] u32 argmax */
    uint32_t none;   /* 16 bytes bound where a kernel's optional input is off */

    /* the batch: header words, then tokens, pos, seq, out_rows [B] each,
     * the page table [n_seq][max_pages_per_seq], rope (cos, sin) [B][half] */
    uint32_t batch;
    uint32_t *batch_host;
    uint32_t batch_words, off_tokens, off_pos, off_seq, off_out, off_pages, off_rope;

    wg_uniforms params;   /* one uniform slot per step */
    uint32_t uniforms;    /* GPU copy of params */
    wg_step *steps;
    int n_steps, cap_steps;
    int head_step;        /* steps[head_step..] need n_out > 0 */
    zt_gpu_dispatch *list;/* [n_steps] scratch for forward */
    int dispatches;       /* of the last forward */
};

static bool allow_f16 = true, allow_subgroups = true;
static int allow_split = 0;

void zt_webgpu_allow(bool shader_f16, bool subgroups, int split) {
    allow_f16 = shader_f16;
    allow_subgroups = subgroups;
    allow_split = split;
}

void zt_webgpu_describe(char *out, size_t cap) {
    char adapter[256];
    zt_gpu_adapter_name(adapter, sizeof adapter);
    wg_device dev;
    wg_device_init(&dev, allow_f16, allow_subgroups, allow_split, true, 0);
    snprintf(out, cap, "%s; %s path; %s reductions; %d thread%s per matmul row", adapter,
             dev.f16 ? "f16" : "f32", dev.subgroups ? "subgroup" : "workgroup-memory", dev.split,
             dev.split > 1 ? "s" : "");
}

/* ---- create helpers ------------------------------------------------------ */

/* A zeroed storage buffer, or 0 when it cannot be bound whole. */
static uint32_t new_buffer(size_t bytes, const char *label) {
    bytes = (bytes + 15) & ~(size_t)15;
    if (bytes > zt_gpu_max_binding()) return 0;
    return zt_gpu_buffer_create((uint32_t)bytes, ZT_GPU_STORAGE, label);
}

/* One binding of a step: a whole buffer. Binding 0 (the uniform slot) and
 * 1 (the batch) are added by add_step. */
typedef struct wg_bind {
    uint32_t binding, buffer;
} wg_bind;

/* Appends a step running `kernel` (weights of format fmt) with uniform p. */
static int add_step(zt_backend *b, int kernel, int fmt, const void *p, size_t p_size,
                    const wg_bind *binds, int n_binds, int grid, uint32_t n, const char *label,
                    zt_error *err) {
    uint32_t pipeline;
    int rc = wg_pipeline(&b->dev, kernel, fmt, &pipeline, err);
    if (rc) return rc;
    int slot = wg_uniforms_add(&b->params, p, p_size);
    if (slot < 0) return zt_fail(err, ZT_ENOMEM, "out of memory");
    zt_gpu_binding e[8];
    e[0] = (zt_gpu_binding){0, b->uniforms, (uint32_t)slot * WG_UNIFORM_SLOT, WG_UNIFORM_SLOT};
    e[1] = (zt_gpu_binding){1, b->batch, 0, 0};
    for (int i = 0; i < n_binds; i++) e[2 + i] = (zt_gpu_binding){binds[i].binding, binds[i].buffer, 0, 0};
    uint32_t group = zt_gpu_bind_group_create(pipeline, e, (uint32_t)(2 + n_binds), label);
    if (!group) return zt_fail(err, ZT_EBACKEND, "webgpu: cannot bind %s", label);
    if (b->n_steps == b->cap_steps) {
        int cap = b->cap_steps ? 2 * b->cap_steps : 64;
        wg_step *s = realloc(b->steps, sizeof *s * (size_t)cap);
        if (!s) return zt_fail(err, ZT_ENOMEM, "out of memory");
        b->steps = s;
        b->cap_steps = cap;
    }
    b->steps[b->n_steps++] = (wg_step){pipeline, group, grid, n};
    return ZT_OK;
}

/* Records a matmul y = W x (+ bias) over rows_word's row count. */
static int add_matmul(zt_backend *b, const wg_matrix *w, uint32_t x, uint32_t y, uint32_t ld_y,
                      uint32_t bias, int rows_word, const char *label, zt_error *err) {
    wg_p_matmul p = {(uint32_t)w->n_in, (uint32_t)w->n_out, ld_y, (uint32_t)rows_word,
                     bias != 0, w->scales_word, 0, 0};
    wg_bind binds[] = {{2, w->buf}, {3, x}, {4, y}, {5, bias ? bias : b->none}};
    return add_step(b, WG_MATMUL, w->fmt, &p, sizeof p, binds, 4,
                    rows_word == WG_B_N_OUT ? GRID_MATMUL_OUT : GRID_MATMUL_ROWS,
                    (uint32_t)w->n_out, label, err);
}

static int add_norm(zt_backend *b, uint32_t gamma, bool add, bool gather, const char *label,
                    zt_error *err) {
    wg_p_norm p = {(uint32_t)b->c->dim, b->c->rms_eps, add, gather};
    wg_bind binds[] = {{2, b->x}, {3, b->tmp}, {4, gamma}, {5, b->xn}};
    return add_step(b, WG_ADD_RMSNORM, WG_FMT_NONE, &p, sizeof p, binds, 4,
                    gather ? GRID_OUT : GRID_ROWS, 0, label, err);
}

/* The whole forward pass as steps (see the table at the top). */
static int record_plan(zt_backend *b, zt_error *err) {
    const zt_config *c = b->c;
    char label[64];
    int rc;
    wg_p_embed pe = {(uint32_t)c->dim, b->embd.scales_word, 0, 0};
    wg_bind be[] = {{2, b->embd.buf}, {3, b->x}};
    if ((rc = add_step(b, WG_EMBED, b->embd.fmt, &pe, sizeof pe, be, 2, GRID_ROWS, 0, "embed",
                       err)))
        return rc;
    for (int l = 0; l < c->n_layers; l++) {
        const wg_layer *L = &b->layers[l];
        snprintf(label, sizeof label, "L%d attn_norm", l);
        if ((rc = add_norm(b, L->attn_norm, l > 0, false, label, err))) return rc;
        snprintf(label, sizeof label, "L%d qkv", l);
        if ((rc = add_matmul(b, &L->qkv, b->xn, b->qkv, (uint32_t)b->qkv_dim, L->bqkv,
                             WG_B_N_ROWS, label, err)))
            return rc;
        wg_p_rope pr = {(uint32_t)c->head_dim, (uint32_t)c->rope_dim, c->rope_interleaved,
                        (uint32_t)b->q_dim, (uint32_t)b->kv_dim, (uint32_t)b->qkv_dim, 0, 0};
        wg_bind br[] = {{2, b->qkv}, {3, b->q}, {4, L->k_cache}, {5, L->v_cache}};
        snprintf(label, sizeof label, "L%d rope_kv", l);
        if ((rc = add_step(b, WG_ROPE_KV, WG_FMT_NONE, &pr, sizeof pr, br, 4, GRID_ROWS, 0, label,
                           err)))
            return rc;
        wg_p_attention pa = {(uint32_t)c->n_heads, (uint32_t)c->n_kv_heads, (uint32_t)c->head_dim,
                             (uint32_t)b->q_dim, (uint32_t)b->kv_dim,
                             (uint32_t)(c->sliding_window > 0 ? c->sliding_window : 0),
                             1.0f / sqrtf((float)c->head_dim), 0};
        wg_bind ba[] = {{2, b->q}, {3, L->k_cache}, {4, L->v_cache}, {5, b->att}};
        snprintf(label, sizeof label, "L%d attention", l);
        if ((rc = add_step(b, WG_ATTENTION, WG_FMT_NONE, &pa, sizeof pa, ba, 4, GRID_HEADS,
                           (uint32_t)c->n_heads, label, err)))
            return rc;
        snprintf(label, sizeof label, "L%d wo", l);
        if ((rc = add_matmul(b, &L->wo, b->att, b->tmp, (uint32_t)c->dim, 0, WG_B_N_ROWS, label,
                             err)))
            return rc;
        snprintf(label, sizeof label, "L%d ffn_norm", l);
        if ((rc = add_norm(b, L->ffn_norm, true, false, label, err))) return rc;
        wg_p_ffn pf = {(uint32_t)c->dim, (uint32_t)c->ffn_dim, L->gate_up.scales_word, 0};
        wg_bind bf[] = {{2, L->gate_up.buf}, {3, b->xn}, {4, b->h}};
        snprintf(label, sizeof label, "L%d ffn", l);
        if ((rc = add_step(b, WG_FFN, L->gate_up.fmt, &pf, sizeof pf, bf, 3, GRID_MATMUL_ROWS,
                           (uint32_t)c->ffn_dim, label, err)))
            return rc;
        snprintf(label, sizeof label, "L%d down", l);
        if ((rc = add_matmul(b, &L->down, b->h, b->tmp, (uint32_t)c->dim, 0, WG_B_N_ROWS, label,
                             err)))
            return rc;
    }
    b->head_step = b->n_steps;
    if ((rc = add_norm(b, b->out_norm, c->n_layers > 0, true, "output_norm", err))) return rc;
    const wg_matrix *out = b->output.buf ? &b->output : &b->embd;
    if ((rc = add_matmul(b, out, b->xn, b->logits, (uint32_t)c->n_vocab, 0, WG_B_N_OUT, "lm_head",
                         err)))
        return rc;
    wg_p_argmax pm = {(uint32_t)c->n_vocab, 0, 0, 0};
    wg_bind bm[] = {{2, b->logits}, {3, b->best}};
    return add_step(b, WG_ARGMAX, WG_FMT_NONE, &pm, sizeof pm, bm, 2, GRID_OUT, 0, "argmax", err);
}

/* ---- create / destroy ------------------------------------------------------ */

static void wg_destroy(zt_backend *b) {
    if (!b) return;
    if (b->layers) {
        for (int l = 0; l < b->c->n_layers; l++) {
            wg_layer *L = &b->layers[l];
            uint32_t bufs[] = {L->attn_norm, L->ffn_norm, L->bqkv, L->k_cache, L->v_cache};
            for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
                if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
            wg_matrix_free(&L->qkv), wg_matrix_free(&L->wo);
            wg_matrix_free(&L->gate_up), wg_matrix_free(&L->down);
        }
        free(b->layers);
    }
    wg_matrix_free(&b->embd);
    wg_matrix_free(&b->output);
    uint32_t bufs[] = {b->out_norm, b->x, b->xn, b->qkv, b->q, b->att, b->tmp, b->h,
                       b->logits, b->best, b->none, b->batch, b->uniforms};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) zt_gpu_buffer_destroy(bufs[i]);
    wg_uniforms_free(&b->params);
    free(b->steps);
    free(b->list);
    free(b->batch_host);
    free(b);
}

/* Uploads one layer's weights and allocates its KV pages. */
static int upload_layer(zt_backend *b, const zt_layer_weights *W, wg_layer *L, int l,
                        zt_error *err) {
    char label[64];
    int rc;
    const zt_tensor *qkv[3] = {W->wqkv ? W->wqkv : W->wq, W->wk, W->wv};
    const zt_tensor *gate_up[2] = {W->w_gate_up ? W->w_gate_up : W->w_gate, W->w_up};
    snprintf(label, sizeof label, "L%d wqkv", l);
    if ((rc = wg_matrix_upload(&L->qkv, qkv, W->wqkv ? 1 : 3, label, err))) return rc;
    snprintf(label, sizeof label, "L%d wo", l);
    if ((rc = wg_matrix_upload(&L->wo, &W->wo, 1, label, err))) return rc;
    snprintf(label, sizeof label, "L%d w_gate_up", l);
    if ((rc = wg_matrix_upload(&L->gate_up, gate_up, W->w_gate_up ? 1 : 2, label, err))) return rc;
    snprintf(label, sizeof label, "L%d w_down", l);
    if ((rc = wg_matrix_upload(&L->down, &W->w_down, 1, label, err))) return rc;

    snprintf(label, sizeof label, "L%d attn_norm", l);
    L->attn_norm = wg_vector_upload(&W->attn_norm, NULL, 1, label, NULL);
    snprintf(label, sizeof label, "L%d ffn_norm", l);
    L->ffn_norm = wg_vector_upload(&W->ffn_norm, NULL, 1, label, NULL);
    if (!L->attn_norm || !L->ffn_norm)
        return zt_fail(err, ZT_EBACKEND, "webgpu: cannot allocate layer %d norms", l);
    if (W->bq || W->bk || W->bv) {
        const zt_tensor *bias[3] = {W->bq, W->bk, W->bv};
        int zeros[3] = {b->q_dim, b->kv_dim, b->kv_dim};
        snprintf(label, sizeof label, "L%d bqkv", l);
        if (!(L->bqkv = wg_vector_upload(bias, zeros, 3, label, NULL)))
            return zt_fail(err, ZT_EBACKEND, "webgpu: cannot allocate layer %d biases", l);
    }

    size_t elem = b->dev.kv_f16 && b->dev.f16 ? 2 : 4;
    size_t kv_bytes = (size_t)b->o.n_pages * ZT_KV_PAGE * b->kv_dim * elem;
    snprintf(label, sizeof label, "L%d k_cache", l);
    L->k_cache = new_buffer(kv_bytes, label);
    snprintf(label, sizeof label, "L%d v_cache", l);
    L->v_cache = new_buffer(kv_bytes, label);
    if (!L->k_cache || !L->v_cache)
        return zt_fail(err, ZT_EBACKEND,
                       "webgpu: cannot allocate layer %d's KV cache (%zu MiB each for K and V; "
                       "lower the context)", l, kv_bytes >> 20);
    return ZT_OK;
}

static int wg_create(const zt_model *m, const zt_backend_opts *o, zt_backend **out,
                     zt_error *err) {
    *out = NULL;
    if (o->kv_type == ZT_KV_Q8)
        return zt_fail(err, ZT_EUNSUP, "webgpu: the q8 KV cache is not implemented (f16, f32)");
    const zt_config *c = &m->cfg;
    if (c->head_dim % 2 || c->dim % 4 || c->ffn_dim % 4 || (c->n_heads * c->head_dim) % 4)
        return zt_fail(err, ZT_EUNSUP, "webgpu: dim, ffn and n_heads * head_dim must be "
                                       "multiples of 4 (model has %d, %d, %d)",
                       c->dim, c->ffn_dim, c->n_heads * c->head_dim);
    zt_backend *b = calloc(1, sizeof *b);
    if (!b) return zt_fail(err, ZT_ENOMEM, "out of memory");
    b->c = c;
    b->o = *o;
    b->q_dim = c->n_heads * c->head_dim;
    b->kv_dim = c->n_kv_heads * c->head_dim;
    b->qkv_dim = b->q_dim + 2 * b->kv_dim;
    b->rope_half = c->rope_dim / 2;
    wg_device_init(&b->dev, allow_f16, allow_subgroups, allow_split, o->kv_type == ZT_KV_F16,
                   c->head_dim);
    int rc;
    char msg[sizeof err->msg];

    if (!(b->layers = calloc((size_t)c->n_layers, sizeof *b->layers))) goto oom;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = upload_layer(b, &m->w.layers[l], &b->layers[l], l, err))) goto fail;
    if ((rc = wg_matrix_upload(&b->embd, &m->w.token_embd, 1, "token_embd", err))) goto fail;
    if (!c->tied_output && m->w.output != m->w.token_embd &&
        (rc = wg_matrix_upload(&b->output, &m->w.output, 1, "output", err)))
        goto fail;
    if (!(b->out_norm = wg_vector_upload(&m->w.output_norm, NULL, 1, "output_norm", NULL)))
        goto gpu_oom;

    size_t B = (size_t)o->max_batch;
    b->x = new_buffer(4 * B * c->dim, "x");
    b->xn = new_buffer(4 * B * c->dim, "xn");
    b->tmp = new_buffer(4 * B * c->dim, "tmp");
    b->qkv = new_buffer(4 * B * b->qkv_dim, "qkv");
    b->q = new_buffer(4 * B * b->q_dim, "q");
    b->att = new_buffer(4 * B * b->q_dim, "att");
    b->h = new_buffer(4 * B * c->ffn_dim, "h");
    b->logits = new_buffer(4 * B * c->n_vocab, "logits");
    b->best = new_buffer(4 * B, "argmax");
    b->none = new_buffer(16, "none");
    if (!b->x || !b->xn || !b->tmp || !b->qkv || !b->q || !b->att || !b->h || !b->logits ||
        !b->best || !b->none)
        goto gpu_oom;

    b->off_tokens = WG_B_HEADER;
    b->off_pos = b->off_tokens + (uint32_t)B;
    b->off_seq = b->off_pos + (uint32_t)B;
    b->off_out = b->off_seq + (uint32_t)B;
    b->off_pages = b->off_out + (uint32_t)B;
    b->off_rope = b->off_pages + (uint32_t)(o->n_seq * o->max_pages_per_seq);
    b->batch_words = b->off_rope + (uint32_t)(B * b->rope_half * 2);
    if (!(b->batch_host = calloc(b->batch_words, 4))) goto oom;
    uint32_t *hdr = b->batch_host;
    hdr[WG_B_TOKENS] = b->off_tokens, hdr[WG_B_POS] = b->off_pos, hdr[WG_B_SEQ] = b->off_seq;
    hdr[WG_B_OUT_ROWS] = b->off_out, hdr[WG_B_PAGE_TABLE] = b->off_pages;
    hdr[WG_B_ROPE] = b->off_rope, hdr[WG_B_PAGES_PER_SEQ] = (uint32_t)o->max_pages_per_seq;
    hdr[WG_B_PAGE_SIZE] = ZT_KV_PAGE;
    if (!(b->batch = new_buffer(4 * (size_t)b->batch_words, "batch"))) goto gpu_oom;
    zt_gpu_buffer_write(b->batch, 0, hdr, 4 * WG_B_HEADER);

    /* one uniform slot per step: 8 per layer and 4 around them */
    size_t n_slots = 8 * (size_t)c->n_layers + 4;
    b->uniforms = zt_gpu_buffer_create((uint32_t)(n_slots * WG_UNIFORM_SLOT), ZT_GPU_UNIFORM,
                                       "uniforms");
    if (!b->uniforms) goto gpu_oom;
    if ((rc = record_plan(b, err))) goto fail;
    zt_gpu_buffer_write(b->uniforms, 0, b->params.data, (uint32_t)(b->params.n * WG_UNIFORM_SLOT));
    if (!(b->list = malloc(sizeof *b->list * (size_t)b->n_steps))) goto oom;
    if (zt_gpu_check(msg, sizeof msg)) {
        rc = zt_fail(err, ZT_EBACKEND, "webgpu: %s", msg);
        goto fail;
    }
    *out = b;
    return ZT_OK;
oom:
    rc = zt_fail(err, ZT_ENOMEM, "webgpu: out of memory");
    goto fail;
gpu_oom:
    rc = zt_fail(err, ZT_EBACKEND, "webgpu: cannot allocate the activations for a batch of %d "
                                   "rows (lower the batch or the context)", o->max_batch);
fail:
    wg_destroy(b);
    return rc;
}

/* ---- forward ----------------------------------------------------------------- */

/* Writes the rows, the page table and the RoPE table of this call. */
static void write_batch(zt_backend *b, const zt_fwd *f) {
    uint32_t *w = b->batch_host;
    uint32_t n = (uint32_t)f->n_rows;
    w[WG_B_N_ROWS] = n;
    w[WG_B_N_OUT] = (uint32_t)f->n_out;
    memcpy(w + b->off_tokens, f->tokens, 4 * n);
    memcpy(w + b->off_pos, f->pos, 4 * n);
    memcpy(w + b->off_seq, f->seq, 4 * n);
    memcpy(w + b->off_out, f->out_rows, 4 * (size_t)f->n_out);
    memcpy(w + b->off_pages, f->page_table, 4 * (size_t)b->o.n_seq * b->o.max_pages_per_seq);
    /* the CPU backend's own angles: pos * inv_freq in f32, then cosf/sinf */
    float *rope = (float *)(w + b->off_rope);
    for (uint32_t r = 0; r < n; r++)
        for (int i = 0; i < b->rope_half; i++) {
            float angle = (float)f->pos[r] * b->c->rope_inv_freq[i];
            rope[2 * (r * b->rope_half + i)] = cosf(angle);
            rope[2 * (r * b->rope_half + i) + 1] = sinf(angle);
        }
    zt_gpu_buffer_write(b->batch, 0, w, 4 * WG_B_HEADER);
    zt_gpu_buffer_write(b->batch, 4 * b->off_tokens, w + b->off_tokens, 4 * n);
    zt_gpu_buffer_write(b->batch, 4 * b->off_pos, w + b->off_pos, 4 * n);
    zt_gpu_buffer_write(b->batch, 4 * b->off_seq, w + b->off_seq, 4 * n);
    if (f->n_out) zt_gpu_buffer_write(b->batch, 4 * b->off_out, w + b->off_out, 4 * f->n_out);
    zt_gpu_buffer_write(b->batch, 4 * b->off_pages, w + b->off_pages,
                        4 * (uint32_t)(b->o.n_seq * b->o.max_pages_per_seq));
    if (b->rope_half)
        zt_gpu_buffer_write(b->batch, 4 * b->off_rope, w + b->off_rope,
                            4 * n * (uint32_t)b->rope_half * 2);
}

static int wg_forward(zt_backend *b, const zt_fwd *f, zt_error *err) {
    if (f->n_rows <= 0 || f->n_rows > b->o.max_batch)
        return zt_fail(err, ZT_EINVAL, "webgpu: batch of %d rows (1 to %d)", f->n_rows,
                       b->o.max_batch);
    write_batch(b, f);
    uint32_t rows = (uint32_t)f->n_rows, outs = (uint32_t)f->n_out;
    int n = f->n_out > 0 ? b->n_steps : b->head_step;
    for (int i = 0; i < n; i++) {
        const wg_step *s = &b->steps[i];
        uint32_t x = 1, y = 1, z = 1;
        switch (s->grid) {
        case GRID_ROWS: x = rows; break;
        case GRID_OUT: x = outs; break;
        case GRID_MATMUL_ROWS:
            wg_grid_split(wg_feature_groups(&b->dev, s->n), &x, &y), z = (rows + 3) / 4;
            break;
        case GRID_MATMUL_OUT:
            wg_grid_split(wg_feature_groups(&b->dev, s->n), &x, &y), z = (outs + 3) / 4;
            break;
        case GRID_HEADS: x = s->n, y = rows; break;
        }
        b->list[i] = (zt_gpu_dispatch){s->pipeline, s->bind_group, x, y, z};
    }
    zt_gpu_submit(b->list, (uint32_t)n);
    b->dispatches = n;
    if (f->n_out > 0 && f->argmax &&
        zt_gpu_read(b->best, 0, 4 * outs, f->argmax) != 0)
        return zt_fail(err, ZT_EBACKEND, "webgpu: reading the argmax back failed");
    if (f->n_out > 0 && f->logits &&
        zt_gpu_read(b->logits, 0, 4 * outs * (uint32_t)b->c->n_vocab, f->logits) != 0)
        return zt_fail(err, ZT_EBACKEND, "webgpu: reading the logits back failed");
    return ZT_OK;
}

static int wg_dispatches(const zt_backend *b) { return b->dispatches; }

static int wg_probe(zt_error *err) {
    if (!(zt_gpu_features() & ZT_GPU_HAVE_DEVICE))
        return zt_fail(err, ZT_EBACKEND, "no WebGPU device (navigator.gpu gave no adapter)");
    return ZT_OK;
}

const zt_backend_ops zt_webgpu_backend = {
    .name = "webgpu",
    .probe = wg_probe,
    .create = wg_create,
    .forward = wg_forward,
    .destroy = wg_destroy,
    .dispatches = wg_dispatches,
};
