/*
 * The wasm32 module's exports: what the chat page and the browser tests
 * call. The same C core as the native build (model, tokenizer, chat
 * templates, sampler, engine) with the webgpu backend (or the CPU one).
 *
 * The page drives generation one token per call instead of one blocking
 * loop, so the browser can paint between tokens and a Stop button works:
 *
 *   zt_wasm_load(path, backend, n_ctx, kv)    model + tokenizer + engine
 *   zt_wasm_chat_clear / zt_wasm_chat_add     the conversation so far
 *   zt_wasm_begin(prompt, chat, max_tokens)   tokenize, prefill
 *   zt_wasm_step()                            1: zt_wasm_piece() has text,
 *                                             0: done (zt_wasm_stats()), <0: error
 *
 * It is the loop of src/cli/generate.c (prefix reuse of the KV cache, the
 * on-device argmax for greedy sampling, stop tokens, the token budget) cut
 * at the token boundary. Calls that run a forward reach zt_gpu_read, which
 * suspends through JSPI: the host calls them through WebAssembly.promising.
 *
 * Strings cross as NUL-terminated UTF-8 in linear memory; the host copies
 * them in with zt_wasm_alloc. Every call that can fail returns a zt error
 * code and leaves the message in zt_wasm_error().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/webgpu/webgpu.h"
#include "model/model.h"
#include "zt.h"

#define EXPORT(name) __attribute__((export_name(name)))

typedef struct wasm_session {
    zt_model *model;
    zt_tokenizer *tok;
    zt_engine *eng;
    zt_sampler *smp;
    zt_detok *detok;
    int seq;
    int32_t *cached; /* [n_ctx] tokens whose K/V the sequence holds */
    int n_cached;
    float *logits;   /* [n_vocab] */
    zt_chat_msg *msgs;
    int n_msgs;

    /* the generation in progress */
    bool active, greedy;
    int32_t next;    /* the token the last forward chose */
    int n_prompt, n_reused, n_gen, max_tokens;
    const char *stop;
} wasm_session;

static wasm_session S = {.seq = -1};
static zt_error last_err;
static char piece[1024];
static char text_out[4096];

EXPORT("zt_wasm_alloc") void *wasm_alloc(size_t n) { return malloc(n ? n : 1); }
EXPORT("zt_wasm_free") void wasm_free(void *p) { free(p); }
EXPORT("zt_wasm_error") const char *wasm_error(void) { return last_err.msg; }

/* Returns rc, making sure zt_wasm_error() says something when it fails. */
static int fail(int rc) {
    if (rc != ZT_OK && !last_err.msg[0])
        snprintf(last_err.msg, sizeof last_err.msg,
                 rc == ZT_ENOMEM ? "out of memory" : "error %d (no message)", rc);
    return rc;
}

static void chat_clear(void) {
    for (int i = 0; i < S.n_msgs; i++) free((char *)S.msgs[i].role), free((char *)S.msgs[i].content);
    free(S.msgs);
    S.msgs = NULL;
    S.n_msgs = 0;
}

EXPORT("zt_wasm_unload") void wasm_unload(void) {
    chat_clear();
    zt_detok_free(S.detok);
    zt_sampler_free(S.smp);
    zt_engine_free(S.eng);
    zt_tokenizer_free(S.tok);
    zt_model_free(S.model);
    free(S.cached);
    free(S.logits);
    memset(&S, 0, sizeof S);
    S.seq = -1;
}

/* Loads a model file of the host's file system. backend: "webgpu", "cpu" or
 * "auto"; n_ctx 0 = the model's; kv "f16" or "f32"; max_batch 0 = 64 rows
 * per forward (the activations and logits buffers are sized by it). */
EXPORT("zt_wasm_load")
int wasm_load(const char *path, const char *backend, int n_ctx, const char *kv, int max_batch) {
    wasm_unload();
    memset(&last_err, 0, sizeof last_err);
    zt_engine_opts eo = {.backend = backend, .n_ctx = n_ctx, .n_seq = 1,
                         .max_batch = max_batch > 0 ? max_batch : 64, .kv_type = kv};
    zt_sampler_params sp = zt_sampler_defaults();
    int rc;
    if ((rc = zt_model_load(path, &S.model, &last_err)) ||
        (rc = zt_engine_create(S.model, &eo, &S.eng, &last_err)) ||
        (rc = zt_sampler_create(&sp, zt_engine_n_vocab(S.eng), &S.smp, &last_err)) ||
        (rc = zt_seq_open(S.eng, &S.seq, &last_err))) {
        wasm_unload();
        return fail(rc);
    }
    /* a model without a tokenizer (test fixtures) still gives logits */
    zt_error tok_err = {0};
    if (zt_tokenizer_create(S.model, &S.tok, &tok_err) != ZT_OK) S.tok = NULL;
    S.cached = malloc(sizeof(int32_t) * (size_t)zt_engine_n_ctx(S.eng));
    S.logits = malloc(sizeof(float) * (size_t)zt_engine_n_vocab(S.eng));
    if (!S.cached || !S.logits) {
        wasm_unload();
        snprintf(last_err.msg, sizeof last_err.msg, "out of memory");
        return ZT_ENOMEM;
    }
    return ZT_OK;
}

/* A JSON object describing the loaded model and engine. */
EXPORT("zt_wasm_info") const char *wasm_info(void) {
    if (!S.model) return "{}";
    const zt_config *c = &S.model->cfg;
    const char *style = "chatml";
    bool recognized = false;
    zt_chat_template_resolve(S.model, NULL, &style, &recognized, NULL);
    const char *name = model_get_str(S.model, "general.name");
    char device[320] = "";
    if (!strcmp(zt_engine_backend_name(S.eng), "webgpu")) zt_webgpu_describe(device, sizeof device);
    int used, total;
    zt_engine_kv_pages(S.eng, &used, &total);
    snprintf(text_out, sizeof text_out,
             "{\"name\":\"%s\",\"arch\":\"%s\",\"n_vocab\":%d,\"dim\":%d,\"n_layers\":%d,"
             "\"n_heads\":%d,\"n_kv_heads\":%d,\"head_dim\":%d,\"ffn_dim\":%d,\"n_ctx\":%d,"
             "\"backend\":\"%s\",\"device\":\"%s\",\"template\":\"%s\",\"kv_pages\":%d}",
             name ? name : "", c->arch_name, c->n_vocab, c->dim, c->n_layers, c->n_heads,
             c->n_kv_heads, c->head_dim, c->ffn_dim, zt_engine_n_ctx(S.eng),
             zt_engine_backend_name(S.eng), device, style, total);
    return text_out;
}

EXPORT("zt_wasm_device") const char *wasm_device(void) {
    zt_webgpu_describe(text_out, sizeof text_out);
    return text_out;
}

/* Optional WebGPU features for engines loaded from now on (see
 * zt_webgpu_allow). */
EXPORT("zt_wasm_allow") void wasm_allow(int shader_f16, int subgroups, int split) {
    zt_webgpu_allow(shader_f16 != 0, subgroups != 0, split);
}

EXPORT("zt_wasm_sampling")
int wasm_sampling(float temperature, int top_k, float top_p, float min_p, float repeat_penalty,
                  uint32_t seed) {
    memset(&last_err, 0, sizeof last_err);
    if (!S.eng) {
        snprintf(last_err.msg, sizeof last_err.msg, "no model");
        return ZT_EINVAL;
    }
    zt_sampler_params sp = zt_sampler_defaults();
    sp.temperature = temperature;
    sp.top_k = top_k;
    sp.top_p = top_p;
    sp.min_p = min_p;
    sp.repeat_penalty = repeat_penalty;
    sp.seed = seed;
    zt_sampler *s;
    int rc = zt_sampler_create(&sp, zt_engine_n_vocab(S.eng), &s, &last_err);
    if (rc) return fail(rc);
    zt_sampler_free(S.smp);
    S.smp = s;
    return ZT_OK;
}

EXPORT("zt_wasm_chat_clear") void wasm_chat_clear(void) { chat_clear(); }

EXPORT("zt_wasm_chat_add") int wasm_chat_add(const char *role, const char *content) {
    zt_chat_msg *m = realloc(S.msgs, sizeof *m * (size_t)(S.n_msgs + 1));
    if (!m) return fail(ZT_ENOMEM);
    S.msgs = m;
    char *r = strdup(role), *c = strdup(content);
    if (!r || !c) {
        free(r), free(c);
        return fail(ZT_ENOMEM);
    }
    S.msgs[S.n_msgs++] = (zt_chat_msg){r, c};
    return ZT_OK;
}

/* The prompt's tokens: the chat messages through the model's template, or
 * `prompt` as plain text. */
static int prompt_tokens(const char *prompt, bool chat, int32_t **ids, int *n) {
    if (!chat) return zt_tokenize(S.tok, prompt, strlen(prompt), ZT_TOK_DEFAULT, ids, n, &last_err);
    char *text = NULL;
    int rc = zt_chat_render(S.model, NULL, S.msgs, S.n_msgs, true, &text, &last_err);
    if (rc) return rc;
    int flags = ZT_TOK_PARSE_SPECIAL | (zt_chat_text_has_bos(S.model, text) ? 0 : ZT_TOK_ADD_BOS);
    rc = zt_tokenize(S.tok, text, strlen(text), flags, ids, n, &last_err);
    free(text);
    return rc;
}

/* Tokenizes and prefills (reusing the KV cache of the common prefix with
 * what the sequence holds); max_tokens < 0: until a stop or the context. */
EXPORT("zt_wasm_begin") int wasm_begin(const char *prompt, int chat, int max_tokens) {
    memset(&last_err, 0, sizeof last_err);
    if (!S.eng || !S.tok) {
        snprintf(last_err.msg, sizeof last_err.msg, S.eng ? "the model has no tokenizer" : "no model");
        return ZT_EINVAL;
    }
    int32_t *ids = NULL;
    int n = 0, rc = prompt_tokens(prompt, chat != 0, &ids, &n);
    if (rc) return fail(rc);
    int n_ctx = zt_engine_n_ctx(S.eng);
    if (n <= 0 || n >= n_ctx) {
        free(ids);
        snprintf(last_err.msg, sizeof last_err.msg,
                 n <= 0 ? "the prompt is empty" : "the prompt is %d tokens; the context holds %d",
                 n, n_ctx);
        return n <= 0 ? ZT_EINVAL : ZT_EFULL;
    }
    int keep = 0;
    while (keep < S.n_cached && keep < n - 1 && S.cached[keep] == ids[keep]) keep++;
    zt_seq_truncate(S.eng, S.seq, keep);
    S.n_cached = keep;
    zt_sampler_reset(S.smp);
    for (int i = 0; i < n; i++) zt_sampler_accept(S.smp, ids[i]);
    S.greedy = zt_sampler_is_greedy(S.smp);
    zt_row *rows = malloc(sizeof *rows * (size_t)(n - keep));
    if (!rows) {
        free(ids);
        return fail(ZT_ENOMEM);
    }
    for (int i = keep; i < n; i++) rows[i - keep] = (zt_row){S.seq, i, ids[i], i == n - 1};
    rc = zt_engine_forward(S.eng, rows, n - keep, S.greedy ? NULL : S.logits, &S.next, &last_err);
    free(rows);
    if (rc == ZT_OK) {
        memcpy(S.cached + keep, ids + keep, sizeof(int32_t) * (size_t)(n - keep));
        S.n_cached = n;
    }
    free(ids);
    if (rc) return fail(rc);
    zt_detok_free(S.detok);
    S.detok = NULL;
    if ((rc = zt_detok_create(S.tok, &S.detok, &last_err))) return fail(rc);
    S.active = true;
    S.n_prompt = n;
    S.n_reused = keep;
    S.n_gen = 0;
    S.max_tokens = max_tokens;
    S.stop = "length";
    return ZT_OK;
}

/* Emits the chosen token's text and runs the forward that chooses the
 * next. 1: zt_wasm_piece() holds text (possibly empty: part of a UTF-8
 * character); 0: finished (zt_wasm_piece() holds what the detokenizer
 * still had); < 0: error. */
EXPORT("zt_wasm_step") int wasm_step(void) {
    piece[0] = 0;
    if (!S.active) return 0;
    int32_t id = S.greedy ? S.next : zt_sampler_sample(S.smp, S.logits);
    bool stop = zt_tokenizer_is_stop(S.tok, id);
    if (stop) S.stop = "stop token";
    if (!stop) {
        zt_sampler_accept(S.smp, id);
        S.n_gen++;
        zt_detok_push(S.detok, id, piece, sizeof piece);
        if (S.max_tokens >= 0 && S.n_gen >= S.max_tokens) stop = true;
        else if (S.n_cached >= zt_engine_n_ctx(S.eng)) stop = true, S.stop = "context";
    }
    if (stop) {
        size_t len = strlen(piece);
        zt_detok_flush(S.detok, piece + len, sizeof piece - len);
        S.active = false;
        return 0;
    }
    zt_row row = {S.seq, S.n_cached, id, true};
    int rc = zt_engine_forward(S.eng, &row, 1, S.greedy ? NULL : S.logits, &S.next, &last_err);
    if (rc) {
        S.active = false;
        return fail(rc);
    }
    S.cached[S.n_cached++] = id;
    return 1;
}

/* Ends the generation in progress (the Stop button). */
EXPORT("zt_wasm_stop") void wasm_stop(void) {
    if (S.active) S.stop = "interrupted";
    S.active = false;
}

EXPORT("zt_wasm_piece") const char *wasm_piece(void) { return piece; }

EXPORT("zt_wasm_stats") const char *wasm_stats(void) {
    snprintf(text_out, sizeof text_out,
             "{\"n_prompt\":%d,\"n_reused\":%d,\"n_gen\":%d,\"dispatches\":%d,\"stop\":\"%s\"}",
             S.n_prompt, S.n_reused, S.n_gen, S.eng ? zt_engine_dispatches(S.eng) : -1,
             S.stop ? S.stop : "");
    return text_out;
}

/* Logits of every position of `tokens` run as a fresh sequence (the golden
 * tests): out receives [n][vocab] floats. The sequence is closed after. */
EXPORT("zt_wasm_logits") int wasm_logits(const int32_t *tokens, int n, float *out) {
    memset(&last_err, 0, sizeof last_err);
    if (!S.eng || n <= 0) return fail(ZT_EINVAL);
    zt_row *rows = malloc(sizeof *rows * (size_t)n);
    if (!rows) return fail(ZT_ENOMEM);
    /* the engine has one sequence slot: the chat's gives way, then comes back empty */
    zt_seq_close(S.eng, S.seq);
    S.n_cached = 0;
    int seq, rc = zt_seq_open(S.eng, &seq, &last_err);
    if (rc == ZT_OK) {
        for (int i = 0; i < n; i++) rows[i] = (zt_row){seq, i, tokens[i], true};
        rc = zt_engine_forward(S.eng, rows, n, out, NULL, &last_err);
        zt_seq_close(S.eng, seq);
    }
    free(rows);
    int rc_open = zt_seq_open(S.eng, &S.seq, rc == ZT_OK ? &last_err : NULL);
    return fail(rc != ZT_OK ? rc : rc_open);
}

/* Token ids of `text` (ZT_TOK_* flags) into a malloc'd array the host
 * frees with zt_wasm_free; returns the count or a negative error. */
EXPORT("zt_wasm_tokenize") int wasm_tokenize(const char *text, int flags, int32_t **ids) {
    int n = 0;
    memset(&last_err, 0, sizeof last_err);
    if (!S.tok) {
        snprintf(last_err.msg, sizeof last_err.msg, "no model with a tokenizer");
        return ZT_EINVAL;
    }
    int rc = zt_tokenize(S.tok, text, strlen(text), flags, ids, &n, &last_err);
    return rc ? fail(rc) : n;
}

/* The WebGPU kernel tests (selftest.c): a JSON array of checks, or "" with
 * zt_wasm_error() set. */
EXPORT("zt_wasm_selftest")
const char *wasm_selftest(int shader_f16, int subgroups, int split, uint32_t seed) {
    static char *result;
    free(result);
    memset(&last_err, 0, sizeof last_err);
    int n_failed = 0;
    result = zt_webgpu_selftest(shader_f16 != 0, subgroups != 0, split, seed, &n_failed, &last_err);
    return result ? result : "";
}

/* Every WGSL pipeline text for the given choices (zt_webgpu_shaders). */
EXPORT("zt_wasm_shaders")
const char *wasm_shaders(int shader_f16, int subgroups, int split, int kv_f16) {
    static char *result;
    free(result);
    result = zt_webgpu_shaders(shader_f16 != 0, subgroups != 0, split, kv_f16 != 0);
    return result ? result : "";
}
