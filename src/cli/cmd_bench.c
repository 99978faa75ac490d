/*
 * zt bench MODEL [--backend B] [-p 512] [-n 128] [-r 5] [-d DEPTH]
 *                [-s SEQUENCES] [--threads N] [--json]
 *
 * Method (printed with the results):
 *   prefill  p random tokens as one sequence from position 0, one forward
 *            call (chunked by the engine at 512 rows); tok/s = p / time.
 *   decode   n tokens one at a time, each the argmax of the previous step
 *            (computed on the device), after DEPTH prefilled positions;
 *            with -s S, S sequences advance together in one forward per
 *            step and tok/s counts all of them.
 *   Each figure is the median of r repetitions after one warm-up run.
 *   GB/s = weight bytes read per token (every tensor but token_embd, plus
 *   one embedding row) x decode steps/s: the bandwidth the weights alone
 *   need, KV reads not counted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "model/model.h"
#include "quant/quant.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double weight_bytes_per_token(const zt_model *m) {
    double total = 0;
    for (int i = 0; i < m->n_tensors; i++) total += (double)m->tensors[i].nbytes;
    const zt_tensor *e = m->w.token_embd;
    total -= (double)e->nbytes;
    total += (double)quant_row_bytes(e->type, m->cfg.dim);
    if (m->cfg.tied_output) total += (double)e->nbytes;
    return total;
}

typedef struct bench {
    zt_engine *eng;
    int n_vocab;
    zt_row *rows;
    int32_t *next;
    unsigned seed;
} bench;

static int random_token(bench *b) {
    b->seed = b->seed * 1103515245u + 12345u;
    return (int)((b->seed >> 8) % (unsigned)b->n_vocab);
}

/* Prefills `n` random tokens into every sequence; returns seconds or < 0. */
static double run_prefill(bench *b, const int *seqs, int n_seqs, int n, zt_error *err) {
    double t0 = now();
    for (int s = 0; s < n_seqs; s++) {
        int base = zt_seq_len(b->eng, seqs[s]);
        for (int i = 0; i < n; i++)
            b->rows[i] = (zt_row){seqs[s], base + i, random_token(b), i == n - 1};
        if (zt_engine_forward(b->eng, b->rows, n, NULL, &b->next[s], err) != ZT_OK) return -1;
    }
    return now() - t0;
}

/* Decodes n steps of all sequences together; returns seconds or < 0. */
static double run_decode(bench *b, const int *seqs, int n_seqs, int n, zt_error *err) {
    double t0 = now();
    for (int step = 0; step < n; step++) {
        for (int s = 0; s < n_seqs; s++)
            b->rows[s] = (zt_row){seqs[s], zt_seq_len(b->eng, seqs[s]), b->next[s], true};
        if (zt_engine_forward(b->eng, b->rows, n_seqs, NULL, b->next, err) != ZT_OK) return -1;
    }
    return now() - t0;
}

int cmd_bench(int argc, char **argv) {
    const char *cmd = "zt bench";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    zt_engine_opts eo = {0};
    eo.backend = args_str(&a, "--backend", NULL);
    eo.kv_type = args_str(&a, "--kv", NULL);
    eo.n_threads = (int)args_int(&a, "--threads", "-t", 0, 0, 1024);
    int p = (int)args_int(&a, "-p", "--prompt", 512, 0, 1 << 20);
    int n = (int)args_int(&a, "-n", "--gen", 128, 0, 1 << 20);
    int reps = (int)args_int(&a, "-r", "--reps", 5, 1, 1000);
    int depth = (int)args_int(&a, "-d", "--depth", 0, 0, 1 << 20);
    int n_seqs = (int)args_int(&a, "-s", "--sequences", 1, 1, 4096);
    bool json = args_flag(&a, "--json");
    const char *path = args_pos(&a, 0);
    int rc = 1;
    zt_model *m = NULL;
    bench b = {0};
    int *seqs = NULL;
    double *pp = NULL, *tg = NULL;
    zt_error err = {0};
    if (!args_done(&a, 1)) goto done;
    if (!path) {
        cli_error(cmd, "usage: zt bench MODEL [--backend B] [-p 512] [-n 128] [-r 5] [-d D] [-s S]");
        goto done;
    }
    if (zt_model_load(path, &m, &err) != ZT_OK) goto fail;
    int per_seq = (p > depth ? p : depth) + n + 1;
    eo.n_ctx = per_seq;
    eo.n_seq = n_seqs;
    int chunk = p > depth ? p : depth; /* prefill rows per forward, at most 512 */
    chunk = chunk > 512 ? 512 : chunk;
    eo.max_batch = chunk > n_seqs ? chunk : n_seqs;
    if (zt_engine_create(m, &eo, &b.eng, &err) != ZT_OK) goto fail;
    b.n_vocab = zt_engine_n_vocab(b.eng);
    b.seed = 42;
    int max_rows = p > n_seqs ? p : n_seqs;
    max_rows = max_rows > depth ? max_rows : depth;
    b.rows = malloc(sizeof *b.rows * (size_t)(max_rows + 1));
    b.next = malloc(sizeof *b.next * (size_t)n_seqs);
    seqs = malloc(sizeof *seqs * (size_t)n_seqs);
    pp = calloc((size_t)reps, sizeof *pp);
    tg = calloc((size_t)reps, sizeof *tg);
    if (!b.rows || !b.next || !seqs || !pp || !tg) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    for (int s = 0; s < n_seqs; s++)
        if (zt_seq_open(b.eng, &seqs[s], &err) != ZT_OK) goto fail;

    for (int r = -1; r < reps; r++) { /* r = -1 is the warm-up */
        for (int s = 0; s < n_seqs; s++) zt_seq_truncate(b.eng, seqs[s], 0);
        if (p > 0) {
            double t = run_prefill(&b, seqs, 1, p, &err);
            if (t < 0) goto fail;
            if (r >= 0) pp[r] = p / t;
            zt_seq_truncate(b.eng, seqs[0], 0);
        }
        if (n > 0) {
            int start = depth > 0 ? depth : 1; /* decode needs a previous token */
            if (run_prefill(&b, seqs, n_seqs, start, &err) < 0) goto fail;
            double t = run_decode(&b, seqs, n_seqs, n, &err);
            if (t < 0) goto fail;
            if (r >= 0) tg[r] = (double)n * n_seqs / t;
        }
    }
    double pp_med = p > 0 ? median(pp, reps) : 0, tg_med = n > 0 ? median(tg, reps) : 0;
    double wbytes = weight_bytes_per_token(m);
    double steps_per_s = tg_med / n_seqs;
    double gbps = wbytes * steps_per_s / 1e9;
    int launches = zt_engine_dispatches(b.eng);
    const char *be = zt_engine_backend_name(b.eng);
    if (json) {
        printf("{\"model\":\"%s\",\"backend\":\"%s\",\"prompt\":%d,\"gen\":%d,\"depth\":%d,"
               "\"sequences\":%d,\"reps\":%d,\"prefill_tok_s\":%.2f,\"decode_tok_s\":%.2f,"
               "\"ms_per_token\":%.4f,\"weight_bytes_per_token\":%.0f,\"weight_gb_s\":%.2f,"
               "\"dispatches_per_token\":%d}\n",
               path, be, p, n, depth, n_seqs, reps, pp_med, tg_med,
               steps_per_s > 0 ? 1000.0 / steps_per_s : 0, wbytes, gbps, launches);
    } else {
        printf("model %s  backend %s\n", path, be);
        if (p > 0) printf("prefill  pp%-5d %10.2f tok/s   (median of %d)\n", p, pp_med, reps);
        if (n > 0) {
            printf("decode   tg%-5d %10.2f tok/s   %.3f ms/step   %d sequence%s, depth %d\n", n,
                   tg_med, steps_per_s > 0 ? 1000.0 / steps_per_s : 0, n_seqs,
                   n_seqs > 1 ? "s" : "", depth);
            printf("weights  %.1f MB/token -> %.1f GB/s\n", wbytes / 1e6, gbps);
        }
        if (launches >= 0)
            printf("dispatches per decode step: %d   (the seed: 228)\n", launches);
    }
    rc = 0;
    goto done;
fail:
    cli_error(cmd, "%s", err.msg);
done:
    free(b.rows), free(b.next), free(seqs), free(pp), free(tg);
    zt_engine_free(b.eng);
    zt_model_free(m);
    args_free(&a);
    return rc;
}
