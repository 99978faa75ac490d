/*
 * Byte-level BPE (tokenizer.ggml.model "gpt2": GPT-2, Llama 3, Qwen2,
 * SmolLM).
 *
 * A text section is cut into pre-tokens by the model's regexes (regex.c;
 * each regex splits every piece the previous one left, keeping both the
 * matches and the text between them, as HF's Split "Isolated" does). Each
 * pre-token's UTF-8 bytes are spelled with GPT-2's byte-to-character map
 * (so that every byte is a printable vocabulary character) and merged by
 * rank. With ignore_merges (Llama 3) a pre-token that is itself in the
 * vocabulary is taken whole, as HF does before merging.
 */
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

void bpe_byte_map(uint16_t map[256]) {
    /* printable Latin-1 stands for itself; the other bytes (controls,
     * space, ...) get code points from U+0100 up, in byte order */
    int n = 0;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        map[b] = (uint16_t)(printable ? b : 256 + n++);
    }
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return ZT_OK;
    size_t cap2 = *cap ? *cap : 64;
    while (cap2 < need) cap2 *= 2;
    void *q = realloc(*p, cap2 * elem);
    if (!q) return ZT_ENOMEM;
    *p = q;
    *cap = cap2;
    return ZT_OK;
}

/* One pre-token (bytes p[0, n)) -> tokens. */
static int encode_word(const zt_tokenizer *t, tok_work *w, const uint8_t *p, size_t n,
                       tok_ids *out) {
    if (n == 1) return tok_ids_push(out, t->byte_char_token[p[0]]);
    if (t->ignore_merges) {
        if (grow((void **)&w->buf, &w->cap_buf, n * 2, 1)) return ZT_ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) k += (size_t)uni_utf8_put(t->byte_char[p[i]], w->buf + k);
        int32_t id = tok_lookup(t, w->buf, k);
        if (id >= 0) return tok_ids_push(out, id);
    }
    if (n > INT32_MAX || tok_work_syms(w, (int)n)) return ZT_ENOMEM;
    tok_sym *s = w->syms;
    for (int i = 0; i < (int)n; i++)
        s[i] =
            (tok_sym){t->byte_char_token[p[i]], i - 1, i + 1 < (int)n ? i + 1 : -1, (uint32_t)i, 1};
    if (tok_merge_by_rank(t, w, (int)n)) return ZT_ENOMEM;
    for (int i = 0; i >= 0; i = s[i].next)
        if (tok_ids_push(out, s[i].id)) return ZT_ENOMEM;
    return ZT_OK;
}

/* Splits each piece between the boundaries b[0..nb) (code point indices)
 * by `re`; the new boundaries replace the old. */
static int split_pieces(tok_work *w, const tok_regex *re) {
    size_t nb = w->n_pieces, cap = nb * 2 + 16, m = 0;
    long *nbnd = malloc(cap * sizeof *nbnd);
    if (!nbnd) return ZT_ENOMEM;
    nbnd[m++] = w->pieces[0];
    for (size_t k = 0; k + 1 < nb; k++) {
        long a = w->pieces[k], b = w->pieces[k + 1], pos = 0, end;
        for (;;) {
            long start = tok_regex_search(re, w->cps + a, b - a, pos, &end);
            long cuts[2] = {start, end};
            int n_cuts = start < 0 ? 0 : 2;
            for (int c = 0; c < n_cuts; c++) {
                if (cuts[c] <= 0 || cuts[c] >= b - a || a + cuts[c] == nbnd[m - 1]) continue;
                if (m + 2 > cap) {
                    cap *= 2;
                    long *q = realloc(nbnd, cap * sizeof *q);
                    if (!q) {
                        free(nbnd);
                        return ZT_ENOMEM;
                    }
                    nbnd = q;
                }
                nbnd[m++] = a + cuts[c];
            }
            if (start < 0) break;
            pos = end;
        }
        if (m + 1 > cap) {
            long *q = realloc(nbnd, (cap *= 2) * sizeof *q);
            if (!q) {
                free(nbnd);
                return ZT_ENOMEM;
            }
            nbnd = q;
        }
        nbnd[m++] = b;
    }
    free(w->pieces);
    w->pieces = nbnd;
    w->n_pieces = m;
    w->cap_pieces = cap;
    return ZT_OK;
}

int bpe_encode(const zt_tokenizer *t, tok_work *w, const char *s, size_t len, tok_ids *out) {
    char *spaced = NULL;
    if (t->add_prefix_space && s[0] != ' ') {
        if (!(spaced = malloc(len + 1))) return ZT_ENOMEM;
        spaced[0] = ' ';
        memcpy(spaced + 1, s, len);
        s = spaced;
        len++;
    }
    int rc = ZT_ENOMEM;
    if (grow((void **)&w->cps, &w->cap_cps, len + 1, sizeof *w->cps) ||
        grow((void **)&w->cp_off, &w->cap_off, len + 1, sizeof *w->cp_off))
        goto done;
    long n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)s + i, len - i, &cp);
        if (k <= 0) k = 1, cp = UNI_REPLACEMENT; /* not reached: sanitized */
        w->cps[n] = cp;
        w->cp_off[n++] = (uint32_t)i;
        i += (size_t)k;
    }
    w->cp_off[n] = (uint32_t)len;
    if (grow((void **)&w->pieces, &w->cap_pieces, 2, sizeof *w->pieces)) goto done;
    w->pieces[0] = 0;
    w->pieces[1] = n;
    w->n_pieces = 2;
    for (int r = 0; r < t->n_pre; r++)
        if (split_pieces(w, t->pre[r])) goto done;
    for (size_t k = 0; k + 1 < w->n_pieces; k++) {
        uint32_t a = w->cp_off[w->pieces[k]], b = w->cp_off[w->pieces[k + 1]];
        if (b > a && encode_word(t, w, (const uint8_t *)s + a, b - a, out)) goto done;
    }
    rc = ZT_OK;
done:
    free(spaced);
    return rc;
}
