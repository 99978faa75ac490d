/* Option parsing shared by the commands: `--name value` / `--flag` pairs
 * and positional arguments, with checked numbers. */
#ifndef ZT_CLI_ARGS_H
#define ZT_CLI_ARGS_H

#include <stdbool.h>

typedef struct cli_args {
    const char *cmd;      /* for messages: "zt logits" */
    int argc;
    char **argv;
    bool *used;           /* [argc] consumed by an option or positional */
    bool bad;             /* a malformed value was reported */
} cli_args;

bool args_init(cli_args *a, const char *cmd, int argc, char **argv);
void args_free(cli_args *a);
/* Value of --name (or NULL); also accepts a short alias such as "-o". */
const char *args_str(cli_args *a, const char *name, const char *alias);
bool args_flag(cli_args *a, const char *name);
/* Integer option in [lo, hi]; reports and sets bad when malformed. */
long args_int(cli_args *a, const char *name, const char *alias, long dflt, long lo, long hi);
double args_float(cli_args *a, const char *name, double dflt, double lo, double hi);
/* The i-th argument not consumed by an option (call after all options). */
const char *args_pos(cli_args *a, int i);
/* Reports unknown options (starting with '-') and leftover positionals
 * beyond n_pos; returns false when there were any or bad is set. */
bool args_done(cli_args *a, int n_pos);
/* Prints "zt CMD: message" on stderr. */
void cli_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
