/*
 * GGUF reader and writer: a round trip of every value type and several
 * tensor types, the real Phi-3 vocabulary file, and one hand-assembled
 * byte stream per kind of bad input. The bad inputs are the point: each
 * must give a non-zero code and a one-line message naming the file and the
 * problem, without a crash or a huge allocation (run under ASan too).
 */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../test.h"
#include "model/model.h"
#include "quant/quant.h"

/* ---- byte-stream assembly --------------------------------------------- */

typedef struct tbuf {
    uint8_t *p;
    size_t n, cap;
} tbuf;

static void tb_put(tbuf *b, const void *p, size_t n) {
    if (n == 0) return;
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void tb_u32(tbuf *b, uint32_t v) { tb_put(b, &v, 4); }
static void tb_u64(tbuf *b, uint64_t v) { tb_put(b, &v, 8); }
static void tb_str(tbuf *b, const char *s) {
    tb_u64(b, strlen(s));
    tb_put(b, s, strlen(s));
}
static void tb_header(tbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv) {
    tb_put(b, "GGUF", 4);
    tb_u32(b, version);
    tb_u64(b, n_tensors);
    tb_u64(b, n_kv);
}
static void tb_kv_str(tbuf *b, const char *key, const char *val) {
    tb_str(b, key);
    tb_u32(b, GGUF_STRING);
    tb_str(b, val);
}
static void tb_kv_u32(tbuf *b, const char *key, uint32_t v) {
    tb_str(b, key);
    tb_u32(b, GGUF_U32);
    tb_u32(b, v);
}
static void tb_tensor(tbuf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type,
                      uint64_t offset) {
    tb_str(b, name);
    tb_u32(b, n_dims);
    for (uint32_t d = 0; d < n_dims; d++) tb_u64(b, ne[d]);
    tb_u32(b, type);
    tb_u64(b, offset);
}
static void tb_pad(tbuf *b, size_t align) {
    while (b->n % align) tb_put(b, "", 1);
}

/* Deterministic bytes that are never all zero. */
static void fill_random(uint8_t *p, size_t n, uint32_t seed) {
    uint32_t x = seed * 2654435761u + 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1664525u + 1013904223u;
        p[i] = (uint8_t)(x >> 24);
    }
}
static void tb_random(tbuf *b, size_t n, uint32_t seed) {
    uint8_t *tmp = malloc(n);
    fill_random(tmp, n, seed);
    tb_put(b, tmp, n);
    free(tmp);
}

static void tmp_path(char *out, size_t cap, const char *name) {
    snprintf(out, cap, "%s/%s", test_tmpdir(), name);
}

static void write_bytes(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static int load_path(const char *path, zt_error *e) {
    zt_model *m = model_new(path);
    int rc = gguf_load(path, m, e);
    zt_model_free(m);
    return rc;
}

/* The smallest valid file with two tensors: f32 "a" [8] and q8_0 "b"
 * [32, 2]. *data_end is where b's bytes end (trailing padding follows). */
static void tb_small_valid(tbuf *b, size_t *data_end) {
    tb_header(b, 3, 2, 2);
    tb_kv_str(b, "general.architecture", "llama");
    tb_kv_u32(b, "llama.block_count", 7);
    tb_tensor(b, "a", 1, (uint64_t[]){8}, ZT_F32, 0);
    tb_tensor(b, "b", 2, (uint64_t[]){32, 2}, ZT_Q8_0, 32);
    tb_pad(b, 32);
    tb_random(b, 32, 1);
    tb_random(b, 68, 2);
    *data_end = b->n;
    tb_pad(b, 32);
}

/* Writes b to NAME under the scratch dir and loads it, expecting failure
 * with `code` and a one-line message holding the path and `want`. */
#define CHECK_LOAD_FAILS(name, b, code, want)                                                      \
    do {                                                                                           \
        char path_[512];                                                                           \
        zt_error e_ = {0};                                                                         \
        tmp_path(path_, sizeof path_, name);                                                       \
        write_bytes(path_, (b)->p, (b)->n);                                                        \
        int rc_ = load_path(path_, &e_);                                                           \
        CHECK_EQ_INT(rc_, code);                                                                   \
        CHECK(strstr(e_.msg, want) != NULL);                                                       \
        CHECK(strncmp(e_.msg, path_, strlen(path_)) == 0);                                         \
        CHECK(strchr(e_.msg, '\n') == NULL);                                                       \
        if (!strstr(e_.msg, want)) fprintf(stderr, "  message was: %s\n", e_.msg);                 \
        free((b)->p);                                                                              \
    } while (0)

/* ---- round trip ------------------------------------------------------- */

static zt_kv *add_num(zt_model *m, const char *key, int type) {
    zt_kv *kv = model_add_kv(m, key);
    kv->type = type;
    return kv;
}

static zt_tensor *add_tensor(zt_model *m, const char *name, int type, int n_dims, int64_t ne0,
                             int64_t ne1, uint32_t seed) {
    zt_tensor *t = model_add_tensor(m, name);
    t->type = type;
    t->n_dims = n_dims;
    t->ne[0] = ne0;
    t->ne[1] = ne1;
    t->ne[2] = t->ne[3] = 1;
    t->nbytes = quant_row_bytes(type, ne0) * (size_t)ne1;
    void *data = model_own(m, malloc(t->nbytes));
    fill_random(data, t->nbytes, seed);
    t->data = data;
    return t;
}

static const char *utf8_text = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac "
                               "\xf0\x9f\x99\x82";

/* One kv of every value type, arrays of several element types, and four
 * tensors of different block types with odd sizes (so padding is needed). */
static zt_model *build_model(void) {
    zt_model *m = model_new("built");
    model_set_str(m, "general.architecture", "llama");
    add_num(m, "t.u8", GGUF_U8)->num.u = 200;
    add_num(m, "t.i8", GGUF_I8)->num.i = -100;
    add_num(m, "t.u16", GGUF_U16)->num.u = 60000;
    add_num(m, "t.i16", GGUF_I16)->num.i = -30000;
    model_set_u32(m, "t.u32", 4000000000u);
    model_set_i32(m, "t.i32", -2000000000);
    model_set_f32(m, "t.f32", 0.1f);
    model_set_bool(m, "t.bool", true);
    model_set_str(m, "t.utf8", utf8_text);
    model_set_str(m, "t.empty_str", "");
    add_num(m, "t.u64", GGUF_U64)->num.u = (1ull << 60) + 7;
    add_num(m, "t.i64", GGUF_I64)->num.i = -(1ll << 62) - 3;
    add_num(m, "t.f64", GGUF_F64)->num.f = 3.14159265358979311;
    uint8_t u8s[] = {1, 2, 255};
    int32_t i32s[] = {-1, 5, INT32_MIN};
    float f32s[] = {0.5f, -1.25f, 1e-7f};
    model_set_arr(m, "t.arr_u8", GGUF_U8, u8s, 3);
    model_set_arr(m, "t.arr_i32", GGUF_I32, i32s, 3);
    model_set_arr(m, "t.arr_f32", GGUF_F32, f32s, 3);
    model_set_arr(m, "t.arr_empty", GGUF_I32, NULL, 0);
    const char *strs[] = {"<s>", "", utf8_text, "a b"};
    model_set_str_arr(m, "t.arr_str", strs, 4);
    /* a string element holding a NUL: the length, not strlen, counts */
    zt_kv *kv = &m->kv[m->n_kv - 1];
    memcpy(((char **)kv->arr)[3], "a\0b", 3);
    add_tensor(m, "token_embd.weight", ZT_F32, 2, 7, 3, 11);
    add_tensor(m, "output_norm.weight", ZT_F16, 1, 13, 1, 12);
    add_tensor(m, "blk.0.attn_q.weight", ZT_Q8_0, 2, 64, 3, 13);
    add_tensor(m, "blk.0.ffn_down.weight", ZT_Q4_K, 2, 512, 2, 14);
    return m;
}

/* Compares every kv and tensor of a and b; returns the number of mismatches. */
static int compare_models(const zt_model *a, const zt_model *b) {
    int bad = 0;
    if (a->n_kv != b->n_kv || a->n_tensors != b->n_tensors) return 1;
    for (int i = 0; i < a->n_kv; i++) {
        const zt_kv *x = &a->kv[i], *y = &b->kv[i];
        if (strcmp(x->key, y->key) || x->type != y->type || x->n != y->n) {
            fprintf(stderr, "  kv %d '%s' differs in key/type/n\n", i, x->key);
            bad++;
            continue;
        }
        bool same = true;
        switch (x->type) {
        case GGUF_STRING: same = memcmp(x->str, y->str, x->n) == 0 && y->str[y->n] == 0; break;
        case GGUF_ARRAY:
            same = x->arr_type == y->arr_type;
            if (same && x->arr_type == GGUF_STRING) {
                for (uint64_t j = 0; j < x->n && same; j++)
                    same = x->arr_len[j] == y->arr_len[j] &&
                           memcmp(((char **)x->arr)[j], ((char **)y->arr)[j], x->arr_len[j]) == 0;
            } else if (same) {
                same = memcmp(x->arr, y->arr, x->n * gguf_vtype_size(x->arr_type)) == 0;
            }
            break;
        case GGUF_F32:
        case GGUF_F64: same = x->num.f == y->num.f; break;
        case GGUF_I8:
        case GGUF_I16:
        case GGUF_I32:
        case GGUF_I64: same = x->num.i == y->num.i; break;
        default: same = x->num.u == y->num.u; break;
        }
        if (!same) {
            fprintf(stderr, "  kv '%s' value differs\n", x->key);
            bad++;
        }
    }
    for (int i = 0; i < a->n_tensors; i++) {
        const zt_tensor *x = &a->tensors[i], *y = &b->tensors[i];
        if (strcmp(x->name, y->name) || x->type != y->type || x->n_dims != y->n_dims ||
            memcmp(x->ne, y->ne, sizeof x->ne) || x->nbytes != y->nbytes ||
            memcmp(x->data, y->data, x->nbytes)) {
            fprintf(stderr, "  tensor '%s' differs\n", x->name);
            bad++;
        }
    }
    return bad;
}

static bool file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

TEST(test_gguf_round_trip_preserves_every_value_and_tensor_byte) {
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "gguf_round_trip.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    zt_model *src = build_model();
    zt_error err = {0};
    int rc = gguf_write(path, src, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK(!file_exists(tmp));

    zt_model *m = model_new(path);
    rc = gguf_load(path, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_EQ_INT(m->format, ZT_FORMAT_GGUF);
    CHECK_EQ_INT(m->gguf_version, 3);
    CHECK_EQ_INT(m->alignment, 32);
    CHECK_EQ_INT(compare_models(src, m), 0);

    /* spot values through the typed getters */
    int64_t i;
    double f;
    CHECK(model_get_int(m, "t.i64", &i) && i == -(1ll << 62) - 3);
    CHECK(model_get_int(m, "t.u32", &i) && i == 4000000000ll);
    CHECK(model_get_float(m, "t.f32", &f) && f == (double)0.1f);
    CHECK_STR(model_get_str(m, "t.utf8"), utf8_text);
    const zt_kv *strs = model_kv(m, "t.arr_str");
    REQUIRE(strs && strs->n == 4);
    CHECK_EQ_INT(strs->arr_len[3], 3);
    CHECK(memcmp(((char **)strs->arr)[3], "a\0b", 4) == 0);
    const zt_kv *empty = model_kv(m, "t.arr_empty");
    CHECK(empty && empty->type == GGUF_ARRAY && empty->n == 0 && empty->arr_type == GGUF_I32);

    /* tensor views point into the map at aligned addresses */
    for (int t = 0; t < m->n_tensors; t++) CHECK_EQ_INT((uintptr_t)m->tensors[t].data % 32, 0);
    CHECK_EQ_INT(m->n_maps, 1);

    /* writing the loaded model again gives the same bytes */
    char path2[512];
    tmp_path(path2, sizeof path2, "gguf_round_trip2.gguf");
    REQUIRE(gguf_write(path2, m, &err) == ZT_OK);
    long n = file_size(path);
    REQUIRE(n > 0 && n == file_size(path2));
    FILE *f1 = fopen(path, "rb"), *f2 = fopen(path2, "rb");
    char *b1 = malloc((size_t)n), *b2 = malloc((size_t)n);
    CHECK(fread(b1, 1, (size_t)n, f1) == (size_t)n && fread(b2, 1, (size_t)n, f2) == (size_t)n);
    CHECK(memcmp(b1, b2, (size_t)n) == 0);
    CHECK_EQ_INT(n % 32, 0); /* the last tensor is padded too */
    fclose(f1);
    fclose(f2);
    free(b1);
    free(b2);
    zt_model_free(m);
    zt_model_free(src);
}

TEST(test_gguf_round_trip_with_alignment_64_writes_general_alignment) {
    char path[512];
    tmp_path(path, sizeof path, "gguf_align64.gguf");
    zt_model *src = build_model();
    src->alignment = 64;
    zt_error err = {0};
    REQUIRE(gguf_write(path, src, &err) == ZT_OK);
    zt_model *m = model_new(path);
    REQUIRE(gguf_load(path, m, &err) == ZT_OK);
    CHECK_EQ_INT(m->alignment, 64);
    int64_t a;
    CHECK(model_get_int(m, "general.alignment", &a) && a == 64);
    CHECK_EQ_INT(m->n_kv, src->n_kv + 1);
    for (int t = 0; t < m->n_tensors; t++) {
        CHECK_EQ_INT((uintptr_t)m->tensors[t].data % 64, 0);
        CHECK(memcmp(m->tensors[t].data, src->tensors[t].data, src->tensors[t].nbytes) == 0);
    }
    zt_model_free(m);
    zt_model_free(src);
}

TEST(test_gguf_write_keeps_only_the_last_of_a_repeated_key) {
    char path[512];
    tmp_path(path, sizeof path, "gguf_repeat_key.gguf");
    zt_model *src = model_new("built");
    model_set_u32(src, "llama.block_count", 3);
    model_set_str(src, "general.name", "x");
    model_set_u32(src, "llama.block_count", 5);
    zt_error err = {0};
    REQUIRE(gguf_write(path, src, &err) == ZT_OK);
    zt_model *m = model_new(path);
    REQUIRE(gguf_load(path, m, &err) == ZT_OK);
    CHECK_EQ_INT(m->n_kv, 2);
    int64_t v;
    CHECK(model_get_int(m, "llama.block_count", &v) && v == 5);
    zt_model_free(m);
    zt_model_free(src);
}

TEST(test_gguf_write_refuses_bad_model_and_leaves_no_file) {
    char path[512], tmp[600];
    tmp_path(path, sizeof path, "gguf_write_bad.gguf");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    remove(path);
    zt_model *m = build_model();
    m->tensors[2].nbytes -= 1; /* disagrees with its q8_0 shape */
    zt_error err = {0};
    CHECK_EQ_INT(gguf_write(path, m, &err), ZT_EINVAL);
    CHECK(strstr(err.msg, "blk.0.attn_q.weight") && strstr(err.msg, "needs"));
    CHECK(!file_exists(path) && !file_exists(tmp));
    m->tensors[2].nbytes += 1;

    snprintf(m->tensors[1].name, ZT_NAME_MAX, "%070d", 7); /* llama.cpp's limit is 63 */
    CHECK_EQ_INT(gguf_write(path, m, &err), ZT_EINVAL);
    CHECK(strstr(err.msg, "1..63 bytes") != NULL);
    snprintf(m->tensors[1].name, ZT_NAME_MAX, "token_embd.weight");
    CHECK_EQ_INT(gguf_write(path, m, &err), ZT_EINVAL);
    CHECK(strstr(err.msg, "duplicate tensor name 'token_embd.weight'") != NULL);
    CHECK(!file_exists(path) && !file_exists(tmp));
    zt_model_free(m);
}

TEST(test_gguf_write_into_missing_directory_fails_cleanly) {
    char path[512];
    snprintf(path, sizeof path, "%s/no_such_dir/x.gguf", test_tmpdir());
    zt_model *m = build_model();
    zt_error err = {0};
    CHECK_EQ_INT(gguf_write(path, m, &err), ZT_EIO);
    CHECK(strstr(err.msg, "cannot create") != NULL);
    zt_model_free(m);
}

/* ---- a real file -------------------------------------------------------- */

TEST(test_gguf_loads_phi3_vocab_file) {
    const char *path = "tests/vocab/ggml-vocab-phi-3.gguf";
    zt_model *m = model_new(path);
    zt_error err = {0};
    int rc = gguf_load(path, m, &err);
    if (rc) fprintf(stderr, "  %s\n", err.msg);
    REQUIRE(rc == ZT_OK);
    CHECK_EQ_INT(m->gguf_version, 3);
    CHECK_STR(model_get_str(m, "general.architecture"), "phi3");
    CHECK_STR(model_get_str(m, "tokenizer.ggml.model"), "llama");
    const zt_kv *tokens = model_kv(m, "tokenizer.ggml.tokens");
    REQUIRE(tokens && tokens->type == GGUF_ARRAY && tokens->arr_type == GGUF_STRING);
    REQUIRE(tokens->n == 32064);
    char **tok = tokens->arr;
    CHECK_STR(tok[0], "<unk>");
    CHECK_STR(tok[1], "<s>");
    CHECK_STR(tok[2], "</s>");
    CHECK_STR(tok[32000], "<|endoftext|>");
    CHECK_STR(tok[32007], "<|end|>");
    const zt_kv *scores = model_kv(m, "tokenizer.ggml.scores");
    CHECK(scores && scores->arr_type == GGUF_F32 && scores->n == 32064);
    const zt_kv *types = model_kv(m, "tokenizer.ggml.token_type");
    CHECK(types && types->arr_type == GGUF_I32 && types->n == 32064);
    int64_t bos;
    CHECK(model_get_int(m, "tokenizer.ggml.bos_token_id", &bos) && bos == 1);
    zt_model_free(m);
}

/* ---- bad inputs ----------------------------------------------------------- */

TEST(test_gguf_rejects_every_truncated_prefix) {
    tbuf b = {0};
    size_t data_end;
    tb_small_valid(&b, &data_end);
    char path[512];
    tmp_path(path, sizeof path, "gguf_prefix.gguf");
    zt_error err = {0};
    write_bytes(path, b.p, b.n);
    REQUIRE(load_path(path, &err) == ZT_OK);
    int wrong = 0;
    for (size_t len = 0; len < data_end; len++) {
        write_bytes(path, b.p, len);
        memset(&err, 0, sizeof err);
        int rc = load_path(path, &err);
        bool ok = rc == ZT_EFORMAT && strncmp(err.msg, path, strlen(path)) == 0 &&
                  (strstr(err.msg, "truncated") || strstr(err.msg, "outside the file") ||
                   strstr(err.msg, "cannot fit in the") || strstr(err.msg, "exceeds the"));
        if (!ok && wrong++ < 3) fprintf(stderr, "  prefix %zu: rc %d, %s\n", len, rc, err.msg);
    }
    CHECK_EQ_INT(wrong, 0);
    /* the padding after the last tensor is not needed to read it */
    write_bytes(path, b.p, data_end);
    CHECK_EQ_INT(load_path(path, &err), ZT_OK);
    free(b.p);
}

TEST(test_gguf_rejects_empty_file) {
    tbuf b = {0};
    tb_put(&b, "", 0);
    CHECK_LOAD_FAILS("gguf_empty.gguf", &b, ZT_EFORMAT, "truncated: magic");
}

TEST(test_gguf_rejects_missing_file_and_directory) {
    zt_error err = {0};
    CHECK_EQ_INT(load_path("tests/no/such/file.gguf", &err), ZT_EIO);
    CHECK(strstr(err.msg, "tests/no/such/file.gguf: cannot open") != NULL);
    CHECK_EQ_INT(load_path(test_tmpdir(), &err), ZT_EIO);
    CHECK(strstr(err.msg, "not a regular file (a directory)") != NULL);
    char fifo[512];
    tmp_path(fifo, sizeof fifo, "gguf_fifo");
    remove(fifo);
    REQUIRE(mkfifo(fifo, 0600) == 0);
    CHECK_EQ_INT(load_path(fifo, &err), ZT_EIO); /* must not block waiting for a writer */
    CHECK(strstr(err.msg, "not a regular file") != NULL);
    remove(fifo);
}

TEST(test_gguf_rejects_wrong_magic) {
    tbuf b = {0};
    size_t end;
    tb_small_valid(&b, &end);
    memcpy(b.p, "GGML", 4);
    CHECK_LOAD_FAILS("gguf_magic.gguf", &b, ZT_EFORMAT, "not a GGUF file (magic \"GGML\"");
    b = (tbuf){0};
    tb_put(&b,
           "\x7f"
           "ELF\x02\x01\x01",
           7);
    tb_random(&b, 64, 1);
    CHECK_LOAD_FAILS("gguf_elf.gguf", &b, ZT_EFORMAT, "(magic \"\\x7fELF\", expected \"GGUF\")");
}

TEST(test_gguf_rejects_version_1) {
    tbuf b = {0};
    tb_header(&b, 1, 0, 0);
    CHECK_LOAD_FAILS("gguf_v1.gguf", &b, ZT_EUNSUP, "unsupported GGUF version 1");
}

TEST(test_gguf_rejects_version_4) {
    tbuf b = {0};
    tb_header(&b, 4, 0, 0);
    CHECK_LOAD_FAILS("gguf_v4.gguf", &b, ZT_EUNSUP, "unsupported GGUF version 4");
}

TEST(test_gguf_accepts_version_2) {
    tbuf b = {0};
    size_t end;
    tb_small_valid(&b, &end);
    b.p[4] = 2;
    char path[512];
    tmp_path(path, sizeof path, "gguf_v2.gguf");
    write_bytes(path, b.p, b.n);
    zt_model *m = model_new(path);
    zt_error err = {0};
    CHECK_EQ_INT(gguf_load(path, m, &err), ZT_OK);
    CHECK_EQ_INT(m->gguf_version, 2);
    CHECK_EQ_INT(m->n_tensors, 2);
    CHECK(m->n_tensors == 2 && memcmp(m->tensors[1].data, b.p + end - 68, 68) == 0);
    zt_model_free(m);
    free(b.p);
}

TEST(test_gguf_rejects_big_endian_file) {
    tbuf b = {0};
    tb_put(&b, "GGUF", 4);
    tb_put(&b, "\0\0\0\3", 4);
    tb_u64(&b, 0);
    tb_u64(&b, 0);
    CHECK_LOAD_FAILS("gguf_be.gguf", &b, ZT_EUNSUP, "big-endian");
}

TEST(test_gguf_rejects_tensor_data_outside_file) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "blk.0.attn_q.weight", 2, (uint64_t[]){32, 32}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 2000, 3); /* 4096 needed */
    CHECK_LOAD_FAILS("gguf_outside.gguf", &b, ZT_EFORMAT,
                     "tensor 'blk.0.attn_q.weight' data [offset 96, 4096 bytes] lies outside the "
                     "file (2096 bytes)");
}

TEST(test_gguf_rejects_tensor_offset_near_2_pow_64) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "w", 1, (uint64_t[]){32}, ZT_F32, UINT64_MAX - 31);
    tb_pad(&b, 32);
    tb_random(&b, 128, 3);
    CHECK_LOAD_FAILS("gguf_offset_wrap.gguf", &b, ZT_EFORMAT, "lies outside the file");
}

TEST(test_gguf_rejects_misaligned_tensor_offset) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "w", 1, (uint64_t[]){8}, ZT_F32, 8);
    tb_pad(&b, 32);
    tb_random(&b, 64, 3);
    CHECK_LOAD_FAILS("gguf_misaligned.gguf", &b, ZT_EFORMAT,
                     "tensor 'w' data offset 8 is not a multiple of the alignment 32");
}

TEST(test_gguf_rejects_unknown_tensor_type) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "blk.0.ffn_up.weight", 1, (uint64_t[]){32}, 99, 0);
    tb_pad(&b, 32);
    tb_random(&b, 128, 3);
    CHECK_LOAD_FAILS("gguf_type99.gguf", &b, ZT_EUNSUP,
                     "tensor 'blk.0.ffn_up.weight' has unknown tensor type 99");
}

TEST(test_gguf_rejects_string_length_2_pow_60) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "general.name");
    tb_u32(&b, GGUF_STRING);
    tb_u64(&b, 1ull << 60);
    tb_random(&b, 40, 4);
    CHECK_LOAD_FAILS("gguf_strlen.gguf", &b, ZT_EFORMAT,
                     "string length 1152921504606846976 at offset 48 exceeds the 40 bytes left");
}

TEST(test_gguf_rejects_key_length_2_pow_60) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_u64(&b, 1ull << 60);
    tb_random(&b, 40, 4);
    CHECK_LOAD_FAILS("gguf_keylen.gguf", &b, ZT_EFORMAT, "key of kv 0: string length");
}

TEST(test_gguf_rejects_empty_key) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_kv_u32(&b, "", 5);
    CHECK_LOAD_FAILS("gguf_key0.gguf", &b, ZT_EFORMAT, "kv 0: bad key of 0 bytes");
}

TEST(test_gguf_rejects_array_count_2_pow_60) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "tokenizer.ggml.scores");
    tb_u32(&b, GGUF_ARRAY);
    tb_u32(&b, GGUF_F32);
    tb_u64(&b, 1ull << 60);
    tb_random(&b, 64, 5);
    CHECK_LOAD_FAILS("gguf_arrcount.gguf", &b, ZT_EFORMAT,
                     "array count 1152921504606846976 of f32 exceeds the 64 bytes left");
}

TEST(test_gguf_rejects_string_array_count_2_pow_60) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "tokenizer.ggml.tokens");
    tb_u32(&b, GGUF_ARRAY);
    tb_u32(&b, GGUF_STRING);
    tb_u64(&b, 1ull << 60);
    tb_random(&b, 64, 5);
    CHECK_LOAD_FAILS("gguf_strarrcount.gguf", &b, ZT_EFORMAT,
                     "array count 1152921504606846976 of string exceeds");
}

TEST(test_gguf_rejects_nested_array) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "x.nested");
    tb_u32(&b, GGUF_ARRAY);
    tb_u32(&b, GGUF_ARRAY);
    tb_u64(&b, 1);
    tb_u32(&b, GGUF_U8);
    tb_u64(&b, 1);
    tb_put(&b, "\7", 1);
    CHECK_LOAD_FAILS("gguf_nested.gguf", &b, ZT_EUNSUP, "kv 0 'x.nested' is an array of arrays");
}

TEST(test_gguf_rejects_unknown_value_type) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "x.weird");
    tb_u32(&b, 13);
    tb_u64(&b, 0);
    CHECK_LOAD_FAILS("gguf_vtype.gguf", &b, ZT_EFORMAT, "kv 0 'x.weird' has unknown value type 13");
}

TEST(test_gguf_rejects_duplicate_key) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 2);
    tb_kv_u32(&b, "llama.block_count", 4);
    tb_kv_u32(&b, "llama.block_count", 5);
    CHECK_LOAD_FAILS("gguf_dupkey.gguf", &b, ZT_EFORMAT, "duplicate key 'llama.block_count'");
}

TEST(test_gguf_rejects_tensor_count_1e9_in_1kb) {
    tbuf b = {0};
    tb_header(&b, 3, 1000000000ull, 1);
    tb_kv_str(&b, "general.architecture", "llama");
    tb_random(&b, 1024 - b.n, 6);
    CHECK_LOAD_FAILS("gguf_ntensors.gguf", &b, ZT_EFORMAT,
                     "tensor count 1000000000 cannot fit in the 1000 bytes left");
}

TEST(test_gguf_rejects_kv_count_1e9_in_1kb) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1000000000ull);
    tb_kv_str(&b, "general.architecture", "llama");
    tb_random(&b, 1024 - b.n, 6);
    CHECK_LOAD_FAILS("gguf_nkv.gguf", &b, ZT_EFORMAT,
                     "kv count 1000000000 cannot fit in the 1000 bytes left");
}

TEST(test_gguf_rejects_n_dims_5) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "w5", 5, (uint64_t[]){2, 2, 2, 2, 2}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 128, 7);
    CHECK_LOAD_FAILS("gguf_ndims5.gguf", &b, ZT_EFORMAT, "tensor 'w5' has n_dims 5, expected 1..4");
}

TEST(test_gguf_rejects_row_not_multiple_of_block) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "q", 2, (uint64_t[]){33, 2}, ZT_Q8_0, 0);
    tb_pad(&b, 32);
    tb_random(&b, 160, 8);
    CHECK_LOAD_FAILS(
        "gguf_block.gguf", &b, ZT_EFORMAT,
        "tensor 'q': row length ne[0] = 33 is not a multiple of the q8_0 block size 32");
}

TEST(test_gguf_rejects_element_count_overflow) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "big", 3, (uint64_t[]){1ull << 31, 1ull << 31, 1ull << 31}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 64, 9);
    CHECK_LOAD_FAILS("gguf_neoverflow.gguf", &b, ZT_EFORMAT,
                     "tensor 'big': element count overflows at ne[2]");
}

TEST(test_gguf_rejects_byte_size_overflow) {
    /* 2^62 f32 elements fit int64 but not in bytes */
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "huge", 2, (uint64_t[]){1ull << 31, 1ull << 31}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 64, 9);
    CHECK_LOAD_FAILS("gguf_bytesoverflow.gguf", &b, ZT_EFORMAT,
                     "tensor 'huge': data size overflows");
}

TEST(test_gguf_rejects_non_positive_dimension) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "neg", 2, (uint64_t[]){32, (uint64_t)-4}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 64, 9);
    CHECK_LOAD_FAILS("gguf_negdim.gguf", &b, ZT_EFORMAT,
                     "tensor 'neg': ne[1] = -4 is not positive");
    b = (tbuf){0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, "zero", 1, (uint64_t[]){0}, ZT_F32, 0);
    tb_pad(&b, 32);
    CHECK_LOAD_FAILS("gguf_zerodim.gguf", &b, ZT_EFORMAT,
                     "tensor 'zero': ne[0] = 0 is not positive");
}

TEST(test_gguf_rejects_alignment_0) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_kv_u32(&b, "general.alignment", 0);
    CHECK_LOAD_FAILS("gguf_align0.gguf", &b, ZT_EFORMAT,
                     "general.alignment 0 is not a non-zero power of two");
}

TEST(test_gguf_rejects_alignment_3) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_kv_u32(&b, "general.alignment", 3);
    CHECK_LOAD_FAILS("gguf_align3.gguf", &b, ZT_EFORMAT,
                     "general.alignment 3 is not a non-zero power of two");
}

TEST(test_gguf_rejects_alignment_of_wrong_type) {
    tbuf b = {0};
    tb_header(&b, 3, 0, 1);
    tb_str(&b, "general.alignment");
    tb_u32(&b, GGUF_U64);
    tb_u64(&b, 32);
    CHECK_LOAD_FAILS("gguf_aligntype.gguf", &b, ZT_EFORMAT, "general.alignment has type u64");
}

TEST(test_gguf_honours_alignment_64) {
    tbuf b = {0};
    tb_header(&b, 3, 1, 1);
    tb_kv_u32(&b, "general.alignment", 64);
    tb_tensor(&b, "w", 1, (uint64_t[]){16}, ZT_F32, 0);
    tb_pad(&b, 64);
    size_t start = b.n;
    tb_random(&b, 64, 10);
    char path[512];
    tmp_path(path, sizeof path, "gguf_align64_hand.gguf");
    write_bytes(path, b.p, b.n);
    zt_model *m = model_new(path);
    zt_error err = {0};
    CHECK_EQ_INT(gguf_load(path, m, &err), ZT_OK);
    CHECK_EQ_INT(m->alignment, 64);
    CHECK(m->n_tensors == 1 && memcmp(m->tensors[0].data, b.p + start, 64) == 0);
    CHECK(m->n_tensors == 1 && (uintptr_t)m->tensors[0].data % 64 == 0);
    zt_model_free(m);
    free(b.p);
}

TEST(test_gguf_rejects_duplicate_tensor_name) {
    tbuf b = {0};
    tb_header(&b, 3, 2, 0);
    tb_tensor(&b, "output.weight", 1, (uint64_t[]){8}, ZT_F32, 0);
    tb_tensor(&b, "output.weight", 1, (uint64_t[]){8}, ZT_F32, 32);
    tb_pad(&b, 32);
    tb_random(&b, 64, 11);
    CHECK_LOAD_FAILS("gguf_duptensor.gguf", &b, ZT_EFORMAT,
                     "duplicate tensor name 'output.weight' (tensor 1)");
}

TEST(test_gguf_rejects_overlong_tensor_name) {
    char name[200];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = 0;
    tbuf b = {0};
    tb_header(&b, 3, 1, 0);
    tb_tensor(&b, name, 1, (uint64_t[]){8}, ZT_F32, 0);
    tb_pad(&b, 32);
    tb_random(&b, 32, 12);
    CHECK_LOAD_FAILS("gguf_longname.gguf", &b, ZT_EFORMAT, "tensor 0: bad name of 199 bytes");
}

/* Flipping any single header byte of a valid file must give either a clean
 * load or a clean error; run under ASan this proves no out-of-bounds read. */
TEST(test_gguf_survives_every_single_byte_corruption_of_the_metadata) {
    tbuf b = {0};
    size_t end;
    tb_small_valid(&b, &end);
    char path[512];
    tmp_path(path, sizeof path, "gguf_flip.gguf");
    size_t meta = end - 100; /* the kvs and tensor infos, before the data */
    int crashed_or_bad = 0;
    for (size_t i = 0; i < meta; i++) {
        for (int v = 0; v < 3; v++) {
            uint8_t keep = b.p[i];
            b.p[i] = (uint8_t[]){0xff, 0x00, (uint8_t)(keep ^ 0x40)}[v];
            write_bytes(path, b.p, b.n);
            zt_error err = {0};
            int rc = load_path(path, &err);
            if (rc != ZT_OK && (!err.msg[0] || strchr(err.msg, '\n'))) crashed_or_bad++;
            b.p[i] = keep;
        }
    }
    CHECK_EQ_INT(crashed_or_bad, 0);
    free(b.p);
}
