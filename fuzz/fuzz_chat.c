/*
 * fuzz_chat — the chat-template renderer (src/tokenizer/chat.c): template
 * recognition from arbitrary template text (chat_detect, the ChatML default
 * system prompt extraction) and every style's renderer over arbitrary
 * conversations.
 *
 * Input: one flag byte, then parts split on FUZZ_SEP (fuzz_util.h):
 *   flags    bit 0: add_generation_prompt; bits 1-7: style — 0 detects it
 *            from the template, k picks zt_chat_template_names()[k - 1],
 *            and past the list an unknown name (refused)
 *   part 0   the model's tokenizer.chat_template
 *   part 1   the messages, separated by 0x1E; each message's first byte
 *            picks the role (mod 4: system, user, assistant, or "tool",
 *            which must be refused), the rest is its content
 *   part 2   the text of the BOS token, part 3 of the EOS token
 * A render that succeeds must produce a NUL-terminated string.
 */
#include "fuzz/fuzz_util.h"
#include "model/model.h"
#include "util/error.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MSGS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t flags = data[0];
    fuzz_part parts[FUZZ_MAX_PARTS];
    int n_parts = fuzz_split(data + 1, size - 1, parts, FUZZ_MAX_PARTS);

    zt_model *m = model_new("fuzz-chat");
    if (!m) abort();
    char *tmpl = fuzz_strndup(parts[0].p, parts[0].n);
    char *bos = fuzz_strndup(n_parts > 2 ? parts[2].p : (const uint8_t *)"<s>",
                             n_parts > 2 ? parts[2].n : 3);
    char *eos = fuzz_strndup(n_parts > 3 ? parts[3].p : (const uint8_t *)"</s>",
                             n_parts > 3 ? parts[3].n : 4);
    const char *vocab[3] = {"<unk>", bos, eos};
    if (model_set_str(m, "tokenizer.chat_template", tmpl) ||
        model_set_str_arr(m, "tokenizer.ggml.tokens", vocab, 3) ||
        model_set_u32(m, "tokenizer.ggml.bos_token_id", 1) ||
        model_set_u32(m, "tokenizer.ggml.eos_token_id", 2))
        abort();

    static const char *const roles[4] = {"system", "user", "assistant", "tool"};
    zt_chat_msg msgs[MAX_MSGS];
    char *contents[MAX_MSGS];
    int n_msgs = 0;
    if (n_parts > 1) {
        const uint8_t *p = parts[1].p, *end = p + parts[1].n;
        while (p < end && n_msgs < MAX_MSGS) {
            const uint8_t *e = memchr(p, 0x1e, (size_t)(end - p));
            if (!e) e = end;
            if (e > p) {
                contents[n_msgs] = fuzz_strndup(p + 1, (size_t)(e - p - 1));
                msgs[n_msgs] = (zt_chat_msg){roles[*p % 4], contents[n_msgs]};
                n_msgs++;
            }
            p = e + 1;
        }
    }

    const char *const *names = zt_chat_template_names();
    int n_names = 0;
    while (names[n_names]) n_names++;
    int pick = flags >> 1;
    const char *name = pick == 0 ? NULL : pick <= n_names ? names[pick - 1] : "no-such-style";

    zt_error err = {0};
    char *out = NULL;
    int rc = zt_chat_render(m, name, msgs, n_msgs, flags & 1, &out, &err);
    if (rc == ZT_OK) {
        if (!out) abort();
        zt_chat_text_has_bos(m, out);
        free(out);
    } else if (!err.msg[0] || out) {
        abort(); /* a refusal says why and returns nothing */
    }
    const char *style = NULL;
    bool recognized;
    zt_chat_template_resolve(m, name, &style, &recognized, &err);

    for (int i = 0; i < n_msgs; i++) free(contents[i]);
    free(tmpl);
    free(bos);
    free(eos);
    zt_model_free(m);
    return 0;
}
