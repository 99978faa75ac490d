/*
 * JSON parser (RFC 8259, strict) and string writer; see json.h for the
 * contract.
 *
 * Parsing is recursive descent in one pass. Children of an open container
 * are collected on one shared scratch stack and copied into the arena as a
 * contiguous array when the container closes, so arrays and objects are
 * plain C arrays in the DOM and nothing is reallocated per element. A
 * string is scanned once to find its closing quote (which bounds its
 * decoded size), then decoded and validated straight into the arena.
 *
 * Numbers: integer literals are converted exactly by hand; decimals whose
 * significand fits in 53 bits and whose power of ten is at most 22 use the
 * exact fast path (one correctly rounded multiply or divide, as Clinger
 * showed); anything else goes to strtod_l in the "C" locale, so the host
 * program's setlocale() cannot change what "0.5" means.
 */
#include "util/json.h"

#include "util/error.h"

#include <errno.h>
#include <locale.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- arena ----------------------------------------------------------- */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t cap, used, pad;
    unsigned char data[]; /* 16-aligned: malloc's alignment, 32-byte header */
} arena_chunk;
_Static_assert(offsetof(arena_chunk, data) % 16 == 0, "arena data alignment");

/* The root is the first member, so json_free can get back to the doc. */
typedef struct json_doc {
    json_value root;
    arena_chunk *chunks; /* newest first */
    size_t next_chunk;   /* capacity of the next chunk to allocate */
} json_doc;

#define ARENA_MIN_CHUNK ((size_t)64 << 10)
#define ARENA_MAX_CHUNK ((size_t)64 << 20)

/* size bytes aligned to align (a power of two <= 16), or NULL. */
static void *arena_alloc(json_doc *doc, size_t size, size_t align) {
    arena_chunk *c = doc->chunks;
    size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (!c || at > c->cap || c->cap - at < size) {
        size_t cap = doc->next_chunk > size ? doc->next_chunk : size;
        c = malloc(sizeof *c + cap);
        if (!c) return NULL;
        c->cap = cap;
        c->used = 0;
        c->next = doc->chunks;
        doc->chunks = c;
        if (doc->next_chunk < ARENA_MAX_CHUNK) doc->next_chunk *= 2;
        at = 0;
    }
    c->used = at + size;
    return c->data + at;
}

static void doc_free(json_doc *doc) {
    arena_chunk *c = doc->chunks;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(doc);
}

void json_free(json_value *root) {
    if (root) doc_free((json_doc *)root);
}

/* ---- UTF-8 ----------------------------------------------------------- */

/* Length (1-4) of the well-formed UTF-8 sequence at s (s < e), or 0: no
 * overlong forms, no encoded surrogates, nothing above U+10FFFF. */
static size_t utf8_seq_len(const unsigned char *s, const unsigned char *e) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else
        return 0;
    if ((size_t)(e - s) < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80) return 0;
    return n;
}

static size_t utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---- parser ---------------------------------------------------------- */

typedef struct json_parser {
    const unsigned char *begin, *p, *end;
    json_doc *doc;
    int depth;
    json_member *stack; /* [sp] children of the open containers, innermost last */
    size_t sp, stack_cap;
    uint32_t *dup_table; /* [dup_cap] scratch hash of member indices + 1 */
    size_t dup_cap;
    zt_error *err;
} json_parser;

static size_t offset(const json_parser *ps, const unsigned char *at) {
    return (size_t)(at - ps->begin);
}

/* Describes the byte at `at` for an error message. */
static const char *found(const json_parser *ps, const unsigned char *at, char buf[16]) {
    if (at >= ps->end) return "end of input";
    if (*at >= 0x21 && *at < 0x7F)
        snprintf(buf, 16, "'%c'", *at);
    else
        snprintf(buf, 16, "byte 0x%02x", *at);
    return buf;
}

static int fail_expected(json_parser *ps, const char *what) {
    char buf[16];
    return zt_fail(ps->err, ZT_EINVAL, "expected %s at byte %zu, found %s", what, offset(ps, ps->p),
                   found(ps, ps->p, buf));
}

static int fail_oom(json_parser *ps) {
    return zt_fail(ps->err, ZT_ENOMEM, "out of memory at byte %zu", offset(ps, ps->p));
}

static inline void skip_ws(json_parser *ps) {
    const unsigned char *p = ps->p, *e = ps->end;
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

static int push_member(json_parser *ps, const json_member *m) {
    if (ps->sp == ps->stack_cap) {
        size_t cap = ps->stack_cap ? ps->stack_cap * 2 : 256;
        json_member *s = realloc(ps->stack, cap * sizeof *s);
        if (!s) return fail_oom(ps);
        ps->stack = s;
        ps->stack_cap = cap;
    }
    ps->stack[ps->sp++] = *m;
    return ZT_OK;
}

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int k = 0; k < 4; k++) {
        unsigned c = s[k], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v * 16 + d;
    }
    *out = v;
    return 0;
}

/* Parses the string literal at ps->p (a '"') into the arena. */
static int parse_string(json_parser *ps, const char **out, size_t *out_len) {
    const unsigned char *open = ps->p, *s = open + 1, *e = ps->end, *q = s;
    while (q < e && *q != '"') {
        if (*q == '\\' && ++q == e) break;
        q++;
    }
    if (q >= e)
        return zt_fail(ps->err, ZT_EINVAL, "unterminated string starting at byte %zu",
                       offset(ps, open));
    /* decoding never grows the text: \uXXXX is 6 bytes for at most 3 */
    char *dst = arena_alloc(ps->doc, (size_t)(q - s) + 1, 1), *o = dst;
    if (!dst) return fail_oom(ps);
    while (s < q) {
        unsigned c = *s;
        if (c >= 0x20 && c < 0x80 && c != '\\') {
            *o++ = (char)c;
            s++;
        } else if (c < 0x20) {
            return zt_fail(ps->err, ZT_EINVAL,
                           "control character 0x%02x in string at byte %zu (must be escaped)", c,
                           offset(ps, s));
        } else if (c >= 0x80) {
            size_t n = utf8_seq_len(s, q);
            if (!n)
                return zt_fail(ps->err, ZT_EINVAL, "invalid UTF-8 in string at byte %zu",
                               offset(ps, s));
            memcpy(o, s, n);
            o += n;
            s += n;
        } else { /* backslash: the scan above guarantees s + 1 < q */
            const unsigned char *esc = s;
            switch (s[1]) {
            case '"':
                *o++ = '"';
                break;
            case '\\':
                *o++ = '\\';
                break;
            case '/':
                *o++ = '/';
                break;
            case 'b':
                *o++ = '\b';
                break;
            case 'f':
                *o++ = '\f';
                break;
            case 'n':
                *o++ = '\n';
                break;
            case 'r':
                *o++ = '\r';
                break;
            case 't':
                *o++ = '\t';
                break;
            case 'u': {
                uint32_t cp, lo;
                if (q - s < 6 || hex4(s + 2, &cp))
                    return zt_fail(ps->err, ZT_EINVAL,
                                   "bad \\u escape (needs 4 hex digits) at byte %zu",
                                   offset(ps, esc));
                if (cp >= 0xDC00 && cp <= 0xDFFF)
                    return zt_fail(ps->err, ZT_EINVAL, "lone low surrogate \\u%04X at byte %zu",
                                   (unsigned)cp, offset(ps, esc));
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    if (q - s < 12 || s[6] != '\\' || s[7] != 'u' || hex4(s + 8, &lo) ||
                        lo < 0xDC00 || lo > 0xDFFF)
                        return zt_fail(ps->err, ZT_EINVAL,
                                       "lone high surrogate \\u%04X at byte %zu (not followed "
                                       "by a \\uDC00-\\uDFFF escape)",
                                       (unsigned)cp, offset(ps, esc));
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    s += 6;
                }
                o += utf8_encode(cp, o);
                s += 4; /* plus the 2 below */
                break;
            }
            default: {
                char buf[16];
                return zt_fail(ps->err, ZT_EINVAL, "bad escape: backslash then %s at byte %zu",
                               found(ps, s + 1, buf), offset(ps, esc));
            }
            }
            s += 2;
        }
    }
    *o = '\0';
    *out = dst;
    *out_len = (size_t)(o - dst);
    ps->p = q + 1;
    return ZT_OK;
}

static inline bool is_digit(unsigned c) { return c - '0' < 10; }

static int parse_number(json_parser *ps, json_value *v) {
    const unsigned char *start = ps->p, *p = start, *e = ps->end;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    if (p >= e || !is_digit(*p)) {
        ps->p = p;
        return fail_expected(ps, "a digit");
    }
    /* significand digits, without leading zeros, as long as they fit */
    uint64_t mant = 0;
    int n_sig = 0;          /* significant digits seen */
    bool mant_exact = true; /* every significant digit is in mant */
    long frac_digits = 0;   /* digits after the point that went into mant */
    if (*p == '0') {
        p++;
        if (p < e && is_digit(*p)) {
            ps->p = p;
            return zt_fail(ps->err, ZT_EINVAL, "leading zero in number at byte %zu",
                           offset(ps, start));
        }
    } else {
        for (; p < e && is_digit(*p); p++) {
            if (n_sig == 19) {
                mant_exact = false; /* strtod_l below sees every digit */
                continue;
            }
            mant = mant * 10 + (uint64_t)(*p - '0');
            n_sig++;
        }
    }
    bool integer_literal = true;
    if (p < e && *p == '.') {
        integer_literal = false;
        p++;
        if (p >= e || !is_digit(*p)) {
            ps->p = p;
            return fail_expected(ps, "a digit after '.'");
        }
        for (; p < e && is_digit(*p); p++) {
            if (n_sig == 0 && *p == '0') {
                frac_digits++;
                continue;
            }
            if (n_sig == 19) {
                mant_exact = mant_exact && *p == '0'; /* trailing zeros change nothing */
                continue;
            }
            mant = mant * 10 + (uint64_t)(*p - '0');
            n_sig++;
            frac_digits++;
        }
    }
    long exp10 = 0;
    if (p < e && (*p == 'e' || *p == 'E')) {
        integer_literal = false;
        p++;
        bool eneg = false;
        if (p < e && (*p == '+' || *p == '-')) eneg = *p++ == '-';
        if (p >= e || !is_digit(*p)) {
            ps->p = p;
            return fail_expected(ps, "a digit in the exponent");
        }
        for (; p < e && is_digit(*p); p++)
            if (exp10 < 100000) exp10 = exp10 * 10 + (*p - '0');
        if (eneg) exp10 = -exp10;
    }
    ps->p = p;
    v->type = JSON_NUMBER;
    v->u.num.is_int = false;

    if (integer_literal && mant_exact) {
        /* n_sig <= 19 digits: fits u64; int64 needs <= 2^63 - 1 (2^63 if negative) */
        uint64_t lim = neg ? (uint64_t)1 << 63 : ((uint64_t)1 << 63) - 1;
        if (mant <= lim) {
            v->u.num.is_int = true;
            v->u.num.i =
                neg ? (mant == (uint64_t)1 << 63 ? INT64_MIN : -(int64_t)mant) : (int64_t)mant;
            v->u.num.d = neg ? -(double)mant : (double)mant;
            return ZT_OK;
        }
    }
    long e10 = exp10 - frac_digits;
    double d;
    if (mant_exact && mant <= ((uint64_t)1 << 53) && e10 >= -22 && e10 <= 22) {
        static const double pow10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                         1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                         1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
        d = e10 < 0 ? (double)mant / pow10[-e10] : (double)mant * pow10[e10];
        if (neg) d = -d;
    } else {
        size_t n = (size_t)(p - start);
        char small[64], *buf = n < sizeof small ? small : malloc(n + 1);
        if (!buf) return fail_oom(ps);
        memcpy(buf, start, n);
        buf[n] = '\0';
        locale_t c_locale = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (!c_locale) {
            if (buf != small) free(buf);
            return fail_oom(ps);
        }
        errno = 0;
        d = strtod_l(buf, NULL, c_locale);
        int range = errno;
        freelocale(c_locale);
        if (buf != small) free(buf);
        if (range == ERANGE && (d > 1.0 || d < -1.0))
            return zt_fail(ps->err, ZT_EINVAL, "number out of range at byte %zu",
                           offset(ps, start));
    }
    v->u.num.d = d;
    if (d >= -9007199254740992.0 && d <= 9007199254740992.0 && d == (double)(int64_t)d) {
        v->u.num.is_int = true;
        v->u.num.i = (int64_t)d;
    }
    return ZT_OK;
}

static int parse_value(json_parser *ps, json_value *v);

static int enter(json_parser *ps) {
    if (++ps->depth > JSON_MAX_DEPTH)
        return zt_fail(ps->err, ZT_EINVAL, "nesting deeper than %d at byte %zu", JSON_MAX_DEPTH,
                       offset(ps, ps->p));
    ps->p++; /* the '[' or '{' */
    return ZT_OK;
}

static int parse_array(json_parser *ps, json_value *v) {
    int rc = enter(ps);
    if (rc) return rc;
    size_t base = ps->sp;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
    } else {
        for (;;) {
            json_member m = {0};
            if ((rc = parse_value(ps, &m.value)) || (rc = push_member(ps, &m))) return rc;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                continue;
            }
            if (ps->p < ps->end && *ps->p == ']') {
                ps->p++;
                break;
            }
            return fail_expected(ps, "',' or ']'");
        }
    }
    size_t n = ps->sp - base;
    json_value *items = n ? arena_alloc(ps->doc, n * sizeof *items, 16) : NULL;
    if (n && !items) return fail_oom(ps);
    for (size_t k = 0; k < n; k++) items[k] = ps->stack[base + k].value;
    ps->sp = base;
    v->type = JSON_ARRAY;
    v->u.arr.items = items;
    v->u.arr.n = n;
    ps->depth--;
    return ZT_OK;
}

static uint64_t key_hash(const char *k, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    return h;
}

static bool same_key(const json_member *a, const json_member *b) {
    return a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0;
}

static int fail_duplicate(json_parser *ps, const json_member *m) {
    return zt_fail(ps->err, ZT_EINVAL, "duplicate key \"%.*s\" in object ending at byte %zu",
                   m->key_len > 64 ? 64 : (int)m->key_len, m->key, offset(ps, ps->p - 1));
}

/* Rejects an object whose members [n] repeat a key: pairwise when small,
 * else an open-addressing table reused across objects. */
static int check_unique_keys(json_parser *ps, const json_member *mem, size_t n) {
    if (n <= 16) {
        for (size_t a = 1; a < n; a++)
            for (size_t b = 0; b < a; b++)
                if (same_key(&mem[a], &mem[b])) return fail_duplicate(ps, &mem[a]);
        return ZT_OK;
    }
    size_t cap = 64;
    while (cap < 2 * n) cap *= 2;
    if (cap > ps->dup_cap) {
        uint32_t *t = realloc(ps->dup_table, cap * sizeof *t);
        if (!t) return fail_oom(ps);
        ps->dup_table = t;
        ps->dup_cap = cap;
    }
    uint32_t *table = ps->dup_table;
    memset(table, 0, cap * sizeof *table);
    for (size_t k = 0; k < n; k++) {
        size_t slot = (size_t)key_hash(mem[k].key, mem[k].key_len) & (cap - 1);
        while (table[slot]) {
            if (same_key(&mem[table[slot] - 1], &mem[k])) return fail_duplicate(ps, &mem[k]);
            slot = (slot + 1) & (cap - 1);
        }
        table[slot] = (uint32_t)(k + 1);
    }
    return ZT_OK;
}

static int parse_object(json_parser *ps, json_value *v) {
    int rc = enter(ps);
    if (rc) return rc;
    size_t base = ps->sp;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
    } else {
        for (;;) {
            json_member m = {0};
            if (ps->p >= ps->end || *ps->p != '"') return fail_expected(ps, "a string key");
            if ((rc = parse_string(ps, &m.key, &m.key_len))) return rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail_expected(ps, "':'");
            ps->p++;
            if ((rc = parse_value(ps, &m.value)) || (rc = push_member(ps, &m))) return rc;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                skip_ws(ps);
                continue;
            }
            if (ps->p < ps->end && *ps->p == '}') {
                ps->p++;
                break;
            }
            return fail_expected(ps, "',' or '}'");
        }
    }
    size_t n = ps->sp - base;
    if (n > 1 && (rc = check_unique_keys(ps, ps->stack + base, n))) return rc;
    json_member *members = n ? arena_alloc(ps->doc, n * sizeof *members, 16) : NULL;
    if (n && !members) return fail_oom(ps);
    if (n) memcpy(members, ps->stack + base, n * sizeof *members);
    ps->sp = base;
    v->type = JSON_OBJECT;
    v->u.obj.members = members;
    v->u.obj.n = n;
    ps->depth--;
    return ZT_OK;
}

static int parse_literal(json_parser *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail_expected(ps, "a JSON value");
    ps->p += n;
    return ZT_OK;
}

static int parse_value(json_parser *ps, json_value *v) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail_expected(ps, "a JSON value");
    switch (*ps->p) {
    case '{':
        return parse_object(ps, v);
    case '[':
        return parse_array(ps, v);
    case '"':
        v->type = JSON_STRING;
        return parse_string(ps, &v->u.str.s, &v->u.str.len);
    case 't':
        v->type = JSON_BOOL;
        v->u.boolean = true;
        return parse_literal(ps, "true", 4);
    case 'f':
        v->type = JSON_BOOL;
        v->u.boolean = false;
        return parse_literal(ps, "false", 5);
    case 'n':
        v->type = JSON_NULL;
        return parse_literal(ps, "null", 4);
    default:
        if (*ps->p == '-' || is_digit(*ps->p)) return parse_number(ps, v);
        return fail_expected(ps, "a JSON value");
    }
}

json_value *json_parse(const char *text, size_t len, zt_error *err) {
    if (!text && len) {
        zt_fail(err, ZT_EINVAL, "no JSON text");
        return NULL;
    }
    if (!text) text = "";
    if (len > JSON_MAX_TEXT) {
        zt_fail(err, ZT_EINVAL, "JSON text of %zu bytes is larger than the limit of %zu", len,
                JSON_MAX_TEXT);
        return NULL;
    }
    json_doc *doc = calloc(1, sizeof *doc);
    if (!doc) {
        zt_fail(err, ZT_ENOMEM, "out of memory");
        return NULL;
    }
    /* the DOM is typically 1-3x the text: start near that, then double */
    doc->next_chunk = len < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : len;
    if (doc->next_chunk > ARENA_MAX_CHUNK) doc->next_chunk = ARENA_MAX_CHUNK;

    json_parser ps = {.begin = (const unsigned char *)text,
                      .p = (const unsigned char *)text,
                      .end = (const unsigned char *)text + len,
                      .doc = doc,
                      .err = err};
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) ps.p += 3;
    int rc = parse_value(&ps, &doc->root);
    if (!rc) {
        skip_ws(&ps);
        if (ps.p < ps.end) {
            char buf[16];
            rc = zt_fail(err, ZT_EINVAL, "unexpected %s after the JSON value at byte %zu",
                         found(&ps, ps.p, buf), offset(&ps, ps.p));
        }
    }
    free(ps.stack);
    free(ps.dup_table);
    if (rc) {
        doc_free(doc);
        return NULL;
    }
    return &doc->root;
}

/* ---- accessors ------------------------------------------------------- */

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->u.obj.n; i++) {
        const json_member *m = &obj->u.obj.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return &m->value;
    }
    return NULL;
}

const json_value *json_at(const json_value *v, size_t i) {
    if (!v) return NULL;
    if (v->type == JSON_ARRAY) return i < v->u.arr.n ? &v->u.arr.items[i] : NULL;
    if (v->type == JSON_OBJECT) return i < v->u.obj.n ? &v->u.obj.members[i].value : NULL;
    return NULL;
}

const char *json_key_at(const json_value *obj, size_t i, size_t *len) {
    if (!obj || obj->type != JSON_OBJECT || i >= obj->u.obj.n) return NULL;
    if (len) *len = obj->u.obj.members[i].key_len;
    return obj->u.obj.members[i].key;
}

size_t json_len(const json_value *v) {
    if (!v) return 0;
    switch (v->type) {
    case JSON_ARRAY:
        return v->u.arr.n;
    case JSON_OBJECT:
        return v->u.obj.n;
    case JSON_STRING:
        return v->u.str.len;
    default:
        return 0;
    }
}

bool json_is(const json_value *v, json_type type) { return v && v->type == type; }

const char *json_type_name(json_type type) {
    switch (type) {
    case JSON_NULL:
        return "null";
    case JSON_BOOL:
        return "boolean";
    case JSON_NUMBER:
        return "number";
    case JSON_STRING:
        return "string";
    case JSON_ARRAY:
        return "array";
    case JSON_OBJECT:
        return "object";
    }
    return "?";
}

const char *json_as_str(const json_value *v) {
    return v && v->type == JSON_STRING ? v->u.str.s : NULL;
}

bool json_as_bool(const json_value *v, bool *out) {
    if (!v || v->type != JSON_BOOL) return false;
    *out = v->u.boolean;
    return true;
}

bool json_as_double(const json_value *v, double *out) {
    if (!v || v->type != JSON_NUMBER) return false;
    *out = v->u.num.d;
    return true;
}

bool json_as_int(const json_value *v, int64_t *out) {
    if (!v || v->type != JSON_NUMBER || !v->u.num.is_int) return false;
    *out = v->u.num.i;
    return true;
}

/* ---- writer ---------------------------------------------------------- */

typedef void (*json_sink)(void *ctx, const char *bytes, size_t n);

/* Emits s[n] as a JSON string literal through put, in runs of safe bytes. */
static void escape_string(const char *str, size_t n, json_sink put, void *ctx) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str, *e = s + n, *run = s;
    put(ctx, "\"", 1);
    while (s < e) {
        unsigned c = *s;
        size_t len = 1;
        const char *rep = NULL;
        char ubuf[7];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0x80) {
            len = utf8_seq_len(s, e);
            if (len) {
                s += len;
                continue;
            }
            len = 1;
            rep = "\\ufffd";
        } else if (c == '"')
            rep = "\\\"";
        else if (c == '\\')
            rep = "\\\\";
        else if (c == '\n')
            rep = "\\n";
        else if (c == '\r')
            rep = "\\r";
        else if (c == '\t')
            rep = "\\t";
        else if (c == '\b')
            rep = "\\b";
        else if (c == '\f')
            rep = "\\f";
        else {
            memcpy(ubuf, "\\u00", 4);
            ubuf[4] = hex[c >> 4];
            ubuf[5] = hex[c & 15];
            ubuf[6] = '\0';
            rep = ubuf;
        }
        if (s > run) put(ctx, (const char *)run, (size_t)(s - run));
        put(ctx, rep, strlen(rep));
        s += len;
        run = s;
    }
    if (s > run) put(ctx, (const char *)run, (size_t)(s - run));
    put(ctx, "\"", 1);
}

void json_buf_append(json_buf *b, const char *bytes, size_t n) {
    if (b->oom) return;
    if (b->cap - b->len <= n || !b->data) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->len <= n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = true;
                return;
            }
            cap *= 2;
        }
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void json_buf_puts(json_buf *b, const char *s) { json_buf_append(b, s, strlen(s)); }

void json_buf_printf(json_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        json_buf_append(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = true;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    json_buf_append(b, big, (size_t)n);
    free(big);
}

static void buf_sink(void *ctx, const char *bytes, size_t n) { json_buf_append(ctx, bytes, n); }

void json_buf_string(json_buf *b, const char *s, size_t n) { escape_string(s, n, buf_sink, b); }

void json_buf_free(json_buf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

typedef struct file_sink_ctx {
    FILE *f;
    int failed;
} file_sink_ctx;

static void file_sink(void *ctx, const char *bytes, size_t n) {
    file_sink_ctx *fc = ctx;
    if (!fc->failed && fwrite(bytes, 1, n, fc->f) != n) fc->failed = 1;
}

int json_write_stringn(FILE *f, const char *s, size_t n) {
    file_sink_ctx fc = {f, 0};
    escape_string(s, n, file_sink, &fc);
    return fc.failed ? -1 : 0;
}

int json_write_string(FILE *f, const char *s) { return json_write_stringn(f, s, strlen(s)); }
