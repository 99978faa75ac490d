/* Random-weight models of real shapes (see synth.h). Every tensor row is
 * generated from its own seed (model seed, tensor index, row), so the
 * result does not depend on the number of threads. */
#include "model/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "quant/quant.h"
#include "util/error.h"

static const struct {
    const char *name;
    synth_spec spec;
} presets[] = {
    {"phi3-mini", {"phi3", 32064, 3072, 32, 32, 32, 8192, 4096, 2047, 10000.0f, 1e-5f, 0}},
    {"tiny", {"phi3", 32064, 256, 2, 4, 4, 512, 4096, 2047, 10000.0f, 1e-5f, 0}},
    {"llama-tiny", {"llama", 32000, 256, 2, 8, 2, 768, 2048, 0, 10000.0f, 1e-5f, 0}},
};

const synth_spec *synth_preset(const char *name) {
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (!strcmp(presets[i].name, name)) return &presets[i].spec;
    return NULL;
}

/* llama.cpp's "use more bits" rule for Q4_K_M: the first and last eighth
 * of the layers and every third layer between. */
static bool more_bits(int layer, int n_layers) {
    return layer < n_layers / 8 || layer >= 7 * n_layers / 8 || (layer - n_layers / 8) % 3 == 2;
}

static int fit(int type, int64_t row_len) {
    if (row_len % quant_type_info(type)->block_elems == 0) return type;
    if (row_len % QK8_0 == 0) return ZT_Q8_0;
    return ZT_F16;
}

int synth_tensor_type(const char *ftype, const char *name, int layer, int n_layers,
                      int64_t row_len) {
    bool norm = strstr(name, "_norm") != NULL || strstr(name, ".bias") != NULL;
    if (norm) return ZT_F32;
    if (!strcmp(ftype, "f32")) return ZT_F32;
    if (!strcmp(ftype, "f16")) return ZT_F16;
    if (!strcmp(ftype, "bf16")) return ZT_BF16;
    if (!strcmp(ftype, "q8_0")) return fit(ZT_Q8_0, row_len);
    if (!strcmp(ftype, "q4_0")) {
        if (!strcmp(name, "output.weight")) return fit(ZT_Q6_K, row_len);
        return fit(ZT_Q4_0, row_len);
    }
    if (!strcmp(ftype, "q4_k_m")) {
        if (!strcmp(name, "output.weight")) return fit(ZT_Q6_K, row_len);
        bool v_like = strstr(name, "attn_v.") || strstr(name, "attn_qkv.");
        if (layer >= 0 && (v_like || strstr(name, "ffn_down.")) && more_bits(layer, n_layers))
            return fit(ZT_Q6_K, row_len);
        return fit(ZT_Q4_K, row_len);
    }
    return -1;
}

/* ---- generation ------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Box-Muller pairs from 53-bit uniforms. */
static void fill_normal(float *x, int64_t n, uint64_t seed, float mean, float sd) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i += 2) {
        double u1 = ((splitmix64(&s) >> 11) + 1.0) * (1.0 / 9007199254740993.0);
        double u2 = (splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
        double r = sqrt(-2.0 * log(u1));
        x[i] = mean + sd * (float)(r * cos(2.0 * M_PI * u2));
        if (i + 1 < n) x[i + 1] = mean + sd * (float)(r * sin(2.0 * M_PI * u2));
    }
}

typedef struct gen_job {
    zt_tensor *t;
    uint64_t seed;
    float mean, sd;
    size_t row_bytes;
    int64_t rows;
    bool failed; /* a worker could not allocate its row buffer */
} gen_job;

static void gen_worker(void *ctx, int ith, int nth) {
    gen_job *j = ctx;
    int64_t n = j->t->ne[0];
    float *row = malloc(sizeof(float) * (size_t)n);
    if (!row) {
        j->failed = true;
        return;
    }
    for (int64_t r = ith; r < j->rows; r += nth) {
        fill_normal(row, n, j->seed * 0x100000001b3ull + (uint64_t)r, j->mean, j->sd);
        quant_quantize_row(j->t->type, row, (char *)j->t->data + (size_t)r * j->row_bytes, n);
    }
    free(row);
}

static int add_tensor(zt_model *m, cpu_pool *pool, const char *ftype, const char *name, int layer,
                      int n_layers, int64_t ne0, int64_t ne1, uint64_t seed, zt_error *err) {
    int type = synth_tensor_type(ftype, name, layer, n_layers, ne0);
    if (type < 0) return zt_fail(err, ZT_EINVAL, "unknown model type '%s'", ftype);
    zt_tensor *t = model_add_tensor(m, name);
    if (!t) return zt_fail(err, ZT_ENOMEM, "out of memory");
    t->type = type;
    t->n_dims = ne1 > 1 ? 2 : 1;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    size_t row_bytes = quant_row_bytes(type, ne0);
    t->nbytes = row_bytes * (size_t)ne1;
    void *data = model_own(m, malloc(t->nbytes));
    if (!data) return zt_fail(err, ZT_ENOMEM, "out of memory for %s (%zu bytes)", name, t->nbytes);
    t->data = data;
    bool norm = strstr(name, "_norm") != NULL;
    gen_job job = {t, seed, norm ? 1.0f : 0.0f, 0.02f, row_bytes, ne1, false};
    cpu_pool_run(pool, gen_worker, &job);
    return job.failed ? zt_fail(err, ZT_ENOMEM, "out of memory") : ZT_OK;
}

int synth_copy_tokenizer(zt_model *dst, const zt_model *src) {
    for (int i = 0; i < src->n_kv; i++) {
        const zt_kv *kv = &src->kv[i];
        if (strncmp(kv->key, "tokenizer.", 10) != 0) continue;
        int rc;
        if (kv->type == GGUF_STRING) rc = model_set_str(dst, kv->key, kv->str);
        else if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING)
            rc = model_set_str_arr(dst, kv->key, (const char *const *)kv->arr, kv->n);
        else if (kv->type == GGUF_ARRAY) rc = model_set_arr(dst, kv->key, kv->arr_type, kv->arr, kv->n);
        else {
            zt_kv *c = model_add_kv(dst, kv->key);
            if (!c) return ZT_ENOMEM;
            c->type = kv->type;
            c->num = kv->num;
            rc = ZT_OK;
        }
        if (rc != ZT_OK) return rc;
    }
    return ZT_OK;
}

int synth_build(const synth_spec *s, const char *ftype, uint64_t seed, const zt_model *vocab,
                int n_threads, zt_model **out, zt_error *err) {
    *out = NULL;
    if (synth_tensor_type(ftype, "x.weight", 0, 1, 256) < 0)
        return zt_fail(err, ZT_EINVAL, "unknown model type '%s' (f32, f16, q8_0, q4_0, q4_k_m)",
                       ftype);
    zt_model *m = model_new("synth");
    cpu_pool *pool = cpu_pool_create(n_threads);
    int rc = ZT_ENOMEM;
    if (!m || !pool) goto fail;
    const char *a = s->arch;
    char key[96];
#define KEY(suffix) (snprintf(key, sizeof key, "%s.%s", a, suffix), key)
    int head_dim = s->head_dim ? s->head_dim : s->dim / s->n_heads;
    if (model_set_str(m, "general.architecture", a) ||
        model_set_str(m, "general.name", "zt synth") ||
        model_set_u32(m, "general.alignment", 32) ||
        model_set_u32(m, KEY("context_length"), (uint32_t)s->ctx) ||
        model_set_u32(m, KEY("embedding_length"), (uint32_t)s->dim) ||
        model_set_u32(m, KEY("feed_forward_length"), (uint32_t)s->ffn_dim) ||
        model_set_u32(m, KEY("block_count"), (uint32_t)s->n_layers) ||
        model_set_u32(m, KEY("attention.head_count"), (uint32_t)s->n_heads) ||
        model_set_u32(m, KEY("attention.head_count_kv"), (uint32_t)s->n_kv_heads) ||
        model_set_u32(m, KEY("attention.key_length"), (uint32_t)head_dim) ||
        model_set_u32(m, KEY("attention.value_length"), (uint32_t)head_dim) ||
        model_set_u32(m, KEY("rope.dimension_count"), (uint32_t)head_dim) ||
        model_set_f32(m, KEY("rope.freq_base"), s->rope_theta) ||
        model_set_f32(m, KEY("attention.layer_norm_rms_epsilon"), s->rms_eps) ||
        model_set_u32(m, KEY("vocab_size"), (uint32_t)s->n_vocab) ||
        (s->sliding_window && model_set_u32(m, KEY("attention.sliding_window"),
                                            (uint32_t)s->sliding_window)))
        goto fail;
#undef KEY
    if (vocab && synth_copy_tokenizer(m, vocab) != ZT_OK) goto fail;

    int q = s->n_heads * head_dim, kv = s->n_kv_heads * head_dim, L = s->n_layers;
    uint64_t tseed = seed;
#define T(name, layer, ne0, ne1)                                                           \
    if ((rc = add_tensor(m, pool, ftype, name, layer, L, ne0, ne1, ++tseed, err)) != ZT_OK) \
        goto fail_reported;
    T("token_embd.weight", -1, s->dim, s->n_vocab);
    char name[ZT_NAME_MAX];
    for (int l = 0; l < L; l++) {
#define N(role) (snprintf(name, sizeof name, "blk.%d.%s", l, role), name)
        T(N("attn_norm.weight"), l, s->dim, 1);
        if (!strcmp(a, "phi3")) {
            T(N("attn_qkv.weight"), l, s->dim, q + 2 * kv);
        } else {
            T(N("attn_q.weight"), l, s->dim, q);
            T(N("attn_k.weight"), l, s->dim, kv);
            T(N("attn_v.weight"), l, s->dim, kv);
        }
        T(N("attn_output.weight"), l, q, s->dim);
        T(N("ffn_norm.weight"), l, s->dim, 1);
        if (!strcmp(a, "phi3")) {
            T(N("ffn_up.weight"), l, s->dim, 2 * s->ffn_dim);
        } else {
            T(N("ffn_gate.weight"), l, s->dim, s->ffn_dim);
            T(N("ffn_up.weight"), l, s->dim, s->ffn_dim);
        }
        T(N("ffn_down.weight"), l, s->ffn_dim, s->dim);
#undef N
    }
    T("output_norm.weight", -1, s->dim, 1);
    T("output.weight", -1, s->dim, s->n_vocab);
#undef T
    cpu_pool_free(pool);
    *out = m;
    return ZT_OK;
fail:
    zt_fail(err, ZT_ENOMEM, "out of memory");
fail_reported:
    if (pool) cpu_pool_free(pool);
    zt_model_free(m);
    return rc;
}
