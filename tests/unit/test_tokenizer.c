/* Tokenizer tests: the Hugging Face reference vectors of three real
 * vocabularies (tests/vocab/, see its README), round trips, the
 * streaming detokenizer, invalid UTF-8, NFC, the pre-tokenizer regexes,
 * Phi-3's special-token stripping, tokenizer.json conversion, bad metadata
 * and speed. The large corpus against the reference implementations runs
 * in tests/node/tokenizer.test.mjs. */
#include "../test.h"
#include "model/model.h"
#include "tokenizer/regex.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

#include <stdint.h>
#include <time.h>

#define VOCAB_DIR "tests/vocab/"

/* ---- helpers --------------------------------------------------------- */

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* The tokenizer of a vocabulary-only GGUF file in VOCAB_DIR. */
static zt_tokenizer *open_vocab(const char *name) {
    char path[256];
    snprintf(path, sizeof path, VOCAB_DIR "ggml-vocab-%s.gguf", name);
    zt_error err = {0};
    zt_model *m = model_new(path);
    zt_tokenizer *t = NULL;
    if (m && gguf_load(path, m, &err) == ZT_OK) zt_tokenizer_create(m, &t, &err);
    if (!t) fprintf(stderr, "  %s: %s\n", path, err.msg);
    zt_model_free(m);
    return t;
}

static bool encode(const zt_tokenizer *t, const char *s, size_t len, int flags, int32_t **ids,
                   int *n) {
    zt_error err = {0};
    if (zt_tokenize(t, s, len, flags, ids, n, &err) == ZT_OK) return true;
    fprintf(stderr, "  tokenize: %s\n", err.msg);
    return false;
}

static bool ids_equal(const int32_t *a, int na, const int32_t *b, int nb) {
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

static void print_ids(const char *label, const int32_t *ids, int n) {
    fprintf(stderr, "    %s [", label);
    for (int i = 0; i < n && i < 40; i++) fprintf(stderr, i ? " %d" : "%d", ids[i]);
    fprintf(stderr, "%s]\n", n > 40 ? " ..." : "");
}

/* Checks every string of X.gguf.inp against the ids on its line of
 * X.gguf.out (HF, no BOS); with round_trip, also decode(encode(s)) == s.
 * Returns the number of strings checked (0 on a setup failure). */
static int check_vectors(const char *name, bool round_trip, int *failed) {
    char path[256];
    size_t inp_len, out_len;
    snprintf(path, sizeof path, VOCAB_DIR "ggml-vocab-%s.gguf.inp", name);
    char *inp = read_all(path, &inp_len);
    snprintf(path, sizeof path, VOCAB_DIR "ggml-vocab-%s.gguf.out", name);
    char *out = read_all(path, &out_len);
    zt_tokenizer *t = open_vocab(name);
    int checked = 0;
    if (!inp || !out || !t) {
        *failed = 1;
        goto done;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *s = inp, *line = out;
    for (;;) {
        char *end = strstr(s, sep);
        size_t len = end ? (size_t)(end - s) : strlen(s);
        char *eol = strchr(line, '\n');
        if (eol) *eol = 0;
        int32_t expect[4096];
        int n_expect = 0;
        for (char *p = line, *q; n_expect < 4096; p = q) {
            long v = strtol(p, &q, 10);
            if (q == p) break;
            expect[n_expect++] = (int32_t)v;
        }
        int32_t *ids;
        int n;
        if (!encode(t, s, len, ZT_TOK_PARSE_SPECIAL, &ids, &n)) {
            *failed = 1;
            break;
        }
        if (!ids_equal(ids, n, expect, n_expect)) {
            fprintf(stderr, "  %s string %d \"%.*s\":\n", name, checked, (int)(len < 60 ? len : 60),
                    s);
            print_ids("expected", expect, n_expect);
            print_ids("got     ", ids, n);
            *failed = 1;
        }
        if (round_trip && uni_utf8_valid(s, len)) {
            char *text;
            size_t tlen;
            zt_error err = {0};
            if (tok_decode(t, ids, n, &text, &tlen, &err) != ZT_OK) {
                fprintf(stderr, "  decode: %s\n", err.msg);
                *failed = 1;
            } else {
                if (tlen != len || memcmp(text, s, len) != 0) {
                    fprintf(stderr, "  %s string %d does not round-trip: \"%.*s\" -> \"%s\"\n",
                            name, checked, (int)(len < 60 ? len : 60), s, text);
                    *failed = 1;
                }
                free(text);
            }
        }
        free(ids);
        checked++;
        if (!end || !eol) break;
        s = end + sizeof sep - 1;
        line = eol + 1;
    }
done:
    zt_tokenizer_free(t);
    free(inp);
    free(out);
    return checked;
}

/* ---- reference vectors ----------------------------------------------- */

TEST(test_tokenizer_phi3_matches_hf_vectors) {
    CHECK_EQ_INT(check_vectors("phi-3", false, test_failed_), 47);
}

TEST(test_tokenizer_llama_spm_matches_hf_vectors) {
    CHECK_EQ_INT(check_vectors("llama-spm", false, test_failed_), 47);
}

TEST(test_tokenizer_gpt2_matches_hf_vectors) {
    CHECK_EQ_INT(check_vectors("gpt-2", false, test_failed_), 47);
}

TEST(test_tokenizer_vectors_round_trip_through_decode) {
    CHECK(check_vectors("phi-3", true, test_failed_) > 0);
    CHECK(check_vectors("llama-spm", true, test_failed_) > 0);
    CHECK(check_vectors("gpt-2", true, test_failed_) > 0);
}

/* ---- special tokens -------------------------------------------------- */

TEST(test_tokenizer_phi3_chat_tokens_eat_the_newline_after_them) {
    zt_tokenizer *t = open_vocab("phi-3");
    REQUIRE(t);
    /* HF: <|user|>, <|end|>, <|assistant|> are rstrip; <|endoftext|> is not */
    const char *chat = "<|user|>\nHello<|end|>\n<|assistant|>";
    int32_t *ids;
    int n;
    REQUIRE(encode(t, chat, strlen(chat), ZT_TOK_DEFAULT, &ids, &n));
    static const int32_t want[] = {1, 32010, 15043, 32007, 32001};
    CHECK(ids_equal(ids, n, want, 5));
    free(ids);
    const char *eot = "<|endoftext|>\nHi";
    REQUIRE(encode(t, eot, strlen(eot), ZT_TOK_PARSE_SPECIAL, &ids, &n));
    static const int32_t want2[] = {32000, 29871, 13, 18567};
    CHECK(ids_equal(ids, n, want2, 4));
    free(ids);
    /* without special parsing the spelling is plain text */
    REQUIRE(encode(t, "<|end|>", 7, 0, &ids, &n));
    static const int32_t want3[] = {529, 29989, 355, 29989, 29958};
    CHECK(ids_equal(ids, n, want3, 5));
    free(ids);
    zt_tokenizer_free(t);
}

TEST(test_tokenizer_bos_eos_and_stop_ids_follow_the_model) {
    zt_tokenizer *t = open_vocab("phi-3");
    REQUIRE(t);
    CHECK_EQ_INT(zt_tokenizer_n_vocab(t), 32064);
    CHECK_EQ_INT(zt_tokenizer_bos(t), 1);
    CHECK_EQ_INT(zt_tokenizer_eos(t), 32000);
    CHECK(zt_tokenizer_is_stop(t, 32000)); /* <|endoftext|>, the EOS */
    CHECK(zt_tokenizer_is_stop(t, 32007)); /* <|end|>, end of turn */
    CHECK(!zt_tokenizer_is_stop(t, 15043));
    CHECK(!zt_tokenizer_is_stop(t, 1));
    CHECK(!zt_tokenizer_is_stop(t, -1));
    CHECK(!zt_tokenizer_is_stop(t, 32064));
    int32_t *ids;
    int n;
    REQUIRE(encode(t, "", 0, ZT_TOK_DEFAULT, &ids, &n));
    CHECK(n == 1 && ids[0] == 1);
    free(ids);
    zt_tokenizer_free(t);

    t = open_vocab("gpt-2");
    REQUIRE(t);
    CHECK(zt_tokenizer_is_stop(t, 50256));
    REQUIRE(encode(t, "Hello world", 11, ZT_TOK_DEFAULT, &ids, &n)); /* GPT-2 adds no BOS */
    static const int32_t want[] = {15496, 995};
    CHECK(ids_equal(ids, n, want, 2));
    free(ids);
    zt_tokenizer_free(t);
}

/* ---- detokenizer ----------------------------------------------------- */

static bool valid_utf8(const char *s) { return uni_utf8_valid(s, strlen(s)); }

TEST(test_detok_never_emits_half_a_character_of_byte_fallback) {
    zt_tokenizer *t = open_vocab("llama-spm");
    REQUIRE(t);
    const char *text = "a🦙é";
    int32_t *ids;
    int n;
    REQUIRE(encode(t, text, strlen(text), 0, &ids, &n));
    zt_detok *d;
    zt_error err = {0};
    REQUIRE(zt_detok_create(t, &d, &err) == ZT_OK);
    char all[256] = "", out[64];
    int pieces_with_text = 0, held_back = 0;
    for (int i = 0; i < n; i++) {
        int k = zt_detok_push(d, ids[i], out, sizeof out);
        CHECK(k >= 0 && (size_t)k == strlen(out));
        CHECK(valid_utf8(out));
        if (k > 0)
            pieces_with_text++;
        else
            held_back++;
        strcat(all, out);
    }
    CHECK(zt_detok_flush(d, out, sizeof out) == 0);
    CHECK_STR(all, text);  /* the "▁" prefix space is dropped */
    CHECK(held_back >= 3); /* the first three bytes of 🦙 (F0 9F A6 99) wait */
    zt_detok_free(d);
    free(ids);

    /* a character cut off at the end of the stream becomes U+FFFD */
    REQUIRE(zt_detok_create(t, &d, &err) == ZT_OK);
    CHECK(zt_detok_push(d, 3 + 0xF0, out, sizeof out) == 0);
    CHECK(zt_detok_push(d, 3 + 0x9F, out, sizeof out) == 0);
    CHECK(zt_detok_flush(d, out, sizeof out) == 3);
    CHECK_STR(out, "\xef\xbf\xbd");
    CHECK(zt_detok_push(d, 99999, out, sizeof out) == ZT_EINVAL);
    zt_detok_free(d);
    zt_tokenizer_free(t);
}

TEST(test_detok_byte_level_tokens_split_characters_and_stream_whole_ones) {
    zt_tokenizer *t = open_vocab("gpt-2");
    REQUIRE(t);
    const char *text = "🦙 llamas naïve 中文";
    int32_t *ids;
    int n;
    REQUIRE(encode(t, text, strlen(text), 0, &ids, &n));
    zt_detok *d;
    zt_error err = {0};
    REQUIRE(zt_detok_create(t, &d, &err) == ZT_OK);
    char all[256] = "", out[5]; /* room for one character: the rest waits */
    for (int i = 0; i < n; i++) {
        int k = zt_detok_push(d, ids[i], out, sizeof out);
        CHECK(k >= 0 && valid_utf8(out));
        strcat(all, out);
    }
    int k;
    while ((k = zt_detok_flush(d, out, sizeof out)) > 0) strcat(all, out);
    CHECK(k == 0);
    CHECK_STR(all, text);
    CHECK(zt_detok_flush(d, out, 4) == ZT_EINVAL); /* too small for a character */
    zt_detok_free(d);
    free(ids);
    zt_tokenizer_free(t);
}

/* ---- Unicode --------------------------------------------------------- */

/* Expected bytes from JavaScript's TextDecoder on the same input. */
TEST(test_unicode_invalid_utf8_becomes_fffd_like_textdecoder) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"\xf0\x9f\x98", "\xef\xbf\xbd"},
        {"\xf0\x9f\x98"
         "A",
         "\xef\xbf\xbd"
         "A"},
        {"\xe2\x82\xe2\x82\xac", "\xef\xbf\xbd\xe2\x82\xac"},
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"A\xff"
         "B",
         "A\xef\xbf\xbd"
         "B"},
        {"\xc2", "\xef\xbf\xbd"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *s = uni_utf8_sanitize(cases[i].in, strlen(cases[i].in), &n);
        REQUIRE(s);
        CHECK_STR(s, cases[i].out);
        CHECK_EQ_INT(n, strlen(cases[i].out));
        free(s);
    }
    /* the tokenizer sees the replaced text */
    zt_tokenizer *t = open_vocab("llama-spm");
    REQUIRE(t);
    int32_t *a, *b;
    int na, nb;
    REQUIRE(encode(t, "Hi \xff!", 5, 0, &a, &na));
    REQUIRE(encode(t, "Hi \xef\xbf\xbd!", 7, 0, &b, &nb));
    CHECK(ids_equal(a, na, b, nb));
    CHECK(na > 3);
    free(a);
    free(b);
    zt_tokenizer_free(t);
}

TEST(test_unicode_nfc_matches_javascript_normalize) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"e\xcc\x81", "\xc3\xa9"},                                /* e + acute -> é */
        {"\xe1\xb8\x8b\xcc\xa3", "\xe1\xb8\x8d\xcc\x87"},         /* reorder, recompose */
        {"q\xcc\x87\xcc\xa3", "q\xcc\xa3\xcc\x87"},               /* no composite: reorder */
        {"\xe2\x84\xa6\xe2\x84\xab", "\xce\xa9\xc3\x85"},         /* singletons */
        {"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"}, /* jamo -> 각 */
        {"e\xcc\x81\xcc\x81", "\xc3\xa9\xcc\x81"},                /* second mark blocked */
        {"\xcd\x84", "\xcc\x88\xcc\x81"},                         /* excluded from composition */
        {"plain ASCII stays", "plain ASCII stays"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        char *s = uni_nfc(cases[i].in, strlen(cases[i].in), &n);
        REQUIRE(s);
        CHECK_STR(s, cases[i].out);
        free(s);
    }
    CHECK_EQ_INT(uni_gc(0x41), UNI_LU);
    CHECK_EQ_INT(uni_gc(0x4E2D), UNI_LO);  /* 中 */
    CHECK_EQ_INT(uni_gc(0x0663), UNI_ND);  /* Arabic-Indic 3 */
    CHECK_EQ_INT(uni_gc(0x00B2), UNI_NO);  /* superscript 2 */
    CHECK_EQ_INT(uni_gc(0x1F999), UNI_SO); /* 🦙 */
    CHECK(uni_is_space_js(0xFEFF) && !uni_is_space_js(0x85));
}

/* Expected pieces from the same pattern in JavaScript (transformers.js's
 * rewrite of Llama 3's regex). */
TEST(test_regex_llama3_pattern_splits_like_javascript) {
    const char *pattern = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
                          "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const char *text = "I've 12345 apples\n\n  ok?!  \tDON'T";
    static const char *const want[] = {"I", "'ve", " ",  "123", "45",    " apples", "\n\n",
                                       " ", " ok", "?!", "  ",  "\tDON", "'T"};
    tok_regex *re;
    zt_error err = {0};
    REQUIRE(tok_regex_compile(pattern, &re, &err) == ZT_OK);
    uint32_t cps[64];
    long n = 0;
    for (const char *p = text; *p; p++) cps[n++] = (uint8_t)*p; /* ASCII text */
    long pos = 0, end, k = 0;
    while (pos < n) {
        long start = tok_regex_search(re, cps, n, pos, &end);
        REQUIRE(start == pos); /* every character is matched */
        REQUIRE(k < 13);
        CHECK_EQ_INT(end - start, (long)strlen(want[k]));
        CHECK(memcmp(text + start, want[k], strlen(want[k])) == 0);
        k++;
        pos = end;
    }
    CHECK_EQ_INT(k, 13);
    tok_regex_free(re);
    CHECK(tok_regex_compile("(?<name>x)", &re, &err) == ZT_EUNSUP);
    CHECK(strstr(err.msg, "regex") != NULL);
    CHECK(tok_regex_compile("a)", &re, &err) != ZT_OK);
    CHECK(tok_regex_compile("(?:)*", &re, &err) != ZT_OK);
}

/* ---- tokenizer.json -------------------------------------------------- */

static bool write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) return false;
    bool ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok;
}

/* A tokenizer.json written into the test's scratch directory. */
static zt_tokenizer *from_json(const char *name, const char *json, int *rc_out, zt_error *err) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", test_tmpdir(), name);
    zt_tokenizer *t = NULL;
    if (!write_file(path, json)) return NULL;
    zt_model *m = model_new(path);
    int rc = hf_tokenizer_to_kv(m, path, err);
    if (rc == ZT_OK) rc = zt_tokenizer_create(m, &t, err);
    if (rc_out) *rc_out = rc;
    zt_model_free(m);
    return t;
}

/* A byte-level vocabulary: the 256 byte characters in byte order, then
 * merged tokens, with one merge in each of the two file forms. */
static char *byte_level_json(void) {
    uint16_t map[256];
    bpe_byte_map(map);
    char *json = malloc(16384), *p = json;
    p += sprintf(p, "{\"model\": {\"type\": \"BPE\", \"vocab\": {");
    for (int b = 0; b < 256; b++) {
        char ch[5] = {0};
        uni_utf8_put(map[b], ch);
        if (b == '"' || b == '\\')
            p += sprintf(p, "\"\\%c\": %d, ", b, b);
        else
            p += sprintf(p, "\"%s\": %d, ", ch, b);
    }
    p += sprintf(
        p, "\"he\": 256, \"ll\": 257, \"hel\": 258, \"\xc4\xa0"
           "b\": 259},"
           " \"merges\": [\"h e\", [\"l\", \"l\"], \"he l\", \"\xc4\xa0 b\"]},"
           " \"added_tokens\": [{\"id\": 260, \"content\": \"<|x|>\", \"special\": true,"
           " \"lstrip\": false, \"rstrip\": true, \"normalized\": false, \"single_word\": false},"
           " {\"id\": 261, \"content\": \"<bos>\", \"special\": true}],"
           " \"normalizer\": null,"
           " \"pre_tokenizer\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false},"
           " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": ["
           "{\"SpecialToken\": {\"id\": \"<bos>\", \"type_id\": 0}},"
           " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]},"
           " \"decoder\": {\"type\": \"ByteLevel\"}}");
    return json;
}

TEST(test_hf_tokenizer_json_byte_level_merges_by_rank_and_strips_added_tokens) {
    char *json = byte_level_json();
    zt_error err = {0};
    zt_tokenizer *t = from_json("bytelevel.json", json, NULL, &err);
    free(json);
    if (!t) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(t);
    CHECK_EQ_INT(zt_tokenizer_n_vocab(t), 262);
    CHECK_EQ_INT(zt_tokenizer_bos(t), 261); /* from the template */
    int32_t *ids;
    int n;
    /* "h e" (rank 0), then "l l" (rank 1) beats "he l" (rank 2) */
    REQUIRE(encode(t, "hello b", 7, ZT_TOK_DEFAULT, &ids, &n));
    static const int32_t want[] = {261, 256, 257, 'o', 259};
    CHECK(ids_equal(ids, n, want, 5));
    free(ids);
    /* <|x|> eats the spaces on its right */
    REQUIRE(encode(t, "b<|x|>  \tb", 10, ZT_TOK_PARSE_SPECIAL, &ids, &n));
    static const int32_t want2[] = {'b', 260, 'b'};
    CHECK(ids_equal(ids, n, want2, 3));
    free(ids);
    char *text;
    size_t len;
    static const int32_t dec[] = {256, 257, 'o', 260, 259};
    REQUIRE(tok_decode(t, dec, 5, &text, &len, &err) == ZT_OK);
    CHECK_STR(text, "hello<|x|> b");
    free(text);
    zt_tokenizer_free(t);
}

TEST(test_hf_tokenizer_json_sentencepiece_style_prepends_and_falls_back_to_bytes) {
    char json[16384], *p = json;
    p += sprintf(p, "{\"model\": {\"type\": \"BPE\", \"byte_fallback\": true, \"fuse_unk\": true,"
                    " \"unk_token\": \"<unk>\", \"vocab\": {\"<unk>\": 0, \"<s>\": 1, \"</s>\": 2");
    for (int b = 0; b < 256; b++) p += sprintf(p, ", \"<0x%02X>\": %d", b, 3 + b);
    sprintf(p, ", \"\xe2\x96\x81\": 259, \"a\": 260, \"b\": 261, \"\xe2\x96\x81"
               "a\": 262,"
               " \"ab\": 263, \"\xe2\x96\x81"
               "ab\": 264},"
               " \"merges\": [\"\xe2\x96\x81 a\", \"a b\", \"\xe2\x96\x81"
               "a b\"]},"
               " \"added_tokens\": [{\"id\": 1, \"content\": \"<s>\", \"special\": true},"
               " {\"id\": 2, \"content\": \"</s>\", \"special\": true}],"
               " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
               "{\"type\": \"Prepend\", \"prepend\": \"\xe2\x96\x81\"},"
               " {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": "
               "\"\xe2\x96\x81\"}]},"
               " \"pre_tokenizer\": null,"
               " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": ["
               "{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}},"
               " {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}]}}");
    zt_error err = {0};
    zt_tokenizer *t = from_json("spm.json", json, NULL, &err);
    if (!t) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(t);
    int32_t *ids;
    int n;
    /* "ab c" -> "▁ab▁c": ▁+a (rank 0) then ▁a+b (rank 2); c is a byte */
    REQUIRE(encode(t, "ab c</s>", 8, ZT_TOK_DEFAULT, &ids, &n));
    static const int32_t want[] = {1, 264, 259, 3 + 'c', 2};
    CHECK(ids_equal(ids, n, want, 5));
    free(ids);
    char *text;
    size_t len;
    static const int32_t dec[] = {264, 259, 3 + 'c'};
    REQUIRE(tok_decode(t, dec, 3, &text, &len, &err) == ZT_OK);
    CHECK_STR(text, "ab c"); /* the prefix space goes */
    free(text);
    zt_tokenizer_free(t);
}

TEST(test_hf_tokenizer_json_refuses_what_it_cannot_run) {
    int rc = 0;
    zt_error err = {0};
    zt_tokenizer *t =
        from_json("wordpiece.json", "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
                  &rc, &err);
    CHECK(!t && rc == ZT_EUNSUP);
    CHECK(strstr(err.msg, "WordPiece") != NULL);
    t = from_json("broken.json", "{\"model\": {\"type\": \"BPE\", \"vocab\": ", &rc, &err);
    CHECK(!t && rc == ZT_EINVAL);
    CHECK(strstr(err.msg, "broken.json") != NULL);
    t = from_json("lower.json",
                  "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []},"
                  " \"normalizer\": {\"type\": \"Lowercase\"}}",
                  &rc, &err);
    CHECK(!t && rc == ZT_EUNSUP);
    CHECK(strstr(err.msg, "Lowercase") != NULL);
    zt_model *m = model_new("x");
    REQUIRE(m);
    CHECK(hf_tokenizer_to_kv(m, "/nonexistent/tokenizer.json", &err) == ZT_EIO);
    zt_model_free(m);
}

/* ---- bad metadata ---------------------------------------------------- */

TEST(test_tokenizer_create_rejects_bad_metadata) {
    zt_error err = {0};
    zt_tokenizer *t;
    zt_model *m = model_new("bad");
    REQUIRE(m);
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EFORMAT); /* no tokenizer at all */
    CHECK(strstr(err.msg, "tokenizer.ggml.model") != NULL);
    model_set_str(m, "tokenizer.ggml.model", "bert");
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EUNSUP);
    model_set_str(m, "tokenizer.ggml.model", "gpt2");
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EFORMAT); /* no tokens */
    static const char *const toks[] = {"a", "b", "ab"};
    model_set_str_arr(m, "tokenizer.ggml.tokens", toks, 3);
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EFORMAT); /* gpt2 without merges */
    CHECK(strstr(err.msg, "merges") != NULL);
    model_set_str(m, "tokenizer.ggml.model", "llama");
    static const float scores[] = {0, 0, -1};
    model_set_arr(m, "tokenizer.ggml.scores", GGUF_F32, scores, 3);
    static const int32_t types[] = {1, 1};
    model_set_arr(m, "tokenizer.ggml.token_type", GGUF_I32, types, 2);
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EFORMAT); /* 2 types for 3 tokens */
    static const int32_t types3[] = {1, 1, 1};
    model_set_arr(m, "tokenizer.ggml.token_type", GGUF_I32, types3, 3);
    model_set_u32(m, "tokenizer.ggml.bos_token_id", 7);
    CHECK(zt_tokenizer_create(m, &t, &err) == ZT_EFORMAT); /* bos outside the vocabulary */
    CHECK(strstr(err.msg, "bos_token_id") != NULL);
    model_set_u32(m, "tokenizer.ggml.bos_token_id", 0);
    REQUIRE(zt_tokenizer_create(m, &t, &err) == ZT_OK);
    int32_t *ids;
    int n;
    REQUIRE(encode(t, "ab", 2, 0, &ids, &n)); /* no "▁" token: prefix is unknown */
    CHECK(n >= 1 && ids[n - 1] == 2);
    free(ids);
    zt_tokenizer_free(t);
    zt_model_free(m);
}

/* ---- speed ----------------------------------------------------------- */

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

TEST(test_tokenize_one_megabyte_well_under_a_second) {
    static const char *const parts[] = {
        "The quick brown fox jumps over the lazy dog. ",
        "Größere Äpfel schmecken süßer. ",
        "我能吞下玻璃而不伤身体。",
        "  indented\n\tcode(x, y);\n",
        "🦙 emoji 👍🏽 ",
        "I can't, we'll, they've 12345 67.89 ",
        "Привет, как дела? ",
    };
    size_t cap = (1 << 20) + 256, len = 0;
    char *text = malloc(cap);
    REQUIRE(text);
    for (int i = 0; len < (1 << 20); i = (i + 1) % 7) {
        size_t k = strlen(parts[i]);
        memcpy(text + len, parts[i], k);
        len += k;
    }
    static const char *const vocabs[] = {"phi-3", "gpt-2"};
    for (int v = 0; v < 2; v++) {
        zt_tokenizer *t = open_vocab(vocabs[v]);
        REQUIRE(t);
        int32_t *ids;
        int n;
        double t0 = seconds();
        REQUIRE(encode(t, text, len, ZT_TOK_DEFAULT, &ids, &n));
        double dt = seconds() - t0;
        CHECK(n > 100000);
        CHECK(dt < 1.0);
        if (dt >= 1.0) fprintf(stderr, "  %s: %.2f s for 1 MiB\n", vocabs[v], dt);
        free(ids);
        zt_tokenizer_free(t);
    }
    free(text);
}
