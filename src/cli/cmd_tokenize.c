/* zt tokenize MODEL TEXT — token ids as one JSON array, the way the model's
 * reference tokenizer encodes by default (BOS when the model adds one,
 * special tokens such as "<|end|>" parsed); --no-bos, --no-special.
 *
 *   zt tokenize MODEL --text TEXT         the same, for TEXT starting with '-'
 *   zt tokenize MODEL --decode 1,2,3      the text of ids
 *   zt tokenize MODEL --jsonl FILE        batch: one JSON string per line
 *                                         (or {"hex": "..."} for raw bytes,
 *                                         e.g. invalid UTF-8) -> one id array
 *                                         per line; FILE "-" is stdin
 *   zt tokenize MODEL --decode-jsonl FILE one id array per line -> one JSON
 *                                         string per line
 *
 * MODEL is a GGUF file (only its metadata is read, so vocabulary-only files
 * work), a Hugging Face model directory, or a tokenizer.json (or a directory
 * holding one without a config.json).
 */
#include "cli/args.h"
#include "cli/cli.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"
#include "util/json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *CMD = "zt tokenize";

static bool is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Loads what the tokenizer needs from any kind of MODEL path. */
static int load_model(const char *path, zt_model **out, zt_error *err) {
    *out = NULL;
    struct stat st;
    if (stat(path, &st) != 0) return zt_fail(err, ZT_EIO, "%s: no such file or directory", path);
    char *json = NULL;
    if (S_ISDIR(st.st_mode)) {
        size_t n = strlen(path) + 32;
        char *cfg = malloc(n);
        if (!cfg) return zt_fail(err, ZT_ENOMEM, "out of memory");
        snprintf(cfg, n, "%s/config.json", path);
        bool full = is_file(cfg);
        snprintf(cfg, n, "%s/tokenizer.json", path);
        if (full || !is_file(cfg)) {
            free(cfg);
            if (!full) return zt_fail(err, ZT_EIO, "%s: no tokenizer.json or config.json", path);
            return zt_model_load(path, out, err);
        }
        json = cfg;
    } else if (ends_with(path, ".json")) {
        if (!(json = strdup(path))) return zt_fail(err, ZT_ENOMEM, "out of memory");
    }
    zt_model *m = model_new(path);
    if (!m) {
        free(json);
        return zt_fail(err, ZT_ENOMEM, "out of memory");
    }
    int rc = json ? hf_tokenizer_to_kv(m, json, err) : gguf_load(path, m, err);
    free(json);
    if (rc) {
        zt_model_free(m);
        return rc;
    }
    *out = m;
    return ZT_OK;
}

static void print_ids(FILE *f, const int32_t *ids, int n) {
    fputc('[', f);
    for (int i = 0; i < n; i++) fprintf(f, i ? ",%d" : "%d", ids[i]);
    fputs("]\n", f);
}

/* "48656c6c6f" -> bytes; false when malformed. */
static bool unhex(const char *s, size_t n, char *out) {
    if (n % 2) return false;
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = s[i + k];
            int d = c >= '0' && c <= '9'                     ? c - '0'
                    : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                             : -1;
            if (d < 0) return false;
            v = v * 16 + d;
        }
        out[i / 2] = (char)v;
    }
    return true;
}

/* Runs one line of a batch file; returns 0 or prints the error and 1. */
static int batch_line(const zt_tokenizer *tok, const char *file, long lineno, const char *line,
                      size_t len, int flags, bool decode) {
    zt_error err = {0};
    json_value *v = json_parse(line, len, &err);
    if (!v) {
        cli_error(CMD, "%s:%ld: %s", file, lineno, err.msg);
        return 1;
    }
    int rc = 1;
    if (decode) {
        size_t n = json_len(v);
        int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        bool ok = json_is(v, JSON_ARRAY) && ids;
        for (size_t i = 0; ok && i < n; i++) {
            int64_t id;
            ok = json_as_int(json_at(v, i), &id) && id >= INT32_MIN && id <= INT32_MAX;
            if (ok) ids[i] = (int32_t)id;
        }
        char *text;
        size_t tlen;
        if (!ok) {
            cli_error(CMD, "%s:%ld: expected an array of token ids", file, lineno);
        } else if (tok_decode(tok, ids, (int)n, &text, &tlen, &err) != ZT_OK) {
            cli_error(CMD, "%s:%ld: %s", file, lineno, err.msg);
        } else {
            json_write_stringn(stdout, text, tlen);
            fputc('\n', stdout);
            free(text);
            rc = 0;
        }
        free(ids);
        json_free(v);
        return rc;
    }
    const char *text = json_as_str(v);
    size_t tlen = json_len(v);
    char *bytes = NULL;
    const json_value *hex = json_get(v, "hex");
    if (hex) {
        tlen = json_len(hex) / 2;
        bytes = malloc(tlen + 1);
        if (bytes && json_as_str(hex) && unhex(json_as_str(hex), json_len(hex), bytes))
            text = bytes;
        else
            text = NULL;
    }
    int32_t *ids;
    int n;
    if (!text) {
        cli_error(CMD, "%s:%ld: expected a JSON string or {\"hex\": \"...\"}", file, lineno);
    } else if (zt_tokenize(tok, text, tlen, flags, &ids, &n, &err) != ZT_OK) {
        cli_error(CMD, "%s:%ld: %s", file, lineno, err.msg);
    } else {
        print_ids(stdout, ids, n);
        free(ids);
        rc = 0;
    }
    free(bytes);
    json_free(v);
    return rc;
}

static int batch(const zt_tokenizer *tok, const char *file, int flags, bool decode) {
    FILE *f = strcmp(file, "-") ? fopen(file, "rb") : stdin;
    if (!f) {
        cli_error(CMD, "%s: cannot open", file);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while (rc == 0 && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) len--;
        rc = batch_line(tok, file, lineno, line, (size_t)len, flags, decode);
    }
    free(line);
    if (f != stdin) fclose(f);
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    cli_args a;
    if (!args_init(&a, CMD, argc, argv)) return 1;
    bool no_bos = args_flag(&a, "--no-bos");
    bool no_special = args_flag(&a, "--no-special");
    const char *decode = args_str(&a, "--decode", NULL);
    const char *jsonl = args_str(&a, "--jsonl", NULL);
    const char *decode_jsonl = args_str(&a, "--decode-jsonl", NULL);
    const char *text = args_str(&a, "--text", NULL);
    const char *path = args_pos(&a, 0);
    if (!text && !decode && !jsonl && !decode_jsonl) text = args_pos(&a, 1);
    int modes = !!text + !!decode + !!jsonl + !!decode_jsonl;
    int n_pos = 1 + (text && args_pos(&a, 1) == text);
    if (!args_done(&a, n_pos) || !path || modes != 1) {
        if (!a.bad)
            cli_error(CMD, "usage: zt tokenize MODEL TEXT|--text TEXT [--no-bos] [--no-special] "
                           "| --decode 1,2,3 | --jsonl FILE | --decode-jsonl FILE");
        args_free(&a);
        return 1;
    }
    args_free(&a);

    zt_model *m = NULL;
    zt_tokenizer *tok = NULL;
    zt_error err = {0};
    if (load_model(path, &m, &err) != ZT_OK || zt_tokenizer_create(m, &tok, &err) != ZT_OK) {
        cli_error(CMD, "%s", err.msg);
        zt_model_free(m);
        return 1;
    }
    int flags = (no_bos ? 0 : ZT_TOK_ADD_BOS) | (no_special ? 0 : ZT_TOK_PARSE_SPECIAL);
    int rc = 1;
    if (jsonl || decode_jsonl) {
        rc = batch(tok, jsonl ? jsonl : decode_jsonl, flags, decode_jsonl != NULL);
    } else if (decode) {
        int *ids, n;
        char *out;
        size_t len;
        if (cli_parse_ids(decode, &ids, &n) != 0) {
            cli_error(CMD, "--decode: '%s' is not a comma-separated list of token ids", decode);
        } else {
            int32_t *ids32 = malloc((size_t)(n ? n : 1) * sizeof *ids32);
            for (int i = 0; ids32 && i < n; i++) ids32[i] = ids[i];
            if (!ids32) {
                cli_error(CMD, "out of memory");
            } else if (tok_decode(tok, ids32, n, &out, &len, &err) != ZT_OK) {
                cli_error(CMD, "%s", err.msg);
            } else {
                fwrite(out, 1, len, stdout);
                fputc('\n', stdout);
                free(out);
                rc = 0;
            }
            free(ids32);
            free(ids);
        }
    } else {
        int32_t *ids;
        int n;
        if (zt_tokenize(tok, text, strlen(text), flags, &ids, &n, &err) != ZT_OK) {
            cli_error(CMD, "%s", err.msg);
        } else {
            print_ids(stdout, ids, n);
            free(ids);
            rc = 0;
        }
    }
    if (fflush(stdout) != 0 && rc == 0) {
        cli_error(CMD, "cannot write the output");
        rc = 1;
    }
    zt_tokenizer_free(tok);
    zt_model_free(m);
    return rc;
}
