/* Synthetic models: random weights (normal * 0.02, seeded; norm gammas
 * 1 + normal * 0.02) in the exact shapes and per-tensor types of real
 * models, for benchmarks (PEERS.md) and tests. */
#ifndef ZT_MODEL_SYNTH_H
#define ZT_MODEL_SYNTH_H

#include <stdint.h>

#include "model/model.h"

typedef struct synth_spec {
    const char *arch;   /* "phi3", "llama", "qwen2" */
    int n_vocab, dim, n_layers, n_heads, n_kv_heads, ffn_dim, ctx, sliding_window;
    float rope_theta, rms_eps;
    int head_dim;       /* 0 = dim / n_heads */
} synth_spec;

/* Named presets: "phi3-mini" (Phi-3-mini-4k shape), "tiny" (the PEERS.md
 * tiny phi3: dim 256, ffn 512, 2 blocks, 4 heads, vocab 32064),
 * "llama-tiny" (GQA, separate tensors). NULL when unknown. */
const synth_spec *synth_preset(const char *name);

/* Model file types: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m". Returns the
 * tensor type of weight `name` in layer `layer` (-1 for global tensors) of
 * an n_layers model, or -1 for an unknown file type. Row lengths that a
 * block type cannot hold fall back to q8_0, then f16. */
int synth_tensor_type(const char *ftype, const char *name, int layer, int n_layers,
                      int64_t row_len);

/* Builds the model in memory (tensors owned by it), with tokenizer
 * metadata copied from `vocab` when not NULL. n_threads quantize in
 * parallel. The result has not been through arch_init. */
int synth_build(const synth_spec *spec, const char *ftype, uint64_t seed, const zt_model *vocab,
                int n_threads, zt_model **out, zt_error *err);

/* Copies every tokenizer.* key of src into dst. */
int synth_copy_tokenizer(zt_model *dst, const zt_model *src);

#endif
