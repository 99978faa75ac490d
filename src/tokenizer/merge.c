/*
 * The BPE merge loops, on a binary heap of candidate pairs so that a word
 * of n symbols costs O(n log n) (a megabyte of SentencePiece text is one
 * word: no pre-tokenizer splits it).
 *
 * Both loops pop the best candidate, skip it if either symbol has changed
 * since it was queued (a lazy delete), merge the right symbol into the left
 * one, and queue the two new neighbour pairs. Ties go to the leftmost pair,
 * as in SentencePiece, llama.cpp and HF (whose JS port breaks ties by the
 * left symbol's original position).
 */
#include "tokenizer/tokenizer.h"

#include <stdlib.h>

void tok_work_free(tok_work *w) {
    free(w->syms);
    free(w->heap);
    free(w->cps);
    free(w->cp_off);
    free(w->buf);
    free(w->pieces);
}

int tok_work_syms(tok_work *w, int n) {
    if (n <= w->cap_syms) return ZT_OK;
    tok_sym *p = realloc(w->syms, (size_t)n * sizeof *p);
    if (!p) return ZT_ENOMEM;
    w->syms = p;
    w->cap_syms = n;
    return ZT_OK;
}

static bool cand_before(const tok_cand *a, const tok_cand *b) {
    return a->pri < b->pri || (a->pri == b->pri && a->left < b->left);
}

static int heap_push(tok_work *w, tok_cand c) {
    if (w->n_heap == w->cap_heap) {
        int cap = w->cap_heap ? w->cap_heap * 2 : 256;
        tok_cand *p = realloc(w->heap, (size_t)cap * sizeof *p);
        if (!p) return ZT_ENOMEM;
        w->heap = p;
        w->cap_heap = cap;
    }
    int i = w->n_heap++;
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (!cand_before(&c, &w->heap[parent])) break;
        w->heap[i] = w->heap[parent];
        i = parent;
    }
    w->heap[i] = c;
    return ZT_OK;
}

static tok_cand heap_pop(tok_work *w) {
    tok_cand top = w->heap[0], last = w->heap[--w->n_heap];
    int i = 0, n = w->n_heap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

/* Joins syms[r] into syms[l] (its right neighbour). */
static void join(tok_sym *s, int32_t l, int32_t r) {
    s[l].len += s[r].len;
    s[r].len = 0;
    s[l].next = s[r].next;
    if (s[r].next >= 0) s[s[r].next].prev = l;
}

static int queue_ranked(const zt_tokenizer *t, tok_work *w, int32_t l, int32_t r) {
    if (l < 0 || r < 0) return ZT_OK;
    const tok_sym *s = w->syms;
    int32_t result;
    int32_t rank = tok_merge_find(t, s[l].id, s[r].id, &result);
    if (rank < 0) return ZT_OK;
    return heap_push(w, (tok_cand){rank, l, r, s[l].id, s[r].id, 0});
}

int tok_merge_by_rank(const zt_tokenizer *t, tok_work *w, int n) {
    w->n_heap = 0;
    for (int i = 0; i + 1 < n; i++)
        if (queue_ranked(t, w, i, i + 1)) return ZT_ENOMEM;
    tok_sym *s = w->syms;
    while (w->n_heap) {
        tok_cand c = heap_pop(w);
        if (!s[c.left].len || s[c.left].next != c.right || s[c.left].id != c.lid ||
            s[c.right].id != c.rid)
            continue; /* stale: a neighbour merged since */
        int32_t result;
        tok_merge_find(t, c.lid, c.rid, &result);
        join(s, c.left, c.right);
        s[c.left].id = result;
        if (queue_ranked(t, w, s[c.left].prev, c.left) ||
            queue_ranked(t, w, c.left, s[c.left].next))
            return ZT_ENOMEM;
    }
    return ZT_OK;
}

/* SentencePiece merges only into normal and user-defined pieces (control,
 * byte and unknown pieces are never the result of a merge). */
static int queue_scored(const zt_tokenizer *t, tok_work *w, const char *text, int32_t l,
                        int32_t r) {
    if (l < 0 || r < 0) return ZT_OK;
    const tok_sym *s = w->syms;
    uint32_t size = s[l].len + s[r].len;
    int32_t id = tok_lookup(t, text + s[l].start, size);
    if (id < 0 || (t->type[id] != TOK_TYPE_NORMAL && t->type[id] != TOK_TYPE_USER_DEFINED))
        return ZT_OK;
    return heap_push(w, (tok_cand){-(double)t->scores[id], l, r, id, -1, size});
}

int tok_merge_by_score(const zt_tokenizer *t, tok_work *w, const char *text, int n) {
    w->n_heap = 0;
    for (int i = 0; i + 1 < n; i++)
        if (queue_scored(t, w, text, i, i + 1)) return ZT_ENOMEM;
    tok_sym *s = w->syms;
    while (w->n_heap) {
        tok_cand c = heap_pop(w);
        if (!s[c.left].len || !s[c.right].len || s[c.left].len + s[c.right].len != c.size)
            continue; /* stale: one side grew or was absorbed since */
        join(s, c.left, c.right);
        s[c.left].id = c.lid;
        if (queue_scored(t, w, text, s[c.left].prev, c.left) ||
            queue_scored(t, w, text, c.left, s[c.left].next))
            return ZT_ENOMEM;
    }
    return ZT_OK;
}
