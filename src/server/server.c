/*
 * The server's lifecycle and the glue between its two threads (picture in
 * server.h): load the model, start the scheduler's engine thread, listen,
 * then run the event loop; scheduler events come back through the HTTP
 * loop's wake-up and become SSE chunks or whole JSON responses here.
 */
#include "server/server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/model.h"
#include "server/sse.h"
#include "util/error.h"

static http_server *volatile server_signal_target;

void server_request_stop(void) {
    http_server *h = server_signal_target;
    if (h) http_server_stop(h);
}

/* Called on the engine thread: wake the event loop. */
static void on_sched_notify(void *user) {
    server *srv = user;
    http_server_wake(srv->http);
}

static void job_release(http_conn *c, server_job *job) {
    http_conn_set_user(c, NULL);
    json_buf_free(&job->text);
    free(job);
}

static void stream_chunk(http_conn *c, server_job *job, const char *text, size_t len,
                         const char *finish, const oai_usage *usage) {
    json_buf b = {0};
    bool role = job->meta.kind == OAI_CHAT && !job->sent_role && !usage;
    oai_chunk_json(&b, &job->meta, text, len, role, finish, usage);
    if (role) job->sent_role = true;
    if (!b.oom) sse_event(c, b.data, b.len);
    json_buf_free(&b);
}

/* One scheduler event for the request on connection c. */
static void job_event(server *srv, http_conn *c, server_job *job, const sched_event *ev) {
    oai_usage u = {ev->n_prompt, ev->n_gen, ev->ttft_s, ev->decode_s};
    if (ev->kind == SCHED_FAIL) {
        oai_error e;
        oai_fail(&e, 500, NULL, "generation failed: %s", ev->msg);
        if (job->stream) { /* the 200 is out: the error goes in the stream */
            json_buf b = {0};
            oai_error_json(&b, &e);
            if (!b.oom) sse_event(c, b.data, b.len);
            json_buf_free(&b);
            job_release(c, job);
            sse_done(c);
        } else {
            job_release(c, job);
            routes_error(srv, c, &e);
        }
        return;
    }
    if (job->stream) {
        if (ev->len) stream_chunk(c, job, ev->text, ev->len, NULL, NULL);
        if (ev->kind != SCHED_DONE) return;
        stream_chunk(c, job, "", 0, ev->finish, NULL);
        if (job->include_usage) stream_chunk(c, job, "", 0, NULL, &u);
        srv->n.completions_ok++;
        job_release(c, job);
        sse_done(c);
        return;
    }
    json_buf_append(&job->text, ev->text ? ev->text : "", ev->len);
    if (ev->kind != SCHED_DONE) return;
    json_buf b = {0};
    oai_response_json(&b, &job->meta, job->text.data ? job->text.data : "", job->text.len,
                      ev->finish, &u);
    srv->n.completions_ok++;
    srv->n.by_status[2]++;
    job_release(c, job);
    if (b.oom) {
        oai_error e;
        oai_fail(&e, 500, NULL, "out of memory for the response");
        routes_error(srv, c, &e);
    } else {
        http_respond(c, 200, "application/json", b.data, b.len, routes_common_headers);
    }
    json_buf_free(&b);
}

static void on_wake(void *user) {
    server *srv = user;
    sched_event *evs;
    int n = sched_take_events(srv->sched, &evs);
    for (int i = 0; i < n; i++) {
        http_conn *c = http_conn_find(srv->http, evs[i].tag);
        server_job *job = c ? http_conn_user(c) : NULL;
        if (job && job->tag == evs[i].tag) job_event(srv, c, job, &evs[i]);
    }
    sched_events_free(evs, n);
}

static void on_request(void *user, http_conn *c, const http_request *req) {
    routes_handle(user, c, req);
}

/* The client left (or timed out) while its request was generating. */
static void on_close(void *user, http_conn *c, void *conn_user) {
    server *srv = user;
    server_job *job = conn_user;
    if (srv->sched) sched_cancel(srv->sched, job->tag);
    srv->n.client_gone++;
    json_buf_free(&job->text);
    free(job);
}

/* The id the API shows: --alias, else the file name without ".gguf". */
static void set_model_id(server *srv) {
    const char *name = srv->o.alias;
    if (!name) {
        const char *path = srv->o.model_path;
        size_t n = strlen(path);
        while (n > 1 && path[n - 1] == '/') n--;
        const char *slash = path + n;
        while (slash > path && slash[-1] != '/') slash--;
        size_t len = (size_t)(path + n - slash);
        if (len > 5 && !strncmp(slash + len - 5, ".gguf", 5)) len -= 5;
        if (len >= sizeof srv->model_id) len = sizeof srv->model_id - 1;
        memcpy(srv->model_id, slash, len);
        srv->model_id[len] = 0;
        return;
    }
    snprintf(srv->model_id, sizeof srv->model_id, "%s", name);
}

/* A model's own context can be 128k tokens, and --parallel sequences of
 * that would not fit most machines: without --ctx each sequence gets the
 * model's context up to SERVER_DEFAULT_CTX. */
#define SERVER_DEFAULT_CTX 4096

static int engine_open(server *srv, zt_error *err) {
    zt_engine_opts eo = srv->o.engine;
    if (eo.n_ctx == 0)
        eo.n_ctx = srv->model->cfg.ctx_train > 0 && srv->model->cfg.ctx_train < SERVER_DEFAULT_CTX
                       ? srv->model->cfg.ctx_train
                       : SERVER_DEFAULT_CTX;
    return zt_engine_create(srv->model, &eo, &srv->eng, err);
}

int server_run(const server_opts *o, zt_error *err) {
    server *srv = calloc(1, sizeof *srv);
    if (!srv) return zt_fail(err, ZT_ENOMEM, "out of memory");
    srv->o = *o;
    srv->started = (long long)time(NULL);
    set_model_id(srv);
    bool recognized = true;
    int rc;
    if ((rc = zt_model_load(o->model_path, &srv->model, err)) != ZT_OK ||
        (rc = zt_tokenizer_create(srv->model, &srv->tok, err)) != ZT_OK ||
        (rc = zt_chat_template_resolve(srv->model, o->chat_template, &srv->template_style,
                                       &recognized, err)) != ZT_OK ||
        (rc = engine_open(srv, err)) != ZT_OK)
        goto done;
    if (!recognized)
        fprintf(stderr, "zt serve: the model's chat template is not recognized; using %s "
                        "(choose one with --chat-template)\n", srv->template_style);
    http_handlers h = {.on_request = on_request, .on_close = on_close, .on_wake = on_wake,
                       .user = srv};
    if ((rc = http_server_create(&o->http, &h, &srv->http, err)) != ZT_OK) goto done;
    sched_opts so = {.n_slots = o->engine.n_seq, .max_queue = o->max_queue,
                     .prefill_chunk = o->prefill_chunk, .notify = on_sched_notify, .user = srv};
    if ((rc = sched_create(srv->eng, srv->tok, &so, &srv->sched, err)) != ZT_OK) goto done;
    fprintf(stderr, "zt serve: %s (%s, %s backend), %d slots x %d context, listening on "
                    "http://%s%s%s:%d/\n",
            srv->model_id, srv->model->cfg.arch_name, zt_engine_backend_name(srv->eng),
            o->engine.n_seq, zt_engine_n_ctx(srv->eng), strchr(o->http.host, ':') ? "[" : "",
            o->http.host, strchr(o->http.host, ':') ? "]" : "", http_server_port(srv->http));
    server_signal_target = srv->http;
    rc = http_server_run(srv->http, err);
    server_signal_target = NULL;
    fprintf(stderr, "zt serve: stopped\n");
done:
    sched_free(srv->sched); /* the engine thread stops before the connections go */
    srv->sched = NULL;
    http_server_free(srv->http);
    zt_engine_free(srv->eng);
    zt_tokenizer_free(srv->tok);
    zt_model_free(srv->model);
    free(srv);
    return rc;
}
