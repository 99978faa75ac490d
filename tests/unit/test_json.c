/* JSON parser and writer: valid documents decode to the exact values,
 * every class of malformed text is rejected with a message and a byte
 * offset, hostile input (depth bombs, random mutations) fails cleanly. */
#include "../test.h"
#include "util/json.h"

#include <stdint.h>

static json_value *parse_str(const char *text, zt_error *err) {
    return json_parse(text, strlen(text), err);
}

TEST(test_json_object_keeps_key_order_and_nesting) {
    zt_error err = {0};
    const char *text = " {\"zeta\": [1, 2, {\"x\": null}], \"alpha\": {\"t\": true, \"f\": false},"
                       "\n\t\"mid\": \"s\", \"empty_a\": [], \"empty_o\": {}}\r\n";
    json_value *v = parse_str(text, &err);
    REQUIRE(v);
    REQUIRE(json_is(v, JSON_OBJECT));
    CHECK_EQ_INT(json_len(v), 5);
    CHECK_STR(json_key_at(v, 0, NULL), "zeta");
    CHECK_STR(json_key_at(v, 1, NULL), "alpha");
    CHECK_STR(json_key_at(v, 2, NULL), "mid");
    CHECK_STR(json_key_at(v, 4, NULL), "empty_o");
    CHECK(json_key_at(v, 5, NULL) == NULL);

    const json_value *zeta = json_get(v, "zeta");
    CHECK_EQ_INT(json_len(zeta), 3);
    int64_t i = 0;
    CHECK(json_as_int(json_at(zeta, 1), &i) && i == 2);
    CHECK(json_is(json_get(json_at(zeta, 2), "x"), JSON_NULL));
    CHECK(json_at(zeta, 3) == NULL);

    bool b = false;
    CHECK(json_as_bool(json_get(json_get(v, "alpha"), "t"), &b) && b);
    CHECK(json_as_bool(json_get(json_get(v, "alpha"), "f"), &b) && !b);
    CHECK_STR(json_as_str(json_get(v, "mid")), "s");
    CHECK(json_is(json_get(v, "empty_a"), JSON_ARRAY) && json_len(json_get(v, "empty_a")) == 0);
    CHECK(json_is(json_get(v, "empty_o"), JSON_OBJECT) && json_len(json_get(v, "empty_o")) == 0);
    CHECK(json_get(v, "missing") == NULL);
    /* json_at on an object gives member values in order */
    CHECK(json_at(v, 2) == json_get(v, "mid"));
    json_free(v);
}

TEST(test_json_string_escapes_decode_to_utf8) {
    zt_error err = {0};
    json_value *v =
        parse_str("[\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\\u0041\","
                  "\"\\uD83D\\uDE00\", \"caf\xC3\xA9 \xF0\x9F\x98\x80\", \"a\\u0000b\"]",
                  &err);
    REQUIRE(v);
    CHECK_STR(json_as_str(json_at(v, 0)), "q\" b\\ s/ \b\f\n\r\t");
    CHECK_STR(json_as_str(json_at(v, 1)), "\xC3\xA9\xE2\x82\xAC"
                                          "A");
    CHECK_EQ_INT(json_len(json_at(v, 1)), 6);
    /* U+1F600 from a surrogate pair: F0 9F 98 80 */
    CHECK_STR(json_as_str(json_at(v, 2)), "\xF0\x9F\x98\x80");
    CHECK_STR(json_as_str(json_at(v, 3)), "caf\xC3\xA9 \xF0\x9F\x98\x80");
    /* an escaped NUL keeps the full length */
    const json_value *nul = json_at(v, 4);
    CHECK_EQ_INT(json_len(nul), 3);
    CHECK(memcmp(json_as_str(nul), "a\0b", 4) == 0);
    json_free(v);
}

TEST(test_json_keys_with_escapes_are_found_by_decoded_name) {
    zt_error err = {0};
    json_value *v = parse_str("{\"\\u0048i\": 7, \"<\\/s>\": 2}", &err);
    REQUIRE(v);
    int64_t i = 0;
    CHECK(json_as_int(json_get(v, "Hi"), &i) && i == 7);
    CHECK(json_as_int(json_get(v, "</s>"), &i) && i == 2);
    json_free(v);
}

TEST(test_json_numbers_keep_double_and_exact_int64) {
    zt_error err = {0};
    json_value *v = parse_str("[0, -0, 123, -9223372036854775808, 9223372036854775807,"
                              " 9223372036854775808, 1.5, 1e-5, 1E+2, 2.5e-3, 0.1,"
                              " 3.14159265358979323846264, 1e308, 1e-400, -2.0, 1e-6,"
                              " 10000.0, 123456789012345678901234567890]",
                              &err);
    REQUIRE(v);
    int64_t i = -1;
    double d = 0;
    CHECK(json_as_int(json_at(v, 0), &i) && i == 0);
    CHECK(json_as_double(json_at(v, 1), &d) && d == 0.0 && signbit(d));
    CHECK(json_as_int(json_at(v, 2), &i) && i == 123);
    CHECK(json_as_int(json_at(v, 3), &i) && i == INT64_MIN);
    CHECK(json_as_int(json_at(v, 4), &i) && i == INT64_MAX);
    CHECK(!json_as_int(json_at(v, 5), &i)); /* 2^63 does not fit */
    CHECK(json_as_double(json_at(v, 5), &d) && d == 9223372036854775808.0);
    CHECK(!json_as_int(json_at(v, 6), &i));
    CHECK(json_as_double(json_at(v, 6), &d) && d == 1.5);
    CHECK(json_as_double(json_at(v, 7), &d) && d == 1e-5);
    CHECK(json_as_int(json_at(v, 8), &i) && i == 100);
    CHECK(json_as_double(json_at(v, 9), &d) && d == 2.5e-3);
    CHECK(json_as_double(json_at(v, 10), &d) && d == 0.1);
    CHECK(json_as_double(json_at(v, 11), &d) && d == 3.14159265358979323846264);
    CHECK(json_as_double(json_at(v, 12), &d) && d == 1e308);
    CHECK(json_as_double(json_at(v, 13), &d) && d == 0.0);
    CHECK(json_as_int(json_at(v, 14), &i) && i == -2);
    CHECK(json_as_double(json_at(v, 15), &d) && d == 1e-6);
    CHECK(json_as_int(json_at(v, 16), &i) && i == 10000);
    CHECK(json_as_double(json_at(v, 17), &d) && d == 123456789012345678901234567890.0);
    CHECK(!json_as_int(json_at(v, 17), &i));
    json_free(v);
}

TEST(test_json_scalar_roots_bom_and_whitespace) {
    zt_error err = {0};
    json_value *v = parse_str("  42  ", &err);
    int64_t i = 0;
    REQUIRE(v);
    CHECK(json_as_int(v, &i) && i == 42);
    json_free(v);
    v = parse_str("\xEF\xBB\xBF{\"k\":\"v\"}", &err);
    REQUIRE(v);
    CHECK_STR(json_as_str(json_get(v, "k")), "v");
    json_free(v);
    v = parse_str("null", &err);
    REQUIRE(v);
    CHECK(json_is(v, JSON_NULL));
    json_free(v);
    /* not NUL-terminated: only len bytes count */
    v = json_parse("[1,2]garbage", 5, &err);
    REQUIRE(v);
    CHECK_EQ_INT(json_len(v), 2);
    json_free(v);
}

TEST(test_json_error_names_expectation_and_byte_offset) {
    zt_error err = {0};
    CHECK(parse_str("{\"a\":1 \"b\":2}", &err) == NULL);
    CHECK_EQ_INT(err.code, ZT_EINVAL);
    CHECK_STR(err.msg, "expected ',' or '}' at byte 7, found '\"'");
}

/* Each malformed text must be rejected; msg_part must be in the message. */
static const struct {
    const char *text;
    const char *msg_part;
} invalid_docs[] = {
    {"[1,2,]", "expected a JSON value at byte 5"},
    {"{\"a\":1,}", "expected a string key at byte 7"},
    {"[\"\\x\"]", "bad escape"},
    {"\"\\uD83D\"", "lone high surrogate"},
    {"\"\\uD83Dx\"", "lone high surrogate"},
    {"\"\\uD83D\\u0041\"", "lone high surrogate"},
    {"\"\\uDE00\"", "lone low surrogate"},
    {"\"\\u12\"", "bad \\u escape"},
    {"\"\\u12G4\"", "bad \\u escape"},
    {"[\"abc", "unterminated string starting at byte 1"},
    {"\"abc\\", "unterminated string"},
    {"[\"a\tb\"]", "control character 0x09 in string at byte 3"},
    {"[\"a\nb\"]", "control character 0x0a"},
    {"01", "leading zero in number at byte 0"},
    {"-01", "leading zero"},
    {"[00]", "leading zero"},
    {"+1", "expected a JSON value at byte 0"},
    {".5", "expected a JSON value"},
    {"1.", "expected a digit after '.'"},
    {"1e", "expected a digit in the exponent"},
    {"1e+", "expected a digit in the exponent"},
    {"-", "expected a digit at byte 1"},
    {"1e400", "number out of range"},
    {"NaN", "expected a JSON value"},
    {"Infinity", "expected a JSON value"},
    {"tru", "expected a JSON value"},
    {"nul", "expected a JSON value"},
    {"['a']", "expected a JSON value at byte 1"},
    {"{a:1}", "expected a string key at byte 1"},
    {"{\"a\" 1}", "expected ':' at byte 5"},
    {"[1 2]", "expected ',' or ']' at byte 3"},
    {"1 2", "unexpected '2' after the JSON value at byte 2"},
    {"{} x", "after the JSON value"},
    {"", "expected a JSON value at byte 0, found end of input"},
    {"   ", "found end of input"},
    {"[", "found end of input"},
    {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
    {"\"\xC0\x80\"", "invalid UTF-8 in string at byte 1"}, /* overlong NUL */
    {"\"\xED\xA0\x80\"", "invalid UTF-8"},                 /* encoded surrogate */
    {"\"\xF4\x90\x80\x80\"", "invalid UTF-8"},             /* above U+10FFFF */
    {"\"\xE2\x82\"", "invalid UTF-8"},                     /* truncated */
    {"\"\xFF\"", "invalid UTF-8"},
};

TEST(test_json_rejects_malformed_documents_with_messages) {
    for (size_t k = 0; k < sizeof invalid_docs / sizeof invalid_docs[0]; k++) {
        zt_error err = {0};
        json_value *v = parse_str(invalid_docs[k].text, &err);
        if (v || err.code != ZT_EINVAL || !strstr(err.msg, invalid_docs[k].msg_part)) {
            fprintf(stderr, "  case %zu %s: got \"%s\"\n", k, invalid_docs[k].text, err.msg);
            *test_failed_ = 1;
        }
        json_free(v);
    }
}

TEST(test_json_depth_bomb_is_rejected_without_stack_overflow) {
    size_t n = 100000;
    char *text = malloc(n * 5);
    REQUIRE(text);
    memset(text, '[', n);
    zt_error err = {0};
    CHECK(json_parse(text, n, &err) == NULL);
    CHECK(strstr(err.msg, "nesting deeper than 512 at byte 512") != NULL);

    for (size_t k = 0; k < n; k++) memcpy(text + 5 * k, "{\"a\":", 5);
    err.msg[0] = '\0';
    CHECK(json_parse(text, n * 5, &err) == NULL);
    CHECK(strstr(err.msg, "nesting deeper than 512") != NULL);

    /* exactly the limit is fine */
    memset(text, '[', JSON_MAX_DEPTH);
    memset(text + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    json_value *v = json_parse(text, 2 * JSON_MAX_DEPTH, &err);
    CHECK(v != NULL);
    json_free(v);
    free(text);
}

TEST(test_json_large_object_members_and_duplicate_check) {
    /* tokenizer.json-sized vocab: 100k members; keys hashed for uniqueness */
    int n = 100000;
    json_buf b = {0};
    json_buf_puts(&b, "{\"vocab\":{");
    for (int k = 0; k < n; k++) json_buf_printf(&b, "%s\"tok%d\":%d", k ? "," : "", k, k * 3);
    json_buf_puts(&b, "}}");
    REQUIRE(!b.oom);
    zt_error err = {0};
    json_value *v = json_parse(b.data, b.len, &err);
    REQUIRE(v);
    const json_value *vocab = json_get(v, "vocab");
    REQUIRE(json_len(vocab) == (size_t)n);
    CHECK_STR(json_key_at(vocab, 54321, NULL), "tok54321");
    int64_t i = 0;
    CHECK(json_as_int(json_at(vocab, 54321), &i) && i == 54321 * 3);
    CHECK(json_as_int(json_get(vocab, "tok99999"), &i) && i == 99999 * 3);
    json_free(v);

    /* the same with key 77777 renamed to one that already exists */
    json_buf_free(&b);
    json_buf_puts(&b, "{\"vocab\":{");
    for (int k = 0; k < n; k++)
        json_buf_printf(&b, "%s\"tok%d\":%d", k ? "," : "", k == 77777 ? 12 : k, k * 3);
    json_buf_puts(&b, "}}");
    REQUIRE(!b.oom);
    v = json_parse(b.data, b.len, &err);
    CHECK(v == NULL);
    CHECK(strstr(err.msg, "duplicate key \"tok12\"") != NULL);
    json_free(v);
    json_buf_free(&b);
}

TEST(test_json_accessors_tolerate_null_and_wrong_types) {
    zt_error err = {0};
    json_value *v = parse_str("{\"s\":\"x\",\"n\":1.5}", &err);
    REQUIRE(v);
    int64_t i = 99;
    double d = 0;
    bool b = true;
    CHECK(json_get(NULL, "s") == NULL);
    CHECK(json_get(json_get(v, "s"), "s") == NULL);
    CHECK(json_at(json_get(v, "s"), 0) == NULL);
    CHECK(json_as_str(json_get(v, "n")) == NULL);
    CHECK(!json_as_int(json_get(v, "n"), &i) && i == 99);
    CHECK(json_as_double(json_get(v, "n"), &d) && d == 1.5);
    CHECK(!json_as_bool(json_get(v, "n"), &b) && b);
    CHECK(!json_as_double(NULL, &d));
    CHECK_EQ_INT(json_len(json_get(v, "s")), 1);
    CHECK_EQ_INT(json_len(json_get(v, "n")), 0);
    CHECK_STR(json_type_name(json_get(v, "n")->type), "number");
    json_free(v);
    json_free(NULL);
}

TEST(test_json_writer_escapes_and_round_trips) {
    const char in[] = "say \"hi\"\\\n\t\x01\x1f caf\xC3\xA9 \xF0\x9F\x98\x80 \x7f";
    json_buf b = {0};
    json_buf_string(&b, in, sizeof in - 1);
    REQUIRE(!b.oom);
    CHECK_STR(b.data,
              "\"say \\\"hi\\\"\\\\\\n\\t\\u0001\\u001f caf\xC3\xA9 \xF0\x9F\x98\x80 \x7f\"");
    zt_error err = {0};
    json_value *v = json_parse(b.data, b.len, &err);
    REQUIRE(v);
    CHECK_EQ_INT(json_len(v), sizeof in - 1);
    CHECK(memcmp(json_as_str(v), in, sizeof in) == 0);
    json_free(v);
    json_buf_free(&b);

    /* invalid UTF-8 becomes U+FFFD, so the output always parses */
    json_buf_string(&b,
                    "a\xFF"
                    "b\xE2\x82"
                    "c\0d",
                    8);
    CHECK_STR(b.data, "\"a\\ufffdb\\ufffd\\ufffdc\\u0000d\"");
    v = json_parse(b.data, b.len, &err);
    CHECK(v != NULL);
    json_free(v);
    json_buf_free(&b);

    char *mem = NULL;
    size_t mem_len = 0;
    FILE *f = open_memstream(&mem, &mem_len);
    REQUIRE(f);
    CHECK(json_write_string(f, "x\"y\r") == 0);
    fclose(f);
    CHECK_STR(mem, "\"x\\\"y\\r\"");
    free(mem);
}

TEST(test_json_buf_printf_grows_past_small_buffer) {
    json_buf b = {0};
    char big[1000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    json_buf_printf(&b, "[%d,\"%s\"]", 17, big);
    REQUIRE(!b.oom);
    CHECK_EQ_INT(b.len, 1 + 2 + 1 + 1 + 999 + 1 + 1);
    CHECK(b.data[b.len] == '\0' && b.data[b.len - 1] == ']');
    json_buf_free(&b);
}

/* xorshift64*: deterministic fuzz input */
static uint64_t rng_next(uint64_t *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

TEST(test_json_random_mutations_fail_cleanly_or_parse) {
    const char seed_doc[] = "{\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":64,"
                            "\"rope_scaling\":{\"factor\":8.0,\"rope_type\":\"llama3\"},"
                            "\"s\":\"\\u00e9\\uD83D\\uDE00\\n\",\"neg\":-1.5e-3,\"t\":true,"
                            "\"n\":null,\"a\":[[],{},[1,[2,[3]]]]}";
    const char alphabet[] = "{}[],:\"\\u0123456789eE+-.tfnlrsaDC \x80\xC3\xED\xF0\xFF\x01";
    uint64_t s = 0x9E3779B97F4A7C15ull;
    char buf[sizeof seed_doc + 8];
    int parsed = 0, rejected = 0;
    for (int iter = 0; iter < 20000; iter++) {
        size_t n = sizeof seed_doc - 1;
        memcpy(buf, seed_doc, n);
        int edits = 1 + (int)(rng_next(&s) % 4);
        for (int k = 0; k < edits; k++) {
            size_t at = rng_next(&s) % n;
            uint64_t r = rng_next(&s);
            if (r % 3 == 0)
                buf[at] = alphabet[(r >> 8) % (sizeof alphabet - 1)];
            else if (r % 3 == 1 && n > 1)
                n = at + 1; /* truncate */
            else
                buf[at] = (char)(r >> 16); /* any byte */
        }
        zt_error err = {0};
        json_value *v = json_parse(buf, n, &err);
        if (v)
            parsed++;
        else {
            rejected++;
            if (!err.msg[0] || !strstr(err.msg, "byte")) {
                fprintf(stderr, "  no message for mutation %d: %s\n", iter, err.msg);
                *test_failed_ = 1;
            }
        }
        json_free(v);
    }
    CHECK(parsed > 0 && rejected > 0);
}

TEST(test_json_decimal_fast_path_matches_strtod) {
    /* random decimals of 1-18 digits with a point and an exponent, in the
     * range the exact fast path takes, must equal the C library's parse */
    uint64_t s = 0x0123456789ABCDEFull;
    for (int iter = 0; iter < 20000; iter++) {
        char text[64];
        int n_digits = 1 + (int)(rng_next(&s) % 18), point = (int)(rng_next(&s) % n_digits);
        int len = 0;
        if (rng_next(&s) & 1) text[len++] = '-';
        for (int k = 0; k < n_digits; k++) {
            if (k == point + 1) text[len++] = '.';
            /* a first digit of zero would be a (rejected) leading zero */
            text[len++] = (char)('0' + (k == 0 ? 1 + rng_next(&s) % 9 : rng_next(&s) % 10));
        }
        len +=
            snprintf(text + len, sizeof text - (size_t)len, "e%d", (int)(rng_next(&s) % 40) - 20);
        zt_error err = {0};
        json_value *v = json_parse(text, (size_t)len, &err);
        double d = 0;
        if (!v || !json_as_double(v, &d) || d != strtod(text, NULL)) {
            fprintf(stderr, "  %s -> %.17g (%s), strtod %.17g\n", text, d, err.msg,
                    strtod(text, NULL));
            *test_failed_ = 1;
            json_free(v);
            break;
        }
        json_free(v);
    }
}
