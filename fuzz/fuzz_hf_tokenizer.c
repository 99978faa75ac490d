/*
 * fuzz_hf_tokenizer — tokenizer.json conversion (src/tokenizer/hf_vocab.c)
 * and the tokenizer built from what it converts.
 *
 * The input is split on FUZZ_SEP (fuzz_util.h): part 0 is tokenizer.json,
 * part 1, when present, tokenizer_config.json beside it. The pair goes
 * through hf_tokenizer_to_kv into a fresh model; when that succeeds,
 * zt_tokenizer_create reads the keys, a fixed text (spaces, digits, an
 * emoji, invalid UTF-8, special-token look-alikes) is encoded — every id
 * must be in the vocabulary — and decoded to valid UTF-8.
 */
#include "fuzz/fuzz_util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char json_path[300];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    const char *dir = fuzz_dir_create("hftok");
    if (!dir) abort();
    snprintf(json_path, sizeof json_path, "%s/tokenizer.json", dir);
    return 0;
}

static bool valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)s + i, n - i, &cp);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

static void use_tokenizer(const zt_tokenizer *t) {
    static const char text[] = " Hello  world!\n\n\t123456 caf\xc3\xa9 \xf0\x9f\x98\x80"
                               "<s></s><|end|><unk> \xe2\x96\x81\xe2\x96\x81x \xff\xc3 ab";
    zt_error err = {0};
    int32_t *ids = NULL;
    int n = 0;
    if (zt_tokenize(t, text, sizeof text - 1, ZT_TOK_DEFAULT, &ids, &n, &err) != ZT_OK) {
        if (!err.msg[0]) abort();
        return;
    }
    int n_vocab = zt_tokenizer_n_vocab(t);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= n_vocab) abort();
    char *out = NULL;
    size_t len = 0;
    if (tok_decode(t, ids, n, &out, &len, &err) != ZT_OK || !valid_utf8(out, len)) abort();
    free(out);
    free(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const char *const names[2] = {"tokenizer.json", "tokenizer_config.json"};
    fuzz_part parts[2];
    int n = fuzz_split(data, size, parts, 2);
    fuzz_dir_clear();
    for (int k = 0; k < n; k++)
        if (fuzz_dir_write(names[k], &parts[k]) != 0) return 0;

    zt_error err = {0};
    zt_model *m = model_new(json_path);
    if (!m) abort();
    if (hf_tokenizer_to_kv(m, json_path, &err) == ZT_OK) {
        zt_tokenizer *t = NULL;
        if (zt_tokenizer_create(m, &t, &err) == ZT_OK) {
            use_tokenizer(t);
            zt_tokenizer_free(t);
        } else if (!err.msg[0]) {
            abort();
        }
    } else if (!err.msg[0]) {
        abort(); /* every refusal says why */
    }
    zt_model_free(m);
    return 0;
}
