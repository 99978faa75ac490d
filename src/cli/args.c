#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

void cli_error(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", cmd);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

bool args_init(cli_args *a, const char *cmd, int argc, char **argv) {
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->bad = false;
    a->used = calloc((size_t)argc + 1, sizeof *a->used);
    if (a->argc > 0) a->used[0] = true; /* the command name itself */
    return a->used != NULL;
}

void args_free(cli_args *a) { free(a->used); }

static int find(cli_args *a, const char *name, const char *alias) {
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i]) continue;
        if (!strcmp(a->argv[i], name) || (alias && !strcmp(a->argv[i], alias))) return i;
    }
    return -1;
}

const char *args_str(cli_args *a, const char *name, const char *alias) {
    int i = find(a, name, alias);
    if (i < 0) return NULL;
    a->used[i] = true;
    if (i + 1 >= a->argc) {
        cli_error(a->cmd, "option %s needs a value", name);
        a->bad = true;
        return NULL;
    }
    a->used[i + 1] = true;
    return a->argv[i + 1];
}

bool args_flag(cli_args *a, const char *name) {
    int i = find(a, name, NULL);
    if (i < 0) return false;
    a->used[i] = true;
    return true;
}

long args_int(cli_args *a, const char *name, const char *alias, long dflt, long lo, long hi) {
    const char *s = args_str(a, name, alias);
    if (!s) return dflt;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        cli_error(a->cmd, "option %s: '%s' is not an integer in [%ld, %ld]", name, s, lo, hi);
        a->bad = true;
        return dflt;
    }
    return v;
}

double args_float(cli_args *a, const char *name, double dflt, double lo, double hi) {
    const char *s = args_str(a, name, NULL);
    if (!s) return dflt;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        cli_error(a->cmd, "option %s: '%s' is not a number in [%g, %g]", name, s, lo, hi);
        a->bad = true;
        return dflt;
    }
    return v;
}

const char *args_pos(cli_args *a, int k) {
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i]) continue;
        if (a->argv[i][0] == '-' && a->argv[i][1]) continue; /* an unknown option */
        if (k-- == 0) return a->argv[i];
    }
    return NULL;
}

bool args_done(cli_args *a, int n_pos) {
    int seen = 0;
    for (int i = 1; i < a->argc; i++) {
        if (a->used[i]) continue;
        if (a->argv[i][0] == '-' && a->argv[i][1]) {
            cli_error(a->cmd, "unknown option %s", a->argv[i]);
            a->bad = true;
        } else if (++seen > n_pos) {
            cli_error(a->cmd, "unexpected argument '%s'", a->argv[i]);
            a->bad = true;
        }
    }
    return !a->bad;
}

int cli_parse_ids(const char *s, int **ids, int *n) {
    *ids = NULL;
    *n = 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int *v = malloc(cap * sizeof *v);
    if (!v) return -1;
    int k = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < 0 || x > 0x7fffffff || (*end && *end != ',')) {
            free(v);
            return -1;
        }
        v[k++] = (int)x;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) { /* trailing comma */
            free(v);
            return -1;
        }
    }
    if (k == 0) {
        free(v);
        return -1;
    }
    *ids = v;
    *n = k;
    return 0;
}
