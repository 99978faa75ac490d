/*
 * A small HTTP/1.1 server: one thread, one epoll loop, non-blocking sockets.
 *
 * It parses requests (request line, headers, a Content-Length body), keeps
 * connections alive between requests, and hands each complete request to
 * the application's on_request callback, which answers at once
 * (http_respond) or later, from the same thread, possibly as a stream
 * (http_stream_*). Work from other threads reaches the loop through
 * http_server_wake, which runs on_wake in the loop.
 *
 * Hardening, every limit counted in bytes or milliseconds (http_opts):
 * headers and bodies are bounded (431, 413), a request must arrive within
 * read_timeout_ms of its first byte (slow clients get 408), an idle
 * connection closes after idle_timeout_ms, a client that stops reading a
 * response is dropped after write_timeout_ms or once max_pending_out bytes
 * wait for it, and connections beyond max_conns are refused with 503.
 * Malformed requests get 400 and the connection is closed; an error
 * response is followed by a "lingering close" (stop writing, drain what the
 * client still sends for a moment) so that the client reads the response
 * instead of a reset.
 */
#ifndef ZT_SERVER_HTTP_H
#define ZT_SERVER_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zt.h"

#define HTTP_MAX_HEADERS 64

typedef struct http_server http_server;
typedef struct http_conn http_conn;

typedef struct http_header {
    const char *name, *value; /* NUL-terminated, inside the request buffer */
} http_header;

typedef struct http_request {
    const char *method;       /* "GET", "POST", ... */
    const char *path;         /* the target up to '?' */
    const char *query;        /* after '?', or "" */
    int minor;                /* HTTP/1.<minor> */
    http_header headers[HTTP_MAX_HEADERS];
    int n_headers;
    const char *body;         /* [body_len] bytes (NUL-terminated) */
    size_t body_len;
} http_request;

typedef struct http_handlers {
    /* A complete request. The request's memory is valid during the call;
     * the application must answer it (now or later) before the connection
     * reads the next one. */
    void (*on_request)(void *user, http_conn *c, const http_request *req);
    /* The connection closes (client gone, timeout, error) while its user
     * pointer is set: the application drops what it holds for it. */
    void (*on_close)(void *user, http_conn *c, void *conn_user);
    /* http_server_wake was called. */
    void (*on_wake)(void *user);
    /* About every 250 ms, for the application's own timers. */
    void (*on_tick)(void *user);
    void *user;
} http_handlers;

typedef struct http_opts {
    const char *host;         /* numeric address or name to bind */
    int port;                 /* 0: any free port (see http_server_port) */
    int max_conns;            /* open connections at once */
    size_t max_header;        /* bytes of request line + headers */
    size_t max_body;          /* bytes of a request body */
    size_t max_pending_out;   /* response bytes that may wait for a slow reader */
    int read_timeout_ms;      /* first byte of a request -> its last byte */
    int idle_timeout_ms;      /* keep-alive: between requests */
    int write_timeout_ms;     /* no progress writing a response */
} http_opts;

/* Defaults: 127.0.0.1:8080, 4096 connections, 16 KiB headers, 1 MiB body,
 * 4 MiB pending output, 10 s read, 60 s idle, 30 s write. */
http_opts http_default_opts(void);

int http_server_create(const http_opts *o, const http_handlers *h, http_server **out, zt_error *err);
void http_server_free(http_server *s);
int http_server_port(const http_server *s);
/* Runs the loop until http_server_stop. */
int http_server_run(http_server *s, zt_error *err);
/* Thread-safe and async-signal-safe. */
void http_server_stop(http_server *s);
void http_server_wake(http_server *s);
int http_server_n_conns(const http_server *s);

/* ---- answering (loop thread only) ----------------------------------------- */

/* A whole response. extra_headers: "" or lines each ending in "\r\n". */
void http_respond(http_conn *c, int status, const char *content_type, const char *body,
                  size_t len, const char *extra_headers);
/* A streamed response: chunked under HTTP/1.1, until close under 1.0. */
void http_stream_begin(http_conn *c, int status, const char *content_type,
                       const char *extra_headers);
void http_stream_write(http_conn *c, const char *data, size_t len);
void http_stream_end(http_conn *c);

/* A connection's lasting name: http_conn_find gives the connection back
 * while it is open and still on the same request, else NULL. */
uint64_t http_conn_id(const http_conn *c);
http_conn *http_conn_find(http_server *s, uint64_t id);
void http_conn_set_user(http_conn *c, void *user);
void *http_conn_user(const http_conn *c);

const char *http_header_get(const http_request *r, const char *name);
const char *http_status_text(int status);

#endif
