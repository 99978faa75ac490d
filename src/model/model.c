/* The model container: metadata store, tensor table, owned memory, maps.
 * Formats fill it (gguf.c, hf.c); arch.c interprets it. */
#include "model/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "util/error.h"

zt_model *model_new(const char *path) {
    zt_model *m = calloc(1, sizeof *m);
    if (m) snprintf(m->path, sizeof m->path, "%s", path ? path : "");
    return m;
}

static void kv_clear(zt_kv *kv) {
    free(kv->key);
    free(kv->str);
    if (kv->type == GGUF_ARRAY && kv->arr_type == GGUF_STRING && kv->arr) {
        char **s = kv->arr;
        for (uint64_t i = 0; i < kv->n; i++) free(s[i]);
    }
    free(kv->arr);
    free(kv->arr_len);
}

void zt_model_free(zt_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n_kv; i++) kv_clear(&m->kv[i]);
    free(m->kv);
    free(m->tensors);
    for (int i = 0; i < m->n_maps; i++) munmap(m->maps[i].addr, m->maps[i].size);
    free(m->maps);
    for (int i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->hf_tokenizer_json);
    free(m->cfg.rope_inv_freq);
    free(m->w.layers);
    free(m);
}

/* Grows *arr (of *n elements of `size`) by one zeroed element. */
static void *grow(void **arr, int *n, size_t size) {
    /* capacity is the next power of two, so no separate field is needed */
    int cap = 1;
    while (cap < *n) cap *= 2;
    if (*n == 0 || *n == cap) {
        void *p = realloc(*arr, (size_t)cap * 2 * size);
        if (!p) return NULL;
        *arr = p;
    }
    char *e = (char *)*arr + (size_t)*n * size;
    memset(e, 0, size);
    (*n)++;
    return e;
}

zt_kv *model_add_kv(zt_model *m, const char *key) {
    char *k = strdup(key);
    if (!k) return NULL;
    zt_kv *kv = grow((void **)&m->kv, &m->n_kv, sizeof *kv);
    if (!kv) {
        free(k);
        return NULL;
    }
    kv->key = k;
    return kv;
}

int model_set_str(zt_model *m, const char *key, const char *value) {
    zt_kv *kv = model_add_kv(m, key);
    if (!kv || !(kv->str = strdup(value))) return ZT_ENOMEM;
    kv->type = GGUF_STRING;
    kv->n = strlen(value);
    return ZT_OK;
}

static int set_num(zt_model *m, const char *key, int type, uint64_t u, int64_t i, double f) {
    zt_kv *kv = model_add_kv(m, key);
    if (!kv) return ZT_ENOMEM;
    kv->type = type;
    if (type == GGUF_F32 || type == GGUF_F64) kv->num.f = f;
    else if (type == GGUF_I32) kv->num.i = i;
    else kv->num.u = u;
    return ZT_OK;
}

int model_set_u32(zt_model *m, const char *k, uint32_t v) { return set_num(m, k, GGUF_U32, v, 0, 0); }
int model_set_i32(zt_model *m, const char *k, int32_t v) { return set_num(m, k, GGUF_I32, 0, v, 0); }
int model_set_f32(zt_model *m, const char *k, float v) { return set_num(m, k, GGUF_F32, 0, 0, v); }
int model_set_bool(zt_model *m, const char *k, bool v) { return set_num(m, k, GGUF_BOOL, v, 0, 0); }

int model_set_arr(zt_model *m, const char *key, int type, const void *data, uint64_t n) {
    size_t es = gguf_vtype_size(type);
    if (!es) return ZT_EINVAL;
    zt_kv *kv = model_add_kv(m, key);
    if (!kv) return ZT_ENOMEM;
    kv->type = GGUF_ARRAY;
    kv->arr_type = type;
    kv->n = n;
    kv->arr = malloc(n ? n * es : 1);
    if (!kv->arr) return ZT_ENOMEM;
    if (n) memcpy(kv->arr, data, n * es);
    return ZT_OK;
}

int model_set_str_arr(zt_model *m, const char *key, const char *const *strs, uint64_t n) {
    zt_kv *kv = model_add_kv(m, key);
    if (!kv) return ZT_ENOMEM;
    kv->type = GGUF_ARRAY;
    kv->arr_type = GGUF_STRING;
    char **a = calloc(n ? n : 1, sizeof *a);
    uint64_t *len = calloc(n ? n : 1, sizeof *len);
    kv->arr = a;
    kv->arr_len = len;
    if (!a || !len) return ZT_ENOMEM;
    for (uint64_t i = 0; i < n; i++) {
        if (!(a[i] = strdup(strs[i]))) return ZT_ENOMEM;
        len[i] = strlen(strs[i]);
        kv->n = i + 1;
    }
    return ZT_OK;
}

zt_tensor *model_add_tensor(zt_model *m, const char *name) {
    zt_tensor *t = grow((void **)&m->tensors, &m->n_tensors, sizeof *t);
    if (t) snprintf(t->name, sizeof t->name, "%s", name);
    return t;
}

void *model_own(zt_model *m, void *buffer) {
    void **slot = grow((void **)&m->owned, &m->n_owned, sizeof *slot);
    if (!slot) {
        free(buffer);
        return NULL;
    }
    *slot = buffer;
    return buffer;
}

int model_add_map(zt_model *m, void *addr, size_t size) {
    zt_mapping *mp = grow((void **)&m->maps, &m->n_maps, sizeof *mp);
    if (!mp) return ZT_ENOMEM;
    mp->addr = addr;
    mp->size = size;
    return ZT_OK;
}

const zt_kv *model_kv(const zt_model *m, const char *key) {
    for (int i = m->n_kv - 1; i >= 0; i--) /* last write wins */
        if (strcmp(m->kv[i].key, key) == 0) return &m->kv[i];
    return NULL;
}

bool model_get_int(const zt_model *m, const char *key, int64_t *out) {
    const zt_kv *kv = model_kv(m, key);
    if (!kv) return false;
    switch (kv->type) {
    case GGUF_U8: case GGUF_U16: case GGUF_U32: case GGUF_U64: case GGUF_BOOL:
        if (kv->num.u > INT64_MAX) return false;
        *out = (int64_t)kv->num.u;
        return true;
    case GGUF_I8: case GGUF_I16: case GGUF_I32: case GGUF_I64:
        *out = kv->num.i;
        return true;
    default:
        return false;
    }
}

bool model_get_float(const zt_model *m, const char *key, double *out) {
    const zt_kv *kv = model_kv(m, key);
    if (!kv) return false;
    if (kv->type == GGUF_F32 || kv->type == GGUF_F64) {
        *out = kv->num.f;
        return true;
    }
    int64_t i;
    if (!model_get_int(m, key, &i)) return false;
    *out = (double)i;
    return true;
}

bool model_get_bool(const zt_model *m, const char *key, bool *out) {
    const zt_kv *kv = model_kv(m, key);
    if (!kv || kv->type != GGUF_BOOL) return false;
    *out = kv->num.u != 0;
    return true;
}

const char *model_get_str(const zt_model *m, const char *key) {
    const zt_kv *kv = model_kv(m, key);
    return kv && kv->type == GGUF_STRING ? kv->str : NULL;
}

const zt_tensor *model_tensor(const zt_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

size_t gguf_vtype_size(int type) {
    switch (type) {
    case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
    case GGUF_U16: case GGUF_I16: return 2;
    case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
    case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
    default: return 0;
    }
}
