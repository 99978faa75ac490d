/* zt info MODEL [--ctx N] — architecture, hyperparameters, tensor types
 * and bytes, and the memory plan (weights + KV pool + scratch). */
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "model/model.h"
#include "quant/quant.h"

static void print_bytes(const char *label, double bytes) {
    printf("  %-28s %10.2f MiB\n", label, bytes / (1024.0 * 1024.0));
}

int cmd_info(int argc, char **argv) {
    const char *cmd = "zt info";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    long ctx = args_int(&a, "--ctx", "-c", 0, 0, 1 << 24);
    long batch = args_int(&a, "--batch", NULL, 512, 1, 1 << 16);
    const char *path = args_pos(&a, 0);
    if (!args_done(&a, 1) || !path) {
        if (!path) cli_error(cmd, "usage: zt info MODEL [--ctx N]");
        args_free(&a);
        return 1;
    }
    args_free(&a);
    zt_model *m;
    zt_error err = {0};
    if (zt_model_load(path, &m, &err) != ZT_OK) {
        cli_error(cmd, "%s", err.msg);
        return 1;
    }
    const zt_config *c = &m->cfg;
    const char *name = model_get_str(m, "general.name");
    printf("model        %s%s%s\n", path, name ? "  " : "", name ? name : "");
    printf("format       %s", m->format == ZT_FORMAT_GGUF ? "GGUF" : "Hugging Face directory");
    if (m->format == ZT_FORMAT_GGUF) printf(" v%u", m->gguf_version);
    printf("\narchitecture %s\n", c->arch_name);
    printf("vocab %d  dim %d  layers %d  heads %d (kv %d, head_dim %d)  ffn %d\n", c->n_vocab,
           c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->head_dim, c->ffn_dim);
    printf("rope dim %d, %s pairs, theta from metadata  rms_eps %g  context %d", c->rope_dim,
           c->rope_interleaved ? "interleaved" : "rotate-half", c->rms_eps, c->ctx_train);
    if (c->sliding_window) printf("  sliding window %d", c->sliding_window);
    printf("  output %s\n", c->tied_output ? "tied to token_embd" : "untied");

    /* tensors by type */
    double type_bytes[ZT_TYPE_LIMIT] = {0};
    int type_count[ZT_TYPE_LIMIT] = {0};
    double total = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const zt_tensor *t = &m->tensors[i];
        if (t->type < 0 || t->type >= ZT_TYPE_LIMIT) continue;
        type_bytes[t->type] += (double)t->nbytes;
        type_count[t->type]++;
        total += (double)t->nbytes;
    }
    printf("\ntensors      %d\n", m->n_tensors);
    for (int t = 0; t < ZT_TYPE_LIMIT; t++) {
        if (!type_count[t]) continue;
        const zt_type_info *ti = quant_type_info(t);
        char label[64];
        snprintf(label, sizeof label, "%-6s x %d", ti ? ti->name : "?", type_count[t]);
        print_bytes(label, type_bytes[t]);
    }

    /* memory plan for one sequence of ctx positions */
    int n_ctx = ctx > 0 ? (int)ctx : c->ctx_train;
    int kv_dim = c->n_kv_heads * c->head_dim, q_dim = c->n_heads * c->head_dim;
    double kv = 2.0 * c->n_layers * n_ctx * kv_dim * 2; /* K and V, f16 */
    double scratch = 4.0 * batch * (3.0 * c->dim + q_dim + 2 * kv_dim + q_dim + 3.0 * c->ffn_dim) +
                     4.0 * batch * c->n_vocab;
    double embd_row = (double)quant_row_bytes(m->w.token_embd->type, c->dim);
    double per_token = total - (double)m->w.token_embd->nbytes + embd_row +
                       (c->tied_output ? (double)m->w.token_embd->nbytes : 0);
    printf("\nmemory plan (context %d, batch %ld)\n", n_ctx, batch);
    print_bytes("weights", total);
    print_bytes("KV cache (f16)", kv);
    print_bytes("scratch", scratch);
    print_bytes("total", total + kv + scratch);
    printf("  %-28s %10.2f MB\n", "weight bytes read per token", per_token / 1e6);
    zt_model_free(m);
    return 0;
}
