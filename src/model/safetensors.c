/*
 * One .safetensors file -> tensor views in a zt_model.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype": "F16", "shape": [out, in], "data_offsets": [b, e]},
 * ..., "__metadata__": {...}}), then the data region, which offsets are
 * relative to. The file is mmapped read-only and tensors point into the
 * map, so loading costs the header parse only.
 *
 * Every number in the header is untrusted: the header length is checked
 * against the file size, offsets against the data region, and each
 * tensor's byte span against product(shape) * element size. Safetensors
 * shapes are row-major ([out, in], last dim contiguous); zt uses the GGUF
 * convention (ne[0] contiguous), so dims are reversed.
 *
 * The file format does not promise aligned data; a tensor whose start is not
 * a multiple of its element size is copied into an aligned owned buffer so
 * that backends may read it as an array of its type.
 */
#include "model/model.h"
#include "quant/quant.h"
#include "util/error.h"
#include "util/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Element size of a supported dtype and its zt type; 0 when unsupported. */
static size_t st_dtype(const char *dtype, int *type) {
    if (strcmp(dtype, "F32") == 0) return *type = ZT_F32, 4;
    if (strcmp(dtype, "F16") == 0) return *type = ZT_F16, 2;
    if (strcmp(dtype, "BF16") == 0) return *type = ZT_BF16, 2;
    return 0;
}

/* Reads a non-negative integer; false when v is anything else. */
static bool st_uint(const json_value *v, uint64_t *out) {
    int64_t i;
    if (!json_as_int(v, &i) || i < 0) return false;
    *out = (uint64_t)i;
    return true;
}

/* Validates one header entry and adds it to m. data: [data_size] region. */
static int st_add_tensor(const char *path, zt_model *m, const char *name, const json_value *t,
                         const unsigned char *data, uint64_t data_size,
                         safetensors_name_fn name_map, void *ctx, zt_error *err) {
    if (!json_is(t, JSON_OBJECT))
        return zt_fail(err, ZT_EFORMAT, "%s: tensor '%s' is not an object", path, name);
    const char *dtype = json_as_str(json_get(t, "dtype"));
    const json_value *shape = json_get(t, "shape");
    const json_value *offs = json_get(t, "data_offsets");
    if (!dtype)
        return zt_fail(err, ZT_EFORMAT, "%s: tensor '%s' has no \"dtype\" string", path, name);
    if (!json_is(shape, JSON_ARRAY))
        return zt_fail(err, ZT_EFORMAT, "%s: tensor '%s' has no \"shape\" array", path, name);
    uint64_t begin, end;
    if (!json_is(offs, JSON_ARRAY) || json_len(offs) != 2 || !st_uint(json_at(offs, 0), &begin) ||
        !st_uint(json_at(offs, 1), &end))
        return zt_fail(err, ZT_EFORMAT,
                       "%s: tensor '%s' needs \"data_offsets\": [begin, end] of two "
                       "non-negative integers",
                       path, name);
    if (begin > end || end > data_size)
        return zt_fail(err, ZT_EFORMAT,
                       "%s: tensor '%s' data_offsets [%llu, %llu] lie outside the data region "
                       "of %llu bytes",
                       path, name, (unsigned long long)begin, (unsigned long long)end,
                       (unsigned long long)data_size);

    char zt_name[ZT_NAME_MAX];
    if (name_map) {
        if (!name_map(name, zt_name, sizeof zt_name, ctx)) return ZT_OK;
    } else {
        if (strlen(name) >= sizeof zt_name)
            return zt_fail(err, ZT_EUNSUP, "%s: tensor name '%s' is longer than %d bytes", path,
                           name, ZT_NAME_MAX - 1);
        memcpy(zt_name, name, strlen(name) + 1);
    }

    int type = 0;
    size_t elem = st_dtype(dtype, &type);
    if (!elem)
        return zt_fail(err, ZT_EUNSUP,
                       "%s: tensor '%s' has dtype %s; supported are F32, F16 and BF16", path, name,
                       dtype);
    size_t n_dims = json_len(shape);
    if (n_dims > ZT_MAX_DIMS)
        return zt_fail(err, ZT_EUNSUP, "%s: tensor '%s' has %zu dimensions; at most %d supported",
                       path, name, n_dims, ZT_MAX_DIMS);
    int64_t ne[ZT_MAX_DIMS] = {1, 1, 1, 1};
    uint64_t n_elems = 1, n_bytes;
    char shape_text[96] = "";
    for (size_t k = 0; k < n_dims; k++) {
        uint64_t d;
        if (!st_uint(json_at(shape, k), &d) || d > INT64_MAX)
            return zt_fail(err, ZT_EFORMAT,
                           "%s: tensor '%s' shape holds something other than a "
                           "non-negative integer",
                           path, name);
        if (__builtin_mul_overflow(n_elems, d, &n_elems) || n_elems > INT64_MAX)
            return zt_fail(err, ZT_EFORMAT, "%s: tensor '%s' shape is impossibly large", path,
                           name);
        ne[n_dims - 1 - k] = (int64_t)d; /* row-major -> ne[0] contiguous */
        size_t at = strlen(shape_text);
        snprintf(shape_text + at, sizeof shape_text - at, "%s%llu", k ? ", " : "",
                 (unsigned long long)d);
    }
    if (__builtin_mul_overflow(n_elems, (uint64_t)elem, &n_bytes) || n_bytes != end - begin)
        return zt_fail(err, ZT_EFORMAT,
                       "%s: tensor '%s' of shape [%s] %s needs %llu bytes but data_offsets "
                       "span %llu",
                       path, name, shape_text, dtype,
                       (unsigned long long)n_elems * (unsigned long long)elem,
                       (unsigned long long)(end - begin));
    if (model_tensor(m, zt_name))
        return zt_fail(err, ZT_EFORMAT, "%s: tensor '%s' (as '%s') appears more than once", path,
                       name, zt_name);

    const void *src = data + begin;
    if ((uintptr_t)src % elem) {
        void *copy = malloc(n_bytes ? n_bytes : 1);
        if (!copy || !model_own(m, copy))
            return zt_fail(err, ZT_ENOMEM, "%s: out of memory copying tensor '%s'", path, name);
        memcpy(copy, src, n_bytes);
        src = copy;
    }
    zt_tensor *zt = model_add_tensor(m, zt_name);
    if (!zt) return zt_fail(err, ZT_ENOMEM, "%s: out of memory adding tensor '%s'", path, name);
    zt->type = type;
    zt->n_dims = n_dims ? (int)n_dims : 1; /* a scalar is a 1-element vector */
    memcpy(zt->ne, ne, sizeof ne);
    zt->data = src;
    zt->nbytes = n_bytes;
    return ZT_OK;
}

/* Maps the file at path and adds each of its tensors (renamed and filtered
 * by name_map when not NULL) to m. The map belongs to m from then on, also
 * on failure. */
int safetensors_load(const char *path, zt_model *m, safetensors_name_fn name_map, void *ctx,
                     zt_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return zt_fail(err, ZT_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return zt_fail(err, ZT_EIO, "%s: not a regular file", path);
    }
    uint64_t file_size = (uint64_t)st.st_size;
    if (file_size < 8) {
        close(fd);
        return zt_fail(err, ZT_EFORMAT,
                       "%s: file is %llu bytes, too short for a safetensors header", path,
                       (unsigned long long)file_size);
    }
    if (file_size > SIZE_MAX) {
        close(fd);
        return zt_fail(err, ZT_EUNSUP, "%s: file too large to map", path);
    }
    unsigned char *map = mmap(NULL, (size_t)file_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_errno = errno;
    close(fd);
    if (map == MAP_FAILED)
        return zt_fail(err, ZT_EIO, "%s: cannot map: %s", path, strerror(map_errno));
    if (model_add_map(m, map, (size_t)file_size) != ZT_OK) {
        munmap(map, (size_t)file_size);
        return zt_fail(err, ZT_ENOMEM, "%s: out of memory", path);
    }

    uint64_t header_len = 0;
    for (int k = 7; k >= 0; k--) header_len = header_len << 8 | map[k];
    if (header_len > file_size - 8)
        return zt_fail(err, ZT_EFORMAT,
                       "%s: header length %llu is larger than the file (%llu bytes)", path,
                       (unsigned long long)header_len, (unsigned long long)file_size);
    const char *header = (const char *)map + 8;
    if (header_len < 2 || header[0] != '{')
        return zt_fail(err, ZT_EFORMAT, "%s: header is not a JSON object (not a safetensors file?)",
                       path);
    json_value *h = json_parse(header, (size_t)header_len, err);
    if (!h) {
        if (err) err->code = ZT_EFORMAT;
        return zt_fail_prefix(err, "%s: header is not valid JSON", path);
    }

    const unsigned char *data = map + 8 + header_len;
    uint64_t data_size = file_size - 8 - header_len;
    int rc = ZT_OK;
    for (size_t i = 0; i < json_len(h) && rc == ZT_OK; i++) {
        size_t name_len;
        const char *name = json_key_at(h, i, &name_len);
        if (strcmp(name, "__metadata__") == 0) continue;
        if (strlen(name) != name_len || name_len == 0)
            rc = zt_fail(err, ZT_EFORMAT, "%s: a tensor name is empty or holds a NUL", path);
        else
            rc = st_add_tensor(path, m, name, json_at(h, i), data, data_size, name_map, ctx, err);
    }
    json_free(h);
    return rc;
}
