/* Conversion to GGUF: requantizes a loaded model's matrices to a model
 * file type and writes what other GGUF readers (llama.cpp, gguf-py) load. */
#ifndef ZT_MODEL_CONVERT_H
#define ZT_MODEL_CONVERT_H

#include "model/model.h"

/* ftype: "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m" (see synth_tensor_type).
 * Norms and biases stay f32. For llama-arch HF sources the Q/K rows are
 * permuted to GGUF's interleaved RoPE pairing. */
int convert_to_gguf(const zt_model *src, const char *ftype, const char *out_path, int n_threads,
                    zt_error *err);

#endif
