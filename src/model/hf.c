/*
 * A Hugging Face model directory -> a zt_model that reads like a GGUF file.
 *
 * config.json becomes GGUF metadata under the architecture's prefix
 * ("llama.embedding_length", ...), the safetensors tensors get GGUF names
 * ("blk.0.attn_q.weight"), and tokenizer files are located for the
 * tokenizer. After this, arch.c and everything above it cannot tell an HF
 * directory from a GGUF file, except through a few zt.* keys:
 *
 *   zt.hf.model_type         config.json's model_type ("mistral" runs as llama)
 *   zt.rope.interleaved      false: HF checkpoints rotate halves, and unlike
 *                            llama.cpp's converter we do not permute Q/K
 *   zt.tie_word_embeddings   config.json's tie_word_embeddings, when given
 *   zt.rope.llama3.*         Llama 3 rope scaling factors (no GGUF key exists)
 *   zt.eos_token_ids         every eos id (config.json may list several)
 *
 * Tensor data stays in the mmapped safetensors files (see safetensors.c).
 */
#include "model/model.h"
#include "util/error.h"
#include "util/json.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* safetensors.c */

#define HF_MAX_JSON_FILE ((size_t)256 << 20)

/* ---- files ----------------------------------------------------------- */

/* "dir/name", malloc'd (NULL when out of memory). */
static char *hf_path(const char *dir, const char *name) {
    size_t dir_len = strlen(dir), n = dir_len + strlen(name) + 2;
    bool slash = dir_len > 0 && dir[dir_len - 1] == '/';
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s", dir, slash ? "" : "/", name);
    return p;
}

static bool hf_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Reads a whole file (at most max bytes) into a malloc'd NUL-terminated buffer. */
static int hf_read_file(const char *path, size_t max, char **out, size_t *len, zt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return zt_fail(err, ZT_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 65536;
            char *b = realloc(buf, cap + 1);
            if (!b) {
                free(buf);
                fclose(f);
                return zt_fail(err, ZT_ENOMEM, "%s: out of memory", path);
            }
            buf = b;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n > max) {
            free(buf);
            fclose(f);
            return zt_fail(err, ZT_EUNSUP, "%s: larger than %zu MiB", path, max >> 20);
        }
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return zt_fail(err, ZT_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return ZT_OK;
}

/* Parses the JSON file dir/name; NULL with err set on any failure. */
static json_value *hf_load_json(const char *dir, const char *name, zt_error *err) {
    char *path = hf_path(dir, name), *text = NULL;
    size_t len = 0;
    json_value *v = NULL;
    if (!path) {
        zt_fail(err, ZT_ENOMEM, "out of memory");
        return NULL;
    }
    if (hf_read_file(path, HF_MAX_JSON_FILE, &text, &len, err) == ZT_OK) {
        v = json_parse(text, len, err);
        if (!v) zt_fail_prefix(err, "%s", path);
    }
    free(text);
    free(path);
    return v;
}

/* ---- config.json -> GGUF metadata ------------------------------------ */

typedef struct hf_config {
    const char *file; /* "DIR/config.json", for messages */
    const json_value *root;
    zt_model *m;
    zt_error *err;
    char arch[16]; /* GGUF architecture: key prefix */
} hf_config;

static const struct {
    const char *model_type, *hf_class, *gguf_arch;
} hf_arches[] = {
    {"llama", "LlamaForCausalLM", "llama"},
    {"mistral", "MistralForCausalLM", "llama"},
    {"phi3", "Phi3ForCausalLM", "phi3"},
    {"qwen2", "Qwen2ForCausalLM", "qwen2"},
};

/* Field `key` of obj, with JSON null read as absent. */
static const json_value *hf_field(const json_value *obj, const char *key) {
    const json_value *v = json_get(obj, key);
    return json_is(v, JSON_NULL) ? NULL : v;
}

/* Integer field in [lo, hi]; when absent: def if !required, else an error. */
static int hf_int(hf_config *c, const json_value *obj, const char *key, bool required, int64_t def,
                  int64_t lo, int64_t hi, int64_t *out) {
    const json_value *v = hf_field(obj, key);
    if (!v) {
        if (required)
            return zt_fail(c->err, ZT_EFORMAT, "%s: missing required field '%s'", c->file, key);
        *out = def;
        return ZT_OK;
    }
    int64_t i;
    if (!json_as_int(v, &i) || i < lo || i > hi)
        return zt_fail(c->err, ZT_EFORMAT, "%s: field '%s' must be an integer in [%lld, %lld]",
                       c->file, key, (long long)lo, (long long)hi);
    *out = i;
    return ZT_OK;
}

/* Number field in (lo, hi]; absent as for hf_int. */
static int hf_num(hf_config *c, const json_value *obj, const char *key, bool required, double def,
                  double lo, double hi, double *out) {
    const json_value *v = hf_field(obj, key);
    if (!v) {
        if (required)
            return zt_fail(c->err, ZT_EFORMAT, "%s: missing required field '%s'", c->file, key);
        *out = def;
        return ZT_OK;
    }
    double d;
    if (!json_as_double(v, &d) || !(d > lo && d <= hi))
        return zt_fail(c->err, ZT_EFORMAT, "%s: field '%s' must be a number in (%g, %g]", c->file,
                       key, lo, hi);
    *out = d;
    return ZT_OK;
}

/* Sets "{arch}.{suffix}" to a u32 / f32. */
static int hf_set_u32(hf_config *c, const char *suffix, int64_t v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    return model_set_u32(c->m, key, (uint32_t)v);
}

static int hf_set_f32(hf_config *c, const char *suffix, double v) {
    char key[128];
    snprintf(key, sizeof key, "%s.%s", c->arch, suffix);
    return model_set_f32(c->m, key, (float)v);
}

static int hf_oom(hf_config *c) { return zt_fail(c->err, ZT_ENOMEM, "%s: out of memory", c->file); }

/* model_type / architectures -> general.architecture and friends. */
static int hf_config_arch(hf_config *c, const char *dir) {
    const char *model_type = json_as_str(hf_field(c->root, "model_type"));
    const char *hf_class = json_as_str(json_at(hf_field(c->root, "architectures"), 0));
    int found = -1;
    for (size_t k = 0; k < sizeof hf_arches / sizeof hf_arches[0]; k++) {
        if (model_type ? strcmp(model_type, hf_arches[k].model_type) == 0
                       : hf_class && strcmp(hf_class, hf_arches[k].hf_class) == 0)
            found = (int)k;
    }
    if (found < 0) {
        if (model_type)
            return zt_fail(c->err, ZT_EUNSUP, "%s: unsupported model_type '%s'", c->file,
                           model_type);
        if (hf_class)
            return zt_fail(c->err, ZT_EUNSUP, "%s: unsupported architecture '%s'", c->file,
                           hf_class);
        return zt_fail(c->err, ZT_EFORMAT,
                       "%s: missing required field 'model_type' (or 'architectures')", c->file);
    }
    snprintf(c->arch, sizeof c->arch, "%s", hf_arches[found].gguf_arch);

    const char *name = json_as_str(hf_field(c->root, "_name_or_path"));
    if (!name || !*name) {
        const char *slash = strrchr(dir, '/');
        name = slash && slash[1] ? slash + 1 : dir;
    }
    if (model_set_str(c->m, "general.architecture", c->arch) ||
        model_set_str(c->m, "zt.hf.model_type", hf_arches[found].model_type) ||
        model_set_str(c->m, "general.name", name))
        return hf_oom(c);
    return ZT_OK;
}

/* rope_scaling (or, in configs that transformers 5 writes, rope_parameters):
 * null or "default" -> nothing; "llama3" -> its keys; other -> EUNSUP. */
static int hf_config_rope_scaling(hf_config *c) {
    const json_value *rs = hf_field(c->root, "rope_scaling");
    if (!rs) rs = hf_field(c->root, "rope_parameters");
    if (!rs) return ZT_OK;
    if (!json_is(rs, JSON_OBJECT))
        return zt_fail(c->err, ZT_EFORMAT, "%s: field 'rope_scaling' must be an object or null",
                       c->file);
    const char *type = json_as_str(hf_field(rs, "rope_type"));
    if (!type) type = json_as_str(hf_field(rs, "type"));
    if (!type)
        return zt_fail(c->err, ZT_EFORMAT, "%s: rope_scaling has no 'rope_type' or 'type'",
                       c->file);
    if (strcmp(type, "default") == 0) return ZT_OK;
    if (strcmp(type, "llama3") != 0)
        return zt_fail(c->err, ZT_EUNSUP, "%s: unsupported rope_scaling type '%s'", c->file, type);
    static const char *const needed[] = {"factor", "low_freq_factor", "high_freq_factor",
                                         "original_max_position_embeddings"};
    for (size_t k = 0; k < sizeof needed / sizeof needed[0]; k++)
        if (!hf_field(rs, needed[k]))
            return zt_fail(c->err, ZT_EFORMAT, "%s: rope_scaling of type llama3 is missing '%s'",
                           c->file, needed[k]);
    double factor, low, high;
    int64_t orig_ctx;
    int rc;
    if ((rc = hf_num(c, rs, "factor", true, 0, 0, 1e6, &factor)) ||
        (rc = hf_num(c, rs, "low_freq_factor", true, 0, 0, 1e6, &low)) ||
        (rc = hf_num(c, rs, "high_freq_factor", true, 0, 0, 1e6, &high)) ||
        (rc = hf_int(c, rs, "original_max_position_embeddings", true, 0, 1, UINT32_MAX, &orig_ctx)))
        return rc;
    if (!(high > low))
        return zt_fail(c->err, ZT_EFORMAT,
                       "%s: rope_scaling needs high_freq_factor > low_freq_factor", c->file);
    char key[128];
    snprintf(key, sizeof key, "%s.rope.scaling.type", c->arch);
    if (model_set_str(c->m, key, "llama3") || hf_set_f32(c, "rope.scaling.factor", factor) ||
        model_set_f32(c->m, "zt.rope.llama3.low_freq_factor", (float)low) ||
        model_set_f32(c->m, "zt.rope.llama3.high_freq_factor", (float)high) ||
        hf_set_u32(c, "rope.scaling.original_context_length", orig_ctx))
        return hf_oom(c);
    return ZT_OK;
}

/* bos_token_id / eos_token_id (an int, a list of ints, or null). */
static int hf_config_special_tokens(hf_config *c, int64_t n_vocab) {
    int64_t bos;
    int rc = hf_int(c, c->root, "bos_token_id", false, -1, 0, n_vocab - 1, &bos);
    if (rc) return rc;
    if (bos >= 0 && model_set_u32(c->m, "tokenizer.ggml.bos_token_id", (uint32_t)bos))
        return hf_oom(c);

    const json_value *eos = hf_field(c->root, "eos_token_id");
    if (!eos) return ZT_OK;
    size_t n = json_is(eos, JSON_ARRAY) ? json_len(eos) : 1;
    if (n == 0) return ZT_OK;
    int32_t *ids = malloc(n * sizeof *ids);
    if (!ids) return hf_oom(c);
    for (size_t k = 0; k < n; k++) {
        int64_t id;
        const json_value *v = json_is(eos, JSON_ARRAY) ? json_at(eos, k) : eos;
        if (!json_as_int(v, &id) || id < 0 || id >= n_vocab) {
            free(ids);
            return zt_fail(c->err, ZT_EFORMAT,
                           "%s: field 'eos_token_id' must be a token id or a list of token ids "
                           "below vocab_size %lld",
                           c->file, (long long)n_vocab);
        }
        ids[k] = (int32_t)id;
    }
    rc = model_set_u32(c->m, "tokenizer.ggml.eos_token_id", (uint32_t)ids[0]) ||
         model_set_arr(c->m, "zt.eos_token_ids", GGUF_I32, ids, n);
    free(ids);
    return rc ? hf_oom(c) : ZT_OK;
}

/* The hyperparameters, as GGUF keys under the arch prefix. */
static int hf_config_hparams(hf_config *c) {
    const json_value *r = c->root;
    const int64_t big = INT32_MAX;
    int64_t ctx, dim, n_layers, ffn, n_heads, n_kv_heads, head_dim, n_vocab;
    double eps, theta;
    int rc;
    if ((rc = hf_int(c, r, "max_position_embeddings", true, 0, 1, big, &ctx)) ||
        (rc = hf_int(c, r, "hidden_size", true, 0, 1, big, &dim)) ||
        (rc = hf_int(c, r, "num_hidden_layers", true, 0, 1, 100000, &n_layers)) ||
        (rc = hf_int(c, r, "intermediate_size", true, 0, 1, big, &ffn)) ||
        (rc = hf_int(c, r, "num_attention_heads", true, 0, 1, 65536, &n_heads)) ||
        (rc = hf_int(c, r, "num_key_value_heads", false, n_heads, 1, n_heads, &n_kv_heads)) ||
        (rc = hf_int(c, r, "vocab_size", true, 0, 1, big, &n_vocab)) ||
        (rc = hf_num(c, r, "rms_norm_eps", true, 0, 0, 1, &eps)) ||
        (rc = hf_num(c, r, "rope_theta", false, 10000.0, 0, 1e12, &theta)))
        return rc;
    /* transformers 5 moves rope_theta and partial_rotary_factor into rope_parameters */
    const json_value *rp = hf_field(r, "rope_parameters");
    if (rp && !json_is(rp, JSON_OBJECT))
        return zt_fail(c->err, ZT_EFORMAT, "%s: field 'rope_parameters' must be an object",
                       c->file);
    if (rp && !hf_field(r, "rope_theta") &&
        (rc = hf_num(c, rp, "rope_theta", false, 10000.0, 0, 1e12, &theta)))
        return rc;
    const json_value *rotary = hf_field(r, "partial_rotary_factor") ? r : rp;
    if (hf_field(r, "head_dim")) {
        if ((rc = hf_int(c, r, "head_dim", true, 0, 1, 65536, &head_dim))) return rc;
    } else {
        if (dim % n_heads)
            return zt_fail(c->err, ZT_EFORMAT,
                           "%s: hidden_size %lld is not a multiple of num_attention_heads %lld "
                           "and no head_dim is given",
                           c->file, (long long)dim, (long long)n_heads);
        head_dim = dim / n_heads;
    }
    int64_t rope_dim = head_dim;
    if (rotary && hf_field(rotary, "partial_rotary_factor")) {
        double f;
        if ((rc = hf_num(c, rotary, "partial_rotary_factor", true, 1, 0, 1, &f))) return rc;
        double rd = (double)head_dim * f;
        rope_dim = (int64_t)rd;
        if ((double)rope_dim != rd || rope_dim % 2 || rope_dim == 0)
            return zt_fail(c->err, ZT_EUNSUP,
                           "%s: head_dim %lld * partial_rotary_factor %g is not a positive even "
                           "integer",
                           c->file, (long long)head_dim, f);
    }

    if (hf_set_u32(c, "context_length", ctx) || hf_set_u32(c, "embedding_length", dim) ||
        hf_set_u32(c, "block_count", n_layers) || hf_set_u32(c, "feed_forward_length", ffn) ||
        hf_set_u32(c, "attention.head_count", n_heads) ||
        hf_set_u32(c, "attention.head_count_kv", n_kv_heads) ||
        hf_set_u32(c, "attention.key_length", head_dim) ||
        hf_set_u32(c, "attention.value_length", head_dim) ||
        hf_set_f32(c, "attention.layer_norm_rms_epsilon", eps) ||
        hf_set_f32(c, "rope.freq_base", theta) || hf_set_u32(c, "rope.dimension_count", rope_dim) ||
        hf_set_u32(c, "vocab_size", n_vocab) || model_set_bool(c->m, "zt.rope.interleaved", false))
        return hf_oom(c);

    /* Qwen2 configs carry a sliding_window that use_sliding_window turns off */
    bool use_sw = true;
    const json_value *use = hf_field(r, "use_sliding_window");
    if (use && !json_as_bool(use, &use_sw))
        return zt_fail(c->err, ZT_EFORMAT, "%s: field 'use_sliding_window' must be a boolean",
                       c->file);
    if (use_sw && hf_field(r, "sliding_window")) {
        int64_t window;
        if ((rc = hf_int(c, r, "sliding_window", true, 0, 1, UINT32_MAX, &window))) return rc;
        if (hf_set_u32(c, "attention.sliding_window", window)) return hf_oom(c);
    }

    const json_value *tie = hf_field(r, "tie_word_embeddings");
    if (tie) {
        bool b;
        if (!json_as_bool(tie, &b))
            return zt_fail(c->err, ZT_EFORMAT, "%s: field 'tie_word_embeddings' must be a boolean",
                           c->file);
        if (model_set_bool(c->m, "zt.tie_word_embeddings", b)) return hf_oom(c);
    }

    if ((rc = hf_config_rope_scaling(c))) return rc;
    return hf_config_special_tokens(c, n_vocab);
}

/* ---- tokenizer files ------------------------------------------------- */

/* tokenizer.json's path; the chat template from chat_template.jinja or
 * tokenizer_config.json's "chat_template" (a string, or a list of named
 * templates of which we take "default"). */
static int hf_tokenizer_files(const char *dir, zt_model *m, zt_error *err) {
    char *path = hf_path(dir, "tokenizer.json");
    if (!path) return zt_fail(err, ZT_ENOMEM, "out of memory");
    if (hf_is_file(path)) {
        free(m->hf_tokenizer_json);
        m->hf_tokenizer_json = path;
    } else {
        free(path);
    }

    path = hf_path(dir, "chat_template.jinja");
    if (!path) return zt_fail(err, ZT_ENOMEM, "out of memory");
    if (hf_is_file(path)) {
        char *text = NULL;
        size_t len = 0;
        int rc = hf_read_file(path, HF_MAX_JSON_FILE, &text, &len, err);
        free(path);
        if (rc) return rc;
        rc = model_set_str(m, "tokenizer.chat_template", text);
        free(text);
        return rc ? zt_fail(err, ZT_ENOMEM, "out of memory") : ZT_OK;
    }
    free(path);
    path = hf_path(dir, "tokenizer_config.json");
    if (!path) return zt_fail(err, ZT_ENOMEM, "out of memory");
    bool has_config = hf_is_file(path);
    free(path);
    if (!has_config) return ZT_OK;

    json_value *tc = hf_load_json(dir, "tokenizer_config.json", err);
    if (!tc) return err ? err->code : ZT_EFORMAT;
    const json_value *ct = json_get(tc, "chat_template");
    const char *tmpl = json_as_str(ct);
    for (size_t k = 0; !tmpl && json_is(ct, JSON_ARRAY) && k < json_len(ct); k++) {
        const char *name = json_as_str(json_get(json_at(ct, k), "name"));
        if (name && strcmp(name, "default") == 0)
            tmpl = json_as_str(json_get(json_at(ct, k), "template"));
    }
    int rc = tmpl && model_set_str(m, "tokenizer.chat_template", tmpl)
                 ? zt_fail(err, ZT_ENOMEM, "out of memory")
                 : ZT_OK;
    json_free(tc);
    return rc;
}

/* ---- tensors --------------------------------------------------------- */

static const struct {
    const char *hf, *gguf;
} hf_layer_tensors[] = {
    {"input_layernorm.weight", "attn_norm.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"self_attn.o_proj.bias", "attn_output.bias"},
    {"self_attn.qkv_proj.weight", "attn_qkv.weight"}, /* phi3: q rows, k rows, v rows */
    {"self_attn.qkv_proj.bias", "attn_qkv.bias"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate_up_proj.weight", "ffn_up.weight"}, /* phi3: gate rows then up rows */
};

static bool hf_ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* HF tensor name -> GGUF name (safetensors_name_fn). Known-useless tensors
 * (rotary inv_freq buffers, recomputed from the config) are left out;
 * anything else unknown keeps its HF name. */
static bool hf_tensor_name(const char *hf, char *out, size_t cap, void *ctx) {
    static const struct {
        const char *hf, *gguf;
    } globals[] = {
        {"model.embed_tokens.weight", "token_embd.weight"},
        {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    (void)ctx;
    if (hf_ends_with(hf, "rotary_emb.inv_freq")) return false;
    for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++) {
        if (strcmp(hf, globals[k].hf) == 0) {
            snprintf(out, cap, "%s", globals[k].gguf);
            return true;
        }
    }

    static const char prefix[] = "model.layers.";
    if (strncmp(hf, prefix, sizeof prefix - 1) == 0) {
        const char *p = hf + sizeof prefix - 1;
        long layer = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9' && digits < 7) layer = layer * 10 + (*p++ - '0'), digits++;
        bool canonical = digits > 0 && *p == '.' && !(digits > 1 && hf[sizeof prefix - 1] == '0');
        for (size_t k = 0; canonical && k < sizeof hf_layer_tensors / sizeof hf_layer_tensors[0];
             k++) {
            if (strcmp(p + 1, hf_layer_tensors[k].hf) == 0) {
                snprintf(out, cap, "blk.%ld.%s", layer, hf_layer_tensors[k].gguf);
                return true;
            }
        }
    }
    if (strlen(hf) >= cap) return false; /* unknown and unnamable: nothing reads it */
    snprintf(out, cap, "%s", hf);
    return true;
}

static int hf_cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

typedef struct hf_names {
    char **v; /* [n] owned */
    size_t n, cap;
} hf_names;

static int hf_names_add(hf_names *s, const char *name) {
    for (size_t k = 0; k < s->n; k++)
        if (strcmp(s->v[k], name) == 0) return ZT_OK;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **v = realloc(s->v, cap * sizeof *v);
        if (!v) return ZT_ENOMEM;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n] = strdup(name))) return ZT_ENOMEM;
    s->n++;
    return ZT_OK;
}

static void hf_names_free(hf_names *s) {
    for (size_t k = 0; k < s->n; k++) free(s->v[k]);
    free(s->v);
}

/* The safetensors files to load: those named by model.safetensors.index.json
 * when there is one (repos may also hold e.g. consolidated.safetensors in
 * another naming), else every *.safetensors in the directory; sorted. */
static int hf_list_safetensors(const char *dir, hf_names *files, zt_error *err) {
    static const char index_name[] = "model.safetensors.index.json";
    char *index_path = hf_path(dir, index_name);
    if (!index_path) return zt_fail(err, ZT_ENOMEM, "out of memory");
    bool has_index = hf_is_file(index_path);
    int rc = ZT_OK;
    if (has_index) {
        json_value *idx = hf_load_json(dir, index_name, err);
        const json_value *wm = json_get(idx, "weight_map");
        if (!idx)
            rc = err ? err->code : ZT_EFORMAT;
        else if (!json_is(wm, JSON_OBJECT))
            rc = zt_fail(err, ZT_EFORMAT, "%s: no \"weight_map\" object", index_path);
        for (size_t k = 0; rc == ZT_OK && k < json_len(wm); k++) {
            const char *f = json_as_str(json_at(wm, k));
            if (!f || !*f || f[0] == '.' || strchr(f, '/') || strlen(f) != json_len(json_at(wm, k)))
                rc = zt_fail(err, ZT_EFORMAT,
                             "%s: weight_map entries must be file names in the same directory",
                             index_path);
            else if (hf_names_add(files, f))
                rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        }
        json_free(idx);
    } else {
        DIR *d = opendir(dir);
        if (!d) rc = zt_fail(err, ZT_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
        struct dirent *e;
        while (rc == ZT_OK && (e = readdir(d)))
            if (e->d_name[0] != '.' && hf_ends_with(e->d_name, ".safetensors") &&
                hf_names_add(files, e->d_name))
                rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        if (d) closedir(d);
    }
    free(index_path);
    if (rc == ZT_OK && files->n == 0) rc = zt_fail(err, ZT_EIO, "%s: no *.safetensors file", dir);
    if (rc == ZT_OK) qsort(files->v, files->n, sizeof *files->v, hf_cmp_str);
    return rc;
}

/* ---- the directory --------------------------------------------------- */

int hf_load_dir(const char *dir, zt_model *m, zt_error *err) {
    hf_config c = {.m = m, .err = err};
    hf_names files = {0};
    char *config_path = hf_path(dir, "config.json");
    json_value *config = NULL;
    int rc = ZT_OK;
    if (!config_path) return zt_fail(err, ZT_ENOMEM, "out of memory");
    if (!hf_is_file(config_path)) {
        rc = zt_fail(err, ZT_EIO, "%s: no config.json (not a Hugging Face model directory)", dir);
        goto done;
    }
    if (!(config = hf_load_json(dir, "config.json", err))) {
        rc = err ? err->code : ZT_EFORMAT;
        goto done;
    }
    if (!json_is(config, JSON_OBJECT)) {
        rc = zt_fail(err, ZT_EFORMAT, "%s: not a JSON object", config_path);
        goto done;
    }
    c.file = config_path;
    c.root = config;
    if ((rc = hf_config_arch(&c, dir)) || (rc = hf_config_hparams(&c))) goto done;
    if ((rc = hf_tokenizer_files(dir, m, err))) goto done;

    if ((rc = hf_list_safetensors(dir, &files, err))) goto done;
    for (size_t k = 0; k < files.n; k++) {
        char *path = hf_path(dir, files.v[k]);
        if (!path) {
            rc = zt_fail(err, ZT_ENOMEM, "out of memory");
            goto done;
        }
        rc = safetensors_load(path, m, hf_tensor_name, NULL, err);
        free(path);
        if (rc) goto done;
    }
    m->format = ZT_FORMAT_HF;
done:
    json_free(config);
    free(config_path);
    hf_names_free(&files);
    return rc;
}
