/*
 * fuzz_tok_spm / fuzz_tok_bpe — encode and decode with a real vocabulary.
 *
 * Built twice from this file: with FUZZ_VOCAB = tests/vocab/ggml-vocab-phi-3
 * .gguf (SentencePiece BPE: byte fallback, "▁" prefix, added tokens that
 * strip) and with ggml-vocab-gpt-2.gguf (byte-level BPE: the regex
 * pre-tokenizer, the byte map). The vocabulary is loaded once, in
 * LLVMFuzzerInitialize (ZT_FUZZ_VOCAB overrides the path).
 *
 * The first input byte picks the mode, the rest is the payload:
 *   bit 0 clear  encode: the payload as text (any bytes, invalid UTF-8
 *                included) with flags from bits 1-2; every id must be in
 *                the vocabulary, and the ids are decoded again
 *   bit 0 set    decode: the payload as little-endian int32 ids, mapped to
 *                -8 .. n_vocab + 7 so that bad ids are tried too, streamed
 *                through zt_detok_push into an output buffer of exactly
 *                5 + (bits 1-7) bytes (ASan sees any overrun); the streamed
 *                text must be valid UTF-8 and equal tok_decode's
 */
#include "fuzz/fuzz_util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef FUZZ_VOCAB
#error "build with -DFUZZ_VOCAB=\"tests/vocab/....gguf\""
#endif

static zt_model *model;
static zt_tokenizer *tok;
static int n_vocab;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char buf[1024];
    const char *path = getenv("ZT_FUZZ_VOCAB");
    if (!path) path = fuzz_repo_file(FUZZ_VOCAB, buf, sizeof buf);
    zt_error err = {0};
    model = model_new(path);
    if (!model || gguf_load(path, model, &err) || zt_tokenizer_create(model, &tok, &err)) {
        fprintf(stderr,
                "fuzz_tokenizer: %s (run from the repository root or set "
                "ZT_FUZZ_VOCAB)\n",
                err.msg);
        abort();
    }
    n_vocab = zt_tokenizer_n_vocab(tok);
    return 0;
}

/* True when s[0..n) is valid UTF-8 (what the detokenizer promises). */
static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)s + i, n - i, &cp);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

static void encode(const uint8_t *p, size_t n, int flags) {
    zt_error err = {0};
    int32_t *ids = NULL;
    int n_ids = 0;
    if (zt_tokenize(tok, (const char *)p, n, flags, &ids, &n_ids, &err) != ZT_OK) {
        if (!err.msg[0]) abort();
        return;
    }
    for (int i = 0; i < n_ids; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) abort();
    char *text = NULL;
    size_t len = 0;
    if (tok_decode(tok, ids, n_ids, &text, &len, &err) != ZT_OK) abort();
    if (!valid_utf8(text, len)) abort();
    free(text);
    free(ids);
}

static void decode(const uint8_t *p, size_t n, size_t cap) {
    int n_ids = (int)(n / 4);
    int32_t *ids = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *ids);
    int32_t *good = malloc((size_t)(n_ids ? n_ids : 1) * sizeof *good);
    char *out = malloc(cap);
    if (!ids || !good || !out) abort();
    int n_good = 0;
    for (int i = 0; i < n_ids; i++) {
        uint32_t raw;
        memcpy(&raw, p + 4 * (size_t)i, 4);
        ids[i] = (int32_t)(raw % (uint32_t)(n_vocab + 16)) - 8;
        if (ids[i] >= 0 && ids[i] < n_vocab) good[n_good++] = ids[i];
    }

    zt_error err = {0};
    zt_detok *d = NULL;
    if (zt_detok_create(tok, &d, &err)) abort();
    char *streamed = NULL;
    size_t len = 0, cap_streamed = 0;
    for (int i = 0; i <= n_ids; i++) {
        /* after the last id, flush until nothing is left */
        for (;;) {
            int k = i < n_ids ? zt_detok_push(d, ids[i], out, cap) : zt_detok_flush(d, out, cap);
            if (i < n_ids && (ids[i] < 0 || ids[i] >= n_vocab)) {
                if (k != ZT_EINVAL) abort(); /* a bad id is refused, not rendered */
                break;
            }
            if (k < 0 || (size_t)k >= cap || out[k] != 0) abort(); /* <0x00> may put a NUL inside */
            if (len + (size_t)k + 1 > cap_streamed) {
                cap_streamed = 2 * (len + (size_t)k + 1);
                streamed = realloc(streamed, cap_streamed);
                if (!streamed) abort();
            }
            memcpy(streamed + len, out, (size_t)k);
            len += (size_t)k;
            if (i < n_ids || k == 0) break;
        }
    }
    zt_detok_free(d);
    if (!valid_utf8(streamed ? streamed : "", len)) abort();

    char *whole = NULL;
    size_t whole_len = 0;
    if (tok_decode(tok, good, n_good, &whole, &whole_len, &err) != ZT_OK) abort();
    if (whole_len != len || (len && memcmp(whole, streamed, len))) abort();
    free(whole);
    free(streamed);
    free(out);
    free(good);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    if (mode & 1)
        decode(data + 1, size - 1, 5 + (mode >> 1));
    else
        encode(data + 1, size - 1, (mode >> 1) & 3);
    return 0;
}
