/*
 * Architectures from metadata, never from literals: reads the GGUF-style
 * keys of a loaded model into zt_config, finds each layer's weight roles
 * and checks every shape, so that backends can trust what they are given.
 *
 *   llama   (Llama 2/3, TinyLlama, SmolLM; Mistral files say "llama" or
 *            "mistral"): separate Q/K/V and gate/up, grouped-query
 *            attention, optional Llama 3 rope scaling or rope_freqs,
 *            optional sliding window (Mistral), tied or untied output.
 *   phi3    fused QKV and fused gate+up, rotate-half RoPE, sliding window.
 *   qwen2   Q/K/V biases, rotate-half RoPE, usually tied embeddings.
 *
 * RoPE pairing: GGUF llama-arch files store Q/K rows permuted so that the
 * rotated pairs are (2i, 2i+1) ("interleaved"); HF checkpoints and every
 * phi3/qwen2 file pair (i, i + d/2) ("rotate-half"). A format may say
 * which with the key zt.rope.interleaved.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "quant/quant.h"
#include "util/error.h"

static int get_u(const zt_model *m, const char *arch, const char *suffix, int64_t *out,
                 bool required, zt_error *err) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    if (model_get_int(m, key, out)) {
        if (*out < 0 || *out > (1 << 30))
            return zt_fail(err, ZT_EFORMAT, "%s: metadata %s = %lld is out of range", m->path, key,
                           (long long)*out);
        return ZT_OK;
    }
    if (required) return zt_fail(err, ZT_EFORMAT, "%s: missing metadata key %s", m->path, key);
    return ZT_OK;
}

static double get_f(const zt_model *m, const char *arch, const char *suffix, double dflt) {
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    return model_get_float(m, key, &v) ? v : dflt;
}

/* Finds blk.<layer>.<role>.<kind>; NULL when absent. */
static const zt_tensor *layer_tensor(const zt_model *m, int layer, const char *role,
                                     const char *kind) {
    char name[ZT_NAME_MAX];
    snprintf(name, sizeof name, "blk.%d.%s.%s", layer, role, kind);
    return model_tensor(m, name);
}

/* Checks that t is a matrix [rows][cols] (ne[0] = cols) or a vector. */
static int check_shape(const zt_model *m, const zt_tensor *t, int64_t cols, int64_t rows,
                       zt_error *err) {
    int64_t ne1 = t->n_dims > 1 ? t->ne[1] : 1;
    bool extra = false;
    for (int d = 2; d < t->n_dims; d++) extra |= t->ne[d] != 1;
    if (t->ne[0] != cols || ne1 != rows || extra)
        return zt_fail(err, ZT_EFORMAT,
                       "%s: tensor '%s' has shape [%lld, %lld], expected [%lld, %lld]", m->path,
                       t->name, (long long)t->ne[0], (long long)ne1, (long long)cols,
                       (long long)rows);
    const zt_type_info *ti = quant_type_info(t->type);
    if (!ti || !ti->can_dequant)
        return zt_fail(err, ZT_EUNSUP, "%s: tensor '%s' has unsupported type %s", m->path,
                       t->name, ti ? ti->name : "unknown");
    return ZT_OK;
}

static int need(const zt_model *m, const zt_tensor *t, const char *what, int layer,
                zt_error *err) {
    if (t) return ZT_OK;
    if (layer < 0) return zt_fail(err, ZT_EFORMAT, "%s: missing tensor %s", m->path, what);
    return zt_fail(err, ZT_EFORMAT, "%s: missing tensor blk.%d.%s", m->path, layer, what);
}

/* Llama 3 frequency scaling (as HF's rope_type "llama3" defines it):
 * long wavelengths are divided by `factor`, short ones kept, and the band
 * between is interpolated. */
static float llama3_scale(double freq, double factor, double low, double high, double orig_ctx) {
    double wavelen = 2.0 * M_PI / freq;
    double low_wavelen = orig_ctx / low, high_wavelen = orig_ctx / high;
    if (wavelen < high_wavelen) return (float)freq;
    if (wavelen > low_wavelen) return (float)(freq / factor);
    double smooth = (orig_ctx / wavelen - low) / (high - low);
    return (float)((1.0 - smooth) * freq / factor + smooth * freq);
}

static int init_rope(zt_model *m, zt_error *err) {
    zt_config *c = &m->cfg;
    const char *arch = c->arch_name;
    int half = c->rope_dim / 2;
    double theta = get_f(m, arch, "rope.freq_base", 10000.0);
    c->rope_inv_freq = malloc(sizeof(float) * (size_t)half);
    if (!c->rope_inv_freq) return zt_fail(err, ZT_ENOMEM, "out of memory");
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    const char *scaling = model_get_str(m, key);
    const zt_tensor *factors = model_tensor(m, "rope_freqs.weight");
    if (factors && (factors->type != ZT_F32 || factors->ne[0] != half))
        return zt_fail(err, ZT_EFORMAT, "%s: rope_freqs.weight must be F32 [%d]", m->path, half);
    if (scaling && strcmp(scaling, "none") != 0 && strcmp(scaling, "llama3") != 0 && !factors)
        return zt_fail(err, ZT_EUNSUP, "%s: unsupported rope scaling '%s'", m->path, scaling);
    for (int i = 0; i < half; i++) {
        /* float32 as HF computes it: base ** (2i / d) in float */
        float inv = (float)(1.0 / pow(theta, (double)(2 * i) / c->rope_dim));
        if (factors) {
            inv = inv / ((const float *)factors->data)[i];
        } else if (scaling && strcmp(scaling, "llama3") == 0) {
            double low, high;
            if (!model_get_float(m, "zt.rope.llama3.low_freq_factor", &low)) low = 1.0;
            if (!model_get_float(m, "zt.rope.llama3.high_freq_factor", &high)) high = 4.0;
            inv = llama3_scale(inv, get_f(m, arch, "rope.scaling.factor", 8.0), low, high,
                               get_f(m, arch, "rope.scaling.original_context_length", 8192));
        }
        c->rope_inv_freq[i] = inv;
    }
    return ZT_OK;
}

int arch_init(zt_model *m, zt_error *err) {
    zt_config *c = &m->cfg;
    const char *arch = model_get_str(m, "general.architecture");
    if (!arch) return zt_fail(err, ZT_EFORMAT, "%s: missing general.architecture", m->path);
    if (strlen(arch) >= sizeof c->arch_name)
        return zt_fail(err, ZT_EUNSUP, "%s: unsupported architecture '%.40s'", m->path, arch);
    snprintf(c->arch_name, sizeof c->arch_name, "%s", arch);
    if (!strcmp(arch, "llama") || !strcmp(arch, "mistral")) c->arch = ZT_ARCH_LLAMA;
    else if (!strcmp(arch, "phi3")) c->arch = ZT_ARCH_PHI3;
    else if (!strcmp(arch, "qwen2")) c->arch = ZT_ARCH_QWEN2;
    else
        return zt_fail(err, ZT_EUNSUP,
                       "%s: unsupported architecture '%s' (zt runs llama, mistral, phi3, qwen2)",
                       m->path, arch);

    int64_t v;
    int rc;
#define REQ(field, suffix)                                                  \
    if ((rc = get_u(m, arch, suffix, &v, true, err)) != ZT_OK) return rc; \
    c->field = (int)v;
    REQ(dim, "embedding_length");
    REQ(n_layers, "block_count");
    REQ(n_heads, "attention.head_count");
    REQ(ffn_dim, "feed_forward_length");
#undef REQ
    v = c->n_heads;
    if ((rc = get_u(m, arch, "attention.head_count_kv", &v, false, err))) return rc;
    c->n_kv_heads = (int)v;
    v = 0;
    if ((rc = get_u(m, arch, "context_length", &v, false, err))) return rc;
    c->ctx_train = v ? (int)v : 4096;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->ffn_dim <= 0 || c->n_heads % c->n_kv_heads != 0)
        return zt_fail(err, ZT_EFORMAT,
                       "%s: inconsistent hyperparameters (dim %d, layers %d, heads %d/%d kv, "
                       "ffn %d)",
                       m->path, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim);
    v = c->dim / c->n_heads;
    if ((rc = get_u(m, arch, "attention.key_length", &v, false, err))) return rc;
    c->head_dim = (int)v;
    v = c->head_dim;
    if ((rc = get_u(m, arch, "rope.dimension_count", &v, false, err))) return rc;
    c->rope_dim = (int)v;
    if (c->head_dim <= 0 || c->rope_dim <= 0 || c->rope_dim > c->head_dim || c->rope_dim % 2)
        return zt_fail(err, ZT_EFORMAT, "%s: bad head_dim %d / rope dimension %d", m->path,
                       c->head_dim, c->rope_dim);
    v = 0;
    if ((rc = get_u(m, arch, "attention.sliding_window", &v, false, err))) return rc;
    c->sliding_window = (int)v;
    c->rms_eps = (float)get_f(m, arch, "attention.layer_norm_rms_epsilon", 1e-5);
    bool b;
    c->rope_interleaved = model_get_bool(m, "zt.rope.interleaved", &b) ? b : c->arch == ZT_ARCH_LLAMA;

    /* global tensors */
    zt_weights *w = &m->w;
    w->token_embd = model_tensor(m, "token_embd.weight");
    w->output_norm = model_tensor(m, "output_norm.weight");
    w->output = model_tensor(m, "output.weight");
    if ((rc = need(m, w->token_embd, "token_embd.weight", -1, err))) return rc;
    if ((rc = need(m, w->output_norm, "output_norm.weight", -1, err))) return rc;
    c->n_vocab = w->token_embd->n_dims > 1 ? (int)w->token_embd->ne[1] : 0;
    if (c->n_vocab <= 0) return zt_fail(err, ZT_EFORMAT, "%s: token_embd.weight is not a matrix", m->path);
    if ((rc = check_shape(m, w->token_embd, c->dim, c->n_vocab, err))) return rc;
    if ((rc = check_shape(m, w->output_norm, c->dim, 1, err))) return rc;
    c->tied_output = w->output == NULL;
    if (c->tied_output) w->output = w->token_embd;
    else if ((rc = check_shape(m, w->output, c->dim, c->n_vocab, err))) return rc;

    /* int64: heads and head_dim come from the file (each up to 2^30) */
    int64_t q_dim = (int64_t)c->n_heads * c->head_dim;
    int64_t kv_dim = (int64_t)c->n_kv_heads * c->head_dim;
    /* a layer has at least 6 tensors (phi3's fused ones): a block count the
     * tensor table cannot back is refused before allocating for it */
    if (c->n_layers > m->n_tensors / 6)
        return zt_fail(err, ZT_EFORMAT, "%s: %d layers but only %d tensors in the file", m->path,
                       c->n_layers, m->n_tensors);
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!w->layers) return zt_fail(err, ZT_ENOMEM, "out of memory");
    for (int l = 0; l < c->n_layers; l++) {
        zt_layer_weights *L = &w->layers[l];
        L->attn_norm = layer_tensor(m, l, "attn_norm", "weight");
        L->ffn_norm = layer_tensor(m, l, "ffn_norm", "weight");
        L->wqkv = layer_tensor(m, l, "attn_qkv", "weight");
        L->wq = layer_tensor(m, l, "attn_q", "weight");
        L->wk = layer_tensor(m, l, "attn_k", "weight");
        L->wv = layer_tensor(m, l, "attn_v", "weight");
        L->bq = layer_tensor(m, l, "attn_q", "bias");
        L->bk = layer_tensor(m, l, "attn_k", "bias");
        L->bv = layer_tensor(m, l, "attn_v", "bias");
        L->wo = layer_tensor(m, l, "attn_output", "weight");
        L->w_gate = layer_tensor(m, l, "ffn_gate", "weight");
        L->w_up = layer_tensor(m, l, "ffn_up", "weight");
        L->w_down = layer_tensor(m, l, "ffn_down", "weight");
        if ((rc = need(m, L->attn_norm, "attn_norm.weight", l, err)) ||
            (rc = need(m, L->ffn_norm, "ffn_norm.weight", l, err)) ||
            (rc = need(m, L->wo, "attn_output.weight", l, err)) ||
            (rc = need(m, L->w_up, "ffn_up.weight", l, err)) ||
            (rc = need(m, L->w_down, "ffn_down.weight", l, err)))
            return rc;
        if ((rc = check_shape(m, L->attn_norm, c->dim, 1, err)) ||
            (rc = check_shape(m, L->ffn_norm, c->dim, 1, err)) ||
            (rc = check_shape(m, L->wo, q_dim, c->dim, err)) ||
            (rc = check_shape(m, L->w_down, c->ffn_dim, c->dim, err)))
            return rc;
        if (L->wqkv) {
            L->wq = L->wk = L->wv = NULL;
            if ((rc = check_shape(m, L->wqkv, c->dim, q_dim + 2 * kv_dim, err))) return rc;
        } else {
            if ((rc = need(m, L->wq, "attn_q.weight", l, err)) ||
                (rc = need(m, L->wk, "attn_k.weight", l, err)) ||
                (rc = need(m, L->wv, "attn_v.weight", l, err)))
                return rc;
            if ((rc = check_shape(m, L->wq, c->dim, q_dim, err)) ||
                (rc = check_shape(m, L->wk, c->dim, kv_dim, err)) ||
                (rc = check_shape(m, L->wv, c->dim, kv_dim, err)))
                return rc;
        }
        const zt_tensor *bias[3] = {L->bq, L->bk, L->bv};
        int64_t bias_len[3] = {q_dim, kv_dim, kv_dim};
        for (int i = 0; i < 3; i++) {
            if (!bias[i]) continue;
            if (L->wqkv)
                return zt_fail(err, ZT_EUNSUP, "%s: bias '%s' with a fused QKV tensor",
                               m->path, bias[i]->name);
            if ((rc = check_shape(m, bias[i], bias_len[i], 1, err))) return rc;
        }
        if (L->w_gate) {
            if ((rc = check_shape(m, L->w_gate, c->dim, c->ffn_dim, err)) ||
                (rc = check_shape(m, L->w_up, c->dim, c->ffn_dim, err)))
                return rc;
        } else {
            /* fused gate+up (phi3): gate rows first, then up rows */
            L->w_gate_up = L->w_up;
            L->w_up = NULL;
            if ((rc = check_shape(m, L->w_gate_up, c->dim, 2 * (int64_t)c->ffn_dim, err))) return rc;
        }
    }
    return init_rope(m, err);
}
