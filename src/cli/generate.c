#include "cli/generate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/error.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void gen_options(cli_args *a, gen_opts *opt) {
    memset(opt, 0, sizeof *opt);
    opt->eo.backend = args_str(a, "--backend", NULL);
    opt->eo.kv_type = args_str(a, "--kv", NULL);
    opt->eo.n_threads = (int)args_int(a, "--threads", "-t", 0, 0, 1024);
    opt->eo.n_ctx = (int)args_int(a, "--ctx", "-c", 0, 0, 1 << 24);
    opt->ignore_eos = args_flag(a, "--ignore-eos");
    opt->sp = zt_sampler_defaults();
    opt->sp.temperature = (float)args_float(a, "--temp", opt->sp.temperature, 0, 100);
    opt->sp.top_k = (int)args_int(a, "--top-k", NULL, opt->sp.top_k, 0, 1 << 24);
    opt->sp.top_p = (float)args_float(a, "--top-p", opt->sp.top_p, 0, 1);
    opt->sp.min_p = (float)args_float(a, "--min-p", opt->sp.min_p, 0, 1);
    opt->sp.repeat_penalty = (float)args_float(a, "--repeat-penalty", opt->sp.repeat_penalty, 0, 100);
    opt->sp.penalty_last_n =
        (int)args_int(a, "--repeat-last-n", NULL, opt->sp.penalty_last_n, 0, 1 << 24);
    opt->sp.frequency_penalty =
        (float)args_float(a, "--frequency-penalty", opt->sp.frequency_penalty, -2, 2);
    opt->sp.presence_penalty =
        (float)args_float(a, "--presence-penalty", opt->sp.presence_penalty, -2, 2);
    opt->sp.seed = (uint64_t)args_int(a, "--seed", NULL, (long)(opt->sp.seed & 0x7fffffff), 0,
                                     0x7fffffff);
}

int gen_open(gen_session *g, cli_args *a, const char *path, const gen_opts *opt) {
    memset(g, 0, sizeof *g);
    g->seq = -1;
    g->ignore_eos = opt->ignore_eos;
    zt_error err = {0};
    if (zt_model_load(path, &g->model, &err) != ZT_OK ||
        zt_tokenizer_create(g->model, &g->tok, &err) != ZT_OK ||
        zt_engine_create(g->model, &opt->eo, &g->eng, &err) != ZT_OK ||
        zt_sampler_create(&opt->sp, zt_engine_n_vocab(g->eng), &g->smp, &err) != ZT_OK ||
        zt_seq_open(g->eng, &g->seq, &err) != ZT_OK) {
        cli_error(a->cmd, "%s", err.msg);
        return 1;
    }
    g->cached = malloc(sizeof(int32_t) * zt_engine_n_ctx(g->eng));
    g->logits = malloc(sizeof(float) * zt_engine_n_vocab(g->eng));
    if (!g->cached || !g->logits) {
        cli_error(a->cmd, "out of memory");
        return 1;
    }
    return 0;
}

void gen_close(gen_session *g) {
    free(g->cached);
    free(g->logits);
    zt_sampler_free(g->smp);
    zt_engine_free(g->eng);
    zt_tokenizer_free(g->tok);
    zt_model_free(g->model);
    memset(g, 0, sizeof *g);
}

/* Appends text to a growing reply buffer (when one is wanted). */
static void reply_add(char **reply, size_t *len, const char *s, size_t n) {
    if (!reply || !n) return;
    char *r = realloc(*reply, *len + n + 1);
    if (!r) return;
    memcpy(r + *len, s, n);
    *len += n;
    r[*len] = 0;
    *reply = r;
}

int gen_complete(gen_session *g, const int32_t *ids, int n, bool continuation, int max_tokens,
                 FILE *out, volatile sig_atomic_t *interrupt, char **reply, gen_stats *st,
                 zt_error *err) {
    memset(st, 0, sizeof *st);
    st->n_prompt = n;
    int n_ctx = zt_engine_n_ctx(g->eng);
    if (n <= 0) return zt_fail(err, ZT_EINVAL, "the prompt is empty");
    if (n >= n_ctx)
        return zt_fail(err, ZT_EFULL,
                       "the prompt is %d tokens but the context holds %d (raise --ctx)", n, n_ctx);

    /* reuse the KV of the longest common prefix; always recompute the last
     * prompt token, whose logits we need */
    int keep = 0;
    while (keep < g->n_cached && keep < n - 1 && g->cached[keep] == ids[keep]) keep++;
    zt_seq_truncate(g->eng, g->seq, keep);
    g->n_cached = keep;
    st->n_reused = keep;

    zt_sampler_reset(g->smp);
    for (int i = 0; i < n; i++) zt_sampler_accept(g->smp, ids[i]);
    bool greedy = zt_sampler_is_greedy(g->smp);

    zt_row *rows = malloc(sizeof *rows * (size_t)(n - keep));
    if (!rows) return zt_fail(err, ZT_ENOMEM, "out of memory");
    for (int i = keep; i < n; i++) rows[i - keep] = (zt_row){g->seq, i, ids[i], i == n - 1};
    double t0 = now();
    int32_t next;
    int rc = zt_engine_forward(g->eng, rows, n - keep, greedy ? NULL : g->logits, &next, err);
    free(rows);
    if (rc != ZT_OK) return rc;
    st->prefill_s = now() - t0;
    memcpy(g->cached + keep, ids + keep, sizeof(int32_t) * (size_t)(n - keep));
    g->n_cached = n;

    zt_detok *d;
    if ((rc = zt_detok_create(g->tok, &d, err)) != ZT_OK) return rc;
    char piece[1024];
    if (continuation) { /* the text continues the prompt: keep its leading space */
        for (int i = 0; i < n; i++) zt_detok_push(d, ids[i], piece, sizeof piece);
        while (zt_detok_flush(d, piece, sizeof piece) > 0) continue;
    }
    size_t reply_len = 0;
    if (reply) *reply = NULL;
    t0 = now();
    st->stop = "length";
    for (;;) {
        int32_t id = greedy ? next : zt_sampler_sample(g->smp, g->logits);
        if (!g->ignore_eos && zt_tokenizer_is_stop(g->tok, id)) {
            st->stop = "stop token";
            break;
        }
        zt_sampler_accept(g->smp, id);
        st->n_gen++;
        int k = zt_detok_push(d, id, piece, sizeof piece);
        if (k > 0) {
            fwrite(piece, 1, (size_t)k, out);
            fflush(out);
            reply_add(reply, &reply_len, piece, (size_t)k);
        }
        if (interrupt && *interrupt) {
            st->stop = "interrupted";
            break;
        }
        if (max_tokens >= 0 && st->n_gen >= max_tokens) break;
        if (g->n_cached >= n_ctx) {
            st->stop = "context";
            break;
        }
        zt_row row = {g->seq, g->n_cached, id, true};
        if ((rc = zt_engine_forward(g->eng, &row, 1, greedy ? NULL : g->logits, &next, err))) break;
        g->cached[g->n_cached++] = id;
    }
    st->decode_s = now() - t0;
    int k = zt_detok_flush(d, piece, sizeof piece);
    if (k > 0) {
        fwrite(piece, 1, (size_t)k, out);
        reply_add(reply, &reply_len, piece, (size_t)k);
    }
    fflush(out);
    zt_detok_free(d);
    return rc;
}
