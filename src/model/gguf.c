/*
 * GGUF: read v2/v3 files into a zt_model, write a zt_model as GGUF v3.
 *
 * Layout (all little-endian; a "string" is a u64 byte length then the bytes,
 * no NUL):
 *
 *   header    "GGUF", u32 version, u64 tensor_count, u64 kv_count
 *   kv[]      string key, u32 value type, value
 *             (an array is u32 element type, u64 count, the elements)
 *   tensor[]  string name, u32 n_dims, u64 ne[n_dims], u32 ggml type,
 *             u64 offset (relative to the data section, a multiple of the
 *             alignment)
 *   padding   zeros up to a multiple of general.alignment (u32, default 32)
 *   data      the tensors, each padded to the alignment
 *
 * The reader mmaps the file and parses it in place, so tensor views point
 * straight into the map and metadata is copied once. A model file is
 * untrusted input: every count and length is checked against the bytes
 * left in the file before anything is allocated for it, so a 1 KB file
 * cannot make us allocate more than a few KB whatever its counts say, and
 * all size arithmetic is checked for overflow. Errors name the file, the
 * item and the offset.
 *
 * The writer emits what llama.cpp and the python `gguf` package read:
 * unique keys, tensor names under 64 bytes, offsets laid out in order with
 * every tensor (the last one too) padded to the alignment. It writes
 * PATH.tmp and renames it over PATH, so a failure never leaves a half file.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/model.h"
#include "quant/quant.h"
#include "util/error.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c reads little-endian values in place; a big-endian host needs byte swaps"
#endif

#define GGUF_STR_(x) #x
#define GGUF_STR(x) GGUF_STR_(x)
#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_KEY_MAX 65535     /* real keys are < 100 bytes; longer is garbage */
#define GGUF_WRITE_NAME_MAX 63 /* ggml's GGML_MAX_NAME (64) counts the NUL */

/* Fewest bytes one kv (key len, 1-byte key, type, u8 value) and one tensor
 * info (name len, 1-byte name, n_dims, one ne, type, offset) can occupy:
 * counts that could not fit in the bytes left are refused before parsing. */
#define GGUF_MIN_KV_BYTES (8 + 1 + 4 + 1)
#define GGUF_MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)

static const char *const vtype_names[GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};

static const char *vtype_name(uint32_t type) {
    return type < GGUF_VTYPE_COUNT ? vtype_names[type] : "unknown";
}

/* ---- a set of names, to find duplicates in O(n) ----------------------- */

/* Open addressing over borrowed NUL-terminated strings; cap is a power of
 * two at least twice the number of names, so probes stay short. */
typedef struct gguf_nameset {
    const char **slot; /* [cap] NULL = empty */
    size_t cap;
} gguf_nameset;

static int nameset_init(gguf_nameset *s, size_t n) {
    s->cap = 16;
    while (s->cap < 2 * n) s->cap *= 2;
    s->slot = calloc(s->cap, sizeof *s->slot);
    return s->slot ? ZT_OK : ZT_ENOMEM;
}

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

/* Adds name; returns false when an equal name is already there. */
static bool nameset_add(gguf_nameset *s, const char *name) {
    size_t i = (size_t)name_hash(name) & (s->cap - 1);
    while (s->slot[i]) {
        if (strcmp(s->slot[i], name) == 0) return false;
        i = (i + 1) & (s->cap - 1);
    }
    s->slot[i] = name;
    return true;
}

/* ---- reading ---------------------------------------------------------- */

/* A cursor over the mapped file. Messages are filled without the file name;
 * gguf_load prefixes it once. */
typedef struct gguf_reader {
    const uint8_t *base; /* [size] the mapped file (NULL when size is 0) */
    uint64_t size;
    uint64_t pos;
    zt_error *err;
    char what[160]; /* the item being parsed, for messages: "kv 3 'general.name'" */
} gguf_reader;

/* Fails unless n more bytes are there. */
static int rd_need(gguf_reader *r, uint64_t n, const char *field) {
    if (n <= r->size - r->pos) return ZT_OK;
    return zt_fail(r->err, ZT_EFORMAT,
                   "truncated: %s of %s needs %llu bytes at offset %llu but the file ends at %llu",
                   field, r->what, (unsigned long long)n, (unsigned long long)r->pos,
                   (unsigned long long)r->size);
}

static int rd_bytes(gguf_reader *r, void *out, uint64_t n, const char *field) {
    int rc = rd_need(r, n, field);
    if (rc) return rc;
    memcpy(out, r->base + r->pos, (size_t)n);
    r->pos += n;
    return ZT_OK;
}

static int rd_u32(gguf_reader *r, uint32_t *out, const char *field) {
    return rd_bytes(r, out, sizeof *out, field);
}

static int rd_u64(gguf_reader *r, uint64_t *out, const char *field) {
    return rd_bytes(r, out, sizeof *out, field);
}

/* A string in place: *s points into the map (not NUL-terminated). */
static int rd_str(gguf_reader *r, const char **s, uint64_t *len, const char *field) {
    int rc = rd_u64(r, len, field);
    if (rc) return rc;
    if (*len > r->size - r->pos)
        return zt_fail(r->err, ZT_EFORMAT,
                       "%s of %s: string length %llu at offset %llu exceeds the %llu bytes left "
                       "in the file",
                       field, r->what, (unsigned long long)*len, (unsigned long long)(r->pos - 8),
                       (unsigned long long)(r->size - r->pos));
    *s = (const char *)r->base + r->pos;
    r->pos += *len;
    return ZT_OK;
}

/* A NUL-terminated malloc'd copy of a string from the file. */
static char *str_dup(const char *s, uint64_t len) {
    char *d = malloc((size_t)len + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)len);
    d[len] = '\0';
    return d;
}

/* One scalar value of a numeric (or bool) type into kv->num: integers are
 * widened from their file width (sign-extended when signed). */
static int rd_scalar(gguf_reader *r, uint32_t type, zt_kv *kv) {
    uint8_t b[8];
    size_t n = gguf_vtype_size((int)type);
    int rc = rd_bytes(r, b, n, "value");
    if (rc) return rc;
    uint64_t raw = 0;
    float f32;
    memcpy(&raw, b, n); /* little-endian host: the low n bytes */
    switch (type) {
    case GGUF_I8: kv->num.i = (int8_t)raw; break;
    case GGUF_I16: kv->num.i = (int16_t)raw; break;
    case GGUF_I32: kv->num.i = (int32_t)raw; break;
    case GGUF_I64: kv->num.i = (int64_t)raw; break;
    case GGUF_F32:
        memcpy(&f32, b, 4);
        kv->num.f = f32;
        break;
    case GGUF_F64: memcpy(&kv->num.f, b, 8); break;
    default: kv->num.u = raw; break; /* u8..u64, bool */
    }
    return ZT_OK;
}

/* An array value: u32 element type, u64 count, elements. Numeric elements
 * are copied packed; strings each become their own NUL-terminated buffer
 * (model.c frees them one by one). The count is checked against the bytes
 * left before anything is allocated: n elements need n * size bytes, and
 * n strings need at least 8 bytes each for their lengths. */
static int rd_array(gguf_reader *r, zt_kv *kv) {
    uint32_t et;
    uint64_t n;
    int rc = rd_u32(r, &et, "array element type");
    if (rc) return rc;
    if (et == GGUF_ARRAY)
        return zt_fail(r->err, ZT_EUNSUP,
                       "%s is an array of arrays (nested arrays are not supported)", r->what);
    if (et >= GGUF_VTYPE_COUNT)
        return zt_fail(r->err, ZT_EFORMAT, "%s: unknown array element type %u", r->what, et);
    if ((rc = rd_u64(r, &n, "array count"))) return rc;
    uint64_t left = r->size - r->pos;
    size_t es = et == GGUF_STRING ? 8 : gguf_vtype_size((int)et);
    if (n > left / es)
        return zt_fail(r->err, ZT_EFORMAT,
                       "%s: array count %llu of %s exceeds the %llu bytes left in the file",
                       r->what, (unsigned long long)n, vtype_name(et), (unsigned long long)left);

    if (et != GGUF_STRING) {
        void *a = malloc(n ? (size_t)(n * es) : 1);
        if (!a)
            return zt_fail(r->err, ZT_ENOMEM, "%s: out of memory for %llu elements", r->what,
                           (unsigned long long)n);
        memcpy(a, r->base + r->pos, (size_t)(n * es));
        r->pos += n * es;
        kv->type = GGUF_ARRAY;
        kv->arr_type = (int)et;
        kv->n = n;
        kv->arr = a;
        return ZT_OK;
    }

    char **strs = calloc(n ? (size_t)n : 1, sizeof *strs);
    uint64_t *lens = calloc(n ? (size_t)n : 1, sizeof *lens);
    if (!strs || !lens) {
        free(strs);
        free(lens);
        return zt_fail(r->err, ZT_ENOMEM, "%s: out of memory for %llu strings", r->what,
                       (unsigned long long)n);
    }
    /* owned by kv from here: on a later failure model.c frees what is set */
    kv->type = GGUF_ARRAY;
    kv->arr_type = GGUF_STRING;
    kv->n = n;
    kv->arr = strs;
    kv->arr_len = lens;
    for (uint64_t i = 0; i < n; i++) {
        const char *s;
        if ((rc = rd_str(r, &s, &lens[i], "array string"))) return rc;
        if (!(strs[i] = str_dup(s, lens[i])))
            return zt_fail(r->err, ZT_ENOMEM, "%s: out of memory for string %llu", r->what,
                           (unsigned long long)i);
    }
    return ZT_OK;
}

/* kv_count key/value pairs, appended to m in file order. */
static int rd_kvs(gguf_reader *r, zt_model *m, uint64_t n_kv) {
    gguf_nameset keys = {0};
    int rc = nameset_init(&keys, (size_t)n_kv);
    if (rc) return zt_fail(r->err, rc, "out of memory for %llu keys", (unsigned long long)n_kv);
    for (uint64_t i = 0; i < n_kv; i++) {
        snprintf(r->what, sizeof r->what, "kv %llu", (unsigned long long)i);
        const char *key;
        uint64_t key_len;
        uint32_t type;
        if ((rc = rd_str(r, &key, &key_len, "key"))) goto done;
        if (key_len == 0 || key_len > GGUF_KEY_MAX || memchr(key, 0, (size_t)key_len)) {
            rc = zt_fail(r->err, ZT_EFORMAT, "%s: bad key of %llu bytes at offset %llu%s", r->what,
                         (unsigned long long)key_len, (unsigned long long)(r->pos - key_len - 8),
                         key_len == 0             ? " (empty)"
                         : key_len > GGUF_KEY_MAX ? " (too long)"
                                                  : " (contains NUL)");
            goto done;
        }
        snprintf(r->what, sizeof r->what, "kv %llu '%.*s'", (unsigned long long)i,
                 (int)(key_len < 100 ? key_len : 100), key);
        if ((rc = rd_u32(r, &type, "value type"))) goto done;
        if (type >= GGUF_VTYPE_COUNT) {
            rc = zt_fail(r->err, ZT_EFORMAT, "%s has unknown value type %u", r->what, type);
            goto done;
        }

        char *k = str_dup(key, key_len);
        zt_kv *kv = k ? model_add_kv(m, k) : NULL;
        free(k);
        if (!kv) {
            rc = zt_fail(r->err, ZT_ENOMEM, "%s: out of memory", r->what);
            goto done;
        }
        if (!nameset_add(&keys, kv->key)) {
            rc = zt_fail(r->err, ZT_EFORMAT, "duplicate key '%s' (%s)", kv->key, r->what);
            goto done;
        }
        if (type == GGUF_STRING) {
            const char *s;
            uint64_t len;
            if ((rc = rd_str(r, &s, &len, "string value"))) goto done;
            if (!(kv->str = str_dup(s, len))) {
                rc = zt_fail(r->err, ZT_ENOMEM, "%s: out of memory", r->what);
                goto done;
            }
            kv->type = GGUF_STRING;
            kv->n = len;
        } else if (type == GGUF_ARRAY) {
            if ((rc = rd_array(r, kv))) goto done;
        } else {
            kv->type = (int)type;
            if ((rc = rd_scalar(r, type, kv))) goto done;
        }
    }
done:
    free(keys.slot);
    return rc;
}

/* general.alignment from the kvs just read (index kv0 on), else 32. */
static int rd_alignment(gguf_reader *r, const zt_model *m, int kv0, uint64_t *align) {
    *align = GGUF_DEFAULT_ALIGNMENT;
    for (int i = kv0; i < m->n_kv; i++) {
        const zt_kv *kv = &m->kv[i];
        if (strcmp(kv->key, "general.alignment") != 0) continue;
        if (kv->type != GGUF_U32)
            return zt_fail(r->err, ZT_EFORMAT, "general.alignment has type %s, expected u32",
                           vtype_name((uint32_t)kv->type));
        if (kv->num.u == 0 || (kv->num.u & (kv->num.u - 1)))
            return zt_fail(r->err, ZT_EFORMAT,
                           "general.alignment %llu is not a non-zero power of two",
                           (unsigned long long)kv->num.u);
        *align = kv->num.u;
    }
    return ZT_OK;
}

/* One tensor info into t (its data pointer is set later, once the data
 * section start is known); *offset is its offset in the data section. */
static int rd_tensor_info(gguf_reader *r, zt_model *m, uint64_t idx, uint64_t *offset) {
    snprintf(r->what, sizeof r->what, "tensor %llu", (unsigned long long)idx);
    const char *name;
    uint64_t name_len;
    uint32_t n_dims, type;
    int rc;
    if ((rc = rd_str(r, &name, &name_len, "name"))) return rc;
    if (name_len == 0 || name_len >= ZT_NAME_MAX || memchr(name, 0, (size_t)name_len))
        return zt_fail(r->err, ZT_EFORMAT, "%s: bad name of %llu bytes (%s)", r->what,
                       (unsigned long long)name_len,
                       name_len == 0 ? "empty"
                       : name_len >= ZT_NAME_MAX
                           ? "zt needs names under " GGUF_STR(ZT_NAME_MAX) " bytes"
                           : "contains NUL");
    snprintf(r->what, sizeof r->what, "tensor '%.*s'", (int)name_len, name);
    zt_tensor *t = model_add_tensor(m, "");
    if (!t) return zt_fail(r->err, ZT_ENOMEM, "%s: out of memory", r->what);
    memcpy(t->name, name, (size_t)name_len);
    t->name[name_len] = '\0';

    if ((rc = rd_u32(r, &n_dims, "n_dims"))) return rc;
    if (n_dims < 1 || n_dims > ZT_MAX_DIMS)
        return zt_fail(r->err, ZT_EFORMAT, "%s has n_dims %u, expected 1..%d", r->what, n_dims,
                       ZT_MAX_DIMS);
    t->n_dims = (int)n_dims;
    int64_t n_elems = 1;
    for (uint32_t d = 0; d < n_dims; d++) {
        uint64_t ne;
        if ((rc = rd_u64(r, &ne, "dimension"))) return rc;
        if (ne == 0 || ne > INT64_MAX)
            return zt_fail(r->err, ZT_EFORMAT, "%s: ne[%u] = %lld is not positive", r->what, d,
                           (long long)ne);
        if ((int64_t)ne > INT64_MAX / n_elems)
            return zt_fail(r->err, ZT_EFORMAT, "%s: element count overflows at ne[%u] = %llu",
                           r->what, d, (unsigned long long)ne);
        t->ne[d] = (int64_t)ne;
        n_elems *= (int64_t)ne;
    }
    for (int d = (int)n_dims; d < ZT_MAX_DIMS; d++) t->ne[d] = 1;

    if ((rc = rd_u32(r, &type, "type"))) return rc;
    const zt_type_info *ti = type < ZT_TYPE_LIMIT ? quant_type_info((int)type) : NULL;
    if (!ti) return zt_fail(r->err, ZT_EUNSUP, "%s has unknown tensor type %u", r->what, type);
    t->type = (int)type;
    if (t->ne[0] % ti->block_elems)
        return zt_fail(r->err, ZT_EFORMAT,
                       "%s: row length ne[0] = %lld is not a multiple of the %s block size %d",
                       r->what, (long long)t->ne[0], ti->name, ti->block_elems);
    uint64_t blocks = (uint64_t)(t->ne[0] / ti->block_elems);
    uint64_t rows = (uint64_t)(n_elems / t->ne[0]);
    if (blocks > SIZE_MAX / (uint64_t)ti->block_bytes)
        return zt_fail(r->err, ZT_EFORMAT, "%s: row size overflows", r->what);
    size_t row_bytes = quant_row_bytes((int)type, t->ne[0]);
    if (row_bytes == 0 || rows > SIZE_MAX / row_bytes)
        return zt_fail(r->err, ZT_EFORMAT, "%s: data size overflows (%llu rows of %zu bytes)",
                       r->what, (unsigned long long)rows, row_bytes);
    t->nbytes = row_bytes * (size_t)rows;
    return rd_u64(r, offset, "offset");
}

/* Parses the mapped file into m. */
static int gguf_parse(gguf_reader *r, zt_model *m) {
    char magic[4];
    uint32_t version;
    uint64_t n_tensors, n_kv;
    int rc;
    snprintf(r->what, sizeof r->what, "the header");
    if ((rc = rd_bytes(r, magic, 4, "magic"))) return rc;
    if (memcmp(magic, GGUF_MAGIC, 4) != 0) {
        char shown[4 * 4 + 1], *p = shown; /* printable, or \xNN */
        for (int i = 0; i < 4; i++) {
            uint8_t c = (uint8_t)magic[i];
            if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"')
                *p++ = (char)c;
            else
                p += sprintf(p, "\\x%02x", c);
        }
        *p = '\0';
        return zt_fail(r->err, ZT_EFORMAT, "not a GGUF file (magic \"%s\", expected \"GGUF\")",
                       shown);
    }
    if ((rc = rd_u32(r, &version, "version"))) return rc;
    if (version > 0xffff && (version & 0xffff) == 0 && __builtin_bswap32(version) <= 3)
        return zt_fail(r->err, ZT_EUNSUP, "big-endian GGUF (version %u) is not supported",
                       __builtin_bswap32(version));
    if (version != 2 && version != 3)
        return zt_fail(r->err, ZT_EUNSUP, "unsupported GGUF version %u (zt reads 2 and 3)",
                       version);
    if ((rc = rd_u64(r, &n_tensors, "tensor count"))) return rc;
    if ((rc = rd_u64(r, &n_kv, "kv count"))) return rc;
    uint64_t left = r->size - r->pos;
    if (n_kv > left / GGUF_MIN_KV_BYTES || n_kv > INT_MAX)
        return zt_fail(r->err, ZT_EFORMAT,
                       "kv count %llu cannot fit in the %llu bytes left in the file",
                       (unsigned long long)n_kv, (unsigned long long)left);
    if (n_tensors > left / GGUF_MIN_TENSOR_BYTES || n_tensors > INT_MAX)
        return zt_fail(r->err, ZT_EFORMAT,
                       "tensor count %llu cannot fit in the %llu bytes left in the file",
                       (unsigned long long)n_tensors, (unsigned long long)left);

    int kv0 = m->n_kv, t0 = m->n_tensors;
    if ((rc = rd_kvs(r, m, n_kv))) return rc;
    uint64_t align;
    if ((rc = rd_alignment(r, m, kv0, &align))) return rc;

    /* the kvs used some of the bytes: check the tensor count again */
    left = r->size - r->pos;
    if (n_tensors > left / GGUF_MIN_TENSOR_BYTES)
        return zt_fail(r->err, ZT_EFORMAT,
                       "tensor count %llu cannot fit in the %llu bytes left after the metadata",
                       (unsigned long long)n_tensors, (unsigned long long)left);
    uint64_t *offsets = malloc(n_tensors ? (size_t)n_tensors * sizeof *offsets : 1);
    gguf_nameset names = {0};
    if (!offsets)
        return zt_fail(r->err, ZT_ENOMEM, "out of memory for %llu tensor offsets",
                       (unsigned long long)n_tensors);
    for (uint64_t i = 0; i < n_tensors; i++)
        if ((rc = rd_tensor_info(r, m, i, &offsets[i]))) goto done;

    /* the data section starts at the next multiple of the alignment; pos <=
     * size < 2^63 so the round-up cannot wrap */
    uint64_t data_start = (r->pos + align - 1) & ~(align - 1);
    if ((rc = nameset_init(&names, (size_t)n_tensors))) {
        rc = zt_fail(r->err, rc, "out of memory for %llu tensor names",
                     (unsigned long long)n_tensors);
        goto done;
    }
    for (uint64_t i = 0; i < n_tensors; i++) {
        zt_tensor *t = &m->tensors[t0 + (int)i];
        uint64_t off = offsets[i];
        if (!nameset_add(&names, t->name)) {
            rc = zt_fail(r->err, ZT_EFORMAT, "duplicate tensor name '%s' (tensor %llu)", t->name,
                         (unsigned long long)i);
            goto done;
        }
        if (off % align) {
            rc = zt_fail(r->err, ZT_EFORMAT,
                         "tensor '%s' data offset %llu is not a multiple of the alignment %llu",
                         t->name, (unsigned long long)off, (unsigned long long)align);
            goto done;
        }
        if (data_start > r->size || off > r->size - data_start ||
            t->nbytes > r->size - data_start - off) {
            unsigned long long at = off <= UINT64_MAX - data_start ? data_start + off : off;
            rc = zt_fail(r->err, ZT_EFORMAT,
                         "tensor '%s' data [offset %llu, %zu bytes] lies outside the file "
                         "(%llu bytes)",
                         t->name, at, t->nbytes, (unsigned long long)r->size);
            goto done;
        }
        t->data = r->base + data_start + off;
    }
    m->format = ZT_FORMAT_GGUF;
    m->gguf_version = version;
    m->alignment = (size_t)align;
done:
    free(names.slot);
    free(offsets);
    return rc;
}

/* Loads a GGUF file into m: metadata copied, tensors viewing the mapped
 * file (unmapped by zt_model_free). On failure m may hold part of the file's
 * contents; the caller frees it. */
int gguf_load(const char *path, zt_model *m, zt_error *err) {
    zt_error local;
    if (!err) err = &local;
    struct stat st;
    /* O_NONBLOCK: a FIFO given as the path must not hang the open */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return zt_fail(err, ZT_EIO, "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return zt_fail(err, ZT_EIO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return zt_fail(err, ZT_EIO, "%s: not a regular file%s", path,
                       S_ISDIR(st.st_mode) ? " (a directory)" : "");
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return zt_fail(err, ZT_EUNSUP, "%s: file of %lld bytes is too large to map", path,
                       (long long)st.st_size);
    }
    gguf_reader r = {.size = (uint64_t)st.st_size, .err = err};
    void *map = NULL;
    if (st.st_size > 0) {
        map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            int e = errno;
            close(fd);
            return zt_fail(err, ZT_EIO, "%s: cannot mmap %lld bytes: %s", path,
                           (long long)st.st_size, strerror(e));
        }
        if (model_add_map(m, map, (size_t)st.st_size) != ZT_OK) {
            munmap(map, (size_t)st.st_size);
            close(fd);
            return zt_fail(err, ZT_ENOMEM, "%s: out of memory", path);
        }
    }
    close(fd); /* the map keeps the file */
    r.base = map;
    int rc = gguf_parse(&r, m);
    if (rc) return zt_fail_prefix(err, "%s", path);
    return ZT_OK;
}

/* ---- writing ---------------------------------------------------------- */

/* Buffered output that remembers the first failure, so the layout code can
 * write straight through and the result is checked once. */
typedef struct gguf_writer {
    FILE *f;
    uint64_t pos;
    int error; /* errno of the first failed write, or 0 */
} gguf_writer;

static void wr_bytes(gguf_writer *w, const void *p, uint64_t n) {
    if (n && !w->error && fwrite(p, 1, (size_t)n, w->f) != (size_t)n)
        w->error = errno ? errno : EIO;
    w->pos += n;
}

static void wr_u32(gguf_writer *w, uint32_t v) { wr_bytes(w, &v, 4); }
static void wr_u64(gguf_writer *w, uint64_t v) { wr_bytes(w, &v, 8); }

static void wr_str(gguf_writer *w, const char *s, uint64_t len) {
    wr_u64(w, len);
    wr_bytes(w, s, len);
}

/* Zeros up to the next multiple of align. */
static void wr_pad(gguf_writer *w, uint64_t align) {
    static const uint8_t zeros[256];
    uint64_t n = (align - w->pos % align) % align;
    while (n) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        wr_bytes(w, zeros, k);
        n -= k;
    }
}

static void wr_scalar(gguf_writer *w, int type, const zt_kv *kv) {
    uint8_t u8 = (uint8_t)kv->num.u;
    int8_t i8 = (int8_t)kv->num.i;
    uint16_t u16 = (uint16_t)kv->num.u;
    int16_t i16 = (int16_t)kv->num.i;
    uint32_t u32 = (uint32_t)kv->num.u;
    int32_t i32 = (int32_t)kv->num.i;
    float f32 = (float)kv->num.f;
    switch (type) {
    case GGUF_U8:
    case GGUF_BOOL: wr_bytes(w, &u8, 1); break;
    case GGUF_I8: wr_bytes(w, &i8, 1); break;
    case GGUF_U16: wr_bytes(w, &u16, 2); break;
    case GGUF_I16: wr_bytes(w, &i16, 2); break;
    case GGUF_U32: wr_bytes(w, &u32, 4); break;
    case GGUF_I32: wr_bytes(w, &i32, 4); break;
    case GGUF_U64: wr_bytes(w, &kv->num.u, 8); break;
    case GGUF_I64: wr_bytes(w, &kv->num.i, 8); break;
    case GGUF_F32: wr_bytes(w, &f32, 4); break;
    case GGUF_F64: wr_bytes(w, &kv->num.f, 8); break;
    default: break;
    }
}

static void wr_kv(gguf_writer *w, const zt_kv *kv) {
    wr_str(w, kv->key, strlen(kv->key));
    wr_u32(w, (uint32_t)kv->type);
    if (kv->type == GGUF_STRING) {
        wr_str(w, kv->str ? kv->str : "", kv->str ? kv->n : 0);
    } else if (kv->type == GGUF_ARRAY) {
        wr_u32(w, (uint32_t)kv->arr_type);
        wr_u64(w, kv->n);
        if (kv->arr_type == GGUF_STRING) {
            char *const *s = kv->arr;
            for (uint64_t i = 0; i < kv->n; i++)
                wr_str(w, s[i], kv->arr_len ? kv->arr_len[i] : strlen(s[i]));
        } else {
            wr_bytes(w, kv->arr, kv->n * gguf_vtype_size(kv->arr_type));
        }
    } else {
        wr_scalar(w, kv->type, kv);
    }
}

/* Checks what the writer will emit, so that a bad model fails before any
 * file is created. */
static int wr_check(const zt_model *m, const bool *keep, zt_error *err) {
    for (int i = 0; i < m->n_kv; i++) {
        const zt_kv *kv = &m->kv[i];
        if (!keep[i]) continue;
        if (!kv->key || !kv->key[0]) return zt_fail(err, ZT_EINVAL, "kv %d has an empty key", i);
        if (kv->type < 0 || kv->type >= GGUF_VTYPE_COUNT)
            return zt_fail(err, ZT_EINVAL, "kv '%s' has unknown value type %d", kv->key, kv->type);
        if (kv->type != GGUF_ARRAY) continue;
        if (kv->arr_type == GGUF_ARRAY || kv->arr_type < 0 || kv->arr_type >= GGUF_VTYPE_COUNT)
            return zt_fail(err, ZT_EINVAL, "kv '%s' has unsupported array element type %d", kv->key,
                           kv->arr_type);
        if (kv->n && !kv->arr)
            return zt_fail(err, ZT_EINVAL, "kv '%s' is an array of %llu elements without data",
                           kv->key, (unsigned long long)kv->n);
        if (kv->arr_type == GGUF_STRING)
            for (uint64_t j = 0; j < kv->n; j++)
                if (!((char **)kv->arr)[j])
                    return zt_fail(err, ZT_EINVAL, "kv '%s' string %llu is missing", kv->key,
                                   (unsigned long long)j);
    }
    for (int i = 0; i < m->n_tensors; i++) {
        const zt_tensor *t = &m->tensors[i];
        size_t len = strnlen(t->name, ZT_NAME_MAX);
        if (len == 0 || len > GGUF_WRITE_NAME_MAX)
            return zt_fail(err, ZT_EINVAL,
                           "tensor %d name '%.*s' must be 1..%d bytes for GGUF readers", i,
                           (int)len, t->name, GGUF_WRITE_NAME_MAX);
        const zt_type_info *ti = quant_type_info(t->type);
        if (!ti)
            return zt_fail(err, ZT_EINVAL, "tensor '%s' has unknown type %d", t->name, t->type);
        if (t->n_dims < 1 || t->n_dims > ZT_MAX_DIMS)
            return zt_fail(err, ZT_EINVAL, "tensor '%s' has n_dims %d", t->name, t->n_dims);
        uint64_t n_elems = 1;
        for (int d = 0; d < t->n_dims; d++) {
            if (t->ne[d] <= 0 || (uint64_t)t->ne[d] > (uint64_t)INT64_MAX / n_elems)
                return zt_fail(err, ZT_EINVAL, "tensor '%s' has bad ne[%d] = %lld", t->name, d,
                               (long long)t->ne[d]);
            n_elems *= (uint64_t)t->ne[d];
        }
        size_t row = quant_row_bytes(t->type, t->ne[0]);
        uint64_t rows = n_elems / (uint64_t)t->ne[0];
        if (row == 0 || rows > SIZE_MAX / row || row * rows != t->nbytes)
            return zt_fail(err, ZT_EINVAL,
                           "tensor '%s' holds %zu bytes but a %s tensor of its shape needs %llu",
                           t->name, t->nbytes, ti->name,
                           (unsigned long long)(row && rows <= SIZE_MAX / row ? row * rows : 0));
        if (!t->data) return zt_fail(err, ZT_EINVAL, "tensor '%s' has no data", t->name);
    }
    gguf_nameset names;
    if (nameset_init(&names, (size_t)m->n_tensors)) return zt_fail(err, ZT_ENOMEM, "out of memory");
    int rc = ZT_OK;
    for (int i = 0; i < m->n_tensors && !rc; i++)
        if (!nameset_add(&names, m->tensors[i].name))
            rc = zt_fail(err, ZT_EINVAL, "duplicate tensor name '%s'", m->tensors[i].name);
    free(names.slot);
    return rc;
}

/* The whole file through w: header, kvs, tensor infos, data. */
static void wr_file(gguf_writer *w, const zt_model *m, const bool *keep, uint64_t n_kv,
                    bool append_alignment, uint64_t align) {
    zt_kv align_kv = {.key = "general.alignment", .type = GGUF_U32, .num.u = align};
    wr_bytes(w, GGUF_MAGIC, 4);
    wr_u32(w, 3);
    wr_u64(w, (uint64_t)m->n_tensors);
    wr_u64(w, n_kv);
    for (int i = 0; i < m->n_kv; i++) {
        if (!keep[i]) continue;
        /* the alignment the data is laid out with is the one the file says */
        wr_kv(w, strcmp(m->kv[i].key, "general.alignment") == 0 ? &align_kv : &m->kv[i]);
    }
    if (append_alignment) wr_kv(w, &align_kv);

    uint64_t offset = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const zt_tensor *t = &m->tensors[i];
        wr_str(w, t->name, strlen(t->name));
        wr_u32(w, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) wr_u64(w, (uint64_t)t->ne[d]);
        wr_u32(w, (uint32_t)t->type);
        wr_u64(w, offset);
        offset += (t->nbytes + align - 1) / align * align;
    }
    wr_pad(w, align);
    for (int i = 0; i < m->n_tensors; i++) {
        wr_bytes(w, m->tensors[i].data, m->tensors[i].nbytes);
        wr_pad(w, align);
    }
}

/* Writes m as GGUF v3 to path (through path.tmp and a rename). */
int gguf_write(const char *path, const zt_model *m, zt_error *err) {
    zt_error local;
    if (!err) err = &local;
    uint64_t align = m->alignment ? m->alignment : GGUF_DEFAULT_ALIGNMENT;
    if (align & (align - 1) || align > UINT32_MAX)
        return zt_fail(err, ZT_EINVAL, "%s: alignment %llu is not a power of two below 2^32", path,
                       (unsigned long long)align);

    /* GGUF readers refuse repeated keys; the container lets a later kv
     * override an earlier one, so only the last of each key is written */
    bool *keep = malloc(m->n_kv ? (size_t)m->n_kv : 1);
    gguf_nameset keys = {0};
    if (!keep || nameset_init(&keys, (size_t)m->n_kv)) {
        free(keep);
        return zt_fail(err, ZT_ENOMEM, "%s: out of memory", path);
    }
    uint64_t n_kv = 0;
    bool has_alignment = false;
    for (int i = m->n_kv - 1; i >= 0; i--) {
        const char *key = m->kv[i].key ? m->kv[i].key : "";
        keep[i] = nameset_add(&keys, key);
        n_kv += keep[i];
        has_alignment |= strcmp(key, "general.alignment") == 0;
    }
    free(keys.slot);
    bool append_alignment = !has_alignment && align != GGUF_DEFAULT_ALIGNMENT;
    n_kv += append_alignment;

    int rc = wr_check(m, keep, err);
    if (rc) {
        free(keep);
        return zt_fail_prefix(err, "%s", path);
    }

    size_t tmp_len = strlen(path) + sizeof ".tmp";
    char *tmp = malloc(tmp_len);
    if (!tmp) {
        free(keep);
        return zt_fail(err, ZT_ENOMEM, "%s: out of memory", path);
    }
    snprintf(tmp, tmp_len, "%s.tmp", path);
    gguf_writer w = {.f = fopen(tmp, "wb")};
    if (!w.f) {
        rc = zt_fail(err, ZT_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    wr_file(&w, m, keep, n_kv, append_alignment, align);
    if (!w.error && fflush(w.f) != 0) w.error = errno ? errno : EIO;
    if (!w.error && fsync(fileno(w.f)) != 0) w.error = errno;
    if (fclose(w.f) != 0 && !w.error) w.error = errno ? errno : EIO;
    if (w.error) {
        rc = zt_fail(err, ZT_EIO, "%s: write failed: %s", tmp, strerror(w.error));
        remove(tmp);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc =
            zt_fail(err, ZT_EIO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        remove(tmp);
    }
done:
    free(tmp);
    free(keep);
    return rc;
}
