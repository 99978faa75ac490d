/*
 * fuzz_gguf — the GGUF reader and everything that reads GGUF metadata.
 *
 * The input is a whole .gguf file, put in a memfd and loaded by path
 * (gguf_load mmaps it as it would a model). A file that loads then goes
 * through what `zt run` does with a model's metadata before any weight is
 * touched: arch_init (config and weight shapes), zt_tokenizer_create from
 * tokenizer.ggml.* (whatever arch_init said), one encode + decode of a fixed
 * text, and a chat render with the file's own template. Finally the model is
 * written back with gguf_write and read again, so the writer sees every
 * metadata shape the reader accepts.
 *
 * Seeds: fuzz/corpus/gguf (tools/make_fuzz_seeds.c writes a tiny llama
 * model with a vocabulary, plus edge cases); the real vocab files in
 * tests/vocab make good extra seeds but are 1-2 MB each.
 */
#include "fuzz/fuzz_util.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static fuzz_memfile input;
static char out_path[300];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    if (fuzz_memfile_open(&input, "zt-fuzz-gguf") != 0) abort();
    const char *dir = fuzz_dir_create("gguf");
    if (!dir) abort();
    snprintf(out_path, sizeof out_path, "%s/out.gguf", dir);
    return 0;
}

/* What a loaded model's metadata feeds: tokenizer, detokenizer, chat. */
static void use_metadata(const zt_model *m) {
    static const char text[] = "Hello world! <|end|> \xe2\x96\x81x  12345\n\xf0\x9f\x98\x80 <s>";
    zt_error err;
    zt_tokenizer *tok = NULL;
    if (zt_tokenizer_create(m, &tok, &err) == ZT_OK) {
        int32_t *ids = NULL;
        int n = 0;
        if (zt_tokenize(tok, text, sizeof text - 1, ZT_TOK_DEFAULT, &ids, &n, &err) == ZT_OK) {
            int n_vocab = zt_tokenizer_n_vocab(tok);
            for (int i = 0; i < n; i++)
                if (ids[i] < 0 || ids[i] >= n_vocab) abort(); /* an id outside the vocabulary */
            char *out = NULL;
            size_t len = 0;
            if (tok_decode(tok, ids, n, &out, &len, &err) == ZT_OK && strlen(out) > len) abort();
            free(out);
            free(ids);
        }
        zt_tokenizer_is_stop(tok, zt_tokenizer_eos(tok));
        zt_tokenizer_free(tok);
    }
    static const zt_chat_msg msgs[] = {
        {"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello."}, {"user", "Bye"}};
    char *prompt = NULL;
    if (zt_chat_render(m, NULL, msgs, 4, true, &prompt, &err) == ZT_OK) {
        zt_chat_text_has_bos(m, prompt);
        free(prompt);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_fd_fill(input.fd, data, size) != 0) return 0;
    zt_error err = {0};
    zt_model *m = model_new(input.path);
    if (!m) abort();
    if (gguf_load(input.path, m, &err) == ZT_OK) {
        zt_error arch_err;
        arch_init(m, &arch_err);
        use_metadata(m);
        if (gguf_write(out_path, m, &err) == ZT_OK) {
            zt_model *again = model_new(out_path);
            if (!again) abort();
            /* what the writer wrote, the reader must read */
            if (gguf_load(out_path, again, &err) != ZT_OK) abort();
            if (again->n_tensors != m->n_tensors) abort();
            zt_model_free(again);
            unlink(out_path);
        }
    } else if (!memchr(err.msg, '\0', sizeof err.msg) || !err.msg[0]) {
        abort(); /* every refusal says why */
    }
    zt_model_free(m);
    return 0;
}
