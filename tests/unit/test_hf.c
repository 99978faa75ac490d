/* Hugging Face directories: tiny config.json + hand-assembled safetensors
 * files written from C, loaded with hf_load_dir; checks the GGUF keys, the
 * renamed tensors (shapes reversed, types, bytes into the map), and one
 * clear error for each kind of bad input. */
#include "../test.h"
#include "model/model.h"
#include "quant/quant.h"
#include "util/f16.h"
#include "util/json.h"

#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- fixtures -------------------------------------------------------- */

/* An empty directory test_tmpdir()/hf_<name> (emptied if it exists). */
static const char *fresh_dir(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/hf_%s", test_tmpdir(), name);
    mkdir(path, 0755);
    DIR *d = opendir(path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char f[1024];
        snprintf(f, sizeof f, "%s/%s", path, e->d_name);
        unlink(f);
    }
    if (d) closedir(d);
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "  cannot create %s\n", path);
        return NULL;
    }
    return path;
}

static void write_bytes(const char *dir, const char *name, const void *bytes, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(bytes, 1, n, f);
    fclose(f);
}

static void write_text(const char *dir, const char *name, const char *text) {
    write_bytes(dir, name, text, strlen(text));
}

typedef struct st_tensor {
    const char *name;
    const char *dtype; /* "F32", "F16", "BF16" */
    int n_dims;
    int64_t shape[4];    /* row-major, as safetensors writes it */
    unsigned char *data; /* filled by make_data: [nbytes] random non-zero */
    size_t nbytes;
} st_tensor;

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static uint32_t rng_u32(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

/* Random values in +-[0.0005, 0.9995] (never zero) in the tensor's dtype. */
static void make_data(st_tensor *t) {
    int64_t n = 1;
    for (int k = 0; k < t->n_dims; k++) n *= t->shape[k];
    size_t es = strcmp(t->dtype, "F32") == 0 ? 4 : 2;
    t->nbytes = (size_t)n * es;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    for (int64_t i = 0; i < n; i++) {
        float v = ((float)(rng_u32() % 1000) + 0.5f) / 1000.0f * (rng_u32() & 1 ? 1 : -1);
        if (es == 4)
            memcpy(t->data + 4 * i, &v, 4);
        else {
            uint16_t h = strcmp(t->dtype, "F16") == 0 ? zt_f32_to_f16(v) : zt_f32_to_bf16(v);
            memcpy(t->data + 2 * i, &h, 2);
        }
    }
}

/* Writes a safetensors file of the tensors, data packed in order; the
 * header is padded with spaces to a multiple of 8 when pad is set. */
static void write_safetensors(const char *dir, const char *name, st_tensor *ts, int n, bool pad) {
    json_buf h = {0}, file = {0};
    size_t off = 0;
    json_buf_puts(&h, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (int k = 0; k < n; k++) {
        json_buf_puts(&h, ",");
        json_buf_string(&h, ts[k].name, strlen(ts[k].name));
        json_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", ts[k].dtype);
        for (int d = 0; d < ts[k].n_dims; d++)
            json_buf_printf(&h, "%s%lld", d ? "," : "", (long long)ts[k].shape[d]);
        json_buf_printf(&h, "],\"data_offsets\":[%zu,%zu]}", off, off + ts[k].nbytes);
        off += ts[k].nbytes;
    }
    json_buf_puts(&h, "}");
    while (pad && h.len % 8) json_buf_puts(&h, " ");
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
    json_buf_append(&file, (const char *)len8, 8);
    json_buf_append(&file, h.data, h.len);
    for (int k = 0; k < n; k++) json_buf_append(&file, (const char *)ts[k].data, ts[k].nbytes);
    write_bytes(dir, name, file.data, file.len);
    json_buf_free(&h);
    json_buf_free(&file);
}

/* A raw safetensors file: given header length field, header text and data. */
static void write_raw_st(const char *dir, const char *name, uint64_t len_field, const char *header,
                         size_t data_bytes) {
    json_buf file = {0};
    unsigned char len8[8];
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)(len_field >> (8 * k));
    json_buf_append(&file, (const char *)len8, 8);
    json_buf_puts(&file, header);
    for (size_t k = 0; k < data_bytes; k++) json_buf_append(&file, "\x5a", 1);
    write_bytes(dir, name, file.data, file.len);
    json_buf_free(&file);
}

static void free_data(st_tensor *ts, int n) {
    for (int k = 0; k < n; k++) free(ts[k].data);
}

static int64_t key_int(const zt_model *m, const char *key) {
    int64_t v = -12345;
    model_get_int(m, key, &v);
    return v;
}

static double key_float(const zt_model *m, const char *key) {
    double v = -12345;
    model_get_float(m, key, &v);
    return v;
}

/* The loaded tensor `gguf` has the type, reversed shape and bytes of t. */
static bool tensor_matches(const zt_model *m, const char *gguf, const st_tensor *t, int type) {
    const zt_tensor *z = model_tensor(m, gguf);
    if (!z) {
        fprintf(stderr, "  no tensor %s\n", gguf);
        return false;
    }
    bool ok = z->type == type && z->n_dims == t->n_dims && z->nbytes == t->nbytes &&
              memcmp(z->data, t->data, t->nbytes) == 0;
    for (int k = 0; k < t->n_dims; k++) ok = ok && z->ne[k] == t->shape[t->n_dims - 1 - k];
    for (int k = t->n_dims; k < ZT_MAX_DIMS; k++) ok = ok && z->ne[k] == 1;
    if (!ok) fprintf(stderr, "  tensor %s (from %s) does not match\n", gguf, t->name);
    return ok;
}

static const char llama_config[] =
    "{\"architectures\": [\"LlamaForCausalLM\"], \"model_type\": \"llama\",\n"
    " \"hidden_size\": 8, \"intermediate_size\": 12, \"num_hidden_layers\": 1,\n"
    " \"num_attention_heads\": 2, \"num_key_value_heads\": 1,\n"
    " \"max_position_embeddings\": 128, \"rms_norm_eps\": 1e-05, \"rope_theta\": 500000.0,\n"
    " \"vocab_size\": 10, \"bos_token_id\": 1, \"eos_token_id\": [2, 9],\n"
    " \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\",\n"
    " \"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,\n"
    "   \"original_max_position_embeddings\": 64, \"rope_type\": \"llama3\"}}\n";

/* ---- valid directories ----------------------------------------------- */

TEST(test_hf_llama_two_shards_map_keys_names_shapes_and_bytes) {
    const char *dir = fresh_dir("llama");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    write_text(dir, "tokenizer.json", "{}");
    write_text(dir, "tokenizer_config.json",
               "{\"bos_token\": \"<s>\", \"chat_template\": \"{{ messages }}\\n\"}");
    st_tensor a[] = {
        {"model.embed_tokens.weight", "BF16", 2, {10, 8}, 0, 0},
        {"model.layers.0.input_layernorm.weight", "F32", 1, {8}, 0, 0},
        {"model.layers.0.self_attn.q_proj.weight", "F16", 2, {8, 8}, 0, 0},
        {"model.layers.0.self_attn.k_proj.weight", "BF16", 2, {4, 8}, 0, 0},
        {"model.layers.0.self_attn.v_proj.weight", "F32", 2, {4, 8}, 0, 0},
        {"model.layers.0.self_attn.rotary_emb.inv_freq", "F32", 1, {2}, 0, 0},
    };
    st_tensor b[] = {
        {"model.layers.0.self_attn.o_proj.weight", "F16", 2, {8, 8}, 0, 0},
        {"model.layers.0.post_attention_layernorm.weight", "F32", 1, {8}, 0, 0},
        {"model.layers.0.mlp.gate_proj.weight", "BF16", 2, {12, 8}, 0, 0},
        {"model.layers.0.mlp.up_proj.weight", "F16", 2, {12, 8}, 0, 0},
        {"model.layers.0.mlp.down_proj.weight", "F32", 2, {8, 12}, 0, 0},
        {"model.norm.weight", "F32", 1, {8}, 0, 0},
        {"lm_head.weight", "F16", 2, {10, 8}, 0, 0},
        {"model.extra_buffer", "F32", 3, {2, 3, 2}, 0, 0},
    };
    for (int k = 0; k < 6; k++) make_data(&a[k]);
    for (int k = 0; k < 8; k++) make_data(&b[k]);
    /* written out of order: loading sorts the file names */
    write_safetensors(dir, "model-00002-of-00002.safetensors", b, 8, true);
    write_safetensors(dir, "model-00001-of-00002.safetensors", a, 6, true);

    zt_model *m = model_new(dir);
    zt_error err = {0};
    int rc = hf_load_dir(dir, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_EQ_INT(m->format, ZT_FORMAT_HF);
    CHECK_STR(model_get_str(m, "general.architecture"), "llama");
    CHECK_STR(model_get_str(m, "zt.hf.model_type"), "llama");
    CHECK_EQ_INT(key_int(m, "llama.context_length"), 128);
    CHECK_EQ_INT(key_int(m, "llama.embedding_length"), 8);
    CHECK_EQ_INT(key_int(m, "llama.block_count"), 1);
    CHECK_EQ_INT(key_int(m, "llama.feed_forward_length"), 12);
    CHECK_EQ_INT(key_int(m, "llama.attention.head_count"), 2);
    CHECK_EQ_INT(key_int(m, "llama.attention.head_count_kv"), 1);
    CHECK_EQ_INT(key_int(m, "llama.attention.key_length"), 4);
    CHECK_EQ_INT(key_int(m, "llama.attention.value_length"), 4);
    CHECK_EQ_INT(key_int(m, "llama.rope.dimension_count"), 4);
    CHECK_EQ_INT(key_int(m, "llama.vocab_size"), 10);
    CHECK_NEAR(key_float(m, "llama.attention.layer_norm_rms_epsilon"), 1e-5, 1e-12);
    CHECK_NEAR(key_float(m, "llama.rope.freq_base"), 500000.0, 0);
    CHECK_STR(model_get_str(m, "llama.rope.scaling.type"), "llama3");
    CHECK_NEAR(key_float(m, "llama.rope.scaling.factor"), 8.0, 0);
    CHECK_NEAR(key_float(m, "zt.rope.llama3.low_freq_factor"), 1.0, 0);
    CHECK_NEAR(key_float(m, "zt.rope.llama3.high_freq_factor"), 4.0, 0);
    CHECK_EQ_INT(key_int(m, "llama.rope.scaling.original_context_length"), 64);
    CHECK(model_kv(m, "llama.attention.sliding_window") == NULL);
    bool flag = true;
    CHECK(model_get_bool(m, "zt.rope.interleaved", &flag) && !flag);
    flag = true;
    CHECK(model_get_bool(m, "zt.tie_word_embeddings", &flag) && !flag);
    CHECK_EQ_INT(key_int(m, "tokenizer.ggml.bos_token_id"), 1);
    CHECK_EQ_INT(key_int(m, "tokenizer.ggml.eos_token_id"), 2);
    const zt_kv *eos = model_kv(m, "zt.eos_token_ids");
    REQUIRE(eos && eos->type == GGUF_ARRAY && eos->arr_type == GGUF_I32 && eos->n == 2);
    CHECK(((int32_t *)eos->arr)[0] == 2 && ((int32_t *)eos->arr)[1] == 9);
    CHECK_STR(model_get_str(m, "tokenizer.chat_template"), "{{ messages }}\n");
    REQUIRE(m->hf_tokenizer_json);
    CHECK(strstr(m->hf_tokenizer_json, "hf_llama/tokenizer.json") != NULL);

    /* 13 tensors: inv_freq dropped, the unknown buffer kept by its HF name */
    CHECK_EQ_INT(m->n_tensors, 13);
    CHECK(model_tensor(m, "model.layers.0.self_attn.rotary_emb.inv_freq") == NULL);
    CHECK(tensor_matches(m, "token_embd.weight", &a[0], ZT_BF16));
    CHECK(tensor_matches(m, "blk.0.attn_norm.weight", &a[1], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.attn_q.weight", &a[2], ZT_F16));
    CHECK(tensor_matches(m, "blk.0.attn_k.weight", &a[3], ZT_BF16));
    CHECK(tensor_matches(m, "blk.0.attn_v.weight", &a[4], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.attn_output.weight", &b[0], ZT_F16));
    CHECK(tensor_matches(m, "blk.0.ffn_norm.weight", &b[1], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.ffn_gate.weight", &b[2], ZT_BF16));
    CHECK(tensor_matches(m, "blk.0.ffn_up.weight", &b[3], ZT_F16));
    CHECK(tensor_matches(m, "blk.0.ffn_down.weight", &b[4], ZT_F32));
    CHECK(tensor_matches(m, "output_norm.weight", &b[5], ZT_F32));
    CHECK(tensor_matches(m, "output.weight", &b[6], ZT_F16));
    CHECK(tensor_matches(m, "model.extra_buffer", &b[7], ZT_F32));
    /* [out, in] = [12, 8] becomes ne = {8, 12}; first shard loads first */
    const zt_tensor *gate = model_tensor(m, "blk.0.ffn_gate.weight");
    CHECK(gate->ne[0] == 8 && gate->ne[1] == 12 && gate->n_dims == 2);
    CHECK_STR(m->tensors[0].name, "token_embd.weight");
    const zt_tensor *extra = model_tensor(m, "model.extra_buffer");
    CHECK(extra->ne[0] == 2 && extra->ne[1] == 3 && extra->ne[2] == 2);
    zt_model_free(m);
    free_data(a, 6);
    free_data(b, 8);
}

TEST(test_hf_phi3_fused_tensors_and_sliding_window) {
    const char *dir = fresh_dir("phi3");
    REQUIRE(dir);
    write_text(dir, "config.json",
               "{\"architectures\": [\"Phi3ForCausalLM\"], \"model_type\": \"phi3\",\n"
               " \"hidden_size\": 8, \"intermediate_size\": 6, \"num_hidden_layers\": 2,\n"
               " \"num_attention_heads\": 2, \"max_position_embeddings\": 4096,\n"
               " \"original_max_position_embeddings\": 4096, \"rms_norm_eps\": 1e-05,\n"
               " \"rope_theta\": 10000.0, \"rope_scaling\": null, \"sliding_window\": 2047,\n"
               " \"vocab_size\": 12, \"bos_token_id\": 1, \"eos_token_id\": 11,\n"
               " \"tie_word_embeddings\": true, \"pad_token_id\": 0}");
    st_tensor t[] = {
        {"model.embed_tokens.weight", "BF16", 2, {12, 8}, 0, 0},
        {"model.layers.1.self_attn.qkv_proj.weight", "BF16", 2, {24, 8}, 0, 0},
        {"model.layers.1.mlp.gate_up_proj.weight", "F16", 2, {12, 8}, 0, 0},
        {"model.layers.1.mlp.down_proj.weight", "F32", 2, {8, 6}, 0, 0},
        {"model.layers.0.self_attn.qkv_proj.weight", "BF16", 2, {24, 8}, 0, 0},
    };
    for (int k = 0; k < 5; k++) make_data(&t[k]);
    write_safetensors(dir, "model.safetensors", t, 5, true);
    zt_model *m = model_new(dir);
    zt_error err = {0};
    int rc = hf_load_dir(dir, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_STR(model_get_str(m, "general.architecture"), "phi3");
    CHECK_EQ_INT(key_int(m, "phi3.attention.head_count_kv"), 2); /* defaults to heads */
    CHECK_EQ_INT(key_int(m, "phi3.attention.key_length"), 4);
    CHECK_EQ_INT(key_int(m, "phi3.attention.sliding_window"), 2047);
    CHECK_EQ_INT(key_int(m, "phi3.context_length"), 4096);
    CHECK_NEAR(key_float(m, "phi3.rope.freq_base"), 10000.0, 0);
    CHECK(model_kv(m, "phi3.rope.scaling.type") == NULL);
    bool tied = false;
    CHECK(model_get_bool(m, "zt.tie_word_embeddings", &tied) && tied);
    CHECK_EQ_INT(key_int(m, "tokenizer.ggml.eos_token_id"), 11);
    const zt_kv *eos = model_kv(m, "zt.eos_token_ids");
    CHECK(eos && eos->n == 1 && ((int32_t *)eos->arr)[0] == 11);
    CHECK(m->hf_tokenizer_json == NULL);
    CHECK(model_kv(m, "tokenizer.chat_template") == NULL);
    CHECK(tensor_matches(m, "blk.1.attn_qkv.weight", &t[1], ZT_BF16));
    CHECK(tensor_matches(m, "blk.1.ffn_up.weight", &t[2], ZT_F16));
    CHECK(tensor_matches(m, "blk.1.ffn_down.weight", &t[3], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.attn_qkv.weight", &t[4], ZT_BF16));
    const zt_tensor *up = model_tensor(m, "blk.1.ffn_up.weight");
    CHECK(up && up->ne[0] == 8 && up->ne[1] == 2 * 6); /* gate rows then up rows */
    zt_model_free(m);
    free_data(t, 5);
}

TEST(test_hf_qwen2_index_biases_head_dim_and_disabled_window) {
    const char *dir = fresh_dir("qwen2");
    REQUIRE(dir);
    write_text(dir, "config.json",
               "{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"qwen2\",\n"
               " \"hidden_size\": 8, \"intermediate_size\": 16, \"num_hidden_layers\": 1,\n"
               " \"num_attention_heads\": 2, \"num_key_value_heads\": 1, \"head_dim\": 8,\n"
               " \"partial_rotary_factor\": 0.5, \"max_position_embeddings\": 32768,\n"
               " \"rms_norm_eps\": 1e-06, \"rope_theta\": 1000000.0, \"sliding_window\": 32768,\n"
               " \"use_sliding_window\": false, \"max_window_layers\": 21,\n"
               " \"vocab_size\": 20, \"bos_token_id\": null, \"eos_token_id\": 19}");
    write_text(dir, "chat_template.jinja", "{% for m in messages %}{{ m }}{% endfor %}");
    write_text(dir, "tokenizer_config.json", "{\"chat_template\": \"ignored\"}");
    st_tensor t[] = {
        {"model.layers.0.self_attn.q_proj.bias", "F32", 1, {16}, 0, 0},
        {"model.layers.0.self_attn.k_proj.bias", "BF16", 1, {8}, 0, 0},
        {"model.layers.0.self_attn.v_proj.bias", "F16", 1, {8}, 0, 0},
    };
    for (int k = 0; k < 3; k++) make_data(&t[k]);
    write_safetensors(dir, "model-00001-of-00001.safetensors", t, 3, true);
    /* not in the index: would fail if loaded */
    write_raw_st(dir, "consolidated.safetensors", 1u << 30, "{", 0);
    write_text(dir, "model.safetensors.index.json",
               "{\"metadata\": {\"total_size\": 72}, \"weight_map\": {\n"
               " \"model.layers.0.self_attn.q_proj.bias\": \"model-00001-of-00001.safetensors\",\n"
               " \"model.layers.0.self_attn.k_proj.bias\": \"model-00001-of-00001.safetensors\"}}");
    zt_model *m = model_new(dir);
    zt_error err = {0};
    int rc = hf_load_dir(dir, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_STR(model_get_str(m, "general.architecture"), "qwen2");
    CHECK_EQ_INT(key_int(m, "qwen2.attention.key_length"), 8); /* head_dim, not 8 / 2 */
    CHECK_EQ_INT(key_int(m, "qwen2.rope.dimension_count"), 4); /* 8 * 0.5 */
    CHECK_NEAR(key_float(m, "qwen2.rope.freq_base"), 1e6, 0);
    CHECK(model_kv(m, "qwen2.attention.sliding_window") == NULL); /* use_sliding_window false */
    CHECK(model_kv(m, "tokenizer.ggml.bos_token_id") == NULL);
    CHECK_EQ_INT(key_int(m, "tokenizer.ggml.eos_token_id"), 19);
    CHECK_STR(model_get_str(m, "tokenizer.chat_template"),
              "{% for m in messages %}{{ m }}{% endfor %}");
    CHECK_EQ_INT(m->n_tensors, 3);
    CHECK(tensor_matches(m, "blk.0.attn_q.bias", &t[0], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.attn_k.bias", &t[1], ZT_BF16));
    CHECK(tensor_matches(m, "blk.0.attn_v.bias", &t[2], ZT_F16));
    zt_model_free(m);
    free_data(t, 3);
}

TEST(test_hf_mistral_runs_as_llama_with_window) {
    const char *dir = fresh_dir("mistral");
    REQUIRE(dir);
    write_text(dir, "config.json",
               "{\"architectures\": [\"MistralForCausalLM\"], \"model_type\": \"mistral\",\n"
               " \"hidden_size\": 16, \"intermediate_size\": 32, \"num_hidden_layers\": 1,\n"
               " \"num_attention_heads\": 4, \"num_key_value_heads\": 2, \"head_dim\": null,\n"
               " \"max_position_embeddings\": 256, \"rms_norm_eps\": 1e-05,\n"
               " \"sliding_window\": 4096, \"vocab_size\": 32, \"bos_token_id\": 1,\n"
               " \"eos_token_id\": 2, \"_name_or_path\": \"tiny-mistral\"}");
    st_tensor t[] = {{"model.norm.weight", "F32", 1, {16}, 0, 0}};
    make_data(&t[0]);
    write_safetensors(dir, "model.safetensors", t, 1, true);
    zt_model *m = model_new(dir);
    zt_error err = {0};
    int rc = hf_load_dir(dir, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_STR(model_get_str(m, "general.architecture"), "llama");
    CHECK_STR(model_get_str(m, "zt.hf.model_type"), "mistral");
    CHECK_STR(model_get_str(m, "general.name"), "tiny-mistral");
    CHECK_EQ_INT(key_int(m, "llama.attention.sliding_window"), 4096);
    CHECK_EQ_INT(key_int(m, "llama.attention.key_length"), 4);
    CHECK_NEAR(key_float(m, "llama.rope.freq_base"), 10000.0, 0); /* default */
    CHECK(tensor_matches(m, "output_norm.weight", &t[0], ZT_F32));
    zt_model_free(m);
    free_data(t, 1);
}

TEST(test_hf_misaligned_tensor_is_copied_aligned) {
    const char *dir = fresh_dir("misaligned");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    st_tensor t[] = {
        {"model.layers.0.input_layernorm.weight", "F16", 1, {3}, 0, 0}, /* 6 bytes */
        {"model.norm.weight", "F32", 1, {8}, 0, 0},                     /* starts at 6 */
    };
    make_data(&t[0]);
    make_data(&t[1]);
    write_safetensors(dir, "model.safetensors", t, 2, true);
    zt_model *m = model_new(dir);
    zt_error err = {0};
    REQUIRE(hf_load_dir(dir, m, &err) == ZT_OK);
    const zt_tensor *norm = model_tensor(m, "output_norm.weight");
    REQUIRE(norm);
    CHECK((uintptr_t)norm->data % 4 == 0);
    CHECK(tensor_matches(m, "output_norm.weight", &t[1], ZT_F32));
    CHECK(tensor_matches(m, "blk.0.attn_norm.weight", &t[0], ZT_F16));
    zt_model_free(m);
    free_data(t, 2);
}

/* ---- bad input: one clear error each --------------------------------- */

/* Loads dir, expects failure with `code` and `part` in the message. */
static bool load_fails(const char *dir, int code, const char *part) {
    if (!dir) return false;
    zt_model *m = model_new(dir);
    zt_error err = {0};
    int rc = hf_load_dir(dir, m, &err);
    zt_model_free(m);
    bool ok = rc == code && err.code == code && strstr(err.msg, part) && !strchr(err.msg, '\n');
    if (!ok)
        fprintf(stderr, "  rc %d, message \"%s\"; wanted %d, \"%s\"\n", rc, err.msg, code, part);
    return ok;
}

/* A directory with the llama config and one safetensors file of the given
 * raw header (length field = its length) and data bytes. */
static const char *dir_with_header(const char *name, const char *header, size_t data_bytes) {
    const char *dir = fresh_dir(name);
    if (!dir) return NULL;
    write_text(dir, "config.json", llama_config);
    write_raw_st(dir, "model.safetensors", strlen(header), header, data_bytes);
    return dir;
}

TEST(test_hf_rejects_missing_config_json) {
    const char *dir = fresh_dir("no_config");
    REQUIRE(dir);
    CHECK(load_fails(dir, ZT_EIO, "no config.json"));
}

TEST(test_hf_rejects_malformed_config_json_with_offset) {
    const char *dir = fresh_dir("bad_json");
    REQUIRE(dir);
    write_text(dir, "config.json", "{\"model_type\": \"llama\" \"hidden_size\": 8}");
    CHECK(load_fails(dir, ZT_EINVAL, "config.json: expected ',' or '}' at byte 23, found"));
}

TEST(test_hf_rejects_missing_required_field) {
    const char *dir = fresh_dir("no_hidden");
    REQUIRE(dir);
    write_text(dir, "config.json",
               "{\"model_type\": \"llama\", \"intermediate_size\": 12, \"num_hidden_layers\": 1,"
               " \"num_attention_heads\": 2, \"max_position_embeddings\": 8,"
               " \"rms_norm_eps\": 1e-5, \"vocab_size\": 10}");
    CHECK(load_fails(dir, ZT_EFORMAT, "config.json: missing required field 'hidden_size'"));
}

TEST(test_hf_rejects_unsupported_model_type_and_rope_scaling) {
    const char *dir = fresh_dir("xyz");
    REQUIRE(dir);
    write_text(dir, "config.json", "{\"model_type\": \"xyz\", \"architectures\": [\"Xyz\"]}");
    CHECK(load_fails(dir, ZT_EUNSUP, "config.json: unsupported model_type 'xyz'"));

    dir = fresh_dir("longrope");
    REQUIRE(dir);
    write_text(dir, "config.json",
               "{\"model_type\": \"phi3\", \"hidden_size\": 8, \"intermediate_size\": 12,"
               " \"num_hidden_layers\": 1, \"num_attention_heads\": 2,"
               " \"max_position_embeddings\": 8, \"rms_norm_eps\": 1e-5, \"vocab_size\": 10,"
               " \"rope_scaling\": {\"type\": \"longrope\", \"long_factor\": [1.0]}}");
    CHECK(load_fails(dir, ZT_EUNSUP, "unsupported rope_scaling type 'longrope'"));
}

TEST(test_hf_rejects_directory_without_safetensors) {
    const char *dir = fresh_dir("no_weights");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    write_text(dir, "pytorch_model.bin", "not read");
    CHECK(load_fails(dir, ZT_EIO, "no *.safetensors file"));
}

TEST(test_hf_rejects_header_length_past_end_of_file) {
    const char *dir = fresh_dir("long_header");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    write_raw_st(dir, "model.safetensors", 1000, "{}", 4);
    CHECK(load_fails(dir, ZT_EFORMAT, "header length 1000 is larger than the file (14 bytes)"));

    dir = fresh_dir("tiny_file");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    write_text(dir, "model.safetensors", "abc");
    CHECK(load_fails(dir, ZT_EFORMAT, "file is 3 bytes, too short for a safetensors header"));
}

TEST(test_hf_rejects_header_that_is_not_json) {
    const char *dir = dir_with_header("header_not_json", "{\"a\": [1, 2}", 0);
    CHECK(load_fails(dir, ZT_EFORMAT, "header is not valid JSON: expected ',' or ']' at byte 11"));
    dir = dir_with_header("header_binary", "\x01\x02\x03\x04", 0);
    CHECK(load_fails(dir, ZT_EFORMAT, "header is not a JSON object"));
}

TEST(test_hf_rejects_data_offsets_out_of_range) {
    const char *dir = dir_with_header(
        "offsets",
        "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [4, 36]}}",
        32);
    CHECK(load_fails(dir, ZT_EFORMAT,
                     "tensor 'model.norm.weight' data_offsets [4, 36] lie outside the data "
                     "region of 32 bytes"));
    dir = dir_with_header(
        "offsets_neg",
        "{\"model.norm.weight\": {\"dtype\": \"F32\", \"shape\": [8], \"data_offsets\": [-4, 28]}}",
        32);
    CHECK(load_fails(dir, ZT_EFORMAT, "needs \"data_offsets\": [begin, end]"));
}

TEST(test_hf_rejects_shape_size_mismatch) {
    const char *dir = dir_with_header("shape",
                                      "{\"model.norm.weight\": {\"dtype\": \"BF16\", \"shape\": "
                                      "[4, 8], \"data_offsets\": [0, 32]}}",
                                      64);
    CHECK(load_fails(dir, ZT_EFORMAT,
                     "tensor 'model.norm.weight' of shape [4, 8] BF16 needs 64 bytes but "
                     "data_offsets span 32"));
    dir = dir_with_header("shape_overflow",
                          "{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, "
                          "4294967296], \"data_offsets\": [0, 8]}}",
                          8);
    CHECK(load_fails(dir, ZT_EFORMAT, "shape is impossibly large"));
}

TEST(test_hf_rejects_unsupported_dtype_naming_tensor) {
    const char *dir = dir_with_header(
        "dtype",
        "{\"model.layers.0.mlp.up_proj.weight\": {\"dtype\": \"I64\", \"shape\": [2],"
        " \"data_offsets\": [0, 16]}}",
        16);
    CHECK(load_fails(dir, ZT_EUNSUP,
                     "tensor 'model.layers.0.mlp.up_proj.weight' has dtype I64; supported are "
                     "F32, F16 and BF16"));
}

TEST(test_hf_rejects_tensor_present_in_two_shards) {
    const char *dir = fresh_dir("dup");
    REQUIRE(dir);
    write_text(dir, "config.json", llama_config);
    st_tensor t[] = {{"model.norm.weight", "F32", 1, {8}, 0, 0}};
    make_data(&t[0]);
    write_safetensors(dir, "model-00001-of-00002.safetensors", t, 1, true);
    write_safetensors(dir, "model-00002-of-00002.safetensors", t, 1, false);
    CHECK(load_fails(dir, ZT_EFORMAT,
                     "tensor 'model.norm.weight' (as 'output_norm.weight') "
                     "appears more than once"));
    free_data(t, 1);
}
