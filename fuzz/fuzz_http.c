/*
 * fuzz_http — the HTTP server's request parsing (src/server/http.c): the
 * request line, headers, Content-Length bodies, pipelining, Expect:
 * 100-continue and the limits, as a client would reach them.
 *
 * http.c parses inside its event loop and has no parser function of its
 * own to call, so the target runs a real server (port 0 on 127.0.0.1, in a
 * thread, started once in LLVMFuzzerInitialize) whose on_request answers
 * every request with its method, path, header count and body length. Each
 * input is sent on a fresh loopback connection, the write side is shut,
 * and the whole response is read until the server closes. Small limits
 * (1 KiB head, 4 KiB body) so the 431 and 413 paths are reached by small
 * inputs; a 2 s receive timeout turns a server that stops answering into
 * a hang the fuzzer reports.
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static http_server *server;
static int port;

static void on_request(void *user, http_conn *c, const http_request *req) {
    char body[512];
    const char *host = http_header_get(req, "host");
    int n = snprintf(body, sizeof body, "%s %s ? %s minor %d headers %d body %zu host %s\n",
                     req->method, req->path, req->query, req->minor, req->n_headers, req->body_len,
                     host ? host : "-");
    if (n < 0 || n >= (int)sizeof body) n = (int)sizeof body - 1;    /* long paths: truncated */
    if (req->body_len && strlen(req->body) > req->body_len) abort(); /* NUL-terminated body */
    if (req->path[0] == '/' && req->path[1] == 's') { /* "/s...": a streamed answer */
        http_stream_begin(c, 200, "text/plain", "");
        http_stream_write(c, body, (size_t)n);
        http_stream_end(c);
    } else {
        http_respond(c, 200, "text/plain", body, (size_t)n, "X-Fuzz: 1\r\n");
    }
}

static void *serve(void *arg) {
    zt_error err;
    if (http_server_run(server, &err) != ZT_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    return NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    http_opts o = http_default_opts();
    o.host = "127.0.0.1";
    o.port = 0;
    o.max_header = 1024;
    o.max_body = 4096;
    o.read_timeout_ms = 1000;
    http_handlers h = {.on_request = on_request};
    zt_error err;
    if (http_server_create(&o, &h, &server, &err) != ZT_OK) {
        fprintf(stderr, "fuzz_http: %s\n", err.msg);
        abort();
    }
    port = http_server_port(server);
    pthread_t t;
    if (pthread_create(&t, NULL, serve, NULL) != 0) abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) abort();
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    /* close with a reset, not TIME_WAIT: a campaign opens thousands of
     * connections a second and would run out of local ports */
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    int rc;
    while ((rc = connect(fd, (struct sockaddr *)&a, sizeof a)) != 0 && errno == EINTR) {
    }
    if (rc != 0 && errno != EISCONN) { /* EISCONN: an interrupted connect finished */
        fprintf(stderr, "fuzz_http: connect: %s\n", strerror(errno));
        abort();
    }
    size_t done = 0;
    while (done < size) { /* the server may close early (431, 413, 400) */
        ssize_t w = send(fd, data + done, size - done, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    shutdown(fd, SHUT_WR);
    char buf[4096];
    for (;;) {
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0) break;
        if (r < 0) {
            if (errno == EINTR) continue; /* libFuzzer's SIGALRM timer */
            if (errno == ECONNRESET) break;
            fprintf(stderr, "fuzz_http: recv: %s\n", strerror(errno));
            abort(); /* no answer within 2 s: the server hangs on this input */
        }
    }
    close(fd);
    return 0;
}
