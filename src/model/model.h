/*
 * The in-memory model every file format loads into: GGUF-style metadata
 * (key -> typed value), a table of typed tensor views, and — filled by
 * arch.c from the metadata alone — the config and per-layer weight roles.
 *
 * One vocabulary for all formats: the HF loader translates config.json into
 * GGUF keys ("llama.embedding_length", ...) and HF tensor names into GGUF
 * names ("blk.0.attn_q.weight"), so arch.c, the tokenizer, `zt convert` and
 * `zt info` see a GGUF model whatever the file was.
 */
#ifndef ZT_MODEL_MODEL_H
#define ZT_MODEL_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zt.h"

/* ---- metadata -------------------------------------------------------- */

/* GGUF value types (the numbers are the file format's). */
enum gguf_vtype {
    GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4, GGUF_I32 = 5,
    GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STRING = 8, GGUF_ARRAY = 9, GGUF_U64 = 10,
    GGUF_I64 = 11, GGUF_F64 = 12, GGUF_VTYPE_COUNT = 13
};

typedef struct zt_kv {
    char *key;        /* owned, NUL-terminated */
    int type;         /* enum gguf_vtype */
    int arr_type;     /* element type when type == GGUF_ARRAY */
    uint64_t n;       /* element count when an array; string length when a string */
    union {
        uint64_t u;   /* unsigned ints and bool */
        int64_t i;    /* signed ints */
        double f;     /* floats */
    } num;
    char *str;        /* GGUF_STRING: owned, NUL-terminated (may hold NULs; n is the length) */
    void *arr;        /* GGUF_ARRAY: owned; numeric elements packed in their
                         file type, strings as char*[n] (each NUL-terminated) */
    uint64_t *arr_len;/* GGUF_ARRAY of strings: byte length of each */
} zt_kv;

/* ---- tensors --------------------------------------------------------- */

#define ZT_MAX_DIMS 4
#define ZT_NAME_MAX 96

typedef struct zt_tensor {
    char name[ZT_NAME_MAX]; /* GGUF name, e.g. "blk.3.ffn_down.weight" */
    int type;               /* enum zt_type (GGUF ggml_type numbers) */
    int n_dims;
    int64_t ne[ZT_MAX_DIMS];/* ne[0] is the contiguous (row) length; a matrix
                               [out, in] has ne[0] = in, ne[1] = out */
    const void *data;       /* into the mmapped file or an owned buffer */
    size_t nbytes;
} zt_tensor;

/* ---- architecture ---------------------------------------------------- */

enum zt_arch { ZT_ARCH_LLAMA, ZT_ARCH_PHI3, ZT_ARCH_QWEN2 }; /* mistral runs as llama */

typedef struct zt_config {
    int arch;            /* enum zt_arch */
    char arch_name[32];  /* as the file says: "llama", "phi3", "qwen2", "mistral" */
    int n_vocab;
    int dim;             /* embedding length */
    int n_layers;
    int n_heads, n_kv_heads, head_dim;
    int ffn_dim;
    int ctx_train;       /* context length the model was trained for */
    float rms_eps;
    int rope_dim;        /* rotated dims per head (<= head_dim, even) */
    bool rope_interleaved; /* pairs (2i, 2i+1): GGUF llama-arch files. false:
                              rotate-half pairs (i, i + rope_dim/2): HF, phi3, qwen2 */
    float *rope_inv_freq;/* [rope_dim/2] owned: theta^(-2i/rope_dim), with the
                            Llama 3 scaling / rope_freqs factors already applied */
    int sliding_window;  /* 0 = full; else key k is seen from query q iff q - k < window */
    bool tied_output;    /* lm_head reuses token_embd */
} zt_config;

/* Weight roles of one layer. A format gives either the fused tensor
 * (phi3: wqkv, w_gate_up) or the separate ones; the others are NULL. */
typedef struct zt_layer_weights {
    const zt_tensor *attn_norm;                 /* [dim] */
    const zt_tensor *wqkv;                      /* [dim] -> [(n_heads + 2 n_kv_heads) head_dim] */
    const zt_tensor *wq, *wk, *wv;              /* [dim] -> [n_heads head_dim], [n_kv_heads head_dim] */
    const zt_tensor *bq, *bk, *bv;              /* biases (qwen2) or NULL */
    const zt_tensor *wo;                        /* [n_heads head_dim] -> [dim] */
    const zt_tensor *ffn_norm;                  /* [dim] */
    const zt_tensor *w_gate_up;                 /* [dim] -> [2 ffn_dim]: gate rows then up rows */
    const zt_tensor *w_gate, *w_up;             /* [dim] -> [ffn_dim] */
    const zt_tensor *w_down;                    /* [ffn_dim] -> [dim] */
} zt_layer_weights;

typedef struct zt_weights {
    const zt_tensor *token_embd;  /* [vocab][dim] */
    zt_layer_weights *layers;     /* [n_layers], owned */
    const zt_tensor *output_norm; /* [dim] */
    const zt_tensor *output;      /* [vocab][dim]; == token_embd when tied */
} zt_weights;

/* ---- the model ------------------------------------------------------- */

typedef struct zt_mapping {
    void *addr;
    size_t size;
} zt_mapping;

struct zt_model {
    char path[1024];
    int format;              /* ZT_FORMAT_GGUF or ZT_FORMAT_HF */
    uint32_t gguf_version;   /* when GGUF */
    size_t alignment;        /* GGUF data alignment */

    zt_kv *kv;               /* [n_kv] owned */
    int n_kv;
    zt_tensor *tensors;      /* [n_tensors] owned */
    int n_tensors;

    zt_mapping *maps;        /* mmapped files, unmapped on free */
    int n_maps;
    void **owned;            /* buffers to free (converted tensors, ...) */
    int n_owned;

    char *hf_tokenizer_json; /* HF dirs: path of tokenizer.json or NULL */

    zt_config cfg;           /* filled by arch_init */
    zt_weights w;
};

enum { ZT_FORMAT_GGUF = 1, ZT_FORMAT_HF = 2 };

/* ---- model.c: the container ------------------------------------------ */

zt_model *model_new(const char *path);
/* Appends a copy of key with an empty value; returns it or NULL (ENOMEM). */
zt_kv *model_add_kv(zt_model *m, const char *key);
int model_set_str(zt_model *m, const char *key, const char *value);
int model_set_u32(zt_model *m, const char *key, uint32_t value);
int model_set_i32(zt_model *m, const char *key, int32_t value);
int model_set_f32(zt_model *m, const char *key, float value);
int model_set_bool(zt_model *m, const char *key, bool value);
/* Array of n numeric elements of GGUF type `type`, copied. */
int model_set_arr(zt_model *m, const char *key, int type, const void *data, uint64_t n);
/* Array of n strings, copied. */
int model_set_str_arr(zt_model *m, const char *key, const char *const *strs, uint64_t n);
zt_tensor *model_add_tensor(zt_model *m, const char *name); /* zeroed, or NULL */
void *model_own(zt_model *m, void *buffer); /* takes ownership; returns buffer or NULL */
int model_add_map(zt_model *m, void *addr, size_t size);

const zt_kv *model_kv(const zt_model *m, const char *key);
/* Typed getters: return false when missing or not convertible. */
bool model_get_int(const zt_model *m, const char *key, int64_t *out);
bool model_get_float(const zt_model *m, const char *key, double *out);
bool model_get_bool(const zt_model *m, const char *key, bool *out);
const char *model_get_str(const zt_model *m, const char *key);
const zt_tensor *model_tensor(const zt_model *m, const char *name);

/* ---- loaders --------------------------------------------------------- */

int gguf_load(const char *path, zt_model *m, zt_error *err);             /* gguf.c */
int hf_load_dir(const char *dir, zt_model *m, zt_error *err);            /* hf.c */

/* Gives the name a safetensors tensor takes in the model (written to out,
 * at most cap bytes with the NUL); returns false to leave the tensor out. */
typedef bool (*safetensors_name_fn)(const char *file_name, char *out, size_t cap, void *ctx);
/* Adds one .safetensors file's tensors to m (safetensors.c). */
int safetensors_load(const char *path, zt_model *m, safetensors_name_fn name_map, void *ctx,
                     zt_error *err);

/* Writes m's metadata and tensors as GGUF v3 (tensor data as they are:
 * convert.c requantizes before calling). */
int gguf_write(const char *path, const zt_model *m, zt_error *err);      /* gguf.c */

/* arch.c: config + weight roles from metadata; checks every shape. */
int arch_init(zt_model *m, zt_error *err);
/* size of one GGUF metadata value element; 0 for strings/arrays */
size_t gguf_vtype_size(int type);

#endif
