/*
 * A strict JSON (RFC 8259) parser into a read-only DOM, and a string writer.
 *
 * Used for config.json, safetensors headers, tokenizer.json (megabytes,
 * ~100k object members) and HTTP request bodies, so it is one pass over the
 * text with every node, key and string in one arena that json_free releases
 * at once. Input is untrusted: nesting is capped at JSON_MAX_DEPTH (the
 * parser recurses, so the cap also bounds the C stack), strings must be
 * valid UTF-8 with no raw control characters, \u escapes must pair
 * surrogates, numbers follow the grammar exactly (no leading zeros, no
 * "+1", no ".5", no NaN), duplicate keys in one object are rejected, and
 * nothing but whitespace may follow the value. A leading UTF-8 BOM is
 * skipped (RFC 8259 section 8.1 allows it).
 *
 * Errors are one line with the byte offset of the fault, e.g.
 * "expected ',' or '}' at byte 123"; callers prefix the file name.
 */
#ifndef ZT_UTIL_JSON_H
#define ZT_UTIL_JSON_H

#include "zt.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 512               /* nested arrays/objects */
#define JSON_MAX_TEXT  ((size_t)1 << 31) /* bytes of input */

typedef enum json_type {
    JSON_NULL,
    JSON_BOOL,
    JSON_NUMBER,
    JSON_STRING,
    JSON_ARRAY,
    JSON_OBJECT
} json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

struct json_value {
    json_type type;
    union {
        bool boolean;
        struct {
            double d;    /* always set */
            int64_t i;   /* set when is_int */
            bool is_int; /* the value is integral and exactly representable:
                            an integer literal within int64, or an integral
                            double within +-2^53 ("1e3", "2.0") */
        } num;
        struct {
            const char *s; /* UTF-8, NUL-terminated; may hold NULs from \u0000 */
            size_t len;    /* bytes, without the terminator */
        } str;
        struct {
            json_value *items; /* [n] in document order */
            size_t n;
        } arr;
        struct {
            json_member *members; /* [n] in document order, keys unique */
            size_t n;
        } obj;
    } u;
};

struct json_member {
    const char *key; /* UTF-8, NUL-terminated */
    size_t key_len;
    json_value value;
};

/* Parses len bytes of text (need not be NUL-terminated). Returns the root,
 * to be released with json_free, or NULL with err filled (ZT_EINVAL for
 * malformed text, ZT_ENOMEM). */
json_value *json_parse(const char *text, size_t len, zt_error *err);
/* Frees a whole document; only a root that json_parse returned. NULL is ok. */
void json_free(json_value *root);

/* ---- reading: every accessor accepts NULL and wrong types ------------ */

/* Member `key` of an object, or NULL (missing, or v is not an object).
 * A linear scan: iterate with json_key_at/json_at over big objects. */
const json_value *json_get(const json_value *obj, const char *key);
/* Element i of an array, or value of member i of an object; NULL when out
 * of range or not a container. */
const json_value *json_at(const json_value *v, size_t i);
/* Key of member i of an object (its byte length in *len when not NULL). */
const char *json_key_at(const json_value *obj, size_t i, size_t *len);
/* Elements of an array, members of an object, bytes of a string; else 0. */
size_t json_len(const json_value *v);

bool json_is(const json_value *v, json_type type);
const char *json_type_name(json_type type); /* "object", "string", ... */
/* String contents or NULL when v is not a string. */
const char *json_as_str(const json_value *v);
/* These return false (and leave *out) when v is not of that kind. */
bool json_as_bool(const json_value *v, bool *out);
bool json_as_double(const json_value *v, double *out);
bool json_as_int(const json_value *v, int64_t *out); /* numbers with is_int */

/* ---- writing --------------------------------------------------------- */

/* A growable byte buffer for building JSON text. After an allocation
 * failure `oom` is set and further appends are ignored; data stays
 * NUL-terminated whenever it is not NULL. */
typedef struct json_buf {
    char *data; /* [len + 1] owned */
    size_t len, cap;
    bool oom;
} json_buf;

void json_buf_append(json_buf *b, const char *bytes, size_t n);
void json_buf_puts(json_buf *b, const char *s);
void json_buf_printf(json_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends n bytes of s as a quoted JSON string literal (see below). */
void json_buf_string(json_buf *b, const char *s, size_t n);
void json_buf_free(json_buf *b);

/* Writes s as a quoted JSON string literal: '"' and '\\' escaped, control
 * characters as \n, \t, ... or \u00XX, and any byte sequence that is not
 * valid UTF-8 replaced by U+FFFD, so the output is always valid JSON.
 * Returns 0, or -1 when the stream reports an error. */
int json_write_string(FILE *f, const char *s);
int json_write_stringn(FILE *f, const char *s, size_t n);

#endif
