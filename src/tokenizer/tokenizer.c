/*
 * zt_tokenizer: built from a model's tokenizer.ggml.* metadata (a GGUF
 * file's, or what hf_vocab.c made of a tokenizer.json), and the top of
 * zt_tokenize, shared by both BPE flavours:
 *
 *   1. bytes that are not UTF-8 become U+FFFD (see unicode.c for why);
 *   2. added tokens ("<|end|>", "<s>", ...) are split out of the raw text,
 *      longest match first, as HF does before any normalization; their
 *      lstrip/rstrip flags eat the whitespace beside them;
 *   3. each text section is normalized (NFC when the model says so) and
 *      encoded by spm.c or bpe.c;
 *   4. BOS/EOS are added when the model wants them and the caller asks.
 *
 * Control tokens are split out only with ZT_TOK_PARSE_SPECIAL; user-defined
 * added tokens always (HF splits non-special added tokens even when told
 * not to parse special ones, and so does llama.cpp).
 */
#include "tokenizer/tokenizer.h"

#include "tokenizer/unicode.h"
#include "util/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- hashing --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 0x100000001b3ull;
    return h ^ h >> 29;
}

static uint64_t hash_pair(uint64_t key) {
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    return key ^ key >> 33;
}

int32_t tok_lookup(const zt_tokenizer *t, const char *s, size_t len) {
    uint32_t mask = t->vocab.cap - 1;
    for (uint32_t i = (uint32_t)hash_bytes(s, len) & mask;; i = (i + 1) & mask) {
        int32_t id = t->vocab.slots[i];
        if (id < 0) return -1;
        if (t->text_len[id] == len && memcmp(tok_text(t, id), s, len) == 0) return id;
    }
}

int32_t tok_merge_find(const zt_tokenizer *t, int32_t left, int32_t right, int32_t *result) {
    if (!t->merges.cap || left < 0 || right < 0) return -1;
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    uint32_t mask = t->merges.cap - 1;
    for (uint32_t i = (uint32_t)hash_pair(key) & mask;; i = (i + 1) & mask) {
        const tok_merge *m = &t->merges.slots[i];
        if (m->key == UINT64_MAX) return -1;
        if (m->key == key) {
            *result = m->result;
            return m->rank;
        }
    }
}

static uint32_t pow2_at_least(uint64_t n) {
    uint32_t cap = 16;
    while (cap < n) cap *= 2;
    return cap;
}

int tok_ids_push(tok_ids *v, int32_t id) {
    if (v->n == v->cap) {
        int cap = v->cap ? v->cap * 2 : 64;
        int32_t *p = realloc(v->ids, (size_t)cap * sizeof *p);
        if (!p) return ZT_ENOMEM;
        v->ids = p;
        v->cap = cap;
    }
    v->ids[v->n++] = id;
    return ZT_OK;
}

/* ---- building -------------------------------------------------------- */

void zt_tokenizer_free(zt_tokenizer *t) {
    if (!t) return;
    free(t->text_pool);
    free(t->text_off);
    free(t->text_len);
    free(t->scores);
    free(t->type);
    free(t->vocab.slots);
    free(t->merges.slots);
    free(t->stop);
    for (int i = 0; i < t->n_pre; i++) tok_regex_free(t->pre[i]);
    free(t->pre);
    free(t->trie);
    free(t->added);
    free(t);
}

/* A numeric metadata array of n elements as int64 (any integer type). */
static bool kv_int_at(const zt_kv *kv, uint64_t i, int64_t *out) {
    const void *a = kv->arr;
    switch (kv->arr_type) {
    case GGUF_U8:
        *out = ((const uint8_t *)a)[i];
        return true;
    case GGUF_I8:
        *out = ((const int8_t *)a)[i];
        return true;
    case GGUF_U16:
        *out = ((const uint16_t *)a)[i];
        return true;
    case GGUF_I16:
        *out = ((const int16_t *)a)[i];
        return true;
    case GGUF_U32:
        *out = ((const uint32_t *)a)[i];
        return true;
    case GGUF_I32:
        *out = ((const int32_t *)a)[i];
        return true;
    case GGUF_U64:
        *out = (int64_t)((const uint64_t *)a)[i];
        return true;
    case GGUF_I64:
        *out = ((const int64_t *)a)[i];
        return true;
    case GGUF_BOOL:
        *out = ((const uint8_t *)a)[i] != 0;
        return true;
    default:
        return false;
    }
}

static const zt_kv *kv_array(const zt_model *m, const char *key, bool strings) {
    const zt_kv *kv = model_kv(m, key);
    if (!kv || kv->type != GGUF_ARRAY) return NULL;
    if (strings != (kv->arr_type == GGUF_STRING)) return NULL;
    return kv;
}

/* A token id key: -1 when absent; an error when out of range. */
static int read_id(const zt_model *m, const char *key, int n_vocab, int32_t *out, zt_error *err) {
    int64_t v;
    *out = -1;
    if (!model_get_int(m, key, &v)) return ZT_OK;
    if (v < 0 || v >= n_vocab)
        return zt_fail(err, ZT_EFORMAT, "%s = %lld is outside the vocabulary (%d tokens)", key,
                       (long long)v, n_vocab);
    *out = (int32_t)v;
    return ZT_OK;
}

static bool get_bool(const zt_model *m, const char *key, bool dflt) {
    bool b;
    return model_get_bool(m, key, &b) ? b : dflt;
}

static int build_vocab(zt_tokenizer *t, const zt_kv *tokens, zt_error *err) {
    int n = t->n_vocab;
    const char *const *strs = tokens->arr;
    uint64_t pool = 0;
    for (int i = 0; i < n; i++) pool += tokens->arr_len[i] + 1;
    if (pool > UINT32_MAX) return zt_fail(err, ZT_EFORMAT, "token texts are too large");
    t->text_pool = malloc(pool);
    t->text_off = malloc((size_t)n * sizeof *t->text_off);
    t->text_len = malloc((size_t)n * sizeof *t->text_len);
    t->vocab.cap = pow2_at_least((uint64_t)n * 2);
    t->vocab.slots = malloc(t->vocab.cap * sizeof *t->vocab.slots);
    if (!t->text_pool || !t->text_off || !t->text_len || !t->vocab.slots)
        return zt_fail(err, ZT_ENOMEM, "out of memory");
    memset(t->vocab.slots, 0xff, t->vocab.cap * sizeof *t->vocab.slots);
    uint32_t off = 0, mask = t->vocab.cap - 1;
    for (int id = 0; id < n; id++) {
        uint32_t len = (uint32_t)tokens->arr_len[id];
        memcpy(t->text_pool + off, strs[id], len);
        t->text_pool[off + len] = 0;
        t->text_off[id] = off;
        t->text_len[id] = len;
        off += len + 1;
        /* a text listed twice keeps its first id (HF vocabularies are maps,
         * so a duplicate only comes from padding entries) */
        if (tok_lookup(t, tok_text(t, id), len) >= 0) continue;
        uint32_t i = (uint32_t)hash_bytes(tok_text(t, id), len) & mask;
        while (t->vocab.slots[i] >= 0) i = (i + 1) & mask;
        t->vocab.slots[i] = id;
    }
    return ZT_OK;
}

/* "a b" -> ids of a and b. A token may itself hold a space (tokenizer.json
 * has a list form for that), so try every space, leftmost first, for a
 * split whose two halves and their concatenation are all tokens. */
static bool split_merge(const zt_tokenizer *t, const char *s, size_t len, int32_t *a, int32_t *b,
                        int32_t *ab, char *scratch) {
    for (size_t k = 0; k < len; k++) {
        if (s[k] != ' ') continue;
        *a = tok_lookup(t, s, k);
        *b = tok_lookup(t, s + k + 1, len - k - 1);
        if (*a < 0 || *b < 0) continue;
        memcpy(scratch, s, k);
        memcpy(scratch + k, s + k + 1, len - k - 1);
        *ab = tok_lookup(t, scratch, len - 1);
        if (*ab >= 0) return true;
    }
    return false;
}

static int build_merges(zt_tokenizer *t, const zt_kv *merges, zt_error *err) {
    uint64_t n = merges->n;
    if (n > INT32_MAX) return zt_fail(err, ZT_EFORMAT, "too many merges");
    t->merges.cap = pow2_at_least(n * 2);
    t->merges.slots = malloc(t->merges.cap * sizeof *t->merges.slots);
    size_t longest = 0;
    for (uint64_t r = 0; r < n; r++)
        if (merges->arr_len[r] > longest) longest = merges->arr_len[r];
    char *scratch = malloc(longest + 1);
    if (!t->merges.slots || !scratch) {
        free(scratch);
        return zt_fail(err, ZT_ENOMEM, "out of memory");
    }
    for (uint32_t i = 0; i < t->merges.cap; i++) t->merges.slots[i].key = UINT64_MAX;
    uint32_t mask = t->merges.cap - 1;
    const char *const *strs = merges->arr;
    for (uint64_t r = 0; r < n; r++) {
        int32_t a, b, ab, dummy;
        /* merges whose parts or result are not tokens can never apply */
        if (!split_merge(t, strs[r], merges->arr_len[r], &a, &b, &ab, scratch)) continue;
        if (tok_merge_find(t, a, b, &dummy) >= 0) continue; /* first rank wins */
        uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
        uint32_t i = (uint32_t)hash_pair(key) & mask;
        while (t->merges.slots[i].key != UINT64_MAX) i = (i + 1) & mask;
        t->merges.slots[i] = (tok_merge){key, (int32_t)r, ab};
        t->n_merges++;
    }
    free(scratch);
    return ZT_OK;
}

static int trie_node(zt_tokenizer *t, uint8_t byte) {
    if (t->n_trie == t->cap_trie) {
        int cap = t->cap_trie ? t->cap_trie * 2 : 256;
        tok_trie_node *p = realloc(t->trie, (size_t)cap * sizeof *p);
        if (!p) return -1;
        t->trie = p;
        t->cap_trie = cap;
    }
    t->trie[t->n_trie] = (tok_trie_node){-1, -1, -1, byte};
    return t->n_trie++;
}

static int trie_add(zt_tokenizer *t, int32_t id) {
    const uint8_t *s = (const uint8_t *)tok_text(t, id);
    uint32_t len = t->text_len[id];
    if (len == 0) return ZT_OK;
    if (t->n_trie == 0 && trie_node(t, 0) < 0) return ZT_ENOMEM;
    int node = 0;
    for (uint32_t i = 0; i < len; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) {
            if ((c = trie_node(t, s[i])) < 0) return ZT_ENOMEM;
            t->trie[c].sibling = t->trie[node].child;
            t->trie[node].child = c;
        }
        node = c;
    }
    if (t->trie[node].token < 0) t->trie[node].token = id;
    return ZT_OK;
}

/* Added tokens: the listed ones (tokenizer.json), else what llama.cpp
 * splits out of GGUF text: control and user-defined tokens, and <unk>. */
static int build_added(zt_tokenizer *t, const zt_model *m, zt_error *err) {
    int n = t->n_vocab;
    t->added = calloc((size_t)n, sizeof *t->added);
    if (!t->added) return zt_fail(err, ZT_ENOMEM, "out of memory");
    const zt_kv *ids = kv_array(m, "zt.tokenizer.added_ids", false);
    if (ids) {
        const zt_kv *ls = kv_array(m, "zt.tokenizer.added_lstrip", false);
        const zt_kv *rs = kv_array(m, "zt.tokenizer.added_rstrip", false);
        for (uint64_t i = 0; i < ids->n; i++) {
            int64_t id, l = 0, r = 0;
            if (!kv_int_at(ids, i, &id) || id < 0 || id >= n)
                return zt_fail(err, ZT_EFORMAT, "zt.tokenizer.added_ids[%llu] is not a token id",
                               (unsigned long long)i);
            if (ls && i < ls->n) kv_int_at(ls, i, &l);
            if (rs && i < rs->n) kv_int_at(rs, i, &r);
            t->added[id] = (tok_added){l != 0, r != 0};
            if (trie_add(t, (int32_t)id)) return zt_fail(err, ZT_ENOMEM, "out of memory");
        }
        return ZT_OK;
    }
    /* Phi-3's tokenizer.json marks its chat tokens rstrip (they eat the
     * newline after them) and </s> too, but not <unk>, <s>, <|endoftext|>;
     * GGUF has no field for it, so llama.cpp (and zt) know it by name. */
    const char *arch = model_get_str(m, "general.architecture");
    bool phi3 = arch && strcmp(arch, "phi3") == 0;
    for (int id = 0; id < n; id++) {
        int ty = t->type[id];
        if (ty != TOK_TYPE_CONTROL && ty != TOK_TYPE_USER_DEFINED &&
            !(ty == TOK_TYPE_UNKNOWN && id == t->unk))
            continue;
        if (phi3) {
            const char *s = tok_text(t, id);
            bool keep = !strcmp(s, "<unk>") || !strcmp(s, "<s>") || !strcmp(s, "<|endoftext|>");
            t->added[id].rstrip = (ty == TOK_TYPE_CONTROL && !keep) || !strcmp(s, "</s>");
        }
        if (trie_add(t, id)) return zt_fail(err, ZT_ENOMEM, "out of memory");
    }
    return ZT_OK;
}

static int build_stops(zt_tokenizer *t, const zt_model *m, zt_error *err) {
    static const char *const end_of_turn[] = {"<|end|>",    "<|endoftext|>", "<|eot_id|>",
                                              "<|im_end|>", "</s>",          "<|eom_id|>"};
    t->stop = calloc((size_t)t->n_vocab, sizeof *t->stop);
    if (!t->stop) return zt_fail(err, ZT_ENOMEM, "out of memory");
    if (t->eos >= 0) t->stop[t->eos] = true;
    for (size_t k = 0; k < sizeof end_of_turn / sizeof end_of_turn[0]; k++) {
        int32_t id = tok_lookup(t, end_of_turn[k], strlen(end_of_turn[k]));
        if (id >= 0 && (t->type[id] == TOK_TYPE_CONTROL || t->type[id] == TOK_TYPE_USER_DEFINED))
            t->stop[id] = true;
    }
    int32_t eot;
    int rc = read_id(m, "tokenizer.ggml.eot_token_id", t->n_vocab, &eot, err);
    if (rc) return rc;
    if (eot >= 0) t->stop[eot] = true;
    if ((rc = read_id(m, "tokenizer.ggml.eom_token_id", t->n_vocab, &eot, err))) return rc;
    if (eot >= 0) t->stop[eot] = true;
    const zt_kv *ids = kv_array(m, "zt.eos_token_ids", false);
    for (uint64_t i = 0; ids && i < ids->n; i++) {
        int64_t id;
        if (kv_int_at(ids, i, &id) && id >= 0 && id < t->n_vocab) t->stop[id] = true;
    }
    return ZT_OK;
}

/* The pre-tokenizer regexes of byte-level models, as llama.cpp names them
 * in tokenizer.ggml.pre. */
static const char RE_GPT2[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char RE_LLAMA3[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char RE_QWEN2[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

static bool name_in(const char *name, const char *const *list) {
    for (; *list; list++)
        if (strcmp(name, *list) == 0) return true;
    return false;
}

static int add_pre(zt_tokenizer *t, const char *pattern, zt_error *err) {
    tok_regex **p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) return zt_fail(err, ZT_ENOMEM, "out of memory");
    t->pre = p;
    int rc = tok_regex_compile(pattern, &t->pre[t->n_pre], err);
    if (rc) return zt_fail_prefix(err, "pre-tokenizer");
    t->n_pre++;
    return ZT_OK;
}

static int build_byte_level(zt_tokenizer *t, const zt_model *m, zt_error *err) {
    static const char *const gpt2[] = {"gpt-2", "gpt2", "default", "phi-2", "jais", NULL};
    static const char *const llama3[] = {"llama-bpe", "llama3",  "llama-v3", "smaug-bpe",
                                         "dbrx",      "falcon3", "pixtral",  NULL};
    static const char *const qwen2[] = {"qwen2", "deepseek-r1-qwen", "megrez", NULL};
    static const char *const digits_gpt2[] = {"smollm",    "starcoder", "refact",  "command-r",
                                              "codeshell", "exaone",    "minerva", NULL};
    const char *pre = model_get_str(m, "tokenizer.ggml.pre");
    const zt_kv *regexes = kv_array(m, "zt.tokenizer.pre_regex", true);
    int rc = ZT_OK;
    if (!pre) pre = "default";
    t->ignore_merges = get_bool(m, "zt.tokenizer.ignore_merges", name_in(pre, llama3));
    t->nfc = name_in(pre, qwen2); /* Qwen2's tokenizer.json normalizes to NFC */
    if (regexes) {
        for (uint64_t i = 0; i < regexes->n && !rc; i++)
            rc = add_pre(t, ((const char *const *)regexes->arr)[i], err);
    } else if (name_in(pre, gpt2)) {
        rc = add_pre(t, RE_GPT2, err);
    } else if (name_in(pre, llama3)) {
        rc = add_pre(t, RE_LLAMA3, err);
    } else if (name_in(pre, qwen2)) {
        rc = add_pre(t, RE_QWEN2, err);
    } else if (name_in(pre, digits_gpt2)) {
        if (!(rc = add_pre(t, "\\p{N}", err))) rc = add_pre(t, RE_GPT2, err);
    } else {
        return zt_fail(err, ZT_EUNSUP, "unknown pre-tokenizer tokenizer.ggml.pre = '%s'", pre);
    }
    if (rc) return rc;
    t->add_prefix_space = get_bool(m, "zt.tokenizer.add_prefix_space", false);
    bpe_byte_map(t->byte_char);
    for (int b = 0; b < 256; b++) {
        char s[4];
        int n = uni_utf8_put(t->byte_char[b], s);
        if ((t->byte_char_token[b] = tok_lookup(t, s, (size_t)n)) < 0)
            return zt_fail(err, ZT_EFORMAT,
                           "byte-level vocabulary has no token for byte 0x%02X ('%.*s')", b, n, s);
    }
    return ZT_OK;
}

static int build_spm(zt_tokenizer *t, const zt_model *m, zt_error *err) {
    const char *prefix = model_get_str(m, "zt.tokenizer.spm_prefix");
    if (!prefix)
        t->spm_prefix = get_bool(m, "tokenizer.ggml.add_space_prefix", true) ? SPM_PREFIX_PREPEND
                                                                             : SPM_PREFIX_NONE;
    else if (!strcmp(prefix, "prepend"))
        t->spm_prefix = SPM_PREFIX_PREPEND;
    else if (!strcmp(prefix, "metaspace_always"))
        t->spm_prefix = SPM_PREFIX_META_ALWAYS;
    else if (!strcmp(prefix, "metaspace_first"))
        t->spm_prefix = SPM_PREFIX_META_FIRST;
    else if (!strcmp(prefix, "none"))
        t->spm_prefix = SPM_PREFIX_NONE;
    else
        return zt_fail(err, ZT_EFORMAT, "unknown zt.tokenizer.spm_prefix '%s'", prefix);
    t->metaspace_split = get_bool(m, "zt.tokenizer.metaspace_split", false);
    t->spm_word_split = true;
    for (int id = 0; id < t->n_vocab && t->spm_word_split; id++) {
        const char *s = tok_text(t, id);
        uint32_t len = t->text_len[id], i = 0;
        while (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) i += 3; /* leading ▁ run */
        for (; i + 3 <= len && t->spm_word_split; i++)
            t->spm_word_split = memcmp(s + i, "\xe2\x96\x81", 3) != 0;
    }
    t->fuse_unk = get_bool(m, "zt.tokenizer.fuse_unk", false);
    bool any_byte = false, typed = model_kv(m, "tokenizer.ggml.token_type") != NULL;
    for (int b = 0; b < 256; b++) {
        char s[8];
        snprintf(s, sizeof s, "<0x%02X>", b);
        int32_t id = tok_lookup(t, s, 6);
        /* without token types, trust the spelling */
        t->byte_token[b] = id >= 0 && (!typed || t->type[id] == TOK_TYPE_BYTE) ? id : -1;
        any_byte |= t->byte_token[b] >= 0;
    }
    t->byte_fallback = get_bool(m, "zt.tokenizer.byte_fallback", any_byte);
    if (!t->n_merges && !t->scores)
        return zt_fail(err, ZT_EFORMAT,
                       "SentencePiece vocabulary needs tokenizer.ggml.scores or merges");
    return ZT_OK;
}

int zt_tokenizer_create(const zt_model *m, zt_tokenizer **out, zt_error *err) {
    *out = NULL;
    const char *kind = model_get_str(m, "tokenizer.ggml.model");
    if (!kind) return zt_fail(err, ZT_EFORMAT, "model has no tokenizer (tokenizer.ggml.model)");
    bool spm = !strcmp(kind, "llama");
    if (!spm && strcmp(kind, "gpt2") != 0)
        return zt_fail(err, ZT_EUNSUP, "tokenizer.ggml.model '%s' is not supported (llama or gpt2)",
                       kind);
    const zt_kv *tokens = kv_array(m, "tokenizer.ggml.tokens", true);
    if (!tokens || tokens->n == 0 || tokens->n > (1u << 24))
        return zt_fail(err, ZT_EFORMAT, "tokenizer.ggml.tokens is missing, empty or too large");
    zt_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return zt_fail(err, ZT_ENOMEM, "out of memory");
    t->kind = spm ? TOK_SPM : TOK_BYTE_BPE;
    int n = t->n_vocab = (int)tokens->n;
    int rc = ZT_OK;

    t->type = malloc((size_t)n);
    if (!t->type) {
        rc = zt_fail(err, ZT_ENOMEM, "out of memory");
        goto fail;
    }
    const zt_kv *types = kv_array(m, "tokenizer.ggml.token_type", false);
    if (types && types->n != tokens->n) {
        rc = zt_fail(err, ZT_EFORMAT, "tokenizer.ggml.token_type has %llu entries for %d tokens",
                     (unsigned long long)types->n, n);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        int64_t ty = TOK_TYPE_NORMAL;
        if (types && (!kv_int_at(types, (uint64_t)i, &ty) || ty < 0 || ty > TOK_TYPE_BYTE)) {
            rc = zt_fail(err, ZT_EFORMAT, "tokenizer.ggml.token_type[%d] is not a token type", i);
            goto fail;
        }
        t->type[i] = (uint8_t)ty;
    }
    const zt_kv *scores = model_kv(m, "tokenizer.ggml.scores");
    if (scores) {
        if (scores->type != GGUF_ARRAY || scores->arr_type != GGUF_F32 || scores->n != tokens->n) {
            rc = zt_fail(err, ZT_EFORMAT, "tokenizer.ggml.scores must be %d f32 values", n);
            goto fail;
        }
        if (!(t->scores = malloc((size_t)n * sizeof *t->scores))) {
            rc = zt_fail(err, ZT_ENOMEM, "out of memory");
            goto fail;
        }
        memcpy(t->scores, scores->arr, (size_t)n * sizeof *t->scores);
    }
    if ((rc = build_vocab(t, tokens, err))) goto fail;
    const zt_kv *merges = kv_array(m, "tokenizer.ggml.merges", true);
    if (merges && (rc = build_merges(t, merges, err))) goto fail;
    if (!spm && !merges) {
        rc = zt_fail(err, ZT_EFORMAT, "byte-level BPE needs tokenizer.ggml.merges");
        goto fail;
    }

    if ((rc = read_id(m, "tokenizer.ggml.bos_token_id", n, &t->bos, err)) ||
        (rc = read_id(m, "tokenizer.ggml.eos_token_id", n, &t->eos, err)) ||
        (rc = read_id(m, "tokenizer.ggml.unknown_token_id", n, &t->unk, err)))
        goto fail;
    if (t->unk < 0 && spm) {
        for (int i = 0; i < n && t->unk < 0; i++)
            if (t->type[i] == TOK_TYPE_UNKNOWN) t->unk = i;
    }
    t->add_bos = get_bool(m, "tokenizer.ggml.add_bos_token", spm) && t->bos >= 0;
    t->add_eos = get_bool(m, "tokenizer.ggml.add_eos_token", false) && t->eos >= 0;

    rc = spm ? build_spm(t, m, err) : build_byte_level(t, m, err);
    if (rc) goto fail;
    const char *norm = model_get_str(m, "zt.tokenizer.normalizer");
    if (norm) t->nfc = !strcmp(norm, "nfc");
    if ((rc = build_added(t, m, err)) || (rc = build_stops(t, m, err))) goto fail;
    *out = t;
    return ZT_OK;
fail:
    zt_tokenizer_free(t);
    return rc;
}

/* ---- queries --------------------------------------------------------- */

int zt_tokenizer_n_vocab(const zt_tokenizer *t) { return t->n_vocab; }
int32_t zt_tokenizer_bos(const zt_tokenizer *t) { return t->bos; }
int32_t zt_tokenizer_eos(const zt_tokenizer *t) { return t->eos; }

bool zt_tokenizer_is_stop(const zt_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_vocab && t->stop[id];
}

/* ---- encoding -------------------------------------------------------- */

/* A section of the text: an added token, or text to encode. */
typedef struct tok_section {
    int32_t token; /* -1 for text */
    size_t start, len;
} tok_section;

/* The longest added token at s (allowed by flags), or -1; *len its bytes. */
static int32_t match_added(const zt_tokenizer *t, const uint8_t *s, size_t n, bool special,
                           size_t *len) {
    int32_t best = -1;
    int node = 0;
    for (size_t i = 0; i < n; i++) {
        int c = t->trie[node].child;
        while (c >= 0 && t->trie[c].byte != s[i]) c = t->trie[c].sibling;
        if (c < 0) break;
        node = c;
        int32_t id = t->trie[node].token;
        if (id >= 0 && (special || t->type[id] == TOK_TYPE_USER_DEFINED)) {
            best = id;
            *len = i + 1;
        }
    }
    return best;
}

/* Bytes of JavaScript whitespace at the start / end of s[0, n). */
static size_t space_prefix(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)s + i, n - i, &cp);
        if (k <= 0 || !uni_is_space_js(cp)) break;
        i += (size_t)k;
    }
    return i;
}

static size_t space_suffix(const char *s, size_t n) {
    size_t i = 0, end = 0; /* end: just past the last non-space */
    while (i < n) {
        uint32_t cp;
        int k = uni_utf8_next((const uint8_t *)s + i, n - i, &cp);
        if (k <= 0) k = 1, cp = 0;
        i += (size_t)k;
        if (!uni_is_space_js(cp)) end = i;
    }
    return n - end;
}

static int split_added(const zt_tokenizer *t, const char *s, size_t len, bool special,
                       tok_section **out, int *n_out) {
    tok_section *sec = NULL;
    int n = 0, cap = 0;
    size_t start = 0, i = 0;
    for (;;) {
        size_t mlen = 0;
        int32_t id = -1;
        if (t->n_trie && i < len)
            id = match_added(t, (const uint8_t *)s + i, len - i, special, &mlen);
        if (id < 0 && i < len) {
            i++;
            continue;
        }
        if (n + 2 > cap) {
            cap = cap ? cap * 2 : 16;
            tok_section *p = realloc(sec, (size_t)cap * sizeof *p);
            if (!p) {
                free(sec);
                return ZT_ENOMEM;
            }
            sec = p;
        }
        if (i > start) sec[n++] = (tok_section){-1, start, i - start};
        if (id < 0) break; /* end of text */
        sec[n++] = (tok_section){id, i, mlen};
        i += mlen;
        start = i;
    }
    /* lstrip / rstrip eat the whitespace of the neighbouring text */
    for (int k = 0; k < n; k++) {
        if (sec[k].token < 0) continue;
        const tok_added *a = &t->added[sec[k].token];
        if (a->lstrip && k > 0 && sec[k - 1].token < 0)
            sec[k - 1].len -= space_suffix(s + sec[k - 1].start, sec[k - 1].len);
        if (a->rstrip && k + 1 < n && sec[k + 1].token < 0) {
            size_t eat = space_prefix(s + sec[k + 1].start, sec[k + 1].len);
            sec[k + 1].start += eat;
            sec[k + 1].len -= eat;
        }
    }
    *out = sec;
    *n_out = n;
    return ZT_OK;
}

int zt_tokenize(const zt_tokenizer *t, const char *text, size_t len, int flags, int32_t **ids,
                int *n_ids, zt_error *err) {
    *ids = NULL;
    *n_ids = 0;
    if (!text && len) return zt_fail(err, ZT_EINVAL, "tokenize: text is NULL");
    if (len > (size_t)INT32_MAX / 4) return zt_fail(err, ZT_EINVAL, "tokenize: text too long");
    char *clean = NULL;
    if (len && !uni_utf8_valid(text, len)) {
        if (!(clean = uni_utf8_sanitize(text, len, &len)))
            return zt_fail(err, ZT_ENOMEM, "out of memory");
        text = clean;
    }
    tok_ids out = {0};
    tok_work work = {0};
    tok_section *sec = NULL;
    int n_sec = 0, rc = ZT_ENOMEM; /* the steps below fail only for memory */
    bool special = (flags & ZT_TOK_PARSE_SPECIAL) != 0;
    if ((flags & ZT_TOK_ADD_BOS) && t->add_bos && tok_ids_push(&out, t->bos)) goto done;
    if (len && split_added(t, text, len, special, &sec, &n_sec)) goto done;
    for (int k = 0; k < n_sec; k++) {
        const tok_section *sc = &sec[k];
        if (sc->token >= 0) {
            if (tok_ids_push(&out, sc->token)) goto done;
            continue;
        }
        if (sc->len == 0) continue;
        const char *s = text + sc->start;
        size_t n = sc->len;
        char *norm = NULL;
        if (t->nfc) {
            if (!(norm = uni_nfc(s, n, &n))) goto done;
            s = norm;
        }
        int r = t->kind == TOK_SPM ? spm_encode(t, &work, s, n, sc->start == 0, &out)
                                   : bpe_encode(t, &work, s, n, &out);
        free(norm);
        if (r) goto done;
    }
    if ((flags & ZT_TOK_ADD_BOS) && t->add_eos && tok_ids_push(&out, t->eos)) goto done;
    if (!out.ids && !(out.ids = malloc(sizeof *out.ids))) goto done;
    rc = ZT_OK;
done:
    tok_work_free(&work);
    free(sec);
    free(clean);
    if (rc) {
        free(out.ids);
        return zt_fail(err, rc, "out of memory");
    }
    *ids = out.ids;
    *n_ids = out.n;
    return ZT_OK;
}
