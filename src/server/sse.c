/*
 * Server-sent events: framing only (see sse.h). An event is written as one
 * HTTP chunk so that a client's parser sees it whole as early as possible.
 */
#include "server/sse.h"

#include <stdlib.h>
#include <string.h>

#include "util/json.h"

void sse_begin(http_conn *c, const char *extra_headers) {
    json_buf h = {0};
    /* no-transform keeps proxies from buffering or compressing the stream */
    json_buf_puts(&h, "Cache-Control: no-cache, no-transform\r\nX-Accel-Buffering: no\r\n");
    if (extra_headers) json_buf_puts(&h, extra_headers);
    http_stream_begin(c, 200, "text/event-stream; charset=utf-8", h.oom ? extra_headers : h.data);
    json_buf_free(&h);
}

void sse_event(http_conn *c, const char *data, size_t len) {
    json_buf b = {0};
    size_t at = 0;
    do { /* one "data:" line per line of the payload */
        const char *nl = memchr(data + at, '\n', len - at);
        size_t n = nl ? (size_t)(nl - (data + at)) : len - at;
        if (n && data[at + n - 1] == '\r') n--;
        json_buf_append(&b, "data: ", 6);
        json_buf_append(&b, data + at, n);
        json_buf_append(&b, "\n", 1);
        at = nl ? (size_t)(nl - data) + 1 : len;
    } while (at < len);
    json_buf_append(&b, "\n", 1);
    if (!b.oom) http_stream_write(c, b.data, b.len);
    json_buf_free(&b);
}

void sse_done(http_conn *c) {
    static const char done[] = "data: [DONE]\n\n";
    http_stream_write(c, done, sizeof done - 1);
    http_stream_end(c);
}
