/*
 * fuzz_openai — the HTTP server's JSON request bodies
 * (src/server/openai.c, oai_parse_request) for /v1/chat/completions and
 * /v1/completions, and the error JSON written for a refusal.
 *
 * The first input byte picks the endpoint (bit 0), the rest is the body.
 * A body that parses must hold what the parser promises (messages with a
 * role and content, stop strings, token ids); a refusal must be a 4xx with
 * a message, and its error object must itself be valid JSON.
 */
#include "server/openai.h"
#include "util/json.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    oai_kind kind = data[0] & 1 ? OAI_COMPLETION : OAI_CHAT;
    oai_request r;
    oai_error e;
    memset(&r, 0, sizeof r);
    memset(&e, 0, sizeof e);
    if (oai_parse_request(kind, (const char *)data + 1, size - 1, &r, &e)) {
        for (int i = 0; i < r.n_msgs; i++)
            if (!r.msgs[i].role || !r.msgs[i].content) abort();
        for (int i = 0; i < r.n_stop; i++)
            if (!r.stop[i]) abort();
        if (r.n_prompt_ids && !r.prompt_ids) abort();
    } else {
        if (e.status < 400 || e.status > 599 || !e.message[0]) abort();
        json_buf b = {0};
        oai_error_json(&b, &e);
        zt_error err;
        json_value *v = json_parse(b.data, b.len, &err);
        if (!v) abort(); /* the error body is not JSON */
        json_free(v);
        json_buf_free(&b);
    }
    oai_request_free(&r);
    return 0;
}
