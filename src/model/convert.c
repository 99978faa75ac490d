/* zt convert: any loaded model -> GGUF of a chosen file type.
 *
 * The output keeps every metadata key (the HF loader has already mapped
 * config.json and tokenizer.json to GGUF keys) except zt's own zt.rope.*,
 * zt.hf.* and zt.tie_* keys, whose content is expressed the GGUF way
 * instead (zt.tokenizer.* stays: GGUF has no spelling for it): Llama 3 rope scaling becomes a rope_freqs tensor,
 * and HF's rotate-half Q/K rows are permuted to interleaved pairs. */
#include "model/convert.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "model/synth.h"
#include "quant/quant.h"
#include "util/error.h"

typedef struct conv_job {
    const zt_tensor *src;
    zt_tensor *dst;
    int permute_heads; /* > 0: permute rows from rotate-half to interleaved */
    int head_dim;
    bool failed;
} conv_job;

/* Row r of the interleaved layout holds, within its head, pair element
 * (i, s) at 2i + s, which rotate-half kept at s * head_dim/2 + i. */
static int64_t permuted_source_row(int64_t r, int head_dim) {
    int64_t head = r / head_dim, j = r % head_dim;
    int64_t i = j / 2, s = j % 2;
    return head * head_dim + s * (head_dim / 2) + i;
}

static void conv_worker(void *ctx, int ith, int nth) {
    conv_job *j = ctx;
    int64_t n = j->src->ne[0];
    int64_t rows = 1;
    for (int d = 1; d < j->src->n_dims; d++) rows *= j->src->ne[d];
    size_t src_row = quant_row_bytes(j->src->type, n), dst_row = quant_row_bytes(j->dst->type, n);
    float *buf = malloc(sizeof(float) * (size_t)n);
    if (!buf) {
        j->failed = true;
        return;
    }
    for (int64_t r = ith; r < rows; r += nth) {
        int64_t from = j->permute_heads ? permuted_source_row(r, j->head_dim) : r;
        quant_dequant_row(j->src->type, (const char *)j->src->data + (size_t)from * src_row, buf, n);
        quant_quantize_row(j->dst->type, buf, (char *)j->dst->data + (size_t)r * dst_row, n);
    }
    free(buf);
}

static int layer_of(const char *name) {
    return strncmp(name, "blk.", 4) == 0 ? atoi(name + 4) : -1;
}

static int copy_kv(zt_model *dst, const zt_kv *kv) {
    if (kv->type == GGUF_STRING) return model_set_str(dst, kv->key, kv->str);
    if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING)
        return model_set_str_arr(dst, kv->key, (const char *const *)kv->arr, kv->n);
    if (kv->type == GGUF_ARRAY) return model_set_arr(dst, kv->key, kv->arr_type, kv->arr, kv->n);
    zt_kv *c = model_add_kv(dst, kv->key);
    if (!c) return ZT_ENOMEM;
    c->type = kv->type;
    c->num = kv->num;
    return ZT_OK;
}

int convert_to_gguf(const zt_model *src, const char *ftype, const char *out_path, int n_threads,
                    zt_error *err) {
    const zt_config *c = &src->cfg;
    if (synth_tensor_type(ftype, "x.weight", 0, 1, 256) < 0)
        return zt_fail(err, ZT_EINVAL, "unknown type '%s' (f32, f16, q8_0, q4_0, q4_k_m)", ftype);
    zt_model *m = model_new(out_path);
    cpu_pool *pool = cpu_pool_create(n_threads);
    int rc = ZT_ENOMEM;
    if (!m || !pool) goto oom;
    m->alignment = 32;
    /* HF llama checkpoints pair rotate-half; GGUF llama files interleave. */
    bool permute = c->arch == ZT_ARCH_LLAMA && !c->rope_interleaved;
    for (int i = 0; i < src->n_kv; i++) {
        const zt_kv *kv = &src->kv[i];
        /* zt's own keys say what GGUF expresses otherwise (below), except the
         * tokenizer's, which have no GGUF spelling and other readers ignore */
        bool zt_key = !strncmp(kv->key, "zt.", 3) && strncmp(kv->key, "zt.tokenizer.", 13) &&
                      strcmp(kv->key, "zt.eos_token_ids");
        if (zt_key || !strcmp(kv->key, "general.alignment")) continue;
        char key[160];
        snprintf(key, sizeof key, "%s.rope.scaling.", c->arch_name);
        if (!strncmp(kv->key, key, strlen(key))) continue; /* carried by rope_freqs */
        if ((rc = copy_kv(m, kv)) != ZT_OK) goto oom;
    }
    if (model_set_u32(m, "general.alignment", 32) != ZT_OK) goto oom;
    if (model_get_str(src, "zt.hf.model_type") && !model_get_str(src, "general.name") &&
        model_set_str(m, "general.name", model_get_str(src, "zt.hf.model_type")) != ZT_OK)
        goto oom;

    for (int i = 0; i < src->n_tensors; i++) {
        const zt_tensor *s = &src->tensors[i];
        if (!strcmp(s->name, "rope_freqs.weight")) continue; /* rewritten below */
        if (strncmp(s->name, "blk.", 4) && strcmp(s->name, "token_embd.weight") &&
            strcmp(s->name, "output.weight") && strcmp(s->name, "output_norm.weight"))
            continue; /* nothing zt or llama.cpp would read */
        zt_tensor *d = model_add_tensor(m, s->name);
        if (!d) goto oom;
        d->n_dims = s->n_dims;
        memcpy(d->ne, s->ne, sizeof d->ne);
        d->type = s->n_dims < 2 ? ZT_F32
                                : synth_tensor_type(ftype, s->name, layer_of(s->name), c->n_layers,
                                                    s->ne[0]);
        int64_t rows = 1;
        for (int k = 1; k < s->n_dims; k++) rows *= s->ne[k];
        d->nbytes = quant_row_bytes(d->type, s->ne[0]) * (size_t)rows;
        void *data = model_own(m, malloc(d->nbytes ? d->nbytes : 1));
        if (!data) goto oom;
        d->data = data;
        bool qk = strstr(s->name, ".attn_q.") || strstr(s->name, ".attn_k.");
        conv_job job = {s, d, permute && qk, c->head_dim, false};
        cpu_pool_run(pool, conv_worker, &job);
        if (job.failed) goto oom;
    }
    if (c->rope_dim > 0) {
        /* factors = unscaled / scaled frequency; only written when scaled */
        int half = c->rope_dim / 2;
        char key[96];
        snprintf(key, sizeof key, "%s.rope.freq_base", c->arch_name);
        double theta = 10000;
        model_get_float(src, key, &theta);
        float *f = malloc(sizeof(float) * half);
        if (!f) goto oom;
        bool scaled = false;
        for (int i = 0; i < half; i++) {
            float plain = (float)(1.0 / pow(theta, (double)(2 * i) / c->rope_dim));
            f[i] = plain / c->rope_inv_freq[i];
            scaled |= fabsf(f[i] - 1.0f) > 1e-6f;
        }
        if (!scaled) {
            free(f);
        } else {
            if (!model_own(m, f)) goto oom;
            zt_tensor *d = model_add_tensor(m, "rope_freqs.weight");
            if (!d) goto oom;
            d->type = ZT_F32;
            d->n_dims = 1;
            d->ne[0] = half;
            d->ne[1] = d->ne[2] = d->ne[3] = 1;
            d->nbytes = sizeof(float) * half;
            d->data = f;
        }
    }
    cpu_pool_free(pool);
    pool = NULL;
    rc = gguf_write(out_path, m, err);
    zt_model_free(m);
    return rc;
oom:
    rc = zt_fail(err, ZT_ENOMEM, "out of memory while converting");
    if (pool) cpu_pool_free(pool);
    zt_model_free(m);
    return rc;
}
