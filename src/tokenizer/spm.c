/*
 * SentencePiece-style BPE (tokenizer.ggml.model "llama": Llama 2, Mistral,
 * Phi-3, TinyLlama).
 *
 * A text section is normalized the SentencePiece way — spaces become "▁"
 * (U+2581) and, per the model, a "▁" is prepended (add_dummy_prefix, or HF's
 * Prepend normalizer / Metaspace pre-tokenizer) — then the whole section is
 * one word: its characters are merged by score (GGUF files carry
 * SentencePiece's piece scores, and Google's SentencePiece merges by them)
 * or, when the vocabulary came with merges (tokenizer.json), by merge rank
 * as HF does. A character that is no token falls back to its UTF-8 bytes as
 * <0xHH> tokens, or to <unk> when the model has no byte tokens.
 */
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

static const char SPACE_MARK[] = "\xe2\x96\x81"; /* U+2581 "▁" */

/* Appends the token(s) of one merged symbol. */
static int emit_symbol(const zt_tokenizer *t, const char *text, const tok_sym *s, tok_ids *out,
                       int section_start) {
    int32_t id = s->id;
    if (id >= 0 && !t->n_merges && t->type[id] != TOK_TYPE_NORMAL &&
        t->type[id] != TOK_TYPE_USER_DEFINED)
        id = -1; /* SentencePiece: a character spelled like a control piece is unknown */
    if (id >= 0) return tok_ids_push(out, id);
    const uint8_t *b = (const uint8_t *)text + s->start;
    bool bytes = t->byte_fallback;
    for (uint32_t i = 0; i < s->len && bytes; i++) bytes = t->byte_token[b[i]] >= 0;
    if (bytes) {
        for (uint32_t i = 0; i < s->len; i++)
            if (tok_ids_push(out, t->byte_token[b[i]])) return ZT_ENOMEM;
        return ZT_OK;
    }
    if (t->unk < 0) return ZT_OK; /* nothing to say it with */
    if (t->fuse_unk && out->n > section_start && out->ids[out->n - 1] == t->unk) return ZT_OK;
    return tok_ids_push(out, t->unk);
}

/* BPE over one word (text[0, len), valid UTF-8). */
static int encode_word(const zt_tokenizer *t, tok_work *w, const char *text, size_t len,
                       tok_ids *out, int section_start) {
    int n = 0;
    for (size_t i = 0; i < len; i++) n += ((uint8_t)text[i] & 0xC0) != 0x80;
    if (n == 0) return ZT_OK;
    if (tok_work_syms(w, n)) return ZT_ENOMEM;
    tok_sym *s = w->syms;
    size_t pos = 0;
    for (int i = 0; i < n; i++) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)text + pos, len - pos, &cp);
        if (k <= 0) k = 1; /* not reached: the text was sanitized */
        s[i] = (tok_sym){tok_lookup(t, text + pos, (size_t)k), i - 1, i + 1 < n ? i + 1 : -1,
                         (uint32_t)pos, (uint32_t)k};
        pos += (size_t)k;
    }
    int rc = t->n_merges ? tok_merge_by_rank(t, w, n) : tok_merge_by_score(t, w, text, n);
    if (rc) return rc;
    for (int i = 0; i >= 0; i = s[i].next)
        if (emit_symbol(t, text, &s[i], out, section_start)) return ZT_ENOMEM;
    return ZT_OK;
}

int spm_encode(const zt_tokenizer *t, tok_work *w, const char *s, size_t len, bool first,
               tok_ids *out) {
    bool starts_spaced = len && (s[0] == ' ' || (len >= 3 && memcmp(s, SPACE_MARK, 3) == 0));
    bool prefix = t->spm_prefix == SPM_PREFIX_PREPEND ||
                  (t->spm_prefix == SPM_PREFIX_META_ALWAYS && !starts_spaced) ||
                  (t->spm_prefix == SPM_PREFIX_META_FIRST && first && !starts_spaced);
    size_t need = len * 3 + 4;
    if (need > w->cap_buf) {
        char *p = realloc(w->buf, need);
        if (!p) return ZT_ENOMEM;
        w->buf = p;
        w->cap_buf = need;
    }
    char *norm = w->buf; /* the section with "▁" for every space */
    size_t n = 0;
    if (prefix) memcpy(norm, SPACE_MARK, 3), n = 3;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == ' ')
            memcpy(norm + n, SPACE_MARK, 3), n += 3;
        else
            norm[n++] = s[i];
    }
    int section_start = out->n;
    if (!t->metaspace_split && !t->spm_word_split)
        return encode_word(t, w, norm, n, out, section_start);
    /* Cut before "▁": before every one for HF's Metaspace(split=true); for
     * speed, before each that ends a word, when no token spans such a cut
     * (then the merges of each word are those of the whole text). */
    size_t start = 0;
    for (size_t i = 1; i <= n; i++) {
        if (i < n) {
            if (i + 3 > n || memcmp(norm + i, SPACE_MARK, 3) != 0) continue;
            if (!t->metaspace_split && i >= 3 && memcmp(norm + i - 3, SPACE_MARK, 3) == 0) continue;
        }
        int rc = encode_word(t, w, norm + start, i - start, out, section_start);
        if (rc) return rc;
        start = i;
    }
    return ZT_OK;
}
