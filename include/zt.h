/*
 * zt.h — the public API of zt, LLM inference on hand-written kernels.
 *
 * Every function that can fail returns ZT_OK (0) or a negative ZT_E* code
 * and, when `err` is not NULL, fills it with a one-line message that names
 * the file or argument at fault. The library never exits or aborts on input.
 *
 * Objects:
 *   zt_model      weights + config + tokenizer metadata, from a GGUF file
 *                 or a Hugging Face directory (config.json + *.safetensors)
 *   zt_tokenizer  text <-> token ids, exact to the model's reference
 *   zt_engine     a backend + a paged KV cache; runs batches of
 *                 (sequence, position, token) rows and returns logits
 *   zt_sampler    logits -> next token (greedy, temperature, top-k/p, ...)
 */
#ifndef ZT_H
#define ZT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ---------------------------------------------------------- */

enum {
    ZT_OK = 0,
    ZT_EINVAL = -1,  /* bad argument or malformed input */
    ZT_EIO = -2,     /* cannot open/read/write a file */
    ZT_ENOMEM = -3,  /* allocation failed */
    ZT_EFORMAT = -4, /* file is not what it claims to be */
    ZT_EUNSUP = -5,  /* valid but not supported (type, arch, version) */
    ZT_EFULL = -6,   /* KV cache pages or context exhausted */
    ZT_EBACKEND = -7 /* the backend (GPU driver, device) failed */
};

typedef struct zt_error {
    int code;
    char msg[512];
} zt_error;

/* ---- model ----------------------------------------------------------- */

typedef struct zt_model zt_model;

/* Loads a .gguf file or a Hugging Face model directory. Weights are
 * mmapped where the format allows, so loading is cheap. */
int zt_model_load(const char *path, zt_model **out, zt_error *err);
void zt_model_free(zt_model *model);

/* ---- tokenizer ------------------------------------------------------- */

typedef struct zt_tokenizer zt_tokenizer;

enum {
    ZT_TOK_ADD_BOS = 1 << 0,       /* prepend BOS when the model wants it */
    ZT_TOK_PARSE_SPECIAL = 1 << 1, /* "<|end|>" in text becomes its id */
    ZT_TOK_DEFAULT = ZT_TOK_ADD_BOS | ZT_TOK_PARSE_SPECIAL
};

/* From the model's metadata (GGUF tokenizer.ggml.* or HF tokenizer.json). */
int zt_tokenizer_create(const zt_model *model, zt_tokenizer **out, zt_error *err);
void zt_tokenizer_free(zt_tokenizer *tok);

/* Encodes `len` bytes of `text`. *ids is malloc'd; the caller frees it. */
int zt_tokenize(const zt_tokenizer *tok, const char *text, size_t len, int flags,
                int32_t **ids, int *n_ids, zt_error *err);

int zt_tokenizer_n_vocab(const zt_tokenizer *tok);
int32_t zt_tokenizer_bos(const zt_tokenizer *tok); /* -1 when none */
int32_t zt_tokenizer_eos(const zt_tokenizer *tok); /* -1 when none */
/* True for ids that end generation: EOS, end-of-turn tokens (Phi-3's
 * <|end|>, Llama 3's <|eot_id|>, ...). */
bool zt_tokenizer_is_stop(const zt_tokenizer *tok, int32_t id);

/* Streaming detokenizer: feeds ids, emits text only at whole UTF-8
 * characters. `out` receives NUL-terminated text (possibly empty); cap must
 * be at least 5 bytes, and text that does not fit stays queued (flush until
 * it returns 0). As HF decoding does, the leading space of the very first
 * piece is dropped: to stream a continuation of a prompt, push the prompt's
 * ids first and discard their text. */
typedef struct zt_detok zt_detok;
int zt_detok_create(const zt_tokenizer *tok, zt_detok **out, zt_error *err);
/* Appends the text of `id` to out (cap bytes, NUL-terminated); returns the
 * number of bytes written or a negative error. */
int zt_detok_push(zt_detok *d, int32_t id, char *out, size_t cap);
int zt_detok_flush(zt_detok *d, char *out, size_t cap);
void zt_detok_free(zt_detok *d);

/* ---- engine ---------------------------------------------------------- */

typedef struct zt_engine zt_engine;

typedef struct zt_engine_opts {
    const char *backend; /* "cpu", "cuda", "vulkan", "webgpu", "auto" (NULL = auto) */
    int n_ctx;           /* max positions per sequence (0 = model's) */
    int n_seq;           /* sequences that may be live at once (0 = 1) */
    int n_threads;       /* CPU threads (0 = all cores) */
    int max_batch;       /* rows per forward (0 = 512) */
    const char *kv_type; /* "f16" or "q8" (NULL = f16) */
} zt_engine_opts;

int zt_engine_create(const zt_model *model, const zt_engine_opts *opts, zt_engine **out,
                     zt_error *err);
void zt_engine_free(zt_engine *eng);
const char *zt_engine_backend_name(const zt_engine *eng);
int zt_engine_n_vocab(const zt_engine *eng);
int zt_engine_n_ctx(const zt_engine *eng);

/* A sequence slot: its KV pages live in the engine's shared pool. */
int zt_seq_open(zt_engine *eng, int *seq, zt_error *err);
void zt_seq_close(zt_engine *eng, int seq);
/* Keeps the first n_pos positions and frees the pages past them. */
void zt_seq_truncate(zt_engine *eng, int seq, int n_pos);
int zt_seq_len(const zt_engine *eng, int seq);

/* One row of a batch: run `token` at `pos` of sequence `seq`. */
typedef struct zt_row {
    int32_t seq, pos, token;
    bool want_logits;
} zt_row;

/* Runs the rows (positions of one sequence must be consecutive and follow
 * what the sequence already holds). For each row with want_logits, in row
 * order, writes vocab floats to `logits` (may be NULL) and the argmax id to
 * `argmax` (may be NULL; backends compute it on the device). */
int zt_engine_forward(zt_engine *eng, const zt_row *rows, int n_rows, float *logits,
                      int32_t *argmax, zt_error *err);

/* GPU kernel launches of the last forward call, or -1 when not counted. */
int zt_engine_dispatches(const zt_engine *eng);

/* KV pages: total and in use (for /metrics and zt info). */
void zt_engine_kv_pages(const zt_engine *eng, int *used, int *total);

/* ---- sampler --------------------------------------------------------- */

/* Order of operations (documented in src/engine/sampler.c):
 * penalties -> greedy shortcut (temperature <= 0) -> top-k -> temperature
 * -> softmax -> top-p -> min-p -> draw. */
typedef struct zt_sampler_params {
    float temperature;        /* <= 0: greedy (argmax) */
    int top_k;                /* <= 0: off */
    float top_p;              /* >= 1: off */
    float min_p;              /* <= 0: off */
    float repeat_penalty;     /* 1: off */
    float frequency_penalty;  /* 0: off */
    float presence_penalty;   /* 0: off */
    int penalty_last_n;       /* tokens of history the penalties see */
    uint64_t seed;
} zt_sampler_params;

typedef struct zt_sampler zt_sampler;
zt_sampler_params zt_sampler_defaults(void);
int zt_sampler_create(const zt_sampler_params *p, int n_vocab, zt_sampler **out, zt_error *err);
void zt_sampler_free(zt_sampler *s);
/* Remembers a token for the penalties (prompt and generated). */
void zt_sampler_accept(zt_sampler *s, int32_t id);
void zt_sampler_reset(zt_sampler *s); /* clears the history and re-seeds */
/* Picks the next token; the penalties modify `logits` (n_vocab floats) in
 * place. */
int32_t zt_sampler_sample(zt_sampler *s, float *logits);
/* True when sampling is a plain argmax (no penalties), so the backend's
 * on-device argmax can stand in for the logits. */
bool zt_sampler_is_greedy(const zt_sampler *s);

/* ---- chat templates -------------------------------------------------- */

typedef struct zt_chat_msg {
    const char *role; /* "system", "user", "assistant" */
    const char *content;
} zt_chat_msg;

/* Renders messages with the model's chat template, or with `name` when not
 * NULL (one of zt_chat_template_names()). *out is malloc'd. */
int zt_chat_render(const zt_model *model, const char *name, const zt_chat_msg *msgs, int n_msgs,
                   bool add_generation_prompt, char **out, zt_error *err);
const char *const *zt_chat_template_names(void); /* NULL-terminated */

/* Says which template zt_chat_render(model, name, ...) uses: *style gets a
 * name from zt_chat_template_names(). *recognized is false when `name` is
 * NULL and the model's template is missing or not recognized: zt then
 * renders plain ChatML and the caller should warn. Unknown name: ZT_EINVAL. */
int zt_chat_template_resolve(const zt_model *model, const char *name, const char **style,
                             bool *recognized, zt_error *err);

/* True when a rendered prompt starts with the model's BOS text. Tokenize
 * with ZT_TOK_ADD_BOS only when this is false, so a prompt never gets two. */
bool zt_chat_text_has_bos(const zt_model *model, const char *text);

#ifdef __cplusplus
}
#endif
#endif
