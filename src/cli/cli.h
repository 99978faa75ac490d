/* The zt command line: main.c dispatches `zt NAME ...` to cmd_NAME.
 * Each command prints errors as one line "zt NAME: message" on stderr
 * and returns the process exit code. */
#ifndef ZT_CLI_CLI_H
#define ZT_CLI_CLI_H

int cmd_info(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_serve(int argc, char **argv);

/* Parses "1,5,9" into a malloc'd array; -1 on a malformed list. */
int cli_parse_ids(const char *s, int **ids, int *n);

#endif
