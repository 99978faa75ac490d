/* The generation loop shared by `zt run` and `zt chat`: one sequence,
 * prompt tokens prefilled with reuse of the prefix already in the KV cache,
 * then sample -> stream -> forward until a stop token, the token budget,
 * the context limit or an interrupt. */
#ifndef ZT_CLI_GENERATE_H
#define ZT_CLI_GENERATE_H

#include <signal.h>
#include <stdio.h>

#include "cli/args.h"
#include "zt.h"

typedef struct gen_stats {
    int n_prompt;      /* prompt tokens of this call */
    int n_reused;      /* of them, already in the KV cache */
    int n_gen;         /* tokens generated */
    double prefill_s, decode_s;
    const char *stop;  /* "stop token", "length", "context", "interrupted" */
} gen_stats;

/* The engine and sampling options of the command line (gen_options). */
typedef struct gen_opts {
    zt_engine_opts eo;
    zt_sampler_params sp;
    bool ignore_eos; /* generate past stop tokens (as llama.cpp's --ignore-eos) */
} gen_opts;

typedef struct gen_session {
    zt_model *model;
    zt_tokenizer *tok;
    zt_engine *eng;
    zt_sampler *smp;
    int seq;
    int32_t *cached;   /* [n_ctx] tokens whose K/V the sequence holds */
    int n_cached;
    float *logits;     /* [n_vocab] */
    bool ignore_eos;
} gen_session;

/* Model, tokenizer, engine (one sequence of n_ctx) and sampler from the
 * common options: --backend --threads --ctx --kv --temp --top-k --top-p
 * --min-p --repeat-penalty --repeat-last-n --frequency-penalty
 * --presence-penalty --seed --ignore-eos. Errors are printed. */
int gen_open(gen_session *g, cli_args *a, const char *model_path, const gen_opts *opt);
/* Parses the sampling and engine options (before args_done). */
void gen_options(cli_args *a, gen_opts *opt);
void gen_close(gen_session *g);

/* Prefills `ids` (truncating the KV cache to the longest common prefix
 * with what it holds), then generates up to max_tokens (<0: until the
 * context is full), writing text to `out` as it completes. *interrupt is
 * polled between tokens. A continuation's text keeps the space that joins
 * it to the prompt (plain completion); a chat reply starts clean. When
 * reply is not NULL, *reply receives the
 * generated text (malloc'd, may be NULL when nothing was generated). */
int gen_complete(gen_session *g, const int32_t *ids, int n, bool continuation, int max_tokens,
                 FILE *out, volatile sig_atomic_t *interrupt, char **reply, gen_stats *st,
                 zt_error *err);

#endif
