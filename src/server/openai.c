/*
 * The OpenAI API's JSON (contract in openai.h): requests are read from the
 * DOM of util/json.h, responses written with its json_buf.
 */
#include "server/openai.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool oai_fail(oai_error *e, int status, const char *param, const char *fmt, ...) {
    e->status = status;
    e->type = status >= 500 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = NULL;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return false;
}

void oai_request_free(oai_request *r) {
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    for (int i = 0; i < r->n_msgs; i++) free((char *)r->msgs[i].content);
    free(r->msgs);
    free(r->prompt);
    free(r->prompt_ids);
    memset(r, 0, sizeof *r);
}

/* ---- field readers: absent or null leaves *out as it is ------------------ */

static bool absent(const json_value *v) { return !v || v->type == JSON_NULL; }

static bool get_bool(const json_value *o, const char *key, bool *out, oai_error *e) {
    const json_value *v = json_get(o, key);
    if (absent(v)) return true;
    if (!json_as_bool(v, out)) return oai_fail(e, 400, key, "'%s' must be a boolean", key);
    return true;
}

static bool get_number(const json_value *o, const char *key, double lo, double hi, float *out,
                       oai_error *e) {
    const json_value *v = json_get(o, key);
    if (absent(v)) return true;
    double d;
    if (!json_as_double(v, &d)) return oai_fail(e, 400, key, "'%s' must be a number", key);
    if (!(d >= lo && d <= hi))
        return oai_fail(e, 400, key, "'%s' is %g; it must be between %g and %g", key, d, lo, hi);
    *out = (float)d;
    return true;
}

static bool get_int(const json_value *o, const char *key, int64_t lo, int64_t hi, int64_t *out,
                    bool *given, oai_error *e) {
    const json_value *v = json_get(o, key);
    if (absent(v)) return true;
    int64_t i;
    if (!json_as_int(v, &i)) return oai_fail(e, 400, key, "'%s' must be an integer", key);
    if (i < lo || i > hi)
        return oai_fail(e, 400, key, "'%s' is %lld; it must be between %lld and %lld", key,
                        (long long)i, (long long)lo, (long long)hi);
    *out = i;
    if (given) *given = true;
    return true;
}

static char *dup_n(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = 0;
    }
    return p;
}

/* True when s holds a NUL byte before its end (from "\u0000"): refused, as
 * the rest of zt takes text as C strings. */
static bool has_nul(const json_value *s) { return strlen(s->u.str.s) != s->u.str.len; }

static bool parse_stop(const json_value *o, oai_request *r, oai_error *e) {
    const json_value *v = json_get(o, "stop");
    if (absent(v)) return true;
    size_t n = v->type == JSON_STRING ? 1 : json_len(v);
    if (v->type != JSON_STRING && v->type != JSON_ARRAY)
        return oai_fail(e, 400, "stop", "'stop' must be a string or an array of strings");
    if (n > SCHED_MAX_STOP)
        return oai_fail(e, 400, "stop", "'stop' has %zu strings; at most %d are allowed", n,
                        SCHED_MAX_STOP);
    for (size_t i = 0; i < n; i++) {
        const json_value *s = v->type == JSON_STRING ? v : json_at(v, i);
        if (!json_is(s, JSON_STRING))
            return oai_fail(e, 400, "stop", "'stop[%zu]' must be a string", i);
        if (s->u.str.len == 0) continue; /* an empty stop string never matches */
        if (s->u.str.len >= SCHED_MAX_STOP_LEN || has_nul(s))
            return oai_fail(e, 400, "stop", "'stop[%zu]' must be 1 to %d bytes without NULs", i,
                            SCHED_MAX_STOP_LEN - 1);
        if (!(r->stop[r->n_stop++] = dup_n(s->u.str.s, s->u.str.len)))
            return oai_fail(e, 500, NULL, "out of memory");
    }
    return true;
}

/* A message's content: a string, or an array of {"type": "text", "text"}
 * parts joined; null only for an assistant turn. */
static bool parse_content(const json_value *c, size_t i, bool may_be_null, char **out,
                          oai_error *e) {
    if (absent(c)) {
        if (!may_be_null)
            return oai_fail(e, 400, "messages", "'messages[%zu].content' is missing", i);
        return (*out = dup_n("", 0)) != NULL || oai_fail(e, 500, NULL, "out of memory");
    }
    if (c->type == JSON_STRING) {
        if (has_nul(c)) return oai_fail(e, 400, "messages", "'messages[%zu].content' holds a NUL", i);
        return (*out = dup_n(c->u.str.s, c->u.str.len)) != NULL ||
               oai_fail(e, 500, NULL, "out of memory");
    }
    if (c->type != JSON_ARRAY)
        return oai_fail(e, 400, "messages",
                        "'messages[%zu].content' must be a string or an array of text parts", i);
    json_buf b = {0};
    json_buf_append(&b, "", 0);
    for (size_t k = 0; k < json_len(c); k++) {
        const json_value *part = json_at(c, k);
        const char *type = json_as_str(json_get(part, "type"));
        const json_value *text = json_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is(text, JSON_STRING) || has_nul(text)) {
            json_buf_free(&b);
            return oai_fail(e, 400, "messages",
                            "'messages[%zu].content[%zu]' must be {\"type\": \"text\", \"text\": "
                            "string} (only text is supported)", i, k);
        }
        json_buf_append(&b, text->u.str.s, text->u.str.len);
    }
    if (b.oom) {
        json_buf_free(&b);
        return oai_fail(e, 500, NULL, "out of memory");
    }
    *out = b.data;
    return true;
}

static bool parse_messages(const json_value *o, oai_request *r, oai_error *e) {
    const json_value *v = json_get(o, "messages");
    if (absent(v)) return oai_fail(e, 400, "messages", "'messages' is required");
    if (v->type != JSON_ARRAY) return oai_fail(e, 400, "messages", "'messages' must be an array");
    size_t n = json_len(v);
    if (n == 0) return oai_fail(e, 400, "messages", "'messages' must not be empty");
    if (n > 100000) return oai_fail(e, 400, "messages", "'messages' has %zu entries", n);
    r->msgs = calloc(n, sizeof *r->msgs);
    if (!r->msgs) return oai_fail(e, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_value *m = json_at(v, i);
        if (!json_is(m, JSON_OBJECT))
            return oai_fail(e, 400, "messages", "'messages[%zu]' must be an object", i);
        const char *role = json_as_str(json_get(m, "role"));
        if (!role) return oai_fail(e, 400, "messages", "'messages[%zu].role' must be a string", i);
        if (!strcmp(role, "developer")) role = "system"; /* OpenAI's newer name for it */
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return oai_fail(e, 400, "messages",
                            "'messages[%zu].role' is '%.40s'; system, developer, user and "
                            "assistant are supported", i, role);
        char *content = NULL;
        if (!parse_content(json_get(m, "content"), i, !strcmp(role, "assistant"), &content, e))
            return false;
        r->msgs[r->n_msgs++] = (zt_chat_msg){!strcmp(role, "system") ? "system"
                                             : !strcmp(role, "user") ? "user" : "assistant",
                                             content};
    }
    return true;
}

/* "prompt": a string, [string], [ids] or [[ids]] (one prompt: n = 1). */
static bool parse_prompt(const json_value *o, oai_request *r, oai_error *e) {
    const json_value *v = json_get(o, "prompt");
    if (absent(v)) return oai_fail(e, 400, "prompt", "'prompt' is required");
    if (v->type == JSON_ARRAY && json_len(v) == 1 &&
        (json_is(json_at(v, 0), JSON_STRING) || json_is(json_at(v, 0), JSON_ARRAY)))
        v = json_at(v, 0);
    if (v->type == JSON_STRING) {
        if (has_nul(v)) return oai_fail(e, 400, "prompt", "'prompt' holds a NUL");
        if (!(r->prompt = dup_n(v->u.str.s, v->u.str.len))) return oai_fail(e, 500, NULL, "out of memory");
        return true;
    }
    if (v->type != JSON_ARRAY || json_len(v) == 0)
        return oai_fail(e, 400, "prompt",
                        "'prompt' must be a string, or an array of one string or of token ids");
    size_t n = json_len(v);
    if (n > (1 << 24)) return oai_fail(e, 400, "prompt", "'prompt' has %zu tokens", n);
    r->prompt_ids = malloc(sizeof *r->prompt_ids * n);
    if (!r->prompt_ids) return oai_fail(e, 500, NULL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        int64_t id;
        if (!json_as_int(json_at(v, i), &id) || id < 0 || id > INT32_MAX)
            return oai_fail(e, 400, "prompt",
                            "'prompt[%zu]' must be a token id (one prompt per request)", i);
        r->prompt_ids[i] = (int32_t)id;
    }
    r->n_prompt_ids = (int)n;
    return true;
}

/* Fields that change the meaning of the answer and that zt does not do. */
static bool refuse_unsupported(const json_value *o, oai_error *e) {
    static const char *const falsy[] = {"logprobs", "echo"};
    for (size_t i = 0; i < sizeof falsy / sizeof falsy[0]; i++) {
        const json_value *v = json_get(o, falsy[i]);
        bool b = false;
        if (absent(v)) continue;
        if (!json_as_bool(v, &b)) return oai_fail(e, 400, falsy[i], "'%s' must be a boolean", falsy[i]);
        if (b) return oai_fail(e, 400, falsy[i], "'%s' is not supported", falsy[i]);
    }
    static const char *const absent_only[] = {"tools", "functions", "suffix", "top_logprobs"};
    for (size_t i = 0; i < sizeof absent_only / sizeof absent_only[0]; i++) {
        const json_value *v = json_get(o, absent_only[i]);
        if (!absent(v) && !(json_is(v, JSON_ARRAY) && json_len(v) == 0))
            return oai_fail(e, 400, absent_only[i], "'%s' is not supported", absent_only[i]);
    }
    int64_t n = 1, best_of = 1;
    if (!get_int(o, "n", 1, 128, &n, NULL, e)) return false;
    if (n != 1) return oai_fail(e, 400, "n", "'n' must be 1: one choice per request");
    if (!get_int(o, "best_of", 1, 128, &best_of, NULL, e)) return false;
    if (best_of != 1) return oai_fail(e, 400, "best_of", "'best_of' must be 1");
    return true;
}

bool oai_parse_request(oai_kind kind, const char *body, size_t len, oai_request *r, oai_error *e) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->max_tokens = -1;
    r->sp = zt_sampler_defaults();
    zt_error jerr = {0};
    json_value *doc = json_parse(body, len, &jerr);
    if (!doc) return oai_fail(e, 400, NULL, "the body is not valid JSON: %s", jerr.msg);
    bool ok = false;
    const json_value *o = doc;
    if (o->type != JSON_OBJECT) {
        oai_fail(e, 400, NULL, "the body must be a JSON object");
        goto done;
    }
    const json_value *model = json_get(o, "model");
    if (!absent(model) && model->type != JSON_STRING) {
        oai_fail(e, 400, "model", "'model' must be a string");
        goto done;
    }
    if (!refuse_unsupported(o, e)) goto done;
    if (!(kind == OAI_CHAT ? parse_messages(o, r, e) : parse_prompt(o, r, e))) goto done;
    if (!get_bool(o, "stream", &r->stream, e)) goto done;
    const json_value *so = json_get(o, "stream_options");
    if (!absent(so)) {
        if (so->type != JSON_OBJECT) {
            oai_fail(e, 400, "stream_options", "'stream_options' must be an object");
            goto done;
        }
        if (!get_bool(so, "include_usage", &r->include_usage, e)) goto done;
    }
    /* max_completion_tokens is the newer name; either may come */
    int64_t max_tokens = -1;
    bool has_max = false;
    const int64_t huge = INT32_MAX;
    if (!get_int(o, "max_tokens", INT64_MIN, INT64_MAX, &max_tokens, &has_max, e) ||
        !get_int(o, "max_completion_tokens", INT64_MIN, INT64_MAX, &max_tokens, &has_max, e))
        goto done;
    if (has_max && (max_tokens < 1 || max_tokens > huge)) {
        oai_fail(e, 400, "max_tokens", "'max_tokens' is %lld; it must be at least 1 and fit the "
                 "context", (long long)max_tokens);
        goto done;
    }
    r->max_tokens = has_max ? (int)max_tokens : -1;
    zt_sampler_params *sp = &r->sp;
    int64_t top_k = sp->top_k, seed = 0, last_n = sp->penalty_last_n;
    if (!get_number(o, "temperature", 0, 2, &sp->temperature, e) ||
        !get_number(o, "top_p", 0, 1, &sp->top_p, e) ||
        !get_number(o, "min_p", 0, 1, &sp->min_p, e) ||
        !get_number(o, "presence_penalty", -2, 2, &sp->presence_penalty, e) ||
        !get_number(o, "frequency_penalty", -2, 2, &sp->frequency_penalty, e) ||
        !get_number(o, "repetition_penalty", 0.01, 10, &sp->repeat_penalty, e) ||
        !get_number(o, "repeat_penalty", 0.01, 10, &sp->repeat_penalty, e) ||
        !get_int(o, "top_k", 0, 1 << 24, &top_k, NULL, e) ||
        !get_int(o, "repeat_last_n", 0, 1 << 24, &last_n, NULL, e) ||
        !get_int(o, "seed", INT64_MIN, INT64_MAX, &seed, &r->seeded, e))
        goto done;
    sp->top_k = (int)top_k;
    sp->penalty_last_n = (int)last_n;
    sp->seed = (uint64_t)seed;
    if (!parse_stop(o, r, e)) goto done;
    const json_value *user = json_get(o, "user");
    if (!absent(user) && user->type != JSON_STRING) {
        oai_fail(e, 400, "user", "'user' must be a string");
        goto done;
    }
    ok = true;
done:
    json_free(doc);
    if (!ok) oai_request_free(r);
    return ok;
}

/* ---- writing ---------------------------------------------------------------- */

void oai_error_json(json_buf *b, const oai_error *e) {
    json_buf_puts(b, "{\"error\":{\"message\":");
    json_buf_string(b, e->message, strlen(e->message));
    json_buf_puts(b, ",\"type\":");
    json_buf_string(b, e->type, strlen(e->type));
    json_buf_puts(b, ",\"param\":");
    if (e->param) json_buf_string(b, e->param, strlen(e->param));
    else json_buf_puts(b, "null");
    json_buf_puts(b, ",\"code\":");
    if (e->code) json_buf_string(b, e->code, strlen(e->code));
    else json_buf_puts(b, "null");
    json_buf_puts(b, "}}");
}

static void meta_json(json_buf *b, const oai_meta *m, bool chunk) {
    json_buf_puts(b, "{\"id\":");
    json_buf_string(b, m->id, strlen(m->id));
    json_buf_printf(b, ",\"object\":\"%s\",\"created\":%lld,\"model\":",
                    m->kind == OAI_CHAT ? (chunk ? "chat.completion.chunk" : "chat.completion")
                                        : "text_completion",
                    m->created);
    json_buf_string(b, m->model, strlen(m->model));
    json_buf_puts(b, ",\"system_fingerprint\":\"zt\"");
}

static void usage_json(json_buf *b, const oai_usage *u) {
    json_buf_printf(b, ",\"usage\":{\"prompt_tokens\":%d,\"completion_tokens\":%d,"
                       "\"total_tokens\":%d}", u->n_prompt, u->n_gen, u->n_prompt + u->n_gen);
    /* llama.cpp's "timings" extension: what the web page shows */
    double per_s = u->decode_s > 0 && u->n_gen > 1 ? (u->n_gen - 1) / u->decode_s : 0;
    json_buf_printf(b, ",\"timings\":{\"prompt_n\":%d,\"prompt_ms\":%.3f,\"predicted_n\":%d,"
                       "\"predicted_ms\":%.3f,\"predicted_per_second\":%.3f}",
                    u->n_prompt, u->ttft_s * 1e3, u->n_gen, u->decode_s * 1e3, per_s);
}

static void finish_json(json_buf *b, const char *finish) {
    json_buf_puts(b, ",\"finish_reason\":");
    if (finish) json_buf_string(b, finish, strlen(finish));
    else json_buf_puts(b, "null");
}

void oai_response_json(json_buf *b, const oai_meta *m, const char *text, size_t len,
                       const char *finish, const oai_usage *u) {
    meta_json(b, m, false);
    json_buf_puts(b, ",\"choices\":[{\"index\":0,");
    if (m->kind == OAI_CHAT) {
        json_buf_puts(b, "\"message\":{\"role\":\"assistant\",\"content\":");
        json_buf_string(b, text, len);
        json_buf_puts(b, "}");
    } else {
        json_buf_puts(b, "\"text\":");
        json_buf_string(b, text, len);
    }
    json_buf_puts(b, ",\"logprobs\":null");
    finish_json(b, finish);
    json_buf_puts(b, "}]");
    usage_json(b, u);
    json_buf_puts(b, "}");
}

void oai_chunk_json(json_buf *b, const oai_meta *m, const char *text, size_t len, bool role,
                    const char *finish, const oai_usage *usage) {
    meta_json(b, m, true);
    if (usage) {
        json_buf_puts(b, ",\"choices\":[]");
        usage_json(b, usage);
        json_buf_puts(b, "}");
        return;
    }
    json_buf_puts(b, ",\"choices\":[{\"index\":0,");
    if (m->kind == OAI_CHAT) {
        json_buf_puts(b, "\"delta\":{");
        if (role) json_buf_puts(b, "\"role\":\"assistant\"");
        if (len || (role && !finish)) {
            if (role) json_buf_puts(b, ",");
            json_buf_puts(b, "\"content\":");
            json_buf_string(b, text, len);
        }
        json_buf_puts(b, "}");
    } else {
        json_buf_puts(b, "\"text\":");
        json_buf_string(b, text, len);
    }
    json_buf_puts(b, ",\"logprobs\":null");
    finish_json(b, finish);
    json_buf_puts(b, "}]}");
}
