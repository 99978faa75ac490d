/* The commands that write model files:
 *   zt synth --preset phi3-mini|tiny|llama-tiny --type f16|bf16|q4_0|q4_k_m|q8_0|f32
 *            -o FILE.gguf [--seed N] [--vocab VOCAB.gguf] [--threads N]
 *   zt convert IN OUT.gguf --type f32|f16|bf16|q8_0|q4_0|q4_k_m [--vocab V.gguf]
 *              [--threads N]
 * --vocab copies the tokenizer.* metadata of a vocabulary GGUF into the
 * output (for HF directories that carry no tokenizer.json).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "model/convert.h"
#include "model/synth.h"
#include "util/error.h"

/* The Phi-3 vocabulary shipped with the repo, used when --vocab is not
 * given so that synth files load in any GGUF reader. */
#define DEFAULT_VOCAB "tests/vocab/ggml-vocab-phi-3.gguf"

int cmd_synth(int argc, char **argv) {
    const char *cmd = "zt synth";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    const char *preset = args_str(&a, "--preset", NULL);
    const char *type = args_str(&a, "--type", NULL);
    const char *out = args_str(&a, "-o", "--output");
    const char *vocab_path = args_str(&a, "--vocab", NULL);
    long seed = args_int(&a, "--seed", NULL, 1234, 0, 0x7fffffff);
    int threads = (int)args_int(&a, "--threads", "-t", 0, 0, 1024);
    int rc = 1;
    zt_model *vocab = NULL, *m = NULL;
    zt_error err = {0};
    if (!args_done(&a, 0)) goto done;
    if (!preset || !type || !out) {
        cli_error(cmd, "usage: zt synth --preset phi3-mini|tiny|llama-tiny --type "
                       "f16|bf16|q4_0|q4_k_m|q8_0|f32 -o FILE.gguf [--seed N] [--vocab V.gguf]");
        goto done;
    }
    const synth_spec *spec = synth_preset(preset);
    if (!spec) {
        cli_error(cmd, "unknown preset '%s' (phi3-mini, tiny, llama-tiny)", preset);
        goto done;
    }
    if (!vocab_path && access(DEFAULT_VOCAB, R_OK) == 0 && spec->n_vocab == 32064)
        vocab_path = DEFAULT_VOCAB;
    if (vocab_path) {
        vocab = model_new(vocab_path);
        if (!vocab || gguf_load(vocab_path, vocab, &err) != ZT_OK) goto fail;
    }
    if (synth_build(spec, type, (uint64_t)seed, vocab, threads, &m, &err) != ZT_OK) goto fail;
    if (gguf_write(out, m, &err) != ZT_OK) goto fail;
    rc = 0;
    goto done;
fail:
    cli_error(cmd, "%s", err.msg);
done:
    zt_model_free(vocab);
    zt_model_free(m);
    args_free(&a);
    return rc;
}

int cmd_convert(int argc, char **argv) {
    const char *cmd = "zt convert";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    const char *type = args_str(&a, "--type", NULL);
    const char *vocab_path = args_str(&a, "--vocab", NULL);
    int threads = (int)args_int(&a, "--threads", "-t", 0, 0, 1024);
    const char *in = args_pos(&a, 0), *out = args_pos(&a, 1);
    int rc = 1;
    zt_model *m = NULL, *vocab = NULL;
    zt_error err = {0};
    if (!args_done(&a, 2)) goto done;
    if (!in || !out || !type) {
        cli_error(cmd, "usage: zt convert IN OUT.gguf --type f32|f16|bf16|q8_0|q4_0|q4_k_m");
        goto done;
    }
    if (vocab_path) {
        vocab = model_new(vocab_path);
        if (!vocab || gguf_load(vocab_path, vocab, &err) != ZT_OK) goto fail;
    }
    if (zt_model_load(in, &m, &err) != ZT_OK) goto fail;
    if (vocab && synth_copy_tokenizer(m, vocab) != ZT_OK) {
        cli_error(cmd, "out of memory");
        goto done;
    }
    if (convert_to_gguf(m, type, out, threads, &err) != ZT_OK) goto fail;
    rc = 0;
    goto done;
fail:
    cli_error(cmd, "%s", err.msg);
done:
    zt_model_free(vocab);
    zt_model_free(m);
    args_free(&a);
    return rc;
}
