/*
 * zt serve MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] [--ctx N] ...
 *     An OpenAI-compatible HTTP server (/v1/chat/completions,
 *     /v1/completions, /v1/models, /health, /metrics) and a chat page at /.
 *     The model's sequences are batched continuously: --parallel requests
 *     generate at once, up to --queue more wait, the rest get 503.
 *     Ctrl-C (SIGINT) or SIGTERM stops it.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "server/server.h"

static void on_stop_signal(int sig) {
    (void)sig;
    server_request_stop();
}

/* Open connections need descriptors: raise the soft limit to what max_conns
 * wants (within the hard limit) and lower max_conns when it cannot be. */
static void fit_fd_limit(int *max_conns) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    rlim_t want = (rlim_t)*max_conns + 64;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        int fit = rl.rlim_cur > 128 ? (int)(rl.rlim_cur - 64) : 64;
        fprintf(stderr, "zt serve: the descriptor limit is %llu: at most %d connections\n",
                (unsigned long long)rl.rlim_cur, fit);
        *max_conns = fit;
    }
}

int cmd_serve(int argc, char **argv) {
    const char *cmd = "zt serve";
    cli_args a;
    if (!args_init(&a, cmd, argc, argv)) return 1;
    server_opts o = {0};
    o.http = http_default_opts();
    o.http.host = args_str(&a, "--host", NULL);
    if (!o.http.host) o.http.host = "127.0.0.1";
    o.http.port = (int)args_int(&a, "--port", NULL, 8080, 0, 65535);
    o.engine.backend = args_str(&a, "--backend", NULL);
    o.engine.kv_type = args_str(&a, "--kv", NULL);
    o.engine.n_threads = (int)args_int(&a, "--threads", "-t", 0, 0, 1024);
    o.engine.n_ctx = (int)args_int(&a, "--ctx", "-c", 0, 0, 1 << 24);
    o.engine.n_seq = (int)args_int(&a, "--parallel", "-np", 4, 1, 1024);
    o.max_queue = (int)args_int(&a, "--queue", NULL, 64, 0, 1 << 16);
    o.prefill_chunk = (int)args_int(&a, "--prefill-chunk", NULL, 256, 1, 1 << 16);
    o.alias = args_str(&a, "--alias", NULL);
    /* the in-browser page (make wasm) is served under /wasm/ when built */
    o.wasm_dir = args_str(&a, "--wasm-dir", NULL);
    if (!o.wasm_dir && access("build-wasm/web/index.html", R_OK) == 0) o.wasm_dir = "build-wasm/web";
    o.chat_template = args_str(&a, "--chat-template", NULL);
    o.http.max_conns = (int)args_int(&a, "--max-conns", NULL, o.http.max_conns, 1, 1 << 20);
    o.http.max_body = (size_t)args_int(&a, "--max-body", NULL, (long)o.http.max_body, 1024, 1L << 30);
    o.http.read_timeout_ms =
        (int)(1000 * args_float(&a, "--read-timeout", o.http.read_timeout_ms / 1000.0, 0.05, 3600));
    o.http.idle_timeout_ms =
        (int)(1000 * args_float(&a, "--idle-timeout", o.http.idle_timeout_ms / 1000.0, 0.05, 86400));
    o.http.write_timeout_ms =
        (int)(1000 * args_float(&a, "--write-timeout", o.http.write_timeout_ms / 1000.0, 0.05, 3600));
    o.model_path = args_pos(&a, 0);
    if (!args_done(&a, 1)) {
        args_free(&a);
        return 1;
    }
    if (!o.model_path) {
        cli_error(cmd, "usage: zt serve MODEL [--host 127.0.0.1] [--port 8080] [--parallel N] "
                       "[--ctx N] [--queue N] [--threads N] [--backend B]");
        args_free(&a);
        return 1;
    }
    o.engine.max_batch = o.engine.n_seq + o.prefill_chunk;
    fit_fd_limit(&o.http.max_conns);

    struct sigaction sa = {0};
    sa.sa_handler = SIG_IGN; /* a client that leaves must not kill us */
    sigaction(SIGPIPE, &sa, NULL);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    zt_error err = {0};
    int rc = server_run(&o, &err);
    if (rc != ZT_OK) cli_error(cmd, "%s", err.msg);
    args_free(&a);
    return rc == ZT_OK ? 0 : 1;
}
