/*
 * The server's endpoints: which method and path does what.
 *
 *   GET  /                      the chat page (and its files, page.c)
 *   GET  /health                {"status": "ok", slots}
 *   GET  /metrics               Prometheus text (metrics.c)
 *   GET  /v1/models[/ID]        the one model, OpenAI's shape
 *   GET  /props                 model and server facts for the page
 *   POST /v1/chat/completions   chat, streamed (SSE) or not
 *   POST /v1/completions        raw completion, streamed or not
 *   OPTIONS *                   CORS preflight
 *
 * A completion request is parsed (openai.c), rendered with the chat
 * template and tokenized here on the event-loop thread, checked against
 * the context, and handed to the scheduler; its answer is written as the
 * scheduler's events come back (server.c).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "server/server.h"
#include "server/sse.h"
#include "util/error.h"

const char routes_common_headers[] =
    "Access-Control-Allow-Origin: *\r\n"
    "Access-Control-Allow-Headers: Authorization, Content-Type\r\n";

static void reply(server *srv, http_conn *c, int status, const char *type, const char *body,
                  size_t len, const char *extra) {
    srv->n.by_status[status / 100 < 6 ? status / 100 : 5]++;
    json_buf h = {0};
    json_buf_puts(&h, routes_common_headers);
    if (extra) json_buf_puts(&h, extra);
    http_respond(c, status, type, body, len, h.oom ? routes_common_headers : h.data);
    json_buf_free(&h);
}

static void reply_json(server *srv, http_conn *c, int status, json_buf *b, const char *extra) {
    if (b->oom) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":"
                                  "\"server_error\",\"param\":null,\"code\":null}}";
        reply(srv, c, 500, "application/json", oom, sizeof oom - 1, NULL);
        return;
    }
    reply(srv, c, status, "application/json", b->data, b->len, extra);
}

void routes_error(server *srv, http_conn *c, const oai_error *e) {
    json_buf b = {0};
    oai_error_json(&b, e);
    reply_json(srv, c, e->status, &b, e->status == 503 ? "Retry-After: 1\r\n" : NULL);
    json_buf_free(&b);
}

static void error_reply(server *srv, http_conn *c, int status, const char *param, const char *code,
                        const char *extra, const char *fmt, const char *arg) {
    oai_error e;
    oai_fail(&e, status, param, fmt, arg);
    e.code = code;
    json_buf b = {0};
    oai_error_json(&b, &e);
    reply_json(srv, c, status, &b, extra);
    json_buf_free(&b);
}

/* ---- GET endpoints -------------------------------------------------------- */

static void model_object(server *srv, json_buf *b) {
    json_buf_puts(b, "{\"id\":");
    json_buf_string(b, srv->model_id, strlen(srv->model_id));
    json_buf_printf(b, ",\"object\":\"model\",\"created\":%lld,\"owned_by\":\"zt\"", srv->started);
    json_buf_printf(b, ",\"meta\":{\"n_ctx\":%d,\"n_ctx_train\":%d,\"n_vocab\":%d,"
                       "\"architecture\":\"%s\"}}",
                    zt_engine_n_ctx(srv->eng), srv->model->cfg.ctx_train,
                    srv->model->cfg.n_vocab, srv->model->cfg.arch_name);
}

static void get_models(server *srv, http_conn *c, const char *id) {
    json_buf b = {0};
    if (id && strcmp(id, srv->model_id)) {
        error_reply(srv, c, 404, "model", "model_not_found", NULL,
                    "The model '%.200s' does not exist; this server has one model (see /v1/models)",
                    id);
        return;
    }
    if (id) {
        model_object(srv, &b);
    } else {
        json_buf_puts(&b, "{\"object\":\"list\",\"data\":[");
        model_object(srv, &b);
        json_buf_puts(&b, "]}");
    }
    reply_json(srv, c, 200, &b, NULL);
    json_buf_free(&b);
}

static void get_health(server *srv, http_conn *c) {
    sched_stats st;
    sched_get_stats(srv->sched, &st);
    json_buf b = {0};
    json_buf_printf(&b, "{\"status\":\"ok\",\"slots_idle\":%d,\"slots_processing\":%d,"
                        "\"requests_waiting\":%d}",
                    st.n_slots - st.n_active, st.n_active, st.n_queued);
    reply_json(srv, c, 200, &b, NULL);
    json_buf_free(&b);
}

static void get_props(server *srv, http_conn *c) {
    const zt_config *cfg = &srv->model->cfg;
    uint64_t n_params = 0;
    for (int i = 0; i < srv->model->n_tensors; i++) {
        const zt_tensor *t = &srv->model->tensors[i];
        uint64_t n = 1;
        for (int d = 0; d < t->n_dims; d++) n *= (uint64_t)t->ne[d];
        n_params += n;
    }
    const char *name = model_get_str(srv->model, "general.name");
    zt_sampler_params sp = zt_sampler_defaults();
    json_buf b = {0};
    json_buf_puts(&b, "{\"model\":");
    json_buf_string(&b, srv->model_id, strlen(srv->model_id));
    json_buf_puts(&b, ",\"model_name\":");
    json_buf_string(&b, name ? name : srv->model_id, strlen(name ? name : srv->model_id));
    json_buf_printf(&b, ",\"architecture\":\"%s\",\"n_params\":%llu,\"n_layers\":%d,\"dim\":%d,"
                        "\"n_vocab\":%d,\"n_ctx\":%d,\"n_ctx_train\":%d,\"parallel\":%d,"
                        "\"backend\":\"%s\",\"chat_template\":\"%s\"",
                    cfg->arch_name, (unsigned long long)n_params, cfg->n_layers, cfg->dim,
                    cfg->n_vocab, zt_engine_n_ctx(srv->eng), cfg->ctx_train, srv->o.engine.n_seq,
                    zt_engine_backend_name(srv->eng), srv->template_style);
    json_buf_printf(&b, ",\"default_generation_settings\":{\"temperature\":%g,\"top_k\":%d,"
                        "\"top_p\":%g,\"min_p\":%g,\"repetition_penalty\":%g,"
                        "\"presence_penalty\":%g,\"frequency_penalty\":%g}}",
                    (double)sp.temperature, sp.top_k, (double)sp.top_p, (double)sp.min_p,
                    (double)sp.repeat_penalty, (double)sp.presence_penalty,
                    (double)sp.frequency_penalty);
    reply_json(srv, c, 200, &b, NULL);
    json_buf_free(&b);
}

static void get_metrics(server *srv, http_conn *c) {
    json_buf b = {0};
    metrics_write(srv, &b);
    if (b.oom) reply_json(srv, c, 500, &b, NULL);
    else reply(srv, c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len, NULL);
    json_buf_free(&b);
}

static void get_page(server *srv, http_conn *c, const page_asset *a) {
    /* the page runs nothing from elsewhere, and is shown in no frame */
    static const char headers[] =
        "Content-Security-Policy: default-src 'self'; img-src 'self' data:; "
        "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'\r\n"
        "X-Content-Type-Options: nosniff\r\nCache-Control: no-cache\r\n";
    reply(srv, c, 200, a->content_type, a->data, a->len, headers);
}

/* /wasm/NAME: a file of the in-browser zt page (build-wasm/web, made by
 * `make wasm`). Names are a flat directory's: letters, digits, '.', '-',
 * '_', no leading dot, so nothing outside it can be named. */
static void get_wasm_file(server *srv, http_conn *c, const char *name) {
    static const struct {
        const char *ext, *type;
    } types[] = {{".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
                 {".css", "text/css; charset=utf-8"},   {".wasm", "application/wasm"},
                 {".gguf", "application/octet-stream"}};
    if (!*name) name = "index.html";
    bool ok = srv->o.wasm_dir && name[0] != '.' && strlen(name) < 128;
    for (const char *p = name; ok && *p; p++)
        ok = isalnum((unsigned char)*p) || *p == '.' || *p == '-' || *p == '_';
    const char *type = NULL;
    const char *dot = ok ? strrchr(name, '.') : NULL;
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (!strcmp(dot, types[i].ext)) type = types[i].type;
    char path[1024];
    FILE *f = NULL;
    if (type) {
        snprintf(path, sizeof path, "%s/%s", srv->o.wasm_dir, name);
        f = fopen(path, "rb");
    }
    if (!f) {
        error_reply(srv, c, 404, NULL, "not_found", NULL, "no such file: /wasm/%.100s", name);
        return;
    }
    char *body = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (body = malloc((size_t)len + 1)) && fread(body, 1, (size_t)len, f) == (size_t)len) {
        reply(srv, c, 200, type, body, (size_t)len, "Cache-Control: no-cache\r\n");
    } else {
        error_reply(srv, c, 500, NULL, "server_error", NULL, "cannot read /wasm/%.100s", name);
    }
    free(body);
    fclose(f);
}

/* ---- completions -------------------------------------------------------------- */

/* The prompt's token ids: the chat template over the messages, or the
 * completion's text or ids. */
static bool prompt_tokens(server *srv, oai_request *r, int32_t **ids, int *n, oai_error *e) {
    zt_error err = {0};
    if (r->kind == OAI_CHAT) {
        char *text = NULL;
        if (zt_chat_render(srv->model, srv->o.chat_template, r->msgs, r->n_msgs, true, &text,
                           &err) != ZT_OK)
            return oai_fail(e, 400, "messages", "cannot render the chat template: %s", err.msg);
        int flags = ZT_TOK_PARSE_SPECIAL | (zt_chat_text_has_bos(srv->model, text) ? 0 : ZT_TOK_ADD_BOS);
        int rc = zt_tokenize(srv->tok, text, strlen(text), flags, ids, n, &err);
        free(text);
        if (rc != ZT_OK) return oai_fail(e, 400, "messages", "cannot tokenize the messages: %s", err.msg);
        return true;
    }
    if (r->prompt) {
        if (zt_tokenize(srv->tok, r->prompt, strlen(r->prompt), ZT_TOK_DEFAULT, ids, n, &err) != ZT_OK)
            return oai_fail(e, 400, "prompt", "cannot tokenize the prompt: %s", err.msg);
        return true;
    }
    int vocab = zt_tokenizer_n_vocab(srv->tok);
    for (int i = 0; i < r->n_prompt_ids; i++)
        if (r->prompt_ids[i] >= vocab)
            return oai_fail(e, 400, "prompt", "'prompt[%d]' is token %d; the vocabulary has %d", i,
                            r->prompt_ids[i], vocab);
    *ids = r->prompt_ids;
    *n = r->n_prompt_ids;
    r->prompt_ids = NULL;
    r->n_prompt_ids = 0;
    return true;
}

static uint64_t fresh_seed(server *srv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ (++srv->next_id * 0x9E3779B97F4A7C15ull);
    x ^= x >> 31; /* splitmix64's finalizer */
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    return x;
}

static void post_completion(server *srv, http_conn *c, const http_request *req, oai_kind kind) {
    oai_request r;
    oai_error e = {0};
    int32_t *ids = NULL;
    int n = 0;
    if (!oai_parse_request(kind, req->body, req->body_len, &r, &e) ||
        !prompt_tokens(srv, &r, &ids, &n, &e))
        goto fail;
    int n_ctx = zt_engine_n_ctx(srv->eng);
    const char *param = kind == OAI_CHAT ? "messages" : "prompt";
    if (n == 0) {
        oai_fail(&e, 400, param, "the prompt is empty");
        goto fail;
    }
    if (n >= n_ctx) {
        oai_fail(&e, 400, param, "This model's maximum context length is %d tokens, but the "
                 "prompt is %d tokens (no room for a reply)", n_ctx, n);
        e.code = "context_length_exceeded";
        goto fail;
    }
    if (r.max_tokens > n_ctx - n) {
        oai_fail(&e, 400, "max_tokens", "This model's maximum context length is %d tokens. "
                 "However, you requested %lld tokens (%d in the prompt, %d for the completion)",
                 n_ctx, (long long)n + r.max_tokens, n, r.max_tokens);
        e.code = "context_length_exceeded";
        goto fail;
    }
    sched_request sr = {.tag = http_conn_id(c), .prompt = ids, .n_prompt = n,
                        .max_tokens = r.max_tokens > 0 ? r.max_tokens : n_ctx - n, .sp = r.sp,
                        .prompt_continues = kind == OAI_COMPLETION};
    if (!r.seeded) sr.sp.seed = fresh_seed(srv);
    for (int i = 0; i < r.n_stop; i++) sr.stop[sr.n_stop++] = r.stop[i];
    zt_error err = {0};
    int rc = sched_submit(srv->sched, &sr, &err);
    if (rc != ZT_OK) {
        oai_fail(&e, rc == ZT_EFULL ? 503 : 400, NULL, "%s", err.msg);
        if (rc == ZT_EFULL) {
            e.type = "server_error";
            e.code = "server_overloaded";
        }
        goto fail;
    }
    ids = NULL;
    r.n_stop = 0; /* the scheduler owns the stop strings now */
    server_job *job = calloc(1, sizeof *job);
    if (!job) {
        sched_cancel(srv->sched, http_conn_id(c));
        oai_fail(&e, 500, NULL, "out of memory");
        goto fail;
    }
    job->tag = http_conn_id(c);
    job->meta.kind = kind;
    job->meta.created = (long long)time(NULL);
    job->meta.model = srv->model_id;
    snprintf(job->meta.id, sizeof job->meta.id, "%s-%llx%06llx", kind == OAI_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)job->meta.created, (unsigned long long)++srv->next_id);
    job->stream = r.stream;
    job->include_usage = r.include_usage;
    job->n_prompt = n;
    http_conn_set_user(c, job);
    srv->n.completions++;
    if (job->stream) {
        srv->n.by_status[2]++;
        sse_begin(c, routes_common_headers);
        if (kind == OAI_CHAT) { /* the role goes out at once: the client sees the stream start */
            json_buf b = {0};
            oai_chunk_json(&b, &job->meta, "", 0, true, NULL, NULL);
            job->sent_role = true;
            if (!b.oom) sse_event(c, b.data, b.len);
            json_buf_free(&b);
        }
    }
    oai_request_free(&r);
    return;
fail:
    free(ids);
    oai_request_free(&r);
    routes_error(srv, c, &e);
}

/* ---- dispatch ------------------------------------------------------------------ */

typedef enum route_id {
    R_NONE, R_PAGE, R_WASM, R_HEALTH, R_METRICS, R_MODELS, R_MODEL, R_PROPS, R_CHAT, R_COMPLETIONS
} route_id;

static route_id route_of(const char *path, const page_asset **asset) {
    if ((*asset = page_find(path))) return R_PAGE;
    if (!strncmp(path, "/wasm/", 6)) return R_WASM;
    if (!strcmp(path, "/health")) return R_HEALTH;
    if (!strcmp(path, "/metrics")) return R_METRICS;
    if (!strcmp(path, "/v1/models")) return R_MODELS;
    if (!strncmp(path, "/v1/models/", 11) && path[11]) return R_MODEL;
    if (!strcmp(path, "/props")) return R_PROPS;
    if (!strcmp(path, "/v1/chat/completions")) return R_CHAT;
    if (!strcmp(path, "/v1/completions")) return R_COMPLETIONS;
    return R_NONE;
}

void routes_handle(server *srv, http_conn *c, const http_request *req) {
    srv->n.http_requests++;
    const page_asset *asset = NULL;
    route_id r = route_of(req->path, &asset);
    bool post = r == R_CHAT || r == R_COMPLETIONS;
    const char *m = req->method;
    if (!strcmp(m, "OPTIONS")) {
        reply(srv, c, 204, NULL, "", 0,
              post ? "Allow: POST, OPTIONS\r\nAccess-Control-Allow-Methods: POST, OPTIONS\r\n"
                   : "Allow: GET, HEAD, OPTIONS\r\nAccess-Control-Allow-Methods: GET, HEAD, OPTIONS\r\n");
        return;
    }
    if (r == R_NONE) {
        error_reply(srv, c, 404, NULL, "not_found", NULL, "no such endpoint: %.200s", req->path);
        return;
    }
    bool ok_method = post ? !strcmp(m, "POST") : !strcmp(m, "GET") || !strcmp(m, "HEAD");
    if (!ok_method) {
        error_reply(srv, c, 405, NULL, "method_not_allowed",
                    post ? "Allow: POST, OPTIONS\r\n" : "Allow: GET, HEAD, OPTIONS\r\n",
                    "%s is not allowed here", m);
        return;
    }
    switch (r) {
    case R_PAGE: get_page(srv, c, asset); break;
    case R_WASM: get_wasm_file(srv, c, req->path + 6); break;
    case R_HEALTH: get_health(srv, c); break;
    case R_METRICS: get_metrics(srv, c); break;
    case R_MODELS: get_models(srv, c, NULL); break;
    case R_MODEL: get_models(srv, c, req->path + 11); break;
    case R_PROPS: get_props(srv, c); break;
    case R_CHAT: post_completion(srv, c, req, OAI_CHAT); break;
    case R_COMPLETIONS: post_completion(srv, c, req, OAI_COMPLETION); break;
    case R_NONE: break;
    }
}
