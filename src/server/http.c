/*
 * The HTTP/1.1 server loop (contract and limits in http.h).
 *
 * A connection is in one of three states:
 *   READ    waiting for (the rest of) a request; idle between requests
 *   BUSY    a request went to the application; its response is not
 *           complete yet (a stream, or an answer that waits on the engine)
 *   LINGER  the response is out and the connection must close: writing
 *           is shut down and what the client still sends is read and
 *           dropped for a moment, so it sees our response, not a reset
 * Output is queued in a per-connection buffer and written as the socket
 * takes it (EPOLLOUT). Closing is deferred to the loop (`dead` + the
 * service list) so that no callback ever sees its connection freed under
 * it; the same list re-parses requests pipelined behind a finished one.
 *
 * epoll is level-triggered; the mask of each socket follows its state:
 * EPOLLIN while we want bytes, EPOLLOUT while output waits, EPOLLRDHUP
 * always (a client that goes away mid-stream is noticed at once).
 */
#include "server/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/error.h"

#define HTTP_LINGER_MS   2000 /* draining after an error response */
#define HTTP_TICK_MS     250  /* timeout sweep and on_tick period */
#define HTTP_READ_CHUNK  16384

typedef enum conn_state { CONN_READ, CONN_BUSY, CONN_LINGER } conn_state;

struct http_conn {
    http_server *srv;
    int fd;
    uint64_t id;            /* serial << 32 | fd; new for every request */
    conn_state state;
    bool dead;              /* close at the next service pass */
    bool queued;            /* on the service list */
    http_conn *next_service;

    char *in;               /* [in_cap] received bytes */
    size_t in_len, in_cap;
    size_t scan_from;       /* where the search for the end of the head resumes */
    size_t head_len;        /* bytes of request line + headers, 0 until parsed */
    size_t body_len;        /* Content-Length of the current request */
    http_request req;       /* pointers into in[] */
    size_t nul_at;          /* the body's terminator overwrote in[nul_at] ... */
    char nul_saved;         /* ... which held this (a pipelined byte) */
    bool nul_set;

    bool keep_alive;        /* of the current request */
    bool head_only;         /* a HEAD request: headers without the body */
    bool chunked;           /* the stream uses chunked encoding */
    bool close_after;       /* close once the output is out */
    bool sent_continue;

    char *out;              /* [out_cap] queued output, out[out_off..out_len) unsent */
    size_t out_len, out_off, out_cap;

    int64_t t_request;      /* ms: first byte of the current request (0: none yet) */
    int64_t t_progress;     /* ms: last read or write that moved bytes */
    int64_t t_linger;       /* ms: end of the lingering close */
    uint32_t events;        /* epoll mask now registered */
    void *user;
};

struct http_server {
    http_opts o;
    http_handlers h;
    int listen_fd, epoll_fd, wake_fd, spare_fd;
    int port;
    volatile int stop;
    http_conn **conns;      /* [n_slots] by fd */
    int n_slots, n_conns;
    uint64_t serial;
    http_conn *service;     /* connections to re-parse or close */
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

http_opts http_default_opts(void) {
    return (http_opts){.host = "127.0.0.1", .port = 8080, .max_conns = 4096,
                       .max_header = 16 << 10, .max_body = 1 << 20, .max_pending_out = 4 << 20,
                       .read_timeout_ms = 10000, .idle_timeout_ms = 60000,
                       .write_timeout_ms = 30000};
}

const char *http_status_text(int status) {
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/* ---- connection bookkeeping ---------------------------------------------- */

static void conn_service_later(http_conn *c) {
    if (c->queued) return;
    c->queued = true;
    c->next_service = c->srv->service;
    c->srv->service = c;
}

static void conn_kill(http_conn *c) {
    c->dead = true;
    conn_service_later(c);
}

static void conn_set_events(http_conn *c) {
    uint32_t ev = EPOLLRDHUP;
    bool want_in = c->state == CONN_LINGER || (c->state == CONN_READ && !c->close_after) ||
                   (c->state == CONN_BUSY &&
                    c->in_len < c->head_len + c->body_len + c->srv->o.max_header);
    if (want_in) ev |= EPOLLIN;
    if (c->out_off < c->out_len) ev |= EPOLLOUT;
    if (ev == c->events) return;
    struct epoll_event e = {.events = ev, .data.fd = c->fd};
    if (epoll_ctl(c->srv->epoll_fd, EPOLL_CTL_MOD, c->fd, &e) == 0) c->events = ev;
    else conn_kill(c);
}

static void conn_close(http_conn *c) {
    http_server *s = c->srv;
    if (c->user && s->h.on_close) s->h.on_close(s->h.user, c, c->user);
    epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    s->conns[c->fd] = NULL;
    s->n_conns--;
    free(c->in);
    free(c->out);
    free(c);
}

/* Starts the lingering close: no more output, drain input for a while. */
static void conn_linger(http_conn *c) {
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->t_linger = now_ms() + HTTP_LINGER_MS;
    conn_set_events(c);
}

/* Writes what the socket takes; kills the connection on error. */
static void conn_flush(http_conn *c) {
    while (c->out_off < c->out_len && !c->dead) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->t_progress = now_ms();
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            conn_kill(c);
            return;
        }
    }
    if (c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
        if (c->close_after && c->state != CONN_LINGER && c->state != CONN_BUSY) conn_linger(c);
    }
    if (!c->dead) conn_set_events(c);
}

static void conn_write(http_conn *c, const char *data, size_t len) {
    if (c->dead || c->state == CONN_LINGER || !len) return;
    /* A client that leaves max_pending_out unread is not reading. The bound
     * is on what is already queued, so one response may be larger (a static
     * file); streams are many small writes and still meet it. */
    if (c->out_len - c->out_off > c->srv->o.max_pending_out) {
        conn_kill(c);
        return;
    }
    if (c->out_len + len > c->out_cap) {
        if (c->out_off > 0) { /* reclaim the sent part first */
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        size_t cap = c->out_cap ? c->out_cap : 4096;
        while (cap < c->out_len + len) cap *= 2;
        if (cap > c->out_cap) {
            char *p = realloc(c->out, cap);
            if (!p) {
                conn_kill(c);
                return;
            }
            c->out = p;
            c->out_cap = cap;
        }
    }
    bool was_empty = c->out_off == c->out_len;
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    if (was_empty) c->t_progress = now_ms(); /* the write timeout counts from here */
    conn_flush(c);
}

static void conn_writef(http_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_writef(http_conn *c, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) conn_write(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* Puts back the byte that the body's terminator covered (see
 * conn_try_request). */
static void conn_unterminate(http_conn *c) {
    if (c->nul_set) c->in[c->nul_at] = c->nul_saved;
    c->nul_set = false;
}

/* The request is answered: drop its bytes, keep what was pipelined behind
 * it, and either wait for the next request or close. */
static void conn_request_done(http_conn *c) {
    conn_unterminate(c);
    size_t used = c->head_len + c->body_len;
    if (used > c->in_len) used = c->in_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
    c->scan_from = 0;
    c->head_len = c->body_len = 0;
    c->sent_continue = c->head_only = c->chunked = false;
    c->id = 0;
    c->state = CONN_READ;
    c->t_request = c->in_len ? now_ms() : 0;
    c->t_progress = now_ms();
    if (!c->keep_alive) c->close_after = true;
    if (c->close_after) {
        if (c->out_off == c->out_len) conn_linger(c);
        else conn_set_events(c);
        return;
    }
    conn_set_events(c);
    if (c->in_len) conn_service_later(c); /* a pipelined request */
}

static void head_common(http_conn *c, int status, const char *content_type,
                        const char *extra_headers) {
    char date[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    bool keep = c->keep_alive && !c->close_after;
    conn_writef(c, "HTTP/1.%d %d %s\r\nServer: zt\r\nDate: %s\r\nConnection: %s\r\n",
                c->req.minor, status, http_status_text(status), date, keep ? "keep-alive" : "close");
    if (content_type) conn_writef(c, "Content-Type: %s\r\n", content_type);
    if (extra_headers && *extra_headers) conn_write(c, extra_headers, strlen(extra_headers));
}

void http_respond(http_conn *c, int status, const char *content_type, const char *body,
                  size_t len, const char *extra_headers) {
    if (c->state != CONN_BUSY) return;
    head_common(c, status, content_type, extra_headers);
    if (status == 204 || status == 304) { /* no body, and no length for it (RFC 9110 8.6) */
        conn_write(c, "\r\n", 2);
    } else {
        conn_writef(c, "Content-Length: %zu\r\n\r\n", len);
        if (!c->head_only) conn_write(c, body, len);
    }
    conn_request_done(c);
}

void http_stream_begin(http_conn *c, int status, const char *content_type,
                       const char *extra_headers) {
    if (c->state != CONN_BUSY) return;
    c->chunked = c->req.minor >= 1;
    if (!c->chunked) c->close_after = true; /* HTTP/1.0: the end is the close */
    head_common(c, status, content_type, extra_headers);
    const char *end = c->chunked ? "Transfer-Encoding: chunked\r\n\r\n" : "\r\n";
    conn_write(c, end, strlen(end));
}

void http_stream_write(http_conn *c, const char *data, size_t len) {
    if (c->state != CONN_BUSY || !len) return;
    if (c->chunked) conn_writef(c, "%zx\r\n", len);
    conn_write(c, data, len);
    if (c->chunked) conn_write(c, "\r\n", 2);
}

void http_stream_end(http_conn *c) {
    if (c->state != CONN_BUSY) return;
    if (c->chunked) conn_write(c, "0\r\n\r\n", 5);
    conn_request_done(c);
}

/* An error of the protocol itself: answer and close. */
static void conn_fail(http_conn *c, int status, const char *msg) {
    c->state = CONN_BUSY;
    c->close_after = true;
    c->keep_alive = false;
    char body[512];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"message\":\"%s\",\"type\":\"invalid_request_error\","
                     "\"param\":null,\"code\":null}}", msg);
    http_respond(c, status, "application/json", body, (size_t)n, "");
}

uint64_t http_conn_id(const http_conn *c) { return c->id; }
void http_conn_set_user(http_conn *c, void *user) { c->user = user; }
void *http_conn_user(const http_conn *c) { return c->user; }
int http_server_n_conns(const http_server *s) { return s->n_conns; }
int http_server_port(const http_server *s) { return s->port; }

http_conn *http_conn_find(http_server *s, uint64_t id) {
    uint32_t fd = (uint32_t)(id & 0xffffffffu);
    if (!id || fd >= (uint32_t)s->n_slots) return NULL;
    http_conn *c = s->conns[fd];
    return c && c->id == id && !c->dead && c->state == CONN_BUSY ? c : NULL;
}

const char *http_header_get(const http_request *r, const char *name) {
    for (int i = 0; i < r->n_headers; i++)
        if (!strcasecmp(r->headers[i].name, name)) return r->headers[i].value;
    return NULL;
}

/* ---- parsing --------------------------------------------------------------- */

static bool is_tchar(unsigned char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Ends of the head: the index just past the blank line, or 0. Lines end in
 * CRLF or (leniently, RFC 9112 section 2.2) a bare LF. */
static size_t find_head_end(http_conn *c) {
    for (size_t i = c->scan_from; i < c->in_len; i++) {
        if (c->in[i] != '\n') continue;
        if (i + 1 < c->in_len && c->in[i + 1] == '\n') return i + 2;
        if (i + 2 < c->in_len && c->in[i + 1] == '\r' && c->in[i + 2] == '\n') return i + 3;
    }
    c->scan_from = c->in_len > 2 ? c->in_len - 2 : 0;
    return 0;
}

/* Splits off the next line of the head (NUL-terminating it). */
static char *next_line(char **p, char *end) {
    char *line = *p, *nl = memchr(line, '\n', (size_t)(end - line));
    if (!nl) return NULL;
    *nl = 0;
    if (nl > line && nl[-1] == '\r') nl[-1] = 0;
    *p = nl + 1;
    return line;
}

/* Parses the head in in[0..head_len). Returns 0, or an HTTP status with
 * *why set. */
static int parse_head(http_conn *c, const char **why) {
    http_request *r = &c->req;
    memset(r, 0, sizeof *r);
    r->minor = 1;
    char *p = c->in, *end = c->in + c->head_len;
    if (memchr(p, 0, c->head_len)) return *why = "a NUL byte in the request head", 400;
    char *line = next_line(&p, end);
    /* request-line = method SP request-target SP HTTP-version */
    char *sp1 = line ? strchr(line, ' ') : NULL;
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (!sp1 || !sp2 || strchr(sp2 + 1, ' ')) return *why = "malformed request line", 400;
    *sp1 = *sp2 = 0;
    r->method = line;
    char *target = sp1 + 1, *version = sp2 + 1;
    if (!*r->method) return *why = "malformed request line", 400;
    for (const char *m = r->method; *m; m++)
        if (!is_tchar((unsigned char)*m)) return *why = "malformed method", 400;
    for (const unsigned char *t = (const unsigned char *)target; *t; t++)
        if (*t <= 0x20 || *t == 0x7f) return *why = "malformed request target", 400;
    if (strncmp(version, "HTTP/", 5) || !version[5] || version[6] != '.' || !version[7] ||
        version[8] || version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
        return *why = "malformed HTTP version", 400;
    if (version[5] != '1') return *why = "only HTTP/1.0 and HTTP/1.1 are served", 505;
    r->minor = version[7] - '0';
    if (r->minor > 1) r->minor = 1; /* 1.x answers as 1.1 (RFC 9110 section 6.2) */
    if (*target != '/' && strcmp(target, "*")) return *why = "malformed request target", 400;
    char *q = strchr(target, '?');
    r->query = "";
    if (q) {
        *q = 0;
        r->query = q + 1;
    }
    r->path = target;

    long long content_length = -1;
    bool has_host = false, close = false, keep = false;
    while (p < end) {
        line = next_line(&p, end);
        if (!line || !*line) break;
        if (*line == ' ' || *line == '\t') return *why = "folded header lines are not accepted", 400;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) return *why = "malformed header line", 400;
        for (char *n = line; n < colon; n++)
            if (!is_tchar((unsigned char)*n)) return *why = "malformed header name", 400;
        *colon = 0;
        char *v = colon + 1, *ve = v + strlen(v);
        while (*v == ' ' || *v == '\t') v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) *--ve = 0;
        for (const unsigned char *u = (const unsigned char *)v; *u; u++)
            if ((*u < 0x20 && *u != '\t') || *u == 0x7f) return *why = "malformed header value", 400;
        if (r->n_headers == HTTP_MAX_HEADERS) return *why = "too many header lines", 431;
        r->headers[r->n_headers++] = (http_header){line, v};
        if (!strcasecmp(line, "content-length")) {
            if (!*v || strlen(v) > 18 || strspn(v, "0123456789") != strlen(v))
                return *why = "malformed Content-Length", 400;
            long long n = atoll(v);
            if (content_length >= 0 && n != content_length)
                return *why = "conflicting Content-Length headers", 400;
            content_length = n;
        } else if (!strcasecmp(line, "transfer-encoding")) {
            return *why = "Transfer-Encoding is not supported; send a Content-Length", 501;
        } else if (!strcasecmp(line, "host")) {
            if (has_host) return *why = "more than one Host header", 400;
            has_host = true;
        } else if (!strcasecmp(line, "connection")) {
            for (char *tok = v; *tok;) {
                size_t n = strcspn(tok, ",");
                while (n && (tok[n - 1] == ' ' || tok[n - 1] == '\t')) n--;
                if (n == 5 && !strncasecmp(tok, "close", 5)) close = true;
                if (n == 10 && !strncasecmp(tok, "keep-alive", 10)) keep = true;
                tok += strcspn(tok, ",");
                while (*tok == ',' || *tok == ' ' || *tok == '\t') tok++;
            }
        }
    }
    if (r->minor == 1 && !has_host) return *why = "HTTP/1.1 requests need a Host header", 400;
    c->keep_alive = !close && (r->minor == 1 || keep);
    c->head_only = !strcmp(r->method, "HEAD");
    if (content_length > (long long)c->srv->o.max_body) {
        static char msg[128];
        snprintf(msg, sizeof msg, "the request body is %lld bytes; the limit is %zu", content_length,
                 c->srv->o.max_body);
        return *why = msg, 413;
    }
    c->body_len = content_length > 0 ? (size_t)content_length : 0;
    return 0;
}

/* Grows the input buffer to hold need bytes. Once the head is parsed, the
 * request's strings point into the buffer, so a move carries them along:
 * they are kept as offsets across the realloc (a fuzzed request whose body
 * outgrew the buffer left them pointing at freed memory). */
static bool conn_reserve_in(http_conn *c, size_t need) {
    if (need <= c->in_cap) return true;
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < need) cap *= 2;
    http_request *r = &c->req;
    const char **ptrs[3 + 2 * HTTP_MAX_HEADERS];
    size_t off[3 + 2 * HTTP_MAX_HEADERS];
    int n = 0;
    if (c->head_len) {
        ptrs[n++] = &r->method, ptrs[n++] = &r->path, ptrs[n++] = &r->query;
        for (int i = 0; i < r->n_headers; i++)
            ptrs[n++] = &r->headers[i].name, ptrs[n++] = &r->headers[i].value;
    }
    const uintptr_t lo = (uintptr_t)c->in, hi = lo + c->in_cap;
    int kept = 0; /* only the pointers into the buffer ("" literals stay) */
    for (int i = 0; i < n; i++) {
        uintptr_t a = (uintptr_t)*ptrs[i];
        if (*ptrs[i] && a >= lo && a < hi) ptrs[kept] = ptrs[i], off[kept++] = a - lo;
    }
    char *p = realloc(c->in, cap);
    if (!p) return false;
    c->in = p;
    c->in_cap = cap;
    for (int i = 0; i < kept; i++) *ptrs[i] = p + off[i];
    return true;
}

/* Parses and dispatches the buffered request when it is complete. Returns
 * true when it dispatched one. */
static bool conn_try_request(http_conn *c) {
    http_server *s = c->srv;
    if (c->state != CONN_READ || c->dead || c->close_after) return false;
    if (!c->head_len) {
        size_t skip = 0; /* RFC 9112 section 2.2: ignore empty lines before a request */
        while (skip < c->in_len && skip < 64 && (c->in[skip] == '\r' || c->in[skip] == '\n')) skip++;
        if (skip) {
            memmove(c->in, c->in + skip, c->in_len - skip);
            c->in_len -= skip;
        }
        if (!c->in_len) {
            c->t_request = 0;
            return false;
        }
        size_t end = find_head_end(c);
        if (!end) {
            if (c->in_len > s->o.max_header) conn_fail(c, 431, "the request head is too large");
            return false;
        }
        if (end > s->o.max_header) {
            conn_fail(c, 431, "the request head is too large");
            return false;
        }
        c->head_len = end;
        const char *why = NULL;
        int status = parse_head(c, &why);
        if (status) {
            conn_fail(c, status, why);
            return false;
        }
        if (!conn_reserve_in(c, c->head_len + c->body_len + 1)) {
            conn_fail(c, 500, "out of memory");
            return false;
        }
    }
    size_t total = c->head_len + c->body_len;
    if (c->in_len < total) {
        const char *expect = http_header_get(&c->req, "expect");
        if (expect && !strcasecmp(expect, "100-continue") && !c->sent_continue && c->req.minor) {
            c->sent_continue = true;
            conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
        }
        return false;
    }
    /* NUL-terminate the body in place, keeping a pipelined byte aside */
    c->nul_at = total;
    c->nul_saved = c->in[total];
    c->nul_set = true;
    c->in[total] = 0;
    c->req.body = c->in + c->head_len;
    c->req.body_len = c->body_len;
    c->state = CONN_BUSY;
    c->id = (++s->serial << 32) | (uint32_t)c->fd;
    s->h.on_request(s->h.user, c, &c->req);
    conn_unterminate(c); /* the request's memory was valid during the call only */
    return true;
}

static void conn_on_readable(http_conn *c, uint32_t ev) {
    http_server *s = c->srv;
    for (int rounds = 0; rounds < 64 && !c->dead; rounds++) {
        if (c->state == CONN_LINGER) { /* drain and drop */
            char sink[HTTP_READ_CHUNK];
            ssize_t n = recv(c->fd, sink, sizeof sink, 0);
            if (n > 0) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (n < 0 && errno == EINTR) continue;
            conn_kill(c);
            return;
        }
        size_t limit = c->state == CONN_BUSY
                           ? c->head_len + c->body_len + s->o.max_header
                           : (c->head_len ? c->head_len + c->body_len : s->o.max_header + 1);
        if (c->in_len >= limit) { /* nothing more wanted now */
            if (ev & (EPOLLRDHUP | EPOLLHUP)) conn_kill(c); /* ... but the client is gone */
            else conn_set_events(c);
            return;
        }
        size_t want = limit - c->in_len;
        if (want > HTTP_READ_CHUNK) want = HTTP_READ_CHUNK;
        if (!conn_reserve_in(c, c->in_len + want + 1)) {
            conn_kill(c);
            return;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, want, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) { /* the client closed or failed: whatever we were doing ends */
            conn_kill(c);
            return;
        }
        if (c->state == CONN_READ && c->in_len == 0 && !c->t_request) c->t_request = now_ms();
        c->in_len += (size_t)n;
        c->t_progress = now_ms();
        while (conn_try_request(c)) {
        }
    }
}

/* ---- the loop -------------------------------------------------------------- */

static void server_accept(http_server *s) {
    for (int i = 0; i < 256; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
                /* out of descriptors: free the spare to accept and close one,
                 * so the listening socket does not stay readable forever */
                close(s->spare_fd);
                int extra = accept(s->listen_fd, NULL, NULL);
                if (extra >= 0) close(extra);
                s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            }
            return;
        }
        if (s->n_conns >= s->o.max_conns || fd >= (1 << 24)) {
            static const char busy[] =
                "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 1\r\n"
                "Content-Type: application/json\r\nContent-Length: 117\r\n\r\n"
                "{\"error\":{\"message\":\"too many open connections\",\"type\":\"server_error\","
                "\"param\":null,\"code\":\"too_many_connections\"}}";
            if (send(fd, busy, sizeof busy - 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
                /* best effort */
            }
            close(fd);
            continue;
        }
        if (fd >= s->n_slots) {
            int n = s->n_slots;
            while (n <= fd) n *= 2;
            http_conn **p = realloc(s->conns, sizeof *p * (size_t)n);
            if (!p) {
                close(fd);
                continue;
            }
            memset(p + s->n_slots, 0, sizeof *p * (size_t)(n - s->n_slots));
            s->conns = p;
            s->n_slots = n;
        }
        http_conn *c = calloc(1, sizeof *c);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* tokens go out at once */
        struct epoll_event e = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = fd};
        if (!c || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &e) != 0) {
            free(c);
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        c->events = e.events;
        c->state = CONN_READ;
        c->req.minor = 1; /* what an error before the first request line answers in */
        c->t_progress = now_ms();
        s->conns[fd] = c;
        s->n_conns++;
    }
}

static void server_service(http_server *s) {
    while (s->service) {
        http_conn *c = s->service;
        s->service = c->next_service;
        c->queued = false;
        if (c->dead) conn_close(c);
        else
            while (conn_try_request(c)) {
            }
    }
}

static void server_sweep(http_server *s) {
    int64_t t = now_ms();
    for (int fd = 0; fd < s->n_slots; fd++) {
        http_conn *c = s->conns[fd];
        if (!c || c->dead) continue;
        bool writing = c->out_off < c->out_len;
        if (c->state == CONN_LINGER) {
            if (t >= c->t_linger) conn_kill(c);
        } else if (writing) {
            if (t - c->t_progress > s->o.write_timeout_ms) conn_kill(c);
        } else if (c->state == CONN_READ && c->t_request) {
            if (t - c->t_request > s->o.read_timeout_ms)
                conn_fail(c, 408, "the request did not arrive in time");
        } else if (c->state == CONN_READ) {
            if (t - c->t_progress > s->o.idle_timeout_ms) conn_kill(c);
        }
    }
}

int http_server_run(http_server *s, zt_error *err) {
    struct epoll_event evs[256];
    int64_t next_tick = now_ms() + HTTP_TICK_MS;
    while (!s->stop) {
        int64_t wait = next_tick - now_ms();
        int n = epoll_wait(s->epoll_fd, evs, 256, wait > 0 ? (int)wait : 0);
        if (n < 0 && errno != EINTR) return zt_fail(err, ZT_EIO, "epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            uint32_t ev = evs[i].events;
            if (fd == s->listen_fd) {
                server_accept(s);
            } else if (fd == s->wake_fd) {
                uint64_t v;
                if (read(s->wake_fd, &v, sizeof v) < 0) {
                    /* EAGAIN: another wake already drained it */
                }
                if (s->h.on_wake) s->h.on_wake(s->h.user);
            } else if (fd >= 0 && fd < s->n_slots && s->conns[fd] && !s->conns[fd]->dead) {
                http_conn *c = s->conns[fd];
                if (ev & EPOLLOUT) conn_flush(c);
                if (!c->dead && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                    conn_on_readable(c, ev);
                if (!c->dead && (ev & (EPOLLHUP | EPOLLERR))) conn_kill(c);
            }
            server_service(s);
        }
        if (now_ms() >= next_tick) {
            next_tick = now_ms() + HTTP_TICK_MS;
            server_sweep(s);
            if (s->h.on_tick) s->h.on_tick(s->h.user);
            server_service(s);
        }
    }
    return ZT_OK;
}

void http_server_stop(http_server *s) {
    s->stop = 1;
    http_server_wake(s);
}

void http_server_wake(http_server *s) {
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) < 0) {
        /* the counter is already non-zero: the loop will wake */
    }
}

static int listen_on(http_server *s, zt_error *err) {
    char port[16];
    snprintf(port, sizeof port, "%d", s->o.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(s->o.host, port, &hints, &ai);
    if (gai) return zt_fail(err, ZT_EINVAL, "cannot resolve host '%s': %s", s->o.host, gai_strerror(gai));
    int fd = -1, last_errno = 0;
    for (struct addrinfo *a = ai; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 1024) == 0) break;
        last_errno = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0)
        return zt_fail(err, ZT_EIO, "cannot listen on %s:%d: %s", s->o.host, s->o.port,
                       strerror(last_errno));
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return ZT_OK;
}

int http_server_create(const http_opts *o, const http_handlers *h, http_server **out,
                       zt_error *err) {
    *out = NULL;
    if (o->port < 0 || o->port > 65535) return zt_fail(err, ZT_EINVAL, "port %d is out of range", o->port);
    if (o->max_conns < 1 || o->max_header < 256 || o->read_timeout_ms < 1 ||
        o->idle_timeout_ms < 1 || o->write_timeout_ms < 1)
        return zt_fail(err, ZT_EINVAL, "HTTP limits out of range");
    http_server *s = calloc(1, sizeof *s);
    if (!s) return zt_fail(err, ZT_ENOMEM, "out of memory");
    s->o = *o;
    s->h = *h;
    s->listen_fd = s->epoll_fd = s->wake_fd = s->spare_fd = -1;
    s->n_slots = 1024;
    s->conns = calloc((size_t)s->n_slots, sizeof *s->conns);
    int rc;
    if (!s->conns) {
        rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = listen_on(s, err)) != ZT_OK) goto fail;
    s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    struct epoll_event el = {.events = EPOLLIN, .data.fd = s->listen_fd};
    struct epoll_event ew = {.events = EPOLLIN, .data.fd = s->wake_fd};
    if (s->epoll_fd < 0 || s->wake_fd < 0 ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &el) != 0 ||
        epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->wake_fd, &ew) != 0) {
        rc = zt_fail(err, ZT_EIO, "cannot set up epoll: %s", strerror(errno));
        goto fail;
    }
    *out = s;
    return ZT_OK;
fail:
    http_server_free(s);
    return rc;
}

void http_server_free(http_server *s) {
    if (!s) return;
    for (int fd = 0; s->conns && fd < s->n_slots; fd++)
        if (s->conns[fd]) conn_close(s->conns[fd]);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->epoll_fd >= 0) close(s->epoll_fd);
    if (s->wake_fd >= 0) close(s->wake_fd);
    if (s->spare_fd >= 0) close(s->spare_fd);
    free(s->conns);
    free(s);
}
