/*
 * Unicode helpers for the tokenizers (see unicode.h): UTF-8 with the same
 * invalid-byte replacement that the reference tokenizers see, category
 * lookups for the pre-tokenizer regexes, and NFC.
 *
 * Why WHATWG replacement: HF tokenizers work on Rust or JavaScript
 * strings, so bytes that are not UTF-8 never reach them; the caller's
 * decoder (TextDecoder, String::from_utf8_lossy) has already turned each
 * maximal invalid subpart into one U+FFFD. zt does the same first, so
 * every later stage sees valid UTF-8.
 */
#include "tokenizer/unicode.h"

#include <stdlib.h>
#include <string.h>

/* ---- UTF-8 ----------------------------------------------------------- */

int uni_utf8_next(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t b = s[0];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int need;
    uint32_t c;
    uint8_t lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (b >= 0xC2 && b <= 0xDF) {
        need = 1, c = b & 0x1F;
    } else if (b >= 0xE0 && b <= 0xEF) {
        need = 2, c = b & 0x0F;
        if (b == 0xE0) lo = 0xA0; /* no overlongs */
        if (b == 0xED) hi = 0x9F; /* no surrogates */
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 3, c = b & 0x07;
        if (b == 0xF0) lo = 0x90; /* no overlongs */
        if (b == 0xF4) hi = 0x8F; /* nothing past U+10FFFF */
    } else {
        return -1; /* a continuation byte, C0, C1 or F5..FF */
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t t = s[i];
        if (t < lo || t > hi) return -i; /* the bad byte starts the next subpart */
        lo = 0x80, hi = 0xBF;
        c = c << 6 | (t & 0x3F);
    }
    *cp = c;
    return need + 1;
}

int uni_utf8_put(uint32_t cp, char *out) {
    uint8_t *o = (uint8_t *)out;
    if (cp < 0x80) {
        o[0] = (uint8_t)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (uint8_t)(0xC0 | cp >> 6);
        o[1] = (uint8_t)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (uint8_t)(0xE0 | cp >> 12);
        o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (uint8_t)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (uint8_t)(0xF0 | cp >> 18);
    o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (uint8_t)(0x80 | (cp & 0x3F));
    return 4;
}

bool uni_utf8_valid(const char *s, size_t len) {
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        int k = uni_utf8_next(p + i, len - i, &cp);
        if (k <= 0) return false;
        i += (size_t)k;
    }
    return true;
}

char *uni_utf8_sanitize(const char *s, size_t len, size_t *out_len) {
    /* each invalid byte grows to at most 3 bytes (U+FFFD) */
    if (len > (SIZE_MAX - 1) / 3) return NULL;
    char *out = malloc(len * 3 + 1);
    if (!out) return NULL;
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < len) {
        uint32_t cp;
        int k = p[i] < 0x80 ? 1 : uni_utf8_next(p + i, len - i, &cp);
        if (k > 0) {
            memcpy(out + o, p + i, (size_t)k);
            o += (size_t)k;
            i += (size_t)k;
            continue;
        }
        /* an invalid subpart, or a character cut off by the end of text */
        o += (size_t)uni_utf8_put(UNI_REPLACEMENT, out + o);
        i += k < 0 ? (size_t)-k : len - i;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

/* ---- properties ------------------------------------------------------ */

static int range_lookup(const uni_range *r, int n, uint32_t cp) {
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < r[mid].first)
            hi = mid - 1;
        else if (cp > r[mid].last)
            lo = mid + 1;
        else
            return r[mid].value;
    }
    return 0;
}

int uni_gc(uint32_t cp) { return range_lookup(uni_gc_ranges, uni_gc_count, cp); }

bool uni_is_letter(uint32_t cp) {
    if (cp < 0x80) return (cp | 0x20) - 'a' < 26;
    int g = uni_gc(cp);
    return g >= UNI_LU && g <= UNI_LO;
}

bool uni_is_number(uint32_t cp) {
    if (cp < 0x80) return cp - '0' < 10;
    int g = uni_gc(cp);
    return g >= UNI_ND && g <= UNI_NO;
}

bool uni_is_space_js(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0D);
    return cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
           cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

int uni_ccc(uint32_t cp) {
    return cp < 0x300 ? 0 : range_lookup(uni_ccc_ranges, uni_ccc_count, cp);
}

/* ---- NFC ------------------------------------------------------------- */

/* Hangul syllables compose and decompose by arithmetic (Unicode 3.12). */
enum {
    HANGUL_S = 0xAC00,
    HANGUL_L = 0x1100,
    HANGUL_V = 0x1161,
    HANGUL_T = 0x11A7,
    HANGUL_LN = 19,
    HANGUL_VN = 21,
    HANGUL_TN = 28,
    HANGUL_NN = HANGUL_VN * HANGUL_TN,
    HANGUL_SN = HANGUL_LN * HANGUL_NN
};

static const uni_decomp *decomp_lookup(uint32_t cp) {
    int lo = 0, hi = uni_decomp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (cp < uni_decomps[mid].cp)
            hi = mid - 1;
        else if (cp > uni_decomps[mid].cp)
            lo = mid + 1;
        else
            return &uni_decomps[mid];
    }
    return NULL;
}

/* Appends the full canonical decomposition of cp to out (room for 4 more
 * is guaranteed by the caller: no decomposition is longer). */
static size_t decompose(uint32_t cp, uint32_t *out) {
    if (cp >= HANGUL_S && cp < HANGUL_S + HANGUL_SN) {
        uint32_t s = cp - HANGUL_S;
        out[0] = HANGUL_L + s / HANGUL_NN;
        out[1] = HANGUL_V + s % HANGUL_NN / HANGUL_TN;
        if (s % HANGUL_TN == 0) return 2;
        out[2] = HANGUL_T + s % HANGUL_TN;
        return 3;
    }
    const uni_decomp *d = cp < 0xC0 ? NULL : decomp_lookup(cp);
    if (!d) {
        out[0] = cp;
        return 1;
    }
    size_t n = decompose(d->first, out);
    if (d->second) n += decompose(d->second, out + n);
    return n;
}

static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= HANGUL_L && a < HANGUL_L + HANGUL_LN && b >= HANGUL_V && b < HANGUL_V + HANGUL_VN)
        return HANGUL_S + ((a - HANGUL_L) * HANGUL_VN + (b - HANGUL_V)) * HANGUL_TN;
    if (a >= HANGUL_S && a < HANGUL_S + HANGUL_SN && (a - HANGUL_S) % HANGUL_TN == 0 &&
        b > HANGUL_T && b < HANGUL_T + HANGUL_TN)
        return a + (b - HANGUL_T);
    int lo = 0, hi = uni_comp_count - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const uni_comp *c = &uni_comps[mid];
        if (a < c->first || (a == c->first && b < c->second))
            hi = mid - 1;
        else if (a > c->first || b > c->second)
            lo = mid + 1;
        else
            return c->composite;
    }
    return 0;
}

char *uni_nfc(const char *s, size_t len, size_t *out_len) {
    const uint8_t *p = (const uint8_t *)s;
    bool simple = true; /* below U+0300 nothing decomposes or combines */
    for (size_t i = 0; i < len && simple; i++) simple = p[i] < 0xCC;
    if (simple) {
        char *copy = malloc(len + 1);
        if (!copy) return NULL;
        memcpy(copy, s, len);
        copy[len] = 0;
        *out_len = len;
        return copy;
    }
    /* decomposition never takes more than 4 code points per input byte */
    uint32_t *cps = malloc((len * 4 + 4) * sizeof *cps); /* [n] decomposed */
    char *out = malloc(len * 3 + 1);                     /* NFC never grows UTF-8 by 3x */
    if (!cps || !out) {
        free(cps);
        free(out);
        return NULL;
    }
    size_t n = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int k = uni_utf8_next(p + i, len - i, &cp);
        if (k <= 0) { /* callers pass sanitized text; be safe anyway */
            cp = UNI_REPLACEMENT;
            k = 1;
        }
        i += (size_t)k;
        n += decompose(cp, cps + n);
    }
    /* canonical ordering: stable sort of each run of non-starters by class */
    for (size_t i = 1; i < n; i++) {
        int c = uni_ccc(cps[i]);
        if (!c) continue;
        size_t j = i;
        uint32_t v = cps[i];
        while (j > 0 && uni_ccc(cps[j - 1]) > c) {
            cps[j] = cps[j - 1];
            j--;
        }
        cps[j] = v;
    }
    /* canonical composition: C joins the last starter S unless a character
     * between them has class 0 or a class >= C's (it is "blocked") */
    size_t m = 0, starter = SIZE_MAX;
    int last_ccc = -1; /* class of the last kept character after the starter */
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cps[i];
        int cc = uni_ccc(c);
        if (starter != SIZE_MAX && (last_ccc == -1 || (last_ccc != 0 && last_ccc < cc))) {
            uint32_t comp = compose(cps[starter], c);
            if (comp) {
                cps[starter] = comp;
                continue;
            }
        }
        if (cc == 0) {
            starter = m;
            last_ccc = -1;
        } else {
            last_ccc = cc;
        }
        cps[m++] = c;
    }
    size_t o = 0;
    for (size_t i = 0; i < m; i++) o += (size_t)uni_utf8_put(cps[i], out + o);
    out[o] = 0;
    free(cps);
    *out_len = o;
    return out;
}
