/*
 * The engine: a backend plus the paged KV cache's bookkeeping.
 *
 * The KV pool is n_pages pages of ZT_KV_PAGE positions, shared by every
 * sequence. The engine owns the page table ([n_seq][max_pages_per_seq]
 * physical page ids, -1 where none) and a free list; the backend owns the
 * page memory. A forward call validates its rows, maps any new positions to
 * pages (all-or-nothing: a call that runs out of pages takes none and
 * reports ZT_EFULL), and hands the backend chunks of at most max_batch rows.
 */
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "model/model.h"
#include "util/error.h"

struct zt_engine {
    const zt_model *model;
    const zt_backend_ops *ops;
    zt_backend *be;
    zt_backend_opts o;
    int n_ctx;            /* max positions per sequence */

    int32_t *page_table;  /* [n_seq][max_pages_per_seq] */
    int *seq_len;         /* [n_seq] positions held; -1 when the slot is closed */
    int32_t *free_pages;  /* [n_pages] stack of free page ids */
    int n_free;

    /* per-call scratch, [max_batch] each */
    int32_t *tokens, *pos, *seq, *out_rows;
};

static const zt_backend_ops *find_backend(const char *name, zt_error *err) {
    const zt_backend_ops *all[] = {
#ifdef ZT_HAVE_CUDA
        &zt_cuda_backend,
#endif
#ifdef ZT_HAVE_VULKAN
        &zt_vulkan_backend,
#endif
#ifdef ZT_HAVE_WEBGPU
        &zt_webgpu_backend,
#endif
        &zt_cpu_backend,
    };
    int n = (int)(sizeof all / sizeof all[0]);
    bool automatic = !name || !strcmp(name, "auto");
    for (int i = 0; i < n; i++) {
        if (!automatic && strcmp(all[i]->name, name) != 0) continue;
        zt_error probe_err = {0};
        if (all[i]->probe(&probe_err) == ZT_OK) return all[i];
        if (!automatic) {
            zt_fail(err, ZT_EBACKEND, "backend %s is not usable here: %s", name, probe_err.msg);
            return NULL;
        }
    }
    if (automatic) return &zt_cpu_backend;
    char have[64] = "";
    for (int i = 0; i < n; i++) {
        strcat(have, " ");
        strcat(have, all[i]->name);
    }
    zt_fail(err, ZT_EINVAL, "unknown backend '%s' (this build has:%s)", name, have);
    return NULL;
}

void zt_engine_free(zt_engine *e) {
    if (!e) return;
    if (e->be) e->ops->destroy(e->be);
    free(e->page_table), free(e->seq_len), free(e->free_pages);
    free(e->tokens), free(e->pos), free(e->seq), free(e->out_rows);
    free(e);
}

int zt_engine_create(const zt_model *model, const zt_engine_opts *opts, zt_engine **out,
                     zt_error *err) {
    *out = NULL;
    zt_engine_opts dflt = {0};
    if (!opts) opts = &dflt;
    int kv_type = ZT_KV_F16;
    if (opts->kv_type && !strcmp(opts->kv_type, "q8")) kv_type = ZT_KV_Q8;
    else if (opts->kv_type && !strcmp(opts->kv_type, "f32")) kv_type = ZT_KV_F32;
    else if (opts->kv_type && strcmp(opts->kv_type, "f16") != 0)
        return zt_fail(err, ZT_EINVAL, "unknown KV cache type '%s' (f16, q8, f32)", opts->kv_type);
    int n_ctx = opts->n_ctx > 0 ? opts->n_ctx : model->cfg.ctx_train;
    int n_seq = opts->n_seq > 0 ? opts->n_seq : 1;
    if (n_ctx > (1 << 24) || n_seq > 4096 || opts->n_ctx < 0 || opts->n_seq < 0)
        return zt_fail(err, ZT_EINVAL, "context %d x %d sequences is out of range", n_ctx, n_seq);
    const zt_backend_ops *ops = find_backend(opts->backend, err);
    if (!ops) return err ? err->code : ZT_EINVAL;

    zt_engine *e = calloc(1, sizeof *e);
    if (!e) return zt_fail(err, ZT_ENOMEM, "out of memory");
    e->model = model;
    e->ops = ops;
    e->n_ctx = n_ctx;
    e->o.n_threads = opts->n_threads;
    e->o.n_seq = n_seq;
    e->o.max_pages_per_seq = (n_ctx + ZT_KV_PAGE - 1) / ZT_KV_PAGE;
    e->o.n_pages = n_seq * e->o.max_pages_per_seq;
    e->o.max_batch = opts->max_batch > 0 ? opts->max_batch : 512;
    e->o.kv_type = kv_type;
    size_t B = (size_t)e->o.max_batch;
    e->page_table = malloc(sizeof(int32_t) * n_seq * e->o.max_pages_per_seq);
    e->seq_len = malloc(sizeof(int) * n_seq);
    e->free_pages = malloc(sizeof(int32_t) * e->o.n_pages);
    e->tokens = malloc(sizeof(int32_t) * B);
    e->pos = malloc(sizeof(int32_t) * B);
    e->seq = malloc(sizeof(int32_t) * B);
    e->out_rows = malloc(sizeof(int32_t) * B);
    if (!e->page_table || !e->seq_len || !e->free_pages || !e->tokens || !e->pos || !e->seq ||
        !e->out_rows) {
        zt_engine_free(e);
        return zt_fail(err, ZT_ENOMEM, "out of memory for the page table");
    }
    memset(e->page_table, 0xff, sizeof(int32_t) * n_seq * e->o.max_pages_per_seq);
    for (int s = 0; s < n_seq; s++) e->seq_len[s] = -1;
    /* stack popped from the top: page 0 is handed out first */
    for (int p = 0; p < e->o.n_pages; p++) e->free_pages[p] = e->o.n_pages - 1 - p;
    e->n_free = e->o.n_pages;
    int rc = ops->create(model, &e->o, &e->be, err);
    if (rc != ZT_OK) {
        e->be = NULL;
        zt_engine_free(e);
        return rc;
    }
    *out = e;
    return ZT_OK;
}

const char *zt_engine_backend_name(const zt_engine *e) { return e->ops->name; }
int zt_engine_n_vocab(const zt_engine *e) { return e->model->cfg.n_vocab; }
int zt_engine_n_ctx(const zt_engine *e) { return e->n_ctx; }

int zt_engine_dispatches(const zt_engine *e) {
    return e->ops->dispatches ? e->ops->dispatches(e->be) : -1;
}

void zt_engine_kv_pages(const zt_engine *e, int *used, int *total) {
    if (used) *used = e->o.n_pages - e->n_free;
    if (total) *total = e->o.n_pages;
}

int zt_seq_open(zt_engine *e, int *seq, zt_error *err) {
    for (int s = 0; s < e->o.n_seq; s++) {
        if (e->seq_len[s] >= 0) continue;
        e->seq_len[s] = 0;
        *seq = s;
        return ZT_OK;
    }
    return zt_fail(err, ZT_EFULL, "all %d sequence slots are in use", e->o.n_seq);
}

void zt_seq_truncate(zt_engine *e, int seq, int n_pos) {
    if (seq < 0 || seq >= e->o.n_seq || e->seq_len[seq] < 0) return;
    if (n_pos < 0) n_pos = 0;
    if (n_pos >= e->seq_len[seq]) return;
    int32_t *pages = e->page_table + (size_t)seq * e->o.max_pages_per_seq;
    for (int p = (n_pos + ZT_KV_PAGE - 1) / ZT_KV_PAGE; p < e->o.max_pages_per_seq; p++) {
        if (pages[p] < 0) break;
        e->free_pages[e->n_free++] = pages[p];
        pages[p] = -1;
    }
    e->seq_len[seq] = n_pos;
}

void zt_seq_close(zt_engine *e, int seq) {
    if (seq < 0 || seq >= e->o.n_seq || e->seq_len[seq] < 0) return;
    zt_seq_truncate(e, seq, 0);
    e->seq_len[seq] = -1;
}

int zt_seq_len(const zt_engine *e, int seq) {
    return seq >= 0 && seq < e->o.n_seq ? e->seq_len[seq] : -1;
}

/* Checks rows against the sequences' state and gives every new position a
 * page. On failure nothing has changed. */
static int map_rows(zt_engine *e, const zt_row *rows, int n, zt_error *err) {
    int *next = calloc((size_t)e->o.n_seq, sizeof *next); /* expected pos + 1 (0 = unseen) */
    int32_t *taken = malloc(sizeof(int32_t) * (size_t)(n + 1));
    int n_taken = 0, rc = ZT_OK;
    if (!next || !taken) {
        rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        const zt_row *r = &rows[i];
        if (r->seq < 0 || r->seq >= e->o.n_seq || e->seq_len[r->seq] < 0) {
            rc = zt_fail(err, ZT_EINVAL, "row %d: sequence %d is not open", i, r->seq);
            goto done;
        }
        if (r->token < 0 || r->token >= e->model->cfg.n_vocab) {
            rc = zt_fail(err, ZT_EINVAL, "row %d: token id %d is outside the vocabulary (%d)", i,
                         r->token, e->model->cfg.n_vocab);
            goto done;
        }
        int expect = next[r->seq] ? next[r->seq] - 1 : e->seq_len[r->seq];
        if (r->pos != expect) {
            rc = zt_fail(err, ZT_EINVAL, "row %d: position %d of sequence %d, expected %d", i,
                         r->pos, r->seq, expect);
            goto done;
        }
        if (r->pos >= e->n_ctx) {
            rc = zt_fail(err, ZT_EFULL, "context full: sequence %d reached %d positions", r->seq,
                         e->n_ctx);
            goto done;
        }
        next[r->seq] = r->pos + 2;
        int32_t *slot = &e->page_table[(size_t)r->seq * e->o.max_pages_per_seq + r->pos / ZT_KV_PAGE];
        if (*slot >= 0) continue;
        if (e->n_free == 0) {
            rc = zt_fail(err, ZT_EFULL, "KV cache full: all %d pages are in use", e->o.n_pages);
            goto done;
        }
        *slot = e->free_pages[--e->n_free];
        taken[n_taken++] = (int32_t)(slot - e->page_table);
    }
done:
    if (rc != ZT_OK) /* give back what this call took */
        for (int i = n_taken - 1; i >= 0; i--) {
            e->free_pages[e->n_free++] = e->page_table[taken[i]];
            e->page_table[taken[i]] = -1;
        }
    free(next);
    free(taken);
    return rc;
}

int zt_engine_forward(zt_engine *e, const zt_row *rows, int n_rows, float *logits,
                      int32_t *argmax, zt_error *err) {
    if (n_rows <= 0) return zt_fail(err, ZT_EINVAL, "empty batch");
    int rc = map_rows(e, rows, n_rows, err);
    if (rc != ZT_OK) return rc;
    int vocab = e->model->cfg.n_vocab, done_out = 0;
    for (int start = 0; start < n_rows; start += e->o.max_batch) {
        int n = n_rows - start < e->o.max_batch ? n_rows - start : e->o.max_batch;
        zt_fwd f = {.n_rows = n, .tokens = e->tokens, .pos = e->pos, .seq = e->seq,
                    .page_table = e->page_table, .out_rows = e->out_rows};
        for (int i = 0; i < n; i++) {
            const zt_row *r = &rows[start + i];
            e->tokens[i] = r->token;
            e->pos[i] = r->pos;
            e->seq[i] = r->seq;
            if (r->want_logits) e->out_rows[f.n_out++] = i;
        }
        f.logits = logits ? logits + (size_t)done_out * vocab : NULL;
        f.argmax = argmax ? argmax + done_out : NULL;
        if ((rc = e->ops->forward(e->be, &f, err)) != ZT_OK) return rc;
        done_out += f.n_out;
        for (int i = 0; i < n; i++) e->seq_len[e->seq[i]] = e->pos[i] + 1;
    }
    return ZT_OK;
}
