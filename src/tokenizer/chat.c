/*
 * chat.c — chat templates: a list of (role, content) messages -> the prompt
 * text the model was tuned on.
 *
 * A model ships its chat format as a Jinja template (GGUF metadata key
 * tokenizer.chat_template). zt has no Jinja interpreter. Instead it recognizes
 * the template's family from distinctive substrings (chat_detect) and renders
 * it with a small hand-written C function per family. Every renderer is
 * byte-exact to the reference — @huggingface/jinja, the Jinja that
 * transformers.js runs, with trim_blocks and lstrip_blocks as transformers
 * sets them — on the published templates in tests/chat/ over the
 * conversations of tools/make_chat_fixtures.mjs (tests/chat/expected.json;
 * tests/unit/test_chat.c checks every case).
 *
 * Styles (zt_chat_template_names(); `--chat-template NAME` forces one):
 *   phi3          Phi-3-mini-4k (its GGUF template): BOS, system dropped,
 *                 "<|assistant|>\n" after every user turn
 *   phi3.5        Phi-3.5-mini: <|system|>/<|user|>/<|assistant|> + <|end|>,
 *                 EOS when no generation prompt
 *   llama2        Llama 2 chat: <s>[INST] <<SYS>>...<</SYS>> ... [/INST]
 *   llama3        Llama 3: <|start_header_id|>role<|end_header_id|>
 *   llama3.1      Llama 3.1/3.2/3.3: llama3 plus a system header that always
 *                 says "Cutting Knowledge Date: December 2023" and
 *                 "Today Date: 26 Jul 2024" (the 3.1 template's own default;
 *                 3.2's asks strftime_now for today's date — zt pins the date
 *                 so that a prompt renders the same every day, as the reference
 *                 does when given date_string = "26 Jul 2024")
 *   chatml        <|im_start|>role\n...<|im_end|>\n; a template that inserts a
 *                 default system prompt when none is given (Qwen2's shape) gets
 *                 that prompt, read out of the template text
 *   qwen2, qwen2.5  chatml with Qwen's default system prompts
 *   mistral-v0.1, mixtral, mistral-v0.2   the [INST] ... [/INST] styles of
 *                 Mistral's v1 tokenizer (space and system-prompt variants)
 *   mistral-v0.3  v3 tokenizer: system prompt joins the *last* user turn
 *   mistral-nemo  v3-tekken: as v0.3 without the spaces and the trim
 *   zephyr        <|user|>\n...</s>\n (also TinyLlama-chat)
 *   gemma         <start_of_turn>user ... <end_of_turn>, assistant -> "model"
 *
 * What the templates do is kept, not "fixed": roles a template ignores are
 * dropped (Phi-3-mini drops system messages), and a template's
 * raise_exception(...) becomes ZT_EINVAL with the template's own message
 * (Mistral v0.1 and Gemma refuse system messages; several refuse two user
 * turns in a row).
 *
 * Whitespace: Jinja's trim / str.strip run as JavaScript's String.trim in the
 * reference; chat_trim removes that set (Python's differs only in U+FEFF,
 * U+001C..U+001F and U+0085). Llama 2's `system_message != false` is loose
 * JavaScript equality in the reference, so an empty or all-whitespace system
 * message is left out there, and here (transformers would print an empty
 * <<SYS>> block).
 *
 * Unrecognized or missing templates render as plain chatml;
 * zt_chat_template_resolve (chat.h) reports recognized = false so that the
 * caller can warn. BOS: a template prints the BOS text itself or not at all
 * (phi3, llama*, mistral*, gemma do; chatml, qwen*, phi3.5, zephyr don't);
 * chat.h says how a caller avoids a second BOS when tokenizing.
 */

#include "model/model.h"
#include "util/error.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum chat_role { ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT };
static const char *const chat_role_names[] = {"system", "user", "assistant"};

/* ---- output buffer --------------------------------------------------- */

typedef struct chat_buf {
    char *p; /* [cap] NUL-terminated text, owned */
    size_t len, cap;
    bool oom; /* an append failed; the text is incomplete */
} chat_buf;

static void buf_put(chat_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_puts(chat_buf *b, const char *s) { buf_put(b, s, strlen(s)); }

/* ---- whitespace (JavaScript's String.prototype.trim set) -------------- */

static bool chat_is_space(uint32_t cp) {
    switch (cp) {
    case 0x09:
    case 0x0A:
    case 0x0B:
    case 0x0C:
    case 0x0D:
    case 0x20:
    case 0xA0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202F:
    case 0x205F:
    case 0x3000:
    case 0xFEFF:
        return true;
    default:
        return cp >= 0x2000 && cp <= 0x200A;
    }
}

/* Decodes the UTF-8 character of n bytes at s; 0xFFFFFFFF when malformed. */
static uint32_t utf8_decode(const unsigned char *s, size_t n) {
    if (n == 1) return s[0] < 0x80 ? s[0] : 0xFFFFFFFFu;
    uint32_t cp = s[0] & (0x7F >> n);
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0xFFFFFFFFu;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    return cp;
}

/* Byte length of the UTF-8 character starting with byte c (1 when invalid). */
static size_t utf8_len(unsigned char c) {
    if (c >= 0xF0 && c < 0xF8) return 4;
    if (c >= 0xE0) return c < 0xF0 ? 3 : 1;
    if (c >= 0xC0) return 2;
    return 1;
}

typedef struct chat_span {
    const char *p;
    size_t n;
} chat_span;

/* s without leading and trailing whitespace (a view into s). */
static chat_span chat_trim_n(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    size_t a = 0, b = n;
    while (a < b) {
        size_t k = utf8_len(u[a]);
        if (a + k > b || !chat_is_space(utf8_decode(u + a, k))) break;
        a += k;
    }
    while (b > a) {
        size_t k = 1; /* step back over continuation bytes to a lead byte */
        while (k < 4 && b - k > a && (u[b - k] & 0xC0) == 0x80) k++;
        if (utf8_len(u[b - k]) != k || !chat_is_space(utf8_decode(u + b - k, k))) break;
        b -= k;
    }
    return (chat_span){s + a, b - a};
}

static chat_span chat_trim(const char *s) { return chat_trim_n(s, strlen(s)); }

/* ---- rendering context ----------------------------------------------- */

struct chat_style;

typedef struct chat_msg {
    int role;            /* enum chat_role */
    const char *content; /* NUL-terminated, not owned */
} chat_msg;

typedef struct chat_ctx {
    const struct chat_style *style;
    const chat_msg *msgs; /* [n] */
    int n;
    bool gen;                   /* add_generation_prompt */
    const char *bos, *eos;      /* token text from the vocabulary ("" when none) */
    const char *default_system; /* chatml: inserted when msgs[0] is not system */
    chat_buf out;
    zt_error *err;
} chat_ctx;

typedef int (*chat_render_fn)(chat_ctx *c);

typedef struct chat_style {
    const char *name;
    chat_render_fn render;
    const char *default_system; /* chatml family: NULL = none */
    unsigned flags;             /* CHAT_* below */
} chat_style;

enum {
    CHAT_EOS_SPACE = 1 << 0, /* mistral-v0.1: "</s> " after an answer */
    CHAT_V1_SYSTEM = 1 << 1, /* mistral-v0.2: optional system, " [INST] " */
    CHAT_TEKKEN = 1 << 2     /* mistral-nemo: no spaces, no trim */
};

/* The template's raise_exception(msg). */
static int chat_raise(chat_ctx *c, const char *msg) {
    return zt_fail(c->err, ZT_EINVAL, "chat template '%s': %s", c->style->name, msg);
}

static void put_trimmed(chat_ctx *c, const char *s) {
    chat_span t = chat_trim(s);
    buf_put(&c->out, t.p, t.n);
}

/* Jinja's `(message.role == 'user') != (index % 2 == 0)`: the turn is out of order. */
static bool chat_out_of_turn(const chat_msg *m, int index) {
    return (m->role == ROLE_USER) != (index % 2 == 0);
}

static const char MSG_ALTERNATE[] =
    "Conversation roles must alternate user/assistant/user/assistant/...";
static const char MSG_ALTERNATE_SYS[] =
    "After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...";
static const char MSG_ONLY_UA_SYS[] =
    "Only user and assistant roles are supported, with the exception of an initial optional "
    "system message!";

/* ---- the renderers --------------------------------------------------- */

static int render_phi3(chat_ctx *c) {
    buf_puts(&c->out, c->bos);
    for (int i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (m->role == ROLE_USER) {
            buf_puts(&c->out, "<|user|>\n");
            buf_puts(&c->out, m->content);
            buf_puts(&c->out, "<|end|>\n<|assistant|>\n");
        } else if (m->role == ROLE_ASSISTANT) {
            buf_puts(&c->out, m->content);
            buf_puts(&c->out, "<|end|>\n");
        }
    }
    return ZT_OK;
}

static int render_phi35(chat_ctx *c) {
    for (int i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (m->role == ROLE_SYSTEM && !m->content[0]) continue;
        buf_puts(&c->out, m->role == ROLE_SYSTEM ? "<|system|>\n"
                          : m->role == ROLE_USER ? "<|user|>\n"
                                                 : "<|assistant|>\n");
        buf_puts(&c->out, m->content);
        buf_puts(&c->out, "<|end|>\n");
    }
    buf_puts(&c->out, c->gen ? "<|assistant|>\n" : c->eos);
    return ZT_OK;
}

static int render_llama2(chat_ctx *c) {
    int first = 0;
    const char *sys = NULL;
    if (c->msgs[0].role == ROLE_SYSTEM) {
        first = 1;
        sys = c->msgs[0].content;
        if (chat_trim(sys).n == 0) sys = NULL; /* "" == false in the reference */
    }
    chat_buf turn = {0};
    for (int i = first; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        int k = i - first;
        if (chat_out_of_turn(m, k)) {
            free(turn.p);
            return chat_raise(c, MSG_ALTERNATE);
        }
        /* the system block is part of the text that .strip() sees */
        turn.len = 0;
        if (k == 0 && sys) {
            buf_puts(&turn, "<<SYS>>\n");
            buf_puts(&turn, sys);
            buf_puts(&turn, "\n<</SYS>>\n\n");
        }
        buf_puts(&turn, m->content);
        if (turn.oom) break;
        chat_span t = chat_trim_n(turn.p, turn.len);
        if (m->role == ROLE_USER) {
            buf_puts(&c->out, c->bos);
            buf_puts(&c->out, "[INST] ");
            buf_put(&c->out, t.p, t.n);
            buf_puts(&c->out, " [/INST]");
        } else if (m->role == ROLE_ASSISTANT) {
            buf_puts(&c->out, " ");
            buf_put(&c->out, t.p, t.n);
            buf_puts(&c->out, " ");
            buf_puts(&c->out, c->eos);
        }
    }
    c->out.oom |= turn.oom;
    free(turn.p);
    return ZT_OK;
}

static void llama3_turn(chat_ctx *c, const chat_msg *m) {
    buf_puts(&c->out, "<|start_header_id|>");
    buf_puts(&c->out, chat_role_names[m->role]);
    buf_puts(&c->out, "<|end_header_id|>\n\n");
    put_trimmed(c, m->content);
    buf_puts(&c->out, "<|eot_id|>");
}

static void llama3_generation_prompt(chat_ctx *c) {
    if (c->gen) buf_puts(&c->out, "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

static int render_llama3(chat_ctx *c) {
    buf_puts(&c->out, c->bos);
    for (int i = 0; i < c->n; i++) llama3_turn(c, &c->msgs[i]);
    llama3_generation_prompt(c);
    return ZT_OK;
}

static int render_llama31(chat_ctx *c) {
    int first = c->msgs[0].role == ROLE_SYSTEM ? 1 : 0;
    buf_puts(&c->out, c->bos);
    buf_puts(&c->out, "<|start_header_id|>system<|end_header_id|>\n\n"
                      "Cutting Knowledge Date: December 2023\n"
                      "Today Date: 26 Jul 2024\n\n");
    if (first) put_trimmed(c, c->msgs[0].content);
    buf_puts(&c->out, "<|eot_id|>");
    for (int i = first; i < c->n; i++) llama3_turn(c, &c->msgs[i]);
    llama3_generation_prompt(c);
    return ZT_OK;
}

static int render_chatml(chat_ctx *c) {
    if (c->default_system && c->msgs[0].role != ROLE_SYSTEM) {
        buf_puts(&c->out, "<|im_start|>system\n");
        buf_puts(&c->out, c->default_system);
        buf_puts(&c->out, "<|im_end|>\n");
    }
    for (int i = 0; i < c->n; i++) {
        buf_puts(&c->out, "<|im_start|>");
        buf_puts(&c->out, chat_role_names[c->msgs[i].role]);
        buf_puts(&c->out, "\n");
        buf_puts(&c->out, c->msgs[i].content);
        buf_puts(&c->out, "<|im_end|>\n");
    }
    if (c->gen) buf_puts(&c->out, "<|im_start|>assistant\n");
    return ZT_OK;
}

/* Mistral's v1 tokenizer styles. v0.1 and Mixtral know no system message and
 * check turn order message by message; v0.2 takes an optional first system
 * message into the first user turn. */
static int render_mistral_v1(chat_ctx *c) {
    bool with_system = c->style->flags & CHAT_V1_SYSTEM;
    int first = 0;
    const char *sys = NULL;
    if (with_system && c->msgs[0].role == ROLE_SYSTEM) {
        first = 1;
        sys = c->msgs[0].content;
    }
    const char *inst = with_system ? " [INST] " : "[INST] ";
    buf_puts(&c->out, c->bos);
    for (int i = first; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        int k = i - first;
        if (chat_out_of_turn(m, k))
            return chat_raise(c, with_system ? MSG_ALTERNATE_SYS : MSG_ALTERNATE);
        if (m->role == ROLE_USER) {
            buf_puts(&c->out, inst);
            if (k == 0 && sys) {
                buf_puts(&c->out, sys);
                buf_puts(&c->out, "\n\n");
            }
            buf_puts(&c->out, m->content);
            buf_puts(&c->out, " [/INST]");
        } else if (m->role == ROLE_ASSISTANT) {
            if (with_system) buf_puts(&c->out, " ");
            buf_puts(&c->out, m->content);
            buf_puts(&c->out, c->eos);
            if (c->style->flags & CHAT_EOS_SPACE) buf_puts(&c->out, " ");
        } else {
            return chat_raise(c, with_system ? MSG_ONLY_UA_SYS
                                             : "Only user and assistant roles are supported!");
        }
    }
    return ZT_OK;
}

/* Mistral's v3 and v3-tekken tokenizer styles: the turn order is checked
 * before anything is printed, and the system message joins the last user
 * turn (so it vanishes when the conversation ends with an answer). */
static int render_mistral_v3(chat_ctx *c) {
    bool tekken = c->style->flags & CHAT_TEKKEN;
    int first = c->msgs[0].role == ROLE_SYSTEM ? 1 : 0;
    const char *sys = first ? c->msgs[0].content : NULL;
    for (int i = first; i < c->n; i++)
        if (chat_out_of_turn(&c->msgs[i], i - first)) return chat_raise(c, MSG_ALTERNATE_SYS);
    buf_puts(&c->out, c->bos);
    for (int i = first; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (m->role == ROLE_USER) {
            buf_puts(&c->out, tekken ? "[INST]" : "[INST] ");
            if (i == c->n - 1 && sys) {
                buf_puts(&c->out, sys);
                buf_puts(&c->out, "\n\n");
            }
            buf_puts(&c->out, m->content);
            buf_puts(&c->out, "[/INST]");
        } else if (m->role == ROLE_ASSISTANT) {
            if (tekken) {
                buf_puts(&c->out, m->content);
            } else {
                buf_puts(&c->out, " ");
                put_trimmed(c, m->content);
            }
            buf_puts(&c->out, c->eos);
        } else {
            return chat_raise(c, MSG_ONLY_UA_SYS);
        }
    }
    return ZT_OK;
}

static int render_zephyr(chat_ctx *c) {
    static const char *const tags[] = {"<|system|>\n", "<|user|>\n", "<|assistant|>\n"};
    for (int i = 0; i < c->n; i++) {
        buf_puts(&c->out, tags[c->msgs[i].role]);
        buf_puts(&c->out, c->msgs[i].content);
        buf_puts(&c->out, c->eos);
        buf_puts(&c->out, "\n");
    }
    if (c->gen) buf_puts(&c->out, "<|assistant|>\n");
    return ZT_OK;
}

static int render_gemma(chat_ctx *c) {
    if (c->msgs[0].role == ROLE_SYSTEM) return chat_raise(c, "System role not supported");
    buf_puts(&c->out, c->bos);
    for (int i = 0; i < c->n; i++) {
        const chat_msg *m = &c->msgs[i];
        if (chat_out_of_turn(m, i)) return chat_raise(c, MSG_ALTERNATE);
        buf_puts(&c->out, "<start_of_turn>");
        buf_puts(&c->out, m->role == ROLE_ASSISTANT ? "model" : chat_role_names[m->role]);
        buf_puts(&c->out, "\n");
        put_trimmed(c, m->content);
        buf_puts(&c->out, "<end_of_turn>\n");
    }
    if (c->gen) buf_puts(&c->out, "<start_of_turn>model\n");
    return ZT_OK;
}

/* ---- the styles ------------------------------------------------------ */

static const char QWEN2_SYSTEM[] = "You are a helpful assistant.";
static const char QWEN25_SYSTEM[] =
    "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";

static const chat_style chat_styles[] = {
    {"phi3", render_phi3, NULL, 0},
    {"phi3.5", render_phi35, NULL, 0},
    {"llama2", render_llama2, NULL, 0},
    {"llama3", render_llama3, NULL, 0},
    {"llama3.1", render_llama31, NULL, 0},
    {"chatml", render_chatml, NULL, 0},
    {"qwen2", render_chatml, QWEN2_SYSTEM, 0},
    {"qwen2.5", render_chatml, QWEN25_SYSTEM, 0},
    {"mistral-v0.1", render_mistral_v1, NULL, CHAT_EOS_SPACE},
    {"mixtral", render_mistral_v1, NULL, 0},
    {"mistral-v0.2", render_mistral_v1, NULL, CHAT_V1_SYSTEM},
    {"mistral-v0.3", render_mistral_v3, NULL, 0},
    {"mistral-nemo", render_mistral_v3, NULL, CHAT_TEKKEN},
    {"zephyr", render_zephyr, NULL, 0},
    {"gemma", render_gemma, NULL, 0},
};
enum { N_STYLES = sizeof chat_styles / sizeof chat_styles[0] };

static const char *const chat_names[] = {"phi3",         "phi3.5",  "llama2",       "llama3",
                                         "llama3.1",     "chatml",  "qwen2",        "qwen2.5",
                                         "mistral-v0.1", "mixtral", "mistral-v0.2", "mistral-v0.3",
                                         "mistral-nemo", "zephyr",  "gemma",        NULL};
_Static_assert(sizeof chat_names / sizeof chat_names[0] == N_STYLES + 1,
               "chat_names lists every style of chat_styles, in order");

const char *const *zt_chat_template_names(void) { return chat_names; }

static const chat_style *chat_style_named(const char *name) {
    for (int i = 0; i < N_STYLES; i++)
        if (strcmp(chat_styles[i].name, name) == 0) return &chat_styles[i];
    return NULL;
}

/* ---- recognizing a template ------------------------------------------ */

static bool has(const char *t, const char *s) { return strstr(t, s) != NULL; }

/* The default system prompt of a ChatML template of Qwen2's shape,
 *   {{ '<|im_start|>system\nDEFAULT<|im_end|>\n' }}
 * printed when the conversation brings no system message: the first
 * "<|im_start|>system" + newline (literal or the escape \n) followed by plain
 * text — no quote or brace, so not an expression — up to "<|im_end|>".
 * Returns the text with Jinja string escapes resolved (malloc'd), or NULL. */
static char *chatml_default_system(const char *t) {
    static const char open[] = "<|im_start|>system";
    for (const char *p = strstr(t, open); p; p = strstr(p + 1, open)) {
        const char *s = p + sizeof open - 1;
        if (*s == '\n')
            s += 1;
        else if (s[0] == '\\' && s[1] == 'n')
            s += 2;
        else
            continue;
        const char *e = strstr(s, "<|im_end|>");
        if (!e || e == s || memchr(s, '\'', (size_t)(e - s)) || memchr(s, '"', (size_t)(e - s)) ||
            memchr(s, '{', (size_t)(e - s)) || memchr(s, '}', (size_t)(e - s)))
            continue;
        char *out = malloc((size_t)(e - s) + 1), *o = out;
        if (!out) return NULL;
        for (const char *q = s; q < e; q++) {
            if (*q == '\\' && q + 1 < e) {
                char x = *++q;
                *o++ = x == 'n' ? '\n' : x == 't' ? '\t' : x == 'r' ? '\r' : x;
            } else {
                *o++ = *q;
            }
        }
        *o = '\0';
        return out;
    }
    return NULL;
}

/* Picks the style of template text t, or NULL when it is not one zt knows.
 * For chatml templates *default_system may receive a malloc'd default prompt
 * that none of the named styles has. */
static const chat_style *chat_detect(const char *t, char **default_system) {
    *default_system = NULL;
    if (!t || !*t) return NULL;
    /* reasoning templates (Qwen3, SmolLM3) build system headers zt doesn't */
    if (has(t, "<think>") || has(t, "enable_thinking")) return NULL;
    if (has(t, "<|start_header_id|>"))
        return chat_style_named(has(t, "Cutting Knowledge Date") ? "llama3.1" : "llama3");
    if (has(t, "<start_of_turn>")) return chat_style_named("gemma");
    if (has(t, "<|im_start|>")) {
        char *d = chatml_default_system(t);
        if (d && strcmp(d, QWEN25_SYSTEM) == 0) {
            free(d);
            return chat_style_named("qwen2.5");
        }
        if (d && strcmp(d, QWEN2_SYSTEM) == 0) {
            free(d);
            return chat_style_named("qwen2");
        }
        *default_system = d;
        return chat_style_named("chatml");
    }
    if (has(t, "<|user|>") && has(t, "<|assistant|>")) {
        if (has(t, "<|end|>")) return chat_style_named(has(t, "<|system|>") ? "phi3.5" : "phi3");
        return chat_style_named("zephyr");
    }
    if (has(t, "[INST]")) {
        if (has(t, "<<SYS>>")) return chat_style_named("llama2");
        if (has(t, " [/INST]")) { /* v1 tokenizer: a space before [/INST] */
            if (has(t, "' [INST] '")) return chat_style_named("mistral-v0.2");
            return chat_style_named(has(t, "eos_token + ' '") ? "mistral-v0.1" : "mixtral");
        }
        if (has(t, "[INST] \"") || has(t, "[INST] '")) return chat_style_named("mistral-v0.3");
        return chat_style_named("mistral-nemo");
    }
    return NULL;
}

static int chat_unknown_name(const char *name, zt_error *err) {
    char known[512];
    size_t n = 0;
    known[0] = '\0';
    for (int i = 0; i < N_STYLES && n < sizeof known; i++)
        n += (size_t)snprintf(known + n, sizeof known - n, "%s%s", i ? ", " : "",
                              chat_styles[i].name);
    return zt_fail(err, ZT_EINVAL, "unknown chat template '%s' (known: %s)", name, known);
}

/* The style for (model, name) and, for a detected chatml template, its
 * default system prompt (malloc'd or NULL). */
static int chat_pick(const zt_model *model, const char *name, const chat_style **style,
                     char **default_system, bool *recognized, zt_error *err) {
    *default_system = NULL;
    if (name) {
        *style = chat_style_named(name);
        if (!*style) return chat_unknown_name(name, err);
        *recognized = true;
        return ZT_OK;
    }
    const char *t = model ? model_get_str(model, "tokenizer.chat_template") : NULL;
    *style = chat_detect(t, default_system);
    *recognized = *style != NULL;
    if (!*style) *style = chat_style_named("chatml");
    return ZT_OK;
}

int zt_chat_template_resolve(const zt_model *model, const char *name, const char **style,
                             bool *recognized, zt_error *err) {
    const chat_style *s;
    char *default_system;
    bool rec;
    int rc = chat_pick(model, name, &s, &default_system, &rec, err);
    if (rc) return rc;
    free(default_system);
    if (style) *style = s->name;
    if (recognized) *recognized = rec;
    return ZT_OK;
}

/* ---- vocabulary tokens ------------------------------------------------ */

/* Text of the token whose id is at metadata key id_key; "" when the model
 * has no such token. */
static const char *chat_vocab_token(const zt_model *m, const char *id_key) {
    int64_t id;
    if (!m || !model_get_int(m, id_key, &id)) return "";
    const zt_kv *kv = model_kv(m, "tokenizer.ggml.tokens");
    if (!kv || kv->type != GGUF_ARRAY || kv->arr_type != GGUF_STRING || id < 0 ||
        (uint64_t)id >= kv->n)
        return "";
    const char *s = ((char *const *)kv->arr)[id];
    return s ? s : "";
}

bool zt_chat_text_has_bos(const zt_model *model, const char *text) {
    const char *bos = chat_vocab_token(model, "tokenizer.ggml.bos_token_id");
    return text && *bos && strncmp(text, bos, strlen(bos)) == 0;
}

/* ---- zt_chat_render ---------------------------------------------------- */

int zt_chat_render(const zt_model *model, const char *name, const zt_chat_msg *msgs, int n_msgs,
                   bool add_generation_prompt, char **out, zt_error *err) {
    if (!out) return zt_fail(err, ZT_EINVAL, "zt_chat_render: out is NULL");
    *out = NULL;
    if (!msgs || n_msgs <= 0) return zt_fail(err, ZT_EINVAL, "no chat messages to render");

    chat_msg *m = malloc((size_t)n_msgs * sizeof *m);
    if (!m) return zt_fail(err, ZT_ENOMEM, "out of memory rendering a chat");
    for (int i = 0; i < n_msgs; i++) {
        const char *role = msgs[i].role ? msgs[i].role : "(null)";
        int r = -1;
        for (int k = 0; k < 3; k++)
            if (strcmp(role, chat_role_names[k]) == 0) r = k;
        if (r < 0) {
            free(m);
            return zt_fail(
                err, ZT_EINVAL,
                "chat message %d: unknown role '%s' (expected system, user or assistant)", i, role);
        }
        if (!msgs[i].content) {
            free(m);
            return zt_fail(err, ZT_EINVAL, "chat message %d (%s) has no content", i, role);
        }
        m[i] = (chat_msg){r, msgs[i].content};
    }

    const chat_style *style;
    char *default_system;
    bool recognized;
    int rc = chat_pick(model, name, &style, &default_system, &recognized, err);
    if (rc) {
        free(m);
        return rc;
    }
    chat_ctx c = {
        .style = style,
        .msgs = m,
        .n = n_msgs,
        .gen = add_generation_prompt,
        .bos = chat_vocab_token(model, "tokenizer.ggml.bos_token_id"),
        .eos = chat_vocab_token(model, "tokenizer.ggml.eos_token_id"),
        .default_system = default_system ? default_system : style->default_system,
        .err = err,
    };
    buf_puts(&c.out, ""); /* so that an empty render is "" rather than NULL */
    rc = style->render(&c);
    if (!rc && c.out.oom) rc = zt_fail(err, ZT_ENOMEM, "out of memory rendering a chat");
    free(default_system);
    free(m);
    if (rc) {
        free(c.out.p);
        return rc;
    }
    *out = c.out.p;
    return ZT_OK;
}
