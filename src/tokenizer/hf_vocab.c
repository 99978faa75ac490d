/*
 * An HF tokenizer.json -> the metadata keys a GGUF file would carry
 * (tokenizer.ggml.*), plus zt.tokenizer.* for what GGUF cannot say (see
 * tokenizer.h), so that zt_tokenizer_create reads both the same way.
 *
 * Supported: model.type BPE, with
 *   - SentencePiece style ("llama"): normalizer Prepend("▁") + Replace(" ",
 *     "▁"), or pre_tokenizer Metaspace; byte_fallback <0xHH> tokens;
 *   - byte-level style ("gpt2"): pre_tokenizer ByteLevel, optionally after
 *     Split (regex or string, "Isolated") and Digits, in a Sequence;
 *   - normalizer NFC (Qwen2), alone or in a Sequence;
 *   - merges as "a b" strings or ["a", "b"] pairs (tokenizers >= 0.20);
 *   - added_tokens: special -> CONTROL, else USER_DEFINED, with their
 *     lstrip/rstrip/normalized/single_word flags;
 *   - post_processor TemplateProcessing: a leading special token is the
 *     BOS the model adds, a trailing one the EOS.
 * Anything else (WordPiece, Unigram, Lowercase, ...) is refused by name.
 * tokenizer_config.json beside the file names bos/eos/unk/pad tokens.
 */
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HF_MAX_TOKENIZER_FILE ((size_t)512 << 20)
#define HF_MAX_VOCAB          (1 << 24)

typedef struct hf_ctx {
    zt_model *m;
    const char *path; /* for messages */
    zt_error *err;
    /* the vocabulary being built */
    char **text;   /* [n_vocab] owned, or NULL for a hole */
    uint64_t *len; /* [n_vocab] */
    int32_t *type; /* [n_vocab] enum tok_type */
    int n_vocab;
    /* pre-tokenizer */
    bool byte_level;
    const char **regex; /* [n_regex] patterns (borrowed or static) */
    char **owned_regex; /* escaped String patterns, freed at the end */
    int n_regex, n_owned;
    bool add_prefix_space;
    const char *spm_prefix; /* NULL: decided later */
    bool metaspace_split;
    bool nfc, prepend;
} hf_ctx;

static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char SPACE_MARK[] = "\xe2\x96\x81";

static int hf_bad(hf_ctx *c, const char *what) {
    return zt_fail(c->err, ZT_EFORMAT, "%s: %s", c->path, what);
}

static int hf_unsup(hf_ctx *c, const char *what, const char *name) {
    return zt_fail(c->err, ZT_EUNSUP, "%s: %s '%s' is not supported", c->path, what,
                   name ? name : "(no type)");
}

static int hf_oom(hf_ctx *c) { return zt_fail(c->err, ZT_ENOMEM, "out of memory"); }

static const char *type_of(const json_value *v) { return json_as_str(json_get(v, "type")); }

static bool flag(const json_value *obj, const char *key, bool dflt) {
    bool b;
    return json_as_bool(json_get(obj, key), &b) ? b : dflt;
}

static int read_text(const char *path, size_t max, char **out, size_t *len, zt_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return zt_fail(err, ZT_EIO, "%s: cannot open", path);
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : (1 << 20);
            char *p = cap <= max + 1 ? realloc(buf, cap) : NULL;
            if (!p) {
                free(buf);
                fclose(f);
                return cap > max + 1
                           ? zt_fail(err, ZT_EFORMAT, "%s: larger than %zu MiB", path, max >> 20)
                           : zt_fail(err, ZT_ENOMEM, "out of memory");
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        free(buf);
        return zt_fail(err, ZT_EIO, "%s: read error", path);
    }
    *out = buf;
    *len = n;
    return ZT_OK;
}

/* ---- pieces of tokenizer.json ----------------------------------------- */

static int add_regex(hf_ctx *c, const char *pattern, bool owned) {
    const char **r = realloc(c->regex, (size_t)(c->n_regex + 1) * sizeof *r);
    if (!r) return hf_oom(c);
    c->regex = r;
    c->regex[c->n_regex++] = pattern;
    if (!owned) return ZT_OK;
    char **o = realloc(c->owned_regex, (size_t)(c->n_owned + 1) * sizeof *o);
    if (!o) return hf_oom(c);
    c->owned_regex = o;
    c->owned_regex[c->n_owned++] = (char *)pattern;
    return ZT_OK;
}

/* A Split on a plain string: escape it into a regex. */
static char *escape_literal(const char *s) {
    size_t n = strlen(s);
    char *out = malloc(n * 2 + 1), *o = out;
    if (!out) return NULL;
    for (; *s; s++) {
        if (strchr("\\^$.|?*+()[]{}/-", *s)) *o++ = '\\';
        *o++ = *s;
    }
    *o = 0;
    return out;
}

static int pre_tokenizer(hf_ctx *c, const json_value *p) {
    if (!p || json_is(p, JSON_NULL)) return ZT_OK;
    const char *type = type_of(p);
    if (!type) return hf_bad(c, "pre_tokenizer has no type");
    if (!strcmp(type, "Sequence")) {
        const json_value *list = json_get(p, "pretokenizers");
        for (size_t i = 0; i < json_len(list); i++) {
            int rc = pre_tokenizer(c, json_at(list, i));
            if (rc) return rc;
        }
        return ZT_OK;
    }
    if (!strcmp(type, "ByteLevel")) {
        c->byte_level = true;
        c->add_prefix_space = flag(p, "add_prefix_space", false);
        return flag(p, "use_regex", true) ? add_regex(c, RE_GPT2, false) : ZT_OK;
    }
    if (!strcmp(type, "Split")) {
        const char *behavior = json_as_str(json_get(p, "behavior"));
        if (!behavior || strcmp(behavior, "Isolated") != 0 || flag(p, "invert", false))
            return hf_unsup(c, "Split pre-tokenizer behavior (only Isolated, not inverted)",
                            behavior);
        const json_value *pat = json_get(p, "pattern");
        const char *re = json_as_str(json_get(pat, "Regex"));
        if (re) return add_regex(c, re, false);
        const char *lit = json_as_str(json_get(pat, "String"));
        if (!lit) return hf_bad(c, "Split pre-tokenizer has no pattern");
        char *esc = escape_literal(lit);
        if (!esc) return hf_oom(c);
        return add_regex(c, esc, true);
    }
    if (!strcmp(type, "Digits")) /* HF splits on char::is_numeric, i.e. \p{N} */
        return add_regex(c, flag(p, "individual_digits", false) ? "\\p{N}" : "\\p{N}+", false);
    if (!strcmp(type, "Metaspace")) {
        const char *rep = json_as_str(json_get(p, "replacement"));
        if (rep && strcmp(rep, SPACE_MARK) != 0) return hf_unsup(c, "Metaspace replacement", rep);
        const char *scheme = json_as_str(json_get(p, "prepend_scheme"));
        if (!scheme) scheme = flag(p, "add_prefix_space", true) ? "always" : "never";
        if (!strcmp(scheme, "always"))
            c->spm_prefix = "metaspace_always";
        else if (!strcmp(scheme, "first"))
            c->spm_prefix = "metaspace_first";
        else if (!strcmp(scheme, "never"))
            c->spm_prefix = "none";
        else
            return hf_unsup(c, "Metaspace prepend_scheme", scheme);
        c->metaspace_split = flag(p, "split", false);
        return ZT_OK;
    }
    return hf_unsup(c, "pre_tokenizer", type);
}

static int normalizer(hf_ctx *c, const json_value *n) {
    if (!n || json_is(n, JSON_NULL)) return ZT_OK;
    const char *type = type_of(n);
    if (!type) return hf_bad(c, "normalizer has no type");
    if (!strcmp(type, "Sequence")) {
        const json_value *list = json_get(n, "normalizers");
        for (size_t i = 0; i < json_len(list); i++) {
            int rc = normalizer(c, json_at(list, i));
            if (rc) return rc;
        }
        return ZT_OK;
    }
    if (!strcmp(type, "NFC")) {
        c->nfc = true;
        return ZT_OK;
    }
    if (!strcmp(type, "Prepend")) {
        const char *s = json_as_str(json_get(n, "prepend"));
        if (!s || strcmp(s, SPACE_MARK) != 0) return hf_unsup(c, "Prepend normalizer of", s);
        c->prepend = true;
        return ZT_OK;
    }
    if (!strcmp(type, "Replace")) { /* only the SentencePiece space escape */
        const char *from = json_as_str(json_get(json_get(n, "pattern"), "String"));
        const char *to = json_as_str(json_get(n, "content"));
        if (from && to && !strcmp(from, " ") && !strcmp(to, SPACE_MARK)) return ZT_OK;
        return hf_unsup(c, "Replace normalizer other than ' ' -> '\xe2\x96\x81' of", from);
    }
    return hf_unsup(c, "normalizer", type);
}

/* Sets text[id] (copied); grows nothing: ids were range-checked. */
static int set_token(hf_ctx *c, int64_t id, const char *s, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return hf_oom(c);
    memcpy(copy, s, len);
    copy[len] = 0;
    free(c->text[id]);
    c->text[id] = copy;
    c->len[id] = len;
    return ZT_OK;
}

static bool is_byte_token(const char *s, size_t len) {
    return len == 6 && !memcmp(s, "<0x", 3) && s[5] == '>' && strchr("0123456789ABCDEF", s[3]) &&
           strchr("0123456789ABCDEF", s[4]) && s[3] && s[4];
}

/* Id of a token named by text (vocab or added), or -1. */
static int32_t find_token(const hf_ctx *c, const char *s) {
    size_t n = strlen(s);
    for (int i = 0; i < c->n_vocab; i++)
        if (c->text[i] && c->len[i] == n && memcmp(c->text[i], s, n) == 0) return i;
    return -1;
}

/* "bos_token": "<s>" or {"content": "<s>", ...} in tokenizer_config.json. */
static const char *config_token(const json_value *cfg, const char *key) {
    const json_value *v = json_get(cfg, key);
    return json_is(v, JSON_STRING) ? json_as_str(v) : json_as_str(json_get(v, "content"));
}

static int set_id_unless_present(hf_ctx *c, const char *key, int32_t id) {
    if (id < 0 || model_kv(c->m, key)) return ZT_OK;
    return model_set_u32(c->m, key, (uint32_t)id) ? hf_oom(c) : ZT_OK;
}

/* The strings array key with explicit lengths (texts may hold NULs). */
static int set_strings(hf_ctx *c, const char *key, char **strs, const uint64_t *lens, uint64_t n) {
    zt_kv *kv = model_add_kv(c->m, key);
    if (!kv) return hf_oom(c);
    kv->type = GGUF_ARRAY;
    kv->arr_type = GGUF_STRING;
    char **a = calloc(n ? n : 1, sizeof *a);
    uint64_t *l = calloc(n ? n : 1, sizeof *l);
    kv->arr = a;
    kv->arr_len = l;
    if (!a || !l) return hf_oom(c);
    for (uint64_t i = 0; i < n; i++) {
        if (!(a[i] = malloc(lens[i] + 1))) return hf_oom(c);
        memcpy(a[i], strs[i], lens[i]);
        a[i][lens[i]] = 0;
        l[i] = lens[i];
        kv->n = i + 1;
    }
    return ZT_OK;
}

static int write_merges(hf_ctx *c, const json_value *merges) {
    size_t n = json_len(merges);
    char **strs = calloc(n ? n : 1, sizeof *strs);
    uint64_t *lens = calloc(n ? n : 1, sizeof *lens);
    int rc = ZT_OK;
    if (!strs || !lens) rc = hf_oom(c);
    for (size_t i = 0; i < n && !rc; i++) {
        const json_value *mv = json_at(merges, i);
        if (json_is(mv, JSON_STRING)) {
            strs[i] = (char *)json_as_str(mv);
            lens[i] = json_len(mv);
            continue;
        }
        const json_value *a = json_at(mv, 0), *b = json_at(mv, 1);
        if (!json_is(mv, JSON_ARRAY) || json_len(mv) != 2 || !json_is(a, JSON_STRING) ||
            !json_is(b, JSON_STRING)) {
            rc = hf_bad(c, "model.merges entries must be \"a b\" or [\"a\", \"b\"]");
            break;
        }
        size_t la = json_len(a), lb = json_len(b);
        char *s = malloc(la + lb + 2);
        if (!s) {
            rc = hf_oom(c);
            break;
        }
        memcpy(s, json_as_str(a), la);
        s[la] = ' ';
        memcpy(s + la + 1, json_as_str(b), lb);
        s[la + lb + 1] = 0;
        strs[i] = s;
        lens[i] = la + lb + 1;
    }
    if (!rc) rc = set_strings(c, "tokenizer.ggml.merges", strs, lens, n);
    for (size_t i = 0; strs && i < n; i++)
        if (!json_is(json_at(merges, i), JSON_STRING)) free(strs[i]);
    free(strs);
    free(lens);
    return rc;
}

/* TemplateProcessing "single": [SpecialToken?, Sequence A, SpecialToken?] */
static int post_processor(hf_ctx *c, const json_value *p) {
    bool add_bos = false, add_eos = false;
    const char *type = type_of(p);
    if (type && !strcmp(type, "Sequence")) {
        const json_value *list = json_get(p, "processors");
        for (size_t i = 0; i < json_len(list); i++) {
            const char *t = type_of(json_at(list, i));
            if (t && !strcmp(t, "TemplateProcessing")) p = json_at(list, i), type = t;
        }
    }
    if (type && !strcmp(type, "TemplateProcessing")) {
        const json_value *single = json_get(p, "single");
        bool seen_seq = false;
        for (size_t i = 0; i < json_len(single); i++) {
            const json_value *item = json_at(single, i);
            const char *name = json_as_str(json_get(json_get(item, "SpecialToken"), "id"));
            if (json_get(item, "Sequence")) {
                seen_seq = true;
                continue;
            }
            if (!name) continue;
            int32_t id = find_token(c, name);
            if (id < 0)
                return hf_bad(c, "post_processor names a token that is not in the vocabulary");
            if (!seen_seq && !add_bos) {
                add_bos = true;
                if (model_kv(c->m, "tokenizer.ggml.bos_token_id") == NULL &&
                    model_set_u32(c->m, "tokenizer.ggml.bos_token_id", (uint32_t)id))
                    return hf_oom(c);
            } else if (seen_seq) {
                add_eos = true;
                int rc = set_id_unless_present(c, "tokenizer.ggml.eos_token_id", id);
                if (rc) return rc;
            }
        }
    }
    if (model_set_bool(c->m, "tokenizer.ggml.add_bos_token", add_bos) ||
        model_set_bool(c->m, "tokenizer.ggml.add_eos_token", add_eos))
        return hf_oom(c);
    return ZT_OK;
}

/* tokenizer_config.json next to tokenizer.json, when there is one. */
static json_value *load_config(hf_ctx *c) {
    const char *slash = strrchr(c->path, '/');
    size_t dir = slash ? (size_t)(slash - c->path + 1) : 0;
    char *p = malloc(dir + sizeof "tokenizer_config.json");
    if (!p) return NULL;
    memcpy(p, c->path, dir);
    strcpy(p + dir, "tokenizer_config.json");
    char *text = NULL;
    size_t len = 0;
    json_value *v = NULL;
    zt_error ignored = {0};
    FILE *f = fopen(p, "rb");
    if (f) {
        fclose(f);
        if (read_text(p, 64 << 20, &text, &len, &ignored) == ZT_OK)
            v = json_parse(text, len, &ignored);
    }
    free(text);
    free(p);
    return v;
}

static int convert(hf_ctx *c, const json_value *root) {
    const json_value *model = json_get(root, "model");
    const char *mtype = type_of(model);
    if (!json_is(model, JSON_OBJECT)) return hf_bad(c, "no \"model\" object");
    if (mtype && strcmp(mtype, "BPE") != 0) return hf_unsup(c, "model type", mtype);
    const json_value *vocab = json_get(model, "vocab"), *merges = json_get(model, "merges");
    if (!json_is(vocab, JSON_OBJECT) || !json_is(merges, JSON_ARRAY))
        return hf_bad(c, "model needs a \"vocab\" object and a \"merges\" array");
    const char *cont = json_as_str(json_get(model, "continuing_subword_prefix"));
    const char *eow = json_as_str(json_get(model, "end_of_word_suffix"));
    if ((cont && *cont) || (eow && *eow))
        return hf_unsup(c, "BPE with subword prefix/suffix", cont && *cont ? cont : eow);

    /* the id space: vocab and added tokens */
    const json_value *added = json_get(root, "added_tokens");
    int64_t max_id = -1;
    for (size_t i = 0; i < json_len(vocab); i++) {
        int64_t id;
        if (!json_as_int(json_at(vocab, i), &id) || id < 0 || id >= HF_MAX_VOCAB)
            return hf_bad(c, "model.vocab values must be token ids");
        if (id > max_id) max_id = id;
    }
    for (size_t i = 0; i < json_len(added); i++) {
        int64_t id;
        const json_value *a = json_at(added, i);
        if (!json_as_int(json_get(a, "id"), &id) || id < 0 || id >= HF_MAX_VOCAB ||
            !json_is(json_get(a, "content"), JSON_STRING))
            return hf_bad(c, "added_tokens entries need an id and a content string");
        if (id > max_id) max_id = id;
    }
    if (max_id < 0) return hf_bad(c, "empty vocabulary");
    /* Real vocabularies are dense; a few holes are fine, but an id far past
     * the entries would make a small file cost a huge table. */
    size_t n_entries = json_len(vocab) + json_len(added);
    if ((size_t)max_id >= 2 * n_entries + 1024)
        return zt_fail(c->err, ZT_EFORMAT, "%s: token ids are sparse: id %lld for %zu tokens",
                       c->path, (long long)max_id, n_entries);
    c->n_vocab = (int)max_id + 1;
    c->text = calloc((size_t)c->n_vocab, sizeof *c->text);
    c->len = calloc((size_t)c->n_vocab, sizeof *c->len);
    c->type = calloc((size_t)c->n_vocab, sizeof *c->type);
    if (!c->text || !c->len || !c->type) return hf_oom(c);
    bool byte_fallback = flag(model, "byte_fallback", false);
    for (size_t i = 0; i < json_len(vocab); i++) {
        int64_t id;
        size_t klen;
        const char *key = json_key_at(vocab, i, &klen);
        json_as_int(json_at(vocab, i), &id);
        int rc = set_token(c, id, key, klen);
        if (rc) return rc;
        c->type[id] = byte_fallback && is_byte_token(key, klen) ? TOK_TYPE_BYTE : TOK_TYPE_NORMAL;
    }
    size_t n_added = json_len(added);
    int32_t *added_ids = calloc(n_added ? n_added : 1, sizeof *added_ids);
    uint8_t *flags =
        calloc(n_added ? n_added * 4 : 1, 1); /* lstrip, rstrip, normalized, single_word */
    if (!added_ids || !flags) {
        free(added_ids);
        free(flags);
        return hf_oom(c);
    }
    int rc = ZT_OK;
    for (size_t i = 0; i < n_added && !rc; i++) {
        const json_value *a = json_at(added, i);
        int64_t id;
        json_as_int(json_get(a, "id"), &id);
        const json_value *content = json_get(a, "content");
        rc = set_token(c, id, json_as_str(content), json_len(content));
        c->type[id] = flag(a, "special", false) ? TOK_TYPE_CONTROL : TOK_TYPE_USER_DEFINED;
        added_ids[i] = (int32_t)id;
        flags[i] = flag(a, "lstrip", false);
        flags[n_added + i] = flag(a, "rstrip", false);
        flags[2 * n_added + i] = flag(a, "normalized", false);
        flags[3 * n_added + i] = flag(a, "single_word", false);
    }
    if (!rc &&
        (model_set_arr(c->m, "zt.tokenizer.added_ids", GGUF_I32, added_ids, n_added) ||
         model_set_arr(c->m, "zt.tokenizer.added_lstrip", GGUF_BOOL, flags, n_added) ||
         model_set_arr(c->m, "zt.tokenizer.added_rstrip", GGUF_BOOL, flags + n_added, n_added) ||
         model_set_arr(c->m, "zt.tokenizer.added_normalized", GGUF_BOOL, flags + 2 * n_added,
                       n_added) ||
         model_set_arr(c->m, "zt.tokenizer.added_single_word", GGUF_BOOL, flags + 3 * n_added,
                       n_added)))
        rc = hf_oom(c);
    free(added_ids);
    free(flags);
    if (rc) return rc;

    /* holes in the id space: unused padding entries */
    for (int id = 0; id < c->n_vocab; id++) {
        if (c->text[id]) continue;
        char pad[32];
        int n = snprintf(pad, sizeof pad, "[PAD%d]", id);
        if ((rc = set_token(c, id, pad, (size_t)n))) return rc;
        c->type[id] = TOK_TYPE_UNUSED;
    }

    if ((rc = normalizer(c, json_get(root, "normalizer"))) ||
        (rc = pre_tokenizer(c, json_get(root, "pre_tokenizer"))))
        return rc;
    const char *dec = type_of(json_get(root, "decoder"));
    if (dec && !strcmp(dec, "ByteLevel")) c->byte_level = true;

    /* unknown token */
    const char *unk = json_as_str(json_get(model, "unk_token"));
    int32_t unk_id = unk ? find_token(c, unk) : -1;
    if (unk_id >= 0 && c->type[unk_id] != TOK_TYPE_USER_DEFINED) c->type[unk_id] = TOK_TYPE_UNKNOWN;

    zt_model *m = c->m;
    if (model_set_str(m, "tokenizer.ggml.model", c->byte_level ? "gpt2" : "llama") ||
        set_strings(c, "tokenizer.ggml.tokens", c->text, c->len, (uint64_t)c->n_vocab) ||
        model_set_arr(m, "tokenizer.ggml.token_type", GGUF_I32, c->type, (uint64_t)c->n_vocab))
        return hf_oom(c);
    if ((rc = write_merges(c, merges))) return rc;
    if ((rc = set_id_unless_present(c, "tokenizer.ggml.unknown_token_id", unk_id))) return rc;

    if (c->byte_level) {
        static const struct {
            const char *name, *re[2];
        } known[] = {
            {"gpt-2", {RE_GPT2, NULL}},
            {"llama-bpe",
             {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
              "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
              NULL}},
            {"qwen2",
             {"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
              "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+",
              NULL}},
            {"smollm", {"\\p{N}", RE_GPT2}},
        };
        const char *pre = "custom";
        for (size_t k = 0; k < sizeof known / sizeof known[0]; k++) {
            int n = known[k].re[1] ? 2 : 1;
            bool same = n == c->n_regex;
            for (int i = 0; same && i < n; i++) same = !strcmp(known[k].re[i], c->regex[i]);
            if (same) pre = known[k].name;
        }
        char **re = (char **)c->regex;
        uint64_t *lens = calloc((size_t)c->n_regex + 1, sizeof *lens);
        if (!lens) return hf_oom(c);
        for (int i = 0; i < c->n_regex; i++) lens[i] = strlen(re[i]);
        rc = set_strings(c, "zt.tokenizer.pre_regex", re, lens, (uint64_t)c->n_regex);
        free(lens);
        if (rc || model_set_str(m, "tokenizer.ggml.pre", pre) ||
            model_set_bool(m, "zt.tokenizer.add_prefix_space", c->add_prefix_space) ||
            model_set_bool(m, "zt.tokenizer.ignore_merges", flag(model, "ignore_merges", false)))
            return hf_oom(c);
    } else {
        if (c->n_regex) return hf_unsup(c, "Split/Digits without ByteLevel in", "pre_tokenizer");
        const char *prefix = c->prepend ? "prepend" : c->spm_prefix ? c->spm_prefix : "none";
        if (model_set_str(m, "tokenizer.ggml.pre", "default") ||
            model_set_str(m, "zt.tokenizer.spm_prefix", prefix) ||
            model_set_bool(m, "tokenizer.ggml.add_space_prefix", strcmp(prefix, "none") != 0) ||
            model_set_bool(m, "zt.tokenizer.metaspace_split", c->metaspace_split) ||
            model_set_bool(m, "zt.tokenizer.byte_fallback", byte_fallback) ||
            model_set_bool(m, "zt.tokenizer.fuse_unk", flag(model, "fuse_unk", false)))
            return hf_oom(c);
    }
    if (c->nfc && model_set_str(m, "zt.tokenizer.normalizer", "nfc")) return hf_oom(c);

    /* special tokens: tokenizer_config.json names them; the template
     * (post_processor) says which the model adds */
    json_value *cfg = load_config(c);
    static const struct {
        const char *cfg_key, *gguf_key;
    } specials[] = {
        {"bos_token", "tokenizer.ggml.bos_token_id"},
        {"eos_token", "tokenizer.ggml.eos_token_id"},
        {"unk_token", "tokenizer.ggml.unknown_token_id"},
        {"pad_token", "tokenizer.ggml.padding_token_id"},
    };
    for (size_t k = 0; cfg && k < sizeof specials / sizeof specials[0] && !rc; k++) {
        const char *name = config_token(cfg, specials[k].cfg_key);
        if (name) rc = set_id_unless_present(c, specials[k].gguf_key, find_token(c, name));
    }
    json_free(cfg);
    if (rc) return rc;
    return post_processor(c, json_get(root, "post_processor"));
}

int hf_tokenizer_to_kv(zt_model *m, const char *path, zt_error *err) {
    char *text = NULL;
    size_t len = 0;
    int rc = read_text(path, HF_MAX_TOKENIZER_FILE, &text, &len, err);
    if (rc) return rc;
    json_value *root = json_parse(text, len, err);
    free(text);
    if (!root) return zt_fail_prefix(err, "%s", path);
    hf_ctx c = {.m = m, .path = path, .err = err};
    rc = convert(&c, root);
    for (int i = 0; c.text && i < c.n_vocab; i++) free(c.text[i]);
    free(c.text);
    free(c.len);
    free(c.type);
    for (int i = 0; i < c.n_owned; i++) free(c.owned_regex[i]);
    free(c.owned_regex);
    free(c.regex);
    json_free(root);
    return rc;
}
