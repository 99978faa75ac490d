/*
 * Server-sent events (the WHATWG EventSource format) over an HTTP stream:
 * each event is "data: <text>\n\n", a newline inside the text continues the
 * event on another "data:" line, and OpenAI's streams end with the event
 * "data: [DONE]". The HTTP layer wraps the bytes in chunked encoding.
 */
#ifndef ZT_SERVER_SSE_H
#define ZT_SERVER_SSE_H

#include <stddef.h>

#include "server/http.h"

/* 200 with the event-stream headers; extra_headers as in http_respond. */
void sse_begin(http_conn *c, const char *extra_headers);
/* One event carrying len bytes of data (JSON, normally one line). */
void sse_event(http_conn *c, const char *data, size_t len);
/* "data: [DONE]" and the end of the response. */
void sse_done(http_conn *c);

#endif
