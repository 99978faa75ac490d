/*
 * The OpenAI API's JSON: request bodies of /v1/chat/completions and
 * /v1/completions in, response objects, stream chunks and errors out.
 *
 * Parsing checks every field it reads and names the field at fault
 * ("'temperature' must be a number between 0 and 2") with the param set, as
 * OpenAI's own 400s do. Unknown fields are ignored; fields that would change
 * the meaning of the answer but are not supported (n > 1, logprobs, tools,
 * echo, best_of, suffix) are refused. Sampling parameters that are absent
 * or null take zt's defaults (zt_sampler_defaults); top_k, min_p and
 * repetition_penalty are accepted as extensions (llama.cpp's names).
 */
#ifndef ZT_SERVER_OPENAI_H
#define ZT_SERVER_OPENAI_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/scheduler.h"
#include "util/json.h"
#include "zt.h"

typedef enum oai_kind { OAI_CHAT, OAI_COMPLETION } oai_kind;

typedef struct oai_error {
    int status;          /* HTTP status */
    const char *type;    /* "invalid_request_error", "server_error", ... */
    const char *param;   /* the field at fault, or NULL */
    const char *code;    /* OpenAI's code string, or NULL */
    char message[512];
} oai_error;

typedef struct oai_request {
    oai_kind kind;
    bool stream, include_usage;
    int max_tokens;              /* -1: not given (the rest of the context) */
    zt_sampler_params sp;
    bool seeded;                 /* sp.seed came from the request */
    char *stop[SCHED_MAX_STOP];  /* malloc'd */
    int n_stop;
    zt_chat_msg *msgs;           /* chat: [n_msgs], strings malloc'd */
    int n_msgs;
    char *prompt;                /* completion given as text, malloc'd */
    int32_t *prompt_ids;         /* ... or as token ids, malloc'd */
    int n_prompt_ids;
} oai_request;

/* Parses a request body. On failure fills e (status 400) and returns false;
 * the request is then empty. Free with oai_request_free either way. */
bool oai_parse_request(oai_kind kind, const char *body, size_t len, oai_request *r, oai_error *e);
void oai_request_free(oai_request *r);

/* Fills e; returns false so that callers can `return oai_fail(...)`. */
bool oai_fail(oai_error *e, int status, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* {"error": {"message", "type", "param", "code"}} */
void oai_error_json(json_buf *b, const oai_error *e);

/* What every response object of one request repeats. */
typedef struct oai_meta {
    oai_kind kind;
    char id[48];         /* "chatcmpl-..." or "cmpl-..." */
    long long created;   /* unix seconds */
    const char *model;
} oai_meta;

typedef struct oai_usage {
    int n_prompt, n_gen;
    double ttft_s, decode_s; /* for the "timings" extension */
} oai_usage;

/* The whole (non-streamed) response. */
void oai_response_json(json_buf *b, const oai_meta *m, const char *text, size_t len,
                       const char *finish, const oai_usage *u);
/* One stream chunk: text (may be empty), the assistant role on the first
 * chat chunk, finish_reason on the last (else NULL). With usage, the chunk
 * carries usage and timings too and has no choices (OpenAI's
 * include_usage chunk). */
void oai_chunk_json(json_buf *b, const oai_meta *m, const char *text, size_t len, bool role,
                    const char *finish, const oai_usage *usage);

#endif
