/*
 * fuzz_json — the JSON parser (src/util/json.c) and its string writers.
 *
 * For every input:
 *   1. json_parse(input). A document that parses is written back as JSON
 *      text (every string through json_buf_string) and must parse again
 *      to the same tree: same types, keys, string bytes, integers.
 *   2. The raw input, as arbitrary bytes, goes through json_write_stringn
 *      (invalid UTF-8 becomes U+FFFD) and json_buf_string; both results
 *      must parse as one JSON string.
 * Either failing is a bug in the parser or a writer, so the target aborts.
 */
#include "util/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Writes v as JSON text into b. */
static void write_value(json_buf *b, const json_value *v) {
    switch (v->type) {
    case JSON_NULL:
        json_buf_puts(b, "null");
        break;
    case JSON_BOOL:
        json_buf_puts(b, v->u.boolean ? "true" : "false");
        break;
    case JSON_NUMBER:
        if (v->u.num.is_int)
            json_buf_printf(b, "%lld", (long long)v->u.num.i);
        else if (isfinite(v->u.num.d))
            json_buf_printf(b, "%.17g", v->u.num.d);
        else
            json_buf_puts(b, "0"); /* cannot happen for text json_parse accepted */
        break;
    case JSON_STRING:
        json_buf_string(b, v->u.str.s, v->u.str.len);
        break;
    case JSON_ARRAY:
        json_buf_puts(b, "[");
        for (size_t i = 0; i < v->u.arr.n; i++) {
            if (i) json_buf_puts(b, ",");
            write_value(b, &v->u.arr.items[i]);
        }
        json_buf_puts(b, "]");
        break;
    case JSON_OBJECT:
        json_buf_puts(b, "{");
        for (size_t i = 0; i < v->u.obj.n; i++) {
            if (i) json_buf_puts(b, ",");
            json_buf_string(b, v->u.obj.members[i].key, v->u.obj.members[i].key_len);
            json_buf_puts(b, ":");
            write_value(b, &v->u.obj.members[i].value);
        }
        json_buf_puts(b, "}");
        break;
    }
}

/* The two trees are equal (numbers: integers exactly, doubles by value). */
static bool same(const json_value *a, const json_value *b) {
    if (a->type != b->type) return false;
    switch (a->type) {
    case JSON_NULL:
        return true;
    case JSON_BOOL:
        return a->u.boolean == b->u.boolean;
    case JSON_NUMBER:
        if (a->u.num.is_int) return b->u.num.is_int && a->u.num.i == b->u.num.i;
        return !isfinite(a->u.num.d) || a->u.num.d == b->u.num.d;
    case JSON_STRING:
        return a->u.str.len == b->u.str.len && !memcmp(a->u.str.s, b->u.str.s, a->u.str.len);
    case JSON_ARRAY:
        if (a->u.arr.n != b->u.arr.n) return false;
        for (size_t i = 0; i < a->u.arr.n; i++)
            if (!same(&a->u.arr.items[i], &b->u.arr.items[i])) return false;
        return true;
    case JSON_OBJECT:
        if (a->u.obj.n != b->u.obj.n) return false;
        for (size_t i = 0; i < a->u.obj.n; i++) {
            const json_member *x = &a->u.obj.members[i], *y = &b->u.obj.members[i];
            if (x->key_len != y->key_len || memcmp(x->key, y->key, x->key_len) ||
                !same(&x->value, &y->value))
                return false;
        }
        return true;
    }
    return false;
}

/* text must parse as one JSON string. */
static void check_string_literal(const char *text, size_t len) {
    zt_error err;
    json_value *v = json_parse(text, len, &err);
    if (!v || v->type != JSON_STRING) abort();
    json_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    zt_error err = {0};
    json_value *root = json_parse((const char *)data, size, &err);
    if (root) {
        json_buf b = {0};
        write_value(&b, root);
        if (b.oom) abort();
        json_value *again = json_parse(b.data, b.len, &err);
        if (!again || !same(root, again)) abort();
        json_free(again);
        json_buf_free(&b);
        json_free(root);
    } else if (!err.msg[0]) {
        abort(); /* every refusal says why */
    }

    json_buf s = {0};
    json_buf_string(&s, (const char *)data, size);
    if (s.oom) abort();
    check_string_literal(s.data, s.len);
    json_buf_free(&s);

    char *mem = NULL;
    size_t mem_len = 0;
    FILE *f = open_memstream(&mem, &mem_len);
    if (!f) abort();
    if (json_write_stringn(f, (const char *)data, size) != 0) abort();
    fclose(f);
    check_string_literal(mem, mem_len);
    free(mem);
    return 0;
}
