/*
 * Continuous batching: many generation requests share one zt_engine.
 *
 * The scheduler owns a thread (the engine thread). Each step it runs ONE
 * zt_engine_forward over every active request: a decode row for each
 * request that is generating, plus up to prefill_chunk prompt rows of the
 * requests still prefilling (oldest first), so a long prompt never stalls
 * the streams already running. New requests wait in a bounded queue and take
 * a sequence slot between steps; a cancelled request's slot and KV pages are
 * freed at the next step boundary (zt_seq_close).
 *
 * The scheduler knows nothing about HTTP: requests come in as token ids with
 * sampling parameters and an opaque tag; results go out as events (text
 * pieces, completion, failure) that the consumer takes with
 * sched_take_events after the notify callback fires. Text is cut at whole
 * UTF-8 characters and never contains a stop string or what might become
 * one: a suffix that is a prefix of a stop string is held back until the
 * next token decides.
 */
#ifndef ZT_ENGINE_SCHEDULER_H
#define ZT_ENGINE_SCHEDULER_H

#include <stdint.h>

#include "zt.h"

#define SCHED_MAX_STOP     4   /* stop strings per request (OpenAI's limit) */
#define SCHED_MAX_STOP_LEN 256 /* bytes per stop string */

typedef struct zt_sched zt_sched;

typedef struct sched_opts {
    int n_slots;       /* sequence slots: the engine's n_seq */
    int max_queue;     /* requests that may wait for a slot */
    int prefill_chunk; /* prompt rows per step, over all prefilling requests */
    /* Called on the engine thread after events were queued; the consumer
     * then calls sched_take_events (from any thread). */
    void (*notify)(void *user);
    void *user;
} sched_opts;

typedef struct sched_request {
    uint64_t tag;          /* the consumer's id, echoed in every event */
    int32_t *prompt;       /* [n_prompt] malloc'd; the scheduler takes it */
    int n_prompt;          /* >= 1 and < the engine's n_ctx */
    int max_tokens;        /* >= 1: tokens to generate at most */
    /* The text continues the prompt's (a raw completion): the first token
     * keeps its leading space. false for a chat reply, which starts fresh
     * as `zt run --chat` and HF's decode of the reply print it. */
    bool prompt_continues;
    zt_sampler_params sp;
    char *stop[SCHED_MAX_STOP]; /* malloc'd, non-empty; the scheduler takes them */
    int n_stop;
} sched_request;

typedef enum sched_event_kind {
    SCHED_TEXT, /* more text */
    SCHED_DONE, /* finished: the last text (maybe empty), finish reason, counts */
    SCHED_FAIL  /* failed (backend error): msg */
} sched_event_kind;

typedef struct sched_event {
    sched_event_kind kind;
    uint64_t tag;
    char *text;         /* malloc'd or NULL; UTF-8, NUL-terminated */
    size_t len;         /* bytes of text */
    int n_prompt;       /* prompt tokens */
    int n_gen;          /* tokens generated so far (stop tokens not counted) */
    const char *finish; /* DONE: "stop" (stop token or string) or "length" */
    double queue_s;     /* DONE: submit -> slot */
    double ttft_s;      /* DONE: submit -> first token */
    double decode_s;    /* DONE: first token -> done */
    char msg[512];      /* FAIL: as zt_error */
} sched_event;

typedef struct sched_stats {
    int n_slots, n_active, n_queued, max_queue;
    int kv_used, kv_total;          /* KV pages */
    uint64_t requests_done;         /* finished with DONE */
    uint64_t requests_cancelled;
    uint64_t requests_failed;
    uint64_t requests_rejected;     /* queue full */
    uint64_t prompt_tokens, gen_tokens;
    uint64_t steps, forward_rows;
    double forward_s;               /* time inside zt_engine_forward */
    double gen_tok_per_s;           /* generated tokens per second, last 10 s */
    double ttft_sum_s;              /* time to first token, summed ... */
    uint64_t ttft_count;            /* ... over this many requests */
} sched_stats;

/* Starts the engine thread. The engine must have opts->n_slots sequences
 * and rows enough for n_slots + prefill_chunk per forward; it stays owned by
 * the caller and must outlive the scheduler. */
int sched_create(zt_engine *eng, const zt_tokenizer *tok, const sched_opts *opts, zt_sched **out,
                 zt_error *err);
/* Stops the thread (requests in flight are dropped without events). */
void sched_free(zt_sched *s);

/* Queues a request. On success the scheduler owns r->prompt and r->stop
 * (and clears them in r); ZT_EFULL when every slot is busy and the queue is
 * full, ZT_EINVAL for a malformed request: then r is untouched. */
int sched_submit(zt_sched *s, sched_request *r, zt_error *err);
/* Drops a request (queued or running) at the next step; no more events
 * carry its tag once this returns... except those already queued, which
 * the consumer must ignore. */
void sched_cancel(zt_sched *s, uint64_t tag);

/* Moves the queued events to *evs (malloc'd; free with sched_events_free). */
int sched_take_events(zt_sched *s, sched_event **evs);
void sched_events_free(sched_event *evs, int n);

void sched_get_stats(zt_sched *s, sched_stats *st);

#endif
