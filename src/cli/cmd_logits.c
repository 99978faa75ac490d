/* zt logits MODEL --tokens 1,5,9 [--backend B] [--kv f16|f32] -o FILE
 * Runs the ids as one sequence from position 0 and writes the logits of
 * every position as little-endian f32, shape [n_tokens][vocab]. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "zt.h"

int cmd_logits(int argc, char **argv) {
    const char *cmd = "zt logits";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    const char *tokens = args_str(&a, "--tokens", NULL);
    const char *out_path = args_str(&a, "-o", "--output");
    zt_engine_opts eo = {0};
    eo.backend = args_str(&a, "--backend", NULL);
    eo.kv_type = args_str(&a, "--kv", NULL);
    eo.n_threads = (int)args_int(&a, "--threads", "-t", 0, 0, 1024);
    const char *model_path = args_pos(&a, 0);
    int rc = 1;
    int *ids = NULL, n = 0;
    zt_model *model = NULL;
    zt_engine *eng = NULL;
    zt_row *rows = NULL;
    float *logits = NULL;
    FILE *f = NULL;
    zt_error err = {0};
    if (!args_done(&a, 1)) goto done;
    if (!model_path || !tokens || !out_path) {
        cli_error(cmd, "usage: zt logits MODEL --tokens 1,5,9 -o FILE [--backend B] [--kv f16|f32]");
        goto done;
    }
    if (cli_parse_ids(tokens, &ids, &n) != 0) {
        cli_error(cmd, "--tokens must be a comma-separated list of non-negative ids");
        goto done;
    }
    if (zt_model_load(model_path, &model, &err) != ZT_OK) goto fail;
    eo.n_ctx = n;
    eo.max_batch = n < 512 ? n : 512;
    if (zt_engine_create(model, &eo, &eng, &err) != ZT_OK) goto fail;
    int vocab = zt_engine_n_vocab(eng), seq;
    if (zt_seq_open(eng, &seq, &err) != ZT_OK) goto fail;
    rows = malloc(sizeof *rows * n);
    logits = malloc(sizeof(float) * (size_t)n * vocab);
    if (!rows || !logits) {
        cli_error(cmd, "out of memory for %d x %d logits", n, vocab);
        goto done;
    }
    for (int i = 0; i < n; i++) rows[i] = (zt_row){seq, i, ids[i], true};
    if (zt_engine_forward(eng, rows, n, logits, NULL, &err) != ZT_OK) goto fail;
    if (!(f = fopen(out_path, "wb"))) {
        cli_error(cmd, "%s: cannot open for writing", out_path);
        goto done;
    }
    if (fwrite(logits, sizeof(float) * vocab, n, f) != (size_t)n || fclose(f) != 0) {
        f = NULL;
        cli_error(cmd, "%s: write failed", out_path);
        goto done;
    }
    f = NULL;
    rc = 0;
    goto done;
fail:
    cli_error(cmd, "%s", err.msg);
done:
    if (f) fclose(f);
    free(rows), free(logits), free(ids);
    zt_engine_free(eng);
    zt_model_free(model);
    args_free(&a);
    return rc;
}
