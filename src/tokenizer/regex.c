/*
 * A small backtracking regex matcher for pre-tokenizer patterns (regex.h).
 *
 * Why backtracking: the reference (transformers.js) splits with JavaScript
 * regexes, whose answer is "the first alternative, with the greediest
 * quantifiers, that lets the rest match" — e.g. "\s+(?!\S)" gives back one
 * space before a word. A backtracking matcher reproduces that by
 * construction, for any pattern a tokenizer.json carries.
 *
 * The pattern compiles to a little program with relative jumps, so the code
 * of a group can be copied to repeat it. A quantifier on a single-character
 * atom becomes one REP instruction that counts the run and then tries the
 * rest from the longest run down, so "\p{L}+" over a megabyte of letters
 * costs no stack. Other choice points recurse; their depth is bounded by the
 * pattern (alternatives, lookaheads), except for loops over groups, which
 * stop with "no match" at RE_MAX_DEPTH.
 */
#include "tokenizer/regex.h"

#include "tokenizer/unicode.h"
#include "util/error.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define RE_MAX_DEPTH 20000

enum re_op {
    OP_CHAR,  /* a: code point */
    OP_CLASS, /* a: class index */
    OP_REP,   /* a: class index, b: min, c: max (-1 = unbounded), greedy */
    OP_SPLIT, /* try pc+a first, then pc+b */
    OP_JMP,   /* pc += a */
    OP_LOOK,  /* lookahead, neg; sub-program at pc+1 of a instructions */
    OP_BOL,
    OP_EOL,
    OP_MATCH
};

typedef struct re_inst {
    uint8_t op;
    bool flag; /* OP_REP: greedy; OP_LOOK: negative */
    int32_t a, b, c;
} re_inst;

enum re_item_kind { IT_RANGE, IT_GC, IT_SPACE, IT_DIGIT, IT_WORD };

typedef struct re_item {
    uint8_t kind;
    bool neg;         /* \S, \P{..}, \D, \W */
    uint32_t lo, hi;  /* IT_RANGE */
    uint32_t gc_mask; /* IT_GC: bit per enum uni_gc */
} re_item;

typedef struct re_class {
    re_item *items; /* [n] owned */
    int n;
    bool neg; /* [^...] */
} re_class;

struct tok_regex {
    re_inst *code; /* [n_code] */
    int n_code, cap_code;
    re_class *classes; /* [n_classes] */
    int n_classes, cap_classes;
};

/* ---- compiler -------------------------------------------------------- */

typedef struct re_parser {
    tok_regex *re;
    const char *src; /* the pattern */
    size_t pos, len;
    bool icase;
    zt_error *err;
    int rc;
} re_parser;

static int perr(re_parser *p, const char *what) {
    if (p->rc == ZT_OK)
        p->rc = zt_fail(p->err, ZT_EUNSUP, "regex: %s at offset %zu of \"%.60s\"", what, p->pos,
                        p->src);
    return p->rc;
}

static int emit(re_parser *p, re_inst in) {
    tok_regex *re = p->re;
    if (re->n_code == re->cap_code) {
        int cap = re->cap_code ? re->cap_code * 2 : 64;
        re_inst *c = realloc(re->code, (size_t)cap * sizeof *c);
        if (!c) return p->rc = zt_fail(p->err, ZT_ENOMEM, "out of memory");
        re->code = c;
        re->cap_code = cap;
    }
    re->code[re->n_code++] = in;
    return ZT_OK;
}

/* Inserts `in` at index `at`, shifting the code after it (relative jumps
 * inside the shifted block stay valid; nothing jumps into it from before). */
static int insert(re_parser *p, int at, re_inst in) {
    if (emit(p, in) != ZT_OK) return p->rc;
    tok_regex *re = p->re;
    memmove(re->code + at + 1, re->code + at, (size_t)(re->n_code - 1 - at) * sizeof *re->code);
    re->code[at] = in;
    return ZT_OK;
}

static int new_class(re_parser *p, bool neg) {
    tok_regex *re = p->re;
    if (re->n_classes == re->cap_classes) {
        int cap = re->cap_classes ? re->cap_classes * 2 : 16;
        re_class *c = realloc(re->classes, (size_t)cap * sizeof *c);
        if (!c) return p->rc = zt_fail(p->err, ZT_ENOMEM, "out of memory"), -1;
        re->classes = c;
        re->cap_classes = cap;
    }
    re->classes[re->n_classes] = (re_class){NULL, 0, neg};
    return re->n_classes++;
}

static int add_item(re_parser *p, int cls, re_item it) {
    re_class *c = &p->re->classes[cls];
    re_item *items = realloc(c->items, (size_t)(c->n + 1) * sizeof *items);
    if (!items) return p->rc = zt_fail(p->err, ZT_ENOMEM, "out of memory");
    items[c->n++] = it;
    c->items = items;
    return ZT_OK;
}

/* Adds lo..hi, and under (?i) its other-case ASCII letters too. */
static int add_range(re_parser *p, int cls, uint32_t lo, uint32_t hi) {
    if (add_item(p, cls, (re_item){IT_RANGE, false, lo, hi, 0}) != ZT_OK) return p->rc;
    if (!p->icase) return ZT_OK;
    for (int k = 0; k < 2; k++) {
        uint32_t a = k ? 'a' : 'A', z = a + 25, flip = k ? -32u : 32u;
        uint32_t l = lo > a ? lo : a, h = hi < z ? hi : z;
        if (l <= h && add_item(p, cls, (re_item){IT_RANGE, false, l + flip, h + flip, 0}) != ZT_OK)
            return p->rc;
    }
    return ZT_OK;
}

static uint32_t gc_mask_of(const char *name, size_t n) {
    static const char *const names[UNI_GC_COUNT] = {
        "Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd", "Nl", "No", "Pc", "Pd", "Ps",
        "Pe", "Pi", "Pf", "Po", "Sm", "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
    uint32_t mask = 0;
    for (int g = 0; g < UNI_GC_COUNT; g++) {
        bool whole = n == 1 && names[g][0] == name[0];
        bool exact = n == 2 && names[g][0] == name[0] && names[g][1] == name[1];
        if (whole || exact) mask |= 1u << g;
    }
    if (n == 1 && name[0] == 'C') mask |= 1u << UNI_CN;
    return mask;
}

static uint32_t hex_value(re_parser *p, size_t digits, bool braces) {
    uint32_t v = 0;
    size_t n = 0;
    if (braces && (p->pos >= p->len || p->src[p->pos++] != '{')) return perr(p, "expected '{'"), 0;
    while (p->pos < p->len && (braces ? p->src[p->pos] != '}' : n < digits)) {
        char c = p->src[p->pos];
        int d = c >= '0' && c <= '9'                     ? c - '0'
                : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                         : -1;
        if (d < 0 || v > 0x10FFFF) return perr(p, "bad hex escape"), 0;
        v = v * 16 + (uint32_t)d;
        p->pos++, n++;
    }
    if (braces && (p->pos >= p->len || p->src[p->pos++] != '}')) return perr(p, "expected '}'"), 0;
    if (n == 0 || (!braces && n != digits) || v > 0x10FFFF) return perr(p, "bad hex escape"), 0;
    return v;
}

/* After a backslash: a class escape becomes an item of `cls` (returns 1),
 * a character escape is stored in *cp (returns 0); -1 on error. */
static int parse_escape(re_parser *p, int cls, uint32_t *cp) {
    if (p->pos >= p->len) return perr(p, "trailing backslash"), -1;
    char c = p->src[p->pos++];
    re_item it = {0};
    switch (c) {
    case 's':
    case 'S':
        it.kind = IT_SPACE, it.neg = c == 'S';
        break;
    case 'd':
    case 'D':
        it.kind = IT_DIGIT, it.neg = c == 'D';
        break;
    case 'w':
    case 'W':
        it.kind = IT_WORD, it.neg = c == 'W';
        break;
    case 'p':
    case 'P': {
        const char *name = p->src + p->pos;
        size_t n = 1;
        if (p->pos < p->len && *name == '{') {
            const char *close = memchr(name, '}', p->len - p->pos);
            if (!close) return perr(p, "unterminated \\p{"), -1;
            name++;
            n = (size_t)(close - name);
            p->pos += n + 2;
        } else {
            p->pos++;
        }
        it.kind = IT_GC, it.neg = c == 'P';
        it.gc_mask = n >= 1 && n <= 2 ? gc_mask_of(name, n) : 0;
        if (!it.gc_mask) return perr(p, "unknown Unicode property"), -1;
        break;
    }
    case 'n':
        *cp = '\n';
        return 0;
    case 'r':
        *cp = '\r';
        return 0;
    case 't':
        *cp = '\t';
        return 0;
    case 'f':
        *cp = '\f';
        return 0;
    case 'v':
        *cp = '\v';
        return 0;
    case '0':
        *cp = 0;
        return 0;
    case 'x':
        *cp = hex_value(p, 2, p->pos < p->len && p->src[p->pos] == '{');
        return p->rc ? -1 : 0;
    case 'u':
        *cp = hex_value(p, 4, p->pos < p->len && p->src[p->pos] == '{');
        return p->rc ? -1 : 0;
    default:
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            return perr(p, "unsupported escape"), -1;
        *cp = (uint8_t)c; /* escaped punctuation stands for itself */
        return 0;
    }
    return add_item(p, cls, it) == ZT_OK ? 1 : -1;
}

static int next_cp(re_parser *p, uint32_t *cp) {
    int k = uni_utf8_next((const uint8_t *)p->src + p->pos, p->len - p->pos, cp);
    if (k <= 0) return perr(p, "pattern is not UTF-8");
    p->pos += (size_t)k;
    return ZT_OK;
}

/* Parses [...] (the '[' consumed) into a new class; returns its index. */
static int parse_class(re_parser *p) {
    bool neg = p->pos < p->len && p->src[p->pos] == '^';
    if (neg) p->pos++;
    int cls = new_class(p, neg);
    if (cls < 0) return -1;
    bool first = true;
    for (;;) {
        if (p->pos >= p->len) return perr(p, "unterminated class"), -1;
        char c = p->src[p->pos];
        if (c == ']' && !first) {
            p->pos++;
            return cls;
        }
        first = false;
        uint32_t lo;
        if (c == '\\') {
            p->pos++;
            int k = parse_escape(p, cls, &lo);
            if (k < 0) return -1;
            if (k == 1) continue;
        } else if (next_cp(p, &lo) != ZT_OK) {
            return -1;
        }
        uint32_t hi = lo;
        if (p->pos + 1 < p->len && p->src[p->pos] == '-' && p->src[p->pos + 1] != ']') {
            p->pos++;
            if (p->src[p->pos] == '\\') {
                p->pos++;
                if (parse_escape(p, cls, &hi) != 0) return perr(p, "bad class range"), -1;
            } else if (next_cp(p, &hi) != ZT_OK) {
                return -1;
            }
            if (hi < lo) return perr(p, "class range out of order"), -1;
        }
        if (add_range(p, cls, lo, hi) != ZT_OK) return -1;
    }
}

static int parse_alt(re_parser *p, int *min_len);

/* One atom; *min_len is the fewest characters it can match. *single is
 * set to its class for a one-character atom (-1 otherwise). */
static int parse_atom(re_parser *p, int *min_len, int *single) {
    char c = p->src[p->pos];
    *single = -1;
    *min_len = 1;
    if (c == '(') {
        p->pos++;
        bool saved_icase = p->icase;
        int look = 0; /* 1: (?=, 2: (?! */
        if (p->pos < p->len && p->src[p->pos] == '?') {
            const char *s = p->src + p->pos + 1;
            size_t left = p->len - p->pos - 1;
            if (left >= 1 && *s == ':')
                p->pos += 2;
            else if (left >= 1 && *s == '=')
                p->pos += 2, look = 1;
            else if (left >= 1 && *s == '!')
                p->pos += 2, look = 2;
            else if (left >= 2 && s[0] == 'i' && s[1] == ':')
                p->pos += 3, p->icase = true;
            else
                return perr(p, "unsupported group");
        }
        int at = p->re->n_code;
        if (parse_alt(p, min_len) != ZT_OK) return p->rc;
        if (p->pos >= p->len || p->src[p->pos] != ')') return perr(p, "missing ')'");
        p->pos++;
        p->icase = saved_icase;
        if (look) {
            if (emit(p, (re_inst){OP_MATCH, 0, 0, 0, 0}) != ZT_OK) return p->rc;
            int n = p->re->n_code - at;
            if (insert(p, at, (re_inst){OP_LOOK, look == 2, n, 0, 0}) != ZT_OK) return p->rc;
            *min_len = 0;
        }
        return ZT_OK;
    }
    if (c == '^' || c == '$') {
        p->pos++;
        *min_len = 0;
        return emit(p, (re_inst){c == '^' ? OP_BOL : OP_EOL, 0, 0, 0, 0});
    }
    int cls;
    if (c == '[') {
        p->pos++;
        if ((cls = parse_class(p)) < 0) return p->rc;
    } else if (c == '.') {
        p->pos++;
        if ((cls = new_class(p, true)) < 0) return p->rc;
        static const uint32_t line_ends[] = {'\n', '\r', 0x2028, 0x2029};
        for (int i = 0; i < 4; i++)
            if (add_range(p, cls, line_ends[i], line_ends[i]) != ZT_OK) return p->rc;
    } else {
        uint32_t cp;
        if (c == '\\') {
            p->pos++;
            if ((cls = new_class(p, false)) < 0) return p->rc;
            int k = parse_escape(p, cls, &cp);
            if (k < 0) return p->rc;
            if (k == 0 && add_range(p, cls, cp, cp) != ZT_OK) return p->rc;
        } else {
            if (strchr("*+?{", c)) return perr(p, "nothing to repeat");
            if (next_cp(p, &cp) != ZT_OK) return p->rc;
            bool folds = p->icase && ((cp | 0x20) - 'a' < 26);
            if (!folds) return emit(p, (re_inst){OP_CHAR, 0, (int32_t)cp, 0, 0});
            if ((cls = new_class(p, false)) < 0 || add_range(p, cls, cp, cp) != ZT_OK) return p->rc;
        }
    }
    *single = cls;
    return emit(p, (re_inst){OP_CLASS, 0, cls, 0, 0});
}

/* Reads a quantifier if one follows: returns 1 with min/max/greedy set. */
static int parse_quant(re_parser *p, int *min, int *max, bool *greedy) {
    if (p->pos >= p->len) return 0;
    char c = p->src[p->pos];
    if (c == '*')
        *min = 0, *max = -1;
    else if (c == '+')
        *min = 1, *max = -1;
    else if (c == '?')
        *min = 0, *max = 1;
    else if (c == '{') {
        size_t i = p->pos + 1;
        long lo = 0, hi;
        if (i >= p->len || p->src[i] < '0' || p->src[i] > '9') return 0; /* a literal '{' */
        while (i < p->len && p->src[i] >= '0' && p->src[i] <= '9' && lo < 100000)
            lo = lo * 10 + (p->src[i++] - '0');
        hi = lo;
        if (i < p->len && p->src[i] == ',') {
            i++;
            hi = -1;
            if (i < p->len && p->src[i] >= '0' && p->src[i] <= '9')
                for (hi = 0; i < p->len && p->src[i] >= '0' && p->src[i] <= '9' && hi < 100000;)
                    hi = hi * 10 + (p->src[i++] - '0');
        }
        if (i >= p->len || p->src[i] != '}' || lo > 1000 || hi > 1000 || (hi >= 0 && hi < lo))
            return perr(p, "bad {n,m} quantifier"), -1;
        *min = (int)lo, *max = (int)hi;
        p->pos = i;
    } else {
        return 0;
    }
    p->pos++;
    *greedy = true;
    if (p->pos < p->len && p->src[p->pos] == '?') {
        *greedy = false;
        p->pos++;
    }
    return 1;
}

/* Wraps code[at, end) (one atom) in the quantifier. */
static int quantify(re_parser *p, int at, int atom_min, int single, int min, int max, bool greedy) {
    tok_regex *re = p->re;
    if (single >= 0) { /* one REP replaces the OP_CLASS */
        re->code[at] = (re_inst){OP_REP, greedy, single, min, max};
        return ZT_OK;
    }
    if (atom_min == 0 && max < 0)
        return perr(p, "unbounded repeat of a group that can match empty");
    int n = re->n_code - at;
    if (max < 0 && min == 0) { /* L: SPLIT body, out; body; JMP L */
        if (insert(p, at,
                   greedy ? (re_inst){OP_SPLIT, 0, 1, n + 2, 0}
                          : (re_inst){OP_SPLIT, 0, n + 2, 1, 0}) != ZT_OK)
            return p->rc;
        return emit(p, (re_inst){OP_JMP, 0, -(n + 1), 0, 0});
    }
    re_inst *atom = malloc((size_t)(n > 0 ? n : 1) * sizeof *atom); /* [n] the atom's code */
    if (!atom) return p->rc = zt_fail(p->err, ZT_ENOMEM, "out of memory");
    if (n > 0) memcpy(atom, re->code + at, (size_t)n * sizeof *atom); /* "()?": no code yet */
    re->n_code = at;
    for (int i = 0; i < min; i++)
        for (int k = 0; k < n; k++) emit(p, atom[k]);
    if (max < 0) { /* x{min,}: the last copy loops back on itself */
        emit(p, greedy ? (re_inst){OP_SPLIT, 0, -n, 1, 0} : (re_inst){OP_SPLIT, 0, 1, -n, 0});
    } else { /* x{min,max}: nested optional copies (x(x)?)? exiting to one end */
        int first = re->n_code;
        for (int i = min; i < max; i++) {
            emit(p, (re_inst){OP_SPLIT, 0, 0, 0, 0});
            for (int k = 0; k < n; k++) emit(p, atom[k]);
        }
        for (int i = first; i < re->n_code; i += n + 1) {
            int out = re->n_code - i;
            re->code[i] =
                greedy ? (re_inst){OP_SPLIT, 0, 1, out, 0} : (re_inst){OP_SPLIT, 0, out, 1, 0};
        }
    }
    free(atom);
    return p->rc;
}

static int parse_seq(re_parser *p, int *min_len) {
    *min_len = 0;
    while (p->pos < p->len && p->src[p->pos] != '|' && p->src[p->pos] != ')') {
        int at = p->re->n_code, atom_min, single, min, max;
        bool greedy;
        if (parse_atom(p, &atom_min, &single) != ZT_OK) return p->rc;
        int q = parse_quant(p, &min, &max, &greedy);
        if (q < 0) return p->rc;
        if (q > 0) {
            if (quantify(p, at, atom_min, single, min, max, greedy) != ZT_OK) return p->rc;
            atom_min *= min;
        }
        *min_len += atom_min;
    }
    return ZT_OK;
}

/* seq ('|' seq)*: SPLIT a, next; a; JMP end; SPLIT b, next; ... */
static int parse_alt(re_parser *p, int *min_len) {
    int at = p->re->n_code;
    if (parse_seq(p, min_len) != ZT_OK) return p->rc;
    int jumps[256], n_jumps = 0;
    while (p->pos < p->len && p->src[p->pos] == '|') {
        p->pos++;
        if (n_jumps == 256) return perr(p, "too many alternatives");
        int n = p->re->n_code - at;
        if (insert(p, at, (re_inst){OP_SPLIT, 0, 1, n + 2, 0}) != ZT_OK) return p->rc;
        jumps[n_jumps++] = p->re->n_code;
        if (emit(p, (re_inst){OP_JMP, 0, 0, 0, 0}) != ZT_OK) return p->rc;
        at = p->re->n_code;
        int m;
        if (parse_seq(p, &m) != ZT_OK) return p->rc;
        if (m < *min_len) *min_len = m;
    }
    for (int i = 0; i < n_jumps; i++) p->re->code[jumps[i]].a = p->re->n_code - jumps[i];
    return ZT_OK;
}

int tok_regex_compile(const char *pattern, tok_regex **out, zt_error *err) {
    *out = NULL;
    tok_regex *re = calloc(1, sizeof *re);
    if (!re) return zt_fail(err, ZT_ENOMEM, "out of memory");
    re_parser p = {re, pattern, 0, strlen(pattern), false, err, ZT_OK};
    int min_len;
    if (parse_alt(&p, &min_len) == ZT_OK && p.pos < p.len) perr(&p, "unbalanced ')'");
    if (p.rc == ZT_OK) emit(&p, (re_inst){OP_MATCH, 0, 0, 0, 0});
    if (p.rc != ZT_OK) {
        tok_regex_free(re);
        return p.rc;
    }
    *out = re;
    return ZT_OK;
}

void tok_regex_free(tok_regex *re) {
    if (!re) return;
    for (int i = 0; i < re->n_classes; i++) free(re->classes[i].items);
    free(re->classes);
    free(re->code);
    free(re);
}

/* ---- matcher --------------------------------------------------------- */

static bool class_match(const re_class *c, uint32_t cp) {
    int gc = -1;
    bool hit = false;
    for (int i = 0; i < c->n && !hit; i++) {
        const re_item *it = &c->items[i];
        bool m;
        switch (it->kind) {
        case IT_RANGE:
            m = cp >= it->lo && cp <= it->hi;
            break;
        case IT_GC:
            if (gc < 0) gc = uni_gc(cp);
            m = it->gc_mask >> gc & 1;
            break;
        case IT_SPACE:
            m = uni_is_space_js(cp);
            break;
        case IT_DIGIT:
            m = cp - '0' < 10;
            break;
        default:
            m = cp < 0x80 && ((cp | 0x20) - 'a' < 26 || cp - '0' < 10 || cp == '_');
            break;
        }
        hit = m != it->neg;
    }
    return hit != c->neg;
}

/* Runs the program from pc at pos: the end of the first match that the
 * backtracking order finds, or -1. */
static long run(const tok_regex *re, int pc, const uint32_t *s, long n, long pos, int depth) {
    if (depth > RE_MAX_DEPTH) return -1;
    for (;;) {
        const re_inst *in = &re->code[pc];
        switch (in->op) {
        case OP_CHAR:
            if (pos >= n || s[pos] != (uint32_t)in->a) return -1;
            pos++, pc++;
            break;
        case OP_CLASS:
            if (pos >= n || !class_match(&re->classes[in->a], s[pos])) return -1;
            pos++, pc++;
            break;
        case OP_REP: {
            const re_class *c = &re->classes[in->a];
            long min = in->b, max = in->c < 0 ? n - pos : in->c, k = 0;
            if (in->flag) {
                while (k < max && pos + k < n && class_match(c, s[pos + k])) k++;
                if (k < min) return -1;
                if (re->code[pc + 1].op == OP_MATCH) return pos + k;
                for (long j = k; j >= min; j--) {
                    long r = run(re, pc + 1, s, n, pos + j, depth + 1);
                    if (r >= 0) return r;
                }
                return -1;
            }
            for (;; k++) {
                if (k >= min) {
                    long r = run(re, pc + 1, s, n, pos + k, depth + 1);
                    if (r >= 0) return r;
                }
                if (k >= max || pos + k >= n || !class_match(c, s[pos + k])) return -1;
            }
        }
        case OP_SPLIT: {
            long r = run(re, pc + in->a, s, n, pos, depth + 1);
            if (r >= 0) return r;
            pc += in->b;
            break;
        }
        case OP_JMP:
            pc += in->a;
            break;
        case OP_LOOK: {
            bool matched = run(re, pc + 1, s, n, pos, depth + 1) >= 0;
            if (matched == in->flag) return -1;
            pc += 1 + in->a;
            break;
        }
        case OP_BOL:
            if (pos != 0) return -1;
            pc++;
            break;
        case OP_EOL:
            if (pos != n) return -1;
            pc++;
            break;
        default:
            return pos; /* OP_MATCH */
        }
    }
}

long tok_regex_search(const tok_regex *re, const uint32_t *cps, long n, long from, long *end) {
    for (long start = from; start < n; start++) {
        long r = run(re, 0, cps, n, start, 0);
        if (r > start) {
            *end = r;
            return start;
        }
    }
    return -1;
}
