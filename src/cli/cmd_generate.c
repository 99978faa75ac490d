/*
 * zt run MODEL "prompt" [--chat] [--system TEXT] [--chat-template NAME] [-n N] ...
 *     Streams the completion to stdout; a one-line summary to stderr.
 * zt chat MODEL [--system TEXT] [--chat-template NAME] [-n N] ...
 *     Interactive chat. History is kept across turns and the KV cache of
 *     the shared prefix is reused. Commands: /reset, /system TEXT, /quit.
 *     Ctrl-C stops the current reply (not the program); Ctrl-D exits.
 *     When the context fills, the oldest turns are dropped (the system
 *     prompt stays) and the user is told; a turn that alone does not fit
 *     is refused with a message.
 * Sampling and engine options: see gen_options (generate.c).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "cli/generate.h"
#include "util/error.h"

static void print_summary(const gen_stats *st) {
    fprintf(stderr, "\n[prompt %d tokens (%d reused), generated %d tokens, prefill %.1f tok/s, "
                    "decode %.1f tok/s, stop: %s]\n",
            st->n_prompt, st->n_reused, st->n_gen,
            st->prefill_s > 0 ? (st->n_prompt - st->n_reused) / st->prefill_s : 0,
            st->decode_s > 0 ? st->n_gen / st->decode_s : 0, st->stop);
}

/* Renders msgs with the chat template and tokenizes the result (no second
 * BOS when the template already wrote one). */
static int chat_tokens(gen_session *g, const char *tmpl, const zt_chat_msg *msgs, int n_msgs,
                       int32_t **ids, int *n_ids, zt_error *err) {
    char *text = NULL;
    int rc = zt_chat_render(g->model, tmpl, msgs, n_msgs, true, &text, err);
    if (rc != ZT_OK) return rc;
    int flags = ZT_TOK_PARSE_SPECIAL | (zt_chat_text_has_bos(g->model, text) ? 0 : ZT_TOK_ADD_BOS);
    rc = zt_tokenize(g->tok, text, strlen(text), flags, ids, n_ids, err);
    free(text);
    return rc;
}

static int check_template(gen_session *g, const char *cmd, const char *tmpl) {
    const char *style;
    bool recognized;
    zt_error err = {0};
    if (zt_chat_template_resolve(g->model, tmpl, &style, &recognized, &err) != ZT_OK) {
        cli_error(cmd, "%s", err.msg);
        return 1;
    }
    if (!recognized)
        fprintf(stderr, "%s: the model's chat template is not recognized; using %s "
                        "(choose one with --chat-template)\n", cmd, style);
    return 0;
}

int cmd_run(int argc, char **argv) {
    const char *cmd = "zt run";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    gen_opts opt;
    gen_options(&a, &opt);
    bool chat = args_flag(&a, "--chat");
    const char *system = args_str(&a, "--system", NULL);
    const char *tmpl = args_str(&a, "--chat-template", NULL);
    int max_tokens = (int)args_int(&a, "-n", "--n-predict", 128, -1, 1 << 24);
    const char *path = args_pos(&a, 0), *prompt = args_pos(&a, 1);
    gen_session g = {0};
    int rc = 1, n = 0;
    int32_t *ids = NULL;
    zt_error err = {0};
    if (!args_done(&a, 2)) goto done;
    if (!path || !prompt) {
        cli_error(cmd, "usage: zt run MODEL \"prompt\" [--chat] [-n N] [--temp T] ...");
        goto done;
    }
    if (!*prompt) {
        cli_error(cmd, "the prompt is empty");
        goto done;
    }
    if (gen_open(&g, &a, path, &opt)) goto done;
    if (chat) {
        zt_chat_msg msgs[2];
        int n_msgs = 0;
        if (system) msgs[n_msgs++] = (zt_chat_msg){"system", system};
        msgs[n_msgs++] = (zt_chat_msg){"user", prompt};
        if (check_template(&g, cmd, tmpl)) goto done;
        if (chat_tokens(&g, tmpl, msgs, n_msgs, &ids, &n, &err) != ZT_OK) goto fail;
    } else if (zt_tokenize(g.tok, prompt, strlen(prompt), ZT_TOK_DEFAULT, &ids, &n, &err)) {
        goto fail;
    }
    gen_stats st;
    if (gen_complete(&g, ids, n, !chat, max_tokens, stdout, NULL, NULL, &st, &err) != ZT_OK) goto fail;
    print_summary(&st);
    rc = 0;
    goto done;
fail:
    cli_error(cmd, "%s", err.msg);
done:
    free(ids);
    gen_close(&g);
    args_free(&a);
    return rc;
}

/* ---- chat ------------------------------------------------------------ */

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

typedef struct history {
    zt_chat_msg *msgs; /* [0] is the system prompt when has_system */
    int n, cap;
    bool has_system;
} history;

static void history_clear(history *h, bool keep_system) {
    int first = keep_system && h->has_system ? 1 : 0;
    for (int i = first; i < h->n; i++) {
        free((char *)h->msgs[i].content);
    }
    h->n = first;
    if (!first) h->has_system = false;
}

static int history_add(history *h, const char *role, const char *content) {
    if (h->n == h->cap) {
        int cap = h->cap ? 2 * h->cap : 16;
        zt_chat_msg *m = realloc(h->msgs, sizeof *m * cap);
        if (!m) return -1;
        h->msgs = m;
        h->cap = cap;
    }
    char *c = strdup(content);
    if (!c) return -1;
    h->msgs[h->n++] = (zt_chat_msg){role, c};
    return 0;
}

/* Drops the oldest user/assistant pair (after the system prompt). */
static bool history_drop_oldest(history *h) {
    int first = h->has_system ? 1 : 0;
    if (h->n - first < 3) return false; /* keep at least the newest user turn */
    int drop = h->n - first >= 2 ? 2 : 1;
    for (int i = first; i < first + drop; i++) free((char *)h->msgs[i].content);
    memmove(&h->msgs[first], &h->msgs[first + drop], sizeof *h->msgs * (h->n - first - drop));
    h->n -= drop;
    return true;
}

static void set_system(history *h, const char *text) {
    history_clear(h, false);
    if (text && *text && history_add(h, "system", text) == 0) h->has_system = true;
}

int cmd_chat(int argc, char **argv) {
    const char *cmd = "zt chat";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    gen_opts opt;
    gen_options(&a, &opt);
    const char *system = args_str(&a, "--system", NULL);
    const char *tmpl = args_str(&a, "--chat-template", NULL);
    int max_tokens = (int)args_int(&a, "-n", "--n-predict", -1, -1, 1 << 24);
    const char *path = args_pos(&a, 0);
    gen_session g = {0};
    history h = {0};
    char *line = NULL;
    size_t line_cap = 0;
    int rc = 1;
    if (!args_done(&a, 1)) goto done;
    if (!path) {
        cli_error(cmd, "usage: zt chat MODEL [--system TEXT] [--chat-template NAME]");
        goto done;
    }
    if (gen_open(&g, &a, path, &opt) || check_template(&g, cmd, tmpl)) goto done;
    set_system(&h, system);
    struct sigaction sa = {0};
    sa.sa_handler = on_sigint; /* no SA_RESTART: Ctrl-C at the prompt interrupts getline */
    sigaction(SIGINT, &sa, NULL);
    fprintf(stderr, "zt chat: %s on %s, context %d. /reset, /system TEXT, Ctrl-C stops a reply, "
                    "Ctrl-D exits.\n", path, zt_engine_backend_name(g.eng), zt_engine_n_ctx(g.eng));
    for (;;) {
        fputs("> ", stdout);
        fflush(stdout);
        interrupted = 0;
        errno = 0;
        ssize_t len = getline(&line, &line_cap, stdin);
        if (len < 0) {
            if (errno == EINTR) { /* Ctrl-C at the prompt: a fresh prompt */
                clearerr(stdin);
                fputc('\n', stdout);
                continue;
            }
            fputc('\n', stdout);
            break; /* Ctrl-D */
        }
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        if (!strcmp(line, "/quit") || !strcmp(line, "/exit")) break;
        if (!strcmp(line, "/reset")) {
            history_clear(&h, true);
            fprintf(stderr, "[conversation reset]\n");
            continue;
        }
        if (!strncmp(line, "/system", 7) && (line[7] == ' ' || !line[7])) {
            set_system(&h, line[7] ? line + 8 : "");
            fprintf(stderr, "[system prompt %s; conversation reset]\n", h.has_system ? "set" : "cleared");
            continue;
        }
        if (history_add(&h, "user", line)) break;
        int32_t *ids = NULL;
        int n = 0;
        zt_error err = {0};
        /* reserve room for a reply; drop the oldest turns until it fits */
        int reserve = zt_engine_n_ctx(g.eng) / 4;
        for (;;) {
            free(ids);
            ids = NULL;
            if (chat_tokens(&g, tmpl, h.msgs, h.n, &ids, &n, &err) != ZT_OK) break;
            if (n + reserve <= zt_engine_n_ctx(g.eng) || !history_drop_oldest(&h)) break;
            fprintf(stderr, "[context full: dropped the oldest turn]\n");
        }
        if (!ids || n >= zt_engine_n_ctx(g.eng)) {
            if (ids) zt_fail(&err, ZT_EFULL, "this message is %d tokens with the history; the "
                                             "context holds %d", n, zt_engine_n_ctx(g.eng));
            fprintf(stderr, "%s: %s\n", cmd, err.msg);
            free((char *)h.msgs[--h.n].content);
            free(ids);
            continue;
        }
        char *reply = NULL;
        gen_stats st;
        int grc = gen_complete(&g, ids, n, false, max_tokens, stdout, &interrupted, &reply, &st, &err);
        free(ids);
        fputc('\n', stdout);
        fflush(stdout);
        if (grc != ZT_OK) fprintf(stderr, "%s: %s\n", cmd, err.msg);
        if (history_add(&h, "assistant", reply ? reply : "")) break;
        free(reply);
        fprintf(stderr, "[%d tokens, %.1f tok/s%s]\n", st.n_gen,
                st.decode_s > 0 ? st.n_gen / st.decode_s : 0,
                !strcmp(st.stop, "interrupted") ? ", stopped" :
                !strcmp(st.stop, "context") ? ", context full" : "");
    }
    rc = 0;
done:
    free(line);
    history_clear(&h, false);
    free(h.msgs);
    gen_close(&g);
    args_free(&a);
    return rc;
}
