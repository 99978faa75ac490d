/*
 * Token ids -> text, streamed: zt_detok_push takes one id at a time and
 * hands out only whole UTF-8 characters, holding back the first bytes of a
 * character that the next token completes (byte-fallback <0xE2><0x96><0x81>,
 * or a byte-level token that ends mid-character).
 *
 * What a token renders as, following the HF decoders of each family:
 *   SentencePiece  "▁" -> " "; <0xHH> -> the byte; the first character of
 *                  the whole output is dropped when it is a space that the
 *                  model's "▁" prefix put there (HF's Strip decoder)
 *   byte-level     each character -> the byte GPT-2's map gave it
 *   both           control and user-defined (added) tokens render their own
 *                  text ("<|end|>", "<s>")
 * Bytes that can never become UTF-8 come out as U+FFFD, one per maximal
 * invalid subpart (as TextDecoder does), so the output is always valid.
 */
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

#include <stdlib.h>
#include <string.h>

struct zt_detok {
    const zt_tokenizer *t;
    char *pend; /* [n] bytes not yet handed out */
    size_t n, cap;
    bool at_start;        /* nothing rendered yet */
    int16_t byte_of[324]; /* byte-level: code point -> byte, or -1 */
};

int zt_detok_create(const zt_tokenizer *t, zt_detok **out, zt_error *err) {
    *out = NULL;
    zt_detok *d = calloc(1, sizeof *d);
    if (!d) return zt_fail(err, ZT_ENOMEM, "out of memory");
    d->t = t;
    d->at_start = true;
    for (int i = 0; i < 324; i++) d->byte_of[i] = -1;
    if (t->kind == TOK_BYTE_BPE)
        for (int b = 0; b < 256; b++) d->byte_of[t->byte_char[b]] = (int16_t)b;
    *out = d;
    return ZT_OK;
}

void zt_detok_free(zt_detok *d) {
    if (!d) return;
    free(d->pend);
    free(d);
}

static int pend_room(zt_detok *d, size_t more) {
    if (d->n + more <= d->cap) return ZT_OK;
    size_t cap = d->cap ? d->cap : 64;
    while (cap < d->n + more) cap *= 2;
    char *p = realloc(d->pend, cap);
    if (!p) return ZT_ENOMEM;
    d->pend = p;
    d->cap = cap;
    return ZT_OK;
}

/* Appends the bytes token `id` stands for to the pending buffer. */
static int render(zt_detok *d, int32_t id) {
    const zt_tokenizer *t = d->t;
    const char *s = tok_text(t, id);
    size_t len = t->text_len[id];
    int ty = t->type[id];
    if (pend_room(d, len)) return ZT_ENOMEM;
    char *o = d->pend + d->n;
    size_t k = 0;
    if (ty == TOK_TYPE_CONTROL || ty == TOK_TYPE_USER_DEFINED) {
        memcpy(o, s, len);
        k = len;
    } else if (t->kind == TOK_SPM && ty == TOK_TYPE_BYTE && len == 6) {
        o[k++] = (char)strtol(s + 3, NULL, 16); /* "<0xHH>" */
    } else if (t->kind == TOK_SPM) {
        for (size_t i = 0; i < len; i++) {
            if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
                o[k++] = ' ';
                i += 2;
            } else {
                o[k++] = s[i];
            }
        }
    } else {
        for (size_t i = 0; i < len;) {
            uint32_t cp;
            int n = uni_utf8_next((const uint8_t *)s + i, len - i, &cp);
            if (n <= 0) n = 1, cp = 0xFFFFFFFFu;
            if (cp < 324 && d->byte_of[cp] >= 0) {
                o[k++] = (char)d->byte_of[cp];
            } else { /* not a mapped character: keep its bytes */
                memcpy(o + k, s + i, (size_t)n);
                k += (size_t)n;
            }
            i += (size_t)n;
        }
    }
    if (d->at_start && k > 0) {
        d->at_start = false;
        if (t->kind == TOK_SPM && t->spm_prefix != SPM_PREFIX_NONE && o[0] == ' ') {
            memmove(o, o + 1, --k);
        }
    }
    d->n += k;
    return ZT_OK;
}

/* Moves whole characters from the pending bytes to out (cap bytes with the
 * NUL); at the end of the stream (`final`) a cut-off character becomes
 * U+FFFD. Returns the bytes written. */
static size_t drain(zt_detok *d, char *out, size_t cap, bool final) {
    static const char replacement[] = "\xef\xbf\xbd";
    const uint8_t *p = (const uint8_t *)d->pend;
    size_t i = 0, o = 0;
    while (i < d->n) {
        uint32_t cp;
        int k = p[i] < 0x80 ? 1 : uni_utf8_next(p + i, d->n - i, &cp);
        const char *src = (const char *)p + i;
        size_t n = (size_t)k, adv = (size_t)k;
        if (k <= 0) {
            if (k == 0 && !final) break; /* wait for the rest of the character */
            src = replacement;
            n = 3;
            adv = k < 0 ? (size_t)-k : d->n - i;
        }
        if (o + n + 1 > cap) break;
        memcpy(out + o, src, n);
        o += n;
        i += adv;
    }
    if (i) memmove(d->pend, d->pend + i, d->n - i);
    d->n -= i;
    out[o] = 0;
    return o;
}

/* Text that does not fit in `cap` stays queued and comes out on the next
 * push or flush; cap must hold one character and the NUL (5 bytes). */
int zt_detok_push(zt_detok *d, int32_t id, char *out, size_t cap) {
    if (!d || !out || cap < 5) return ZT_EINVAL;
    out[0] = 0;
    if (id < 0 || id >= d->t->n_vocab) return ZT_EINVAL;
    if (render(d, id)) return ZT_ENOMEM;
    return (int)drain(d, out, cap < INT32_MAX ? cap : INT32_MAX, false);
}

/* Ends the stream: queued text, then a cut-off character as U+FFFD. Call
 * until it returns 0 when `cap` may be smaller than what is queued. */
int zt_detok_flush(zt_detok *d, char *out, size_t cap) {
    if (!d || !out || cap < 5) return ZT_EINVAL;
    return (int)drain(d, out, cap < INT32_MAX ? cap : INT32_MAX, true);
}

int tok_decode(const zt_tokenizer *t, const int32_t *ids, int n, char **text, size_t *len,
               zt_error *err) {
    *text = NULL;
    *len = 0;
    zt_detok *d;
    int rc = zt_detok_create(t, &d, err);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_vocab) {
            zt_detok_free(d);
            return zt_fail(err, ZT_EINVAL, "token id %d is outside the vocabulary (%d tokens)",
                           ids[i], t->n_vocab);
        }
        if (render(d, ids[i])) goto oom;
    }
    /* every pending byte turns into at most 3 (U+FFFD) */
    size_t cap = d->n * 3 + 1;
    char *out = malloc(cap);
    if (!out) goto oom;
    *len = drain(d, out, cap, true);
    *text = out;
    zt_detok_free(d);
    return ZT_OK;
oom:
    zt_detok_free(d);
    return zt_fail(err, ZT_ENOMEM, "out of memory");
}
