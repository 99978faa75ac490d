/*
 * `zt serve`: the OpenAI-compatible server, put together.
 *
 *   event-loop thread (http.c)           engine thread (engine/scheduler.c)
 *   -------------------------            ----------------------------------
 *   parse HTTP, route (routes.c)
 *   parse JSON (openai.c), render the
 *   chat template, tokenize     --- sched_submit --->  queue -> slot
 *                                                      one forward per step
 *   on_wake: take events        <--- notify (eventfd) -- text, done, fail
 *   -> SSE chunks (sse.c) or one
 *      JSON response
 *   client gone (on_close)      --- sched_cancel --->  slot closed, pages freed
 *
 * Everything in `server` but the scheduler is touched by the event-loop
 * thread only.
 */
#ifndef ZT_SERVER_SERVER_H
#define ZT_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/scheduler.h"
#include "server/http.h"
#include "server/openai.h"
#include "util/json.h"
#include "zt.h"

typedef struct server_opts {
    const char *model_path;
    const char *alias;          /* the model id the API shows (NULL: file name) */
    const char *chat_template;  /* NULL: the model's */
    zt_engine_opts engine;      /* backend, n_ctx, n_seq (= parallel), threads, kv */
    int max_queue;              /* requests waiting for a slot */
    int prefill_chunk;          /* prompt rows per step */
    const char *wasm_dir;       /* files served under /wasm/ (the in-browser zt page), or NULL */
    http_opts http;
} server_opts;

/* Counters of the HTTP side, for /metrics. */
typedef struct server_counters {
    uint64_t http_requests;          /* every request that was parsed */
    uint64_t by_status[6];           /* [status / 100] */
    uint64_t completions;            /* generation requests accepted */
    uint64_t completions_ok;         /* ... answered to the end */
    uint64_t client_gone;            /* ... whose client left first */
} server_counters;

typedef struct server {
    server_opts o;
    zt_model *model;
    zt_tokenizer *tok;
    zt_engine *eng;
    zt_sched *sched;
    http_server *http;
    char model_id[128];
    const char *template_style;
    long long started;               /* unix seconds */
    uint64_t next_id;                /* for response ids */
    server_counters n;
} server;

/* One generation in flight: the connection's user pointer. */
typedef struct server_job {
    uint64_t tag;                    /* the scheduler's tag: the connection id */
    oai_meta meta;
    bool stream, include_usage;
    bool sent_role;                  /* chat streams: the first chunk went out */
    int n_prompt;
    json_buf text;                   /* not streamed: the reply so far */
} server_job;

/* Loads the model, listens, and serves until SIGINT/SIGTERM (the caller
 * routes them to server_request_stop). Prints the address on stderr. */
int server_run(const server_opts *o, zt_error *err);
/* Async-signal-safe. */
void server_request_stop(void);

/* routes.c: the application's on_request. */
void routes_handle(server *srv, http_conn *c, const http_request *req);
/* Answers with an OpenAI error object. */
void routes_error(server *srv, http_conn *c, const oai_error *e);
/* Headers every response carries (CORS). */
extern const char routes_common_headers[];

/* metrics.c: GET /metrics in the Prometheus text format. */
void metrics_write(server *srv, json_buf *b);

/* page.c: the embedded chat page; NULL when path is not one of its files. */
typedef struct page_asset {
    const char *path, *content_type;
    const char *data;
    size_t len;
} page_asset;
const page_asset *page_find(const char *path);

#endif
