/*
 * The CPU backend: the reference forward pass that every other backend is
 * checked against. Plain C over a thread pool; the matmuls (kernels.h) are
 * the only SIMD code and take ~all of the time.
 *
 * One forward call runs a batch of (sequence, position, token) rows:
 *
 *   x = embed(tokens)                                  [n, dim]
 *   for each layer:
 *     qkv = rmsnorm(x) @ Wqkv (+ bias); rope(q, k)     [n, q_dim + 2 kv_dim]
 *     write k, v into the paged cache                  every row first ...
 *     att = attention(q, cache of the row's sequence)  ... then every row attends
 *     x  += att @ Wo
 *     x  += silu(rmsnorm(x) @ Wgate) * (rmsnorm(x) @ Wup) @ Wdown
 *   logits = rmsnorm(x[out rows]) @ Woutput            [n_out, vocab]
 *
 * KV cache: per layer, n_pages pages of ZT_KV_PAGE positions, each position
 * a [kv_dim] vector of K and one of V, f16 (default) or f32.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__F16C__) && defined(__FMA__)
#include <immintrin.h>
#endif

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/f16.h"

typedef struct cpu_layer {
    float *attn_norm, *ffn_norm;  /* [dim] f32 copies */
    float *bq, *bk, *bv;          /* [q_dim], [kv_dim], [kv_dim] or NULL */
    cpu_matrix qkv[3];            /* fused in qkv[0], or q, k, v */
    int n_qkv;
    cpu_matrix wo;
    cpu_matrix gate_up[2];        /* fused in gate_up[0], or gate, up */
    int n_gate_up;
    cpu_matrix down;
} cpu_layer;

struct zt_backend {
    const zt_model *model;
    const zt_config *c;
    zt_backend_opts o;
    cpu_pool *pool;
    int q_dim, kv_dim, qkv_dim;

    cpu_layer *layers;            /* [n_layers] */
    float *out_norm;              /* [dim] */
    cpu_matrix lm_head;

    void *k_cache, *v_cache;      /* [n_layers][n_pages][ZT_KV_PAGE][kv_dim] f16 or f32 */
    size_t kv_elem;               /* 2 or 4 bytes */

    /* scratch, sized for max_batch rows */
    float *x;       /* [B, dim] residual stream */
    float *xn;      /* [B, dim] normalized */
    float *qkv;     /* [B, qkv_dim] */
    float *att;     /* [B, q_dim] attention output */
    float *gu;      /* [B, 2 ffn_dim] gate | up */
    float *h;       /* [B, ffn_dim] silu(gate) * up */
    float *tmp;     /* [B, dim] matmul output before the residual add */
    float *scores;  /* [n_threads, max_ctx] attention scores per thread */
    float *logits;  /* [B, vocab] when the caller wants only argmax */
};

/* ---- small ops ------------------------------------------------------- */

static void rmsnorm(float *out, const float *x, const float *gamma, int n, float eps) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) out[i] = x[i] * scale * gamma[i];
}

/* Rotates the first rope_dim dims of each head of vec [n_heads, head_dim]
 * by pos * inv_freq, pairing as the model's convention says. */
static void rope(float *vec, int n_heads, const zt_config *c, int pos) {
    int half = c->rope_dim / 2;
    for (int i = 0; i < half; i++) {
        float angle = (float)pos * c->rope_inv_freq[i];
        float cs = cosf(angle), sn = sinf(angle);
        int a = c->rope_interleaved ? 2 * i : i;
        int b = c->rope_interleaved ? 2 * i + 1 : i + half;
        for (int h = 0; h < n_heads; h++) {
            float *v = vec + h * c->head_dim;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * cs - x1 * sn;
            v[b] = x0 * sn + x1 * cs;
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

static void *kv_at(const zt_backend *b, void *cache, int layer, int page, int slot) {
    size_t pos = ((size_t)layer * b->o.n_pages + page) * ZT_KV_PAGE + slot;
    return (char *)cache + pos * b->kv_dim * b->kv_elem;
}

static void kv_store(const zt_backend *b, void *dst, const float *src) {
    if (b->o.kv_type == ZT_KV_F32) {
        memcpy(dst, src, sizeof(float) * b->kv_dim);
        return;
    }
    uint16_t *d = dst;
    int i = 0;
#if defined(__F16C__) && defined(__FMA__)
    for (; i + 8 <= b->kv_dim; i += 8)
        _mm_storeu_si128((__m128i *)(d + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
    for (; i < b->kv_dim; i++) d[i] = zt_f32_to_f16(src[i]);
}

/* Attention reads every cached K and V once per (row, head): for long
 * prompts that is the largest cost after the matmuls, so the f16 paths
 * convert eight values at a time where the CPU has F16C. */
#if defined(__F16C__) && defined(__FMA__)
static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}
#endif

static float kv_dot(const zt_backend *b, const void *k, const float *q, int n) {
    float s = 0;
    int i = 0;
    if (b->o.kv_type == ZT_KV_F32) {
        const float *kf = k;
        for (; i < n; i++) s += q[i] * kf[i];
        return s;
    }
    const uint16_t *kh = k;
#if defined(__F16C__) && defined(__FMA__)
    /* two accumulators: a head is only 8-16 vectors, so the FMA chain's
     * latency, not its throughput, would set the pace with one */
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    for (; i + 16 <= n; i += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kh + i))),
                               _mm256_loadu_ps(q + i), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kh + i + 8))),
                               _mm256_loadu_ps(q + i + 8), acc1);
    }
    for (; i + 8 <= n; i += 8)
        acc0 = _mm256_fmadd_ps(_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(kh + i))),
                               _mm256_loadu_ps(q + i), acc0);
    s = hsum256(_mm256_add_ps(acc0, acc1));
#endif
    for (; i < n; i++) s += q[i] * zt_f16_to_f32(kh[i]);
    return s;
}

static void kv_axpy(const zt_backend *b, float *out, float w, const void *v, int n) {
    int i = 0;
    if (b->o.kv_type == ZT_KV_F32) {
        const float *vf = v;
        for (; i < n; i++) out[i] += w * vf[i];
        return;
    }
    const uint16_t *vh = v;
#if defined(__F16C__) && defined(__FMA__)
    __m256 wv = _mm256_set1_ps(w);
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(out + i,
                         _mm256_fmadd_ps(wv,
                                         _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(vh + i))),
                                         _mm256_loadu_ps(out + i)));
#endif
    for (; i < n; i++) out[i] += w * zt_f16_to_f32(vh[i]);
}

/* ---- attention ------------------------------------------------------- */

typedef struct attn_job {
    zt_backend *b;
    const zt_fwd *f;
    int layer, n_rows;
} attn_job;

/* One (row, head) pair at a time: scores over the row's visible positions
 * (causal, and within the sliding window), softmax, weighted sum of V. */
static void attention_worker(void *ctx, int ith, int nth) {
    attn_job *j = ctx;
    zt_backend *b = j->b;
    const zt_config *c = b->c;
    int hd = c->head_dim, group = c->n_heads / c->n_kv_heads;
    float scale = 1.0f / sqrtf((float)hd);
    float *s = b->scores + (size_t)ith * b->o.max_pages_per_seq * ZT_KV_PAGE;
    int n_items = j->n_rows * c->n_heads;
    for (int item = ith; item < n_items; item += nth) {
        int r = item / c->n_heads, h = item % c->n_heads, kvh = h / group;
        int pos = j->f->pos[r];
        const int32_t *pages = j->f->page_table + (size_t)j->f->seq[r] * b->o.max_pages_per_seq;
        const float *q = b->qkv + (size_t)r * b->qkv_dim + h * hd;
        int lo = c->sliding_window > 0 && pos - c->sliding_window + 1 > 0
                     ? pos - c->sliding_window + 1 : 0;
        float mx = -FLT_MAX;
        for (int t = lo; t <= pos; t++) {
            const char *k = kv_at(b, b->k_cache, j->layer, pages[t / ZT_KV_PAGE], t % ZT_KV_PAGE);
            s[t] = kv_dot(b, k + (size_t)kvh * hd * b->kv_elem, q, hd) * scale;
            if (s[t] > mx) mx = s[t];
        }
        float sum = 0;
        for (int t = lo; t <= pos; t++) sum += s[t] = expf(s[t] - mx);
        float *out = b->att + (size_t)r * b->q_dim + h * hd;
        memset(out, 0, sizeof(float) * hd);
        for (int t = lo; t <= pos; t++) {
            const char *v = kv_at(b, b->v_cache, j->layer, pages[t / ZT_KV_PAGE], t % ZT_KV_PAGE);
            kv_axpy(b, out, s[t] / sum, v + (size_t)kvh * hd * b->kv_elem, hd);
        }
    }
}

/* ---- forward --------------------------------------------------------- */

static void embed(const zt_backend *b, const zt_fwd *f) {
    const zt_tensor *t = b->model->w.token_embd;
    size_t row = quant_row_bytes(t->type, b->c->dim);
    for (int r = 0; r < f->n_rows; r++)
        quant_dequant_row(t->type, (const char *)t->data + (size_t)f->tokens[r] * row,
                          b->x + (size_t)r * b->c->dim, b->c->dim);
}

static void add_bias(float *y, int n_rows, int ld, const float *bias, int n) {
    if (!bias) return;
    for (int r = 0; r < n_rows; r++)
        for (int i = 0; i < n; i++) y[(size_t)r * ld + i] += bias[i];
}

static void residual_add(float *x, const float *d, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += d[i];
}

static void layer_forward(zt_backend *b, const zt_fwd *f, int l) {
    const zt_config *c = b->c;
    const cpu_layer *L = &b->layers[l];
    int n = f->n_rows, dim = c->dim, ffn = c->ffn_dim;

    /* qkv: rmsnorm -> matmul (+bias) -> rope -> paged KV write */
    for (int r = 0; r < n; r++)
        rmsnorm(b->xn + (size_t)r * dim, b->x + (size_t)r * dim, L->attn_norm, dim, c->rms_eps);
    int off = 0;
    for (int i = 0; i < L->n_qkv; i++) {
        cpu_matmul(b->pool, &L->qkv[i], b->xn, n, b->qkv + off, b->qkv_dim);
        off += (int)L->qkv[i].n_out;
    }
    add_bias(b->qkv, n, b->qkv_dim, L->bq, b->q_dim);
    add_bias(b->qkv + b->q_dim, n, b->qkv_dim, L->bk, b->kv_dim);
    add_bias(b->qkv + b->q_dim + b->kv_dim, n, b->qkv_dim, L->bv, b->kv_dim);
    for (int r = 0; r < n; r++) {
        float *q = b->qkv + (size_t)r * b->qkv_dim, *k = q + b->q_dim, *v = k + b->kv_dim;
        rope(q, c->n_heads, c, f->pos[r]);
        rope(k, c->n_kv_heads, c, f->pos[r]);
        int page = f->page_table[(size_t)f->seq[r] * b->o.max_pages_per_seq + f->pos[r] / ZT_KV_PAGE];
        int slot = f->pos[r] % ZT_KV_PAGE;
        kv_store(b, kv_at(b, b->k_cache, l, page, slot), k);
        kv_store(b, kv_at(b, b->v_cache, l, page, slot), v);
    }

    /* attention, then the output projection into the residual */
    attn_job job = {b, f, l, n};
    cpu_pool_run(b->pool, attention_worker, &job);
    cpu_matmul(b->pool, &L->wo, b->att, n, b->tmp, dim);
    residual_add(b->x, b->tmp, (size_t)n * dim);

    /* ffn: rmsnorm -> gate|up -> silu(gate) * up -> down, into the residual */
    for (int r = 0; r < n; r++)
        rmsnorm(b->xn + (size_t)r * dim, b->x + (size_t)r * dim, L->ffn_norm, dim, c->rms_eps);
    for (int i = 0; i < L->n_gate_up; i++)
        cpu_matmul(b->pool, &L->gate_up[i], b->xn, n, b->gu + (size_t)i * ffn, 2 * ffn);
    for (int r = 0; r < n; r++) {
        const float *g = b->gu + (size_t)r * 2 * ffn, *u = g + ffn;
        float *h = b->h + (size_t)r * ffn;
        for (int i = 0; i < ffn; i++) h[i] = silu(g[i]) * u[i];
    }
    cpu_matmul(b->pool, &L->down, b->h, n, b->tmp, dim);
    residual_add(b->x, b->tmp, (size_t)n * dim);
}

static int cpu_forward(zt_backend *b, const zt_fwd *f, zt_error *err) {
    const zt_config *c = b->c;
    if (f->n_rows > b->o.max_batch)
        return zt_fail(err, ZT_EINVAL, "cpu: batch of %d rows exceeds %d", f->n_rows, b->o.max_batch);
    embed(b, f);
    for (int l = 0; l < c->n_layers; l++) layer_forward(b, f, l);
    if (f->n_out == 0) return ZT_OK;

    /* lm_head over the wanted rows only */
    for (int i = 0; i < f->n_out; i++)
        rmsnorm(b->xn + (size_t)i * c->dim, b->x + (size_t)f->out_rows[i] * c->dim, b->out_norm,
                c->dim, c->rms_eps);
    float *logits = f->logits ? f->logits : b->logits;
    cpu_matmul(b->pool, &b->lm_head, b->xn, f->n_out, logits, c->n_vocab);
    if (f->argmax) {
        for (int i = 0; i < f->n_out; i++) {
            const float *lg = logits + (size_t)i * c->n_vocab;
            int best = 0;
            for (int v = 1; v < c->n_vocab; v++)
                if (lg[v] > lg[best]) best = v;
            f->argmax[i] = best;
        }
    }
    return ZT_OK;
}

/* ---- create / destroy ------------------------------------------------ */

static void cpu_destroy(zt_backend *b) {
    if (!b) return;
    if (b->layers) {
        for (int l = 0; l < b->c->n_layers; l++) {
            cpu_layer *L = &b->layers[l];
            free(L->attn_norm), free(L->ffn_norm), free(L->bq), free(L->bk), free(L->bv);
            for (int i = 0; i < L->n_qkv; i++) cpu_matrix_free(&L->qkv[i]);
            for (int i = 0; i < L->n_gate_up; i++) cpu_matrix_free(&L->gate_up[i]);
            cpu_matrix_free(&L->wo);
            cpu_matrix_free(&L->down);
        }
        free(b->layers);
    }
    cpu_matrix_free(&b->lm_head);
    free(b->out_norm);
    free(b->k_cache), free(b->v_cache);
    free(b->x), free(b->xn), free(b->qkv), free(b->att), free(b->gu), free(b->h);
    free(b->tmp), free(b->scores), free(b->logits);
    if (b->pool) cpu_pool_free(b->pool);
    free(b);
}

/* A norm or bias vector as f32 (files may store them f16/bf16). */
static float *vec_f32(const zt_tensor *t) {
    if (!t) return NULL;
    float *v = malloc(sizeof(float) * (size_t)t->ne[0]);
    if (v) quant_dequant_row(t->type, t->data, v, t->ne[0]);
    return v;
}

static int cpu_create(const zt_model *m, const zt_backend_opts *o, zt_backend **out,
                      zt_error *err) {
    *out = NULL;
    if (o->kv_type == ZT_KV_Q8)
        return zt_fail(err, ZT_EUNSUP, "cpu: the q8 KV cache is not implemented on the CPU");
    zt_backend *b = calloc(1, sizeof *b);
    if (!b) return zt_fail(err, ZT_ENOMEM, "out of memory");
    const zt_config *c = &m->cfg;
    b->model = m;
    b->c = c;
    b->o = *o;
    b->q_dim = c->n_heads * c->head_dim;
    b->kv_dim = c->n_kv_heads * c->head_dim;
    b->qkv_dim = b->q_dim + 2 * b->kv_dim;
    b->kv_elem = o->kv_type == ZT_KV_F32 ? 4 : 2;
    int rc = ZT_ENOMEM;
    if (!(b->pool = cpu_pool_create(o->n_threads))) goto fail;
    if (!(b->layers = calloc((size_t)c->n_layers, sizeof *b->layers))) goto fail;
    for (int l = 0; l < c->n_layers; l++) {
        const zt_layer_weights *W = &m->w.layers[l];
        cpu_layer *L = &b->layers[l];
        if (!(L->attn_norm = vec_f32(W->attn_norm)) || !(L->ffn_norm = vec_f32(W->ffn_norm)))
            goto fail;
        if ((W->bq && !(L->bq = vec_f32(W->bq))) || (W->bk && !(L->bk = vec_f32(W->bk))) ||
            (W->bv && !(L->bv = vec_f32(W->bv))))
            goto fail;
        const zt_tensor *qkv[3] = {W->wqkv ? W->wqkv : W->wq, W->wk, W->wv};
        const zt_tensor *gu[2] = {W->w_gate_up ? W->w_gate_up : W->w_gate, W->w_up};
        L->n_qkv = W->wqkv ? 1 : 3;
        L->n_gate_up = W->w_gate_up ? 1 : 2;
        for (int i = 0; i < L->n_qkv; i++)
            if ((rc = cpu_matrix_init(&L->qkv[i], qkv[i], err))) goto fail;
        for (int i = 0; i < L->n_gate_up; i++)
            if ((rc = cpu_matrix_init(&L->gate_up[i], gu[i], err))) goto fail;
        if ((rc = cpu_matrix_init(&L->wo, W->wo, err)) ||
            (rc = cpu_matrix_init(&L->down, W->w_down, err)))
            goto fail;
        rc = ZT_ENOMEM;
    }
    if (!(b->out_norm = vec_f32(m->w.output_norm))) goto fail;
    if ((rc = cpu_matrix_init(&b->lm_head, m->w.output, err))) goto fail;
    rc = ZT_ENOMEM;

    size_t kv_bytes = (size_t)c->n_layers * o->n_pages * ZT_KV_PAGE * b->kv_dim * b->kv_elem;
    size_t B = (size_t)o->max_batch;
    int nth = cpu_pool_size(b->pool);
    b->k_cache = malloc(kv_bytes);
    b->v_cache = malloc(kv_bytes);
    b->x = malloc(sizeof(float) * B * c->dim);
    b->xn = malloc(sizeof(float) * B * c->dim);
    b->tmp = malloc(sizeof(float) * B * c->dim);
    b->qkv = malloc(sizeof(float) * B * b->qkv_dim);
    b->att = malloc(sizeof(float) * B * b->q_dim);
    b->gu = malloc(sizeof(float) * B * 2 * c->ffn_dim);
    b->h = malloc(sizeof(float) * B * c->ffn_dim);
    b->scores = malloc(sizeof(float) * nth * o->max_pages_per_seq * ZT_KV_PAGE);
    b->logits = malloc(sizeof(float) * B * c->n_vocab);
    if (!b->k_cache || !b->v_cache || !b->x || !b->xn || !b->tmp || !b->qkv || !b->att ||
        !b->gu || !b->h || !b->scores || !b->logits) {
        rc = zt_fail(err, ZT_ENOMEM, "cpu: out of memory for the KV cache (%zu MiB) and scratch",
                     2 * kv_bytes >> 20);
        goto fail_reported;
    }
    *out = b;
    return ZT_OK;
fail:
    if (rc == ZT_ENOMEM) zt_fail(err, ZT_ENOMEM, "cpu: out of memory for the weights");
fail_reported:
    cpu_destroy(b);
    return rc;
}

static int cpu_probe(zt_error *err) { return ZT_OK; }

const zt_backend_ops zt_cpu_backend = {
    .name = "cpu",
    .probe = cpu_probe,
    .create = cpu_create,
    .forward = cpu_forward,
    .destroy = cpu_destroy,
};
