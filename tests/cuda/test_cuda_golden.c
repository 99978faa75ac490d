/*
 * The CUDA backend end to end, through the engine (issue #4): every golden
 * fixture (tests/fixtures, HF transformers' logits in float64 stored as
 * f32) as the HF directory and as GGUF files `zt convert` writes, held to
 * the bounds of the CPU and Vulkan golden tests (tests/unit/test_golden.c,
 * tests/vulkan/test_vk_golden.c), and greedy continuations that must equal
 * the CPU backend's token for token.
 *
 * Bounds against the reference:
 *   hf, f32, f16 files             max rel L2 <= 2e-3 (the F16 bound)
 *   q8_0 / q4_k_m / q4_0           mean KL and top-1 agreement bounds
 * The CPU holds F32 files to 1e-4 with an f32 KV cache; CUDA cannot take
 * that bound: it stores F32 matrices as F16 at upload (repack.c: every
 * type without a kernel becomes F16, or BF16 past the f16 range) and keeps
 * the KV cache in f16 or int8 only (forward.cu refuses f32). An F32 file on
 * CUDA is therefore the F16 case, and is loaded as it is (no conversion by
 * the test), so the upload's rounding is what gets checked. BF16 (qwen2's
 * HF weights) is kept exactly.
 *
 * Each file runs twice on CUDA: every sequence in one forward, as
 * `zt logits` does (the batched path: tensor-core GEMM on f16 activations
 * and attention tiles; steps of 3 or more rows go there by default), and
 * one row per forward (the decode kernels and their CUDA graph at every
 * position: f32 activations for float weights, int8 for quantized ones).
 * Both are also compared with the CPU backend's logits for the same file
 * and the same f16 cache (max rel L2 <= 3e-2, the bound of
 * test_cuda_forward.c: the backends quantize activations at different
 * points, and an f16 rounding tie in the cache moves these random fixtures'
 * logits by up to ~1%, see test_vk_golden.c).
 *
 * Greedy: the F16 file of each fixture, both prompts of tokens.json, then
 * 16 tokens the way `zt generate` makes them (the prompt in one forward,
 * then one row per step, argmax only, no logits downloaded). The F16 file
 * is the one both backends hold identically (on the F32 file the CPU would
 * run other weights than CUDA, and greedy paths of random models, whose
 * top two logits are often close, would compare the rounding, not the
 * backends).
 *
 * Measured on an H100 (2026-11-26, the kernels of the "CUDA backend"
 * commit): float files max rel L2 2.7e-4 to 8.9e-4 (CPU F16: 2.7e-4 to
 * 7.6e-4); q8_0 mean KL 9.7e-5 to 2.8e-4; cuda vs cpu at most 1.8e-2;
 * every greedy continuation equal. llama_odd (dim 120, ffn 200, head_dim
 * 24) runs on matrices zero-padded to 32-input multiples (repack.c):
 * max rel L2 8.6e-4, 16 of 16 greedy tokens equal on both prompts.
 */
#include "../golden.h"
#include "../test.h"
#include "model/convert.h"
#include "zt.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>

#define GOLDEN_CTX    64 /* positions per sequence: prompts of 24 + 16 generated */
#define GREEDY_TOKENS 16

static zt_engine *open_engine(zt_model *m, const char *backend) {
    zt_engine_opts o = {
        .backend = backend, .n_ctx = GOLDEN_CTX, .n_seq = 1, .n_threads = 2, .kv_type = "f16"};
    zt_engine *e;
    zt_error err = {0};
    if (zt_engine_create(m, &o, &e, &err) != ZT_OK) {
        fprintf(stderr, "  %s engine: %s\n", backend, err.msg);
        return NULL;
    }
    return e;
}

/* Every fixture sequence in forwards of `chunk` rows (0: the whole
 * sequence in one); logits [total][vocab], or NULL after a message. */
static float *run_logits(const char *model_path, const fixture *fx, const char *backend,
                         int chunk) {
    zt_model *m;
    zt_error err = {0};
    if (zt_model_load(model_path, &m, &err) != ZT_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        return NULL;
    }
    zt_engine *e = open_engine(m, backend);
    float *out = e ? malloc(sizeof(float) * (size_t)fx->total * fx->vocab) : NULL;
    for (int s = 0, at = 0; s < fx->n_seqs && out; at += fx->len[s], s++) {
        int seq;
        zt_row rows[GOLDEN_CTX];
        if (fx->len[s] > GOLDEN_CTX || zt_seq_open(e, &seq, &err) != ZT_OK) {
            fprintf(stderr, "  sequence %d of %d tokens: %s\n", s, fx->len[s], err.msg);
            free(out);
            out = NULL;
            break;
        }
        for (int i = 0; i < fx->len[s]; i++) rows[i] = (zt_row){seq, i, fx->tokens[s][i], true};
        int step = chunk > 0 ? chunk : fx->len[s];
        for (int i = 0; i < fx->len[s] && out; i += step) {
            int n = fx->len[s] - i < step ? fx->len[s] - i : step;
            if (zt_engine_forward(e, rows + i, n, out + (size_t)(at + i) * fx->vocab, NULL, &err)) {
                fprintf(stderr, "  %s forward: %s\n", backend, err.msg);
                free(out);
                out = NULL;
            }
        }
        zt_seq_close(e, seq);
    }
    zt_engine_free(e);
    zt_model_free(m);
    return out;
}

/* mkdir -p: the runner makes only the last level of its scratch directory,
 * and the GPU machine's checkout has no build/ folder. */
static bool make_dirs(const char *path) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != 0) continue;
        char c = *p;
        *p = 0;
        if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "  cannot create %s: %s\n", buf, strerror(errno));
            return false;
        }
        if (!c) return true;
        *p = c;
    }
}

/* Path of fixture `name` as `form` ("hf": the directory; else a GGUF of
 * that type, converted once per run into the test directory). */
static bool fixture_path(const char *name, const char *form, char *path, size_t cap) {
    if (!strcmp(form, "hf")) {
        snprintf(path, cap, FIXTURES "%s", name);
        return true;
    }
    if (!make_dirs(test_tmpdir())) return false;
    snprintf(path, cap, "%s/cuda-golden-%s-%s.gguf", test_tmpdir(), name, form);
    FILE *f = fopen(path, "rb");
    if (f) {
        fclose(f);
        return true;
    }
    char dir[256];
    snprintf(dir, sizeof dir, FIXTURES "%s", name);
    zt_model *m;
    zt_error err = {0};
    if (zt_model_load(dir, &m, &err) != ZT_OK) {
        fprintf(stderr, "  load %s: %s\n", dir, err.msg);
        return false;
    }
    int rc = convert_to_gguf(m, form, path, 2, &err);
    zt_model_free(m);
    if (rc != ZT_OK) fprintf(stderr, "  convert %s to %s: %s\n", name, form, err.msg);
    return rc == ZT_OK;
}

/* Holds one CUDA run (`how`) to the reference bounds of `form` and to the
 * CPU's logits; returns 1 when it misses. cpu_kl: the CPU's own mean KL
 * for quantized forms. */
static int check_run(const char *name, const char *form, const char *how, const float *got,
                     const float *cpu, const fixture *fx, bool quant, double cpu_kl) {
    double vs_cpu = max_rel_l2(got, cpu, fx->total, fx->vocab);
    int failed = 0;
    if (!quant) {
        double e = max_rel_l2(got, fx->ref, fx->total, fx->vocab), bound = 2e-3;
        printf("  %-9s %-6s %-7s max rel L2 %.3g (bound %g), vs cpu %.3g\n", name, form, how, e,
               bound, vs_cpu);
        failed = !(e <= bound);
    } else {
        double kl, top1, kl_bound, top1_bound;
        golden_quant_bounds(form, &kl_bound, &top1_bound);
        /* The CPU's int8 path (a row at a time) sits at the qwen2 q8_0
         * bound (5.3e-4 measured); CUDA's decode kernels compute that
         * path, so they may reach 1.1 times its KL. */
        if (cpu_kl * 1.1 > kl_bound) kl_bound = cpu_kl * 1.1;
        kl_top1(got, fx->ref, fx->total, fx->vocab, &kl, &top1);
        printf("  %-9s %-6s %-7s mean KL %.3g (bound %.3g), top-1 %.1f%% (bound %.0f%%); "
               "vs cpu max rel L2 %.3g\n",
               name, form, how, kl, kl_bound, 100 * top1, 100 * top1_bound, vs_cpu);
        failed = !(kl <= kl_bound) || !(top1 >= top1_bound);
    }
    if (!(vs_cpu <= 3e-2)) {
        fprintf(stderr, "  %s %s %s: cuda and cpu differ by %.3g\n", name, form, how, vs_cpu);
        failed = 1;
    }
    return failed;
}

static int golden(const char *name, const char *form) {
    fixture fx;
    char path[512];
    if (!fixture_load(name, &fx) || !fixture_path(name, form, path, sizeof path)) {
        fprintf(stderr, "  cannot prepare fixture %s as %s\n", name, form);
        fixture_free(&fx);
        return 1;
    }
    bool quant = strcmp(form, "hf") && strcmp(form, "f32") && strcmp(form, "f16");
    float *prefill = run_logits(path, &fx, "cuda", 0);
    float *decode = run_logits(path, &fx, "cuda", 1);
    /* The CPU takes quantized batches of 16+ rows to its AMX path (bf16
     * activations) where the processor has one: its side goes one row per
     * forward there, the int8-activation path CUDA's decode kernels share. */
    float *cpu = run_logits(path, &fx, "cpu", quant ? 1 : 0);
    int failed = !prefill || !decode || !cpu;
    if (!failed) {
        double cpu_kl = 0, cpu_top1 = 1;
        if (quant) {
            kl_top1(cpu, fx.ref, fx.total, fx.vocab, &cpu_kl, &cpu_top1);
            printf("  %-9s %-6s cpu     mean KL %.3g, top-1 %.1f%%\n", name, form, cpu_kl,
                   100 * cpu_top1);
        }
        failed |= check_run(name, form, "prefill", prefill, cpu, &fx, quant, cpu_kl);
        failed |= check_run(name, form, "decode", decode, cpu, &fx, quant, cpu_kl);
    }
    free(prefill);
    free(decode);
    free(cpu);
    fixture_free(&fx);
    return failed;
}

#define GOLDEN(name, form)                                                                         \
    TEST(test_cuda_golden_##name##_##form##_matches_transformers) {                                \
        CHECK(golden(#name, #form) == 0);                                                          \
    }

GOLDEN_CASES(GOLDEN)

/* ---- greedy continuations ----------------------------------------------------------- */

/* GREEDY_TOKENS greedy ids after `prompt` (len ids) on engine e, as
 * `zt generate` makes them. logits: NULL, or [GREEDY_TOKENS][vocab] for
 * each step's distribution (the CPU side, for the message on a mismatch). */
static int greedy(zt_engine *e, const int32_t *prompt, int len, int32_t *ids, float *logits,
                  int vocab) {
    zt_error err = {0};
    zt_row rows[GOLDEN_CTX];
    int seq;
    if (len + GREEDY_TOKENS > GOLDEN_CTX || zt_seq_open(e, &seq, &err) != ZT_OK) {
        fprintf(stderr, "  greedy: prompt of %d tokens: %s\n", len, err.msg);
        return 1;
    }
    for (int i = 0; i < len; i++) rows[i] = (zt_row){seq, i, prompt[i], i == len - 1};
    int rc = zt_engine_forward(e, rows, len, logits, &ids[0], &err);
    for (int k = 1; k < GREEDY_TOKENS && rc == ZT_OK; k++) {
        zt_row row = {seq, len + k - 1, ids[k - 1], true};
        rc = zt_engine_forward(e, &row, 1, logits ? logits + (size_t)k * vocab : NULL, &ids[k],
                               &err);
    }
    if (rc != ZT_OK) fprintf(stderr, "  greedy on %s: %s\n", zt_engine_backend_name(e), err.msg);
    zt_seq_close(e, seq);
    return rc != ZT_OK;
}

static int greedy_matches_cpu(const char *name) {
    fixture fx;
    char path[512];
    if (!fixture_load(name, &fx) || !fixture_path(name, "f16", path, sizeof path)) {
        fprintf(stderr, "  cannot prepare fixture %s\n", name);
        fixture_free(&fx);
        return 1;
    }
    zt_model *m;
    zt_error err = {0};
    if (zt_model_load(path, &m, &err) != ZT_OK) {
        fprintf(stderr, "  %s\n", err.msg);
        fixture_free(&fx);
        return 1;
    }
    zt_engine *gpu = open_engine(m, "cuda"), *cpu = open_engine(m, "cpu");
    float *cpu_logits = malloc(sizeof(float) * GREEDY_TOKENS * fx.vocab);
    int failed = !gpu || !cpu || !cpu_logits;
    for (int s = 0; s < fx.n_seqs && !failed; s++) {
        int32_t want[GREEDY_TOKENS], got[GREEDY_TOKENS];
        if (greedy(cpu, fx.tokens[s], fx.len[s], want, cpu_logits, fx.vocab) ||
            greedy(gpu, fx.tokens[s], fx.len[s], got, NULL, fx.vocab)) {
            failed = 1;
            break;
        }
        int k = 0;
        while (k < GREEDY_TOKENS && got[k] == want[k]) k++;
        printf("  %-9s prompt %d (%2d tokens): %d of %d greedy tokens equal the cpu's", name, s,
               fx.len[s], k, GREEDY_TOKENS);
        if (k < GREEDY_TOKENS) {
            /* how close the CPU's own choice was: a near-tie shows here */
            const float *l = cpu_logits + (size_t)k * fx.vocab;
            printf("; step %d: cuda %d, cpu %d (cpu logits %.6g vs %.6g)", k, got[k], want[k],
                   l[got[k]], l[want[k]]);
            failed = 1;
        }
        printf("\n");
    }
    zt_engine_free(gpu);
    zt_engine_free(cpu);
    zt_model_free(m);
    free(cpu_logits);
    fixture_free(&fx);
    return failed;
}

#define GREEDY(name)                                                                               \
    TEST(test_cuda_greedy_##name##_f16_continuation_equals_cpu) {                                  \
        CHECK(greedy_matches_cpu(#name) == 0);                                                     \
    }

GREEDY(phi3)
GREEDY(llama3)
GREEDY(llama_odd)
GREEDY(mistral)
GREEDY(qwen2)
