/*
 * Continuous batching over the engine (contract in scheduler.h).
 *
 * Threads: the consumer (the server's event loop) calls sched_submit,
 * sched_cancel, sched_take_events and sched_get_stats; the engine thread
 * runs sched_main. They share only what `mu` guards: the wait queue, the
 * cancel list, the event outbox and the stats. Slots, the engine, samplers
 * and detokenizers belong to the engine thread alone, and zt_engine_forward
 * runs with the lock released.
 *
 * One step:
 *   1. under the lock: take cancellations, move queued requests into free
 *      slots (zt_seq_open), or sleep when there is nothing to do;
 *   2. build rows: one decode row (seq, pos, last token) per generating
 *      slot, then prompt rows of prefilling slots, oldest first, at most
 *      prefill_chunk of them; a row wants logits when it is a generating
 *      slot's or the last row of a prompt;
 *   3. one zt_engine_forward over all rows;
 *   4. per output row: sample (the backend's argmax when the request is
 *      greedy, else the sampler over the logits), stop on a stop token,
 *      detokenize, cut at stop strings, check max_tokens and the context;
 *   5. under the lock: queue one event per slot that has news, update the
 *      stats; then call notify.
 */
#include "engine/scheduler.h"

#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

#define SCHED_RATE_WINDOW 10 /* seconds that gen_tok_per_s averages over */

typedef struct sched_slot {
    bool busy;
    int seq;                /* engine sequence slot */
    sched_request req;      /* prompt, limits, sampling, stop strings */
    zt_sampler *smp;
    zt_detok *detok;
    bool greedy;            /* the backend's argmax stands in for sampling */
    int n_fed;              /* positions the sequence holds (prompt, then generated) */
    int32_t last;           /* sampled, not yet fed (valid when n_gen > 0) */
    int n_gen;              /* tokens generated (stop tokens not counted) */
    char *held;             /* [SCHED_MAX_STOP_LEN] text that may start a stop string */
    size_t n_held;
    char *news;             /* text for this step's event */
    size_t n_news, cap_news;
    bool ended;             /* finished this step: finish reason set */
    const char *finish;
    uint64_t order;         /* admission order: older prompts prefill first */
    double t_submit, t_admit, t_first;
} sched_slot;

typedef struct sched_wait {
    sched_request req;
    double t_submit;
} sched_wait;

struct zt_sched {
    zt_engine *eng;
    const zt_tokenizer *tok;
    sched_opts o;
    int n_ctx, n_vocab;
    pthread_t thread;
    bool thread_started;

    /* ---- shared, under mu ---- */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool quit;
    sched_wait *queue;      /* [q_cap] ring: n_slots + max_queue */
    int q_cap;
    int q_head, q_len;
    uint64_t *cancels;      /* tags to drop */
    int n_cancels, cap_cancels;
    sched_event *out;       /* outbox */
    int n_out, cap_out;
    sched_stats st;
    uint64_t rate_buckets[SCHED_RATE_WINDOW + 1]; /* tokens per second, ring */
    long rate_sec;          /* the second that rate_buckets[rate_sec % n] counts */

    /* ---- engine thread only ---- */
    sched_slot *slots;      /* [n_slots] */
    uint64_t next_order;
    zt_row *rows;           /* [n_slots + prefill_chunk] */
    int *row_slot;          /* [n_slots] slot of each output row */
    int32_t *argmax;        /* [n_slots] */
    int *fed_before;        /* [n_slots] n_fed of each slot before sched_build */
    bool *in_batch;         /* [n_slots] the slot has rows in this forward */
    float *logits;          /* [n_slots][n_vocab] */
};

static double sched_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void request_release(sched_request *r) {
    free(r->prompt);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    memset(r, 0, sizeof *r);
}

/* ---- text of a slot ------------------------------------------------------ */

static void news_add(sched_slot *sl, const char *s, size_t n) {
    if (!n) return;
    if (sl->n_news + n + 1 > sl->cap_news) {
        size_t cap = sl->cap_news ? sl->cap_news : 256;
        while (cap < sl->n_news + n + 1) cap *= 2;
        char *p = realloc(sl->news, cap);
        if (!p) return; /* the text is lost, the stream goes on */
        sl->news = p;
        sl->cap_news = cap;
    }
    memcpy(sl->news + sl->n_news, s, n);
    sl->n_news += n;
    sl->news[sl->n_news] = 0;
}

/* Bytes at the end of text[0..n) that are a proper prefix of a stop string:
 * they must wait for the next piece. */
static size_t stop_prefix_tail(const sched_request *r, const char *text, size_t n) {
    size_t best = 0;
    for (int i = 0; i < r->n_stop; i++) {
        size_t sl = strlen(r->stop[i]);
        for (size_t k = sl - 1 < n ? sl - 1 : n; k > best; k--)
            if (!memcmp(text + n - k, r->stop[i], k)) {
                best = k;
                break;
            }
    }
    return best;
}

/* Adds a piece of generated text: emits what can no longer be part of a
 * stop string, ends the slot when a stop string is complete. At the end
 * (final) the held text goes out too. */
static void slot_text(sched_slot *sl, const char *piece, size_t n, bool final) {
    const sched_request *r = &sl->req;
    if (r->n_stop == 0) {
        news_add(sl, piece, n);
        return;
    }
    /* held + piece, searched as one; held is short (< SCHED_MAX_STOP_LEN) */
    size_t total = sl->n_held + n;
    char *buf = malloc(total + 1);
    if (!buf) return;
    memcpy(buf, sl->held, sl->n_held);
    memcpy(buf + sl->n_held, piece, n);
    size_t cut = total;
    for (int i = 0; i < r->n_stop; i++) {
        size_t slen = strlen(r->stop[i]);
        for (size_t at = 0; at < cut && at + slen <= total; at++)
            if (!memcmp(buf + at, r->stop[i], slen)) {
                cut = at;
                break;
            }
    }
    if (cut < total) { /* a stop string: text before it, then the end */
        news_add(sl, buf, cut);
        sl->n_held = 0;
        sl->ended = true;
        sl->finish = "stop";
    } else {
        size_t keep = final ? 0 : stop_prefix_tail(r, buf, total);
        news_add(sl, buf, total - keep);
        memcpy(sl->held, buf + total - keep, keep);
        sl->n_held = keep;
    }
    free(buf);
}

/* Ends a slot normally: the detokenizer's and the hold-back's last bytes. */
static void slot_finish(sched_slot *sl, const char *finish) {
    if (!sl->ended) {
        char piece[64];
        int k = zt_detok_flush(sl->detok, piece, sizeof piece);
        slot_text(sl, piece, k > 0 ? (size_t)k : 0, true);
    }
    if (!sl->finish) sl->finish = finish;
    sl->ended = true;
}

static void slot_close(zt_sched *s, sched_slot *sl) {
    zt_seq_close(s->eng, sl->seq);
    zt_sampler_free(sl->smp);
    zt_detok_free(sl->detok);
    request_release(&sl->req);
    free(sl->news);
    char *held = sl->held;
    memset(sl, 0, sizeof *sl);
    sl->held = held;
}

/* ---- events (caller holds mu) ------------------------------------------ */

static sched_event *event_push(zt_sched *s, sched_event_kind kind, uint64_t tag) {
    if (s->n_out == s->cap_out) {
        int cap = s->cap_out ? 2 * s->cap_out : 64;
        sched_event *p = realloc(s->out, sizeof *p * (size_t)cap);
        if (!p) return NULL;
        s->out = p;
        s->cap_out = cap;
    }
    sched_event *e = &s->out[s->n_out++];
    memset(e, 0, sizeof *e);
    e->kind = kind;
    e->tag = tag;
    return e;
}

static void stats_count_tokens(zt_sched *s, uint64_t n, double now) {
    long sec = (long)now;
    const int nb = SCHED_RATE_WINDOW + 1;
    if (sec - s->rate_sec > nb) memset(s->rate_buckets, 0, sizeof s->rate_buckets);
    else
        for (long t = s->rate_sec + 1; t <= sec; t++) s->rate_buckets[t % nb] = 0;
    if (sec > s->rate_sec) s->rate_sec = sec;
    s->rate_buckets[sec % nb] += n;
}

/* Tokens per second over the last SCHED_RATE_WINDOW whole seconds. */
static double stats_rate(zt_sched *s, double now) {
    stats_count_tokens(s, 0, now); /* age the ring */
    const int nb = SCHED_RATE_WINDOW + 1;
    uint64_t sum = 0;
    for (int i = 1; i <= SCHED_RATE_WINDOW; i++) sum += s->rate_buckets[(s->rate_sec - i) % nb];
    return (double)sum / SCHED_RATE_WINDOW;
}

/* ---- the engine thread ------------------------------------------------- */

static int slot_admit(zt_sched *s, sched_slot *sl, sched_wait *w, double now, zt_error *err) {
    int rc = zt_seq_open(s->eng, &sl->seq, err);
    if (rc != ZT_OK) return rc;
    sl->busy = true;
    sl->req = w->req;
    sl->t_submit = w->t_submit;
    sl->t_admit = now;
    sl->order = s->next_order++;
    if ((rc = zt_sampler_create(&sl->req.sp, s->n_vocab, &sl->smp, err)) != ZT_OK ||
        (rc = zt_detok_create(s->tok, &sl->detok, err)) != ZT_OK)
        return rc;
    for (int i = 0; i < sl->req.n_prompt; i++) zt_sampler_accept(sl->smp, sl->req.prompt[i]);
    if (sl->req.prompt_continues) { /* render the last prompt token and drop its text */
        char sink[1024];
        zt_detok_push(sl->detok, sl->req.prompt[sl->req.n_prompt - 1], sink, sizeof sink);
        while (zt_detok_flush(sl->detok, sink, sizeof sink) > 0) {
        }
    }
    sl->greedy = zt_sampler_is_greedy(sl->smp);
    return ZT_OK;
}

/* Step 1: cancellations and admissions. Returns false when asked to quit.
 * Sleeps while there is nothing to do. */
static bool sched_intake(zt_sched *s, int *n_active) {
    pthread_mutex_lock(&s->mu);
    while (!s->quit && *n_active == 0 && s->q_len == 0 && s->n_cancels == 0)
        pthread_cond_wait(&s->cv, &s->mu);
    if (s->quit) {
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    for (int c = 0; c < s->n_cancels; c++)
        for (int i = 0; i < s->o.n_slots; i++) {
            sched_slot *sl = &s->slots[i];
            if (!sl->busy || sl->req.tag != s->cancels[c]) continue;
            slot_close(s, sl);
            (*n_active)--;
            s->st.requests_cancelled++;
        }
    s->n_cancels = 0;
    double now = sched_now();
    for (int i = 0; i < s->o.n_slots && s->q_len > 0; i++) {
        sched_slot *sl = &s->slots[i];
        if (sl->busy) continue;
        sched_wait *w = &s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->q_cap;
        s->q_len--;
        zt_error err = {0};
        if (slot_admit(s, sl, w, now, &err) != ZT_OK) {
            sched_event *e = event_push(s, SCHED_FAIL, w->req.tag);
            if (e) memcpy(e->msg, err.msg, sizeof e->msg);
            s->st.requests_failed++;
            if (sl->busy) slot_close(s, sl);
            else request_release(&w->req);
            continue;
        }
        (*n_active)++;
    }
    s->st.n_active = *n_active;
    s->st.n_queued = s->q_len;
    int used, total;
    zt_engine_kv_pages(s->eng, &used, &total);
    s->st.kv_used = used;
    s->st.kv_total = total;
    pthread_mutex_unlock(&s->mu);
    return true;
}

/* Step 2: the rows of one forward. Returns the row count; *n_out gets the
 * rows that want logits, and row_slot maps them to slots. */
static int sched_build(zt_sched *s, int *n_out) {
    int n = 0;
    *n_out = 0;
    for (int i = 0; i < s->o.n_slots; i++) {
        sched_slot *sl = &s->slots[i];
        if (!sl->busy || sl->n_gen == 0) continue;
        s->rows[n++] = (zt_row){sl->seq, sl->n_fed, sl->last, true};
        s->row_slot[(*n_out)++] = i;
    }
    int budget = s->o.prefill_chunk;
    while (budget > 0) { /* the oldest prefilling slot first */
        int pick = -1;
        for (int i = 0; i < s->o.n_slots; i++) {
            sched_slot *sl = &s->slots[i];
            if (!sl->busy || sl->n_gen > 0 || sl->n_fed >= sl->req.n_prompt) continue;
            if (pick < 0 || sl->order < s->slots[pick].order) pick = i;
        }
        if (pick < 0) break;
        sched_slot *sl = &s->slots[pick];
        int take = sl->req.n_prompt - sl->n_fed;
        if (take > budget) take = budget;
        for (int k = 0; k < take; k++) {
            int pos = sl->n_fed + k;
            bool last = pos == sl->req.n_prompt - 1;
            s->rows[n++] = (zt_row){sl->seq, pos, sl->req.prompt[pos], last};
            if (last) s->row_slot[(*n_out)++] = pick;
        }
        budget -= take;
        /* n_fed advances after the forward; mark the rows as taken now so
         * the loop moves on to the next slot */
        sl->n_fed += take;
    }
    return n;
}

/* Step 4 for one slot: the next token. */
static void slot_next(zt_sched *s, sched_slot *sl, int32_t id, double now) {
    if (sl->n_gen == 0 && sl->t_first == 0) sl->t_first = now;
    if (zt_tokenizer_is_stop(s->tok, id)) {
        slot_finish(sl, "stop");
        return;
    }
    zt_sampler_accept(sl->smp, id);
    sl->n_gen++;
    sl->last = id;
    char piece[1024];
    int k = zt_detok_push(sl->detok, id, piece, sizeof piece);
    slot_text(sl, piece, k > 0 ? (size_t)k : 0, false);
    if (sl->ended) return; /* a stop string */
    if (sl->n_gen >= sl->req.max_tokens) slot_finish(sl, "length");
    else if (sl->n_fed >= s->n_ctx) slot_finish(sl, "length"); /* no room to feed it */
}

/* Step 5: events and stats for the slots that have news; closes the ended
 * ones. A failed forward (err) fails every slot that had rows in it. */
static void sched_publish(zt_sched *s, int *n_active, uint64_t new_tokens, uint64_t prompt_rows,
                          int n_rows, double fwd_s, const zt_error *err, const bool *in_batch) {
    double now = sched_now();
    pthread_mutex_lock(&s->mu);
    s->st.steps++;
    s->st.forward_rows += (uint64_t)n_rows;
    s->st.forward_s += fwd_s;
    s->st.gen_tokens += new_tokens;
    s->st.prompt_tokens += prompt_rows;
    stats_count_tokens(s, new_tokens, now);
    for (int i = 0; i < s->o.n_slots; i++) {
        sched_slot *sl = &s->slots[i];
        if (!sl->busy) continue;
        if (err && in_batch[i]) {
            sched_event *e = event_push(s, SCHED_FAIL, sl->req.tag);
            if (e) memcpy(e->msg, err->msg, sizeof e->msg);
            s->st.requests_failed++;
            slot_close(s, sl);
            (*n_active)--;
            continue;
        }
        if (!sl->n_news && !sl->ended) continue;
        sched_event *e = event_push(s, sl->ended ? SCHED_DONE : SCHED_TEXT, sl->req.tag);
        if (e) {
            e->text = sl->news; /* the event takes the buffer */
            e->len = sl->n_news;
            e->n_prompt = sl->req.n_prompt;
            e->n_gen = sl->n_gen;
            sl->news = NULL;
            sl->n_news = sl->cap_news = 0;
            if (sl->ended) {
                e->finish = sl->finish;
                e->queue_s = sl->t_admit - sl->t_submit;
                e->ttft_s = sl->t_first - sl->t_submit;
                e->decode_s = now - sl->t_first;
            }
        }
        if (sl->ended) {
            s->st.requests_done++;
            s->st.ttft_sum_s += sl->t_first - sl->t_submit;
            s->st.ttft_count++;
            slot_close(s, sl);
            (*n_active)--;
        }
    }
    s->st.n_active = *n_active;
    int used, total;
    zt_engine_kv_pages(s->eng, &used, &total);
    s->st.kv_used = used;
    s->st.kv_total = total;
    bool any = s->n_out > 0;
    pthread_mutex_unlock(&s->mu);
    if (any && s->o.notify) s->o.notify(s->o.user);
}

static void sched_step(zt_sched *s, int *n_active) {
    int n_out;
    int *n_fed_before = s->fed_before;
    bool *in_batch = s->in_batch;
    for (int i = 0; i < s->o.n_slots; i++) n_fed_before[i] = s->slots[i].n_fed;
    int n = sched_build(s, &n_out);
    uint64_t prompt_rows = 0;
    bool want_logits = false;
    for (int i = 0; i < s->o.n_slots; i++) {
        sched_slot *sl = &s->slots[i];
        in_batch[i] = sl->busy && (sl->n_gen > 0 || sl->n_fed > n_fed_before[i]);
        if (sl->busy && sl->n_gen == 0) prompt_rows += (uint64_t)(sl->n_fed - n_fed_before[i]);
    }
    for (int o = 0; o < n_out; o++) want_logits |= !s->slots[s->row_slot[o]].greedy;
    if (n == 0) return;
    zt_error err = {0};
    double t0 = sched_now();
    int rc = zt_engine_forward(s->eng, s->rows, n, want_logits ? s->logits : NULL, s->argmax, &err);
    double t1 = sched_now();
    if (rc != ZT_OK) {
        sched_publish(s, n_active, 0, 0, n, t1 - t0, &err, in_batch);
        return;
    }
    uint64_t new_tokens = 0;
    for (int o = 0; o < n_out; o++) {
        sched_slot *sl = &s->slots[s->row_slot[o]];
        if (sl->n_gen > 0) sl->n_fed++; /* the decode row went in */
        int32_t id = sl->greedy ? s->argmax[o]
                                : zt_sampler_sample(sl->smp, s->logits + (size_t)o * s->n_vocab);
        int before = sl->n_gen;
        slot_next(s, sl, id, t1);
        new_tokens += (uint64_t)(sl->n_gen - before);
    }
    sched_publish(s, n_active, new_tokens, prompt_rows, n, t1 - t0, NULL, in_batch);
}

static void *sched_main(void *arg) {
    zt_sched *s = arg;
    int n_active = 0;
    while (sched_intake(s, &n_active))
        if (n_active > 0) sched_step(s, &n_active);
    return NULL;
}

/* ---- the consumer's side ----------------------------------------------- */

int sched_create(zt_engine *eng, const zt_tokenizer *tok, const sched_opts *opts, zt_sched **out,
                 zt_error *err) {
    *out = NULL;
    if (opts->n_slots < 1 || opts->n_slots > 4096 || opts->max_queue < 0 ||
        opts->prefill_chunk < 1)
        return zt_fail(err, ZT_EINVAL, "scheduler: %d slots, queue %d, prefill chunk %d: out of range",
                       opts->n_slots, opts->max_queue, opts->prefill_chunk);
    zt_sched *s = calloc(1, sizeof *s);
    if (!s) return zt_fail(err, ZT_ENOMEM, "out of memory");
    s->eng = eng;
    s->tok = tok;
    s->o = *opts;
    s->q_cap = opts->n_slots + opts->max_queue;
    s->n_ctx = zt_engine_n_ctx(eng);
    s->n_vocab = zt_engine_n_vocab(eng);
    int slots = opts->n_slots;
    s->queue = calloc((size_t)s->q_cap, sizeof *s->queue);
    s->slots = calloc((size_t)slots, sizeof *s->slots);
    s->rows = malloc(sizeof *s->rows * (size_t)(slots + opts->prefill_chunk));
    s->row_slot = malloc(sizeof *s->row_slot * (size_t)slots);
    s->argmax = malloc(sizeof *s->argmax * (size_t)slots);
    s->fed_before = malloc(sizeof *s->fed_before * (size_t)slots);
    s->in_batch = malloc(sizeof *s->in_batch * (size_t)slots);
    s->logits = malloc(sizeof *s->logits * (size_t)slots * (size_t)s->n_vocab);
    bool ok = s->queue && s->slots && s->rows && s->row_slot && s->argmax && s->logits &&
              s->fed_before && s->in_batch;
    for (int i = 0; ok && i < slots; i++) ok = (s->slots[i].held = malloc(SCHED_MAX_STOP_LEN)) != NULL;
    s->st.n_slots = slots;
    s->st.max_queue = opts->max_queue;
    s->rate_sec = (long)sched_now();
    zt_engine_kv_pages(eng, &s->st.kv_used, &s->st.kv_total);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (!ok) {
        sched_free(s);
        return zt_fail(err, ZT_ENOMEM, "out of memory for %d scheduler slots", slots);
    }
    if (pthread_create(&s->thread, NULL, sched_main, s) != 0) {
        sched_free(s);
        return zt_fail(err, ZT_ENOMEM, "cannot start the engine thread");
    }
    s->thread_started = true;
    *out = s;
    return ZT_OK;
}

void sched_free(zt_sched *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->mu);
        s->quit = true;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    for (int i = 0; s->slots && i < s->o.n_slots; i++) {
        if (s->slots[i].busy) slot_close(s, &s->slots[i]);
        free(s->slots[i].held);
    }
    for (int i = 0; i < s->q_len; i++) request_release(&s->queue[(s->q_head + i) % s->q_cap].req);
    sched_events_free(s->out, s->n_out);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->queue), free(s->slots), free(s->rows), free(s->row_slot), free(s->argmax);
    free(s->logits), free(s->cancels), free(s->fed_before), free(s->in_batch);
    free(s);
}

int sched_submit(zt_sched *s, sched_request *r, zt_error *err) {
    if (r->n_prompt < 1 || r->n_prompt >= s->n_ctx)
        return zt_fail(err, ZT_EINVAL, "the prompt is %d tokens; the context holds %d", r->n_prompt,
                       s->n_ctx);
    if (r->max_tokens < 1) return zt_fail(err, ZT_EINVAL, "max_tokens %d must be >= 1", r->max_tokens);
    if (r->n_stop < 0 || r->n_stop > SCHED_MAX_STOP)
        return zt_fail(err, ZT_EINVAL, "%d stop strings; at most %d", r->n_stop, SCHED_MAX_STOP);
    for (int i = 0; i < r->n_stop; i++) {
        size_t n = r->stop[i] ? strlen(r->stop[i]) : 0;
        if (n == 0 || n > SCHED_MAX_STOP_LEN - 1)
            return zt_fail(err, ZT_EINVAL, "stop string %d is %zu bytes; 1 to %d allowed", i, n,
                           SCHED_MAX_STOP_LEN - 1);
    }
    pthread_mutex_lock(&s->mu);
    /* a free slot takes the request at the next step; otherwise it waits,
     * while fewer than max_queue wait */
    int free_slots = s->o.n_slots - s->st.n_active;
    if (s->q_len >= (free_slots > 0 ? free_slots : 0) + s->o.max_queue) {
        s->st.requests_rejected++;
        pthread_mutex_unlock(&s->mu);
        return zt_fail(err, ZT_EFULL, "all %d slots are busy and %d requests are waiting",
                       s->o.n_slots, s->q_len);
    }
    sched_wait *w = &s->queue[(s->q_head + s->q_len) % s->q_cap];
    w->req = *r;
    w->t_submit = sched_now();
    s->q_len++;
    s->st.n_queued = s->q_len;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    memset(r, 0, sizeof *r);
    return ZT_OK;
}

void sched_cancel(zt_sched *s, uint64_t tag) {
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->q_len; i++) { /* still waiting: drop it here */
        int at = (s->q_head + i) % s->q_cap;
        if (s->queue[at].req.tag != tag) continue;
        request_release(&s->queue[at].req);
        for (int j = i; j + 1 < s->q_len; j++)
            s->queue[(s->q_head + j) % s->q_cap] = s->queue[(s->q_head + j + 1) % s->q_cap];
        s->q_len--;
        s->st.n_queued = s->q_len;
        s->st.requests_cancelled++;
        pthread_mutex_unlock(&s->mu);
        return;
    }
    if (s->n_cancels == s->cap_cancels) {
        int cap = s->cap_cancels ? 2 * s->cap_cancels : 16;
        uint64_t *p = realloc(s->cancels, sizeof *p * (size_t)cap);
        if (!p) {
            pthread_mutex_unlock(&s->mu);
            return; /* the request runs to its end; its events are ignored */
        }
        s->cancels = p;
        s->cap_cancels = cap;
    }
    s->cancels[s->n_cancels++] = tag;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int sched_take_events(zt_sched *s, sched_event **evs) {
    pthread_mutex_lock(&s->mu);
    *evs = s->out;
    int n = s->n_out;
    s->out = NULL;
    s->n_out = s->cap_out = 0;
    pthread_mutex_unlock(&s->mu);
    return n;
}

void sched_events_free(sched_event *evs, int n) {
    for (int i = 0; i < n; i++) free(evs[i].text);
    free(evs);
}

void sched_get_stats(zt_sched *s, sched_stats *st) {
    pthread_mutex_lock(&s->mu);
    s->st.gen_tok_per_s = stats_rate(s, sched_now());
    *st = s->st;
    pthread_mutex_unlock(&s->mu);
}
